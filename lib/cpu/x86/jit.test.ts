/**
 * Property: translated blocks are invisible. Programs shaped for the translator (compare and
 * branch pairs, memory operands, hot loops) run with every block translated on its first
 * execution (jitThreshold = 1) and in the reference single-step interpreter, stopped after
 * random instruction counts, give identical CPU state and RAM at every stop. (Random programs
 * of every kind, translated, are in blockcache.test.ts.) RRX_PROPERTY_RUNS sets the number of
 * programs (default 100).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { encode, CONDS, type Insn as EncInsn, type Reg32, type Reg16 } from "../../../test/support/x86-encoder.ts";
import { Stop, EAX } from "./cpu.ts";
import { TestMachine, CODE, DATA, TSS, programMachine, compareRuns, descriptor } from "../../../test/cpu/machine.ts";
import { DS } from "./decode.ts";
import { disasm } from "./disasm.ts";
import { compileBlock, JIT_LONG_BLOCK, JIT_LUKEWARM, JIT_THRESHOLD, JIT_WINDOW } from "./jit.ts";
import { wasmChains, wasmStats, wasmTableUsed } from "./jit-wasm.ts";

const RUNS = Number(process.env.RRX_PROPERTY_RUNS ?? 100);
const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];

type Mode = "jit" | "region" | "region-js" | "drop" | "single";
const setup = (code: Uint8Array, regs: number[], flags: number, cpl: 0 | 3, mode: Mode) => {
  // "region-js": RAM without a state area, so the CPU's arrays are not in its wasm memory (as
  // when the engine gives none) and regions stay JavaScript.
  const m = programMachine(code, regs, flags, cpl, mode === "single" ? { singleStep: true } : { jitThreshold: mode === "jit" ? 1 : 3, stateBytes: mode === "region-js" ? 0 : undefined });
  m.tscPerInsn = 7; // RDTSC then reads its own icount
  if (mode === "drop") m.cpu.jitMaxBlocks = 2; // every third translation drops the others
  return m;
};

// A generator aimed at the translator: the instruction forms it translates, compare + branch
// pairs inside blocks, memory operands in the data region, inside a loop so blocks run often.
const REGS: Reg32[] = ["eax", "edx", "ebx", "esi", "edi", "ebp"];
const REGNUM: Record<string, number> = { eax: 0, ecx: 1, edx: 2, ebx: 3, esp: 4, ebp: 5, esi: 6, edi: 7 };
const reg = fc.constantFrom(...REGS);
const mem = fc.integer({ min: 0, max: 0x3f0 }).map((d) => ({ mem: { disp: DATA + d } }));
const alu = fc.constantFrom("add", "or", "adc", "sbb", "and", "sub", "xor", "cmp");
const reg16 = fc.constantFrom<Reg16[]>("ax", "dx", "bx", "si", "di", "bp");
const imm16 = fc.oneof(fc.constantFrom(0, 1, 0x7fff, 0x8000, 0xffff), fc.integer({ min: 0, max: 0xffff }));
const imm = fc.oneof(fc.integer({ min: -128, max: 127 }), fc.integer({ min: 0, max: 0xffffffff }));
// String instructions without REP (MOVS, CMPS, STOS, LODS, SCAS; bytes, words, dwords), ESI
// and EDI in the data, upwards or (STD before, CLD after) downwards.
const strOp: fc.Arbitrary<EncInsn[]> = fc.tuple(fc.constantFrom([0xa4], [0xa5], [0x66, 0xa5], [0xa6], [0xa7], [0x66, 0xa7], [0xaa], [0xab], [0x66, 0xab], [0xac], [0xad], [0x66, 0xad], [0xae], [0xaf]),
  fc.integer({ min: 0, max: 0x3fc }), fc.integer({ min: 0, max: 0x3fc }), fc.boolean())
  .map(([bytes, si, di, down]) => [
    { op: "mov", dst: { reg: "esi" }, src: { imm: DATA + si } }, { op: "mov", dst: { reg: "edi" }, src: { imm: DATA + di } },
    ...(down ? [{ op: "raw", bytes: [0xfd] }] : []), { op: "raw", bytes }, ...(down ? [{ op: "raw", bytes: [0xfc] }] : []),
  ] as EncInsn[]);
const simple: fc.Arbitrary<EncInsn[]> = fc.oneof<fc.Arbitrary<EncInsn[]>[]>(
  fc.tuple(alu, reg, fc.oneof(reg.map((r) => ({ reg: r })), imm.map((v) => ({ imm: v })), mem)).map(([op, d, src]) => [{ op, dst: { reg: d }, src } as EncInsn]),
  fc.tuple(alu, mem, fc.oneof(reg.map((r) => ({ reg: r })), imm.map((v) => ({ imm: v })))).map(([op, d, src]) => [{ op, dst: d, src, size: 32 } as EncInsn]),
  fc.tuple(reg, reg).map(([a, b]) => [{ op: "test", dst: { reg: a }, src: { reg: b } }]),
  fc.tuple(fc.constantFrom("inc", "dec"), reg).map(([op, r]) => [{ op, dst: { reg: r } }]),
  fc.tuple(fc.constantFrom("inc", "dec"), mem).map(([op, m]) => [{ op, dst: m, size: 32 } as EncInsn]),
  // 16-bit operands: moves to and from memory and registers, shifts by a constant.
  fc.tuple(reg16, fc.oneof(reg16.map((r) => ({ reg: r })), mem, imm16.map((v) => ({ imm: v })))).map(([r, src]) => [{ op: "mov", dst: { reg: r }, src } as EncInsn]),
  fc.tuple(mem, fc.oneof(reg16.map((r) => ({ reg: r })), imm16.map((v) => ({ imm: v })))).map(([m, src]) => [{ op: "mov", dst: m, src, size: 16 } as EncInsn]),
  fc.tuple(fc.constantFrom("shl", "shr", "sar"), reg16, fc.integer({ min: 1, max: 31 })).map(([op, r, c]) => [{ op, dst: { reg: r }, src: { imm: c } }]),
  fc.tuple(alu, reg16, fc.oneof(reg16.map((r) => ({ reg: r })), imm16.map((v) => ({ imm: v })), mem)).map(([op, d, src]) => [{ op, dst: { reg: d }, src, size: 16 } as EncInsn]),
  fc.tuple(alu, mem, fc.oneof(reg16.map((r) => ({ reg: r })), imm16.map((v) => ({ imm: v })))).map(([op, d, src]) => [{ op, dst: d, src, size: 16 } as EncInsn]),
  fc.tuple(reg16, fc.oneof(reg16.map((r) => ({ reg: r })), mem)).map(([r, d]) => [{ op: "test", dst: d, src: { reg: r } } as EncInsn]),
  // Rotates by a constant, TEST r/m8 with an immediate, one-operand MUL/IMUL, IMUL with an immediate.
  fc.tuple(fc.constantFrom("rol", "ror"), reg, fc.integer({ min: 0, max: 31 })).map(([op, r, c]) => [{ op, dst: { reg: r }, src: { imm: c } }]),
  fc.tuple(fc.oneof(mem, fc.constantFrom("al", "dl", "bl", "ah", "dh", "bh").map((r) => ({ reg: r }))), fc.integer({ min: 0, max: 255 })).map(([d, v]) => [{ op: "test", dst: d, src: { imm: v }, size: 8 } as EncInsn]),
  fc.tuple(fc.constantFrom("mul", "imul"), fc.oneof(fc.constantFrom<Reg32[]>("ebx", "esi", "edi", "ebp").map((r) => ({ reg: r })), mem)).map(([op, src]) => [{ op, dst: src, size: 32 } as EncInsn]),
  fc.tuple(reg, fc.oneof(reg.map((r) => ({ reg: r })), mem), imm).map(([d, src, v]) => [{ op: "imul", dst: { reg: d }, src, src2: { imm: v } } as EncInsn]),
  // SHLD/SHRD between registers by a constant (0 included) or by CL (the loop counter).
  fc.tuple(fc.constantFrom(0xa4, 0xa5, 0xac, 0xad), reg, reg, fc.integer({ min: 0, max: 31 })).map(([op, d, r, n]) => {
    const modrm = 0xc0 | (REGNUM[r] << 3) | REGNUM[d];
    return [{ op: "raw", bytes: (op & 1) ? [0x0f, op, modrm] : [0x0f, op, modrm, n] } as EncInsn];
  }),
  // Byte shifts (SHL, SHR, SAL, SAR) by a constant (0 included), by 1 and by CL.
  fc.tuple(fc.constantFrom(0xc0, 0xd0, 0xd2), fc.integer({ min: 4, max: 7 }), fc.constantFrom("al", "dl", "bl", "ah", "dh", "bh"), fc.integer({ min: 0, max: 31 })).map(([op, ext, r, n]) => {
    const modrm = 0xc0 | (ext << 3) | ({ al: 0, dl: 2, bl: 3, ah: 4, dh: 6, bh: 7 } as Record<string, number>)[r]!;
    return [{ op: "raw", bytes: op === 0xc0 ? [op, modrm, n] : [op, modrm] } as EncInsn];
  }),
  // CMPXCHG m32, r32, EAX equal to the memory word or not (a MOV from it first, half the time).
  fc.tuple(mem, reg, fc.boolean()).map(([m, r, same]) => [
    ...(same ? [{ op: "mov", dst: { reg: "eax" }, src: m } as EncInsn] : []),
    { op: "raw", bytes: [0xf0, 0x0f, 0xb1, 0x05 | (REGNUM[r]! << 3), ...le32(m.mem.disp)] } as EncInsn,
  ]),
  // LOCK-prefixed read-modify-write of memory.
  fc.tuple(fc.constantFrom("add", "or", "adc", "sbb", "and", "sub", "xor"), mem, reg).map(([op, d, r]) => [{ op: "raw", bytes: [0xf0, ...encode({ op, dst: d, src: { reg: r }, size: 32 } as EncInsn)] } as EncInsn]),
  // PUSHF and a POP of the image.
  reg.map((r) => [{ op: "raw", bytes: [0x9c, 0x58 + REGNUM[r]!] } as EncInsn]),
  // RDTSC (the test bus's TSC follows icount) and PAUSE.
  fc.constant([{ op: "raw", bytes: [0x0f, 0x31] } as EncInsn]),
  fc.constant([{ op: "raw", bytes: [0xf3, 0x90] } as EncInsn]),
  fc.tuple(reg, mem).map(([r, m]) => [{ op: "mov", dst: { reg: r }, src: m }]),
  fc.tuple(mem, reg).map(([m, r]) => [{ op: "mov", dst: m, src: { reg: r } }]),
  fc.tuple(reg, imm).map(([r, v]) => [{ op: "mov", dst: { reg: r }, src: { imm: v } }]),
  fc.tuple(reg, reg, fc.constantFrom<1 | 2 | 4 | 8>(1, 2, 4, 8), fc.integer({ min: -64, max: 64 })).map(([d, b, sc, disp]) => [{ op: "lea", dst: { reg: d }, src: { mem: { base: b, index: "ecx", scale: sc, disp } } }]),
  fc.tuple(fc.constantFrom("movzx", "movsx"), reg, mem, fc.constantFrom<8 | 16>(8, 16)).map(([op, r, m, sz]) => [{ op, dst: { reg: r }, src: m, size: sz }]),
  fc.tuple(fc.constantFrom("shl", "shr", "sar"), reg, fc.integer({ min: 1, max: 31 })).map(([op, r, c]) => [{ op, dst: { reg: r }, src: { imm: c } }]),
  fc.tuple(reg, reg).map(([a, b]) => [{ op: "imul", dst: { reg: a }, src: { reg: b } }]),
  fc.tuple(reg, reg).map(([a, b]) => [{ op: "push", dst: { reg: a } }, { op: "pop", dst: { reg: b } }]),
  fc.tuple(mem, fc.constantFrom("al", "dl", "bl", "ah", "dh", "bh")).map(([m, r]) => [{ op: "mov", dst: m, src: { reg: r } } as EncInsn]),
  fc.tuple(fc.constantFrom(...CONDS), reg, fc.oneof(reg.map((r) => ({ reg: r })), mem)).map(([cc, d, src]) => [{ op: "cmovcc", cc, dst: { reg: d }, src } as EncInsn]),
  fc.tuple(fc.constantFrom(...CONDS), fc.constantFrom("al", "dl", "bl", "ah", "dh", "bh")).map(([cc, r]) => [{ op: "setcc", cc, dst: { reg: r } } as EncInsn]),
  fc.tuple(fc.constantFrom("neg", "not"), reg).map(([op, r]) => [{ op, dst: { reg: r } }]),
  fc.constant([{ op: "cdq" } as EncInsn]),
  fc.tuple(reg, reg).map(([a, b]) => [{ op: "xchg", dst: { reg: a }, src: { reg: b } }]),
  fc.tuple(imm, reg).map(([v, r]) => [{ op: "push", src: { imm: v }, size: 32 } as EncInsn, { op: "pop", dst: { reg: r } }]),
  strOp,
  fc.tuple(fc.oneof(reg.map((r) => ({ reg: r })), mem), reg).map(([src, r]) => [{ op: "push", dst: src, size: 32 } as EncInsn, { op: "pop", dst: { reg: r } }]),
);
/** cmp/test/inc/dec... + jcc over a simple item, so the condition is fused with its producer. */
const branch: fc.Arbitrary<EncInsn[]> = fc.tuple(fc.constantFrom("cmp", "sub", "test", "and", "xor", "or", "inc", "dec"), reg, fc.oneof(reg.map((r) => ({ reg: r })), imm.map((v) => ({ imm: v }))), fc.constantFrom(...CONDS), simple)
  .map(([op, r, src, cc, body]) => {
    const bodyBytes = body.reduce((n, x) => n + encode(x).length, 0);
    const s2 = op === "test" && "imm" in src ? { reg: r } : src;
    const producer = op === "inc" || op === "dec" ? { op, dst: { reg: r } } : { op, dst: { reg: r }, src: s2 };
    return [producer as EncInsn, { op: "jcc", cc, rel: bodyBytes }, ...body];
  });
