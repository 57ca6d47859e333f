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
import { arbProgram } from "./encoder.ts";
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
