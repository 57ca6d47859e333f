/**
 * Exact x87 80-bit extended arithmetic on integers (BigInt significands), never on JS doubles.
 *
 * A value is a pair: `se` (bit 15 sign, bits 14..0 biased exponent, bias 16383) and `m` (the
 * 64-bit significand with its explicit integer bit 63). Every operation takes a `Ctx` holding
 * the control word (RC, PC, exception masks) and leaves its result in `ctx.se`/`ctx.m`, the
 * exceptions it raised in `ctx.exc` and the round-up indication (C1) in `ctx.c1`. What to do
 * with an unmasked exception (write or not, pop or not) is the caller's (fpu.ts) business; the
 * only unmasked behaviour decided here is the register result of an unmasked overflow or
 * underflow, which is the rounded value with its exponent wrapped by 24576 (Intel SDM vol. 1,
 * 4.9.1.4/4.9.1.5), and the result of an unmasked-UE store, which is not written.
 */

export const IE = 0x01, DE = 0x02, ZE = 0x04, OE = 0x08, UE = 0x10, PE = 0x20, SF = 0x40;
export const RC_NEAREST = 0, RC_DOWN = 1, RC_UP = 2, RC_ZERO = 3;

export const enum Kind { Zero, Denormal, Normal, Inf, QNaN, SNaN, Unsupported }

export const BIT63 = 1n << 63n;
export const QBIT = 1n << 62n;
export const M64 = (1n << 64n) - 1n;
/** The default NaN ("real indefinite"). */
export const IND_SE = 0xffff, IND_M = 0xc000000000000000n;

/** Exponent (biased) range of the extended format. */
const EMIN = -16382, EMAX = 16383, BIAS = 16383;
/** Bias adjustment of an unmasked overflow/underflow result in a register. */
const ADJ = 24576;

/**
 * Tininess is detected after rounding on the x87 (the result, rounded to the destination's
 * precision with an unbounded exponent, is below the smallest normal). Measured against the
 * host's x87 by test/difftest/fpu.test.ts.
 */
export const TINY_AFTER_ROUNDING = true;

export class Ctx {
  /** Control word: masks bits 0..5, PC bits 8..9, RC bits 10..11. */
  cw = 0x037f;
  exc = 0;
  c1 = 0;
  /** The source operand was a denormal in its memory format (float32/64), now normalised. */
  srcDen = false;
  se = 0;
  m = 0n;
  get rc(): number { return (this.cw >> 10) & 3; }
  /** Significand bits for PC (00: 24, 10: 53, 11: 64; 01 is reserved and behaves as 64). */
  get pbits(): number { const pc = (this.cw >> 8) & 3; return pc === 0 ? 24 : pc === 2 ? 53 : 64; }
  masked(e: number): boolean { return (this.cw & e) !== 0; }
  set(se: number, m: bigint): void { this.se = se; this.m = m; }
  reset(): void { this.exc = 0; this.c1 = 0; this.srcDen = false; }
}

export function classify(se: number, m: bigint): Kind {
  const e = se & 0x7fff;
  if (e === 0x7fff) {
    if (!(m & BIT63)) return Kind.Unsupported;
    if ((m & ~BIT63) === 0n) return Kind.Inf;
    return m & QBIT ? Kind.QNaN : Kind.SNaN;
  }
  if (e === 0) return m === 0n ? Kind.Zero : Kind.Denormal;
  return m & BIT63 ? Kind.Normal : Kind.Unsupported;
}

export const isNaNKind = (k: Kind): boolean => k === Kind.QNaN || k === Kind.SNaN;

export function bitlen(x: bigint): number {
  let n = 0;
  while (x >= 0x10000000000000000n) { x >>= 64n; n += 64; }
  const hi = Number(x >> 32n);
  if (hi !== 0) return n + 64 - Math.clz32(hi);
  const lo = Number(x);
  return lo === 0 ? n : n + 32 - Math.clz32(lo);
}

/** Exponent of the significand's LSB: value = m * 2^lsbExp(se). */
export function lsbExp(se: number): number {
  const e = se & 0x7fff;
  return (e === 0 ? 1 : e) - BIAS - 63;
}

// ---------------------------------------------------------------------------------------------
// Rounding

/** Output of roundCore: the rounded magnitude is rq * 2^rlsb; rL = bitlen(rq). */
let rq = 0n, rlsb = 0, rL = 0;
const INEXACT = 1, UP = 2;

/** BigInt constants by shift count (saves a BigInt() conversion and a shift per use). */
const TBL = 480;
const BIG: bigint[] = [], POW2: bigint[] = [], MASK: bigint[] = [];
for (let k = 0; k < TBL; k++) { BIG.push(BigInt(k)); POW2.push(1n << BigInt(k)); MASK.push((1n << BigInt(k)) - 1n); }
const big = (k: number): bigint => (k < TBL ? BIG[k]! : BigInt(k));

