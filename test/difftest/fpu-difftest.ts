/**
 * x87 differential test: random instruction sequences from random FPU states, run on the
 * host's x87 (fpu-harness.c) and on lib/cpu/x86/fpu, compared bit for bit after every
 * instruction (FCW, FSW, FTW, ST0-7 as FNSAVE stores them, the memory operand, EFLAGS, AX).
 * Operands are biased to special values: ±0, denormals, pseudo-denormals, unnormals,
 * pseudo-NaN/infinity, ±inf, SNaN/QNaN, values at rounding boundaries, huge and tiny exponents.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Fpu, FPU_OK } from "../../lib/cpu/x86/fpu/fpu.ts";

export interface FpuHarness { bin: string; dispose(): void }

export function buildFpuHarness(): FpuHarness | string {
  if (process.arch !== "x64" && process.arch !== "ia32") return `host is ${process.arch}, not x86`;
  const dir = mkdtempSync(join(tmpdir(), "rrx-fpu-"));
  const bin = join(dir, "fpu-harness");
  const fail = (why: string) => { rmSync(dir, { recursive: true, force: true }); return why; };
  // A 32-bit build first; a 64-bit one where the host cannot run 32-bit programs (the x87 is
  // the same in 64-bit mode).
  let why = "";
  for (const m of [["-m32"], []]) {
    let r;
    try {
      r = Bun.spawnSync({ cmd: ["gcc", ...m, "-O1", "-no-pie", "-fno-pie", "-o", bin, join(import.meta.dir, "fpu-harness.c")], stdout: "pipe", stderr: "pipe" });
    } catch (e) {
      return fail(`gcc not available (${(e as Error).message})`);
    }
    if (r.exitCode !== 0) { why += `gcc ${m.join(" ")} cannot build the FPU harness: ${r.stderr.toString().split("\n").slice(0, 2).join(" ")}; `; continue; }
    try {
      const p = Bun.spawnSync({ cmd: [bin], stdin: new Uint8Array(0), stdout: "pipe", stderr: "pipe" });
      if (p.exitCode === 0) return { bin, dispose: () => rmSync(dir, { recursive: true, force: true }) };
      why += `the ${m.length ? "32" : "64"}-bit harness exits ${p.exitCode}; `;
    } catch (e) {
      why += `the ${m.length ? "32" : "64"}-bit harness cannot run (${(e as Error).message}); `;
    }
  }
  return fail(why.replace(/; $/, ""));
}

// --- random generation -----------------------------------------------------------------------

export class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0 || 1; }
  u32(): number {
    let x = this.s;
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    this.s = x;
    return x;
  }
  int(n: number): number { return this.u32() % n; }
  bool(p = 0.5): boolean { return this.u32() / 4294967296 < p; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]!; }
  u64(): bigint { return (BigInt(this.u32()) << 32n) | BigInt(this.u32()); }
}

const B63 = 1n << 63n, M63 = B63 - 1n;

/** A significand with structure near rounding boundaries for 24/53/64-bit precision. */
function sigPattern(g: Rng): bigint {
  const k = g.pick([0, 0, 0, 40, 11, 1, 2, 63, 39, 41, 10, 12]);
  let m = g.u64();
  if (k > 0 && g.bool(0.8)) {
    const low = (1n << BigInt(k)) - 1n;
    const half = 1n << BigInt(k - 1);
    m = (m & ~low) | g.pick([0n, half, half - 1n, half + 1n, low, 1n]);
  }
  if (g.bool(0.1)) m = g.bool() ? M63 : 0n;
  if (g.bool(0.1)) m = BigInt(g.u32() & 0xffff) << BigInt(g.int(48));
  return m;
}

