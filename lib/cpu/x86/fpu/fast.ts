/**
 * The common case of FADD/FSUB/FMUL/FDIV/FSQRT and float64 loads/stores: both operands normal,
 * the result normal (no overflow, no underflow). Significands are two uint32 words (hi has the
 * integer bit); add, subtract and multiply are exact on 16- and 32-bit pieces held in JS numbers
 * (all below 2^53), divide and square root take one BigInt division or square root, and the
 * rounding (RC, PC) is done on the words. Anything else returns false and the caller takes the
 * exact BigInt path of f80.ts, which is the reference: fast.test.ts checks that both agree.
 */

import { isqrt } from "./f80.ts";

const TWO32 = 4294967296;

/** The result of a successful fast operation. */
export let fse = 0, fhi = 0, flo = 0, finexact = false, fup = false;

/**
 * Round the normalised 96-bit magnitude hi:lo:g (+ sticky below g) with biased exponent e to p
 * bits by rc for sign s; false when the result is not a normal number.
 */
function round(s: number, e: number, hi: number, lo: number, g: number, sticky: boolean, p: number, rc: number): boolean {
  if (e < 1) return false;
  let round: number, rest: boolean;
  if (p === 64) {
    round = g >>> 31; rest = (g & 0x7fffffff) !== 0 || sticky;
  } else if (p === 53) {
    round = (lo >>> 10) & 1; rest = (lo & 0x3ff) !== 0 || g !== 0 || sticky;
    lo = (lo & ~0x7ff) >>> 0;
  } else {
    round = (hi >>> 7) & 1; rest = (hi & 0x7f) !== 0 || lo !== 0 || g !== 0 || sticky;
    hi = (hi & ~0xff) >>> 0; lo = 0;
  }
  finexact = round !== 0 || rest;
  let up = false;
  if (finexact) {
    switch (rc) {
      case 0: {
        const lsb = p === 64 ? lo & 1 : p === 53 ? (lo >>> 11) & 1 : (hi >>> 8) & 1;
        up = round !== 0 && (rest || lsb !== 0);
        break;
      }
      case 1: up = s !== 0; break;
      case 2: up = s === 0; break;
    }
  }
  fup = up;
  if (up) {
    const inc = p === 64 ? 1 : p === 53 ? 0x800 : 0;
    if (p === 24) {
      hi += 0x100;
    } else {
      lo += inc;
      if (lo >= TWO32) { lo -= TWO32; hi += 1; }
    }
    if (hi >= TWO32) { hi = 0x80000000; e += 1; }
  }
  if (e > 0x7ffe) return false;
  fse = (s << 15) | e; fhi = hi; flo = lo;
  return true;
}

/** a + b (sub: a - b) for normal a and b; false when the slow path must decide. */
export function addFast(ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number, sub: boolean, p: number, rc: number): boolean {
  let sa = ase >>> 15, sb = (bse >>> 15) ^ (sub ? 1 : 0);
  let ea = ase & 0x7fff, eb = bse & 0x7fff;
  if (ea < eb || (ea === eb && (ahi < bhi || (ahi === bhi && alo < blo)))) {
    let t = ea; ea = eb; eb = t;
    t = sa; sa = sb; sb = t;
    t = ahi; ahi = bhi; bhi = t;
    t = alo; alo = blo; blo = t;
  }
  // align b: (bhi, blo, bg) + sticky
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
    g = bg;
    lo = alo + blo;
    hi = ahi + bhi;
    if (lo >= TWO32) { lo -= TWO32; hi += 1; }
    if (hi >= TWO32) {
      sticky = sticky || (g & 1) !== 0;
      g = ((g >>> 1) | ((lo & 1) << 31)) >>> 0;
      lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
      hi = 0x80000000 + ((hi - TWO32) >>> 1);
      e += 1;
    }
    return round(sa, e, hi, lo, g, sticky, p, rc);
  }
  // a - b with |a| >= |b|; with sticky bits below bg the exact difference is one unit of g
  // less plus a nonzero fraction: subtract that unit and keep the sticky flag
  g = -bg - (sticky ? 1 : 0); lo = alo - blo; hi = ahi - bhi;
  if (g < 0) { g += TWO32; lo -= 1; }
  if (lo < 0) { lo += TWO32; hi -= 1; }
  if (hi === 0 && lo === 0 && g === 0) return false;      // exact zero: sign by RC (slow path)
  // normalise left
  while (hi === 0) { hi = lo; lo = g; g = 0; e -= 32; }
  const n = Math.clz32(hi);
  if (n > 0) {
    hi = ((hi << n) | (lo >>> (32 - n))) >>> 0;
    lo = ((lo << n) | (g >>> (32 - n))) >>> 0;
    g = (g << n) >>> 0;
    e -= n;
  }
  return round(sa, e, hi, lo, g, sticky, p, rc);
}

