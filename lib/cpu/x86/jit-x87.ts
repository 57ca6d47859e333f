/**
 * The x87 in translated code. jit-insn.ts hands every x87 instruction it translates here:
 * the common forms become one call of a function of `X87J` specialised for the form (reached
 * as `c.x87j`, its operands resolved at translation time), which runs the instruction when
 * nothing unusual is in the way and returns false otherwise having changed nothing; the
 * translated code then makes the general call `c.x87(...)` (x87.ts escOp), which decides every
 * case exactly as the interpreter does. Other forms are that call alone.
 *
 * A fast function runs the instruction only when escOp would run it without more ado: an FPU,
 * CR0.EM and CR0.TS clear, no pending unmasked exception (FSW.ES clear: IGNNE# then drops, as
 * in escOp); for a memory operand a flat segment and a read (or write) TLB hit with the whole
 * operand in one page at a 4-aligned address (`word`: translated code passes the segment and
 * offset, and each form tests them itself, which keeps the translated function small: its
 * optimising compile takes the time it does per instruction of it). It then sets FIP/FCS/FOP
 * (and FDP/FDS for a memory operand) as escOp does: every form here is a non-control
 * instruction.
 *
 * FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR (register and m64 forms), FSQRT, FLD m64, FST(P) m64 and
 * the register moves are done here in full (the arithmetic for the default control word's PC
 * 64 bits and round to nearest: fast.ts's add and multiply written out, with the rounding
 * decision computed without branches on the data, and a division and square root of their own,
 * see `div`); the other forms call the FPU's fast entry points (fpu.ts: regOp, arithF64,
 * stF64, fldF80, stF80).
 * The add, multiply and divide each load their operands and store their result themselves,
 * in locals, rather than through a shared operand loader and fast.ts's addFast/mulFast (which
 * pass values through module variables): written that way, with fast.ts's rounding made
 * branch-free too, the x87 n-body loop took 2.7 s of CPU against 2.0 s.
 * jit-x87.test.ts checks every form against escOp on random states.
 *
 * Each form is a call rather than code in the translated function: an n-body loop is 75 x87
 * instructions in one region, and the engine's optimising compile of a function grows much
 * faster than its size (inline x87 code took it from tens of milliseconds to half a second).
 */
import type { Insn } from "./decode.ts";
import type { CpuCore as Cpu } from "./interrupts.ts";
import type { Fpu } from "./fpu/fpu.ts";

/** FSW.ES; CR0.EM | CR0.TS. */
const FSW_ES = 0x80, EM_TS = 12;

/** The FPU when the CPU would run an ESC instruction at once (see above), else null. */
function ready(c: Cpu): Fpu | null {
  const f = c.fpu;
  return f !== null && (c.cr0 & EM_TS) === 0 && (f.sw & FSW_ES) === 0 ? f : null;
}

/** The bookkeeping of a memory form that ran (escOp's noteInsn, IGNNE#). */
function noteMem(c: Cpu, f: Fpu, eip: number, fop: number, s: number, o: number): true {
  c.ignne = false;
  f.fcs = c.sel[1]!; f.fip = eip; f.fop = fop; f.fds = c.sel[s]!; f.fdp = o;
  return true;
}

const TWO32 = 4294967296, INV32 = 1 / 4294967296;
/** Dekker's splitting constant (2^27 + 1); the margin of div's rounding decision (2^-30). */
const SPLIT = 134217729, CERT = 9.313225746154785e-10;

/**
 * The word index in the RAM view `ram32` of an operand of n bytes at seg:o when translated code
 * may access it directly: a flat segment (segFast), the address 4-aligned, the n bytes in one
 * page, and the TLB (read: tlbR, write: tlbW) mapping the page (to plain RAM); else -1.
 */
function word(c: Cpu, s: number, o: number, n: number, write: boolean): number {
  if (c.segFast[s] !== 1) return -1;
  const l = (c.segBase[s]! + o) >>> 0;
  if ((l & 3) !== 0 || (l & 4095) > 4096 - n) return -1;
  const e = (write ? c.tlbW : c.tlbR)[l >>> 12]!;
  return e === 0 ? -1 : ((e - 1) << 10) | ((l & 4095) >> 2);
}

/** The register-form bookkeeping of an instruction that ran (escOp's FIP/FCS/FOP, IGNNE#). */
function noteReg(c: Cpu, f: Fpu, eip: number, fop: number): true {
  c.ignne = false;
  f.fcs = c.sel[1]!; f.fip = eip; f.fop = fop;
  return true;
}