/** A random 80-bit value [se, m], biased to the special classes. */
export function randF80(g: Rng): [number, bigint] {
  const s = g.bool() ? 0x8000 : 0;
  switch (g.int(16)) {
    case 0: return [s, 0n];
    case 1: return [s, (sigPattern(g) & M63) >> BigInt(g.int(64))];        // denormal (or zero)
    case 2: return [s, B63 | (sigPattern(g) & M63)];                         // pseudo-denormal
    case 3: return [s | 0x7fff, B63];                                        // infinity
    case 4: return [s | 0x7fff, B63 | (1n << 62n) | (g.u64() & (g.bool() ? 0n : M63 >> 1n))]; // QNaN
    case 5: return [s | 0x7fff, B63 | ((g.u64() & (M63 >> 1n)) || 1n)];      // SNaN
    case 6: // unsupported: unnormal, pseudo-NaN/inf
      return g.bool() ? [s | (1 + g.int(0x7ffe)), sigPattern(g) & M63] : [s | 0x7fff, sigPattern(g) & M63];
    case 7: return [s | g.pick([1, 2, 3, 60, 0x7ffe, 0x7ffd, 0x7fc0]), B63 | (sigPattern(g) & M63)];
    case 8: return [s | (0x3fff - 16382 + g.int(200)) & 0x7fff || 1, B63 | (sigPattern(g) & M63)];   // near the underflow threshold of...
    case 9: { // small integers and halves
      const v = g.int(64) - 32;
      const sh = g.pick([0, 1, 2]);
      return toF80(BigInt(v), -sh, s);
    }
    case 10: return [s | (0x3fff + g.pick([15, 31, 63, 59, 64, 62, 14, 30, 16, 32])), B63 | (sigPattern(g) & M63)];
    case 11: return [s | (0x3f81 - 2 + g.int(5)), B63 | (sigPattern(g) & M63)]; // float32 min normal region
    case 12: return [s | (0x3c01 - 60 + g.int(64)), B63 | (sigPattern(g) & M63)]; // float64 denormals
    case 13: return [s | (0x3f6a - 3 + g.int(30)), B63 | (sigPattern(g) & M63)]; // float32 denormals
    case 14: return [s | (0x407e + g.int(4)) , B63 | (sigPattern(g) & M63)]; // float32 overflow area
    default: return [s | (0x3fff - 70 + g.int(140)), B63 | (sigPattern(g) & M63)];
  }
}

/** Significands whose products/quotients/sums land next to a rounding boundary. */
function nearOnes(g: Rng): bigint {
  if (g.bool(0.5)) return g.bool() ? B63 | M63 : B63;
  return g.pick([B63 | M63, (B63 | M63) - BigInt(g.int(4)), B63 | 1n, B63, B63 | (M63 >> BigInt(g.int(3) * 20 + 1)), B63 | (M63 & ~((1n << BigInt(g.pick([11, 40, 12, 41]))) - 1n)), 0xb504f333f9de6484n, 0xb504f333f9de6485n]);
}

/** A value related to `a` so that a op b lands near an exponent threshold or a rounding boundary. */
export function relatedF80(g: Rng, a: [number, bigint], kind = g.int(6)): [number, bigint] {
  const ea = a[0] & 0x7fff;
  const s = g.bool() ? 0x8000 : 0;
  const clamp = (e: number): number => Math.max(0, Math.min(0x7ffe, e));
  const t = g.pick([1, 0, 2, -1, 0x7ffe, 0x7fff, 0x7ffd, 0x3f81, 0x3f80, 0x3c01, 0x3c00, 0x407f, 0x43ff, 0x3f6a, 0x3bcd]) + g.int(3) - 1;
  switch (kind) {
    case 0: return [s | clamp(t - ea + 16383), nearOnes(g)];                 // product near the threshold t
    case 1: return [s | clamp(ea - t + 16383), nearOnes(g)];                 // quotient near t
    case 2: return [s | ea, a[1] ^ BigInt(1 << g.int(20)) ^ (BigInt(g.int(2)) << BigInt(g.int(64)))]; // cancellation
    case 3: return [s | clamp(ea - g.int(80)), nearOnes(g)];                 // alignment, sticky bits
    case 4: return [(a[0] & 0x8000) ^ s | ea, a[1]];                         // equal magnitude
    default: return randF80(g);
  }
}

function toF80(v: bigint, e2: number, s: number): [number, bigint] {
  if (v === 0n) return [s, 0n];
  if (v < 0n) { v = -v; s = 0x8000; }
  let n = 0;
  while (!(v & B63)) { v <<= 1n; n++; }
  return [s | (0x3fff + 63 - n + e2), v];
}

function randF32(g: Rng): number {
  const s = g.bool() ? 0x80000000 : 0;
  const e = g.pick([0, 0, 0xff, 0xff, 1, 0xfe, 127, 126, 128, g.int(256), g.int(256)]);
  let f = g.u32() & 0x7fffff;
  if (g.bool(0.3)) f = g.pick([0, 1, 0x400000, 0x3fffff, 0x7fffff, 0x400001]);
  return (s | (e << 23) | f) >>> 0;
}
function randF64(g: Rng): bigint {
  const s = g.bool() ? 1n << 63n : 0n;
  const e = BigInt(g.pick([0, 0, 0x7ff, 0x7ff, 1, 0x7fe, 1023, 1022, 1024, g.int(2048), g.int(2048)]));
  let f = g.u64() & ((1n << 52n) - 1n);
  if (g.bool(0.3)) f = g.pick([0n, 1n, 1n << 51n, (1n << 51n) - 1n, (1n << 52n) - 1n, (1n << 51n) + 1n]);
  return s | (e << 52n) | f;
}
function randInt(g: Rng, bits: number): bigint {
  const m = (1n << BigInt(bits)) - 1n;
  const h = 1n << BigInt(bits - 1);
  return g.pick([0n, 1n, m, h, h - 1n, h + 1n, BigInt(g.int(100)), g.u64() & m, (g.u64() & m) >> BigInt(g.int(bits))]) & m;
}