/**
 * Round |v| = (sig + s) * 2^exp, where s is 0 when !sticky and in (0, 1) when sticky, to p
 * significant bits; with `emin` finite, values below 2^emin keep the fixed LSB 2^(emin-p+1)
 * (denormalisation). L = bitlen(sig). Callers give at least p + 2 bits when sticky. Returns
 * INEXACT|UP flags.
 */
function roundCore(sign: number, sig: bigint, L: number, exp: number, sticky: boolean, p: number, emin: number, rc: number): number {
  const E = exp + L - 1;
  let lsb = (E < emin ? emin : E) - (p - 1);
  const k = lsb - exp;
  let q: bigint, cmp: number, nz: boolean, qL: number;
  if (k > 0) {
    if (k < TBL) {
      q = sig >> BIG[k]!;
      const r = sig & MASK[k]!;
      const half = POW2[k - 1]!;
      cmp = r > half ? 1 : r < half ? -1 : sticky ? 1 : 0;
      nz = r !== 0n || sticky;
    } else {
      const K = BigInt(k);
      q = sig >> K;
      const r = sig & ((1n << K) - 1n);
      const half = 1n << (K - 1n);
      cmp = r > half ? 1 : r < half ? -1 : sticky ? 1 : 0;
      nz = r !== 0n || sticky;
    }
    qL = L > k ? L - k : 0;
  } else {
    q = sig << big(-k);
    cmp = -1;
    nz = sticky;
    qL = L - k;
  }
  let f = 0;
  if (nz) {
    f = INEXACT;
    let up = false;
    switch (rc) {
      case RC_NEAREST: up = cmp > 0 || (cmp === 0 && (q & 1n) !== 0n); break;
      case RC_DOWN: up = sign !== 0; break;
      case RC_UP: up = sign === 0; break;
    }
    if (up) {
      f |= UP;
      q += 1n;
      if (q === POW2[qL]) {             // carried into a new bit
        if (qL === p) { q >>= 1n; lsb += 1; } else qL++;
      }
    }
  }
  rq = q; rlsb = lsb; rL = q === 0n ? 0 : qL;
  return f;
}

/** Pack rq * 2^rlsb (biased exponent in range, or denormal) into ctx as an extended value. */
function packExt(ctx: Ctx, sign: number, forceNormal: boolean): void {
  if (rq === 0n) { ctx.set(sign << 15, 0n); return; }
  const L = rL;
  const Eq = rlsb + L - 1;
  if (Eq >= EMIN || forceNormal) {
    ctx.set((sign << 15) | ((Eq + BIAS) & 0x7fff), L === 64 ? rq : rq << BIG[64 - L]!);
  } else {
    ctx.set(sign << 15, rq << big(rlsb - (EMIN - 63)));
  }
}

export interface Format { p: number; emin: number; emax: number }
export const F32: Format = { p: 24, emin: -126, emax: 127 };
export const F64: Format = { p: 53, emin: -1022, emax: 1023 };

/** Outcome of roundFormat. */
export const R_FINITE = 0, R_INF = 1, R_MAX = 2, R_NOWRITE = 3, R_ADJUSTED = 4;

/**
 * Round a nonzero exact value to p bits in a format with exponent range [emin, emax] and raise
 * OE/UE/PE (C1 = rounded up). With `reg` (a register destination) unmasked OE/UE give the
 * exponent-wrapped result; without (a memory store) they give R_NOWRITE. R_FINITE leaves the
 * value in rq/rlsb (rq may be 0 for a masked underflow to zero).
 */
