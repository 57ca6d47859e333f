/**
 * The x87 transcendentals (F2XM1, FYL2X, FYL2XP1, FPATAN, FSIN, FCOS, FSINCOS, FPTAN) on integers:
 * the exact operand is evaluated with ~190 significant bits in a small binary floating point of
 * BigInts (`BF`) and rounded once to 64 bits by RC (PC does not apply). The trigonometric
 * functions reduce their argument by the x87's own 66-bit approximation of π, as the hardware
 * does, so results for large arguments agree with a real x87, not with the true sine. Results
 * are within 1 ulp of the host's (the difftest allows that much, as the issue does).
 */
import * as F from "./f80.ts";
import { Ctx, Kind, classify, IE, DE, ZE, BIT63, QBIT, IND_SE, IND_M, isNaNKind, lsbExp } from "./f80.ts";

/** Working precision in bits. */
const P = 192;

/** value = (-1)^s * m * 2^e. */
interface BF { s: number; m: bigint; e: number }

const ZERO: BF = { s: 0, m: 0n, e: 0 };

function trim(x: BF): BF {
  const L = F.bitlen(x.m);
  if (L <= P) return x;
  const sh = L - P;
  return { s: x.s, m: x.m >> BigInt(sh), e: x.e + sh };
}
const bf = (s: number, m: bigint, e: number): BF => trim({ s, m, e });
const neg = (x: BF): BF => ({ s: x.s ^ 1, m: x.m, e: x.e });
const isZero = (x: BF): boolean => x.m === 0n;

function add(a: BF, b: BF): BF {
  if (isZero(a)) return b;
  if (isZero(b)) return a;
  // align at the smaller exponent, but not further than P+64 bits below the larger value's top
  const ta = a.e + F.bitlen(a.m), tb = b.e + F.bitlen(b.m);
  const lo = Math.max(Math.min(a.e, b.e), Math.max(ta, tb) - P - 64);
  const am = lo <= a.e ? a.m << BigInt(a.e - lo) : a.m >> BigInt(lo - a.e);
  const bm = lo <= b.e ? b.m << BigInt(b.e - lo) : b.m >> BigInt(lo - b.e);
  const va = a.s ? -am : am, vb = b.s ? -bm : bm;
  const v = va + vb;
  return v < 0n ? bf(1, -v, lo) : bf(0, v, lo);
}
const sub = (a: BF, b: BF): BF => add(a, neg(b));
const mul = (a: BF, b: BF): BF => bf(a.s ^ b.s, a.m * b.m, a.e + b.e);
function div(a: BF, b: BF): BF {
  if (isZero(a)) return ZERO;
  const sh = P + F.bitlen(b.m) - F.bitlen(a.m) + 2;
  return bf(a.s ^ b.s, (a.m << BigInt(sh)) / b.m, a.e - b.e - sh);
}
const fromInt = (v: number | bigint): BF => { const b = BigInt(v); return b < 0n ? bf(1, -b, 0) : bf(0, b, 0); };
function sqrtBF(a: BF): BF {
  let m = a.m, e = a.e;
  const sh = 2 * P - F.bitlen(m);
  const s2 = sh + ((e - sh) & 1 ? 1 : 0);
  m <<= BigInt(s2); e -= s2;
  return bf(0, F.isqrt(m), e / 2);
}
function fromF80(se: number, m: bigint): BF { return bf(se >> 15, m, lsbExp(se)); }
/** floor(log2 |x|) of a nonzero value. */
const expOf = (x: BF): number => x.e + F.bitlen(x.m) - 1;
function cmpAbs(a: BF, b: BF): number {
  const d = sub({ s: 0, m: a.m, e: a.e }, { s: 0, m: b.m, e: b.e });
  return isZero(d) ? 0 : d.s ? -1 : 1;
}

/** Round into ctx (64 bits, RC), as an inexact value. */
function out(ctx: Ctx, x: BF): void {
  if (isZero(x)) { ctx.set(x.s << 15, 0n); return; }
  F.roundPackExt(ctx, x.s, x.m, x.e, true, 64);
  ctx.exc |= F.PE;
}

// --- constants ---------------------------------------------------------------------------------