function fcwRand(g: Rng): number {
  const masks = g.bool(0.75) ? 0x3f : g.u32() & 0x3f;
  const v = masks | 0x40 | ((g.int(4)) << 8) | (g.int(4) << 10);
  return g.bool(0.05) ? v ^ (g.u32() & 0xf0c0) : v;
}

export interface Insn { name: string; bytes: number[]; mem?: (g: Rng, mem: Uint8Array) => void; sti?: boolean }

const ARITH = ["fadd", "fmul", "fcom", "fcomp", "fsub", "fsubr", "fdiv", "fdivr"];
const ARITH_R = ["fadd", "fmul", "fcom2", "fcomp3", "fsubr", "fsub", "fdivr", "fdiv"];
const ARITH_P = ["faddp", "fmulp", "fcomp5", "fcompp", "fsubrp", "fsubp", "fdivrp", "fdivp"];

function put80(mem: Uint8Array, off: number, v: [number, bigint]): void {
  const dv = new DataView(mem.buffer, mem.byteOffset);
  dv.setBigUint64(off, v[1], true); dv.setUint16(off + 8, v[0], true);
}

function randImage(g: Rng, mem: Uint8Array, o32: boolean): void {
  const dv = new DataView(mem.buffer, mem.byteOffset);
  const cw = fcwRand(g);
  let sw = (g.u32() & 0x4700) | (g.int(8) << 11) | (g.bool(0.2) ? g.u32() & cw & 0x3f : 0);
  if (sw & 0x3f) sw |= g.bool() ? 0 : 0x40 & 0;
  let tw = 0;
  for (let p = 0; p < 8; p++) tw |= (g.bool(0.3) ? 3 : g.int(3)) << (2 * p);
  if (o32) {
    dv.setUint32(0, cw, true); dv.setUint32(4, sw, true); dv.setUint32(8, tw, true);
    for (let k = 12; k < 28; k++) mem[k] = g.u32() & 0xff;
    for (let i = 0; i < 8; i++) put80(mem, 28 + 10 * i, randF80(g));
  } else {
    dv.setUint16(0, cw, true); dv.setUint16(2, sw, true); dv.setUint16(4, tw, true);
    for (let k = 6; k < 14; k++) mem[k] = g.u32() & 0xff;
    for (let i = 0; i < 8; i++) put80(mem, 14 + 10 * i, randF80(g));
  }
}

const f32near = (g: Rng): number => {
  const e = g.pick([0, 1, 2, 0xfe, 0xfd, 127]);
  return ((g.bool() ? 0x80000000 : 0) | (e << 23) | (g.bool() ? 0x7fffff : g.u32() & 0x7fffff)) >>> 0;
};
const f32m = (g: Rng, m: Uint8Array): void => { new DataView(m.buffer, m.byteOffset).setUint32(0, randF32(g), true); };
const f64m = (g: Rng, m: Uint8Array): void => { new DataView(m.buffer, m.byteOffset).setBigUint64(0, randF64(g), true); };
const i16m = (g: Rng, m: Uint8Array): void => { new DataView(m.buffer, m.byteOffset).setUint16(0, Number(randInt(g, 16)), true); };
const i32m = (g: Rng, m: Uint8Array): void => { new DataView(m.buffer, m.byteOffset).setUint32(0, Number(randInt(g, 32)), true); };
const i64m = (g: Rng, m: Uint8Array): void => { new DataView(m.buffer, m.byteOffset).setBigUint64(0, randInt(g, 64), true); };
const f80m = (g: Rng, m: Uint8Array): void => { put80(m, 0, randF80(g)); };
const bcdm = (g: Rng, m: Uint8Array): void => {
  for (let i = 0; i < 9; i++) m[i] = g.bool(0.03) ? g.u32() & 0xff : (g.int(10) << 4) | g.int(10);
  m[9] = g.bool() ? 0x80 : 0;
};
const cwm = (g: Rng, m: Uint8Array): void => { new DataView(m.buffer, m.byteOffset).setUint16(0, fcwRand(g), true); };

