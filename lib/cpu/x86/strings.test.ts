/**
 * REP MOVS and REP STOS run many iterations at once where they can (CpuMemory.bulkString),
 * forwards and, with DF set, backwards.
 * Each case here has its expected memory from a plain element-by-element model written in the
 * test (each element read whole, then written, in order), and checks the registers and the
 * instruction count where a budget ends mid-instruction.
 */
import { describe, expect, test } from "bun:test";
import { Stop, EAX, ECX, ESI, EDI } from "./cpu.ts";
import { TestMachine, CODE } from "../../../test/cpu/machine.ts";
import type { Size } from "../../../test/support/x86-encoder.ts";

const SRC = 0x30000, DST = 0x50000;

/** `rep movs`/`rep stos` of `size` bits, then HLT, with ESI, EDI, ECX, EAX and DF as given. */
function build(op: "movs" | "stos", size: Size, regs: { esi?: number; edi: number; ecx: number; eax?: number }, paging = false, df = false): TestMachine {
  const m = new TestMachine(8 << 20);
  m.flat(0, CODE);
  if (paging) m.paging();
  m.code(CODE, [{ op, size, rep: "rep" }, { op: "hlt" }]);
  m.cpu.regs[ESI] = regs.esi ?? 0;
  m.cpu.regs[EDI] = regs.edi;
  m.cpu.regs[ECX] = regs.ecx;
  m.cpu.regs[EAX] = regs.eax ?? 0;
  if (df) m.cpu.setFlags(0x402);
  return m;
}

/** A byte pattern over [a, a + n) that no shifted copy of itself matches. */
function fill(m: TestMachine, a: number, n: number): void {
  for (let k = 0; k < n; k++) m.mem.ram[a + k] = (k * 7 + (k >> 8) * 13 + 1) & 0xff;
}

/** The reference: element by element, forwards (or backwards with DF), each read whole before it is written. */
function modelMovs(ram: Uint8Array, src: number, dst: number, count: number, w: number, back = false): void {
  for (let k = 0; k < count; k++) {
    const off = back ? -k * w : k * w;
    const v = ram.slice(src + off, src + off + w);
    ram.set(v, dst + off);
  }
}
function modelStos(ram: Uint8Array, dst: number, count: number, w: number, eax: number): void {
  for (let k = 0; k < count; k++) for (let j = 0; j < w; j++) ram[dst + k * w + j] = (eax >>> (j * 8)) & 0xff;
}

/** Iterations the CPU runs at once (bulkString), counted. */
function countBulk(m: TestMachine): { n: number } {
  const out = { n: 0 };
  const c = m.cpu as unknown as { bulkString: (...a: unknown[]) => number };
  const f = c.bulkString;
  c.bulkString = function (this: unknown, ...a: unknown[]) { const n = f.apply(this, a); out.n += n; return n; };
  return out;
}

function runToHlt(m: TestMachine): void {
  expect(m.cpu.run(1 << 24)).toBe(Stop.HALT);
}