/** A loop (ECX iterations) over items. */
const loopOf = (item: fc.Arbitrary<EncInsn[]>) => fc.tuple(fc.integer({ min: 1, max: 30 }), fc.array(item, { minLength: 1, maxLength: 25 }))
  .map(([n, items]) => {
    const body: EncInsn[] = items.flat();
    const bodyLen = body.reduce((k, x) => k + encode(x).length, 0);
    // Back to the loop head: dec ecx is 1 byte; jcc is 2 bytes (short) or 6 (near).
    const short = -(bodyLen + 1 + 2);
    const rel = short >= -128 ? short : -(bodyLen + 1 + 6);
    const prog: EncInsn[] = [{ op: "mov", dst: { reg: "ecx" }, src: { imm: n } }, ...body, { op: "dec", dst: { reg: "ecx" } }, { op: "jcc", cc: "ne", rel }];
    const bytes: number[] = [];
    for (const x of prog) bytes.push(...encode(x));
    const jcc = encode(prog[prog.length - 1]!);
    if (jcc.length !== (short >= -128 ? 2 : 6)) throw new Error("loop branch encoded with an unexpected length");
    return Uint8Array.from(bytes);
  });
const arbJitProgram = loopOf(fc.oneof(simple, simple, branch));
/** String instructions, with a compare or a branch on their flags after some (SCAS, CMPS). */
const strBranch: fc.Arbitrary<EncInsn[]> = fc.tuple(strOp, fc.constantFrom(...CONDS), simple).map(([str, cc, body]) => {
  const bodyBytes = body.reduce((n, x) => n + encode(x).length, 0);
  return [...str, { op: "jcc", cc, rel: bodyBytes }, ...body];
});
const arbStringProgram = loopOf(fc.oneof(strOp, strBranch, strBranch, simple));

/**
 * A loop calling functions spread over four pages (directly, and indirectly through a table by
 * ECX's parity), some of which call another, with stores into a function's first instruction
 * (`add eax, imm8`: its immediate) every eighth pass: regions across pages that grow, share
 * members, are dropped and translated again while the loop runs. The table is at DATA + 0xC00,
 * above the stack and the data the simple items touch.
 */
const TABLE = DATA + 0xc00;
type CallItem = { call: number } | { icall: [number, number] } | { smc: number };
const arbCallProgram = fc.record({
  n: fc.integer({ min: 5, max: 40 }),
  fns: fc.array(fc.record({ page: fc.integer({ min: 0, max: 3 }), imm: fc.integer({ min: 0, max: 255 }), body: fc.array(simple, { maxLength: 4 }), callee: fc.option(fc.nat(), { nil: undefined }) }), { minLength: 2, maxLength: 6 }),
  seq: fc.array(fc.oneof<fc.Arbitrary<CallItem>[]>(fc.nat().map((k) => ({ call: k })), fc.tuple(fc.nat(), fc.nat()).map((x) => ({ icall: x })), fc.nat().map((k) => ({ smc: k }))), { minLength: 1, maxLength: 6 }),
});
/** The program's bytes (page 0 at 0: the loop) and the call table's entries. */
function buildCallProgram({ n, fns, seq }: typeof arbCallProgram extends fc.Arbitrary<infer T> ? T : never): { code: Uint8Array; table: number[] } {
  const code = new Uint8Array(0x4000);
  const slots = [1, 0, 0, 0];
  const at = fns.map((f) => f.page * 0x1000 + 0x200 + slots[f.page]!++ * 0x80);
  fns.forEach((f, i) => {
    const bytes = [0x83, 0xc0, f.imm];
    for (const x of f.body.flat()) { const e = encode(x); if (bytes.length + e.length > 0x70) break; bytes.push(...e); }
    if (f.callee !== undefined && i + 1 < fns.length) {
      const j = i + 1 + (f.callee % (fns.length - i - 1));
      bytes.push(0xe8, ...le32(at[j]! - (at[i]! + bytes.length + 5)));
    }
    bytes.push(0xc3);
    code.set(bytes, at[i]!);
  });
  const main: number[] = [0xb9, ...le32(n)];
  const table: number[] = [];
  for (const it of seq) {
    if ("call" in it) main.push(0xe8, ...le32(at[it.call % fns.length]! - (main.length + 5)));
    else if ("icall" in it) {
      const t = TABLE + table.length * 4;
      table.push(CODE + at[it.icall[0] % fns.length]!, CODE + at[it.icall[1] % fns.length]!);
      main.push(0x89, 0xcf, 0x83, 0xe7, 0x01, 0xff, 0x14, 0xbd, ...le32(t)); // mov edi, ecx; and edi, 1; call [t + edi*4]
    } else main.push(0xf6, 0xc1, 0x07, 0x75, 0x06, 0x88, 0x0d, ...le32(CODE + at[it.smc % fns.length]! + 2)); // test cl, 7; jnz; mov [f+2], cl
  }
  main.push(0x49, 0x0f, 0x85, ...le32(5 - (main.length + 7)), 0xf4); // dec ecx; jnz loop (its end: 7 bytes on); hlt
  code.set(main, 0);
  return { code, table };
}

