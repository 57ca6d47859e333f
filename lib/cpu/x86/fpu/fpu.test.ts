/**
 * Unit tests of the x87 model with expected values worked out by hand or with exact rational
 * arithmetic (Python fractions), and the environment layouts from the Intel SDM (vol. 1, figures
 * 8-9 to 8-12). The bit-for-bit comparison with real hardware is test/difftest/fpu.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { Fpu, FPU_OK, FPU_UD, memAccess, C0, C1, C2, C3 } from "./fpu.ts";
import { StateReader, StateWriter } from "../../../machine/snapshot.ts";

const IE = 1, DE = 2, ZE = 4, OE = 8, UE = 0x10, PE = 0x20, SF = 0x40, ES = 0x80, B = 0x8000;

function fresh(cw = 0x037f): Fpu {
  const f = new Fpu();
  f.fninit();
  if (cw !== 0x037f) f.fldcw(cw);
  return f;
}
const mem = new Uint8Array(108);
const dv = new DataView(mem.buffer);
function x(f: Fpu, b0: number, modrm: number, eflags = 0x202): number {
  const rc = f.exec(b0 - 0xd8, modrm, mem, eflags, true, true);
  expect(rc).toBe(FPU_OK);
  return f.eflags;
}
const st = (f: Fpu, i = 0): string => f.stSe(i).toString(16).padStart(4, "0") + f.stM(i).toString(16).padStart(16, "0");
const fldInt = (f: Fpu, v: number): void => { dv.setInt32(0, v, true); x(f, 0xdb, 0x03); };   // FILD m32
const flags = (f: Fpu): number => f.fsw & 0x7f;

describe("x87 arithmetic", () => {
  test("1/3 in each precision and rounding mode", () => {
    const cases: [number, string, number][] = [
      [0x037f, "3ffdaaaaaaaaaaaaaaab", 1],   // PC 64, nearest: rounded up
      [0x0f7f, "3ffdaaaaaaaaaaaaaaaa", 0],   // PC 64, toward zero
      [0x007f, "3ffdaaaaab0000000000", 1],   // PC 24
      [0x027f, "3ffdaaaaaaaaaaaaa800", 0],   // PC 53: ...aaa|aa... rounds down
    ];
    for (const [cw, want, c1] of cases) {
      const g = fresh(cw);
      fldInt(g, 3); x(g, 0xd9, 0xe8);      // FILD 3; FLD1
      x(g, 0xde, 0xf1);                     // FDIVRP ST(1),ST(0): ST(1) = ST(0) / ST(1) = 1/3, pop
      expect(st(g)).toBe(want);
      expect(flags(g)).toBe(PE);
      expect((g.fsw & C1) !== 0).toBe(c1 === 1);
      expect(g.top).toBe(7);
    }
  });

  test("sqrt(2), 10/7 and exact results raise nothing", () => {
    const f = fresh();
    fldInt(f, 2); x(f, 0xd9, 0xfa);
    expect(st(f)).toBe("3fffb504f333f9de6484");
    expect(flags(f)).toBe(PE);
    const g = fresh();
    fldInt(g, 7); fldInt(g, 10); x(g, 0xd8, 0xf1);       // FDIV ST0, ST1 = 10/7
    expect(st(g)).toBe("3fffb6db6db6db6db6db");
    const h = fresh();
    fldInt(h, 6); fldInt(h, 7); x(h, 0xd8, 0xc9);        // 7*6
    expect(st(h)).toBe("4004a800000000000000");
    expect(h.fsw & 0x3f).toBe(0);
  });

  test("x - x is +0, or -0 when rounding down", () => {
    for (const [cw, want] of [[0x037f, "00000000000000000000"], [0x077f, "80000000000000000000"]] as const) {
      const f = fresh(cw);
      fldInt(f, 5); fldInt(f, 5); x(f, 0xde, 0xe9);      // FSUBP
      expect(st(f)).toBe(want);
    }
  });

  test("invalid, divide by zero and NaN propagation, masked", () => {
    const f = fresh();
    x(f, 0xd9, 0xee); x(f, 0xd9, 0xee); x(f, 0xde, 0xf9); // 0/0
    expect(st(f)).toBe("ffffc000000000000000");            // the real indefinite
    expect(flags(f)).toBe(IE);
    const g = fresh();
    x(g, 0xd9, 0xee); x(g, 0xd9, 0xe8); x(g, 0xd8, 0xf1);  // 1/0
    expect(st(g)).toBe("7fff8000000000000000");
    expect(flags(g)).toBe(ZE);
    // SNaN + 1 → the SNaN quieted, IE
    const h = fresh();
    dv.setBigUint64(0, 0x8000000000000001n, true); dv.setUint16(8, 0x7fff, true);
    x(h, 0xdb, 0x2b);                                      // FLD m80: no exception for an SNaN
    expect(flags(h)).toBe(0);
    x(h, 0xd9, 0xe8); x(h, 0xde, 0xc1);                    // FLD1; FADDP
    expect(st(h)).toBe("7fffc000000000000001");
    expect(flags(h)).toBe(IE);
  });

  test("unmasked exceptions: no result for ZE, a wrapped exponent for OE", () => {
    const f = fresh(0x037f & ~ZE);
    x(f, 0xd9, 0xee); x(f, 0xd9, 0xe8); x(f, 0xd8, 0xf1);  // 1/0
    expect(st(f)).toBe("3fff8000000000000000");            // ST0 unchanged
    expect(f.fsw & (ZE | ES | B)).toBe(ZE | ES | B);
    const g = fresh(0x037f & ~OE);
    dv.setBigUint64(0, 0x8000000000000000n, true); dv.setUint16(8, 0x7ffe, true);
    x(g, 0xdb, 0x2b); x(g, 0xdb, 0x2b); x(g, 0xde, 0xc1);  // 2^16383 + 2^16383 = 2^16384
    expect(st(g)).toBe("1fff8000000000000000");            // biased 0x7fff - 24576
    expect(g.fsw & (OE | ES)).toBe(OE | ES);
  });

  test("masked underflow gives a denormal and flags UE only when inexact", () => {
    const f = fresh();
    dv.setBigUint64(0, 0x8000000000000000n, true); dv.setUint16(8, 0x0001, true);  // 2^-16382
    x(f, 0xdb, 0x2b); fldInt(f, 2); x(f, 0xde, 0xf9);      // FDIVP ST(1), ST0: 2^-16382 / 2
    expect(st(f)).toBe("00004000000000000000");
    expect(flags(f)).toBe(0);                             // exact: no UE
    fldInt(f, 3); x(f, 0xde, 0xf9);                        // / 3: a denormal operand, inexact
    expect(flags(f)).toBe(DE | UE | PE);
  });
});

describe("x87 loads, stores and conversions", () => {
  test("constants follow RC", () => {
    const want: Record<number, string[]> = {
      0xe9: ["4000d49a784bcd1b8afe", "4000d49a784bcd1b8afe", "4000d49a784bcd1b8aff", "4000d49a784bcd1b8afe"],   // FLDL2T
      0xeb: ["4000c90fdaa22168c235", "4000c90fdaa22168c234", "4000c90fdaa22168c235", "4000c90fdaa22168c234"],   // FLDPI
    };
    for (const [op, v] of Object.entries(want)) {
      for (let rc = 0; rc < 4; rc++) {
        const f = fresh(0x037f | (rc << 10));
        x(f, 0xd9, Number(op));
        expect(st(f)).toBe(v[rc]!);
        expect(f.fsw & 0x3f).toBe(0);
      }
    }
  });

  test("float32/64 stores round and convert specials", () => {
    const f = fresh();
    fldInt(f, 3); x(f, 0xd9, 0xe8); x(f, 0xde, 0xf1);      // 1/3
    x(f, 0xd9, 0x13);                                       // FST m32
    expect(dv.getUint32(0, true)).toBe(0x3eaaaaab);
    x(f, 0xdd, 0x13);                                       // FST m64
    expect(dv.getBigUint64(0, true)).toBe(0x3fd5555555555555n);
    // a float32 denormal loads exactly, raising DE
    const g = fresh();
    dv.setUint32(0, 1, true); x(g, 0xd9, 0x03);
    expect(st(g)).toBe("3f6a8000000000000000");            // 2^-149
    expect(flags(g)).toBe(DE);
  });

  test("integer stores round by RC and give the integer indefinite when out of range", () => {
    const cases: [number, number, number][] = [[5, 0x037f, 2], [7, 0x037f, 4], [-5, 0x077f, -3], [-5, 0x0b7f, -2], [-5, 0x0f7f, -2]];
    for (const [twice, cw, want] of cases) {
      const f = fresh(cw);
      fldInt(f, 2); fldInt(f, twice); x(f, 0xd8, 0xf1);     // twice/2 = x.5
      x(f, 0xdb, 0x13);                                     // FIST m32
      expect(dv.getInt32(0, true)).toBe(want);
      expect(flags(f)).toBe(PE);
    }
    const f = fresh();
    fldInt(f, 40000); x(f, 0xdf, 0x13);                     // FIST m16
    expect(dv.getUint16(0, true)).toBe(0x8000);
    expect(flags(f)).toBe(IE);
  });

  test("packed BCD both ways", () => {
    const f = fresh();
    fldInt(f, -1234); x(f, 0xdf, 0x33);                     // FBSTP
    expect(Array.from(mem.subarray(0, 10))).toEqual([0x34, 0x12, 0, 0, 0, 0, 0, 0, 0, 0x80]);
    mem.set([0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x00]);
    x(f, 0xdf, 0x23);                                       // FBLD 999999999999999999
    x(f, 0xdf, 0x3b);                                       // FISTP m64
    expect(dv.getBigInt64(0, true)).toBe(999999999999999999n);
  });
});

describe("x87 stack, compares and classification", () => {
  test("stack overflow and underflow", () => {
    const f = fresh();
    for (let k = 0; k < 8; k++) x(f, 0xd9, 0xe8);
    expect(f.fsw & 0x7f).toBe(0);
    x(f, 0xd9, 0xe8);                                       // 9th push
    expect(flags(f)).toBe(IE | SF);
    expect(f.fsw & C1).toBe(C1);
    expect(st(f)).toBe("ffffc000000000000000");
    const g = fresh();
    x(g, 0xd9, 0xe1);                                       // FABS on an empty stack
    expect(flags(g)).toBe(IE | SF);
    expect(g.fsw & C1).toBe(0);
  });

  test("FCOM, FUCOM, FCOMI, FTST and FXAM", () => {
    const f = fresh();
    fldInt(f, 2); fldInt(f, 1);                             // ST0 = 1, ST1 = 2
    x(f, 0xd8, 0xd1);                                       // FCOM ST1: less
    expect(f.fsw & (C0 | C2 | C3)).toBe(C0);
    expect(x(f, 0xdb, 0xf1, 0x8d5 | 0x202) & 0x8d5).toBe(0x01);   // FCOMI: CF; OF SF AF cleared
    x(f, 0xd9, 0xe4);                                       // FTST: 1 > 0
    expect(f.fsw & (C0 | C2 | C3)).toBe(0);
    x(f, 0xd9, 0xe5);                                       // FXAM: normal
    expect(f.fsw & (C0 | C2 | C3)).toBe(C2);
    // a QNaN: FUCOM is quiet, FCOM is invalid; both unordered
    dv.setBigUint64(0, 0xc000000000000000n, true); dv.setUint16(8, 0x7fff, true);
    const g = fresh();
    x(g, 0xd9, 0xe8); x(g, 0xdb, 0x2b);
    x(g, 0xdd, 0xe1);
    expect(g.fsw & (C0 | C2 | C3)).toBe(C0 | C2 | C3);
    expect(flags(g)).toBe(0);
    x(g, 0xd8, 0xd1);
    expect(flags(g)).toBe(IE);
    x(g, 0xd9, 0xe5);                                       // FXAM: NaN
    expect(g.fsw & (C0 | C2 | C3)).toBe(C0);
    const h = fresh();
    x(h, 0xd9, 0xe5);                                       // FXAM: empty
    expect(h.fsw & (C0 | C2 | C3)).toBe(C0 | C3);
  });

  test("FPREM quotient bits", () => {
    const f = fresh();
    fldInt(f, 3); fldInt(f, 23);                            // 23 rem 3: q = 7 (111), r = 2
    x(f, 0xd9, 0xf8);
    expect(st(f)).toBe("40008000000000000000");
    expect(f.fsw & (C0 | C1 | C2 | C3)).toBe(C0 | C1 | C3);
    const g = fresh();
    fldInt(g, 3); fldInt(g, 23);
    x(g, 0xd9, 0xf5);                                       // FPREM1: q = 8 (1000), r = -1
    expect(st(g)).toBe("bfff8000000000000000");
    expect(g.fsw & (C0 | C1 | C2 | C3)).toBe(0);
  });

  test("undefined encodings and the memory operand table", () => {
    const f = fresh();
    expect(f.exec(1, 0xd1, mem, 0, true, true)).toBe(FPU_UD);      // D9 D1
    expect(f.exec(1, 0x08, mem, 0, true, true)).toBe(FPU_UD);      // D9 /1
    expect(memAccess(5, 6, true)).toEqual({ size: 108, read: false, write: true });
    expect(memAccess(5, 6, false)).toEqual({ size: 94, read: false, write: true });
    expect(memAccess(1, 4, false)).toEqual({ size: 14, read: true, write: false });
    expect(memAccess(7, 7, true)).toEqual({ size: 8, read: false, write: true });
  });
});

describe("x87 transcendentals (values from 80-digit decimal arithmetic, rounded to nearest)", () => {
  const half = (f: Fpu): void => { fldInt(f, 2); x(f, 0xd9, 0xe8); x(f, 0xde, 0xf1); };   // 1/2
  test("F2XM1, FYL2X, FYL2XP1, FPATAN", () => {
    const f = fresh();
    half(f); x(f, 0xd9, 0xf0);
    expect(st(f)).toBe("3ffdd413cccfe7799211");             // sqrt(2) - 1
    expect(flags(f)).toBe(PE);
    const g = fresh();
    x(g, 0xd9, 0xe8); fldInt(g, 3); x(g, 0xd9, 0xf1);       // 1 * log2(3)
    expect(st(g)).toBe("3fffcae00d1cfdeb43d0");
    expect(g.top).toBe(7);
    const h = fresh();
    x(h, 0xd9, 0xe8); fldInt(h, 4); x(h, 0xd9, 0xe8); x(h, 0xde, 0xf1); // y = 1, x = 1/4
    x(h, 0xd9, 0xf9);                                        // log2(1.25)
    expect(st(h)).toBe("3ffda4d3c25e68dc57f2");
    const k = fresh();
    x(k, 0xd9, 0xe8); x(k, 0xd9, 0xe8); x(k, 0xd9, 0xf3);   // atan(1/1) = pi/4
    expect(st(k)).toBe("3ffec90fdaa22168c235");
    // special cases from the SDM's tables: log2(0) with y = 1 is -inf and ZE; atan(+0/-x) = +pi
    const z = fresh();
    x(z, 0xd9, 0xe8); x(z, 0xd9, 0xee); x(z, 0xd9, 0xf1);
    expect(st(z)).toBe("ffff8000000000000000");
    expect(flags(z)).toBe(ZE);
    const p = fresh();
    x(p, 0xd9, 0xee); fldInt(p, -2); x(p, 0xd9, 0xf3);
    expect(st(p)).toBe("4000c90fdaa22168c235");
  });

  test("FSIN, FCOS, FPTAN, FSINCOS and the C2 range check", () => {
    const want: [number, string][] = [[0xfe, "3ffed76aa47848677021"], [0xff, "3ffe8a51407da8345c92"]];
    for (const [op, v] of want) {
      const f = fresh();
      x(f, 0xd9, 0xe8); x(f, 0xd9, op);
      expect(st(f)).toBe(v);
      expect(f.fsw & C2).toBe(0);
    }
    const t = fresh();
    x(t, 0xd9, 0xe8); x(t, 0xd9, 0xf2);                      // FPTAN pushes 1.0
    expect([st(t, 0), st(t, 1)]).toEqual(["3fff8000000000000000", "3fffc75922e5f71d2dc5"]);
    const s = fresh();
    x(s, 0xd9, 0xe8); x(s, 0xd9, 0xfb);                      // FSINCOS: ST0 = cos, ST1 = sin
    expect([st(s, 0), st(s, 1)]).toEqual(["3ffe8a51407da8345c92", "3ffed76aa47848677021"]);
    const r = fresh();
    dv.setBigInt64(0, 1n << 62n, true); x(r, 0xdf, 0x2b);   // 2^62: in range
    x(r, 0xd8, 0xc0);                                        // 2^63: out of range
    const before = st(r);
    x(r, 0xd9, 0xfe);
    expect(r.fsw & C2).toBe(C2);
    expect(st(r)).toBe(before);
  });
});

describe("x87 environment images and snapshots", () => {
  test("FNSTENV layouts (SDM vol. 1 figures 8-9 to 8-12)", () => {
    const f = fresh();
    x(f, 0xd9, 0xe8);
    f.noteInsn(0x1234, 0x5678, 0x1e8, 0x2345, 0x6789);
    const m = new Uint8Array(28);
    const v = new DataView(m.buffer);
    f.storeEnv(m, true, true);                              // 32-bit protected mode
    expect([v.getUint32(0, true), v.getUint32(4, true), v.getUint32(8, true)]).toEqual([0xffff037f, 0xffff3800, 0xffff3fff]);
    expect([v.getUint32(12, true), v.getUint32(16, true), v.getUint32(20, true), v.getUint32(24, true)]).toEqual([0x5678, 0x01e81234, 0x6789, 0xffff2345]);
    f.storeEnv(m, false, true);                             // 16-bit protected mode
    expect([0, 2, 4, 6, 8, 10, 12].map((o) => v.getUint16(o, true))).toEqual([0x037f, 0x3800, 0x3fff, 0x5678, 0x1234, 0x6789, 0x2345]);
    f.storeEnv(m, false, false);                            // 16-bit real mode: 20-bit linear pointers
    expect([6, 8, 10, 12].map((o) => v.getUint16(o, true))).toEqual([0x79b8, 0x11e8, 0x9bd9, 0x2000]);
    f.storeEnv(m, true, false);                             // 32-bit real mode
    expect([12, 16, 20, 24].map((o) => v.getUint32(o, true))).toEqual([0xffff79b8, 0x000011e8, 0xffff9bd9, 0x00002000]);
    // and back
    const g = fresh();
    g.loadEnv(m, true, false);
    expect([g.cw, g.fsw, g.fip, g.fdp, g.fop]).toEqual([0x037f, 0x3800, 0x179b8, 0x29bd9, 0x1e8]);
  });

  test("FNSAVE/FRSTOR round trip and save/restore", () => {
    const f = fresh(0x0a7e);
    fldInt(f, 7); x(f, 0xd9, 0xeb); x(f, 0xd9, 0xee);
    x(f, 0xdd, 0xc1);                                       // FFREE ST1
    const img = new Uint8Array(108);
    f.image(img, true, true);
    // R5 = 0 (tag 01), R6 freed (11), R7 = 7 (00), R0-R4 empty
    expect(new DataView(img.buffer).getUint16(8, true)).toBe(0x37ff);
    const g = new Fpu();
    g.frstor(img, true, true);
    const img2 = new Uint8Array(108);
    g.image(img2, true, true);
    expect(img2).toEqual(img);
    const w = new StateWriter();
    f.save(w);
    const bytes = w.finish();
    const h = new Fpu();
    h.restore(new StateReader(bytes));
    const w2 = new StateWriter();
    h.save(w2);
    expect(w2.finish()).toEqual(bytes);
    expect(bytes.length).toBe(8 * 10 + 6 + 14);
    // FNSAVE reinitialises
    f.fnsave(img, true, true);
    expect([f.cw, f.fsw, f.ftw]).toEqual([0x037f, 0, 0xffff]);
  });
});

describe("x87 snapshots cover the whole state", () => {
  test("save() at a random point, restore() into a fresh Fpu: the rest of a random sequence runs the same", async () => {
    const { insnTable, randCase, Rng } = await import("../../../../test/difftest/fpu-difftest.ts");
    const g = new Rng(777);
    const table = insnTable();
    let compared = 0;
    for (let k = 0; k < 3000; k++) {
      const c = randCase(g, table, 6);
      const a = new Fpu();
      a.frstor(c.image, true, true);
      const memA = c.mem.slice();
      let eflags = c.eflags;
      const cut = g.int(c.insns.length);
      let b: Fpu | null = null, memB: Uint8Array | null = null;
      for (let s = 0; s < c.insns.length; s++) {
        if (s === cut) {
          const w = new StateWriter();
          a.save(w);
          b = new Fpu();
          b.restore(new StateReader(w.finish()));
          memB = memA.slice();
        }
        let bytes = c.insns[s]!.bytes, o32 = true;
        if (bytes[0] === 0x66) { o32 = false; bytes = bytes.slice(1); }
        a.exec(bytes[0]! - 0xd8, bytes[1]!, memA, eflags, o32, true);
        if (b) {
          b.exec(bytes[0]! - 0xd8, bytes[1]!, memB!, eflags, o32, true);
          const ia = new Uint8Array(108), ib = new Uint8Array(108);
          a.image(ia, true, true); b.image(ib, true, true);
          expect(ib).toEqual(ia);
          expect(memB).toEqual(memA);
          expect([b.eflags, b.ax]).toEqual([a.eflags, a.ax]);
          compared++;
        }
        eflags = a.eflags;
      }
    }
    expect(compared).toBeGreaterThan(3000);
  });
});