/** atan(1/n) to P+32 bits (fixed point, for Machin's formula). */
function atanInv(n: bigint, bits: number): bigint {
  const one = 1n << BigInt(bits);
  let term = one / n, sum = term, k = 1n;
  const n2 = n * n;
  let sign = -1n;
  while (term !== 0n) {
    term /= n2;
    sum += sign * (term / (2n * k + 1n));
    sign = -sign; k++;
  }
  return sum;
}
const FIX = P + 40;
const PI: BF = bf(0, 4n * (4n * atanInv(5n, FIX) - atanInv(239n, FIX)), -FIX);
/** ln 2 = 2 atanh(1/3). */
const LN2: BF = (() => {
  const one = 1n << BigInt(FIX);
  let t = one / 3n, sum = t, k = 1n;
  while (t !== 0n) { t /= 9n; sum += t / (2n * k + 1n); k++; }
  return bf(0, 2n * sum, -FIX);
})();
/** The x87's π for argument reduction: 66 significant bits (truncated). */
const PI66: BF = bf(0, 0xc90fdaa22168c234cn >> 2n, 2 - 66);

// --- kernels -----------------------------------------------------------------------------------

/** exp(x) - 1 for |x| <= 1 (relative precision also for tiny x). */
function expm1(x: BF): BF {
  if (isZero(x)) return ZERO;
  // halve until small, then square back: e^x - 1 = (e^(x/2) - 1)(e^(x/2) + 1)
  let k = 0;
  let y = x;
  while (expOf(y) > -8) { y = { s: y.s, m: y.m, e: y.e - 1 }; k++; }
  let term = y, sum = y;
  for (let n = 2; n < 60; n++) {
    term = div(mul(term, y), fromInt(n));
    if (isZero(term) || expOf(term) < expOf(sum) - P - 8) break;
    sum = add(sum, term);
  }
  for (; k > 0; k--) sum = mul(sum, add(sum, fromInt(2)));
  return sum;
}

/** atanh(t) for |t| < 1 (series; callers keep |t| small). */
function atanh(t: BF): BF {
  if (isZero(t)) return ZERO;
  const t2 = mul(t, t);
  let p = t, sum = t;
  for (let n = 3; n < 400; n += 2) {
    p = mul(p, t2);
    const term = div(p, fromInt(n));
    if (isZero(term) || expOf(term) < expOf(sum) - P - 8) break;
    sum = add(sum, term);
  }
  return sum;
}

/** ln(x) for x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh((m-1)/(m+1)). */
function ln(x: BF): BF {
  let e = expOf(x);
  let m: BF = { s: 0, m: x.m, e: x.e - e };                 // [1, 2)
  if (cmpAbs(m, { s: 0, m: 0xb504f333f9de6484n, e: -63 }) > 0) { m = { s: 0, m: m.m, e: m.e - 1 }; e++; }
  const one = fromInt(1);
  const r = mul(fromInt(2), atanh(div(sub(m, one), add(m, one))));
  return add(r, mul(fromInt(e), LN2));
}

/** ln(1 + x) for |x| < 1 - sqrt(2)/2: 2 atanh(x / (2 + x)). */
const ln1p = (x: BF): BF => mul(fromInt(2), atanh(div(x, add(fromInt(2), x))));

/** atan(t) for t >= 0. */
function atan(t: BF): BF {
  if (isZero(t)) return ZERO;
  const one = fromInt(1);
  if (cmpAbs(t, one) > 0) return sub({ ...PI, e: PI.e - 1 }, atan(div(one, t)));
  // halve the angle: atan(t) = 2 atan(t / (1 + sqrt(1 + t^2)))
  let k = 0;
  while (expOf(t) > -6) { t = div(t, add(one, sqrtBF(add(one, mul(t, t))))); k++; }
  const t2 = mul(t, t);
  let p = t, sum = t;
  for (let n = 3; n < 400; n += 2) {
    p = neg(mul(p, t2));
    const term = div(p, fromInt(n));
    if (isZero(term) || expOf(term) < expOf(sum) - P - 8) break;
    sum = add(sum, term);
  }
  return { ...sum, e: sum.e + k };
}

/**
 * The series stopped at a term far below the working precision but not zero: keep its sign as
 * a sticky bit in the last places of `sum`, so that rounding (directed modes, PE) sees that the
 * exact value lies just beside `sum` (e.g. sin(x) of a tiny x is just below x).
 */
