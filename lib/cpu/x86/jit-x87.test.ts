/**
 * The translator's x87 fast forms (jit-x87.ts X87J) against the interpreter's path (x87.ts
 * escOp, which runs fast.ts or the exact f80.ts arithmetic): random FPU states (every PC and
 * RC, masked and unmasked PE, pending exceptions, CR0.TS, empty registers; values at rounding
 * boundaries, exponent extremes, zeros, denormals, infinities, NaNs, unnormals) and memory
 * operands (aligned, misaligned, at a page end). A fast form either declines having changed
 * nothing (and translated code then makes the escOp call, as here) or leaves exactly the state
 * escOp leaves: registers, TOP, tags, FCW, FSW, FIP/FCS/FOP/FDP/FDS, IGNNE#, memory. The
 * arithmetic the fast forms do themselves (FADD..FDIVR, FSQRT at the default control word) is also
 * compared with the exact BigInt arithmetic of f80.ts directly, and FDIV (its own algorithm,
 * decided from a double-precision estimate) on exact, nearly exact and tied quotients.
 */
import { describe, expect, test } from "bun:test";
import { DS } from "./decode.ts";
import { MODEL_I686 } from "./model.ts";
import { escOp } from "./x87.ts";
import * as F from "./fpu/f80.ts";
import { X87J, x87Translate } from "./jit-x87.ts";
import type { Insn } from "./decode.ts";
import type { Cpu } from "./cpu.ts";
import { TestMachine, DATA } from "../../../test/cpu/machine.ts";

let seed = 0x9e3779b9;
const u32 = (): number => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed; };
const pick = <T>(xs: readonly T[]): T => xs[u32() % xs.length]!;

/** An 80-bit value biased to the cases the fast forms must get right or decline. */
function value(): [number, number, number] {
  const s = u32() & 0x8000;
  const r = u32() % 16;
  let hi = (0x80000000 | u32()) >>> 0, lo = u32();
  if (r === 0) return [s, 0, 0];                                           // zero
  if (r === 1) return [s, u32() & 0x7fffffff, u32()];                       // denormal
  if (r === 2) return [s | 0x7fff, 0x80000000, 0];                          // infinity
  if (r === 3) return [s | 0x7fff, (0xc0000000 | u32()) >>> 0, u32()];      // NaN
  if (r === 4) return [s | (1 + (u32() % 0x7ffe)), u32() & 0x7fffffff, u32()]; // unnormal
  if (r === 5) lo = ((lo & ~0x7ff) | pick([0, 0x400, 0x3ff, 0x401, 0x7ff, 0x800, 0xc00])) >>> 0;   // double rounding boundaries
  if (r === 6) { hi = 0xffffffff; lo = pick([0xffffffff, 0xfffffbff, 0xfffff800, 0xfffffc00]); }
  if (r === 7) { hi = 0x80000000; lo = u32() % 3; }
  if (r === 8) lo &= ~0x7ff;                                                // a double's significand
  if (r === 9) { hi = pick([0xc0000000, 0xa0000000, 0xe0000000, 0x90000000, 0xb0000000]); lo = 0; }   // short: exact products, ties
  let e: number;
  const x = u32() % 8;
  if (x === 0) e = 1 + (u32() % 80);
  else if (x === 1) e = 0x7ffe - (u32() % 80);
  else if (x === 2) e = pick([16383 - 1022, 16383 + 1023, 16383 - 1023, 16383 + 1024]) + (u32() % 3) - 1;
  else e = 16383 - 30 + (u32() % 60);
  return [s | e, hi, lo];
}

/** Eight bytes of a double biased to specials (zero, denormal, inf, NaN, extremes) or random bits. */
function double(): [number, number] {
  const r = u32() % 10, s = u32() & 0x80000000;
  if (r === 0) return [0, s];
  if (r === 1) return [u32(), (s | (u32() & 0xfffff)) >>> 0];
  if (r === 2) return [0, (s | 0x7ff00000) >>> 0];
  if (r === 3) return [u32(), (s | 0x7ff80000 | (u32() & 0x7ffff)) >>> 0];
  if (r === 4) return [u32(), (s | ((1 + (u32() % 3)) << 20) | (u32() & 0xfffff)) >>> 0];
  if (r === 5) return [u32(), (s | ((0x7fe - (u32() % 3)) << 20) | (u32() & 0xfffff)) >>> 0];
  if (r === 6) return [u32(), u32()];
  return [u32(), (s | ((1023 - 30 + (u32() % 60)) << 20) | (u32() & 0xfffff)) >>> 0];
}