/**
 * FSW after an operation's rounding (the default control word's masks apply: PE masked unless
 * the guest unmasked it): C1 = rounded up when inexact, else 0; PE, and ES/B when PE is
 * unmasked (Fpu.signal).
 */
/** nearest64's rounded significand (high and low words) and biased double exponent. */
let n64H = 0, n64L = 0, n64X = 0;
/**
 * ST(t), a normal double's range, rounded to nearest into the double at m4[p], m4[p + 1]
 * (fast.ts toF64Fast: 11 bits below the double's last bit): bit 0 inexact, bit 1 rounded up;
 * -1 (nothing written) when it is not such a value. The rounded register value is left in
 * n64H, n64L and n64X.
 */
function nearest64(f: Fpu, t: number, m4: Int32Array, p: number): number {
  const se = f.rse[t]!, e = se & 0x7fff, hi = f.rhi[t]!, lo = f.rlo[t]!;
  if (e < 16383 - 1022 || e > 16383 + 1023 || hi < 0x80000000) return -1;
  // (No branches on the data: rest = 1 when any of the 10 bits below the round bit is set.)
  const rb = (lo >>> 10) & 1, rest = ((lo & 0x3ff) + 0x3ff) >>> 10, up = rb & (rest | ((lo >>> 11) & 1));
  let l = lo - (lo & 0x7ff) + up * 0x800, h = hi, x = e - 15360;
  if (l === TWO32) { l = 0; h += 1; if (h === TWO32) { h = 0x80000000; x += 1; } }
  if (x > 0x7fe) return -1;
  m4[p] = (h << 21) | (l >>> 11);
  m4[p + 1] = ((se >>> 15) << 31) | (x << 20) | ((h >>> 11) & 0xfffff);
  n64H = h; n64L = l; n64X = x;
  return (rb | rest) | (up << 1);
}

function swAfterI(sw: number, cw: number, inexact: number, up: number): number {
  sw = (sw & ~0x200) | (up << 9) | (inexact << 5);
  if (inexact !== 0 && (cw & 0x20) === 0) sw |= 0x8080;
  return sw;
}

/**
 * The fast forms. Arguments: the CPU, the segment and offset of a memory operand, the
 * instruction's EIP and FOP (11 bits). `mul`, `add`, `div` and `sqrt` take the default control word (PC 64 bits, to
 * nearest) only, normal operands and a normal result; `dst`/`src` are stack indices, `src` < 0
 * for the m64 operand (then `dst` is 0), `pops` 0 or 1.
 */