function roundFormat(ctx: Ctx, sign: number, sig: bigint, exp: number, sticky: boolean, p: number, emin: number, emax: number, reg: boolean): number {
  const rc = ctx.rc;
  const L = bitlen(sig);
  const E = exp + L - 1;
  let f = roundCore(sign, sig, L, exp, sticky, p, -Infinity, rc);
  const Eu = rlsb + rL - 1;
  if (Eu > emax) {
    ctx.exc |= OE;
    if (ctx.masked(OE)) {
      ctx.exc |= PE;
      const toInf = rc === RC_NEAREST || (rc === RC_DOWN && sign !== 0) || (rc === RC_UP && sign === 0);
      ctx.c1 = toInf ? 1 : 0;
      return toInf ? R_INF : R_MAX;
    }
    if (!reg) return R_NOWRITE;
    if (Eu - ADJ > emax) { ctx.exc |= PE; ctx.c1 = 1; return R_INF; }  // beyond even the wrapped range
    if (f & INEXACT) { ctx.exc |= PE; ctx.c1 = f & UP ? 1 : 0; }
    rlsb -= ADJ;
    return R_ADJUSTED;
  }
  const tiny = TINY_AFTER_ROUNDING ? Eu < emin : E < emin;
  if (tiny) {
    if (ctx.masked(UE)) {
      f = roundCore(sign, sig, L, exp, sticky, p, emin, rc);
      if (f & INEXACT) { ctx.exc |= UE | PE; ctx.c1 = f & UP ? 1 : 0; }
      return R_FINITE;
    }
    ctx.exc |= UE;
    if (!reg) return R_NOWRITE;
    if (Eu + ADJ < emin) { ctx.exc |= PE; ctx.c1 = 0; rq = 0n; rL = 0; return R_FINITE; }
    if (f & INEXACT) { ctx.exc |= PE; ctx.c1 = f & UP ? 1 : 0; }
    rlsb += ADJ;
    return R_ADJUSTED;
  }
  if (f & INEXACT) { ctx.exc |= PE; ctx.c1 = f & UP ? 1 : 0; }
  return R_FINITE;
}

/** Round the exact nonzero value sign * (sig + sticky) * 2^exp to extended with p bits into ctx. */
export function roundPackExt(ctx: Ctx, sign: number, sig: bigint, exp: number, sticky: boolean, p: number): void {
  const r = roundFormat(ctx, sign, sig, exp, sticky, p, EMIN, EMAX, true);
  if (r === R_INF) ctx.set((sign << 15) | 0x7fff, BIT63);
  else if (r === R_MAX) ctx.set((sign << 15) | 0x7ffe, (M64 << BigInt(64 - p)) & M64);
  else packExt(ctx, sign, r === R_ADJUSTED);
}

// ---------------------------------------------------------------------------------------------
// Special operands

export function invalid(ctx: Ctx): void {
  ctx.exc |= IE;
  ctx.set(IND_SE, IND_M);
}

/** NaN result of a two-operand operation where at least one operand is a NaN (SDM vol. 1 table 4-7). */
function propagateNaN(ctx: Ctx, ase: number, am: bigint, ka: Kind, bse: number, bm: bigint, kb: Kind): void {
  if (ka === Kind.SNaN || kb === Kind.SNaN) ctx.exc |= IE;
  const aq = am | QBIT, bq = bm | QBIT;
  if (isNaNKind(ka) && isNaNKind(kb)) {
    if (ka === Kind.SNaN && kb === Kind.QNaN) { ctx.set(bse, bq); return; }
    if (kb === Kind.SNaN && ka === Kind.QNaN) { ctx.set(ase, aq); return; }
    if (aq > bq) ctx.set(ase, aq);
    else if (bq > aq) ctx.set(bse, bq);
    else ctx.set(ase < bse ? ase : bse, aq);
    return;
  }
  if (isNaNKind(ka)) ctx.set(ase, aq);
  else ctx.set(bse, bq);
}

/**
 * The common prologue of a two-operand arithmetic operation: unsupported operands, NaNs.
 * Returns true when the result is decided (left in ctx).
 */
function twoOpSpecial(ctx: Ctx, ase: number, am: bigint, ka: Kind, bse: number, bm: bigint, kb: Kind): boolean {
  if (ka === Kind.Unsupported || kb === Kind.Unsupported) { invalid(ctx); return true; }
  if (isNaNKind(ka) || isNaNKind(kb)) { propagateNaN(ctx, ase, am, ka, bse, bm, kb); return true; }
  return false;
}