/** The instruction set under test (x87 of a P6 without the transcendentals and FISTTP). */
export function insnTable(): Insn[] {
  const t: Insn[] = [];
  const memOps: [number, string, Insn["mem"]][] = [[0, "m32", f32m], [2, "m32i", i32m], [4, "m64", f64m], [6, "m16i", i16m]];
  for (const [esc, sfx, gen] of memOps) for (let reg = 0; reg < 8; reg++) t.push({ name: `${esc === 2 || esc === 6 ? ARITH[reg]!.replace("f", "fi") : ARITH[reg]} ${sfx}`, bytes: [0xd8 + esc, (reg << 3) | 3], mem: gen });
  for (let reg = 0; reg < 8; reg++) {
    t.push({ name: `${ARITH[reg]} st0,sti`, bytes: [0xd8, 0xc0 | (reg << 3)], sti: true });
    t.push({ name: `${ARITH_R[reg]} sti,st0`, bytes: [0xdc, 0xc0 | (reg << 3)], sti: true });
    if (reg !== 3) t.push({ name: ARITH_P[reg]!, bytes: [0xde, 0xc0 | (reg << 3)], sti: true });
  }
  t.push({ name: "fcompp", bytes: [0xde, 0xd9] });
  const add = (name: string, bytes: number[], mem?: Insn["mem"]): void => { t.push({ name, bytes, mem }); };
  add("fld m32", [0xd9, 0x03], f32m); add("fst m32", [0xd9, 0x13]); add("fstp m32", [0xd9, 0x1b]);
  add("fldenv", [0xd9, 0x23], (g, m) => randImage(g, m, true)); add("fldcw", [0xd9, 0x2b], cwm);
  add("fnstenv", [0xd9, 0x33]); add("fnstcw", [0xd9, 0x3b]);
  add("fldenv16", [0x66, 0xd9, 0x23], (g, m) => randImage(g, m, false)); add("fnstenv16", [0x66, 0xd9, 0x33]);
  add("fild m32", [0xdb, 0x03], i32m); add("fist m32", [0xdb, 0x13]); add("fistp m32", [0xdb, 0x1b]);
  add("fld m80", [0xdb, 0x2b], f80m); add("fstp m80", [0xdb, 0x3b]);
  add("fld m64", [0xdd, 0x03], f64m); add("fst m64", [0xdd, 0x13]); add("fstp m64", [0xdd, 0x1b]);
  add("frstor", [0xdd, 0x23], (g, m) => randImage(g, m, true)); add("fnsave", [0xdd, 0x33]); add("fnstsw m16", [0xdd, 0x3b]);
  add("frstor16", [0x66, 0xdd, 0x23], (g, m) => randImage(g, m, false)); add("fnsave16", [0x66, 0xdd, 0x33]);
  add("fild m16", [0xdf, 0x03], i16m); add("fist m16", [0xdf, 0x13]); add("fistp m16", [0xdf, 0x1b]);
  add("fbld", [0xdf, 0x23], bcdm); add("fild m64", [0xdf, 0x2b], i64m); add("fbstp", [0xdf, 0x33]); add("fistp m64", [0xdf, 0x3b]);
  const sti = (name: string, esc: number, base: number): void => { t.push({ name, bytes: [esc, base], sti: true }); };
  sti("fld sti", 0xd9, 0xc0); sti("fxch", 0xd9, 0xc8); sti("fstp1", 0xd9, 0xd8);
  sti("fcmovb", 0xda, 0xc0); sti("fcmove", 0xda, 0xc8); sti("fcmovbe", 0xda, 0xd0); sti("fcmovu", 0xda, 0xd8);
  sti("fcmovnb", 0xdb, 0xc0); sti("fcmovne", 0xdb, 0xc8); sti("fcmovnbe", 0xdb, 0xd0); sti("fcmovnu", 0xdb, 0xd8);
  sti("fucomi", 0xdb, 0xe8); sti("fcomi", 0xdb, 0xf0);
  sti("ffree", 0xdd, 0xc0); sti("fxch4", 0xdd, 0xc8); sti("fst sti", 0xdd, 0xd0); sti("fstp sti", 0xdd, 0xd8);
  sti("fucom", 0xdd, 0xe0); sti("fucomp", 0xdd, 0xe8);
  sti("ffreep", 0xdf, 0xc0); sti("fxch7", 0xdf, 0xc8); sti("fstp8", 0xdf, 0xd0); sti("fstp9", 0xdf, 0xd8);
  sti("fucomip", 0xdf, 0xe8); sti("fcomip", 0xdf, 0xf0);
  const one: [string, number, number][] = [
    ["fnop", 0xd9, 0xd0], ["fchs", 0xd9, 0xe0], ["fabs", 0xd9, 0xe1], ["ftst", 0xd9, 0xe4], ["fxam", 0xd9, 0xe5],
    ["fld1", 0xd9, 0xe8], ["fldl2t", 0xd9, 0xe9], ["fldl2e", 0xd9, 0xea], ["fldpi", 0xd9, 0xeb], ["fldlg2", 0xd9, 0xec],
    ["fldln2", 0xd9, 0xed], ["fldz", 0xd9, 0xee], ["fxtract", 0xd9, 0xf4], ["fprem1", 0xd9, 0xf5], ["fdecstp", 0xd9, 0xf6],
    ["fincstp", 0xd9, 0xf7], ["fprem", 0xd9, 0xf8], ["fsqrt", 0xd9, 0xfa], ["frndint", 0xd9, 0xfc], ["fscale", 0xd9, 0xfd],
    ["fucompp", 0xda, 0xe9], ["fnclex", 0xdb, 0xe2], ["fninit", 0xdb, 0xe3], ["fnstsw ax", 0xdf, 0xe0],
  ];
  for (const [name, a, b] of one) add(name, [a, b]);
  return t;
}

