/**
 * The x87's arithmetic on its state (state.ts), the middle of the Fpu's class stack
 * (state.ts → arith.ts → formats.ts → fpu.ts, each extending the one before): what exec()
 * returns besides its status (`wrote`, `eflags`, `ax`), delivering an f80.ts result, FADD,
 * FSUB, FMUL, FDIV and their reversed forms, compares (FCOM/FUCOM/FCOMI/FTST) into the
 * condition codes or EFLAGS, the one- and two-operand operations (FSQRT, FRNDINT, FSCALE,
 * FXTRACT, FPREM/FPREM1, FXAM), the transcendental instructions, and register moves (FXCH,
 * FST ST(i), FCMOVcc). The common cases take fast.ts's BigInt-free paths; the rest is exact
 * (f80.ts, transcend.ts). A memory operand arrives here as a value fpu.ts has converted.
 */
import * as F from "./f80.ts";
import * as T from "./transcend.ts";
import * as X from "./fast.ts";
import { DE, Kind } from "./f80.ts";
import { FpuState, C0, C1, C2, C3 } from "./state.ts";

export class FpuArith extends FpuState {
  /** After exec(): bytes written to the operand buffer, EFLAGS (FCOMI), AX (FNSTSW AX, else -1). */
  wrote = 0;
  eflags = 0;
  ax = -1;

  private readonly ctx = new F.Ctx();

  protected begin(): F.Ctx {
    const c = this.ctx;
    c.cw = this.cw; c.exc = 0; c.c1 = 0; c.srcDen = false;
    return c;
  }

  /** Deliver ctx's result to ST(dst) (then pop `pops` times) unless an unmasked exception stops it. */
  private commit(dst: number, pops: number): void {
    const c = this.ctx;
    this.setC1(c.c1);
    if (this.signal(c.exc)) return;
    this.setSt(dst, c.se, c.m);
    for (let k = 0; k < pops; k++) this.pop();
  }

  /** Push ctx's result (a load), with the stack-overflow check done by the caller. */
  protected commitPush(): void {
    const c = this.ctx;
    this.setC1(c.c1);
    if (this.signal(c.exc)) return;
    this.push(c.se, c.m);
  }

  // --- arithmetic --------------------------------------------------------------------------

  /**
   * dest ← dest op src, op as the D8 reg field: 0 add, 1 mul, 4 dest-src, 5 src-dest,
   * 6 dest/src, 7 src/dest. The source is ST(srcIdx) (srcIdx >= 0) or the given value.
   */
  arith(op: number, dst: number, srcIdx: number, sse: number, sm: bigint, pops: number, srcDenormal = false): void {
    if (this.isEmpty(dst) || (srcIdx >= 0 && this.isEmpty(srcIdx))) {
      if (this.underflow()) { this.setSt(dst, F.IND_SE, F.IND_M); for (let k = 0; k < pops; k++) this.pop(); }
      return;
    }
    if (srcIdx >= 0 && this.arithFast(op, dst, srcIdx, pops)) return;
    if (srcIdx >= 0) { sse = this.stSe(srcIdx); sm = this.stM(srcIdx); }
    const c = this.begin();
    const dse = this.stSe(dst), dm = this.stM(dst);
    c.srcDen = srcDenormal;
    const p = c.pbits;
    switch (op) {
      case 0: F.add(c, dse, dm, sse, sm, false, p); break;
      case 1: F.mul(c, dse, dm, sse, sm, p); break;
      case 4: F.add(c, dse, dm, sse, sm, true, p); break;
      case 5: F.add(c, sse, sm, dse, dm, true, p); break;
      case 6: F.div(c, dse, dm, sse, sm, p); break;
      case 7: F.div(c, sse, sm, dse, dm, p); break;
    }
    this.commit(dst, pops);
  }

  /** FADD/FSUB/FMUL/FDIV (and reversed) of two normal registers with a normal result, without BigInts. */
  protected arithFast(op: number, dst: number, srcIdx: number, pops: number): boolean {
    const ps = this.phys(srcIdx);
    return this.arithFastV(op, dst, this.rse[ps]!, this.rhi[ps]!, this.rlo[ps]!, pops);
  }