export const X87J = {
  /** FLD m64. */
  ld64(c: Cpu, s: number, o: number, eip: number, fop: number): boolean {
    const f = ready(c);
    if (f === null) return false;
    const t = (f.top - 1) & 7;
    if (((f.empty >> t) & 1) === 0) return false;
    const p = word(c, s, o, 8, false);
    if (p < 0) return false;
    const m4 = c.ram32, lo = m4[p]!, hi = m4[p + 1]!, x = (hi >>> 20) & 0x7ff;
    if (x === 0 || x === 0x7ff) return false;
    f.sw &= ~0x200;
    f.top = t;
    f.rse[t] = ((hi >>> 31) << 15) | (x + 15360);
    f.rhi[t] = 0x80000000 | ((hi & 0xfffff) << 11) | (lo >>> 21);
    f.rlo[t] = lo << 11;
    f.empty &= ~(1 << t);
    return noteMem(c, f, eip, fop, s, o);
  },
  /** FADD, FMUL, FCOM, FCOMP, FSUB, FSUBR, FDIV, FDIVR m64 (`reg` the ModRM reg field). */
  ar64(c: Cpu, s: number, o: number, eip: number, fop: number, reg: number): boolean {
    const f = ready(c);
    if (f === null) return false;
    const p = word(c, s, o, 8, false);
    if (p < 0) return false;
    const m4 = c.ram32;
    return f.arithF64(reg, m4[p]!, m4[p + 1]!) && noteMem(c, f, eip, fop, s, o);
  },
  /** FST m64, FSTP m64. */
  st64(c: Cpu, s: number, o: number, eip: number, fop: number, pop: boolean): boolean {
    const f = ready(c);
    if (f === null) return false;
    const p = word(c, s, o, 8, true);
    if (p < 0) return false;
    const m4 = c.ram32, t = f.top, cw = f.cw;
    if ((cw & 0xc00) !== 0 || ((f.empty >> t) & 1) !== 0) {
      if (!f.stF64(pop)) return false;
      m4[p] = f.mlo; m4[p + 1] = f.mhi;
      return noteMem(c, f, eip, fop, s, o);
    }
    const r = nearest64(f, t, m4, p);
    if (r < 0) return false;
    f.sw = swAfterI(f.sw, cw, r & 1, r >> 1);
    if (pop) { f.empty |= 1 << t; f.top = (t + 1) & 7; }
    return noteMem(c, f, eip, fop, s, o);
  },
  /**
   * FSTP m64 then FLD m64 of the same operand (a compiler's rounding of ST0 to double through
   * memory): both at once, as the two would run here, for round to nearest with PE masked
   * (so the store cannot leave an exception pending for the load) and a normal double; FIP,
   * FOP and FDP end as the load's.
   */
  stld64(c: Cpu, s: number, o: number, eip: number, fop: number, eip2: number, fop2: number): boolean {
    const f = ready(c);
    if (f === null) return false;
    const p = word(c, s, o, 8, true);
    if (p < 0 || word(c, s, o, 8, false) !== p) return false;
    const t = f.top, cw = f.cw;
    if ((cw & 0xc20) !== 0x20 || ((f.empty >> t) & 1) !== 0) return false;
    const r = nearest64(f, t, c.ram32, p);
    if (r < 0) return false;
    // The load pushes what the store popped: the same register, the double's value (C1 = 0).
    f.sw = swAfterI(f.sw, cw, r & 1, r >> 1) & ~0x200;
    f.rse[t] = (f.rse[t]! & 0x8000) | (n64X + 15360); f.rhi[t] = n64H; f.rlo[t] = n64L;
    c.ignne = false;
    f.fcs = c.sel[1]!; f.fip = eip2; f.fop = fop2; f.fds = c.sel[s]!; f.fdp = o;
    return true;
  },
  /** FLD m80. */
  ld80(c: Cpu, s: number, o: number, eip: number, fop: number): boolean {
    const f = ready(c);
    if (f === null) return false;
    const p = word(c, s, o, 10, false);
    if (p < 0) return false;
    const m = c.ram, m4 = c.ram32;
    return f.fldF80(m4[p]!, m4[p + 1]!, m[(p << 2) + 8]! | (m[(p << 2) + 9]! << 8)) && noteMem(c, f, eip, fop, s, o);
  },
  /** FSTP m80. */
  st80(c: Cpu, s: number, o: number, eip: number, fop: number): boolean {
    const f = ready(c);
    if (f === null) return false;
    const p = word(c, s, o, 10, true);
    if (p < 0 || !f.stF80()) return false;
    const m = c.ram, m4 = c.ram32;
    m4[p] = f.mlo; m4[p + 1] = f.mhi; m[(p << 2) + 8] = f.mse; m[(p << 2) + 9] = f.mse >> 8;
    return noteMem(c, f, eip, fop, s, o);
  },
  /** FLD ST(i) (Fpu.regOp's). */
  fld(c: Cpu, i: number, eip: number, fop: number): boolean {
    const f = ready(c);
    if (f === null) return false;
    const t = f.top, from = (t + i) & 7, to = (t - 1) & 7, em = f.empty;
    if (((em >> from) & 1) !== 0 || ((em >> to) & 1) === 0) return false;
    f.sw &= ~0x200;
    f.top = to;
    f.rse[to] = f.rse[from]!; f.rhi[to] = f.rhi[from]!; f.rlo[to] = f.rlo[from]!;
    f.empty = em & ~(1 << to);
    return noteReg(c, f, eip, fop);
  },
  /** FXCH ST(i) (Fpu.regOp's). */
  fxch(c: Cpu, i: number, eip: number, fop: number): boolean {
    const f = ready(c);
    if (f === null) return false;
    const t = f.top, b = (t + i) & 7, em = f.empty;
    if ((((em >> t) | (em >> b)) & 1) !== 0) return false;
    f.sw &= ~0x200;
    const R = f.rse, H = f.rhi, L = f.rlo;
    const se = R[t]!, hi = H[t]!, lo = L[t]!;
    R[t] = R[b]!; H[t] = H[b]!; L[t] = L[b]!;
    R[b] = se; H[b] = hi; L[b] = lo;
    return noteReg(c, f, eip, fop);
  },
  /** FST ST(i), FSTP ST(i) (Fpu.regOp's). */
  fst(c: Cpu, i: number, pop: boolean, eip: number, fop: number): boolean {
    const f = ready(c);
    if (f === null) return false;
    const t = f.top, to = (t + i) & 7;
    let em = f.empty;
    if (((em >> t) & 1) !== 0) return false;
    f.sw &= ~0x200;
    f.rse[to] = f.rse[t]!; f.rhi[to] = f.rhi[t]!; f.rlo[to] = f.rlo[t]!;
    em &= ~(1 << to);
    if (pop) { em |= 1 << t; f.top = (t + 1) & 7; }
    f.empty = em;
    return noteReg(c, f, eip, fop);
  },
  /** The other register forms of Fpu.regOp (`e` the escape 0..7). */
  reg(c: Cpu, e: number, modrm: number, eip: number): boolean {
    const f = ready(c);
    return f !== null && f.regOp(e, modrm) && noteReg(c, f, eip, ((e << 8) | modrm) & 0x7ff);
  },
  /** ST(dst) = ST(dst) * (ST(src) or m64), then `pops` pops. */
  mul(c: Cpu, s: number, o: number, dst: number, src: number, pops: number, eip: number, fop: number): boolean {
    const f = ready(c);
    if (f === null || (f.cw & 0xf00) !== 0x300) return false;
    const t = f.top, pd = (t + dst) & 7, em = f.empty, R = f.rse, H = f.rhi, L = f.rlo;
    if ((em >> pd) & 1) return false;
    let bse: number, bhi: number, blo: number;
    if (src >= 0) {
      const ps = (t + src) & 7;
      if ((em >> ps) & 1) return false;
      bse = R[ps]!; bhi = H[ps]!; blo = L[ps]!;
    } else {
      const p = word(c, s, o, 8, false);
      if (p < 0) return false;
      const m4 = c.ram32, lo = m4[p]!, hi = m4[p + 1]!, x = (hi >>> 20) & 0x7ff;
      if (x === 0 || x === 0x7ff) return false;
      bse = ((hi >>> 31) << 15) | (x + 15360); bhi = 2147483648 + (((hi & 0xfffff) << 11) | (lo >>> 21)); blo = (lo << 11) >>> 0;
    }
    const ase = R[pd]!, ahi = H[pd]!, alo = L[pd]!, ea = ase & 0x7fff, eb = bse & 0x7fff;
    if (ea === 0 || ea === 0x7fff || eb === 0 || eb === 0x7fff || ahi < 0x80000000 || bhi < 0x80000000) return false;
    // fast.ts mulFast: four 32x32-bit products, each split exactly into two words.
    let e = ea + eb - 16383;
    // (The high words as round(x * (y / 2^32) - low / 2^32): the same doubles scaled by 2^-32,
    // which keeps the engine from speculating on 64-bit integer products and leaving its
    // optimised code when they overflow.)
    const bl = blo * INV32, bh = bhi * INV32;
    const l00 = Math.imul(alo, blo) >>> 0, h00 = Math.round(alo * bl - l00 * INV32);
    const l01 = Math.imul(alo, bhi) >>> 0, h01 = Math.round(alo * bh - l01 * INV32);
    const l10 = Math.imul(ahi, blo) >>> 0, h10 = Math.round(ahi * bl - l10 * INV32);
    const l11 = Math.imul(ahi, bhi) >>> 0, h11 = Math.round(ahi * bh - l11 * INV32);
    const m1 = h00 + l01 + l10, w1 = m1 >>> 0;
    const m2 = h01 + h10 + l11 + (m1 - w1) * INV32, w2 = m2 >>> 0;
    const w3 = h11 + (m2 - w2) * INV32;
    // Normalise (sh = 1: the product is below 2^127, shift left one) and round to nearest,
    // without branches on the data (they would be mispredicted half the time).
    const sh = (w3 >>> 31) ^ 1;
    let hi = ((w3 << sh) | ((w2 >>> 31) & sh)) >>> 0, lo = ((w2 << sh) | ((w1 >>> 31) & sh)) >>> 0;
    const g = w1 << sh, rb = g >>> 31, rest = (g & 0x7fffffff) | l00;
    const nz = ((rest | -rest) >>> 31), up = rb & (nz | (lo & 1));
    e += 1 - sh;
    lo += up;
    if (lo === TWO32) { lo = 0; hi += 1; if (hi === TWO32) { hi = 0x80000000; e += 1; } }
    if (e < 1 || e > 0x7ffe) return false;
    f.sw = swAfterI(f.sw, f.cw, rb | nz, up);
    R[pd] = ((ase ^ bse) & 0x8000) | e; H[pd] = hi; L[pd] = lo;
    if (pops) { f.empty = em | (1 << t); f.top = (t + 1) & 7; }
    return src >= 0 ? noteReg(c, f, eip, fop) : noteMem(c, f, eip, fop, s, o);
  },
  /**
   * ST(dst) = ST(dst) + x (`op` 0), ST(dst) - x (4) or x - ST(dst) (5), x = ST(src) or m64,
   * then `pops` pops.
   */
  add(c: Cpu, s: number, o: number, dst: number, src: number, pops: number, eip: number, fop: number, op: number): boolean {
    const f = ready(c);
    if (f === null || (f.cw & 0xf00) !== 0x300) return false;
    const t = f.top, pd = (t + dst) & 7, em = f.empty, R = f.rse, H = f.rhi, L = f.rlo;
    if ((em >> pd) & 1) return false;
    let xse: number, xhi: number, xlo: number;
    if (src >= 0) {
      const ps = (t + src) & 7;
      if ((em >> ps) & 1) return false;
      xse = R[ps]!; xhi = H[ps]!; xlo = L[ps]!;
    } else {
      const p = word(c, s, o, 8, false);
      if (p < 0) return false;
      const m4 = c.ram32, lo = m4[p]!, hi = m4[p + 1]!, x = (hi >>> 20) & 0x7ff;
      if (x === 0 || x === 0x7ff) return false;
      xse = ((hi >>> 31) << 15) | (x + 15360); xhi = 2147483648 + (((hi & 0xfffff) << 11) | (lo >>> 21)); xlo = (lo << 11) >>> 0;
    }
    const dse = R[pd]!, dhi = H[pd]!, dlo = L[pd]!;
    let ea = dse & 0x7fff, eb = xse & 0x7fff;
    if (ea === 0 || ea === 0x7fff || eb === 0 || eb === 0x7fff || dhi < 0x80000000 || xhi < 0x80000000) return false;
    // a + b (fast.ts addFast): a = dst, b = +-x, or a = x, b = -dst.
    let sa: number, sb: number, ahi: number, alo: number, bhi: number, blo: number;
    if (op === 5) { sa = xse >>> 15; sb = (dse >>> 15) ^ 1; ahi = xhi; alo = xlo; bhi = dhi; blo = dlo; const q = ea; ea = eb; eb = q; }
    else { sa = dse >>> 15; sb = (xse >>> 15) ^ (op === 4 ? 1 : 0); ahi = dhi; alo = dlo; bhi = xhi; blo = xlo; }
    if (ea < eb || (ea === eb && (ahi < bhi || (ahi === bhi && alo < blo)))) {
      let q = ea; ea = eb; eb = q;
      q = sa; sa = sb; sb = q;
      q = ahi; ahi = bhi; bhi = q;
      q = alo; alo = blo; blo = q;
    }
    const d = ea - eb;
    let bg = 0, sticky = false;
    if (d === 0) { /* aligned */ } else if (d < 32) {
      bg = (blo << (32 - d)) >>> 0;
      blo = ((blo >>> d) | (bhi << (32 - d))) >>> 0;
      bhi = bhi >>> d;
    } else if (d === 32) {
      bg = blo; blo = bhi; bhi = 0;
    } else if (d < 64) {
      const k = d - 32;
      sticky = (blo & ((1 << k) - 1)) !== 0;
      bg = ((blo >>> k) | (bhi << (32 - k))) >>> 0;
      blo = bhi >>> k; bhi = 0;
    } else if (d === 64) {
      sticky = blo !== 0; bg = bhi; blo = 0; bhi = 0;
    } else if (d < 96) {
      const k = d - 64;
      sticky = blo !== 0 || (bhi & ((1 << k) - 1)) !== 0;
      bg = bhi >>> k; blo = 0; bhi = 0;
    } else {
      sticky = true; bg = 0; blo = 0; bhi = 0;
    }
    let hi: number, lo: number, g: number, e = ea;
    if (sa === sb) {
      g = bg; lo = alo + blo; hi = ahi + bhi;
      if (lo >= TWO32) { lo -= TWO32; hi += 1; }
      if (hi >= TWO32) {
        sticky = sticky || (g & 1) !== 0;
        g = ((g >>> 1) | ((lo & 1) << 31)) >>> 0;
        lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
        hi = 0x80000000 + ((hi - TWO32) >>> 1);
        e += 1;
      }
    } else {
      // |a| >= |b|; sticky bits below bg: one unit of g less plus a nonzero fraction.
      g = -bg - (sticky ? 1 : 0); lo = alo - blo; hi = ahi - bhi;
      if (g < 0) { g += TWO32; lo -= 1; }
      if (lo < 0) { lo += TWO32; hi -= 1; }
      if (hi === 0 && lo === 0 && g === 0) return false;      // exact zero: the sign by RC
      while (hi === 0) { hi = lo; lo = g; g = 0; e -= 32; }
      // Shift left by n = 0..31 without a branch (x >>> 1 >>> (31 - n) is x >>> (32 - n), 0 for n = 0).
      const n = Math.clz32(hi), m = 31 - n;
      hi = ((hi << n) | ((lo >>> 1) >>> m)) >>> 0;
      lo = ((lo << n) | ((g >>> 1) >>> m)) >>> 0;
      g = (g << n) >>> 0;
      e -= n;
    }
    // Round to nearest without branches on the data (as in mul).
    const rb = g >>> 31, rw = (g & 0x7fffffff) | (sticky ? 1 : 0), nz = (rw | -rw) >>> 31, up = rb & (nz | (lo & 1));
    lo += up;
    if (lo === TWO32) { lo = 0; hi += 1; if (hi === TWO32) { hi = 0x80000000; e += 1; } }
    if (e < 1 || e > 0x7ffe) return false;
    f.sw = swAfterI(f.sw, f.cw, rb | nz, up);
    R[pd] = (sa << 15) | e; H[pd] = hi; L[pd] = lo;
    if (pops) { f.empty = em | (1 << t); f.top = (t + 1) & 7; }
    return src >= 0 ? noteReg(c, f, eip, fop) : noteMem(c, f, eip, fop, s, o);
  },
  /**
   * FSQRT of a positive normal ST0, as `div`: M = the significand scaled to [1, 4) with an even
   * exponent left, y = the double square root of its top 53 bits, y2 = (M - y^2) / 2y with
   * M - y^2 exact (Dekker's product, Sterbenz' lemma); y + y2 is within 2^-36 of the result's
   * last place, and exact or nearly exact roots and ties decline to escOp (fast.ts's).
   */
  sqrt(c: Cpu, eip: number, fop: number): boolean {
    const f = ready(c);
    if (f === null || (f.cw & 0xf00) !== 0x300) return false;
    const t = f.top;
    if ((f.empty >> t) & 1) return false;
    const se = f.rse[t]!, hi0 = f.rhi[t]!, lo0 = f.rlo[t]!, ex = se & 0x7fff;
    if (se >= 0x8000 || ex === 0 || ex === 0x7fff || hi0 < 0x80000000) return false;
    // x = M * 2^(2j), M in [1, 4): the significand over 2^63, doubled when the exponent is odd.
    const E = ex - 16383, odd = E & 1, sc = odd ? 2.168404344971009e-19 : 1.0842021724855044e-19;   // 2^-62, 2^-63
    const m0 = lo0 & 0x7ff;
    const M1 = (hi0 + (lo0 - m0) * INV32) * (sc * TWO32), M0 = m0 * sc;
    const y = Math.sqrt(M1);
    let u = y * SPLIT; const yh = u - (u - y), yl = y - yh;
    const pr = y * y, er = ((yh * yh - pr) + 2 * (yh * yl)) + yl * yl;          // y^2 = pr + er
    const y2 = (((M1 - pr) - er) + M0) / (2 * y);
    const P1 = y * 2147483648, w = y2 * 9.223372036854776e18;                  // 2^31 (y * 2^63 / 2^32), 2^63
    const kw = Math.floor(w), fr = w - kw;
    if (fr < CERT || fr > 1 - CERT || (fr > 0.5 - CERT && fr < 0.5 + CERT)) return false;
    const up = fr > 0.5 ? 1 : 0;
    let hi = Math.floor(P1), lo = (P1 - hi) * TWO32 + kw + up;
    if (lo < 0) { lo += TWO32; hi -= 1; } else if (lo >= TWO32) { lo -= TWO32; hi += 1; }
    if (hi < 0x80000000 || hi >= TWO32) return false;
    f.sw = swAfterI(f.sw, f.cw, 1, up);
    f.rse[t] = ((E - odd) >> 1) + 16383; f.rhi[t] = hi; f.rlo[t] = lo;
    return noteReg(c, f, eip, fop);
  },
  /**
   * ST(dst) = ST(dst) / x (`op` 6) or x / ST(dst) (7), x = ST(src) or m64, then `pops` pops.
   * The quotient as q1 + q2 in doubles: q1 = N1 / D1 of the dividend's and divisor's top 53
   * bits, q2 from the exact remainder N - q1 * D (q1 * D1 split exactly by Dekker's product;
   * N1 - p is exact by Sterbenz' lemma) over D. That is within 2^-100 of N / D, 2^-36 of the
   * 64-bit result's last place: the rounding is decided from it unless the bits below the last
   * place are within 2^-30 of 0 or of a half (an exact or nearly exact quotient, or a tie), and
   * such cases, like the binade edges, decline to escOp (fast.ts's exact long division).
   */
  div(c: Cpu, s: number, o: number, dst: number, src: number, pops: number, eip: number, fop: number, op: number): boolean {
    const f = ready(c);
    if (f === null || (f.cw & 0xf00) !== 0x300) return false;
    const t = f.top, pd = (t + dst) & 7, em = f.empty, R = f.rse, H = f.rhi, L = f.rlo;
    if ((em >> pd) & 1) return false;
    let xse: number, xhi: number, xlo: number;
    if (src >= 0) {
      const ps = (t + src) & 7;
      if ((em >> ps) & 1) return false;
      xse = R[ps]!; xhi = H[ps]!; xlo = L[ps]!;
    } else {
      const p = word(c, s, o, 8, false);
      if (p < 0) return false;
      const m4 = c.ram32, lo = m4[p]!, hi = m4[p + 1]!, x = (hi >>> 20) & 0x7ff;
      if (x === 0 || x === 0x7ff) return false;
      xse = ((hi >>> 31) << 15) | (x + 15360); xhi = 2147483648 + (((hi & 0xfffff) << 11) | (lo >>> 21)); xlo = (lo << 11) >>> 0;
    }
    const dse = R[pd]!, dhi = H[pd]!, dlo = L[pd]!;
    const ed = dse & 0x7fff, ex = xse & 0x7fff;
    if (ed === 0 || ed === 0x7fff || ex === 0 || ex === 0x7fff || dhi < 0x80000000 || xhi < 0x80000000) return false;
    // Dividend n, divisor v.
    let nse: number, nhi: number, nlo: number, vse: number, vhi: number, vlo: number;
    if (op === 6) { nse = dse; nhi = dhi; nlo = dlo; vse = xse; vhi = xhi; vlo = xlo; }
    else { nse = xse; nhi = xhi; nlo = xlo; vse = dse; vhi = dhi; vlo = dlo; }
    const n0 = nlo & 0x7ff, v0 = vlo & 0x7ff;
    // (N1, V1 and the remainder scaled by 2^-32, exactly: see mul.)
    const N1 = nhi + (nlo - n0) * INV32, V1 = vhi + (vlo - v0) * INV32, n0s = n0 * INV32, v0s = v0 * INV32;
    const q1 = N1 / V1;
    let u = q1 * SPLIT; const qh = u - (u - q1), ql = q1 - qh;
    u = V1 * SPLIT; const vh = u - (u - V1), vl = V1 - vh;
    const pr = q1 * V1, er = ((qh * vh - pr) + qh * vl + ql * vh) + ql * vl;     // q1 * V1 = pr + er
    const rem = ((N1 - pr) - er) + (n0s - q1 * v0s);                              // N - q1 * V
    const q2 = rem / (V1 + v0s);
    let e = (nse & 0x7fff) - (vse & 0x7fff) + 16383, k: number;
    if (q1 > 1) k = 9.223372036854776e18;                                        // 2^63: the quotient in [1, 2)
    else if (q1 < 1) { k = 1.8446744073709552e19; e -= 1; }                      // 2^64
    else return false;
    const P1 = q1 * (k * INV32), w = q2 * k, kw = Math.floor(w), fr = w - kw;     // P1: the top word and a fraction
    if (fr < CERT || fr > 1 - CERT || (fr > 0.5 - CERT && fr < 0.5 + CERT)) return false;
    const up = fr > 0.5 ? 1 : 0;
    let hi = Math.floor(P1), lo = (P1 - hi) * TWO32 + kw + up;
    if (lo < 0) { lo += TWO32; hi -= 1; } else if (lo >= TWO32) { lo -= TWO32; hi += 1; }
    if (hi < 0x80000000 || hi >= TWO32 || e < 1 || e > 0x7ffe) return false;
    f.sw = swAfterI(f.sw, f.cw, 1, up);
    R[pd] = ((dse ^ xse) & 0x8000) | e; H[pd] = hi; L[pd] = lo;
    if (pops) { f.empty = em | (1 << t); f.top = (t + 1) & 7; }
    return src >= 0 ? noteReg(c, f, eip, fop) : noteMem(c, f, eip, fop, s, o);
  },
};