/** Weights: register-form instructions with ST(i) get a random i. */
function instantiate(g: Rng, ins: Insn): number[] {
  const b = [...ins.bytes];
  const last = b.length - 1;
  if (ins.sti) {
    b[last] = b[last]! | g.pick([1, 1, 1, 0, 2, 3, 7, g.int(8)]);
  }
  return b;
}

/** The transcendentals: results may differ from the host's by 1 ulp (the issue allows it). */
export const TRANS: { name: string; bytes: number[]; x: (g: Rng) => [number, bigint]; y?: (g: Rng) => [number, bigint] }[] = (() => {
  const sgn = (g: Rng): number => (g.bool() ? 0x8000 : 0);
  const sig = (g: Rng): bigint => B63 | (sigPattern(g) & M63);
  const range = (lo: number, hi: number) => (g: Rng): [number, bigint] => (g.bool(0.85) ? [sgn(g) | (lo + g.int(hi - lo + 1)), sig(g)] : randF80(g));
  const anyF = (g: Rng): [number, bigint] => (g.bool(0.8) ? [sgn(g) | (0x3fff - 80 + g.int(160)), sig(g)] : randF80(g));
  const pos = (g: Rng): [number, bigint] => { const v = anyF(g); return g.bool(0.85) ? [v[0] & 0x7fff, v[1]] : v; };
  const trigArg = (g: Rng): [number, bigint] => (g.bool(0.9) ? [sgn(g) | (g.bool(0.8) ? 0x3fff - 30 + g.int(40) : 0x3fff + g.int(66)), sig(g)] : randF80(g));
  return [
    { name: "f2xm1", bytes: [0xd9, 0xf0], x: range(0x3fff - 70, 0x3ffe) },
    { name: "fyl2x", bytes: [0xd9, 0xf1], x: pos, y: anyF },
    { name: "fptan", bytes: [0xd9, 0xf2], x: trigArg },
    { name: "fpatan", bytes: [0xd9, 0xf3], x: anyF, y: anyF },
    { name: "fyl2xp1", bytes: [0xd9, 0xf9], x: range(0x3fff - 70, 0x3ffc), y: anyF },
    { name: "fsincos", bytes: [0xd9, 0xfb], x: trigArg },
    { name: "fsin", bytes: [0xd9, 0xfe], x: trigArg },
    { name: "fcos", bytes: [0xd9, 0xff], x: trigArg },
  ];
})();
const TRANS_NAMES = new Set(TRANS.map((t) => t.name));

const DIRECTED: { name: string; bytes: number[] }[] = [
  { name: "fadd st0,sti", bytes: [0xd8, 0xc1] }, { name: "fmul st0,sti", bytes: [0xd8, 0xc9] },
  { name: "fsub st0,sti", bytes: [0xd8, 0xe1] }, { name: "fsubr st0,sti", bytes: [0xd8, 0xe9] },
  { name: "fdiv st0,sti", bytes: [0xd8, 0xf1] }, { name: "fdivr st0,sti", bytes: [0xd8, 0xf9] },
  { name: "fsqrt", bytes: [0xd9, 0xfa] }, { name: "fscale", bytes: [0xd9, 0xfd] }, { name: "frndint", bytes: [0xd9, 0xfc] },
  { name: "fst m32", bytes: [0xd9, 0x13] }, { name: "fst m64", bytes: [0xdd, 0x13] }, { name: "fprem", bytes: [0xd9, 0xf8] },
  { name: "fprem1", bytes: [0xd9, 0xf5] }, { name: "fistp m64", bytes: [0xdf, 0x3b] }, { name: "fist m32", bytes: [0xdb, 0x13] },
];

export interface FpuCase { eflags: number; image: Uint8Array; mem: Uint8Array; insns: { name: string; bytes: number[] }[] }

