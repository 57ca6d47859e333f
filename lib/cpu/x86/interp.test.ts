/**
 * Property: the record interpreter's inline forms (interp.ts) do what the instruction handlers
 * (handlers.ts, exec.ts) do. Random programs of the forms it runs inline (32-bit and byte ALU,
 * loads and stores, moffs, stack forms, LEAVE, INC/DEC and ALU on memory, TEST with an
 * immediate, XCHG, NEG, BSWAP, CMPXCHG on memory, 16-bit stores, shifts and rotates (the
 * shifts' flags left pending), string instructions without REP in either direction, with and
 * without a segment prefix, some through a not-present or read-only page; REP MOVS and STOS,
 * whose runs of iterations strings.ts batches) run with the block cache and, on a second machine,
 * single-stepped with every record turned into a handler call; their state and RAM must agree
 * at every stop, faults included.
 *
 * RRX_PROPERTY_RUNS sets the number of programs (default 100).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { CODE, DATA, compareRuns, programMachine, type TestMachine } from "../../../test/cpu/machine.ts";
import { UHDR, UREC } from "./interp.ts";
import { disasm } from "./disasm.ts";
import { EBX, EBP, ESI, EDI } from "./arch.ts";

const RUNS = Number(process.env.RRX_PROPERTY_RUNS ?? 100);

/** One instruction's bytes from a random word (its forms: see the file comment). */
function insn(r: number): number[] {
  const pick = <T>(a: readonly T[]): T => a[(r >>> 8) % a.length]!;
  const reg = (r >>> 3) & 7, rm = r & 7, b8 = (r >>> 16) & 0xff, b8b = (r >>> 24) & 0xff;
  // Memory operands: [esi+d8], [ebx+d8], [edi+d8] (a page that may fault), [esi+ecx*4+d8].
  const mem = (rg: number): number[] => {
    switch ((r >>> 12) & 3) {
      case 0: return [0x46 | (rg << 3), b8 & 0x7c];
      case 1: return [0x43 | (rg << 3), b8];
      case 2: return [0x47 | (rg << 3), b8 & 0xfc];
      default: return [0x44 | (rg << 3), 0x8e, b8 & 0x3c];
    }
  };
  const prefix = (r >>> 30) === 3 ? [0x64] : []; // FS (flat) on some memory forms
  switch ((r >>> 26) % 32) {
    case 0: return [pick([0x00, 0x02, 0x08, 0x0a, 0x10, 0x12, 0x18, 0x1a, 0x20, 0x22, 0x28, 0x2a, 0x30, 0x32, 0x38, 0x3a, 0x84]), 0xc0 | (reg << 3) | rm];
    case 1: return [0x80, 0xc0 | (reg << 3) | rm, b8];
    case 2: return [...prefix, 0x80, ...mem(reg), b8b];
    case 3: return [0xf6, 0xc0 | rm, b8];
    case 4: return [...prefix, 0xf6, ...mem(0), b8b];
    case 5: return [pick([0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0xa8]), b8];
    case 6: return [...prefix, 0xc6, ...mem(0), b8b];
    case 7: return [...prefix, pick([0xa1, 0xa3]), b8 & 0xfc, (DATA >>> 8) & 0xff, (DATA >>> 16) & 0xff, 0];
    case 8: return [0x68, b8, b8b, 0, 0x80];
    case 9: return [0x6a, b8];
    case 10: return [...prefix, 0xff, ...mem(6)];
    case 11: return [...prefix, 0xff, ...mem(reg & 1)];
    case 12: return [0xc9];
    case 13: return [0xf7, 0xd0 | rm];
    case 14: return [...prefix, 0xc7, ...mem(0), b8, b8b, 1, 2];
    case 15: return [0x50 | rm];
    case 16: return [0x58 | pick([0, 1, 2, 3, 5])];
    case 17: return [pick([0x01, 0x29, 0x31, 0x39, 0x11, 0x19]), 0xc0 | (reg << 3) | rm];
    case 18: return [0x74 + (reg & 7) * 0, 0x00]; // JZ +0: ends a block
    case 19: return [...prefix, pick([0x8b, 0x89, 0x03, 0x01, 0x29, 0x39]), ...mem(pick([0, 1, 2]))];
    case 20: return [0x0f, 0x90 + (reg << 1), 0xc0 | rm]; // SETcc r8 (reads the flags)
    case 21: return [0x66, 0x89, ...mem(0)]; // a 16-bit store
    case 22: return [0x8d, ...mem(reg & 3)]; // LEA
    case 23: { // REP MOVS/STOS of up to 63 elements from DATA, EDI near ESI (overlapping), either direction
      const ops = [[0xa4], [0xa5], [0xaa], [0xab], [0x66, 0xa5], [0x66, 0xab]];
      return [0xb9, b8 & 0x3f, 0, 0, 0, 0xbe, ((r >>> 11) & 0xf) * 0x10, (DATA >>> 8) & 0xff, (DATA >>> 16) & 0xff, 0,
        ...(rm < 6 ? [0x8d, 0x7e, ((r >>> 8) & 7) - 2] : []), (r >>> 15) % 8 === 0 ? 0xfd : 0xfc, 0xf3, ...ops[(r >>> 24) % 6]!];
    }
    case 24: return [0x83, 0xc0 | (reg << 3) | rm, b8];
    case 25: return (reg & 1) !== 0 ? [0xf7, 0xc0 | rm, b8, b8b, 0, 0x80] : [0xa9, b8b, 0, b8, 0]; // TEST r32/EAX, imm32
    case 26: return [...prefix, 0xf7, ...mem(0), b8b, b8, 0, 0]; // TEST m32, imm32
    case 27: return (reg & 4) !== 0 ? [0x87, 0xc0 | (reg << 3) | rm] : [0x90 | rm]; // XCHG, NOP
    case 28: return (reg & 1) !== 0 ? [0xf7, 0xd8 | rm] : [0x0f, 0xc8 | rm]; // NEG r32, BSWAP r32
    case 29: { // CMPXCHG m32, r32, after a load of EAX from there half the time (equal: a store)
      const m = mem(reg);
      return [...((r >>> 14) & 1 ? [0x8b, (m[0]! & 0xc7), ...m.slice(1)] : []), ...prefix, 0x0f, 0xb1, ...m];
    }
    case 30: { // SHL, SHR, SAR (their flags pending), ROL, ROR of r32 by an imm8 (some >= 32), by 1 or by CL
      const sub = [4, 5, 7, 0, 1][(r >>> 8) % 5]!, form = (r >>> 20) % 3;
      return form === 0 ? [0xc1, 0xc0 | (sub << 3) | rm, b8 & 0x3f] : form === 1 ? [0xd1, 0xc0 | (sub << 3) | rm] : [0xd3, 0xc0 | (sub << 3) | rm];
    }
    default: { // a string instruction without REP, either direction, some with a segment prefix
      const op = [0xa4, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf][(r >>> 8) % 10]!;
      return [(r >>> 15) % 4 === 0 ? 0xfd : 0xfc, ...((r >>> 20) & 1 ? [0x64] : []), op];
    }
  }
}