/** The source of one x87 instruction (or null: jit-insn.ts then emits the plain call). */
export interface X87Src { src: string; store: boolean }

/**
 * One x87 instruction: `k` its fault index, `ea` the offset expression (memory forms), `seg`
 * its segment, `eip` the expression of its address, `call` the escOp call with the offset in `o`.
 */
export function x87Translate(i: Insn, k: number, ea: string, seg: number, eip: string, call: string): X87Src | null {
  const e = i.op - 0xd8;
  const modrm = (i.mod << 6) | (i.reg << 3) | i.rm;
  const fop = ((e << 8) | modrm) & 0x7ff;
  if (i.mod === 3) {
    // FADD/FSUB/FSUBR/FMUL: ST0 op= ST(i) (D8), ST(i) op= ST0 (DC), and popping (DE).
    const r = i.reg, op = e === 0 ? r : r >= 4 ? r ^ 1 : r;
    if ((e === 0 || e === 4 || e === 6) && r !== 2 && r !== 3) {
      const [dst, src] = e === 0 ? [0, i.rm] : [i.rm, 0];
      const args = `c, 0, 0, ${dst}, ${src}, ${e === 6 ? 1 : 0}, ${eip}, ${fop}`;
      return { src: `c.ci = ${k}; if (!c.x87j.${op === 1 ? `mul(${args})` : op >= 6 ? `div(${args}, ${op})` : `add(${args}, ${op})`}) ${call}`, store: false };
    }
    if (e === 1 && r === 0) return { src: `c.ci = ${k}; if (!c.x87j.fld(c, ${i.rm}, ${eip}, ${fop})) ${call}`, store: false };
    if (e === 1 && r === 1) return { src: `c.ci = ${k}; if (!c.x87j.fxch(c, ${i.rm}, ${eip}, ${fop})) ${call}`, store: false };
    if (e === 5 && (r === 2 || r === 3)) return { src: `c.ci = ${k}; if (!c.x87j.fst(c, ${i.rm}, ${r === 3}, ${eip}, ${fop})) ${call}`, store: false };
    if (modrm === 0xfa && e === 1) return { src: `c.ci = ${k}; if (!c.x87j.sqrt(c, ${eip}, ${fop})) ${call}`, store: false };
    if (!regFast(e, i.reg, modrm)) return null;
    return { src: `c.ci = ${k}; if (!c.x87j.reg(c, ${e}, ${modrm}, ${eip})) ${call}`, store: false };
  }
  // The memory forms take the operand's segment and offset (see word).
  const at = `c.ci = ${k}; o = ${ea}; if (!c.x87j.`;
  const args = `c, ${seg}, o, ${eip}, ${fop}`;
  const end = `) ${call}`;
  if (e === 4 && i.reg !== 2 && i.reg !== 3) {
    const a = `c, ${seg}, o, 0, -1, 0, ${eip}, ${fop}`;
    return { src: `${at}${i.reg === 1 ? `mul(${a})` : i.reg >= 6 ? `div(${a}, ${i.reg})` : `add(${a}, ${i.reg})`}${end}`, store: false };
  }
  if (e === 5 && i.reg === 0) return { src: `${at}ld64(${args})${end}`, store: false };
  if (e === 4) return { src: `${at}ar64(${args}, ${i.reg})${end}`, store: false };
  if (e === 5 && (i.reg === 2 || i.reg === 3)) return { src: `${at}st64(${args}, ${i.reg === 3})${end}`, store: true };
  if (e === 3 && i.reg === 5) return { src: `${at}ld80(${args})${end}`, store: false };
  if (e === 3 && i.reg === 7) return { src: `${at}st80(${args})${end}`, store: true };
  return null;
}