export function randCase(g: Rng, table: Insn[], maxLen = 4, only?: string[]): FpuCase {
  const image = new Uint8Array(108);
  randImage(g, image, true);
  // the initial state: no pending unmasked exception (the first waiting instruction would fault)
  const dv = new DataView(image.buffer);
  const cw = dv.getUint16(0, true);
  dv.setUint32(4, dv.getUint16(4, true) & ~0x80ff | (dv.getUint16(4, true) & cw & 0x3f), true);
  const trans = only ? TRANS.filter((t) => only.includes(t.name)) : TRANS;
  if (trans.length && g.bool(only ? 1 : 0.1)) {
    const t = g.pick(trans);
    put80(image, 28, t.x(g));
    put80(image, 38, t.y ? t.y(g) : randF80(g));
    const top = (dv.getUint16(4, true) >> 11) & 7;
    let tw = dv.getUint16(8, true) & ~(0xf << (2 * top)) & ~(3 << (2 * ((top + 1) & 7)));
    if (g.bool(0.8)) tw |= 3 << (2 * ((top + 7) & 7));
    dv.setUint16(8, tw, true);
    return { eflags: 0x202, image, mem: new Uint8Array(112), insns: [{ name: t.name, bytes: t.bytes }] };
  }
  const directed = !only && g.bool(0.3);
  if (directed || g.bool(0.3)) {
    // registers related to ST0, so that two-operand results land on the interesting boundaries
    const base: [number, bigint] = g.bool(0.7) ? [(g.bool() ? 0x8000 : 0) | (g.int(0x7ffe) + 1), nearOnes(g)] : randF80(g);
    put80(image, 28, base);
    for (let i = 1; i < 8; i++) put80(image, 28 + 10 * i, relatedF80(g, base, directed && i === 1 && g.bool(0.7) ? g.int(2) : g.int(6)));
    // tags: ST0 and ST1 valid
    const top = (dv.getUint16(4, true) >> 11) & 7;
    const tw = dv.getUint16(8, true) & ~(0xf << (2 * top)) & ~(3 << (2 * ((top + 1) & 7)));
    dv.setUint16(8, tw, true);
  }
  const mem = new Uint8Array(112);
  const pool = only ? table.filter((t) => only.includes(t.name)) : table;
  const n = 1 + g.int(maxLen);
  const insns: FpuCase["insns"] = [];
  if (directed) {
    // one arithmetic instruction on ST0 and ST1 (or ST0 alone, or a store of ST0)
    const d = g.pick(DIRECTED);
    insns.push({ name: d.name, bytes: d.bytes });
    if (/^f(mul|div)/.test(d.name) && g.bool(0.6)) {
      // the exact result's exponent right at the underflow or overflow threshold
      const a: [number, bigint] = [(g.bool() ? 0x8000 : 0) | (1 + g.int(0x7ffe)), nearOnes(g)];
      const ea = a[0] & 0x7fff;
      const t = g.pick([0, -1, 1, 0x7ffe, 0x7fff, -63, -64, -23, -52]);
      const e = d.name.startsWith("fmul") ? t - ea + 16383 : d.name.startsWith("fdivr") ? t + ea - 16383 : ea - t + 16383;
      if (e >= 1 && e <= 0x7ffe) { put80(image, 28, a); put80(image, 38, [(g.bool() ? 0x8000 : 0) | e, nearOnes(g)]); }
    }
    if (d.name.endsWith("m32") || d.name.endsWith("m64")) for (let k = 0; k < 16; k++) mem[k] = g.u32() & 0xff;
    return { eflags: 0x202, image, mem, insns };
  }
  let memGen: Insn["mem"] | undefined;
  for (let k = 0; k < n; k++) {
    const ins = g.pick(pool);
    if (k === 0) memGen = ins.mem;
    insns.push({ name: ins.name, bytes: instantiate(g, ins) });
  }
  if (memGen) memGen(g, mem); else for (let k = 0; k < 16; k++) mem[k] = g.u32() & 0xff;
  const eflags = 0x202 | (g.u32() & 0x8d5);
  return { eflags, image, mem, insns };
}

// --- running ---------------------------------------------------------------------------------

export interface Step { image: Uint8Array; mem: Uint8Array; eflags: number; eax: number }

export function runHost(h: FpuHarness, cases: FpuCase[]): Step[][] {
  let size = 0;
  for (const c of cases) size += 8 + 108 + 112 + 16 * c.insns.length;
  const buf = new Uint8Array(size);
  const dv = new DataView(buf.buffer);
  let p = 0;
  for (const c of cases) {
    dv.setUint32(p, c.insns.length, true); dv.setUint32(p + 4, c.eflags, true); p += 8;
    buf.set(c.image, p); p += 108;
    buf.set(c.mem, p); p += 112;
    for (const i of c.insns) { buf[p] = i.bytes.length; buf.set(i.bytes, p + 1); p += 16; }
  }
  const r = Bun.spawnSync({ cmd: [h.bin], stdin: buf, stdout: "pipe", stderr: "pipe", timeout: 300_000 });
  if (r.exitCode !== 0) throw new Error(`fpu harness exited ${r.exitCode}: ${r.stderr.toString()}`);
  const o = r.stdout;
  const ov = new DataView(o.buffer, o.byteOffset, o.byteLength);
  const out: Step[][] = [];
  let q = 0;
  for (let k = 0; k < cases.length; k++) {
    const n = ov.getUint32(q, true); q += 4;
    const steps: Step[] = [];
    for (let s = 0; s < n; s++) {
      steps.push({ image: o.slice(q, q + 108), mem: o.slice(q + 108, q + 220), eflags: ov.getUint32(q + 220, true), eax: ov.getUint32(q + 224, true) });
      q += 228;
    }
    out.push(steps);
  }
  return out;
}