type State = { rse: number[]; rhi: number[]; rlo: number[]; empty: number; top: number; cw: number; sw: number; ptr: number[] };

function randomState(): State {
  const st: State = { rse: [], rhi: [], rlo: [], empty: 0, top: u32() & 7, cw: 0x037f, sw: 0, ptr: [u32(), u32() & 0xffff, u32() & 0x7ff, u32(), u32() & 0xffff] };
  for (let p = 0; p < 8; p++) { const [se, hi, lo] = value(); st.rse.push(se); st.rhi.push(hi); st.rlo.push(lo); }
  if (u32() % 2 === 0) {
    // Exponents a shift apart (alignment of a sum: word boundaries, cancellation, far operands).
    const base = 16383 - 20 + (u32() % 40);
    for (let p = 0; p < 8; p++) {
      if ((st.rse[p]! & 0x7fff) === 0 || (st.rse[p]! & 0x7fff) === 0x7fff || st.rhi[p]! < 0x80000000) continue;
      st.rse[p] = (st.rse[p]! & 0x8000) | (base - pick([0, 0, 1, 2, 31, 32, 33, 63, 64, 65, 95, 96, 97, u32() % 70]));
      if (u32() % 4 === 0) { st.rhi[p] = st.rhi[0]!; st.rlo[p] = (st.rlo[0]! + pick([0, 1, -1, 0x800])) >>> 0; }   // near-equal magnitudes
    }
  }
  st.empty = u32() % 4 === 0 ? u32() & 0xff : (1 << (u32() & 7)) & (u32() % 3 === 0 ? 0xff : 0);
  const c = u32() % 4;
  if (c === 1) st.cw = 0x0040 | (u32() & 0x0f3f);                           // any PC, RC and masks
  else if (c === 2) st.cw = 0x037f & ~(pick([0, 1, 2, 3]) << 10) | (pick([0, 1, 2, 3]) << 10); // any RC
  else if (c === 3) st.cw = (0x037f & ~0x300) | (pick([0, 2, 3]) << 8);   // any PC
  if (u32() % 8 === 0) st.cw &= ~0x20;                                       // PE unmasked
  st.sw = u32() & 0x3f & (u32() % 2 ? 0x3f : 0x20) | (u32() & 0x4700);
  if (st.sw & ~st.cw & 0x3f) st.sw |= 0x8080;                              // pending: ES and B
  return st;
}

function load(c: Cpu, st: State): void {
  const f = c.fpu!;
  for (let p = 0; p < 8; p++) { f.rse[p] = st.rse[p]!; f.rhi[p] = st.rhi[p]!; f.rlo[p] = st.rlo[p]!; }
  f.empty = st.empty; f.top = st.top; f.cw = st.cw; f.sw = st.sw;
  [f.fip, f.fcs, f.fop, f.fdp, f.fds] = st.ptr;
}

function dump(m: TestMachine, at: number): string {
  const f = m.cpu.fpu!;
  const mem: number[] = [];
  for (let k = -4; k < 16; k++) mem.push(m.mem.ram[at + k]!);
  return JSON.stringify([Array.from(f.rse), Array.from(f.rhi), Array.from(f.rlo), f.empty, f.top, f.cw, f.sw,
    f.fip, f.fcs, f.fop, f.fdp, f.fds, m.cpu.ignne, mem]);
}

function machine(): TestMachine {
  const m = new TestMachine(8 << 20, MODEL_I686);
  m.flat(0);
  m.cpu.cr0 = (m.cpu.cr0 | 0x22) >>> 0;                                   // MP, NE
  return m;
}

