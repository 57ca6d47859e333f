/**
 * Property: the specialised handlers (handlers.ts) do what exec() does. Random programs of the
 * forms they take (CLI, STI, PUSHFD, CMPXCHG8B, XADD, BT/BTS/BTR/BTC with an immediate, IMUL
 * with an immediate, the ALU group on r/m16 with an imm8, string instructions with and without
 * REP, INVLPG, IRET, PUSH of segment registers, MOV to and from a memory offset), with LOCK,
 * DS and operand-size prefixes, flag
 * producers and POPF between them (so IOPL, the lazy flags and EDX:EAX against memory vary),
 * run on one machine as built and on a second where every instruction runs exec(); state and
 * RAM must agree at every stop, faults included (#GP at CPL 3, a not-present or read-only page,
 * an unaligned quadword or one across a page).
 *
 * RRX_PROPERTY_RUNS sets the number of programs (default 100).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { CODE, DATA, compareRuns, programMachine, type TestMachine } from "../../../test/cpu/machine.ts";
import { UHDR, UREC } from "./interp.ts";
import { exec } from "./exec.ts";
import { disasm } from "./disasm.ts";
import { EBX, EBP, ESI, EDI } from "./arch.ts";
import type { Insn } from "./decode.ts";

const RUNS = Number(process.env.RRX_PROPERTY_RUNS ?? 100);

/** One instruction (or a short sequence) from a random word. */
function insn(r: number): number[] {
  const reg = (r >>> 3) & 7, rm = r & 7, b8 = (r >>> 16) & 0xff, b8b = (r >>> 24) & 0xff;
  // Memory operands: [esi+d8] (any alignment, some across DATA's first page), [ebx+d8],
  // [edi+d8] (a page that may fault), [esi+ecx*4+d8].
  const mem = (rg: number, d: number): number[] => {
    switch ((r >>> 12) & 3) {
      case 0: return [0x46 | (rg << 3), d & 0xff];
      case 1: return [0x43 | (rg << 3), d & 0xff];
      case 2: return [0x47 | (rg << 3), d & 0xfc];
      default: return [0x44 | (rg << 3), 0x8e, d & 0x3c];
    }
  };
  const lockOrDs = (r >>> 30) === 3 ? [0xf0] : (r >>> 30) === 2 ? [0x3e] : [];
  const d = (r >>> 22) & 1 ? b8 & 0xf8 : b8;
  // (Forms that fault at CPL 3 end the program: CLI, STI and POPF are rare.)
  const o16 = (r >>> 21) & 1 ? [0x66] : [];
  switch ((r >>> 26) % 40) {
    case 0: return [0xfa]; // CLI
    case 1: return [0xfb]; // STI
    case 2: return [0x9d]; // POPF (IOPL, IF and the arithmetic flags from the stack)
    case 3: case 4: return [0x9c]; // PUSHFD
    case 5: case 6: case 7: case 8: { // CMPXCHG8B: EDX:EAX from the operand or stored there (equal), or not
      const pre = [[], [0x8b, ...mem(0, d), 0x8b, ...mem(2, d + 4)], [0x89, ...mem(0, d), 0x89, ...mem(2, d + 4)]][(r >>> 14) % 3]!;
      return [...pre, ...lockOrDs, 0x0f, 0xc7, ...mem(1, d)];
    }
    case 9: case 10: return [...lockOrDs, 0x0f, 0xc1, 0xc0 | (reg << 3) | ((r >>> 20) & 1 ? reg : rm)]; // XADD r32, r32
    case 11: case 12: return [...lockOrDs, 0x0f, 0xc1, ...mem(reg, d)]; // XADD m32, r32
    case 13: case 14: return [0x0f, 0xba, 0xc0 | ((4 + (reg & 3)) << 3) | rm, b8b]; // BTx r32, imm8
    case 15: case 16: return [0x0f, 0xba, ...mem(4 + (reg & 3), d), b8b]; // BTx m32, imm8
    case 17: case 18: return (reg & 1) ? [0x69, 0xc0 | (reg << 3) | rm, b8, b8b, b8 ^ 0x5a, b8b & 0x81] : [0x6b, 0xc0 | (reg << 3) | rm, b8b];
    case 19: case 20: return (reg & 1) ? [0x69, ...mem(reg, d), b8b, b8, 0x7f, b8] : [0x6b, ...mem(reg, d), b8b];
    case 21: case 22: return [0x66, 0x83, 0xc0 | (reg << 3) | rm, b8b]; // ALU r16, imm8
    case 23: case 24: return [0x66, 0x83, ...mem(reg, d), b8b]; // ALU m16, imm8
    case 25: case 26: case 27: return [[0x01, 0x29, 0x39, 0x21, 0x11][(r >>> 8) % 5]!, 0xc0 | (reg << 3) | rm]; // lazy flags
    case 28: return [0x40 | rm]; // INC (keeps CF)
    case 29: case 30: case 31: { // a string instruction, ECX small; REP, REPNE or none; DF either way
      const op = [0xa4, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf][(r >>> 8) % 10]!;
      const rep = [[0xf3], [0xf2], []][(r >>> 18) % 3]!;
      return [0xb9, b8b & 15, 0, 0, 0, (r >>> 23) & 1 ? 0xfd : 0xfc, ...o16, ...rep, op, 0xfc];
    }
    case 32: return [0x0f, 0x01, ...mem(7, d)]; // INVLPG (#GP at CPL 3)
    // PUSH ES/CS/SS/DS/FS/GS (32 or 16 bits), then POP into EAX, ECX or EDX
    case 33: return [[0x06, 0x0e, 0x16, 0x1e][reg & 3]!, 0x58 | (rm % 3)];
    case 34: return [0x66, [0x06, 0x0e, 0x16, 0x1e][reg & 3]!, 0x66, 0x58 | (rm % 3)];
    case 35: return [0x0f, [0xa0, 0xa8][reg & 1]!, 0x58 | (rm % 3)];
    case 36: case 37: { // MOV between the accumulator and DATA + d (a0..a3), sizes 8, 16, 32
      const a = DATA + (b8 << 2) + (b8b & 3);
      return [...o16, 0xa0 + ((r >>> 8) & 3), a & 0xff, (a >>> 8) & 0xff, (a >>> 16) & 0xff, a >>> 24];
    }
    case 38: // IRET to the instruction after it: PUSHFD, PUSH CS, CALL +0, ADD [ESP], 5, IRET
      return [0x9c, 0x0e, 0xe8, 0, 0, 0, 0, 0x83, 0x04, 0x24, 5, 0xcf];
    default: return [0x0f, 0x90 + ((r >>> 8) & 15), 0xc0 | (rm & 3)]; // SETcc: reads the flags
  }
}