function sticky(sum: BF, term: BF): BF {
  if (isZero(term) || isZero(sum)) return sum;
  return add(sum, { s: term.s, m: 1n, e: expOf(sum) - P + 4 });
}

/** sin and cos of |r| <= pi/4 (Taylor). */
function sinTaylor(r: BF): BF {
  if (isZero(r)) return ZERO;
  const r2 = mul(r, r);
  let term = r, sum = r;
  for (let n = 2; n < 200; n += 2) {
    term = neg(div(mul(term, r2), fromInt(n * (n + 1))));
    if (isZero(term) || expOf(term) < expOf(sum) - P - 8) return sticky(sum, term);
    sum = add(sum, term);
  }
  return sum;
}
function cosTaylor(r: BF): BF {
  const r2 = mul(r, r);
  let term = fromInt(1), sum = term;
  for (let n = 1; n < 200; n += 2) {
    term = neg(div(mul(term, r2), fromInt(n * (n + 1))));
    if (isZero(term) || expOf(term) < -P - 8) return sticky(sum, term);
    sum = add(sum, term);
  }
  return sum;
}

/**
 * Reduce x by multiples of pi66/2: x = q * pi66/2 + r, |r| <= pi66/4, exactly (x and pi66 are
 * dyadic). Returns [q mod 4, r].
 */
function reduce(x: BF): [number, BF] {
  const half = { ...PI66, e: PI66.e - 1 };
  // q = round(x / half), computed exactly enough from the integers
  const lo = Math.min(x.e, half.e);
  const X = (x.s ? -1n : 1n) * (x.m << BigInt(x.e - lo));
  const H = half.m << BigInt(half.e - lo);
  let q = X / H;
  let r = X - q * H;
  if (2n * r > H) { q += 1n; r -= H; } else if (2n * r < -H) { q -= 1n; r += H; }
  const rb = r < 0n ? bf(1, -r, lo) : bf(0, r, lo);
  return [Number(((q % 4n) + 4n) % 4n), rb];
}

/** sin(x), cos(x) with the x87's reduction. */
function sincos(x: BF): [BF, BF] {
  const [q, r] = reduce(x);
  const s = sinTaylor(r), c = cosTaylor(r);
  switch (q) {
    case 0: return [s, c];
    case 1: return [c, neg(s)];
    case 2: return [neg(s), neg(c)];
    default: return [neg(c), s];
  }
}

// --- the instructions ------------------------------------------------------------------------

function nanOrUnsupported(ctx: Ctx, se: number, m: bigint, k: Kind): boolean {
  if (k === Kind.Unsupported) { F.invalid(ctx); return true; }
  if (k === Kind.SNaN) { ctx.exc |= IE; ctx.set(se, m | QBIT); return true; }
  if (k === Kind.QNaN) { ctx.set(se, m); return true; }
  return false;
}

/** F2XM1: 2^x - 1 into ctx. */
export function f2xm1(ctx: Ctx, se: number, m: bigint): void {
  const k = classify(se, m);
  if (nanOrUnsupported(ctx, se, m, k)) return;
  if (k === Kind.Zero) { ctx.set(se, m); return; }
  if (k === Kind.Inf) { if (se & 0x8000) ctx.set(0xbfff, BIT63); else ctx.set(se, m); return; }
  if (k === Kind.Denormal) { ctx.exc |= DE; if (!ctx.masked(DE)) return; }
  const x = fromF80(se, m);
  // |x| > 1 is outside the documented range: the x87 leaves the operand, with PE (measured)
  if (expOf(x) >= 0 && !(x.m === 1n << BigInt(F.bitlen(x.m) - 1) && expOf(x) === 0)) { ctx.set(se, m); ctx.exc |= F.PE; return; }
  // x = 1 -> 1, x = -1 -> -1/2: exact, but PE all the same (measured for -1)
  if (x.m === 1n << BigInt(F.bitlen(x.m) - 1) && expOf(x) === 0) { ctx.set(x.s ? 0xbffe : 0x3fff, BIT63); ctx.exc |= F.PE; return; }
  out(ctx, expm1(mul(x, LN2)));
}