/** a * b for normal a and b. */
export function mulFast(ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number, p: number, rc: number): boolean {
  const s = (ase ^ bse) >>> 15;
  let e = (ase & 0x7fff) + (bse & 0x7fff) - 16383;
  const a0 = alo & 0xffff, a1 = alo >>> 16, a2 = ahi & 0xffff, a3 = ahi >>> 16;
  const b0 = blo & 0xffff, b1 = blo >>> 16, b2 = bhi & 0xffff, b3 = bhi >>> 16;
  // columns of 16-bit digits; each sum < 2^35, split with & and an exact division (no % or floor)
  let c = a0 * b0;
  const w0 = c & 0xffff; c = (c - w0) / 65536;
  c += a0 * b1 + a1 * b0;
  const w1 = c & 0xffff; c = (c - w1) / 65536;
  c += a0 * b2 + a1 * b1 + a2 * b0;
  const w2 = c & 0xffff; c = (c - w2) / 65536;
  c += a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0;
  const w3 = c & 0xffff; c = (c - w3) / 65536;
  c += a1 * b3 + a2 * b2 + a3 * b1;
  const w4 = c & 0xffff; c = (c - w4) / 65536;
  c += a2 * b3 + a3 * b2;
  const w5 = c & 0xffff; c = (c - w5) / 65536;
  c += a3 * b3;
  const w6 = c & 0xffff; c = (c - w6) / 65536;
  const w7 = c;
  let hi = w7 * 65536 + w6, lo = w5 * 65536 + w4, g = w3 * 65536 + w2;
  let sticky = w1 !== 0 || w0 !== 0;
  if (hi >= 0x80000000) {
    e += 1;
  } else {
    hi = ((hi << 1) | (lo >>> 31)) >>> 0;
    lo = ((lo << 1) | (g >>> 31)) >>> 0;
    g = ((g << 1) | (w1 >>> 15)) >>> 0;
    sticky = (w1 & 0x7fff) !== 0 || w0 !== 0;
  }
  return round(s, e, hi, lo, g, sticky, p, rc);
}

/** a / b for normal a and b: one BigInt division for 66 quotient bits, the remainder as sticky. */
export function divFast(ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number, p: number, rc: number): boolean {
  const s = (ase ^ bse) >>> 15;
  let e = (ase & 0x7fff) - (bse & 0x7fff) + 16383;
  let sh = 65n;
  if (ahi < bhi || (ahi === bhi && alo < blo)) { e -= 1; sh = 66n; }
  const n = ((BigInt(ahi) << 32n) | BigInt(alo)) << sh;
  const b = (BigInt(bhi) << 32n) | BigInt(blo);
  const q = n / b;                                    // in [2^65, 2^66)
  const sticky = q * b !== n;
  const lo64 = Number(q & 0xffffffffn);
  return round(s, e, Number(q >> 34n), ((Number(q >> 2n & 0xffffffffn)) >>> 0), ((lo64 & 3) << 30) >>> 0, sticky, p, rc);
}

/** float64 words of a normal double → extended; false for zero, denormal, inf or NaN. */
export function fromF64Fast(lo: number, hi: number): boolean {
  const e = (hi >>> 20) & 0x7ff;
  if (e === 0 || e === 0x7ff) return false;
  fse = ((hi >>> 31) << 15) | (e - 1023 + 16383);
  fhi = (0x80000000 | ((hi & 0xfffff) << 11) | (lo >>> 21)) >>> 0;
  flo = (lo << 11) >>> 0;
  return true;
}

/** float32 bits of a normal float → extended; false for zero, denormal, inf or NaN. */
export function fromF32Fast(bits: number): boolean {
  const e = (bits >>> 23) & 0xff;
  if (e === 0 || e === 0xff) return false;
  fse = ((bits >>> 31) << 15) | (e - 127 + 16383);
  fhi = (0x80000000 | ((bits & 0x7fffff) << 8)) >>> 0;
  flo = 0;
  return true;
}

/** Normal extended → float64 words (flo, fhi) when the rounded result is a normal double. */
export function toF64Fast(se: number, hi: number, lo: number, rc: number): boolean {
  const e = se & 0x7fff;
  if (e < 16383 - 1022 || e > 16383 + 1023 || hi < 0x80000000) return false;
  if (!round(se >>> 15, e, hi, lo, 0, false, 53, rc)) return false;
  const de = (fse & 0x7fff) - 16383 + 1023;
  if (de < 1 || de > 0x7fe) return false;
  const h = ((fse >>> 15) << 31) | (de << 20) | ((fhi >>> 11) & 0xfffff);
  flo = ((fhi << 21) | (flo >>> 11)) >>> 0;
  fhi = h >>> 0;
  return true;
}