/** Random programs in a translation mode against single-step, with random registers and stops. */
function againstSingleStep(programs: fc.Arbitrary<Uint8Array>, mode: Exclude<Mode, "single">, flags = 0): void {
  fc.assert(
    fc.property(
      programs,
      fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 7, maxLength: 7 }),
      fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 20 }),
      (code, regs, chunks) => {
        const a = setup(code, regs, flags, 0, mode);
        const b = setup(code, regs, flags, 0, "single");
        compareRuns(a, b, chunks, 200, () => disasm(code, true, CODE).join("\n"));
      },
    ),
    { numRuns: RUNS },
  );
}

describe("block translator equals single step", () => {
  // Threshold 1 translates each block on its first execution (mostly single blocks); threshold 3
  // translates a loop's head after its other blocks exist, so regions form; "drop" keeps at most
  // two translations, so translations are dropped (and made again) while blocks run. Regions
  // run as WebAssembly where they can ("region"), or all as JavaScript ("region-js").
  test.each(["jit", "region", "region-js", "drop"] as const)(`translator-shaped programs with compare+branch pairs, %s (${RUNS} runs)`, (mode) => {
    const built = wasmStats.built, jumps = wasmStats.directJumps;
    againstSingleStep(arbJitProgram, mode);
    // (Regions that read or write EFLAGS whole stay JavaScript: jit-wasm.ts.)
    if (mode === "region") expect(wasmStats.built - built).toBeGreaterThan(RUNS * 0.6);
    if (mode === "region") expect(wasmStats.directJumps - jumps).toBeGreaterThan(RUNS / 5);
    expect([...wasmStats.rejected.keys()].filter((k) => k.startsWith("error"))).toEqual([]);
    if (mode === "region-js") expect(wasmStats.built).toBe(built);
  });

  test(`calls across four pages, direct and through a table, with stores into the code they call (${RUNS} runs)`, () => {
    // WebAssembly regions go on to each other here (jit-wasm.ts chains): counted over the runs.
    let chains = 0;
    fc.assert(
      fc.property(
        arbCallProgram,
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 7, maxLength: 7 }),
        // Short runs often: each starts a block from the run loop, where a member enters a region.
        fc.array(fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 300 })), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 2, max: 6 }),
        (prog, regs, chunks, thr) => {
          const { code, table } = buildCallProgram(prog);
          const a = programMachine(code, regs, 0, 0, { jitThreshold: thr });
          const b = programMachine(code, regs, 0, 0, { singleStep: true });
          for (const m of [a, b]) m.write(TABLE, table.flatMap(le32));
          const where = () => `threshold ${thr}\n${disasm(code.slice(0, 0x80), true, CODE).join("\n")}`;
          // The random chunks first, then on to the end in long runs (every run compares RAM).
          compareRuns(a, b, chunks, 1000, where);
          compareRuns(a, b, [1000], 100, where);
          expect(a.cpu.halted).toBe(true);
          chains += wasmChains(a.cpu);
        },
      ),
      { numRuns: RUNS },
    );
    expect(chains).toBeGreaterThan(RUNS * 10);
  });

  test("dropping the block cache gives every WebAssembly region's table slot back", () => {
    // The call program: its regions take table slots, which a dropped cache gives back.
    const { code, table } = buildCallProgram({ n: 400, fns: [{ page: 1, imm: 1, body: [], callee: 0 }, { page: 2, imm: 2, body: [], callee: undefined }], seq: [{ call: 0 }, { call: 1 }] });
    const m = programMachine(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, { jitThreshold: 2 });
    m.write(TABLE, table.flatMap(le32));
    // Half way, the cache goes (as a checkpoint restore drops it), and the rest builds it again.
    expect(m.cpu.run(1500)).toBe(Stop.BUDGET);
    expect(wasmTableUsed(m.cpu)).toBeGreaterThan(0);
    m.cpu.flushBlocks();
    expect(wasmTableUsed(m.cpu)).toBe(0);
    expect(m.cpu.run(1e6)).toBe(Stop.HALT);
    expect(wasmTableUsed(m.cpu)).toBeGreaterThan(0);
    expect(wasmChains(m.cpu)).toBeGreaterThan(0);
    m.cpu.flushBlocks();
    expect(wasmTableUsed(m.cpu)).toBe(0);
  });
  test.each(["jit", "region"] as const)(`string instructions without REP and branches on their flags, %s (${RUNS} runs)`, (mode) => {
    againstSingleStep(arbStringProgram, mode);
  });
  // DF set before the loop: a region without STD or CLD in it steps down (WebAssembly regions
  // read DF from a slot the wrapper sets).
  test(`string instructions without REP, DF set before the loop, region (${RUNS} runs)`, () => {
    const built = wasmStats.built;
    againstSingleStep(arbStringProgram, "region", 0x400);
    expect(wasmStats.built - built).toBeGreaterThan(RUNS / 5);
  });

  test("a call of a PC thunk on another page runs inside the region, and the thunk is checked at every call", () => {
    // mov ecx, 40 ; L: call T ; add eax, ebx ; cmp ecx, 20 ; jne S ; <action> ; S: dec ecx ; jnz L ; hlt
    // T (CODE + 0x1000): mov ebx, [esp] ; ret. The action, run once halfway: none, a rewrite of
    // the thunk's register (to EDX), or the thunk's page unmapped (a #PF on the next call's fetch).
    const T = 0x1000;
    const actions: Record<string, number[]> = {
      none: [],
      rewrite: [0xc6, 0x05, ...le32(CODE + T + 1), 0x14], // mov byte [T + 1], 0x14
      unmap: [0xc7, 0x05, ...le32(0x101000 + ((CODE + T) >>> 12) * 4), 0, 0, 0, 0, 0x0f, 0x01, 0x3d, ...le32(CODE + T)], // mov dword [pte], 0 ; invlpg [T]
      misaligned: [],
    };
    for (const [name, act] of Object.entries(actions)) {
      const t = name === "misaligned" ? T + 2 : T;
      const head = [0xb9, 40, 0, 0, 0];
      const body = [0xe8, ...le32(t - (head.length + 5)), 0x01, 0xd8, 0x83, 0xf9, 0x14, 0x75, act.length, ...act, 0x49];
      const back = -(body.length + 2);
      const code = new Uint8Array(t + 4);
      code.set([...head, ...body, 0x75, back & 0xff, 0xf4]);
      code.set([0x8b, 0x1c, 0x24, 0xc3], t);
      for (const chunks of [[100000], [1], [2], [3], [5], [7], [1, 2, 3, 5, 8, 13, 21]]) {
        const [a, b] = [setup(code, [1, 0, 0, 0, 0, 0, 0], 0, 0, "region"), setup(code, [1, 0, 0, 0, 0, 0, 0], 0, 0, "single")];
        for (const m of [a, b]) m.paging();
        compareRuns(a, b, chunks, 100000, () => `${name} chunks ${chunks}\n${disasm(code.subarray(0, head.length + body.length + 3), true, CODE).join("\n")}`);
        expect({ name, halted: a.cpu.halted || a.exception() !== null }).toEqual({ name, halted: true });
        if (name === "unmap") expect(a.exception()?.vector).toBe(14);
        // The loop's region holds the thunk's check (the misaligned thunk is called as usual).
        const fns = [...(a.cpu as unknown as { blocks: Map<number, { fn: unknown }> }).blocks.values()].map((x) => String(x.fn));
        const word = String(0xc3241c8b | 0); // the bytes 8B 1C 24 C3 as an int32
        expect({ name, inline: fns.some((f) => f.includes(word)) }).toEqual({ name, inline: name !== "misaligned" });
      }
    }
  });

  test("a loop across pages runs in one region, left when its other page changes or maps elsewhere", () => {
    // mov ecx, 200 ; jmp A ... A (page 0, 0xff0): add eax, ecx ; jmp B
    // B (page 1, 0x1010): xor ebx, eax ; call F ; cmp ecx, 100 ; jne S ; <action> ; S: dec ecx ; jnz A ; hlt
    // F (page 2, 0x2000): add edx, 3 ; ret
    // The action, run once halfway: none; a store over B's XOR, A's ADD or F's immediate (code in
    // the region on each page); page 1 or page 2 remapped (its PTE to a copy that differs there)
    // and INVLPG.
    const A = 0xff0, B = 0x1010, F = 0x2000, COPY1 = 0x3000, COPY2 = 0x4000;
    const pte = (lin: number) => 0x101000 + ((CODE + lin) >>> 12) * 4;
    const remap = (pg: number, to: number) => [0xc7, 0x05, ...le32(pte(pg)), ...le32(((CODE + to) | 7) >>> 0), 0x0f, 0x01, 0x3d, ...le32(CODE + pg)];
    const actions: Record<string, number[]> = {
      none: [],
      "store page 1": [0xc6, 0x05, ...le32(CODE + B + 1), 0xd3], // xor ebx, eax -> xor ebx, edx
      "store page 0": [0xc6, 0x05, ...le32(CODE + A + 1), 0xd0], // add eax, ecx -> add eax, edx
      "store page 2": [0xc6, 0x05, ...le32(CODE + F + 2), 5], // add edx, 3 -> add edx, 5
      "remap page 1": remap(0x1000, COPY1),
      "remap page 2": remap(0x2000, COPY2),
    };
    for (const [name, act] of Object.entries(actions)) {
      const code = new Uint8Array(0x2100);
      code.set([0xb9, 200, 0, 0, 0, 0xe9, ...le32(A - 10)]);
      code.set([0x01, 0xc8, 0xe9, ...le32(B - (A + 7))], A);
      const b = [0x31, 0xc3, 0xe8, ...le32(F - (B + 7)), 0x83, 0xf9, 100, 0x75, act.length, ...act, 0x49, 0x0f, 0x85];
      code.set([...b, ...le32(A - (B + b.length + 4)), 0xf4], B);
      code.set([0x83, 0xc2, 0x03, 0xc3], F);
      for (const chunks of [[100000], [1], [3], [7], [2, 5, 11, 17, 23]]) {
        const [x, y] = [setup(code, [1, 0, 0x55, 0, 0, 0, 0], 0, 0, "region"), setup(code, [1, 0, 0x55, 0, 0, 0, 0], 0, 0, "single")];
        for (const m of [x, y]) {
          m.paging();
          const c1 = code.slice(0x1000, 0x1100), c2 = code.slice(0x2000, 0x2100);
          c1[B - 0x1000] = 0x29; // sub ebx, eax
          c2[2] = 7; // add edx, 7
          m.write(CODE + COPY1, [...c1]);
          m.write(CODE + COPY2, [...c2]);
        }
        compareRuns(x, y, chunks, 100000, () => `${name} chunks ${chunks}`);
        expect({ name, halted: x.cpu.halted }).toEqual({ name, halted: true });
        if (name === "none" && chunks.length === 1 && chunks[0] === 100000) {
          // One region holds blocks of two pages (REGION_MAX_PAGES).
          const fns = [...(x.cpu as unknown as { blocks: Map<number, { fn: unknown }> }).blocks.values()].map((q) => String(q.fn));
          expect(fns.some((f) => f.includes("x1 = tr["))).toBe(true);
        }
      }
    }
  });

  /** A loop of `items` run ECX times (the loop's bytes, from MOV ECX to the JNZ back). */
  const loopBytes = (n: number, items: EncInsn[]): Uint8Array => {
    const body = items.flatMap((x) => [...encode(x)]);
    const rel = -(body.length + 1 + 6);
    return Uint8Array.from([...encode({ op: "mov", dst: { reg: "ecx" }, src: { imm: n } }), ...body, 0x49, 0x0f, 0x85, ...le32(rel)]);
  };
  const at = (d: number) => ({ mem: { disp: DATA + d } });

  test("a hot loop of more blocks and instructions than a lukewarm region takes stays in one region", () => {
    // 60 blocks of ADD, CMP, JZ +0 (180 instructions) in a loop run 2000 times: as one region,
    // the loop goes round without a call from one region to another.
    const body: number[] = [];
    for (let k = 0; k < 60; k++) body.push(0x01, 0xc8, 0x83, 0xf8, 0x05, 0x74, 0x00);
    const code = Uint8Array.from([0xb9, ...le32(2000), ...body, 0x49, 0x0f, 0x85, ...le32(-(body.length + 1 + 6)), 0xf4]);
    const [x, y] = [setup(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, "region"), setup(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, "single")];
    compareRuns(x, y, [1000000], 10, () => "hot loop of 60 blocks");
    expect(x.cpu.halted).toBe(true);
    expect(x.cpu.icount).toBe(1 + 2000 * 182 + 1);
    expect(wasmChains(x.cpu)).toBeLessThan(100);
  });

  test("a hot head's region takes its loop's rarer paths too", () => {
    // loop: ADD EAX, ECX; TEST CL, 31; JNZ skip / ADD EBX, 1 (every 32nd pass) / skip: DEC ECX;
    // JNZ loop. At the default threshold the head is hot after 500 passes, when the rare
    // block has run about 15 times: a 32nd of the threshold, enough for a hot head's region.
    const body = [0x01, 0xc8, 0xf6, 0xc1, 0x1f, 0x75, 0x03, 0x83, 0xc3, 0x01];
    const code = Uint8Array.from([0xb9, ...le32(4000), ...body, 0x49, 0x0f, 0x85, ...le32(-(body.length + 1 + 6)), 0xf4]);
    const m = programMachine(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, {});
    const y = setup(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, "single");
    compareRuns(m, y, [1000000], 10, () => "loop with a rare path");
    expect(m.cpu.halted).toBe(true);
    const blocks = [...(m.cpu as unknown as { blocks: Map<number, { phys: number; rHead: { phys: number } | null }> }).blocks.values()];
    const rare = blocks.find((b) => b.phys === CODE + 5 + 7)!;
    expect(rare.rHead?.phys).toBe(CODE + 5);
  });

  test("unaligned words and halfwords inside a page stay in a WebAssembly region", () => {
    // Loads, stores and a read-modify-write at odd addresses, none across a page.
    const code = loopBytes(300, [
      { op: "mov", dst: { reg: "eax" }, src: at(0x101) },
      { op: "add", dst: { reg: "eax" }, src: { reg: "ecx" } },
      { op: "mov", dst: at(0x203), src: { reg: "eax" } },
      { op: "mov", dst: { reg: "bx" }, src: at(0x305) },
      { op: "mov", dst: at(0x407), src: { reg: "bx" } },
      { op: "movzx", dst: { reg: "edx" }, src: at(0x509), size: 16 },
      { op: "add", dst: at(0x60b), src: { reg: "edx" }, size: 32 },
    ] as EncInsn[]);
    const built = wasmStats.built;
    const [x, y] = [setup(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, "region"), setup(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, "single")];
    // The CPU's word accessors, which a side exit's instruction (and the interpreter, for an
    // unaligned word) goes through: counted on the translated machine.
    let slow = 0;
    const cpu = x.cpu as unknown as Record<string, (l: number, v?: number) => number>;
    for (const f of ["rl32", "wl32", "rl16", "wl16"]) {
      const orig = cpu[f]!;
      cpu[f] = function (this: unknown, l: number, v?: number) { slow++; return orig.call(this, l, v); };
    }
    compareRuns(x, y, [100000], 10, () => disasm(code, true, CODE).join("\n"));
    expect(x.cpu.halted).toBe(true);
    expect(wasmStats.built - built).toBeGreaterThan(0);
    // 300 passes of 7 unaligned accesses (the RMW reads and writes): only the passes before the
    // loop is translated go through the accessors.
    expect(slow).toBeLessThan(60);
  });

  test("an unaligned word across a page boundary takes the next page's own mapping", () => {
    // The page after DATA maps to another frame (COPY): a word at DATA + 0xFFE is two bytes of
    // each, read and written through both mappings, as a single step does.
    const COPY = 0x30000;
    const code = loopBytes(200, [
      { op: "mov", dst: { reg: "eax" }, src: at(0xffe) },
      { op: "add", dst: { reg: "eax" }, src: { reg: "ecx" } },
      { op: "mov", dst: at(0xffd), src: { reg: "eax" } },
      { op: "mov", dst: { reg: "bx" }, src: at(0xfff) },
      { op: "mov", dst: at(0xfff), src: { reg: "cx" } },
    ] as EncInsn[]);
    const [x, y] = [setup(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, "region"), setup(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, "single")];
    for (const m of [x, y]) {
      m.paging();
      m.w32(0x101000 + ((DATA + 0x1000) >>> 12) * 4, COPY | 7);
      m.cpu.flushTlb();
      m.write(DATA + 0x1000, new Array(16).fill(0x55));
      m.write(COPY, new Array(16).fill(0xaa));
    }
    compareRuns(x, y, [100000], 10, () => disasm(code, true, CODE).join("\n"));
    expect(x.cpu.halted).toBe(true);
    // The frame the page maps to was written, the one after DATA's own frame was not.
    expect([...x.mem.ram.subarray(DATA + 0x1000, DATA + 0x1004)]).toEqual([0x55, 0x55, 0x55, 0x55]);
    expect(x.mem.ram[COPY]).toBe(0); // the high byte of CX (1) in the last pass
  });

  test("a block enters only the region its head still heads, not one its old head has joined since", () => {
    // Phase 1 loops Y -> Z -> back to Y: a region headed by Y holds Z (on page 1). A store over W
    // (another block of page 0) drops it. Phase 2 loops X -> W2 -> Y -> Z: the region now has its
    // head at X and holds Y but not Z (W2's page 2 is its other page), and Y, run from the run
    // loop at a chunk's start, enters it. Z, getting hot then, must not take X's function at
    // its old offset from Y (that function ran X's code at Z's EIP).
    //   0: mov ecx, 20 ; mov ebp, Y ; call W ; jmp Y          W (0x100): ret
    //   X (0x200): call W2            Y (0x205): call Z
    //   0x20a: dec ecx ; jz +2 ; jmp ebp ; test esi, esi ; jnz done ; mov esi, 1
    //          mov byte [W], 0xc3 ; mov ecx, 40 ; mov ebp, X ; jmp X ; done: hlt
    //   Z (page 1, 0x1000): add edx, 3 ; ret                  W2 (page 2, 0x2000): add ebx, 1 ; ret
    const W = 0x100, X = 0x200, Y = 0x205, Z = 0x1000, W2 = 0x2000;
    const rel = (from: number, to: number) => le32(to - from);
    const code = new Uint8Array(0x2010);
    code.set([0xb9, 20, 0, 0, 0, 0xbd, ...le32(CODE + Y), 0xe8, ...rel(0x0f, W), 0xe9, ...rel(0x14, Y)], 0);
    code.set([0xc3], W);
    code.set([0xe8, ...rel(X + 5, W2)], X);
    code.set([0xe8, ...rel(Y + 5, Z)], Y);
    code.set([0x49, 0x74, 0x02, 0xff, 0xe5, 0x85, 0xf6, 0x75, 0x1b, 0xbe, 1, 0, 0, 0, 0xc6, 0x05, ...le32(CODE + W), 0xc3,
      0xb9, 40, 0, 0, 0, 0xbd, ...le32(CODE + X), 0xe9, ...rel(0x22e, X), 0xf4], 0x20a);
    code.set([0x83, 0xc2, 0x03, 0xc3], Z);
    code.set([0x83, 0xc3, 0x01, 0xc3], W2);
    for (let thr = 2; thr <= 4; thr++) {
      for (const chunks of [[100000], [2], [5], [7], [11], [2, 3]]) {
        const a = programMachine(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, { jitThreshold: thr });
        const b = programMachine(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, { singleStep: true });
        compareRuns(a, b, chunks, 3000, () => `threshold ${thr}, chunks ${chunks}`);
        expect({ thr, chunks, halted: a.cpu.halted, edx: a.cpu.regs[2], ebx: a.cpu.regs[3] }).toEqual({ thr, chunks, halted: true, edx: 180, ebx: 40 });
      }
    }
  });

  test("a hot loop is translated and gives the interpreter's result", () => {
    // mov ecx, 1000 ; xor eax, eax ; l: add eax, ecx ; dec ecx ; jnz l ; hlt
    const code = [0xb9, 0xe8, 0x03, 0, 0, 0x31, 0xc0, 0x01, 0xc8, 0x49, 0x75, 0xfb, 0xf4];
    const run = (noJit: boolean) => {
      const m = new TestMachine(2 << 20);
      m.flat(0, CODE);
      m.write(CODE, code);
      m.cpu.noJit = noJit;
      m.cpu.flushBlocks();
      expect(m.cpu.run(1e6)).toBe(Stop.HALT);
      return { eax: m.cpu.regs[EAX], icount: m.cpu.icount, flags: m.cpu.getFlags(), built: m.cpu.blocksBuilt };
    };
    const j = run(false), i = run(true);
    expect(j).toEqual(i);
    expect(j.eax).toBe(500500);
    expect(j.icount).toBe(2 + 3 * 1000 + 1);
  });

  test("past the most translations kept, all are dropped and the hot blocks translated again", () => {
    // Two loops one after the other, each of two blocks: mov ecx, 300 ; l1: inc eax ; test cl, 1 ;
    // jz s1 ; inc ebx ; s1: dec ecx ; jnz l1 ; mov ecx, 300 ; l2: (the same with edx, esi) ; hlt
    const loop = (a: number, b: number) => [0xb9, 0x2c, 0x01, 0, 0, 0x40 + a, 0xf6, 0xc1, 0x01, 0x74, 0x01, 0x40 + b, 0x49, 0x75, 0xf6];
    const code = new Uint8Array([...loop(0, 3), ...loop(2, 6)]);
    const run = (max: number | null) => {
      const m = programMachine(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, max === null ? { singleStep: true } : { jitThreshold: 4 });
      if (max !== null) m.cpu.jitMaxBlocks = max;
      expect(m.cpu.run(1e6)).toBe(Stop.HALT);
      return { m, state: m.state(), icount: m.cpu.icount };
    };
    const ref = run(null);
    expect(ref.m.cpu.regs[0]).toBe(300);
    expect(ref.m.cpu.regs[3]).toBe(150);
    for (const max of [1, 2, 16384]) {
      const r = run(max);
      expect({ max, icount: r.icount }).toEqual({ max, icount: ref.icount });
      expect(Buffer.compare(r.state, ref.state)).toBe(0);
      // With room for one, the second loop's blocks got hot after the first loop's were
      // translated: those were dropped, and the second loop still ran translated.
      if (max !== 2) expect({ max, drops: r.m.cpu.translationDrops > 0 }).toEqual({ max, drops: max === 1 });
      expect(r.m.cpu.translated).toBeGreaterThan(0);
      expect(r.m.cpu.translated).toBeLessThanOrEqual(max);
    }
  });

  test("the carry into ADC/SBB and the CF that INC/DEC keep, from the producer before them in the block", () => {
    // The translator takes CF from a known producer's operands (ADD, SUB, CMP, logic, 8-bit CMP),
    // or the CF an INC/DEC before kept (with CF set or clear on entry).
    const producers: EncInsn[] = (["add", "sub", "cmp", "and", "xor", "or"] as const).map((op) => ({ op, dst: { reg: "eax" }, src: { reg: "ebx" } } as EncInsn));
    producers.push({ op: "cmp", dst: { reg: "al" }, src: { reg: "bl" } } as EncInsn, { op: "sub", dst: { reg: "eax" }, src: { reg: "eax" } } as EncInsn,
      { op: "inc", dst: { reg: "eax" } } as EncInsn, { op: "dec", dst: { reg: "ebx" } } as EncInsn);
    const consumers: EncInsn[] = [
      { op: "adc", dst: { reg: "ecx" }, src: { reg: "edx" } }, { op: "sbb", dst: { reg: "ecx" }, src: { imm: 7 } },
      { op: "inc", dst: { reg: "ecx" } }, { op: "dec", dst: { reg: "edx" } },
    ] as EncInsn[];
    const pairs = [[5, 5], [5, 6], [6, 5], [0xffffffff, 1], [1, 0xffffffff], [0x80000000, 0x80000000], [0, 0], [0x1ff, 0x2ff]];
    for (const p of producers) for (const q of consumers) for (const [a, b] of pairs) {
      const code = Uint8Array.from([...encode(p), ...encode(q), 0x9c, 0x5e]); // ...; pushfd; pop esi
      const regs = [a!, 0x10, 0x20, b!, 0, 0, 0];
      for (const cf of [0, 1]) {
        const single = setup(code, regs, cf, 0, "single"), jit = setup(code, regs, cf, 0, "jit");
        compareRuns(single, jit, [100], 1, () => `${disasm(code, true, CODE).join("; ")} eax=${a} ebx=${b} CF=${cf}`);
      }
    }
  });

  test("flags a producer leaves are exact at a later fault and at a stop after a store to code", () => {
    // Producers whose flags only those exits can see (the next flag writer comes first): the
    // liveness must keep them.
    const producers: EncInsn[] = [
      ...(["add", "sub", "cmp", "and", "xor", "or"] as const).map((op) => ({ op, dst: { reg: "eax" }, src: { reg: "ebx" } } as EncInsn)),
      { op: "cmp", dst: { reg: "al" }, src: { reg: "bl" } } as EncInsn, { op: "and", dst: { reg: "al" }, src: { imm: 0x81 } } as EncInsn,
      { op: "inc", dst: { reg: "eax" } } as EncInsn, { op: "dec", dst: { reg: "ebx" } } as EncInsn,
      // ECX, which the faulting load below writes, set before it: the fault keeps its value.
      { op: "add", dst: { reg: "ecx" }, src: { reg: "ebx" } } as EncInsn,
    ];
    // Rotates change CF and OF only: the exits apply them over the flags before (the CPU's, or
    // an ADD's or a SUB's still pending).
    for (const op of ["rol", "ror"] as const) for (const n of [1, 7, 31]) {
      const rot = { op, dst: { reg: "eax" }, src: { imm: n } } as EncInsn;
      producers.push(rot);
      for (const pre of ["add", "sub"] as const) producers.push({ op: "raw", bytes: [...encode({ op: pre, dst: { reg: "ecx" }, src: { reg: "ebx" } } as EncInsn), ...encode(rot)] } as EncInsn);
    }
    const over: EncInsn = { op: "xor", dst: { reg: "edx" }, src: { reg: "edx" } } as EncInsn; // the next flag writer
    for (const p of producers) for (const [a, b] of [[5, 5], [0xffffffff, 1], [0x80000000, 1], [0x7f, 0x80]]) for (const cf of [0, 1]) {
      const where = () => `${disasm(encode(p), true, CODE).join("; ")} eax=${a} ebx=${b} CF=${cf}`;
      // A load from a page that is not present: #PF, whose frame holds EFLAGS.
      const fault = Uint8Array.from([...encode(p), 0x8b, 0x0d, ...le32(0x300000), ...encode(over)]); // mov ecx, [0x300000]
      const [f1, f2] = [setup(fault, [a!, 0, 0, b!, 0, 0, 0], cf, 0, "single"), setup(fault, [a!, 0, 0, b!, 0, 0, 0], cf, 0, "jit")];
      for (const m of [f1, f2]) { m.paging(); m.w32(m.pte(0x300000), 0); }
      compareRuns(f1, f2, [100], 1, where);
      expect(f2.exception()?.vector).toBe(14);
      // A store over a later instruction of the block (the same byte): the block stops after it,
      // and the interpreter goes on to the faulting load.
      const smcAt = CODE + encode(p).length + 7;
      const smc = Uint8Array.from([...encode(p), 0xc6, 0x05, ...le32(smcAt), 0x90, 0x90, 0x8b, 0x0d, ...le32(0x300000), ...encode(over)]); // mov byte [nop], 0x90; nop; mov ecx, [0x300000]
      const [s1, s2] = [setup(smc, [a!, 0, 0, b!, 0, 0, 0], cf, 0, "single"), setup(smc, [a!, 0, 0, b!, 0, 0, 0], cf, 0, "jit")];
      for (const m of [s1, s2]) { m.paging(); m.w32(m.pte(0x300000), 0); }
      compareRuns(s1, s2, [100], 1, where);
      expect(s2.exception()?.vector).toBe(14);
    }
  });

  test("a block that reaches the threshold slowly is translated only after JIT_LUKEWARM rounds", () => {
    // mov esi, N ; outer: inc ebx ; call F ; dec esi ; jnz outer ; hlt, and on the next page
    // F: mov ecx, 300 ; l: dec ecx ; jnz l ; ret. The loop l is hot at once; the blocks run once
    // an iteration (about 600 instructions apart) reach 500 executions in about 300 K
    // instructions, past JIT_WINDOW, so they count again until their 40th slow round.
    const F = CODE + 0x1000;
    const prog = (n: number) => {
      const code = new Uint8Array(0x1000 + 9);
      code.set([0xbe, ...le32(n), 0x43, 0xe8, ...le32((F - (CODE + 11)) >>> 0), 0x4e, 0x75, 0xf7, 0xf4]);
      code.set([0xb9, ...le32(300), 0x49, 0x75, 0xfd, 0xc3], 0x1000);
      return code;
    };
    const run = (n: number, single: boolean) => {
      const m = programMachine(prog(n), [0, 0, 0, 0, 0, 0, 0], 0, 0, single ? { singleStep: true } : {});
      expect(m.cpu.run(1e9)).toBe(Stop.HALT);
      return m;
    };
    expect(JIT_WINDOW).toBeLessThan(300_000);
    const few = run(2000, false);
    expect(few.cpu.regs[3]).toBe(2000);
    expect(few.cpu.translated).toBe(1); // only the loop l
    const many = run(JIT_LUKEWARM * JIT_THRESHOLD + 2000, false);
    expect(many.cpu.translated).toBeGreaterThan(2);
    expect(Buffer.compare(many.state(), run(JIT_LUKEWARM * JIT_THRESHOLD + 2000, true).state())).toBe(0);
  });

  test("a long block that reaches the threshold slowly is translated at its first slow round", () => {
    // mov esi, N ; outer: mov edx, 300 ; d: dec edx ; jnz d ; call F ; dec esi ; jnz outer ;
    // hlt, and on the next page F: JIT_LONG_BLOCK x inc eax ; ret (one block). F runs once a
    // pass of about 640 instructions: its 500th execution comes past JIT_WINDOW.
    const F = CODE + 0x1000;
    const code = new Uint8Array(0x1000 + JIT_LONG_BLOCK + 1);
    code.set([0xbe, ...le32(600), 0xba, ...le32(300), 0x4a, 0x75, 0xfd,
      0xe8, ...le32((F - (CODE + 18)) >>> 0), 0x4e, 0x75, 0xf0, 0xf4]);
    code.fill(0x40, 0x1000, 0x1000 + JIT_LONG_BLOCK);
    code[0x1000 + JIT_LONG_BLOCK] = 0xc3;
    const run = (single: boolean) => {
      const m = programMachine(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, single ? { singleStep: true } : {});
      expect(m.cpu.run(1e9)).toBe(Stop.HALT);
      return m;
    };
    const m = run(false);
    expect(m.cpu.regs[0]).toBe(600 * JIT_LONG_BLOCK);
    const fb = (m.cpu as unknown as { blocks: Map<number, { fn: unknown; lukewarm: number; n: number }> }).blocks.get(F * 2 + 1)!;
    expect(fb.n).toBe(JIT_LONG_BLOCK + 1);
    expect(500 * 640).toBeGreaterThan(JIT_WINDOW);
    expect(fb.fn).not.toBeNull();
    expect(fb.lukewarm).toBe(0);
    expect(Buffer.compare(m.state(), run(true).state())).toBe(0);
  });

  test("a block that reaches the threshold slowly is translated at once when it is a member of a translated region", () => {
    // mov esi, N ; outer: mov edx, 300 ; d: dec edx ; jnz d ; call F ; call M ; dec esi ;
    // jnz outer ; hlt, and on the next page F: mov ecx, 7 ; l: dec ecx ; jnz l ; M: ret.
    // The loop l gets hot within JIT_WINDOW and its region takes in M (run after every pass of
    // l); the direct calls of M then bring M's own count to the threshold slowly (one a pass of
    // about 620 instructions), which entering l's function makes worth it anyway.
    const F = CODE + 0x1000, M = F + 8;
    const code = new Uint8Array(0x1000 + 9);
    code.set([0xbe, ...le32(600), 0xba, ...le32(300), 0x4a, 0x75, 0xfd,
      0xe8, ...le32((F - (CODE + 18)) >>> 0), 0xe8, ...le32((M - (CODE + 23)) >>> 0), 0x4e, 0x75, 0xeb, 0xf4]);
    code.set([0xb9, ...le32(7), 0x49, 0x75, 0xfd, 0xc3], 0x1000);
    const run = (single: boolean) => {
      const m = programMachine(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, single ? { singleStep: true } : {});
      expect(m.cpu.run(1e9)).toBe(Stop.HALT);
      return m;
    };
    const m = run(false);
    const blocks = (m.cpu as unknown as { blocks: Map<number, { fn: unknown; lukewarm: number; rDelta: number }> }).blocks;
    const mb = blocks.get(M * 2 + 1)!;
    // Its count reached the threshold more than JIT_WINDOW instructions after it started.
    expect(600 * 620).toBeGreaterThan(JIT_WINDOW);
    expect(mb.fn).not.toBeNull();
    expect(mb.fn).toBe(blocks.get((F + 5) * 2 + 1)!.fn);
    expect(mb.lukewarm).toBeLessThan(JIT_LUKEWARM);
    expect(Buffer.compare(m.state(), run(true).state())).toBe(0);
  });

  test("a translated block whose runs from the run loop are short is interpreted from then on", () => {
    // mov esi, 400 ; outer: mov ecx, 200 ; mov edi, DATA ; rep stosb ; mov edx, 10 ;
    // inner: call F ; dec edx ; jnz inner ; call F ; dec esi ; jnz outer ; hlt, and
    // F: inc eax ; ret. The inner loop makes F hot, and then runs it inside its own region.
    // The second call of F comes once a pass of about 250 instructions (its block and the one
    // after it stay interpreted): each of those runs of F's translated code retires two
    // instructions before it leaves for the interpreter again.
    const F = CODE + 0x100;
    const code = new Uint8Array(0x102);
    code.set([0xbe, ...le32(400), 0xb9, ...le32(200), 0xbf, ...le32(DATA), 0xf3, 0xaa, 0xba, ...le32(10),
      0xe8, ...le32((F - (CODE + 27)) >>> 0), 0x4a, 0x75, 0xf8,
      0xe8, ...le32((F - (CODE + 35)) >>> 0), 0x4e, 0x75, 0xdf, 0xf4]);
    code.set([0x40, 0xc3], 0x100);
    const run = (single: boolean) => {
      const m = programMachine(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, single ? { singleStep: true } : {});
      // Count the run loop's entries into translated code at F.
      const cpu = m.cpu as unknown as { runTranslated: (b: { phys: number }, t: number) => number };
      const rt = cpu.runTranslated.bind(m.cpu);
      let atF = 0;
      cpu.runTranslated = (b, t) => { if (b.phys === F) atF++; return rt(b, t); };
      expect(m.cpu.run(1e9)).toBe(Stop.HALT);
      return { m, atF };
    };
    const { m, atF } = run(false);
    expect(m.cpu.regs[0]).toBe(400 * 11);
    const fb = (m.cpu as unknown as { blocks: Map<number, { fn: unknown }> }).blocks.get(F * 2 + 1)!;
    expect(fb.fn).not.toBeNull();
    // Without the rule the run loop enters F's translated code about 750 times; with it, for
    // the first few passes after F is translated only.
    expect(atF).toBeGreaterThan(0);
    expect(atF).toBeLessThan(60);
    expect(Buffer.compare(m.state(), run(true).m.state())).toBe(0);
  });

  test("a shift by CL = 0 keeps the flags of the INC before it for the branch after it", () => {
    // xor ecx, ecx ; mov eax, 0x7fffffff ; inc eax ; <shift> eax, cl ; jo +1 ; inc ebx ; hlt.
    // The INC overflows (OF=1) and a shift by 0 changes no flag, so JO is taken: EBX stays 0.
    // The shifts: SAR, SHRD eax, edx, cl and SHLD eax, edx, cl.
    for (const shift of [[0xd3, 0xf8], [0x0f, 0xad, 0xd0], [0x0f, 0xa5, 0xd0]]) {
      const code = [0x31, 0xc9, 0xb8, 0xff, 0xff, 0xff, 0x7f, 0x40, ...shift, 0x70, 0x01, 0x43];
      for (const jitThreshold of [1, 1000]) {
        const m = programMachine(new Uint8Array(code), [0, 0, 0, 0, 0, 0, 0], 0, 0, { jitThreshold });
        expect(m.cpu.run(100)).toBe(Stop.HALT);
        expect({ shift, ebx: m.cpu.regs[3], of: m.cpu.getFlags() & 0x800 }).toEqual({ shift, ebx: 0, of: 0x800 });
      }
    }
  });

  test("translated rotates, MUL/IMUL and 16-bit shifts leave the interpreter's flags", () => {
    // For each form: set the flags from a CMP, run it, then PUSHF; POP ECX. The single-step
    // interpreter (whose flags the native difftest checks against the host) is the reference.
    const forms: number[][] = [];
    for (const n of [1, 2, 7, 16, 30, 31]) {
      forms.push([0xc1, 0xc0, n], [0xc1, 0xc8, n]); // rol eax, n ; ror eax, n
      forms.push([0x66, 0xc1, 0xe0, n], [0x66, 0xc1, 0xe8, n], [0x66, 0xc1, 0xf8, n]); // shl/shr/sar ax, n
    }
    forms.push([0xd1, 0xc0], [0xd1, 0xc8], [0xf7, 0xe3], [0xf7, 0xeb], [0x6b, 0xc3, 0x7f], [0x0f, 0xaf, 0xc3]); // rol/ror eax,1; mul/imul ebx; imul eax,ebx,127; imul eax,ebx
    for (const f of forms) {
      for (const [v, w] of [[0x80000001, 3], [0x7fffffff, 0x7fffffff], [0xc0000000, 0xffffffff], [1, 0], [0x8001, 0x10000]]) {
        // cmp edx, esi (edx = 1, esi = 2: CF SF AF set) ; form ; pushf ; pop ecx
        const code = [0x39, 0xf2, ...f, 0x9c, 0x59];
        const run = (single: boolean) => {
          const m = programMachine(new Uint8Array(code), [v!, 0, 1, w!, 2, 0, 0], 0, 0, single ? { singleStep: true } : { jitThreshold: 1 });
          expect(m.cpu.run(100)).toBe(Stop.HALT);
          return [m.cpu.regs[0], m.cpu.regs[1], m.cpu.regs[2]];
        };
        expect({ f, v, r: run(false) }).toEqual({ f, v, r: run(true) });
      }
    }
  });

  test("a polling loop's passes are skipped only while the bus calls its port reads stable", () => {
    // mov edx, 0x300 ; l: in al, dx ; test al, 0x20 ; jnz l ; hlt. The port reads 0x20 until
    // read number `until` (a device event the loop waits for), then 0.
    const code = [0xba, 0x00, 0x03, 0, 0, 0xec, 0xa8, 0x20, 0x75, 0xfb, 0xf4];
    const run = (stable: boolean, mode: { singleStep?: boolean; jitThreshold?: number; noSpinSkip?: boolean }, until: number) => {
      const m = new TestMachine(2 << 20);
      m.flat(0, CODE);
      m.write(CODE, code);
      let reads = 0;
      const bus = m.cpu.bus as { ioRead: (p: number, s: 1 | 2 | 4) => number; ioReadStable?: (p: number, s: 1 | 2 | 4) => boolean };
      bus.ioRead = () => (++reads < until ? 0x20 : 0);
      bus.ioReadStable = () => stable;
      m.cpu.singleStep = mode.singleStep ?? false;
      m.cpu.jitThreshold = mode.jitThreshold ?? 1;
      m.cpu.noSpinSkip = mode.noSpinSkip ?? false;
      m.cpu.flushBlocks();
      const stops: number[] = [];
      for (let k = 0; k < 40 && m.cpu.run(977) !== Stop.HALT; k++) stops.push(m.cpu.icount);
      return { icount: m.cpu.icount, eip: m.cpu.eip, eax: m.cpu.regs[EAX], reads, stops, skipped: m.cpu.spinSkipped };
    };
    // Reads with side effects (the bus says unstable): every pass runs, every read happens.
    const ref = run(false, { singleStep: true }, 5000);
    expect(ref.reads).toBe(5000);
    expect(ref.icount).toBe(1 + 3 * 5000 + 1);
    for (const thr of [1, 3]) {
      const u = run(false, { jitThreshold: thr }, 5000);
      expect(u).toEqual({ ...ref, skipped: 0 });
    }
    // Stable reads (the value never changes, as the contract requires): the same state at
    // every stop, with passes retired without reading.
    const sRef = run(true, { singleStep: true }, Infinity), sOff = run(true, { noSpinSkip: true }, Infinity), sOn = run(true, {}, Infinity);
    expect(sRef.stops.length).toBe(40);
    expect(sOff).toEqual({ ...sRef, skipped: 0 });
    expect({ ...sOn, reads: 0, skipped: 0 }).toEqual({ ...sRef, reads: 0, skipped: 0 });
    expect(sOn.skipped).toBeGreaterThan(0);
    expect(sOn.reads).toBeLessThan(sRef.reads);
  });

  test("a loop gets the polling check only if one of its passes can be store-free", () => {
    // Loops reading port 0x300 (bit 5 set: go on; the 2000th read says stop; bit 0 set on
    // every other read) ending in HLT:
    // - every pass stores (mov [DATA], eax), so no pass can be skipped: no check;
    // - a pass stores only when bit 0 is set: the other path can spin: checked;
    // - no stores: checked;
    // - no stores, but EBX goes up by one (or by 4 through LEA, or ECX by one through EBX)
    //   every pass: it never comes back to where it began: no check;
    // - no stores, EBX up by one and down again, or up on one path only: checked.
    // (No INC or DEC: a loop with them gets no check anyway, spinSafe leaves them out.)
    const D = le32(DATA);
    const loops: [string, number[], boolean][] = [
      ["store every pass", [0xba, 0x00, 0x03, 0, 0, 0xec, 0xa3, ...D, 0xa8, 0x20, 0x75, 0xf6, 0xf4], false],
      ["store on one path", [0xba, 0x00, 0x03, 0, 0, 0xec, 0xa8, 0x01, 0x74, 0x05, 0xa3, ...D, 0xa8, 0x20, 0x75, 0xf2, 0xf4], true],
      ["no store", [0xba, 0x00, 0x03, 0, 0, 0xec, 0xa8, 0x20, 0x75, 0xfb, 0xf4], true],
      ["add ebx, 1", [0xba, 0x00, 0x03, 0, 0, 0xec, 0x83, 0xc3, 0x01, 0xa8, 0x20, 0x75, 0xf8, 0xf4], false],
      ["lea ebx, [ebx+4]", [0xba, 0x00, 0x03, 0, 0, 0xec, 0x8d, 0x5b, 0x04, 0xa8, 0x20, 0x75, 0xf8, 0xf4], false],
      ["mov ebx, ecx; lea ecx, [ebx+1]", [0xba, 0x00, 0x03, 0, 0, 0xec, 0x89, 0xcb, 0x8d, 0x4b, 0x01, 0xa8, 0x20, 0x75, 0xf6, 0xf4], false],
      ["add ebx, 1; sub ebx, 1", [0xba, 0x00, 0x03, 0, 0, 0xec, 0x83, 0xc3, 0x01, 0x83, 0xeb, 0x01, 0xa8, 0x20, 0x75, 0xf5, 0xf4], true],
      ["add ebx, 1 on one path", [0xba, 0x00, 0x03, 0, 0, 0xec, 0xa8, 0x01, 0x74, 0x03, 0x83, 0xc3, 0x01, 0xa8, 0x20, 0x75, 0xf4, 0xf4], true],
    ];
    for (const [name, code, checked] of loops) {
      const m = new TestMachine(2 << 20);
      m.flat(0, CODE);
      m.write(CODE, code);
      let reads = 0;
      const bus = m.cpu.bus as { ioRead: (p: number, s: 1 | 2 | 4) => number };
      bus.ioRead = () => (++reads < 2000 ? 0x20 | (reads & 1) : 0);
      m.cpu.jitThreshold = 3;
      m.cpu.flushBlocks();
      expect(m.cpu.run(1e6)).toBe(Stop.HALT);
      expect({ name, eax: m.cpu.regs[EAX]! & 0xff, reads }).toEqual({ name, eax: 0, reads: 2000 });
      const fns = [...(m.cpu as unknown as { blocks: Map<number, { fn: unknown }> }).blocks.values()].map((b) => String(b.fn));
      expect({ name, regions: fns.filter((s) => s.includes("R: for")).length }).toEqual({ name, regions: 1 });
      expect({ name, checked: fns.some((s) => s.includes("--qt === 0")) }).toEqual({ name, checked });
    }
  });

  test("a breakpoint on a translated self-looping block stops every iteration", () => {
    // mov ecx, 1000 ; xor eax, eax ; l: add eax, ecx ; dec ecx ; jnz l ; hlt
    const code = [0xb9, 0xe8, 0x03, 0, 0, 0x31, 0xc0, 0x01, 0xc8, 0x49, 0x75, 0xfb, 0xf4];
    const m = new TestMachine(2 << 20);
    m.flat(0, CODE);
    m.write(CODE, code);
    m.cpu.jitThreshold = 1;
    m.cpu.flushBlocks();
    expect(m.cpu.run(2 + 3 * 10)).toBe(Stop.BUDGET); // loop translated and running
    m.cpu.setBreakpoints([CODE + 7]);
    m.cpu.jitThreshold = 1;
    for (let k = 0; k < 5; k++) {
      const at = m.cpu.icount;
      expect(m.cpu.run(1e6, CODE + 7)).toBe(Stop.BREAKPOINT);
      expect(m.cpu.eip).toBe(CODE + 7);
      expect(m.cpu.icount - at).toBe(3); // one iteration per continue
    }
  });

  test("a read watchpoint inside a hot translated loop stops after the reading instruction", () => {
    // mov ecx, 100 ; l: mov eax, [DATA] ; dec ecx ; jnz l ; hlt
    const code = [0xb9, 100, 0, 0, 0, 0x8b, 0x05, ...[DATA & 0xff, (DATA >>> 8) & 0xff, (DATA >>> 16) & 0xff, DATA >>> 24], 0x49, 0x75, 0xf7, 0xf4];
    const m = new TestMachine(2 << 20);
    m.flat(0, CODE);
    m.write(CODE, code);
    m.cpu.jitThreshold = 1;
    m.cpu.flushBlocks();
    expect(m.cpu.run(1 + 3 * 5)).toBe(Stop.BUDGET);
    m.cpu.setWatchpoints([{ type: 3, addr: DATA, len: 4 }]);
    const at = m.cpu.icount;
    expect(m.cpu.run(1e6)).toBe(Stop.WATCH);
    expect(m.cpu.icount - at).toBe(1); // stopped right after the next load
    expect(m.cpu.eip).toBe(CODE + 11);
  });

  test("translated code built under a flat data segment runs as the interpreter once it is not", () => {
    // mov ecx, 100 ; l: mov eax, [DATA] ; dec ecx ; jnz l ; hlt. The loop's accesses take the
    // inline path with DS checked once on entry; then DS gets a limit below DATA (selector 0x30).
    const code = [0xb9, 100, 0, 0, 0, 0x8b, 0x05, ...[DATA & 0xff, (DATA >>> 8) & 0xff, (DATA >>> 16) & 0xff, DATA >>> 24], 0x49, 0x75, 0xf7, 0xf4];
    const run = (interp: boolean) => {
      const m = new TestMachine(2 << 20);
      m.flat(0, CODE);
      m.write(CODE, code);
      m.cpu.noJit = interp;
      m.cpu.jitThreshold = 1;
      m.cpu.flushBlocks();
      expect(m.cpu.run(1 + 3 * 5)).toBe(Stop.BUDGET);
      expect(m.cpu.translated > 0).toBe(!interp);
      m.gdt(0x30, descriptor(0, DATA - 1, 0x92, 0x4));
      m.loadSeg(DS, 0x30);
      const stop = m.cpu.run(1000);
      return { stop, icount: m.cpu.icount, exc: m.exception(), ecx: m.cpu.regs[1] };
    };
    const j = run(false), i = run(true);
    expect(i.exc?.vector).toBe(13);
    expect(i.exc?.eip).toBe(CODE + 5);
    expect(j).toEqual(i);
    // Still a fast segment (4 GiB limit) but based at 0x1000: the loop reads DATA + 0x1000.
    const based = (interp: boolean) => {
      const m = new TestMachine(2 << 20);
      m.flat(0, CODE);
      m.write(CODE, code);
      m.w32(DATA, 0x11111111); m.w32(DATA + 0x1000, 0x22222222);
      m.cpu.noJit = interp;
      m.cpu.jitThreshold = 1;
      m.cpu.flushBlocks();
      expect(m.cpu.run(1 + 3 * 5)).toBe(Stop.BUDGET);
      expect(m.cpu.regs[EAX]).toBe(0x11111111);
      m.gdt(0x30, descriptor(0x1000, 0xfffff, 0x92, 0xc));
      m.loadSeg(DS, 0x30);
      const stop = m.cpu.run(30);
      return { stop, icount: m.cpu.icount, eax: m.cpu.regs[EAX], ecx: m.cpu.regs[1] };
    };
    expect(based(true).eax).toBe(0x22222222);
    expect(based(false)).toEqual(based(true));
  });

  test("IN and RDTSC that fault inside a translated loop leave the interpreter's state", () => {
    // At CPL 3: l: inc ebx ; in al, 0x60 ; rdtsc ; dec ecx ; jnz l ; hlt. After a few passes
    // (translated, flags of the INC pending) the port is denied in the TSS bitmap, or CR4.TSD
    // is set: #GP(0) at the IN or the RDTSC, with the registers and EFLAGS as interpreted.
    const code = [0x43, 0xe4, 0x60, 0x0f, 0x31, 0x49, 0x75, 0xf8, 0xf4];
    for (const deny of ["port", "tsd"] as const) {
      const run = (interp: boolean) => {
        const m = new TestMachine(2 << 20);
        m.flat(3, CODE);
        m.write(CODE, code);
        m.cpu.regs[1] = 1000; m.cpu.regs[3] = 0x7fffffff - 5;
        m.cpu.noJit = interp;
        m.cpu.jitThreshold = 1;
        m.cpu.flushBlocks();
        expect(m.cpu.run(5 * 5)).toBe(Stop.BUDGET);
        expect(m.cpu.translated > 0).toBe(!interp);
        if (deny === "port") m.w8(TSS + 0x68 + (0x60 >> 3), 1 << (0x60 & 7));
        else m.cpu.cr4 |= 4;
        const stop = m.cpu.run(1000);
        return { stop, icount: m.cpu.icount, exc: m.exception(), regs: [...m.cpu.regs] };
      };
      const j = run(false), i = run(true);
      expect(i.exc).toMatchObject({ vector: 13, err: 0, eip: deny === "port" ? CODE + 1 : CODE + 3 });
      expect(i.exc!.eflags & 0x800).toBe(0x800); // the INC's OF: EBX went past 0x7fffffff
      expect(j).toEqual(i);
    }
  });

  test("16-bit code is not translated", () => {
    const m = new TestMachine(2 << 20);
    m.flat(0, CODE);
    m.cpu.code32 = false;
    const blk = { insns: [], n: 0, phys: 0, physEnd: 0, code32: false, phys2: -1, valid: true, fn: null, jitOff: null, jitIdx: null, region: false, jitEntry: 0, rHead: null, rDelta: 0, xPage: -1, rMembers: null, s1: null, s1Eip: -1, s2: null, s2Eip: -1, sEpoch: -1, hotFrom: 0, lukewarm: 0, rtRuns: 0, rtInsns: 0, head: 1 };
    expect(compileBlock(m.cpu, blk)).toBeNull();
  });
});