  /** The same with the source as a value (sign+exponent and two words). */
  protected arithFastV(op: number, dst: number, sse: number, shi: number, slo: number, pops: number): boolean {
    const pd = this.phys(dst);
    if (this.empty & (1 << pd)) return false;
    const dse = this.rse[pd]!, dhi = this.rhi[pd]!;
    const de = dse & 0x7fff, sx = sse & 0x7fff;
    if (de === 0 || de === 0x7fff || sx === 0 || sx === 0x7fff || dhi < 0x80000000 || shi < 0x80000000) return false;
    const pc = (this.cw >> 8) & 3, p = pc === 0 ? 24 : pc === 2 ? 53 : 64, rc = (this.cw >> 10) & 3;
    const dlo = this.rlo[pd]!;
    let ok: boolean;
    switch (op) {
      case 0: ok = X.addFast(dse, dhi, dlo, sse, shi, slo, false, p, rc); break;
      case 1: ok = X.mulFast(dse, dhi, dlo, sse, shi, slo, p, rc); break;
      case 4: ok = X.addFast(dse, dhi, dlo, sse, shi, slo, true, p, rc); break;
      case 5: ok = X.addFast(sse, shi, slo, dse, dhi, dlo, true, p, rc); break;
      case 6: ok = X.divFast(dse, dhi, dlo, sse, shi, slo, p, rc); break;
      default: ok = X.divFast(sse, shi, slo, dse, dhi, dlo, p, rc); break;
    }
    if (!ok) return false;
    if (X.finexact) { this.setC1(X.fup ? 1 : 0); this.signal(F.PE); } else this.setC1(0);
    this.rse[pd] = X.fse; this.rhi[pd] = X.fhi; this.rlo[pd] = X.flo;
    for (let k = 0; k < pops; k++) this.pop();
    return true;
  }

  /** Compare ST0 with ST(srcIdx) or a value; sets C3/C2/C0 or (toEflags) ZF/PF/CF. */
  compare(srcIdx: number, sse: number, sm: bigint, quiet: boolean, pops: number, toEflags: boolean, srcDenormal = false): void {
    if (this.isEmpty(0) || (srcIdx >= 0 && this.isEmpty(srcIdx))) {
      const masked = this.underflow();
      if (toEflags) this.eflags = (this.eflags & ~0x8d5) | 0x45;
      else this.setCC(1, 1, 0, 1);
      if (masked) for (let k = 0; k < pops; k++) this.pop();
      return;
    }
    if (srcIdx >= 0) {
      const ps = this.phys(srcIdx), t = this.top;
      const r = X.cmpFast(this.rse[t]!, this.rhi[t]!, this.rlo[t]!, this.rse[ps]!, this.rhi[ps]!, this.rlo[ps]!);
      if (r >= 0) { this.compareDone(r, toEflags, pops); return; }
      sse = this.stSe(srcIdx); sm = this.stM(srcIdx);
    }
    const c = this.begin();
    const res = F.compare(c, this.stSe(0), this.stM(0), sse, sm, quiet);
    if (srcDenormal && res !== F.CMP_UN) c.exc |= DE;
    const [z, p, cy] = [[0, 0, 1], [1, 0, 0], [0, 0, 0], [1, 1, 1]][res]!;
    if (toEflags) {
      this.eflags = (this.eflags & ~0x8d5) | (z ? 0x40 : 0) | (p ? 0x04 : 0) | (cy ? 0x01 : 0);
    } else this.setCC(z!, p!, 0, cy!);
    // The condition codes are set even when an unmasked exception stops the pop.
    if (this.signal(c.exc)) return;
    for (let k = 0; k < pops; k++) this.pop();
  }

  /** The condition codes (or EFLAGS) of an exception-free compare, then the pops. */
  protected compareDone(res: number, toEflags: boolean, pops: number): void {
    const z = res === F.CMP_EQ || res === F.CMP_UN, cy = res === F.CMP_LT || res === F.CMP_UN, p = res === F.CMP_UN;
    if (toEflags) this.eflags = (this.eflags & ~0x8d5) | (z ? 0x40 : 0) | (p ? 0x04 : 0) | (cy ? 0x01 : 0);
    else this.sw = (this.sw & ~(C0 | C1 | C2 | C3)) | (z ? C3 : 0) | (p ? C2 : 0) | (cy ? C0 : 0);
    for (let k = 0; k < pops; k++) this.pop();
  }

  /** A one-operand operation on ST0 (FSQRT, FRNDINT). */
  protected unary(fn: (c: F.Ctx, se: number, m: bigint) => void): void {
    if (this.isEmpty(0)) { if (this.underflow()) this.setSt(0, F.IND_SE, F.IND_M); return; }
    const c = this.begin();
    fn(c, this.stSe(0), this.stM(0));
    this.commit(0, 0);
  }

  // --- register moves and one- or two-register operations ------------------------------------

  /** ST1 = fn(ST0, ST1), pop (FYL2X, FYL2XP1, FPATAN). */
  protected binaryPop(fn: (c: F.Ctx, xse: number, xm: bigint, yse: number, ym: bigint) => void): void {
    if (this.isEmpty(0) || this.isEmpty(1)) {
      if (this.underflow()) { this.setSt(1, F.IND_SE, F.IND_M); this.pop(); }
      return;
    }
    const c = this.begin();
    fn(c, this.stSe(0), this.stM(0), this.stSe(1), this.stM(1));
    this.commit(1, 1);
  }