/** Run a case in the model; `host` (if given) supplies the instruction/operand pointer bytes an
 * FNSTENV/FNSAVE stored, which the model cannot know and later instructions may read. */
export function runModel(c: FpuCase, host?: Step[]): Step[] {
  const f = new Fpu();
  f.frstor(c.image, true, true);
  const mem = c.mem.slice();
  let eflags = c.eflags;
  const steps: Step[] = [];
  for (const ins of c.insns) {
    let b = ins.bytes, o32 = true;
    if (b[0] === 0x66) { o32 = false; b = b.slice(1); }
    const rc = f.exec(b[0]! - 0xd8, b[1]!, mem, eflags, o32, true);
    if (rc !== FPU_OK) throw new Error(`model: ${ins.name} not executed (${rc})`);
    eflags = f.eflags;
    const hs = host?.[steps.length];
    if (hs && /^fn(stenv|save)/.test(ins.name)) {
      const [a, z] = ins.name.endsWith("16") ? [6, 14] : [12, 28];
      mem.set(hs.mem.subarray(a, z), a);
    }
    const image = new Uint8Array(108);
    f.image(image, true, true);
    steps.push({ image, mem: mem.slice(), eflags, eax: f.ax >= 0 ? (0x5a5a0000 | f.ax) : 0x5a5a5a5a });
    if (f.fsw & 0x80) break;
  }
  return steps;
}

const hex = (b: Uint8Array, from: number, to: number): string => Array.from(b.subarray(from, to), (x) => x.toString(16).padStart(2, "0")).join("");
const f80hex = (b: Uint8Array, off: number): string => hex(b, off, off + 10).match(/../g)!.reverse().join("");

export function describeState(img: Uint8Array): string {
  const dv = new DataView(img.buffer, img.byteOffset);
  const regs: string[] = [];
  for (let i = 0; i < 8; i++) regs.push(f80hex(img, 28 + 10 * i));
  return `fcw=${dv.getUint16(0, true).toString(16)} fsw=${dv.getUint16(4, true).toString(16)} ftw=${dv.getUint16(8, true).toString(16)} st=${regs.join(" ")}`;
}

/** Compare one step; returns a description of the first difference or null. */
/** Position of an extended value on the number line (adjacent values differ by 1), or null. */
function ordinal(b: Uint8Array, off: number): bigint | null {
  const dv = new DataView(b.buffer, b.byteOffset);
  const m = dv.getBigUint64(off, true), se = dv.getUint16(off + 8, true);
  const e = se & 0x7fff;
  if (e === 0x7fff || (e !== 0 && !(m & B63))) return null;
  const v = (BigInt(e === 0 ? 0 : e - 1) << 63n) + (e === 0 ? m : m);
  return se & 0x8000 ? -v : v;
}

/** 1 ulp apart (0 when equal), or -1. */
function ulps(a: Uint8Array, b: Uint8Array, off: number): number {
  let same = true;
  for (let k = off; k < off + 10; k++) if (a[k] !== b[k]) same = false;
  if (same) return 0;
  const x = ordinal(a, off), y = ordinal(b, off);
  if (x === null || y === null) return -1;
  const d = x > y ? x - y : y - x;
  return d === 1n ? 1 : -1;
}

export let ulpSteps = new Map<string, number>();
/** Transcendental steps equal to the host's but with the other C1 (rounding direction). */
export let c1Steps = new Map<string, number>();