/** Register forms Fpu.regOp may decide (it declines the rest, which would only cost a call). */
function regFast(e: number, reg: number, modrm: number): boolean {
  switch (e) {
    case 0: case 4: case 6: return reg !== 2 && reg !== 3;
    case 1: return reg <= 1 || modrm === 0xe0 || modrm === 0xe1 || modrm === 0xfa;
    case 5: return reg === 2 || reg === 3;
  }
  return false;
}

/**
 * FSTP m64 followed by FLD m64 of the same operand (`a` then `b`, their sources `srcA` and
 * `srcB` as translated, `ea` and `seg` the operand): the source of the pair as one call of
 * X87J.stld64, the two instructions' own code when it declines (with `$BRKPREV`, the check
 * after a store that the emitter writes for the first of them, between), or null.
 */
export function x87Pair(a: Insn, b: Insn, ea: string, seg: number, srcA: string, srcB: string): string | null {
  if (a.op !== 0xdd || a.mod === 3 || a.reg !== 3 || b.op !== 0xdd || b.mod === 3 || b.reg !== 0) return null;
  const fop = (i: Insn) => ((5 << 8) | (i.mod << 6) | (i.reg << 3) | i.rm) & 0x7ff;
  return `o = ${ea}; if (!c.x87j.stld64(c, ${seg}, o, ((e0 + ${a.off}) >>> 0), ${fop(a)}, ((e0 + ${b.off}) >>> 0), ${fop(b)})) { ${srcA} $BRKPREV ${srcB} }`;
}