/** FYL2X: y * log2(x) into ctx (x = ST0, y = ST1). */
export function fyl2x(ctx: Ctx, xse: number, xm: bigint, yse: number, ym: bigint): void {
  const kx = classify(xse, xm), ky = classify(yse, ym);
  if (kx === Kind.Unsupported || ky === Kind.Unsupported) { F.invalid(ctx); return; }
  if (isNaNKind(kx) || isNaNKind(ky)) { twoNaN(ctx, xse, xm, yse, ym); return; }
  const xs = xse >> 15, ys = yse >> 15;
  if (xs && kx !== Kind.Zero) { F.invalid(ctx); return; }
  // log2(x): -inf (x = 0), +inf (x = inf), 0 (x = 1), else finite nonzero
  if (kx === Kind.Zero) {                                   // ZE before DE, as for a division
    if (ky === Kind.Zero) { F.invalid(ctx); return; }
    if (ky !== Kind.Inf) ctx.exc |= ZE;
    ctx.set(((ys ^ 1) << 15) | 0x7fff, BIT63); return;
  }
  if (kx === Kind.Denormal || ky === Kind.Denormal) { ctx.exc |= DE; if (!ctx.masked(DE)) return; }
  if (kx === Kind.Inf) {
    if (ky === Kind.Zero) { F.invalid(ctx); return; }
    ctx.set((ys << 15) | 0x7fff, BIT63); return;
  }
  const x = fromF80(xse, xm);
  const ex = expOf(x);
  const pow2 = x.m === 1n << BigInt(F.bitlen(x.m) - 1);
  if (pow2 && ex === 0) {                                   // log2(1) = +0
    if (ky === Kind.Inf) { F.invalid(ctx); return; }
    ctx.set(ys << 15, 0n); return;
  }
  const lsign = ex < 0 ? 1 : 0;
  if (ky === Kind.Inf) { ctx.set(((ys ^ lsign) << 15) | 0x7fff, BIT63); return; }
  if (ky === Kind.Zero) { ctx.set((ys ^ lsign) << 15, 0n); return; }
  // x a power of two: y * k, with PE all the same (the x87's log2 is not exact there either)
  if (pow2) {
    F.mul(ctx, yse, ym, ...intF80(ex), 64);
    ctx.exc |= F.PE;
    if ((ctx.se & 0x7fff) === 0 && ctx.m !== 0n) ctx.exc |= F.UE;   // tiny and "inexact"
    return;
  }
  out(ctx, mul(fromF80(yse, ym), div(ln(x), LN2)));
}

/** The extended value of a small integer. */
function intF80(v: number): [number, bigint] {
  const c = new Ctx();
  F.fromInt(c, BigInt(v));
  return [c.se, c.m];
}

/** FYL2XP1: y * log2(x + 1) into ctx. */
export function fyl2xp1(ctx: Ctx, xse: number, xm: bigint, yse: number, ym: bigint): void {
  const kx = classify(xse, xm), ky = classify(yse, ym);
  if (kx === Kind.Unsupported || ky === Kind.Unsupported) { F.invalid(ctx); return; }
  if (isNaNKind(kx) || isNaNKind(ky)) { twoNaN(ctx, xse, xm, yse, ym); return; }
  const xs = xse >> 15, ys = yse >> 15;
  if (kx === Kind.Inf && xs) { F.invalid(ctx); return; }   // invalid before DE (measured)
  if (kx === Kind.Denormal || ky === Kind.Denormal) { ctx.exc |= DE; if (!ctx.masked(DE)) return; }
  if (kx === Kind.Inf) {
    if (ky === Kind.Zero) { F.invalid(ctx); return; }
    ctx.set((ys << 15) | 0x7fff, BIT63); return;
  }
  if (kx === Kind.Zero) {
    if (ky === Kind.Inf) { F.invalid(ctx); return; }
    ctx.set((xs ^ ys) << 15, 0n); return;
  }
  if (ky === Kind.Inf) { ctx.set(((ys ^ xs) << 15) | 0x7fff, BIT63); return; }
  if (ky === Kind.Zero) { ctx.set((ys ^ xs) << 15, 0n); return; }
  const x = fromF80(xse, xm);
  const big = expOf(x) >= -2;
  const xp1 = add(x, fromInt(1));
  // x < -1 is outside every range: the x87 leaves x as the result, with PE (measured)
  if (big && (xp1.s || isZero(xp1))) { ctx.set(xse, xm); ctx.exc |= F.PE; return; }
  out(ctx, mul(fromF80(yse, ym), div(big ? ln(xp1) : ln1p(x), LN2)));
}