/** Every record of every block the CPU builds becomes a handler call. */
function handlersOnly(m: TestMachine): void {
  const c = m.cpu as unknown as { buildBlock: (...a: unknown[]) => { u: number; n: number }; uc: Int32Array };
  const build = c.buildBlock;
  c.buildBlock = function (this: typeof c, ...a: unknown[]) {
    const b = build.apply(this, a);
    for (let k = 0; k < b.n; k++) this.uc[b.u + UHDR + k * UREC] = this.uc[b.u + UHDR + k * UREC]! & ~0xff;
    return b;
  };
}

describe("record interpreter equals the handlers", () => {
  // All the forms; then REP MOVS and STOS only (case 23 of insn()); then shifts and rotates only
  // (case 30); then string instructions without REP only (case 31).
  for (const [only, what] of [[-1, ""], [23, ", REP MOVS and STOS only"], [30, ", shifts and rotates only"], [31, ", string instructions without REP only"]] as const) test(`random programs of the inline forms${what} (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 60 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 7, maxLength: 7 }),
        fc.integer({ min: 0, max: 0xfff }).map((f) => f & 0xcd5),
        fc.constantFrom<0 | 3>(0, 3),
        fc.constantFrom(0, 1, 2), // no paging; [edi] not present; [edi] read-only
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }),
        (words, regs, flags, cpl, pg, chunks) => {
          const code = Uint8Array.from(words.flatMap((w) => insn(only >= 0 ? ((w & 0x03ffffff) | (only << 26)) >>> 0 : w)));
          const make = (single: boolean): TestMachine => {
            const m = programMachine(code, regs, flags, cpl, { singleStep: single });
            const c = m.cpu;
            c.noJit = true;
            c.regs[ESI] = DATA; c.regs[EBX] = DATA + 0x100 + (regs[0]! & 0x3c); c.regs[EDI] = DATA + 0x1000;
            c.regs[EBP] = DATA + 0x600 + (regs[1]! & 0xfc);
            if (pg !== 0) {
              m.paging();
              m.w32(m.pte(DATA + 0x1000), pg === 1 ? 0 : ((DATA + 0x1000) | 5));
            }
            c.flushBlocks();
            if (single) handlersOnly(m);
            return m;
          };
          const a = make(false), b = make(true);
          compareRuns(a, b, chunks, 200, () => disasm(code, true, CODE).join("\n"));
          expect(a.cpu.icount).toBeGreaterThan(0);
        },
      ),
      { numRuns: RUNS },
    );
  }, Math.max(60_000, RUNS * 200));
});