/** sqrt of a positive normal value: the integer square root of the 133-bit radicand (67 root bits). */
export function sqrtFast(se: number, hi: number, lo: number, p: number, rc: number): boolean {
  if (se & 0x8000) return false;
  const E = (se & 0x7fff) - 16383;
  // radicand R = m << s with an even exponent X: value = R * 2^X
  const s = E & 1 ? 0 : 1;
  const X = E - 63 - s;
  const n = ((BigInt(hi) << 32n) | BigInt(lo)) << BigInt(68 + s);
  const q = isqrt(n);                                  // 66 or 67 bits
  const sticky = q * q !== n;
  const qH = Number(q >> 32n), qL = Number(q & 0xffffffffn);
  let h: number, l: number, g: number, L: number;
  if (qH >= 17179869184) { L = 67; h = Math.floor(qH / 8); l = ((qH & 7) << 29 | (qL >>> 3)) >>> 0; g = ((qL & 7) << 29) >>> 0; }
  else { L = 66; h = Math.floor(qH / 4); l = ((qH & 3) << 30 | (qL >>> 2)) >>> 0; g = ((qL & 3) << 30) >>> 0; }
  return round(0, L - 1 + (X - 68) / 2 + 16383, h, l, g, sticky, p, rc);
}

/**
 * Compare two values that are each zero, normal or infinite: 0 less, 1 equal, 2 greater (the
 * f80.ts CMP_ codes), or -1 when either is anything else (NaN, denormal, unsupported).
 */
export function cmpFast(ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number): number {
  const ea = ase & 0x7fff, eb = bse & 0x7fff;
  const okA = ea === 0 ? ahi === 0 && alo === 0 : ea === 0x7fff ? ahi === 0x80000000 && alo === 0 : ahi >= 0x80000000;
  const okB = eb === 0 ? bhi === 0 && blo === 0 : eb === 0x7fff ? bhi === 0x80000000 && blo === 0 : bhi >= 0x80000000;
  if (!okA || !okB) return -1;
  const za = ea === 0, zb = eb === 0;
  if (za && zb) return 1;
  const sa = za ? 0 : ase >>> 15, sb = zb ? 0 : bse >>> 15;
  if (sa !== sb) return sa ? 0 : 2;
  let mag: number;
  if (za) mag = -1;
  else if (zb) mag = 1;
  else if (ea !== eb) mag = ea > eb ? 1 : -1;
  else if (ahi !== bhi) mag = ahi > bhi ? 1 : -1;
  else mag = alo === blo ? 0 : alo > blo ? 1 : -1;
  if (mag === 0) return 1;
  return (mag > 0) !== (sa !== 0) ? 2 : 0;
}

/** A 16/32-bit integer → extended words (exact). */
export function fromInt32Fast(v: number): void {
  if (v === 0) { fse = 0; fhi = 0; flo = 0; return; }
  const s = v < 0 ? 1 : 0;
  const a = s ? -v : v;                               // <= 2^31
  const n = Math.clz32(a);
  fse = (s << 15) | (16383 + 31 - n);
  fhi = (a * 2 ** n) >>> 0; flo = 0;
}

/**
 * A normal extended below 2^31 in magnitude → integer by RC into `fint`, with finexact/fup;
 * false when the value needs the slow path (too large: possibly out of range).
 */
export let fint = 0;
export function toInt32Fast(se: number, hi: number, lo: number, rc: number): boolean {
  const E = (se & 0x7fff) - 16383;
  if (E > 30 || hi < 0x80000000 || (se & 0x7fff) === 0) return false;
  const s = se >>> 15;
  let q: number, cmp: number, nz: boolean;
  if (E < 0) {
    q = 0;
    cmp = E < -1 ? -1 : hi === 0x80000000 && lo === 0 ? 0 : 1;   // E = -1: [0.5, 1)
    nz = true;
  } else {
    const k = 31 - E;                                   // fraction bits in hi
    q = hi >>> k;
    const r = (hi & ((1 << k) - 1)) >>> 0, half = 2 ** (k - 1);
    cmp = r > half || (r === half && lo !== 0) ? 1 : r === half ? 0 : -1;
    nz = r !== 0 || lo !== 0;
  }
  let up = false;
  if (nz) {
    switch (rc) {
      case 0: up = cmp > 0 || (cmp === 0 && (q & 1) !== 0); break;
      case 1: up = s !== 0; break;
      case 2: up = s === 0; break;
    }
    if (up) q += 1;
  }
  finexact = nz; fup = up;
  fint = s ? -q : q;
  return true;
}

/** Normal extended → float32 bits (fint) when the rounded result is a normal float. */
export function toF32Fast(se: number, hi: number, lo: number, rc: number): boolean {
  const e = se & 0x7fff;
  if (e < 16383 - 126 || e > 16383 + 127 || hi < 0x80000000) return false;
  if (!round(se >>> 15, e, hi, lo, 0, false, 24, rc)) return false;
  const fe = (fse & 0x7fff) - 16383 + 127;
  if (fe < 1 || fe > 0xfe) return false;
  fint = (((fse >>> 15) << 31) | (fe << 23) | ((fhi >>> 8) & 0x7fffff)) >>> 0;
  return true;
}
