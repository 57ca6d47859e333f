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
 * bits by rc for sign s; false when the result is not a normal number. The default control
 * word's case (PC 64 bits, to nearest) is small enough for the engine to inline; roundAny()
 * does every case.
 */
function round(s: number, e: number, hi: number, lo: number, g: number, sticky: boolean, p: number, rc: number): boolean {
  if (p !== 64 || rc !== 0 || e < 1) return roundAny(s, e, hi, lo, g, sticky, p, rc);
  const rb = g >>> 31, rest = (g & 0x7fffffff) !== 0 || sticky;
  finexact = rb !== 0 || rest;
  fup = rb !== 0 && (rest || (lo & 1) !== 0);
  if (fup) {
    lo += 1;
    if (lo >= TWO32) { lo = 0; hi += 1; if (hi >= TWO32) { hi = 0x80000000; e += 1; } }
  }
  if (e > 0x7ffe) return false;
  fse = (s << 15) | e; fhi = hi; flo = lo;
  return true;
}

function roundAny(s: number, e: number, hi: number, lo: number, g: number, sticky: boolean, p: number, rc: number): boolean {
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

/** a * b for normal a and b: four 32x32-bit products, each split exactly into two words. */
export function mulFast(ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number, p: number, rc: number): boolean {
  const s = (ase ^ bse) >>> 15;
  let e = (ase & 0x7fff) + (bse & 0x7fff) - 16383;
  // x*y < 2^64 is rounded in a double (error <= 2^11), its low word is exact from Math.imul,
  // so (x*y - low) / 2^32 is the high word within 2^-20: Math.round makes it exact.
  const l00 = Math.imul(alo, blo) >>> 0, h00 = Math.round((alo * blo - l00) / TWO32);
  const l01 = Math.imul(alo, bhi) >>> 0, h01 = Math.round((alo * bhi - l01) / TWO32);
  const l10 = Math.imul(ahi, blo) >>> 0, h10 = Math.round((ahi * blo - l10) / TWO32);
  const l11 = Math.imul(ahi, bhi) >>> 0, h11 = Math.round((ahi * bhi - l11) / TWO32);
  const m1 = h00 + l01 + l10, w1 = m1 >>> 0;           // sums below 2^34: >>> 0 is mod 2^32
  const m2 = h01 + h10 + l11 + (m1 - w1) / TWO32, w2 = m2 >>> 0;
  const w3 = h11 + (m2 - w2) / TWO32;
  if (w3 >= 0x80000000) return round(s, e + 1, w3, w2, w1, l00 !== 0, p, rc);
  return round(s, e, ((w3 << 1) | (w2 >>> 31)) >>> 0, ((w2 << 1) | (w1 >>> 31)) >>> 0, ((w1 << 1) | (l00 >>> 31)) >>> 0,
    (l00 & 0x7fffffff) !== 0, p, rc);
}

/**
 * a / b for normal a and b, by long division in JS numbers: the integer bit, then four 20-bit
 * quotient chunks, each estimated in floating point (off by at most one) and corrected so the
 * remainder R (two words) stays in [0, b); 81 or 80 quotient bits, the remainder as sticky.
 */
export function divFast(ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number, p: number, rc: number): boolean {
  const s = (ase ^ bse) >>> 15;
  let e = (ase & 0x7fff) - (bse & 0x7fff) + 16383;
  let rh = ahi, rl = alo, q0 = 0;
  if (ahi > bhi || (ahi === bhi && alo >= blo)) {
    q0 = 1; rl -= blo; rh -= bhi;
    if (rl < 0) { rl += TWO32; rh -= 1; }
  } else e -= 1;
  const inv = 1048576 / (bhi * TWO32 + blo);
  let top = q0, bot = 0;
  for (let k = 0; k < 4; k++) {
    let q = Math.floor((rh * TWO32 + rl) * inv);
    // R*2^20 - q*b: R*2^20 = Rh*2^32 + Rl (Rh < 2^52), q*b = t1*2^32 + t0l (q <= 2^20: t1 < 2^53)
    const t0 = q * blo, t0h = Math.floor(t0 / TWO32), t0l = t0 - t0h * TWO32;
    let lo = ((rl << 20) >>> 0) - t0l, hi = rh * 1048576 + (rl >>> 12) - (q * bhi + t0h);
    if (lo < 0) { lo += TWO32; hi -= 1; }
    while (hi < 0) { q -= 1; lo += blo; hi += bhi; if (lo >= TWO32) { lo -= TWO32; hi += 1; } }
    while (hi > bhi || (hi === bhi && lo >= blo)) { q += 1; lo -= blo; hi -= bhi; if (lo < 0) { lo += TWO32; hi -= 1; } }
    rh = hi; rl = lo;
    if (k < 2) top = top * 1048576 + q; else bot = bot * 1048576 + q;
  }
  // Q = top * 2^40 + bot, placed in the 96-bit window with its leading bit at the top.
  const sticky = rh !== 0 || rl !== 0;
  if (q0) {
    const hi = Math.floor(top / 512), r1 = top - hi * 512, bh = Math.floor(bot / 131072);
    return round(s, e, hi, r1 * 8388608 + bh, (bot - bh * 131072) * 32768, sticky, p, rc);
  }
  const hi = Math.floor(top / 256), r1 = top - hi * 256, bh = Math.floor(bot / 65536);
  return round(s, e, hi, r1 * 16777216 + bh, (bot - bh * 65536) * 65536, sticky, p, rc);
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
  if (rc === 0) {
    // to nearest, inline: 11 bits below the double's last bit
    const rb = lo & 0x400, rest = (lo & 0x3ff) !== 0;
    finexact = rb !== 0 || rest;
    fup = rb !== 0 && (rest || (lo & 0x800) !== 0);
    let l = lo - (lo & 0x7ff), h = hi, x = e;
    if (fup) {
      l += 0x800;
      if (l >= TWO32) { l = 0; h += 1; if (h >= TWO32) { h = 0x80000000; x += 1; } }
    }
    const de = x - 16383 + 1023;
    if (de > 0x7fe) return false;
    fhi = ((((se >>> 15) << 31) | (de << 20) | ((h >>> 11) & 0xfffff)) >>> 0);
    flo = ((h << 21) | (l >>> 11)) >>> 0;
    fse = se;
    return true;
  }
  if (!round(se >>> 15, e, hi, lo, 0, false, 53, rc)) return false;
  const de = (fse & 0x7fff) - 16383 + 1023;
  if (de < 1 || de > 0x7fe) return false;
  const h = ((fse >>> 15) << 31) | (de << 20) | ((fhi >>> 11) & 0xfffff);
  flo = ((fhi << 21) | (flo >>> 11)) >>> 0;
  fhi = h >>> 0;
  return true;
}

const TWO26 = 67108864;

/**
 * sqrt of a positive normal value: q = floor(sqrt(m * 2^(68+s))) (66 or 67 bits) with sticky
 * = (q^2 != radicand). A double square root gives Y ~ sqrt(T), T = m' * 2^38 (m' = m * 2^s);
 * the remainder T - Y^2 is computed exactly in 26-bit limbs, and one Newton step gives
 * sqrt(T) * 2^15 = Y * 2^15 + D to within 2^-33. Unless D is within 2^-25 of an integer
 * (then, and only then, the root may be exact: one BigInt square root decides), q is
 * Y * 2^15 + floor(D) and inexact.
 */
export function sqrtFast(se: number, hi: number, lo: number, p: number, rc: number): boolean {
  if (se & 0x8000) return false;
  const E = (se & 0x7fff) - 16383;
  // radicand R = m << (68 + s) with an even exponent X: value = R * 2^(X - 68)
  const s = E & 1 ? 0 : 1;
  const X = E - 63 - s;
  const mh = s ? hi * 2 + (lo >>> 31) : hi, ml = s ? (lo << 1) >>> 0 : lo;       // m' (65 bits at most)
  const Y = Math.floor(Math.sqrt(mh * TWO32 + ml) * 524288);                     // ~ sqrt(T), < 2^51.5
  const yh = Math.floor(Y / TWO26), yl = Y - yh * TWO26;
  // T - Y^2 in limbs of 26 bits: T = m' * 2^38, Y^2 = yh^2 * 2^52 + 2*yh*yl * 2^26 + yl^2
  let d = -yl * yl;
  let c = Math.floor(d / TWO26);
  const r0 = d - c * TWO26;
  d = (ml & 0x3fff) * 4096 - 2 * yh * yl + c;
  c = Math.floor(d / TWO26);
  const r1 = d - c * TWO26;
  const mhl = mh % 256;
  d = (ml >>> 14) + mhl * 262144 - yh * yh + c;
  c = Math.floor(d / TWO26);
  const r2 = d - c * TWO26;
  const d3 = (mh - mhl) / 256 + c;
  const rem = ((d3 * TWO26 + r2) * TWO26 + r1) * TWO26 + r0;                   // small: |rem| < 2^56
  const D = rem * 16384 / Y;
  const fl = Math.floor(D), fr = D - fl;
  if (fr < 3e-8 || fr > 1 - 3e-8) return sqrtExact(hi, lo, s, X, p, rc);
  const dq = Math.floor(fl / 32768);
  const yq = Y + dq, r15 = fl - dq * 32768;                                       // q = yq * 2^15 + r15
  if (yq >= 2251799813685248) {                                                   // q >= 2^66: 67 bits
    const h = Math.floor(yq / 1048576);
    return round(0, 66 + (X - 68) / 2 + 16383, h, (yq - h * 1048576) * 4096 + (r15 >>> 3), ((r15 & 7) << 29) >>> 0, true, p, rc);
  }
  const h = Math.floor(yq / 524288);
  return round(0, 65 + (X - 68) / 2 + 16383, h, (yq - h * 524288) * 8192 + (r15 >>> 2), ((r15 & 3) << 30) >>> 0, true, p, rc);
}

/** The BigInt square root for sqrtFast's near-exact cases. */
function sqrtExact(hi: number, lo: number, s: number, X: number, p: number, rc: number): boolean {
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
