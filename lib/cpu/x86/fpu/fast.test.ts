/**
 * The BigInt-free fast paths (fast.ts) against the exact BigInt arithmetic (f80.ts): random
 * normal operands biased to rounding boundaries and exponent extremes, every PC and RC. Where
 * the fast path answers, its result, inexact flag and round-up flag must equal f80.ts's.
 */
import { describe, expect, test } from "bun:test";
import * as F from "./f80.ts";
import * as X from "./fast.ts";

let seed = 12345;
const u32 = (): number => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed; };
function sig(): [number, number] {
  switch (u32() % 6) {
    case 0: return [0xffffffff, 0xffffffff];
    case 1: return [0x80000000, u32() % 4];
    case 2: return [(0x80000000 | u32()) >>> 0, ((u32() & ~0x7ff) | [0, 0x400, 0x3ff, 0x401][u32() % 4]!) >>> 0];
    case 3: return [((0x80000000 | u32()) & ~0xff | [0, 0x80, 0x7f, 0x81][u32() % 4]!) >>> 0, 0];
    default: return [(0x80000000 | u32()) >>> 0, u32()];
  }
}
function exp(): number {
  const r = u32() % 8;
  if (r === 0) return 1 + (u32() % 70);
  if (r === 1) return 0x7ffe - (u32() % 70);
  if (r === 2) return 1 + (u32() % 0x7ffe);
  return 0x3fff - 40 + (u32() % 80);
}