/** A NaN operand: the result is chosen as for the arithmetic (SDM vol. 1 table 4-7). */
function twoNaN(ctx: Ctx, ase: number, am: bigint, bse: number, bm: bigint): void {
  F.add(ctx, ase, am, bse, bm, false, 64);
}

/** FPATAN: atan(y / x) into ctx (x = ST0, y = ST1). */
export function fpatan(ctx: Ctx, xse: number, xm: bigint, yse: number, ym: bigint): void {
  const kx = classify(xse, xm), ky = classify(yse, ym);
  if (kx === Kind.Unsupported || ky === Kind.Unsupported) { F.invalid(ctx); return; }
  if (isNaNKind(kx) || isNaNKind(ky)) { twoNaN(ctx, xse, xm, yse, ym); return; }
  if (kx === Kind.Denormal || ky === Kind.Denormal) { ctx.exc |= DE; if (!ctx.masked(DE)) return; }
  const xs = xse >> 15, ys = yse >> 15;
  const withSign = (v: BF): BF => (ys ? neg(v) : v);
  if (ky === Kind.Zero) {
    if (xs) out(ctx, withSign(PI)); else ctx.set(ys << 15, 0n);
    return;
  }
  if (ky === Kind.Inf) {
    if (kx === Kind.Inf) out(ctx, withSign(xs ? mul(PI, { s: 0, m: 3n, e: -2 }) : { ...PI, e: PI.e - 2 }));
    else out(ctx, withSign({ ...PI, e: PI.e - 1 }));
    return;
  }
  if (kx === Kind.Zero) { out(ctx, withSign({ ...PI, e: PI.e - 1 })); return; }
  if (kx === Kind.Inf) {
    if (xs) out(ctx, withSign(PI)); else ctx.set(ys << 15, 0n);
    return;
  }
  const x = fromF80(xse & 0x7fff, xm), y = fromF80(yse & 0x7fff, ym);
  let a = atan(div(y, x));
  if (xs) a = sub(PI, a);
  out(ctx, withSign(a));
}

/** FSIN/FCOS/FSINCOS/FPTAN on ST0: results in r1 (sin, cos or tan) and r2 (cos for FSINCOS). */
export const OUT_OF_RANGE = 2;
export let r2se = 0, r2m = 0n;
export function trig(ctx: Ctx, op: "sin" | "cos" | "sincos" | "tan", se: number, m: bigint): number {
  r2c1 = 0;
  const k = classify(se, m);
  if (k === Kind.Unsupported || k === Kind.Inf) { F.invalid(ctx); r2se = IND_SE; r2m = IND_M; return 0; }
  if (isNaNKind(k)) {
    if (k === Kind.SNaN) ctx.exc |= IE;
    ctx.set(se, m | QBIT); r2se = se; r2m = m | QBIT; return 0;
  }
  if ((se & 0x7fff) >= 0x3fff + 63) return OUT_OF_RANGE;
  if (k === Kind.Denormal) { ctx.exc |= DE; if (!ctx.masked(DE)) return 0; }
  if (k === Kind.Zero) {
    if (op === "cos") ctx.set(0x3fff, BIT63); else ctx.set(se, m);
    r2se = 0x3fff; r2m = BIT63;                               // FSINCOS: cos 0 = 1; FPTAN pushes 1
    return 0;
  }
  const [s, c] = sincos(fromF80(se, m));
  if (op === "sin") out(ctx, s);
  else if (op === "cos") out(ctx, c);
  else if (op === "tan") { out(ctx, div(s, c)); r2se = 0x3fff; r2m = BIT63; }
  else {
    // FSINCOS: sin in ctx, cos in r2 (its C1 in r2c1)
    const c2 = new Ctx(); c2.cw = ctx.cw;
    out(c2, c);
    r2se = c2.se; r2m = c2.m; r2c1 = c2.c1;
    out(ctx, s);
    ctx.exc |= c2.exc;
  }
  return 0;
}
export let r2c1 = 0;