describe("REP MOVS and REP STOS", () => {
  const cases: [string, number, number, number, Size][] = [
    // name, source, destination, count, operand size
    ["dwords across several pages, different page offsets", SRC + 0x123, DST + 0xf01, 3000, 32],
    ["bytes across pages", SRC + 0xffd, DST + 0x7, 9000, 8],
    ["words, the destination unaligned", SRC + 0x10, DST + 0x3, 2100, 16],
    ["bytes onto the bytes just after: the pattern repeats", SRC + 0x40, SRC + 0x43, 5000, 8],
    ["dwords overlapping by two bytes, forwards", SRC + 0x40, SRC + 0x42, 1500, 32],
    ["dwords moved down over themselves", SRC + 0x842, SRC + 0x40, 1500, 32],
    ["words, destination one byte above the source", SRC + 0x101, SRC + 0x102, 3000, 16],
  ];
  for (const [size, dst, count] of [[8, DST + 5, 10000], [16, DST + 1, 3000], [16, DST + 2, 3000], [32, DST + 3, 2000], [32, DST + 0xff8, 3000]] as [Size, number, number][]) {
    test(`stos of ${size} bits, ${count} at ${dst.toString(16)}`, () => {
      const w = size / 8, eax = 0x9abcdef1;
      const m = build("stos", size, { edi: dst, ecx: count, eax });
      fill(m, DST - 0x100, 0x10000);
      const want = m.mem.ram.slice();
      modelStos(want, dst, count, w, eax);
      runToHlt(m);
      expect(m.cpu.regs[ECX]).toBe(0);
      expect(m.cpu.regs[EDI]).toBe(dst + count * w);
      expect(Buffer.from(m.mem.ram.subarray(DST - 0x100, DST + 0xff00)).equals(Buffer.from(want.subarray(DST - 0x100, DST + 0xff00)))).toBe(true);
    });
  }

  test("a budget ending mid-instruction leaves EIP on it, with the iterations done so far counted", () => {
    const count = 5000;
    for (const budget of [1, 2, 37, 1024, 1025, 4999]) {
      const m = build("movs", 32, { esi: SRC, edi: DST + 0x10, ecx: count });
      fill(m, SRC, 0x8000);
      const want = m.mem.ram.slice();
      modelMovs(want, SRC, DST + 0x10, budget, 4);
      expect(m.cpu.run(budget)).toBe(Stop.BUDGET);
      expect(m.cpu.icount).toBe(budget);
      expect(m.cpu.eip).toBe(CODE);
      expect(m.cpu.regs[ECX]).toBe(count - budget);
      expect(m.cpu.regs[ESI]).toBe(SRC + budget * 4);
      expect(Buffer.from(m.mem.ram.subarray(DST, DST + 0x6000)).equals(Buffer.from(want.subarray(DST, DST + 0x6000)))).toBe(true);
      // The rest, in slices of varying size, ends where one run does.
      let n = 0;
      while (m.cpu.run(1 + (n++ % 700)) !== Stop.HALT) { /* budget slices */ }
      modelMovs(want, SRC + budget * 4, DST + 0x10 + budget * 4, count - budget, 4);
      expect(m.cpu.regs[ECX]).toBe(0);
      expect(m.cpu.icount).toBe(count + 1);
      expect(Buffer.from(m.mem.ram.subarray(DST, DST + 0x6000)).equals(Buffer.from(want.subarray(DST, DST + 0x6000)))).toBe(true);
    }
  });

  // With DF set, backwards: each case starts at its top element.
  const down: [string, number, number, number, Size][] = [
    ["dwords across several pages, different page offsets", SRC + 0x8123, DST + 0x8f01, 3000, 32],
    ["bytes across pages", SRC + 0x8ffd, DST + 0x8007, 9000, 8],
    ["words, the destination unaligned", SRC + 0x8010, DST + 0x8003, 2100, 16],
    ["bytes onto the bytes just below: the pattern repeats", SRC + 0x8043, SRC + 0x8040, 5000, 8],
    ["dwords overlapping by two bytes, backwards", SRC + 0x8042, SRC + 0x8040, 1500, 32],
    ["dwords moved up over themselves (memmove's backward copy)", SRC + 0x6040, SRC + 0x6842, 1500, 32],
    ["words, the destination one byte below the source", SRC + 0x8102, SRC + 0x8101, 3000, 16],
    ["dwords, the first element across a page boundary", SRC + 0x8ffe, DST + 0x7ffe, 2500, 32],
  ];
  // Forwards, and with DF set backwards (each `down` case starts at its top element).
  for (const [back, list] of [[false, cases], [true, down]] as const) {
    for (const [name, src, dst, count, size] of list) {
      for (const paging of [false, true]) {
        test(`movs${back ? " with DF set" : ""}: ${name}${paging ? ", paging on" : ""}`, () => {
          const w = size / 8, step = back ? -w : w;
          const m = build("movs", size, { esi: src, edi: dst, ecx: count }, paging, back);
          fill(m, SRC, 0x10000);
          const want = m.mem.ram.slice();
          modelMovs(want, src, dst, count, w, back);
          const bulk = countBulk(m);
          runToHlt(m);
          expect(bulk.n).toBeGreaterThan(count * 0.9); // (runs of iterations at once, not one by one)
          expect(m.cpu.regs[ECX]).toBe(0);
          expect(m.cpu.regs[ESI]).toBe(src + count * step);
          expect(m.cpu.regs[EDI]).toBe(dst + count * step);
          expect(m.cpu.icount).toBe(count + 1);
          const lo = Math.min(src, dst) - (back ? count * w : 0) - 16, hi = Math.max(src, dst) + (back ? w : count * w) + 16;
          expect(Buffer.from(m.mem.ram.subarray(lo, hi)).equals(Buffer.from(want.subarray(lo, hi)))).toBe(true);
        });
      }
    }
  }

  for (const [size, dst, count] of [[8, DST + 0x8005, 10000], [16, DST + 0x8001, 3000], [16, DST + 0x8002, 3000], [32, DST + 0x8003, 2000], [32, DST + 0x8ff8, 3000], [32, DST + 0x8ffe, 3000]] as [Size, number, number][]) {
    test(`stos with DF set, of ${size} bits, ${count} at ${dst.toString(16)}`, () => {
      const w = size / 8, eax = 0x9abcdef1;
      const m = build("stos", size, { edi: dst, ecx: count, eax }, false, true);
      fill(m, DST - 0x100, 0x10000);
      const want = m.mem.ram.slice();
      for (let k = 0; k < count; k++) for (let j = 0; j < w; j++) want[dst - k * w + j] = (eax >>> (j * 8)) & 0xff;
      const bulk = countBulk(m);
      runToHlt(m);
      expect(bulk.n).toBeGreaterThan(count * 0.9);
      expect(m.cpu.regs[ECX]).toBe(0);
      expect(m.cpu.regs[EDI]).toBe(dst - count * w);
      expect(Buffer.from(m.mem.ram.subarray(DST - 0x100, DST + 0xff00)).equals(Buffer.from(want.subarray(DST - 0x100, DST + 0xff00)))).toBe(true);
    });
  }

  test("with DF set, a budget ending mid-instruction leaves EIP on it, with the iterations done so far counted", () => {
    const count = 5000, top = DST + 0x8010;
    for (const budget of [1, 2, 37, 1024, 1025, 4999]) {
      const m = build("movs", 32, { esi: SRC + 0x7ff0, edi: top, ecx: count }, false, true);
      fill(m, SRC, 0x8000);
      const want = m.mem.ram.slice();
      modelMovs(want, SRC + 0x7ff0, top, budget, 4, true);
      expect(m.cpu.run(budget)).toBe(Stop.BUDGET);
      expect(m.cpu.icount).toBe(budget);
      expect(m.cpu.eip).toBe(CODE);
      expect(m.cpu.regs[ECX]).toBe(count - budget);
      expect(m.cpu.regs[EDI]).toBe(top - budget * 4);
      expect(Buffer.from(m.mem.ram.subarray(DST, DST + 0x9000)).equals(Buffer.from(want.subarray(DST, DST + 0x9000)))).toBe(true);
      let n = 0;
      while (m.cpu.run(1 + (n++ % 700)) !== Stop.HALT) { /* budget slices */ }
      modelMovs(want, SRC + 0x7ff0 - budget * 4, top - budget * 4, count - budget, 4, true);
      expect(m.cpu.regs[ECX]).toBe(0);
      expect(m.cpu.icount).toBe(count + 1);
      expect(Buffer.from(m.mem.ram.subarray(DST, DST + 0x9000)).equals(Buffer.from(want.subarray(DST, DST + 0x9000)))).toBe(true);
    }
  });

  test("with DF set, runs stop at page boundaries: the next page may map anywhere", () => {
    // The pages at DST + 0x8000 and SRC + 0x8000 map to frames far from their neighbours.
    const UP = DST + 0x8000, FRAME = 0x200000, SUP = SRC + 0x8000, SFRAME = 0x210000;
    const phys = (l: number): number => (l >>> 12) === (UP >>> 12) ? FRAME + (l & 0xfff) : (l >>> 12) === (SUP >>> 12) ? SFRAME + (l & 0xfff) : l;
    // An element across a boundary (UP - 2, SUP - 2) comes after runs in the page above it.
    const cases = [["an element across the boundary", UP + 6, SUP + 6], ["a run down from the remapped page into the one below", UP + 0x100, SUP + 0xfe]] as const;
    for (const [what, edi, esi] of cases) {
      for (const op of ["movs", "stos"] as const) {
        const count = 1500, eax = 0x9abcdef1;
        const m = build(op, 32, { esi, edi, ecx: count, eax }, true, true);
        // Before the REP: a load from the page below the source's boundary and a store below the
        // destination's (their fast TLB entries, which the bulk path needs).
        const le = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
        m.write(CODE, Uint8Array.from([0xa1, ...le(SUP - 0x800), 0xa3, ...le(UP - 0x800), 0xf3, op === "movs" ? 0xa5 : 0xab, 0xf4]));
        m.w32(m.pte(UP), FRAME | 7);
        m.w32(m.pte(SUP), SFRAME | 7);
        fill(m, SRC, 0x9000);
        fill(m, SFRAME, 0x1000);
        const want = m.mem.ram.slice();
        // (the store before the REP: EAX, which the load just set)
        const ld = [0, 1, 2, 3].map((j) => want[SUP - 0x800 + j]!);
        for (let j = 0; j < 4; j++) want[UP - 0x800 + j] = ld[j]!;
        const a = op === "stos" ? (ld[0]! | (ld[1]! << 8) | (ld[2]! << 16) | (ld[3]! << 24)) >>> 0 : eax;
        for (let k = 0; k < count; k++) {
          for (let j = 0; j < 4; j++) {
            const v = op === "movs" ? want[phys(esi - 4 * k + j)]! : (a >>> (8 * j)) & 0xff;
            want[phys(edi - 4 * k + j)] = v;
          }
        }
        const bulk = countBulk(m);
        runToHlt(m);
        expect(bulk.n).toBeGreaterThan(count * 0.9);
        expect(m.cpu.regs[EDI]).toBe(edi - count * 4);
        // (The page tables get their accessed and dirty bits: compared apart from them.)
        for (const [a, b] of [[DST, DST + 0x10000], [FRAME, FRAME + 0x1000], [SRC, SRC + 0x10000], [SFRAME, SFRAME + 0x1000]]) {
          expect(Buffer.from(m.mem.ram.subarray(a, b)).equals(Buffer.from(want.subarray(a, b))), `${op}: ${what}`).toBe(true);
        }
      }
    }
  });

  test("with DF set the copy runs backwards, element by element", () => {
    const m = build("movs", 16, { esi: SRC + 0x2000, edi: SRC + 0x2001, ecx: 3000 }, false, true);
    fill(m, SRC, 0x4000);
    const want = m.mem.ram.slice();
    modelMovs(want, SRC + 0x2000, SRC + 0x2001, 3000, 2, true);
    runToHlt(m);
    expect(m.cpu.regs[ESI]).toBe(SRC + 0x2000 - 6000);
    expect(Buffer.from(m.mem.ram.subarray(SRC, SRC + 0x4000)).equals(Buffer.from(want.subarray(SRC, SRC + 0x4000)))).toBe(true);
  });

  test("a copy onto a page not yet written sets its PTE's dirty bit, and onto code invalidates it", () => {
    const m = build("movs", 32, { esi: SRC, edi: CODE + 0x800, ecx: 0x300 }, true);
    fill(m, SRC, 0x1000);
    // The copy's tail lands on the HLT's page and overwrites nothing it runs: [CODE + 0x800, CODE + 0x1400).
    expect(m.r32(m.pte(DST)) & 0x40).toBe(0);
    runToHlt(m);
    expect(m.r32(m.pte(CODE + 0x1000)) & 0x40).toBe(0x40);
    expect(m.r32(m.pte(CODE)) & 0x40).toBe(0x40);
    expect(m.r32(CODE + 0x1000)).toBe(m.r32(SRC + 0x800));
  });

  test("a copy over the instruction after it runs the new instruction", () => {
    const m = build("movs", 8, { esi: SRC, edi: CODE + 2, ecx: 1 });
    // rep movsb is 2 bytes (f3 a4); the HLT after it becomes INC EAX, then a HLT follows.
    m.mem.ram[SRC] = 0x40;
    m.write(CODE + 3, [0xf4]);
    m.cpu.flushBlocks();
    runToHlt(m);
    expect(m.cpu.regs[EAX]).toBe(1);
  });
});