describe("x87 fast paths agree with the exact BigInt arithmetic", () => {
  test("add, sub, mul, div, sqrt and float32/64 stores over 200,000 random cases", () => {
    const ctx = new F.Ctx();
    let taken = 0, n = 0;
    for (let k = 0; k < 200_000; k++) {
      const [ah, al] = sig(), [bh, bl] = sig();
      let ase = exp() | (u32() & 0x8000), bse = exp() | (u32() & 0x8000);
      if (u32() % 4 === 0) bse = (ase & 0x7fff) - (u32() % 70) + 35 | (u32() & 0x8000);   // near exponents
      if ((bse & 0x7fff) < 1 || (bse & 0x7fff) > 0x7ffe) continue;
      const pc = [0, 2, 3][u32() % 3]!, rc = u32() % 4, p = pc === 0 ? 24 : pc === 2 ? 53 : 64;
      ctx.cw = 0x037f & ~0x300 | (pc << 8) | (rc << 10);
      const am = (BigInt(ah) << 32n) | BigInt(al), bm = (BigInt(bh) << 32n) | BigInt(bl);
      const op = u32() % 6;
      let ok: boolean;
      ctx.reset();
      switch (op) {
        case 0: ok = X.addFast(ase, ah, al, bse, bh, bl, false, p, rc); F.add(ctx, ase, am, bse, bm, false, p); break;
        case 1: ok = X.addFast(ase, ah, al, bse, bh, bl, true, p, rc); F.add(ctx, ase, am, bse, bm, true, p); break;
        case 2: ok = X.mulFast(ase, ah, al, bse, bh, bl, p, rc); F.mul(ctx, ase, am, bse, bm, p); break;
        case 3: ok = X.divFast(ase, ah, al, bse, bh, bl, p, rc); F.div(ctx, ase, am, bse, bm, p); break;
        case 5: ok = X.sqrtFast(ase, ah, al, p, rc); F.sqrt(ctx, ase, am, p); break;
        default: {
          const f32 = (u32() & 1) === 0;
          ok = f32 ? X.toF32Fast(ase, ah, al, rc) : X.toF64Fast(ase, ah, al, rc);
          const v = f32 ? BigInt(F.toF32(ctx, ase, am) ?? -1) : F.toF64(ctx, ase, am);
          n++;
          if (ok) {
            taken++;
            expect((f32 ? BigInt(X.fint) : (BigInt(X.fhi) << 32n) | BigInt(X.flo)).toString(16)).toBe(v!.toString(16));
            expect(X.finexact).toBe((ctx.exc & F.PE) !== 0);
            expect(X.finexact && X.fup).toBe(X.finexact && ctx.c1 === 1);
          }
          continue;
        }
      }
      n++;
      if (!ok) continue;
      taken++;
      const got = X.fse.toString(16) + ":" + ((BigInt(X.fhi) << 32n) | BigInt(X.flo)).toString(16);
      expect(got).toBe(ctx.se.toString(16) + ":" + ctx.m.toString(16));
      expect(X.finexact).toBe((ctx.exc & F.PE) !== 0);
      expect(ctx.exc & ~F.PE).toBe(0);
      if (X.finexact) expect(X.fup ? 1 : 0).toBe(ctx.c1);
    }
    // the fast paths answer most of these (the rest are overflows/underflows)
    expect(taken).toBeGreaterThan(n * 0.6);
  });

  test("div and sqrt with exact and nearly exact results (quotients, squares, their neighbours)", () => {
    const ctx = new F.Ctx();
    const words = (m: bigint): [number, number] => [Number(m >> 32n), Number(m & 0xffffffffn)];
    const norm = (m: bigint): bigint => { while (m < 1n << 63n) m <<= 1n; return m; };
    let exact = 0;
    for (let k = 0; k < 60_000; k++) {
      const pc = [0, 2, 3][u32() % 3]!, rc = u32() % 4, p = pc === 0 ? 24 : pc === 2 ? 53 : 64;
      ctx.cw = 0x037f & ~0x300 | (pc << 8) | (rc << 10);
      // x and y of up to 32 significant bits: x*y (a dividend with an exact quotient) and x*x
      const x = BigInt(((u32() >>> (u32() % 32)) | 1) >>> 0), y = BigInt(((u32() >>> (u32() % 32)) | 1) >>> 0);
      const nudge = BigInt([0, 0, 1, -1][u32() % 4]!);
      const xy = norm(x * y) + nudge, xx = norm(x * x) + nudge, ym = norm(y);
      if (xy < 1n << 63n || xx < 1n << 63n || xy >= 1n << 64n || xx >= 1n << 64n) continue;
      const ae = 0x3fff - 20 + (u32() % 40), be = 0x3fff - 20 + (u32() % 40);
      const [ah, al] = words(xy), [bh, bl] = words(ym), [sh, sl] = words(xx);
      for (const op of [0, 1]) {
        ctx.reset();
        const ok = op === 0 ? X.divFast(ae, ah, al, be, bh, bl, p, rc) : X.sqrtFast(ae, sh, sl, p, rc);
        if (op === 0) F.div(ctx, ae, xy, be, ym, p); else F.sqrt(ctx, ae, xx, p);
        expect(ok).toBe(true);
        expect(X.fse.toString(16) + ":" + ((BigInt(X.fhi) << 32n) | BigInt(X.flo)).toString(16)).toBe(ctx.se.toString(16) + ":" + ctx.m.toString(16));
        expect(X.finexact).toBe((ctx.exc & F.PE) !== 0);
        if (X.finexact) expect(X.fup ? 1 : 0).toBe(ctx.c1); else exact++;
      }
    }
    expect(exact).toBeGreaterThan(10_000);
  });

  test("float32/float64 loads of normal numbers", () => {
    const ctx = new F.Ctx();
    for (let k = 0; k < 50_000; k++) {
      const b32 = u32(), lo = u32(), hi = u32();
      if (X.fromF32Fast(b32)) {
        F.fromF32(ctx, b32);
        expect([X.fse, X.fhi, X.flo]).toEqual([ctx.se, Number(ctx.m >> 32n), Number(ctx.m & 0xffffffffn)]);
      } else expect([0, 0xff]).toContain((b32 >>> 23) & 0xff);
      if (X.fromF64Fast(lo, hi)) {
        F.fromF64(ctx, (BigInt(hi) << 32n) | BigInt(lo));
        expect([X.fse, X.fhi, X.flo]).toEqual([ctx.se, Number(ctx.m >> 32n), Number(ctx.m & 0xffffffffn)]);
      } else expect([0, 0x7ff]).toContain((hi >>> 20) & 0x7ff);
    }
  });

  test("compares, integer loads and integer stores", () => {
    const ctx = new F.Ctx();
    const val = (): [number, number, number] => {
      const r = u32() % 10;
      if (r === 0) return [u32() & 0x8000, 0, 0];                            // zero
      if (r === 1) return [(u32() & 0x8000) | 0x7fff, 0x80000000, 0];          // infinity
      const [h, l] = sig();
      return [(u32() & 0x8000) | (r < 5 ? 0x3fff - 3 + (u32() % 36) : exp()), h, l];
    };
    for (let k = 0; k < 50_000; k++) {
      const a = val(), b = u32() % 3 === 0 ? [a[0] ^ (u32() & 0x8000), a[1], a[2]] as [number, number, number] : val();
      const m = (v: [number, number, number]): bigint => (BigInt(v[1]) << 32n) | BigInt(v[2]);
      ctx.reset();
      expect(X.cmpFast(a[0], a[1], a[2], b[0], b[1], b[2])).toBe(F.compare(ctx, a[0], m(a), b[0], m(b), true));
      const rc = u32() % 4;
      ctx.cw = 0x037f | (rc << 10);
      if (X.toInt32Fast(a[0], a[1], a[2], rc)) {
        ctx.reset();
        const want = F.toInt(ctx, a[0], m(a), 64);
        expect(BigInt(X.fint)).toBe(BigInt.asIntN(64, want));
        expect(X.finexact).toBe((ctx.exc & F.PE) !== 0);
        if (X.finexact) expect(X.fup ? 1 : 0).toBe(ctx.c1);
      }
      const iv = [0, 1, -1, 2147483647, -2147483648, 32767, -32768, u32() | 0, (u32() | 0) >> (u32() % 31)][u32() % 9]!;
      X.fromInt32Fast(iv);
      F.fromInt(ctx, BigInt(iv));
      expect([X.fse, X.fhi, X.flo]).toEqual([ctx.se, Number(ctx.m >> 32n), Number(ctx.m & 0xffffffffn)]);
    }
  });
});