/** Raise DE for denormal operands; true when DE is unmasked (the operation stops). */
function denormal(ctx: Ctx, ka: Kind, kb: Kind): boolean {
  if (ka === Kind.Denormal || kb === Kind.Denormal || ctx.srcDen) {
    ctx.exc |= DE;
    return !ctx.masked(DE);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

/** a + b (or a - b with `sub`), rounded to `p` bits. */
export function add(ctx: Ctx, ase: number, am: bigint, bse: number, bm: bigint, sub: boolean, p: number): void {
  const ka = classify(ase, am), kb = classify(bse, bm);
  if (twoOpSpecial(ctx, ase, am, ka, bse, bm, kb)) return;
  const sa = ase >> 15, sb = (bse >> 15) ^ (sub ? 1 : 0);
  if (ka === Kind.Inf && kb === Kind.Inf && sa !== sb) { invalid(ctx); return; }
  if (denormal(ctx, ka, kb)) return;
  if (ka === Kind.Inf) { ctx.set((sa << 15) | 0x7fff, BIT63); return; }
  if (kb === Kind.Inf) { ctx.set((sb << 15) | 0x7fff, BIT63); return; }
  if (ka === Kind.Zero && kb === Kind.Zero) {
    ctx.set((sa === sb ? sa : ctx.rc === RC_DOWN ? 1 : 0) << 15, 0n);
    return;
  }
  let xs = sa, xm = am, xe = lsbExp(ase), ys = sb, ym = bm, ye = lsbExp(bse);
  if (ka === Kind.Zero) { roundPackExt(ctx, ys, ym, ye, false, p); return; }
  if (kb === Kind.Zero) { roundPackExt(ctx, xs, xm, xe, false, p); return; }
  if (xe < ye) { [xs, xm, xe, ys, ym, ye] = [ys, ym, ye, xs, xm, xe]; }
  let d = xe - ye;
  if (d > 160) { ym = 1n; ye = xe - 160; d = 160; }
  const X = xm << BigInt(d);
  if (xs === ys) { roundPackExt(ctx, xs, X + ym, ye, false, p); return; }
  const diff = X - ym;
  if (diff === 0n) { ctx.set((ctx.rc === RC_DOWN ? 1 : 0) << 15, 0n); return; }
  if (diff > 0n) roundPackExt(ctx, xs, diff, ye, false, p);
  else roundPackExt(ctx, ys, -diff, ye, false, p);
}

export function mul(ctx: Ctx, ase: number, am: bigint, bse: number, bm: bigint, p: number): void {
  const ka = classify(ase, am), kb = classify(bse, bm);
  if (twoOpSpecial(ctx, ase, am, ka, bse, bm, kb)) return;
  const s = (ase ^ bse) >> 15;
  if ((ka === Kind.Inf && kb === Kind.Zero) || (ka === Kind.Zero && kb === Kind.Inf)) { invalid(ctx); return; }
  if (denormal(ctx, ka, kb)) return;
  if (ka === Kind.Inf || kb === Kind.Inf) { ctx.set((s << 15) | 0x7fff, BIT63); return; }
  if (ka === Kind.Zero || kb === Kind.Zero) { ctx.set(s << 15, 0n); return; }
  roundPackExt(ctx, s, am * bm, lsbExp(ase) + lsbExp(bse), false, p);
}

/** Normalise a nonzero significand to have bit 63 set; returns [m, lsb exponent]. */
function norm(m: bigint, e: number): [bigint, number] {
  const sh = 64 - bitlen(m);
  return [m << BigInt(sh), e - sh];
}

export function div(ctx: Ctx, ase: number, am: bigint, bse: number, bm: bigint, p: number): void {
  const ka = classify(ase, am), kb = classify(bse, bm);
  if (twoOpSpecial(ctx, ase, am, ka, bse, bm, kb)) return;
  const s = (ase ^ bse) >> 15;
  if ((ka === Kind.Inf && kb === Kind.Inf) || (ka === Kind.Zero && kb === Kind.Zero)) { invalid(ctx); return; }
  if (kb === Kind.Zero && ka !== Kind.Inf) {
    ctx.exc |= ZE;
    ctx.set((s << 15) | 0x7fff, BIT63);
    return;
  }
  if (denormal(ctx, ka, kb)) return;
  if (ka === Kind.Inf || kb === Kind.Zero) { ctx.set((s << 15) | 0x7fff, BIT63); return; }
  if (kb === Kind.Inf || ka === Kind.Zero) { ctx.set(s << 15, 0n); return; }
  const [xm, xe] = norm(am, lsbExp(ase));
  const [ym, ye] = norm(bm, lsbExp(bse));
  const n = (xm << 66n);
  const q = n / ym;
  roundPackExt(ctx, s, q, xe - ye - 66, q * ym !== n, p);
}

/** Integer square root (floor). */
export function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  const L = bitlen(n);
  let x: bigint;
  if (L > 104) {
    // a start within 2^-40 of sqrt(n) from the top 104 bits through a double, nudged above
    const sh = (L - 104) & ~1;
    const a = BigInt(Math.floor(Math.sqrt(Number(n >> BigInt(sh)))));
    x = ((a + (a >> 40n) + 2n) << BigInt(sh >> 1));
  } else x = 1n << BigInt((L + 1) >> 1); // >= sqrt(n)
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

export function sqrt(ctx: Ctx, ase: number, am: bigint, p: number): void {
  const k = classify(ase, am);
  if (k === Kind.Unsupported) { invalid(ctx); return; }
  if (k === Kind.SNaN) { ctx.exc |= IE; ctx.set(ase, am | QBIT); return; }
  if (k === Kind.QNaN) { ctx.set(ase, am); return; }
  if (k === Kind.Zero) { ctx.set(ase, 0n); return; }
  const s = ase >> 15;
  if (s) { invalid(ctx); return; }
  if (denormal(ctx, k, Kind.Zero)) return;
  if (k === Kind.Inf) { ctx.set(0x7fff, BIT63); return; }
  let [xm, xe] = norm(am, lsbExp(ase));
  if (xe & 1) { xm <<= 1n; xe -= 1; }
  const n = xm << 70n;
  const r = isqrt(n);
  roundPackExt(ctx, 0, r, (xe - 70) / 2, r * r !== n, p);
}

// ---------------------------------------------------------------------------------------------
// Comparison

export const CMP_LT = 0, CMP_EQ = 1, CMP_GT = 2, CMP_UN = 3;

/** Compare a with b. `quiet`: QNaN operands do not raise IE (FUCOM). */
export function compare(ctx: Ctx, ase: number, am: bigint, bse: number, bm: bigint, quiet: boolean): number {
  const ka = classify(ase, am), kb = classify(bse, bm);
  if (ka === Kind.Unsupported || kb === Kind.Unsupported || ka === Kind.SNaN || kb === Kind.SNaN) { ctx.exc |= IE; return CMP_UN; }
  if (isNaNKind(ka) || isNaNKind(kb)) { if (!quiet) ctx.exc |= IE; return CMP_UN; }
  if (ka === Kind.Denormal || kb === Kind.Denormal) ctx.exc |= DE;
  return cmpValues(ase, am, ka, bse, bm, kb);
}

function cmpValues(ase: number, am: bigint, ka: Kind, bse: number, bm: bigint, kb: Kind): number {
  const az = ka === Kind.Zero, bz = kb === Kind.Zero;
  if (az && bz) return CMP_EQ;
  const sa = az ? 0 : ase >> 15, sb = bz ? 0 : bse >> 15;
  if (az) return sb ? CMP_GT : CMP_LT;
  if (bz) return sa ? CMP_LT : CMP_GT;
  if (sa !== sb) return sa ? CMP_LT : CMP_GT;
  const mag = cmpMag(ase, am, ka, bse, bm, kb);
  if (mag === 0) return CMP_EQ;
  return (mag > 0) !== (sa !== 0) ? CMP_GT : CMP_LT;
}

function cmpMag(ase: number, am: bigint, ka: Kind, bse: number, bm: bigint, kb: Kind): number {
  if (ka === Kind.Inf) return kb === Kind.Inf ? 0 : 1;
  if (kb === Kind.Inf) return -1;
  const [xm, xe] = norm(am, lsbExp(ase));
  const [ym, ye] = norm(bm, lsbExp(bse));
  if (xe !== ye) return xe > ye ? 1 : -1;
  return xm === ym ? 0 : xm > ym ? 1 : -1;
}

// ---------------------------------------------------------------------------------------------
// Rounding to integer

/** Round a finite nonzero |value| = m * 2^e to an integer by RC; returns [q, inexact, up]. */
function roundInt(sign: number, m: bigint, e: number, rc: number): [bigint, boolean, boolean] {
  if (e >= 0) return [m << BigInt(e), false, false];
  const k = -e;
  if (k > 70) {
    const up = rc === RC_DOWN ? sign !== 0 : rc === RC_UP ? sign === 0 : false;
    return [up ? 1n : 0n, true, up];
  }
  const K = BigInt(k);
  let q = m >> K;
  const r = m & ((1n << K) - 1n);
  if (r === 0n) return [q, false, false];
  const half = 1n << (K - 1n);
  let up = false;
  switch (rc) {
    case RC_NEAREST: up = r > half || (r === half && (q & 1n) !== 0n); break;
    case RC_DOWN: up = sign !== 0; break;
    case RC_UP: up = sign === 0; break;
  }
  if (up) q += 1n;
  return [q, true, up];
}

export function frndint(ctx: Ctx, ase: number, am: bigint): void {
  const k = classify(ase, am);
  if (k === Kind.Unsupported) { invalid(ctx); return; }
  if (k === Kind.SNaN) { ctx.exc |= IE; ctx.set(ase, am | QBIT); return; }
  if (k === Kind.QNaN || k === Kind.Inf || k === Kind.Zero) { ctx.set(ase, am); return; }
  if (denormal(ctx, k, Kind.Zero)) return;
  const s = ase >> 15;
  const [q, inexact, up] = roundInt(s, am, lsbExp(ase), ctx.rc);
  if (inexact) { ctx.exc |= PE; ctx.c1 = up ? 1 : 0; }
  if (q === 0n) { ctx.set(s << 15, 0n); return; }
  if (!inexact && lsbExp(ase) >= 0) { ctx.set(ase, am); return; }      // already an integer
  roundPackExt(ctx, s, q, 0, false, 64);
}

// ---------------------------------------------------------------------------------------------
// Conversions

/** Load from float32 bits: the extended value (SNaN kept signalling) and whether it was denormal. */
export function fromF32(ctx: Ctx, bits: number): boolean {
  const s = bits >>> 31, e = (bits >>> 23) & 0xff, f = bits & 0x7fffff;
  if (e === 0xff) { ctx.set((s << 15) | 0x7fff, BIT63 | (BigInt(f) << 40n)); return false; }
  if (e === 0) {
    if (f === 0) { ctx.set(s << 15, 0n); return false; }
    const [m, x] = norm(BigInt(f), -149);
    ctx.set((s << 15) | (x + 63 + BIAS), m);
    return true;
  }
  ctx.set((s << 15) | (e - 127 + BIAS), BIT63 | (BigInt(f) << 40n));
  return false;
}

export function fromF64(ctx: Ctx, bits: bigint): boolean {
  return fromF64Words(ctx, Number(bits & 0xffffffffn), Number(bits >> 32n));
}

/** fromF64 from the two little-endian words. */
export function fromF64Words(ctx: Ctx, lo: number, hi: number): boolean {
  const s = hi >>> 31, e = (hi >>> 20) & 0x7ff, f = BigInt((hi & 0xfffff) * 4294967296 + (lo >>> 0));
  if (e === 0x7ff) { ctx.set((s << 15) | 0x7fff, BIT63 | (f << 11n)); return false; }
  if (e === 0) {
    if (f === 0n) { ctx.set(s << 15, 0n); return false; }
    const [m, x] = norm(f, -1074);
    ctx.set((s << 15) | (x + 63 + BIAS), m);
    return true;
  }
  ctx.set((s << 15) | (e - 1023 + BIAS), BIT63 | (f << 11n));
  return false;
}

/** Load of an integer (exact). */
export function fromInt(ctx: Ctx, v: bigint): void {
  if (v === 0n) { ctx.set(0, 0n); return; }
  const s = v < 0n ? 1 : 0;
  const [m, x] = norm(s ? -v : v, 0);
  ctx.set((s << 15) | (x + 63 + BIAS), m);
}

/**
 * Store to float32/float64: returns the bits, or null when an unmasked exception prevents the
 * store (the caller checks IE/DE itself too).
 */
interface FloatConsts { fb: bigint; fracMask: bigint; qbit: bigint; expAllHi: bigint; signBit: bigint; maxFinite: bigint; bias: bigint; toTop: bigint }
const consts = (fmt: Format, eb: bigint): FloatConsts => {
  const fb = BigInt(fmt.p - 1);
  const expAll = (1n << eb) - 1n;
  return {
    fb, fracMask: (1n << fb) - 1n, qbit: 1n << (fb - 1n), expAllHi: expAll << fb, signBit: 1n << (fb + eb),
    maxFinite: ((expAll - 1n) << fb) | ((1n << fb) - 1n), bias: BigInt(fmt.emax), toTop: BigInt(64 - fmt.p),
  };
};
const C32 = consts(F32, 8n), C64 = consts(F64, 11n);

function toFloat(ctx: Ctx, se: number, m: bigint, fmt: Format): bigint | null {
  const K = fmt === F32 ? C32 : C64;
  const sign = se & 0x8000 ? K.signBit : 0n;
  const k = classify(se, m);
  switch (k) {
    case Kind.Unsupported: ctx.exc |= IE; return K.signBit | K.expAllHi | K.qbit;
    case Kind.SNaN: ctx.exc |= IE; // fall through
    case Kind.QNaN: return sign | K.expAllHi | K.qbit | ((m >> K.toTop) & K.fracMask);
    case Kind.Inf: return sign | K.expAllHi;
    case Kind.Zero: return sign;
  }
  // A denormal (or pseudo-denormal) source raises no DE on a store.
  const r = roundFormat(ctx, se >> 15, m, lsbExp(se), false, fmt.p, fmt.emin, fmt.emax, false);
  if (r === R_NOWRITE || r === R_ADJUSTED) return null;
  if (r === R_INF) return sign | K.expAllHi;
  if (r === R_MAX) return sign | K.maxFinite;
  if (rq === 0n) return sign;
  const L = rL;
  const Eq = rlsb + L - 1;
  if (Eq < fmt.emin) return sign | (rq << big(rlsb - (fmt.emin - fmt.p + 1)));
  return sign | ((BigInt(Eq) + K.bias) << K.fb) | ((L === fmt.p ? rq : rq << big(fmt.p - L)) & K.fracMask);
}

export function toF32(ctx: Ctx, se: number, m: bigint): number | null {
  const r = toFloat(ctx, se, m, F32);
  return r === null ? null : Number(r);
}
export function toF64(ctx: Ctx, se: number, m: bigint): bigint | null {
  return toFloat(ctx, se, m, F64);
}

/** Store to an integer of `bits` bits (16/32/64): the two's complement value as bigint. */
export function toInt(ctx: Ctx, se: number, m: bigint, bits: number, truncate = false): bigint {
  const indef = 1n << BigInt(bits - 1);
  const k = classify(se, m);
  if (k === Kind.Unsupported || k === Kind.Inf || isNaNKind(k)) { ctx.exc |= IE; return indef; }
  if (k === Kind.Zero) return 0n;
  const s = se >> 15;
  const [q, inexact, up] = roundInt(s, m, lsbExp(se), truncate ? RC_ZERO : ctx.rc);
  if (s ? q > indef : q >= indef) { ctx.exc |= IE; return indef; }
  if (inexact) { ctx.exc |= PE; ctx.c1 = up ? 1 : 0; }
  return s ? ((1n << BigInt(bits)) - q) & ((1n << BigInt(bits)) - 1n) : q;
}

/** Packed BCD (10 bytes) → extended (exact). Invalid digits are taken at their binary value. */
export function fromBCD(ctx: Ctx, b: Uint8Array): void {
  let v = 0n;
  for (let i = 8; i >= 0; i--) v = v * 100n + BigInt((b[i]! >> 4) * 10 + (b[i]! & 15));
  fromInt(ctx, v);
  if (b[9]! & 0x80) ctx.se |= 0x8000;
}

/** Extended → packed BCD (FBSTP): rounded by RC; out of range or NaN/inf gives the BCD indefinite. */
export function toBCD(ctx: Ctx, se: number, m: bigint): Uint8Array {
  const out = new Uint8Array(10);
  const indef = (): Uint8Array => { ctx.exc |= IE; out.fill(0); out[7] = 0xc0; out[8] = 0xff; out[9] = 0xff; return out; };
  const k = classify(se, m);
  if (k === Kind.Unsupported || k === Kind.Inf || isNaNKind(k)) return indef();
  const s = se >> 15;
  if (k === Kind.Zero) { out[9] = s ? 0x80 : 0; return out; }
  const [q, inexact, up] = roundInt(s, m, lsbExp(se), ctx.rc);
  if (q > 999999999999999999n) return indef();
  if (inexact) { ctx.exc |= PE; ctx.c1 = up ? 1 : 0; }
  let v = q;
  for (let i = 0; i < 9; i++) { const d = Number(v % 100n); v /= 100n; out[i] = ((d / 10) | 0) << 4 | (d % 10); }
  out[9] = s ? 0x80 : 0;
  return out;
}

// ---------------------------------------------------------------------------------------------
// FSCALE, FXTRACT, FPREM/FPREM1

/** Exponent (unbiased, of the leading 1) of a finite nonzero value. */
function expOf(se: number, m: bigint): number {
  return lsbExp(se) + bitlen(m) - 1;
}

/** ST0 * 2^trunc(ST1), into ctx. */
export function fscale(ctx: Ctx, ase: number, am: bigint, bse: number, bm: bigint): void {
  const ka = classify(ase, am), kb = classify(bse, bm);
  if (twoOpSpecial(ctx, ase, am, ka, bse, bm, kb)) return;
  const sa = ase >> 15, sb = bse >> 15;
  if (kb === Kind.Inf) {
    if ((!sb && ka === Kind.Zero) || (sb && ka === Kind.Inf)) { invalid(ctx); return; }
    if (denormal(ctx, ka, kb)) return;
    if (ka === Kind.Zero || ka === Kind.Inf) { ctx.set(ase, am); return; }
    if (sb) ctx.set(sa << 15, 0n); else ctx.set((sa << 15) | 0x7fff, BIT63);
    return;
  }
  if (denormal(ctx, ka, kb)) return;
  // a zero scale leaves ST0 as it is, even a denormal with UE unmasked (measured)
  // (a pseudo-denormal comes out normalised, with exponent 1)
  if (ka === Kind.Zero || ka === Kind.Inf || kb === Kind.Zero) { ctx.set(ka === Kind.Denormal && (am & BIT63) ? ase | 1 : ase, am); return; }
  let n = 0;
  const e = expOf(bse, bm);
  if (e >= 20) n = 1 << 20;
  else if (e >= 0) n = Number(bm >> BigInt(-lsbExp(bse)));
  if (sb) n = -n;
  roundPackExt(ctx, sa, am, lsbExp(ase) + n, false, 64);
}

/**
 * FXTRACT of ST0: leaves the exponent in ctx (se/m) and the significand in xse/xm.
 * Returns false when an unmasked exception stops it.
 */
export let xse = 0, xm = 0n;
export function fxtract(ctx: Ctx, se: number, m: bigint): boolean {
  const k = classify(se, m);
  if (k === Kind.Unsupported) { invalid(ctx); xse = IND_SE; xm = IND_M; return true; }
  if (isNaNKind(k)) {
    if (k === Kind.SNaN) ctx.exc |= IE;
    ctx.set(se, m | QBIT); xse = se; xm = m | QBIT; return true;
  }
  const s = se & 0x8000;
  if (k === Kind.Inf) { ctx.set(0x7fff, BIT63); xse = se; xm = m; return true; }
  if (k === Kind.Zero) {
    ctx.exc |= ZE;
    ctx.set(0xffff, BIT63); xse = se; xm = 0n; return true;
  }
  if (denormal(ctx, k, Kind.Zero)) return false;
  const e = expOf(se, m);
  const [nm] = norm(m, 0);
  xse = s | BIAS; xm = nm;
  fromInt(ctx, BigInt(e));
  return true;
}

/** Output of fprem: the quotient's low 3 bits (C0 = Q2, C3 = Q1, C1 = Q0) and C2 (incomplete). */
export let premQ = 0, premPartial = false, premSpecial = false;

/** FPREM (truncating quotient) or FPREM1 (IEEE, round-to-nearest quotient): ST0 rem ST1 into ctx. */
export function fprem(ctx: Ctx, ase: number, am: bigint, bse: number, bm: bigint, ieee: boolean): void {
  premQ = 0; premPartial = false; premSpecial = true;
  const ka = classify(ase, am), kb = classify(bse, bm);
  if (twoOpSpecial(ctx, ase, am, ka, bse, bm, kb)) return;
  if (ka === Kind.Inf || kb === Kind.Zero) { invalid(ctx); return; }
  premSpecial = false;
  if (denormal(ctx, ka, kb)) return;
  if (kb === Kind.Inf || ka === Kind.Zero) {
    // the dividend passes through the normaliser: a pseudo-denormal gets exponent 1
    ctx.set(ka === Kind.Denormal && (am & BIT63) ? ase | 1 : ase, am);
    return;
  }
  const sa = ase >> 15;
  const ea = expOf(ase, am), eb = expOf(bse, bm);
  const d = ea - eb;
  const A = am, B = bm, la = lsbExp(ase), lb = lsbExp(bse);
  // a = A*2^la, b = B*2^lb; work at the smaller lsb.
  const lo = Math.min(la, lb);
  if (d < 64) {
    const X = A << BigInt(la - lo), Y = B << BigInt(lb - lo);
    let q = X / Y;
    let r = X - q * Y;
    let neg = false;
    if (ieee) {
      const r2 = r * 2n;
      if (r2 > Y || (r2 === Y && (q & 1n) !== 0n)) { q += 1n; r = Y - r; neg = true; }
    }
    premQ = Number(q & 7n);
    const rs = neg ? sa ^ 1 : sa;
    if (r === 0n) { ctx.set(sa << 15, 0n); return; }
    roundPackExt(ctx, rs, r, lo, false, 64);
    return;
  }
  premPartial = true;
  const n = 32 + (d % 32);
  // QQ = trunc(a / b / 2^(d-n)); r = a - b*QQ*2^(d-n)
  const sh = d - n;
  const lo2 = Math.min(la, lb + sh);
  const X = A << BigInt(la - lo2), Y = B << BigInt(lb + sh - lo2);
  const q = X / Y;
  const r = X - q * Y;
  if (r === 0n) { ctx.set(sa << 15, 0n); return; }
  roundPackExt(ctx, sa, r, lo2, false, 64);
}

// ---------------------------------------------------------------------------------------------
// Constants

/** The 128-bit significands of the x87 constants (value = m * 2^(e - 127)). */
const CONSTS: Record<string, [number, bigint]> = {
  l2t: [1, 0xd49a784bcd1b8afe492bf6ff4dafdb4cn],
  l2e: [0, 0xb8aa3b295c17f0bbbe87fed0691d3e88n],
  pi: [1, 0xc90fdaa22168c234c4c6628b80dc1cd1n],
  lg2: [-2, 0x9a209a84fbcff7988f8959ac0b7c9178n],
  ln2: [-1, 0xb17217f7d1cf79abc9e3b39803f2f6afn],
};

/** A constant rounded to 64 bits by RC (no exception raised). */
export function constant(ctx: Ctx, name: string): void {
  const [e, m] = CONSTS[name]!;
  roundCore(0, m, bitlen(m), e - 127, true, 64, -Infinity, ctx.rc);
  ctx.set(BIAS + rlsb + 63, rq);
}