/** Every instruction the CPU builds into a block runs exec() (through its record as GEN). */
function execOnly(m: TestMachine): void {
  const c = m.cpu as unknown as { buildBlock: (...a: unknown[]) => { u: number; n: number; insns: Insn[] }; uc: Int32Array };
  const build = c.buildBlock;
  c.buildBlock = function (this: typeof c, ...a: unknown[]) {
    const b = build.apply(this, a);
    for (let k = 0; k < b.n; k++) {
      this.uc[b.u + UHDR + k * UREC] = this.uc[b.u + UHDR + k * UREC]! & ~0xff;
      b.insns[k]!.fn = exec;
    }
    return b;
  };
}

describe("specialised handlers equal exec()", () => {
  test(`random programs of their forms (${RUNS} runs)`, () => {
    let ran = 0;
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 7, maxLength: 7 }),
        fc.integer({ min: 0, max: 0x7fff }).map((f) => (f & 0x3cd5) | (f & 0x4000 ? 0x10000 : 0)), // with IOPL, some RF
        fc.constantFrom<0 | 3>(0, 3),
        fc.constantFrom(0, 1, 2), // no paging; [edi] not present; [edi] read-only
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }),
        (words, regs, flags, cpl, pg, chunks) => {
          const code = Uint8Array.from(words.flatMap(insn));
          const make = (plain: boolean): TestMachine => {
            const m = programMachine(code, regs, flags, cpl, {});
            const c = m.cpu;
            c.noJit = true;
            c.regs[ESI] = DATA + 0xf80; // [esi+d8]: near the end of DATA's first page
            c.regs[EBX] = DATA + 0x100 + (regs[0]! & 0x3c); c.regs[EDI] = DATA + 0x1000;
            c.regs[EBP] = DATA + 0x600 + (regs[1]! & 0xfc);
            if (pg !== 0) {
              m.paging();
              m.w32(m.pte(DATA + 0x1000), pg === 1 ? 0 : ((DATA + 0x1000) | 5));
            }
            c.flushBlocks();
            if (plain) execOnly(m);
            return m;
          };
          const a = make(false), b = make(true);
          compareRuns(a, b, chunks, 200, () => disasm(code, true, CODE).join("\n"));
          expect(a.cpu.icount).toBeGreaterThan(0);
          ran++;
        },
      ),
      { numRuns: RUNS },
    );
    expect(ran).toBe(RUNS);
  }, Math.max(60_000, RUNS * 200));

  test("one instruction at a time: the interrupt shadow after STI, #GP from CLI and STI, PUSHFD", () => {
    for (const code of [[0xfb], [0xfa], [0x9c], [0xfb, 0xfb], [0xfa, 0xfb, 0x9c]]) {
      for (const cpl of [0, 3] as const) {
        for (const flags of [0, 0x200, 0x3000, 0x3200, 0x10200]) {
          const make = (plain: boolean): TestMachine => {
            const m = programMachine(Uint8Array.from(code), [0, 0, 0, 0, 0, 0, 0], flags, cpl, {});
            m.cpu.noJit = true;
            if (plain) execOnly(m);
            return m;
          };
          const a = make(false), b = make(true);
          compareRuns(a, b, [1], 8, () => `${code} at CPL ${cpl}, flags ${flags.toString(16)}`);
          expect(a.cpu.icount).toBeGreaterThan(0);
        }
      }
    }
  });
});