/** The forms: [name, escape, ModRM reg (memory forms) or ModRM (register forms), memory bytes]. */
type Form = { name: string; e: number; modrm: (i: number) => number; bytes: number; run: (m: TestMachine, o: number, i: number, eip: number, fop: number) => boolean };
const ram = (m: TestMachine) => m.cpu.ram32;
const FORMS: Form[] = [
  { name: "FLD m64", e: 5, modrm: () => 0x05, bytes: 8, run: (m, o, _i, eip, fop) => X87J.ld64(m.cpu, DS, o, eip, fop) },
  { name: "FST m64", e: 5, modrm: () => 0x15, bytes: 8, run: (m, o, _i, eip, fop) => X87J.st64(m.cpu, DS, o, eip, fop, false) },
  { name: "FSTP m64", e: 5, modrm: () => 0x1d, bytes: 8, run: (m, o, _i, eip, fop) => X87J.st64(m.cpu, DS, o, eip, fop, true) },
  { name: "FLD m80", e: 3, modrm: () => 0x2d, bytes: 10, run: (m, o, _i, eip, fop) => X87J.ld80(m.cpu, DS, o, eip, fop) },
  { name: "FSTP m80", e: 3, modrm: () => 0x3d, bytes: 10, run: (m, o, _i, eip, fop) => X87J.st80(m.cpu, DS, o, eip, fop) },
  ...[0, 1, 4, 5, 6, 7].map((reg): Form => ({
    name: `D8 /${reg} ST0, ST(i)`, e: 0, modrm: (i) => 0xc0 | (reg << 3) | i, bytes: 0,
    run: (m, _o, i, eip, fop) => reg === 1 ? X87J.mul(m.cpu, 0, 0, 0, i, 0, eip, fop)
      : reg >= 6 ? X87J.div(m.cpu, 0, 0, 0, i, 0, eip, fop, reg) : X87J.add(m.cpu, 0, 0, 0, i, 0, eip, fop, reg),
  })),
  ...[4, 6].flatMap((e) => [0, 1, 4, 5, 6, 7].map((reg): Form => ({
    name: `${(0xd8 + e).toString(16)} /${reg} ST(i), ST0`, e, modrm: (i) => 0xc0 | (reg << 3) | i, bytes: 0,
    run: (m, _o, i, eip, fop) => {
      const op = reg >= 4 ? reg ^ 1 : reg, pops = e === 6 ? 1 : 0;
      return op === 1 ? X87J.mul(m.cpu, 0, 0, i, 0, pops, eip, fop)
        : op >= 6 ? X87J.div(m.cpu, 0, 0, i, 0, pops, eip, fop, op) : X87J.add(m.cpu, 0, 0, i, 0, pops, eip, fop, op);
    },
  }))),
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((reg): Form => ({
    name: `DC /${reg} m64`, e: 4, modrm: () => (reg << 3) | 5, bytes: 8,
    run: (m, o, _i, eip, fop) => reg === 1 ? X87J.mul(m.cpu, DS, o, 0, -1, 0, eip, fop)
      : reg === 0 || reg === 4 || reg === 5 ? X87J.add(m.cpu, DS, o, 0, -1, 0, eip, fop, reg)
      : reg >= 6 ? X87J.div(m.cpu, DS, o, 0, -1, 0, eip, fop, reg)
      : X87J.ar64(m.cpu, DS, o, eip, fop, reg),
  })),
  { name: "FSQRT", e: 1, modrm: () => 0xfa, bytes: 0, run: (m, _o, _i, eip, fop) => X87J.sqrt(m.cpu, eip, fop) },
  { name: "FLD ST(i)", e: 1, modrm: (i) => 0xc0 | i, bytes: 0, run: (m, _o, i, eip, fop) => X87J.fld(m.cpu, i, eip, fop) },
  { name: "FXCH ST(i)", e: 1, modrm: (i) => 0xc8 | i, bytes: 0, run: (m, _o, i, eip, fop) => X87J.fxch(m.cpu, i, eip, fop) },
  { name: "FST ST(i)", e: 5, modrm: (i) => 0xd0 | i, bytes: 0, run: (m, _o, i, eip, fop) => X87J.fst(m.cpu, i, false, eip, fop) },
  { name: "FSTP ST(i)", e: 5, modrm: (i) => 0xd8 | i, bytes: 0, run: (m, _o, i, eip, fop) => X87J.fst(m.cpu, i, true, eip, fop) },
  ...[[1, 0xc0], [1, 0xc8], [5, 0xd0], [5, 0xd8], [1, 0xe0], [1, 0xe1], [1, 0xfa], [0, 0xf0], [6, 0xf8]].map(([e, base]): Form => ({
    name: `${(0xd8 + e!).toString(16)} ${base!.toString(16)}`, e: e!, modrm: (i) => base! < 0xe0 || base! === 0xf0 || base! === 0xf8 ? base! | i : base!, bytes: 0,
    run: (m, _o, i, eip) => X87J.reg(m.cpu, e!, base! < 0xe0 || base! === 0xf0 || base! === 0xf8 ? base! | i : base!, eip),
  })),
];

