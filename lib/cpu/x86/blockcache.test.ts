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
import { TestMachine, CODE, DATA } from "../../../test/cpu/machine.ts";
import { disasm } from "./disasm.ts";

const RUNS = Number(process.env.RRX_PROPERTY_RUNS ?? 100);
const DATA_SIZE = 0x1000, STACK_TOP = DATA + 0x800;

function setup(code: Uint8Array, regs: number[], flags: number, cpl: 0 | 3, single: boolean, jit = 0): TestMachine {
  const m = new TestMachine(2 << 20);
  m.flat(cpl, CODE);
  m.write(CODE, code);
  m.w8(CODE + code.length, 0xf4); // HLT (at CPL 3: #GP, whose handler halts)
  for (let k = 0; k < DATA_SIZE; k++) m.mem.ram[DATA + k] = (k * 37) & 0xff;
  const c = m.cpu;
  [EAX, ECX, EDX, EBX, EBP, ESI, EDI].forEach((r, k) => (c.regs[r] = regs[k]! >>> 0));
  c.regs[4] = STACK_TOP;
  c.setFlags(flags | 2);
  c.singleStep = single;
  if (jit) c.jitThreshold = jit;
  c.flushBlocks();
  return m;
}

describe("block cache equals single step", () => {
  for (const jit of [0, 1]) test(`random programs with self-modifying code, stopped at random counts (${RUNS} runs)${jit ? ", every block translated" : ""}`, () => {
    fc.assert(
      fc.property(
        arbProgram({ codeBase: CODE, dataBase: DATA, dataSize: DATA_SIZE, stackTop: STACK_TOP, selfModify: true, unguardedDiv: true, maxItems: 40 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 7, maxLength: 7 }),
        fc.integer({ min: 0, max: 0xfff }).map((f) => f & 0xcd5),
        fc.constantFrom<0 | 3>(0, 3),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 60 }),
        (prog, regs, flags, cpl, chunks) => {
          const a = setup(prog.code, regs, flags, cpl, false, jit);
          const b = setup(prog.code, regs, flags, cpl, true);
          const where = () => disasm(prog.code, true, CODE).join("\n");
          for (let k = 0; k < 400; k++) {
            const n = chunks[k % chunks.length]!;
            const sa = a.cpu.run(n), sb = b.cpu.run(n);
            if (sa !== sb || a.cpu.icount !== b.cpu.icount) throw new Error(`stop ${sa}/${sb} icount ${a.cpu.icount}/${b.cpu.icount} after chunk ${k}\n${where()}`);
            const x = a.state(), y = b.state();
            if (Buffer.compare(x, y) !== 0) throw new Error(`CPU state differs at icount ${a.cpu.icount} (eip ${a.cpu.eip.toString(16)} vs ${b.cpu.eip.toString(16)})\n${where()}`);
            if (Buffer.compare(a.mem.ram, b.mem.ram) !== 0) throw new Error(`RAM differs at icount ${a.cpu.icount}\n${where()}`);
            if (sa === Stop.HALT || sa === Stop.SHUTDOWN) break;
          }
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

function le32(v: number): number[] { return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff]; }