  /** FSIN, FCOS (ST0 replaced), FPTAN (ST0 = tan, push 1), FSINCOS (ST0 = sin, push cos). */
  protected trig(op: "sin" | "cos" | "tan" | "sincos"): void {
    const pushes = op === "tan" || op === "sincos";
    if (this.isEmpty(0)) {
      this.sw &= ~C2;
      if (this.underflow()) { this.setSt(0, F.IND_SE, F.IND_M); if (pushes) this.push(F.IND_SE, F.IND_M); }
      return;
    }
    if (pushes && !this.isEmpty(7)) {
      this.sw &= ~C2;
      if (this.overflow()) { this.setSt(0, F.IND_SE, F.IND_M); this.push(F.IND_SE, F.IND_M); }
      return;
    }
    const c = this.begin();
    if (T.trig(c, op, this.stSe(0), this.stM(0)) === T.OUT_OF_RANGE) { this.sw = (this.sw | C2) & ~C1; return; }
    this.sw &= ~C2;
    this.setC1(op === "sincos" ? T.r2c1 : c.c1);
    if (this.signal(c.exc)) return;
    this.setSt(0, c.se, c.m);
    if (pushes) this.push(T.r2se, T.r2m);
  }

  protected fxch(i: number): void {
    if (this.isEmpty(0) || this.isEmpty(i)) {
      if (!this.underflow()) return;
      if (this.isEmpty(0)) this.setSt(0, F.IND_SE, F.IND_M);
      if (this.isEmpty(i)) this.setSt(i, F.IND_SE, F.IND_M);
    } else this.setC1(0);
    const a = this.top, b = this.phys(i);
    const se = this.rse[a]!, hi = this.rhi[a]!, lo = this.rlo[a]!;
    this.copy(b, a);
    this.rse[b] = se; this.rhi[b] = hi; this.rlo[b] = lo;
  }

  protected fstReg(i: number, pop: boolean): void {
    if (this.isEmpty(0)) {
      if (!this.underflow()) return;
      this.setSt(i, F.IND_SE, F.IND_M);
    } else {
      this.setC1(0);
      this.copy(this.top, this.phys(i));
    }
    if (pop) this.pop();
  }

  /** FCMOVcc: reg 0 B (CF), 1 E (ZF), 2 BE (CF|ZF), 3 U (PF); `not` for DB. */
  protected fcmov(reg: number, not: boolean, i: number): void {
    const f = this.eflags;
    let cond = [f & 1, f & 0x40, f & 0x41, f & 4][reg]! !== 0;
    if (not) cond = !cond;
    if (this.isEmpty(0) || this.isEmpty(i)) {
      if (this.underflow()) this.setSt(0, F.IND_SE, F.IND_M);
      return;
    }
    if (cond) this.copy(this.phys(i), this.top);
  }

  protected fxam(): void {
    const se = this.stSe(0), m = this.stM(0);
    const s = se >> 15;
    if (this.isEmpty(0)) { this.setCC(1, 0, s, 1); return; }
    const k = F.classify(se, m);
    const t: Record<number, [number, number, number]> = {
      [Kind.Unsupported]: [0, 0, 0], [Kind.QNaN]: [0, 0, 1], [Kind.SNaN]: [0, 0, 1],
      [Kind.Normal]: [0, 1, 0], [Kind.Inf]: [0, 1, 1], [Kind.Zero]: [1, 0, 0], [Kind.Denormal]: [1, 1, 0],
    };
    const [c3, c2, c0] = t[k]!;
    this.setCC(c3, c2, s, c0);
  }

  protected fscale(): void {
    if (this.isEmpty(0) || this.isEmpty(1)) { if (this.underflow()) this.setSt(0, F.IND_SE, F.IND_M); return; }
    const c = this.begin();
    F.fscale(c, this.stSe(0), this.stM(0), this.stSe(1), this.stM(1));
    this.commit(0, 0);
  }

  protected fxtract(): void {
    if (this.isEmpty(0)) {
      if (!this.underflow()) return;
      this.setSt(0, F.IND_SE, F.IND_M);
      this.push(F.IND_SE, F.IND_M);
      return;
    }
    if (!this.isEmpty(7)) {
      if (this.overflow()) { this.setSt(0, F.IND_SE, F.IND_M); this.push(F.IND_SE, F.IND_M); }
      return;
    }
    const c = this.begin();
    F.fxtract(c, this.stSe(0), this.stM(0));
    const sse = F.xse, sm = F.xm;
    this.setC1(0);
    if (this.signal(c.exc)) return;
    this.setSt(0, c.se, c.m);
    this.push(sse, sm);
  }

  protected fprem(ieee: boolean): void {
    if (this.isEmpty(0) || this.isEmpty(1)) { this.sw &= ~C2; if (this.underflow()) this.setSt(0, F.IND_SE, F.IND_M); return; }
    const c = this.begin();
    F.fprem(c, this.stSe(0), this.stM(0), this.stSe(1), this.stM(1), ieee);
    if (F.premSpecial) this.sw &= ~(C1 | C2);
    if (this.signal(c.exc)) { this.sw &= ~(C1 | C2); return; }
    this.setSt(0, c.se, c.m);
    const q = F.premQ;
    if (F.premSpecial) this.sw &= ~(C1 | C2);
    else if (F.premPartial) this.setCC(0, 1, 0, 0);
    else this.setCC((q >> 1) & 1, 0, q & 1, (q >> 2) & 1);
  }
}