describe("x87 fast forms in translated code (jit-x87.ts) leave what escOp leaves", () => {
  test("every form on 60,000 random states and operands", () => {
    const a = machine(), b = machine(), g = machine();
    const ran = new Map<string, number>();
    for (let n = 0; n < 60_000; n++) {
      const form = FORMS[u32() % FORMS.length]!;
      const st = randomState();
      const i = u32() & 7;
      // The operand: 4-aligned mostly, sometimes not, sometimes at a page's end.
      const r = u32() % 8;
      const o = r === 0 ? DATA + 0x1000 - form.bytes + 4 * (u32() % 3) : r === 1 ? DATA + 1 + (u32() % 3) : DATA + 4 * (u32() % 64);
      const bytes: number[] = [];
      let [lo, hi] = double();
      const se = u32() % 3 ? value() : [u32() & 0xffff];
      const x0 = (st.rse[st.top]! & 0x7fff) - 15360 - pick([0, 1, 32, 64, 65, u32() % 70]);
      if (u32() % 3 === 0 && x0 > 0 && x0 < 0x7ff) hi = ((hi & 0x800fffff) | (x0 << 20)) >>> 0;   // near ST0's exponent
      for (let k = 0; k < 12; k++) bytes.push(k < 4 ? (lo >>> (8 * k)) & 255 : k < 8 ? (hi >>> (8 * (k - 4))) & 255 : k < 10 ? (se[0]! >>> (8 * (k - 8))) & 255 : u32() & 255);
      const ts = u32() % 50 === 0, ignne = u32() % 2 === 0;
      const eip = u32(), modrm = form.modrm(i), fop = ((form.e << 8) | modrm) & 0x7ff;
      for (const m of [a, b, g]) {
        load(m.cpu, st);
        for (let k = 0; k < 12; k++) m.mem.ram[o + k] = bytes[k]!;
        m.cpu.cr0 = ts ? (m.cpu.cr0 | 8) >>> 0 : (m.cpu.cr0 & ~8) >>> 0;
        m.cpu.ignne = ignne;
        m.cpu.rd32(DS, o & ~0xfff); m.cpu.wr32(DS, o & ~0xfff, m.cpu.rd32(DS, o & ~0xfff));   // the TLB holds the page
      }
      const before = dump(a, o);
      const run = (m: TestMachine) => { try { escOp(m.cpu, form.e, modrm, true, DS, o, eip); return "ok"; } catch { return `fault ${m.cpu.excVec}`; } };
      let ra: string;
      if (form.run(a, o, i, eip, fop)) {
        ran.set(form.name, (ran.get(form.name) ?? 0) + 1);
        ra = "ok";
      } else {
        expect(dump(a, o)).toBe(before);                                     // declined: nothing changed
        ra = run(a);
      }
      const rb = run(b);
      // The translated code's source for the instruction (jit-insn.ts's locals as parameters).
      const insn = { op: 0xd8 + form.e, mod: modrm >> 6, reg: (modrm >> 3) & 7, rm: modrm & 7 } as Insn;
      const src = x87Translate(insn, 0, `((${o}) >>> 0)`, DS, String(eip >>> 0), `c.x87(${form.e}, ${modrm}, true, ${DS}, ${modrm < 0xc0 ? "o" : 0}, ${eip >>> 0});`);
      let rg = "ok";
      if (src === null) rg = run(g);
      else {
        const fn = new Function("c", "m", "m4", "tr", "tw", `sb${DS}`, `sf${DS}`, `let o = 0, l = 0, e = 0, p = 0; ${src.src}`) as (...a: unknown[]) => void;
        try { fn(g.cpu, g.mem.ram, ram(g), g.cpu.tlbR, g.cpu.tlbW, g.cpu.segBase[DS], g.cpu.segFast[DS] === 1); } catch { rg = `fault ${g.cpu.excVec}`; }
      }
      if (rg !== rb || dump(g, o) !== dump(b, o)) {
        throw new Error(`translated ${form.name} (i=${i}, o=${o.toString(16)}): ${rg} vs ${rb}\nstate ${JSON.stringify(st)}\nbytes ${bytes}\ncode   ${dump(g, o)}\nescOp  ${dump(b, o)}`);
      }
      if (ra !== rb || dump(a, o) !== dump(b, o)) {
        throw new Error(`${form.name} (i=${i}, o=${o.toString(16)}): ${ra} vs ${rb}\nstate ${JSON.stringify(st)}\nbytes ${bytes}\nfast   ${dump(a, o)}\nescOp  ${dump(b, o)}`);
      }
    }
    // Every form ran fast on at least 20 of its cases.
    for (const f of FORMS) expect({ form: f.name, fast: (ran.get(f.name) ?? 0) >= 20 }).toEqual({ form: f.name, fast: true });
  }, 60_000);
  test("FSTP m64 then FLD m64 of the same operand as one call (stld64) on 20,000 random states", () => {
    const a = machine(), b = machine();
    let fast = 0;
    for (let n = 0; n < 20_000; n++) {
      const st = randomState();
      if (u32() % 2) st.cw = (st.cw & ~0xc00) | 0x20;                       // mostly its case: to nearest, PE masked
      const r = u32() % 8;
      const o = r === 0 ? DATA + 0x1000 - 8 + 4 * (u32() % 3) : r === 1 ? DATA + 1 + (u32() % 3) : DATA + 4 * (u32() % 64);
      const ts = u32() % 50 === 0, eip = u32(), eip2 = u32(), ignne = u32() % 2 === 0;
      const bytes = [0, 1, 2, 3, 4, 5, 6, 7].map(() => u32() & 255);
      for (const m of [a, b]) {
        load(m.cpu, st);
        for (let k = 0; k < 8; k++) m.mem.ram[o + k] = bytes[k]!;
        m.cpu.cr0 = ts ? (m.cpu.cr0 | 8) >>> 0 : (m.cpu.cr0 & ~8) >>> 0;
        m.cpu.ignne = ignne;
        m.cpu.rd32(DS, o & ~0xfff); m.cpu.wr32(DS, o & ~0xfff, m.cpu.rd32(DS, o & ~0xfff));   // the TLB holds the page
      }
      const both = (m: TestMachine) => {
        try { escOp(m.cpu, 5, 0x1d, true, DS, o, eip); escOp(m.cpu, 5, 0x05, true, DS, o, eip2); return "ok"; } catch { return `fault ${m.cpu.excVec}`; }
      };
      const before = dump(a, o);
      let ra = "ok";
      if (X87J.stld64(a.cpu, DS, o, eip, 0x51d, eip2, 0x505)) fast++;
      else { expect(dump(a, o)).toBe(before); ra = both(a); }
      const rb = both(b);
      if (ra !== rb || dump(a, o) !== dump(b, o)) throw new Error(`stld64 (o=${o.toString(16)}): ${ra} vs ${rb}\nstate ${JSON.stringify(st)}\nfast  ${dump(a, o)}\nescOp ${dump(b, o)}`);
    }
    expect(fast).toBeGreaterThan(2_000);
  }, 60_000);
  test("FMUL m64 of doubles whose product needs the 64-bit significand: exact, a tie to even, past a tie", () => {
    // ST0 * m64 with ST0 the m64 operand's value or near it; expected by hand: (1 + 2^-30)^2 =
    // 1 + 2^-29 + 2^-60 is exact in 64 bits (a double would drop 2^-60); (1 + 2^-32)^2 =
    // 1 + 2^-31 + 2^-64 is a tie, to even (down, PE, C1 = 0); (1 + 2^-32)(1 + 2^-32 + 2^-52) is
    // 2^-84 past a tie (up: PE, C1 = 1).
    const cases: [number, number, number, number, number, number, number][] = [
      // ST0 hi, lo; m64 lo, hi; result hi, lo; FSW
      [0x80000002, 0, 0x400000, 0x3ff00000, 0x80000004, 8, 0],
      [0x80000000, 0x80000000, 0x100000, 0x3ff00000, 0x80000001, 0, 0x20],
      [0x80000000, 0x80000000, 0x100001, 0x3ff00000, 0x80000001, 0x801, 0x220],
    ];
    for (const [sh, sl, ml, mh, rh, rl, sw] of cases) {
      const a = machine(), b = machine();
      const st: State = { rse: [0x3fff, 0, 0, 0, 0, 0, 0, 0], rhi: [sh, 0, 0, 0, 0, 0, 0, 0], rlo: [sl, 0, 0, 0, 0, 0, 0, 0],
        empty: 0xfe, top: 0, cw: 0x037f, sw: 0, ptr: [0, 0, 0, 0, 0] };
      for (const m of [a, b]) {
        load(m.cpu, st);
        m.cpu.wr32(DS, DATA, ml); m.cpu.wr32(DS, DATA + 4, mh);
        m.cpu.rd32(DS, DATA);                                                // the TLB holds the page
      }
      expect(X87J.mul(a.cpu, DS, DATA, 0, -1, 0, 5, 0x40d)).toBe(true);
      escOp(b.cpu, 4, 0x0d, true, DS, DATA, 5);
      const f = a.cpu.fpu!;
      expect([f.rse[0], f.rhi[0], f.rlo[0], f.sw & 0x3f7f]).toEqual([0x3fff, rh, rl, sw]);
      expect(dump(a, DATA)).toBe(dump(b, DATA));
    }
  });
  test("FDIV on 100,000 operand pairs: random, exact and nearly exact quotients, ties", () => {
    const a = machine(), b = machine();
    const sig = (): [number, number] => {
      const r = u32() % 4;
      if (r === 0) return [(0x80000000 | (u32() & 0x7fffff00)) >>> 0, 0];      // short: exact quotients of short values
      if (r === 1) return [(0x80000000 | u32()) >>> 0, (u32() & ~0x7ff) >>> 0];
      return [(0x80000000 | u32()) >>> 0, u32()];
    };
    let fast = 0;
    for (let n = 0; n < 100_000; n++) {
      let [nh, nl] = sig();
      const [vh, vl] = sig();
      if (u32() % 3 === 0) {
        // dividend = divisor * a short q (exact when it fits), nudged by -1, 0 or +1 in the last place
        const q = BigInt(1 + (u32() & 0xff)), v = (BigInt(vh) << 32n) | BigInt(vl);
        let p = v * q;
        while (p >= 1n << 64n) p >>= 1n;
        while (p < 1n << 63n) p <<= 1n;
        p += BigInt((u32() % 3) - 1);
        if (p >= 1n << 63n && p < 1n << 64n) { nh = Number(p >> 32n); nl = Number(p & 0xffffffffn); }
      }
      const st: State = { rse: [0x3fff + (u32() % 9) - 4 | (u32() & 0x8000), 0x3fff + (u32() % 9) - 4, 0, 0, 0, 0, 0, 0], rhi: [nh, vh, 0, 0, 0, 0, 0, 0],
        rlo: [nl, vl, 0, 0, 0, 0, 0, 0], empty: 0xfc, top: 0, cw: 0x037f, sw: 0, ptr: [0, 0, 0, 0, 0] };
      const r = u32() & 1, modrm = r ? 0xf9 : 0xf1;                     // FDIVR / FDIV ST0, ST1
      load(a.cpu, st); load(b.cpu, st);
      const before = dump(a, DATA);
      if (X87J.div(a.cpu, 0, 0, 0, 1, 0, 5, modrm, 6 + r)) fast++;
      else { expect(dump(a, DATA)).toBe(before); escOp(a.cpu, 0, modrm, true, DS, 0, 5); }
      escOp(b.cpu, 0, modrm, true, DS, 0, 5);
      if (dump(a, DATA) !== dump(b, DATA)) throw new Error(`FDIV${r ? "R" : ""} ${JSON.stringify(st)}\nfast  ${dump(a, DATA)}\nescOp ${dump(b, DATA)}`);
    }
    expect(fast).toBeGreaterThan(50_000);
  }, 60_000);
  test("FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR/FSQRT against the exact arithmetic (f80.ts) on 100,000 operand pairs", () => {
    const a = machine();
    const ctx = new F.Ctx();
    const sig = (): [number, number] => {
      const r = u32() % 5;
      if (r === 0) return [(0x80000000 | (u32() & 0x7fffff00)) >>> 0, 0];      // short: exact results, ties
      if (r === 1) return [(0x80000000 | u32()) >>> 0, (u32() & ~0x7ff) >>> 0];
      if (r === 2) return [0xffffffff, pick([0xffffffff, 0xfffff800, 0])];
      return [(0x80000000 | u32()) >>> 0, u32()];
    };
    const taken = [0, 0, 0, 0, 0, 0, 0];
    for (let n = 0; n < 100_000; n++) {
      const [dh, dl] = sig(), [xh, xl] = sig();
      const dse = (0x3fff + (u32() % 9) - 4) | (u32() & 0x8000);
      const xse = u32() % 2 ? (((dse & 0x7fff) - pick([0, 1, 2, 31, 32, 33, 63, 64, 65, u32() % 80])) | (u32() & 0x8000)) : (0x3fff + (u32() % 9) - 4) | (u32() & 0x8000);
      const st: State = { rse: [dse, xse, 0, 0, 0, 0, 0, 0], rhi: [dh, xh, 0, 0, 0, 0, 0, 0], rlo: [dl, xl, 0, 0, 0, 0, 0, 0],
        empty: 0xfc, top: 0, cw: 0x037f, sw: 0, ptr: [0, 0, 0, 0, 0] };
      load(a.cpu, st);
      const k = u32() % 7, op = [0, 4, 5, 1, 6, 7, 8][k]!;
      if (op === 8) {
        // FSQRT of |ST0|, sometimes a square (exact) or next to one.
        st.rse[0] = dse & 0x7fff;
        if (u32() % 3 === 0) {
          const r = BigInt(dh) >> BigInt(u32() % 24);
          let sq = r * r;
          while (sq >= 1n << 64n) sq >>= 1n;
          while (sq < 1n << 63n) sq <<= 1n;
          sq += BigInt((u32() % 3) - 1);
          if (sq >= 1n << 63n && sq < 1n << 64n) { st.rhi[0] = Number(sq >> 32n); st.rlo[0] = Number(sq & 0xffffffffn); }
        }
        load(a.cpu, st);
      }
      const ok = op === 8 ? X87J.sqrt(a.cpu, 5, 0x1fa) : op === 1 ? X87J.mul(a.cpu, 0, 0, 0, 1, 0, 5, 0xc9)
        : op >= 6 ? X87J.div(a.cpu, 0, 0, 0, 1, 0, 5, 0xf1, op) : X87J.add(a.cpu, 0, 0, 0, 1, 0, 5, 0xc1, op);
      if (!ok) continue;
      taken[k]!++;
      const dm = (BigInt(st.rhi[0]!) << 32n) | BigInt(st.rlo[0]!), xm = (BigInt(xh) << 32n) | BigInt(xl);
      ctx.cw = 0x037f; ctx.reset();
      if (op === 8) F.sqrt(ctx, st.rse[0]!, dm, 64);
      else if (op === 0) F.add(ctx, dse, dm, xse, xm, false, 64);
      else if (op === 4) F.add(ctx, dse, dm, xse, xm, true, 64);
      else if (op === 5) F.add(ctx, xse, xm, dse, dm, true, 64);
      else if (op === 1) F.mul(ctx, dse, dm, xse, xm, 64);
      else if (op === 6) F.div(ctx, dse, dm, xse, xm, 64);
      else F.div(ctx, xse, xm, dse, dm, 64);
      const f = a.cpu.fpu!;
      const got = `${f.rse[0]!.toString(16)}:${((BigInt(f.rhi[0]!) << 32n) | BigInt(f.rlo[0]!)).toString(16)} PE=${(f.sw >> 5) & 1} C1=${(f.sw >> 9) & 1}`;
      const want = `${ctx.se.toString(16)}:${ctx.m.toString(16)} PE=${(ctx.exc & F.PE) ? 1 : 0} C1=${ctx.c1}`;
      if (got !== want) throw new Error(`op ${op}: ${JSON.stringify(st)}\nfast  ${got}\nexact ${want}`);
    }
    for (const t of taken) expect(t).toBeGreaterThan(10_000);
  }, 60_000);
});


