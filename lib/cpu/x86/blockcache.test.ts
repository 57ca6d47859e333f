/**
 * Property: the block cache is invisible. Random programs (including self-modifying writes
 * into already-executed code and into the very next instruction of the same block) run with
 * the block cache and with singleStep = true, stopped after random instruction counts
 * (run(k) chunks, so that stops fall inside blocks), give identical CPU state (save() bytes)
 * and RAM at every stop.
 *
 * RRX_PROPERTY_RUNS sets the number of programs (default 100).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { arbProgram } from "../../../test/support/x86-encoder.ts";
import { Stop } from "./cpu.ts";
import { EAX, ECX, EDX, EBX, EBP, ESI, EDI } from "./cpu.ts";
import { TestMachine, CODE, DATA, programMachine, compareRuns } from "../../../test/cpu/machine.ts";
import { disasm } from "./disasm.ts";

const RUNS = Number(process.env.RRX_PROPERTY_RUNS ?? 100);
const DATA_SIZE = 0x1000, STACK_TOP = DATA + 0x800;

function setup(code: Uint8Array, regs: number[], flags: number, cpl: 0 | 3, single: boolean, jitThreshold?: number): TestMachine {
  return programMachine(code, regs, flags, cpl, { singleStep: single, jitThreshold });
}

describe("block cache equals single step", () => {
  for (const jit of [0, 1]) test(`random programs with self-modifying code, stopped at random counts (${RUNS} runs)${jit ? ", every block translated" : ""}`, () => {
    fc.assert(
      fc.property(
        arbProgram({ codeBase: CODE, dataBase: DATA, dataSize: DATA_SIZE, stackTop: STACK_TOP, selfModify: true, unguardedDiv: true, maxItems: 40 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 7, maxLength: 7 }),
        fc.integer({ min: 0, max: 0xfff }).map((f) => f & 0xcd5),
        fc.constantFrom<0 | 3>(0, 3),
        // Larger chunks with the translator, so whole blocks run translated.
        fc.array(fc.integer({ min: 1, max: jit ? 200 : 40 }), { minLength: 1, maxLength: 60 }),
        (prog, regs, flags, cpl, chunks) => {
          const a = setup(prog.code, regs, flags, cpl, false, jit);
          const b = setup(prog.code, regs, flags, cpl, true);
          compareRuns(a, b, chunks, 400, () => disasm(prog.code, true, CODE).join("\n"));
          expect(a.cpu.icount).toBeGreaterThan(0);
        },
      ),
      { numRuns: RUNS },
    );
  }, Math.max(60_000, RUNS * 200));

  test("a write into the next instruction of the same block takes effect", () => {
    // mov dword [next+1], 0x11223344 ; mov eax, 0 ; hlt
    const m = new TestMachine(2 << 20);
    m.flat(0, CODE);
    const code = [0xc7, 0x05, ...le32(CODE + 11), 0x44, 0x33, 0x22, 0x11, 0xb8, 0, 0, 0, 0, 0xf4];
    m.write(CODE, code);
    m.cpu.flushBlocks();
    expect(m.cpu.run(10)).toBe(Stop.HALT);
    expect(m.cpu.regs[EAX]).toBe(0x11223344);
    expect(m.cpu.icount).toBe(3);
  });

  test("code patched after many data writes to its page (which miss it) takes effect", () => {
    // f and data on one page. Twice: call f; 200 writes to the data; f's immediate patched to
    // ++esi. The second round builds no block, so the patch comes after writes that missed
    // every block of the page (and built its coverage); the last call must return 2.
    const F = CODE + 0x40, VAR = CODE + 0x800;
    const prog: number[] = [];
    const at = () => CODE + prog.length;
    const call = () => { const next = at() + 5; prog.push(0xe8, ...le32((F - next) >>> 0)); };
    const jnz = (to: number) => prog.push(0x75, (to - (at() + 2)) & 0xff);
    prog.push(0xbb, ...le32(2)); // mov ebx, 2
    const outer = at();
    call(); // outer: call f
    prog.push(0xb9, ...le32(200)); // mov ecx, 200
    const l1 = at();
    prog.push(0x89, 0x0d, ...le32(VAR), 0x49); // l1: mov [VAR], ecx ; dec ecx
    jnz(l1);
    prog.push(0x46, 0x89, 0x35, ...le32(F + 1), 0x4b); // inc esi ; mov [f+1], esi ; dec ebx
    jnz(outer);
    call();
    prog.push(0xf4); // hlt
    expect(at()).toBeLessThan(F);
    const code = new Uint8Array(F - CODE + 6);
    code.set(prog);
    code.set([0xb8, 5, 0, 0, 0, 0xc3], F - CODE); // f: mov eax, 5 ; ret
    for (const mode of [{ jitThreshold: 1 }, { jitThreshold: 3 }, { jitThreshold: 500 }, { singleStep: true }]) {
      const m = programMachine(code, [0, 0, 0, 0, 0, 0, 0], 0, 0, mode);
      expect(m.cpu.run(1e5)).toBe(Stop.HALT);
      expect({ mode, eax: m.cpu.regs[EAX] }).toEqual({ mode, eax: 2 });
      expect(m.mem.ram[VAR]).toBe(1);
    }
  });
});

describe("interpreter inline register forms", () => {
  // The interpreter runs the common register forms inline on int32 values, decides conditions (cond())
  // straight from the lazy operands after CMP/SUB/logic, and skips the lazy-flag update of an
  // ADD/SUB/logic register form when the next instruction in the block overwrites all flags
  // (markDeadFlags). Sequences of those forms mixed with flag readers (ADC/SBB, INC/DEC keeping
  // CF, LAHF, SETcc, Jcc over one instruction), stopped after random counts so that stops fall
  // between any two of them, must equal single step.
  const R = [0, 1, 2, 3, 5, 6, 7];
  const reg = fc.constantFrom(...R), op = fc.integer({ min: 0, max: 7 });
  const insn = fc.oneof(
    fc.tuple(op, reg, reg).map(([o, d, s]) => [(o << 3) | 1, 0xc0 | (s << 3) | d]),
    fc.tuple(op, reg, fc.integer({ min: 0, max: 255 })).map(([o, d, i]) => [0x83, 0xc0 | (o << 3) | d, i]),
    fc.tuple(op, reg, fc.integer({ min: 0, max: 0xffffffff })).map(([o, d, i]) => [0x81, 0xc0 | (o << 3) | d, ...le32(i)]),
    fc.tuple(reg, reg).map(([d, s]) => [0x85, 0xc0 | (s << 3) | d]),
    reg.map((d) => [0x40 | d]),
    reg.map((d) => [0x48 | d]),
    fc.constant([0x9f]),
    fc.tuple(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 1, max: 3 })).map(([cc, r]) => [0x0f, 0x90 | cc, 0xc0 | r]),
  );
  // The other register forms the interpreter runs inline: shifts and rotates (imm8, 1, CL),
  // MOVZX/MOVSX (byte registers include AH..BH), LEA with base, index and scale.
  const shiftOp = fc.constantFrom(0, 1, 2, 3, 4, 5, 7);
  const more = fc.oneof(
    fc.tuple(shiftOp, reg, fc.integer({ min: 0, max: 40 })).map(([o, d, i]) => [0xc1, 0xc0 | (o << 3) | d, i]),
    fc.tuple(shiftOp, reg).map(([o, d]) => [0xd1, 0xc0 | (o << 3) | d]),
    fc.tuple(shiftOp, reg).map(([o, d]) => [0xd3, 0xc0 | (o << 3) | d]),
    fc.tuple(fc.constantFrom(0xb6, 0xb7, 0xbe, 0xbf), reg, fc.integer({ min: 0, max: 7 })).map(([o, d, s]) => [0x0f, o, 0xc0 | (d << 3) | s]),
    fc.tuple(reg, reg, reg, fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 255 }))
      .map(([d, b, x, sc, disp]) => [0x8d, 0x44 | (d << 3), (sc << 6) | (x << 3) | b, disp]),
  );
  // A conditional jump over the next instruction: both paths are visible in the state.
  const jcc = fc.tuple(fc.integer({ min: 0, max: 15 }), fc.oneof(insn, more)).map(([cc, next]) => [0x70 | cc, next.length, ...next]);
  // Compare (or SUB/TEST/AND/XOR/OR), often of a register with itself, then a conditional jump:
  // the equal and zero cases of every condition.
  const cmpJcc = fc.tuple(fc.constantFrom(0x39, 0x29, 0x85, 0x21, 0x31, 0x09), reg, reg, fc.boolean(), fc.integer({ min: 0, max: 15 }), insn)
    .map(([o, d, s, same, cc, next]) => [o, 0xc0 | ((same ? d : s) << 3) | d, 0x70 | cc, next.length, ...next]);
  const any = fc.oneof({ arbitrary: insn, weight: 4 }, { arbitrary: more, weight: 3 }, { arbitrary: jcc, weight: 2 }, { arbitrary: cmpJcc, weight: 2 });
  for (const jit of [0, 1]) test(`register-form sequences with flag readers and branches, stopped at random counts${jit ? ", translated" : ""} (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(
        fc.array(any, { minLength: 2, maxLength: 80 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 7, maxLength: 7 }),
        fc.integer({ min: 0, max: 0xfff }).map((f) => f & 0xcd5),
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 20 }),
        (seq, regs, flags, chunks) => {
          const code = new Uint8Array(seq.flat());
          const a = setup(code, regs, flags, 0, false, jit ? 1 : undefined);
          const b = setup(code, regs, flags, 0, true);
          compareRuns(a, b, chunks, 200, () => disasm(code, true, CODE).join("\n"));
          expect(a.cpu.eip).toBe(CODE + code.length + 1); // past the final HLT
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe("blocks that cross a page", () => {
  // A loop through an instruction that crosses from linear page 0x30000 into 0x31000, whose
  // blocks are linked to each other. Linear 0x31000 is remapped between physical 0x31000 and
  // 0x50000 (different immediate bytes and a different loop tail). A PTE change takes effect
  // like on a TLB: after INVLPG or a CR3 write. Block cache and single step must agree at
  // every stop, and the remap must show.
  function build(single: boolean): TestMachine {
    const m = new TestMachine(8 << 20);
    m.flat(0, 0x30000);
    m.paging();
    // 0x30000: mov ecx, 1000000 ; jmp 0x30ffd
    m.write(0x30000, [0xb9, ...le32(1000000), 0xe9, ...le32(0x30ffd - 0x3000a)]);
    // 0x30ffd: mov edx, imm32 (bytes 2-3 of the immediate in the next page)
    m.write(0x30ffd, [0xba, 0x34, 0x12]);
    // physical 0x31000: 78 56 | add eax, edx | dec ecx | jnz 0x30ffd | hlt
    m.write(0x31000, [0x78, 0x56, 0x01, 0xd0, 0x49, 0x75, 0xf6, 0xf4]);
    // physical 0x50000: bc 9a | add eax, edx | inc esi | dec ecx | jnz 0x30ffd | hlt
    m.write(0x50000, [0xbc, 0x9a, 0x01, 0xd0, 0x46, 0x49, 0x75, 0xf5, 0xf4]);
    // 0x100 into either page: jmp 0x30ffd (a block not decoded before the remap)
    for (const a of [0x31100, 0x50100]) m.write(a, [0xe9, ...le32(0x30ffd - 0x31105)]);
    m.cpu.singleStep = single;
    m.cpu.flushBlocks();
    return m;
  }
  test("a remap of the second page takes effect after INVLPG or a CR3 write, in both modes", () => {
    const a = build(false), b = build(true);
    const both = (f: (m: TestMachine) => void) => { f(a); f(b); };
    const step = (n: number) => compareRuns(a, b, [7, 13, 1, 29], n, () => "page-crossing loop");
    step(400);
    expect(a.cpu.regs[EDX]).toBe(0x56781234);
    expect(a.cpu.regs[ESI]).toBe(0);
    // The PTE changes; the TLB still holds the old mapping.
    both((m) => m.w32(m.pte(0x31000), 0x50000 | 7));
    step(400);
    expect(a.cpu.regs[ESI]).toBe(0);
    both((m) => m.cpu.invlpg(0x31000));
    step(400);
    expect(a.cpu.regs[EDX]).toBe(0x9abc1234);
    expect(a.cpu.regs[ESI]).toBeGreaterThan(100);
    // Back, with a CR3 write; then remap again and reach the page through a block decoded
    // only now (its fetch walks the page tables and finds the new mapping).
    both((m) => { m.w32(m.pte(0x31000), 0x31000 | 7); m.cpu.writeCr(3, m.cpu.cr3); });
    const esi = a.cpu.regs[ESI]!;
    step(400);
    expect(a.cpu.regs[EDX]).toBe(0x56781234);
    expect(a.cpu.regs[ESI]).toBe(esi);
    both((m) => { m.w32(m.pte(0x31000), 0x50000 | 7); m.cpu.eip = 0x31100; });
    step(400);
    expect(a.cpu.icount).toBe(b.cpu.icount);
  });
});

describe("interpreter record store", () => {
  test("code rewritten thousands of times (store compaction) still equals single step", () => {
    // mov ecx, 6000 ; l: mov [CODE+12], ecx ; mov eax, imm32 (patched) ; add ebx, eax ; dec ecx ; jnz l
    // Every iteration invalidates its own block and builds two new ones, so the record store
    // fills with dead blocks and is compacted many times over.
    const code = [0xb9, ...le32(6000), 0x89, 0x0d, ...le32(CODE + 12), 0xb8, 0, 0, 0, 0, 0x01, 0xc3, 0x49, 0x75, 0xf0];
    for (const jit of [undefined, 1]) {
      const a = programMachine(Uint8Array.from(code), [0, 0, 0, 0, 0, 0, 0], 0, 0, { singleStep: false, jitThreshold: jit });
      const b = programMachine(Uint8Array.from(code), [0, 0, 0, 0, 0, 0, 0], 0, 0, { singleStep: true });
      compareRuns(a, b, [997, 5000, 1, 3], 40, () => "self-patching loop");
      expect(a.cpu.run(1e6)).toBe(Stop.HALT);
      expect(b.cpu.run(1e6)).toBe(Stop.HALT);
      expect(a.cpu.icount).toBe(b.cpu.icount);
      expect(a.cpu.regs[EBX]).toBe(b.cpu.regs[EBX]);
      expect(a.cpu.blocksBuilt).toBeGreaterThan(10000);
    }
  });
});

function le32(v: number): number[] { return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff]; }

describe("code above 2 GiB (a kernel at 0xC0000000, user code at 0xB7...)", () => {
  // The linear page of 0xC0010000 maps CODE (the PDE for 0xC0000000 shares the identity page
  // table), so the block's page end is 0xC0011000: a block of three instructions that ends
  // well before it neither looks at the next page nor stops after its first instruction.
  function high(nextPresent: boolean): TestMachine {
    const m = new TestMachine();
    m.flat(0, 0xc0010000);
    m.paging();
    m.w32(0x100000 + (0xc0000000 >>> 22) * 4, m.r32(0x100000) | 7);
    if (!nextPresent) m.w32(m.pte(CODE + 0x1000), 0);
    m.cpu.flushTlb();
    m.code(CODE, [{ op: "nop" }, { op: "nop" }, { op: "hlt" }]);
    return m;
  }

  test("a block that ends before the page end does not touch the next, absent page", () => {
    const m = high(false);
    expect(m.cpu.run(10)).toBe(Stop.HALT);
    expect(m.exception()).toBe(null);
    expect(m.cpu.eip).toBe(0xc0010003);
  });

  test("its instructions form one block", () => {
    const m = high(true);
    const before = m.cpu.blocksBuilt;
    expect(m.cpu.run(10)).toBe(Stop.HALT);
    expect(m.cpu.blocksBuilt - before).toBe(1);
  });
});

describe("interrupt shadow", () => {
  test("after STI with an interrupt pending, it is taken after one instruction even when the block is linked onward", () => {
    // L0: cli; sti | L1: mov eax,1; mov ebx,2; mov ecx,3; jmp L0. The first passes (no
    // interrupt) run L1 in the shadow one instruction at a time, which links L1 to a block at
    // L1+5; with IRQ pending the shadow must still end after `mov eax, 1`.
    const m = new TestMachine();
    m.flat(0);
    const L1 = CODE + 2;
    m.code(CODE, [{ op: "cli" }, { op: "sti" }, { op: "mov", dst: { reg: "eax" }, src: { imm: 1 } }, { op: "mov", dst: { reg: "ebx" }, src: { imm: 2 } },
      { op: "mov", dst: { reg: "ecx" }, src: { imm: 3 } }, { op: "raw", bytes: [0xeb, 0x100 - (2 + 15 + 2)] }]);
    for (let pass = 0; pass < 3; pass++) expect(m.cpu.run(6)).toBe(Stop.BUDGET);
    expect(m.cpu.eip).toBe(CODE);
    m.cpu.run(1); // cli
    m.cpu.intrLine = true;
    expect(m.cpu.run(100)).toBe(Stop.HALT); // the handler's HLT
    const e = m.exception()!;
    expect(e.vector).toBe(0x20);
    expect(e.eip).toBe(L1 + 5);
  });
});