export function diffStep(name: string, host: Step, model: Step, envStored: string | null): string | null {
  const approx = TRANS_NAMES.has(name);
  let off1 = false;
  if (approx) {
    for (const off of [28, 38]) {
      const u = ulps(host.image, model.image, off);
      if (u < 0) return `result more than 1 ulp off: host ${describeState(host.image)}\n       model ${describeState(model.image)}`;
      if (u) off1 = true;
    }
    if (off1) ulpSteps.set(name, (ulpSteps.get(name) ?? 0) + 1);
    // Equal results, other C1: the host rounded its own approximation from the other side of
    // the (same) representable result; C1 then says nothing about the true value.
    if (!off1 && (host.image[5]! ^ model.image[5]!) === 0x02 && host.image.subarray(0, 5).every((v, k) => v === model.image[k])) {
      c1Steps.set(name, (c1Steps.get(name) ?? 0) + 1);
      off1 = true;
    }
  }
  // (1 ulp across the normal/denormal boundary also changes that register's tag)
  const ign = (k: number): boolean => (k >= 12 && k < 28) || (off1 && k >= 28 && k < 48) || (off1 && (k === 8 || k === 9));
  for (let k = 0; k < 108; k++) if (!ign(k) && ((host.image[k]! ^ model.image[k]!) & (off1 && k === 5 ? ~0x02 : 0xff)) !== 0) return `state: host ${describeState(host.image)}\n       model ${describeState(model.image)}`;
  for (let k = 0; k < 112; k++) {
    if (envStored && (envStored.endsWith("16") ? k >= 6 && k < 14 : k >= 12 && k < 28)) continue;
    if (host.mem[k] !== model.mem[k]) return `memory: host ${hex(host.mem, 0, 16)} model ${hex(model.mem, 0, 16)}`;
  }
  if ((host.eflags & 0x8d5) !== (model.eflags & 0x8d5)) return `eflags: host ${host.eflags.toString(16)} model ${model.eflags.toString(16)}`;
  if (host.eax !== model.eax) return `eax: host ${host.eax.toString(16)} model ${model.eax.toString(16)}`;
  return null;
}

export interface Divergence { op: string; text: string }
export interface Summary { cases: number; steps: number; divergences: Divergence[]; perOp: Map<string, { steps: number; bad: number }> }

export function fpuDifftest(h: FpuHarness, n: number, seed: number, only?: string[]): Summary {
  const g = new Rng(seed);
  const table = insnTable();
  const sum: Summary = { cases: 0, steps: 0, divergences: [], perOp: new Map() };
  const batch = 2000;
  for (let done = 0; done < n; done += batch) {
    const cases: FpuCase[] = [];
    for (let k = 0; k < Math.min(batch, n - done); k++) cases.push(randCase(g, table, 4, only));
    const host = runHost(h, cases);
    for (let k = 0; k < cases.length; k++) {
      const c = cases[k]!;
      sum.cases++;
      let model: Step[];
      try { model = runModel(c, host[k]); } catch (e) { sum.divergences.push({ op: c.insns[0]!.name, text: `model threw: ${(e as Error).stack}` }); continue; }
      const hs = host[k]!;
      let envStored: string | null = null;
      for (let s = 0; s < hs.length; s++) {
        const name = c.insns[s]!.name;
        if (/^fn(stenv|save)/.test(name)) envStored = name;
        const st = sum.perOp.get(name) ?? { steps: 0, bad: 0 };
        sum.perOp.set(name, st);
        st.steps++; sum.steps++;
        const ms = model[s];
        const d = ms ? diffStep(name, hs[s]!, ms, envStored) : "model stopped early";
        if (d) {
          st.bad++;
          const prev = s === 0 ? `       before ${describeState(c.image)} eflags=${c.eflags.toString(16)} mem=${hex(c.mem, 0, 16)}` : `       before ${describeState(hs[s - 1]!.image)} mem=${hex(hs[s - 1]!.mem, 0, 16)}`;
          sum.divergences.push({ op: name, text: `${name} [${c.insns[s]!.bytes.map((x) => x.toString(16)).join(" ")}] (step ${s})\n${prev}\n       ${d}` });
          break;
        }
      }
      if (model.length > hs.length && !sum.divergences.length) { /* model ran on after the host stopped: covered by ES compare */ }
    }
  }
  return sum;
}

if (import.meta.main) {
  const h = buildFpuHarness();
  if (typeof h === "string") { console.error(`fpu difftest: ${h}`); process.exit(2); }
  const n = Number(process.env.RRX_FPU_CASES ?? 5000);
  const seed = Number(process.env.RRX_FPU_SEED ?? 1);
  const only = process.env.RRX_FPU_ONLY?.split("|");
  try {
    const s = fpuDifftest(h, n, seed, only);
    const shown = Number(process.env.RRX_FPU_SHOW ?? 5);
    for (const d of s.divergences.slice(0, shown)) console.log(d.text);
    const rows = [...s.perOp.entries()].sort((a, b) => b[1].bad - a[1].bad || a[0].localeCompare(b[0]));
    for (const [op, st] of rows) if (st.bad || process.env.RRX_FPU_ALL || TRANS_NAMES.has(op)) console.log(`${op.padEnd(16)} ${st.steps} steps, ${st.bad} divergent${TRANS_NAMES.has(op) ? `, ${ulpSteps.get(op) ?? 0} 1 ulp off, ${c1Steps.get(op) ?? 0} equal with the other C1` : ""}`);
    console.log(`${s.cases} cases, ${s.steps} instructions compared, ${s.divergences.length} divergent cases`);
    process.exit(s.divergences.length ? 3 : 0);
  } finally {
    h.dispose();
  }
}
