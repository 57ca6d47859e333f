/**
 * The x87 FPU's instructions on its state (state.ts), as a unit the decoder calls: `exec(esc, modrm, mem,
 * eflags, o32, pm)` runs one D8..DF instruction on an operand buffer the CPU has read (and
 * writes back when `wrote` > 0). Arithmetic is exact (f80.ts). See docs/FPU.md.
 */
import * as F from "./f80.ts";
import * as T from "./transcend.ts";
import * as X from "./fast.ts";
import { IE, DE, Kind } from "./f80.ts";
import { FpuState, C0, C1, C2, C3, B } from "./state.ts";

export { C0, C1, C2, C3, ES, B } from "./state.ts";

/** exec() results. */
export const FPU_OK = 0, FPU_UD = 1;

/** How an instruction's memory operand is accessed: bytes, read first, written after. */
export interface MemAccess { size: number; read: boolean; write: boolean }

const NONE: MemAccess = { size: 0, read: false, write: false };
const r = (size: number): MemAccess => ({ size, read: true, write: false });
const w = (size: number): MemAccess => ({ size, read: false, write: true });

function memAccessOf(esc: number, reg: number, o32: boolean): MemAccess {
  const env = o32 ? 28 : 14, save = o32 ? 108 : 94;
  switch (esc) {
    case 0: return r(4);
    case 1: return [r(4), NONE, w(4), w(4), r(env), r(2), w(env), w(2)][reg]!;
    case 2: return r(4);
    case 3: return [r(4), NONE, w(4), w(4), NONE, r(10), NONE, w(10)][reg]!;
    case 4: return r(8);
    case 5: return [r(8), NONE, w(8), w(8), r(save), NONE, w(save), w(2)][reg]!;
    case 6: return r(2);
    default: return [r(2), NONE, w(2), w(2), r(10), r(8), w(10), w(8)][reg]!;
  }
}
/** memAccess() for every (o32, esc, reg), built once: the CPU asks on every x87 instruction. */
const MEM_ACCESS: readonly MemAccess[] = Array.from({ length: 128 }, (_, k) => memAccessOf((k >> 3) & 7, k & 7, k >= 64));

/** The memory operand of ESC `esc` (0..7 for D8..DF) with ModRM reg field `reg` (mod != 3). */
export function memAccess(esc: number, reg: number, o32: boolean): MemAccess {
  return MEM_ACCESS[(o32 ? 64 : 0) | ((esc & 7) << 3) | (reg & 7)]!;
}

const CONST_NAMES = ["1", "l2t", "l2e", "pi", "lg2", "ln2", "z"];

export class Fpu extends FpuState {
  /** After exec(): bytes written to the operand buffer, EFLAGS (FCOMI), AX (FNSTSW AX, else -1). */
  wrote = 0;
  eflags = 0;
  ax = -1;

  private readonly ctx = new F.Ctx();

  private begin(): F.Ctx {
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
  private commitPush(): void {
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
  private arithFast(op: number, dst: number, srcIdx: number, pops: number): boolean {
    const ps = this.phys(srcIdx);
    return this.arithFastV(op, dst, this.rse[ps]!, this.rhi[ps]!, this.rlo[ps]!, pops);
  }

  /** The same with the source as a value (sign+exponent and two words). */
  private arithFastV(op: number, dst: number, sse: number, shi: number, slo: number, pops: number): boolean {
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
  private compareDone(res: number, toEflags: boolean, pops: number): void {
    const z = res === F.CMP_EQ || res === F.CMP_UN, cy = res === F.CMP_LT || res === F.CMP_UN, p = res === F.CMP_UN;
    if (toEflags) this.eflags = (this.eflags & ~0x8d5) | (z ? 0x40 : 0) | (p ? 0x04 : 0) | (cy ? 0x01 : 0);
    else this.sw = (this.sw & ~(C0 | C1 | C2 | C3)) | (z ? C3 : 0) | (p ? C2 : 0) | (cy ? C0 : 0);
    for (let k = 0; k < pops; k++) this.pop();
  }

  /** A one-operand operation on ST0 (FSQRT, FRNDINT). */
  private unary(fn: (c: F.Ctx, se: number, m: bigint) => void): void {
    if (this.isEmpty(0)) { if (this.underflow()) this.setSt(0, F.IND_SE, F.IND_M); return; }
    const c = this.begin();
    fn(c, this.stSe(0), this.stM(0));
    this.commit(0, 0);
  }

  /** Load a value: push with the stack-overflow check. `conv` fills ctx. */
  private load(conv: (c: F.Ctx) => void, float = false): void {
    if (!this.isEmpty(7)) { if (this.overflow()) this.push(F.IND_SE, F.IND_M); return; }
    const c = this.begin();
    conv(c);
    // A float32/64 load of a denormal pushes the value even with DE unmasked (measured).
    if (float && (c.exc & DE) && !(c.exc & IE)) { this.setC1(c.c1); this.signal(c.exc); this.push(c.se, c.m); return; }
    this.commitPush();
  }

  // --- dispatcher --------------------------------------------------------------------------

  /**
   * Run one x87 instruction: `esc` = opcode - 0xD8, `modrm` its ModRM byte. For a memory form
   * `mem` holds the operand the CPU read (see memAccess) and receives what is to be written
   * (`wrote` bytes). `eflags` is the guest's EFLAGS (FCMOVcc reads, FCOMI writes `this.eflags`).
   * `o32`: 32-bit operand size (environment formats); `pm`: protected mode (not real or vm86).
   */
  exec(esc: number, modrm: number, mem: Uint8Array, eflags: number, o32 = true, pm = true): number {
    this.wrote = 0; this.eflags = eflags; this.ax = -1;
    const reg = (modrm >> 3) & 7, rm = modrm & 7;
    if (modrm < 0xc0) return this.execMem(esc, reg, mem, o32, pm);
    return this.execReg(esc, reg, rm, modrm);
  }

  private dvMem: Uint8Array | null = null;
  private dvView: DataView | null = null;
  private view(mem: Uint8Array): DataView {
    if (this.dvMem !== mem) { this.dvMem = mem; this.dvView = new DataView(mem.buffer, mem.byteOffset, mem.byteLength); }
    return this.dvView!;
  }

  private execMem(esc: number, reg: number, mem: Uint8Array, o32: boolean, pm: boolean): number {
    const dv = this.view(mem);
    switch (esc) {
      case 0: case 2: case 4: case 6: {
        // arithmetic / compare with m32real, m32int, m64real, m16int
        let fast: boolean;
        if (esc === 0) fast = X.fromF32Fast(dv.getUint32(0, true));
        else if (esc === 4) fast = X.fromF64Fast(dv.getUint32(0, true), dv.getUint32(4, true));
        else { const v = esc === 2 ? dv.getInt32(0, true) : dv.getInt16(0, true); X.fromInt32Fast(v); fast = v !== 0; }
        if (fast) {
          if (reg !== 2 && reg !== 3) { if (this.arithFastV(reg, 0, X.fse, X.fhi, X.flo, 0)) return FPU_OK; }
          else if (!(this.empty & (1 << this.top))) {
            const t = this.top;
            const r = X.cmpFast(this.rse[t]!, this.rhi[t]!, this.rlo[t]!, X.fse, X.fhi, X.flo);
            if (r >= 0) { this.compareDone(r, false, reg - 2); return FPU_OK; }
          }
        }
        let den = false;
        const cv = this.begin();
        if (esc === 0) den = F.fromF32(cv, dv.getUint32(0, true));
        else if (esc === 4) den = F.fromF64Words(cv, dv.getUint32(0, true), dv.getUint32(4, true));
        else F.fromInt(cv, BigInt(esc === 2 ? dv.getInt32(0, true) : dv.getInt16(0, true)));
        const sse = cv.se, sm = cv.m;
        if (reg === 2 || reg === 3) this.compare(-1, sse, sm, false, reg - 2, false, den);
        else this.arith(reg, 0, -1, sse, sm, 0, den);
        return FPU_OK;
      }
      case 1:
        switch (reg) {
          case 0: {
            const bits = dv.getUint32(0, true);
            if (this.isEmpty(7) && X.fromF32Fast(bits)) { this.pushFast(); return FPU_OK; }
            this.load((cc) => { if (F.fromF32(cc, bits)) cc.exc |= DE; this.quietLoad(cc); }, true);
            return FPU_OK;
          }
          case 2: case 3: this.storeFloat(mem, 4, reg === 3); return FPU_OK;
          case 4: this.loadEnv(mem, o32, pm); return FPU_OK;
          case 5: this.fldcw(dv.getUint16(0, true)); return FPU_OK;
          case 6: this.storeEnv(mem, o32, pm); this.wrote = o32 ? 28 : 14; this.cw |= 0x3f; return FPU_OK;
          case 7: dv.setUint16(0, this.cw, true); this.wrote = 2; return FPU_OK;
        }
        return FPU_UD;
      case 3:
        switch (reg) {
          case 0: { const v = dv.getInt32(0, true); if (!this.fildFast(v)) this.load((cc) => F.fromInt(cc, BigInt(v))); return FPU_OK; }
          case 2: case 3: this.storeInt(mem, 4, reg === 3); return FPU_OK;
          case 5: {
            if (!this.isEmpty(7)) { if (this.overflow()) this.push(F.IND_SE, F.IND_M); return FPU_OK; }
            this.setC1(0);
            this.top = (this.top - 1) & 7;
            const t = this.top;
            this.rlo[t] = dv.getUint32(0, true); this.rhi[t] = dv.getUint32(4, true); this.rse[t] = dv.getUint16(8, true);
            this.empty &= ~(1 << t);
            return FPU_OK;
          }
          case 7:
            if (this.isEmpty(0)) {
              if (!this.underflow()) return FPU_OK;
              dv.setBigUint64(0, F.IND_M, true); dv.setUint16(8, F.IND_SE, true);
            } else {
              const t = this.top;
              dv.setUint32(0, this.rlo[t]!, true); dv.setUint32(4, this.rhi[t]!, true); dv.setUint16(8, this.rse[t]!, true);
              this.setC1(0);
            }
            this.wrote = 10; this.pop();
            return FPU_OK;
        }
        return FPU_UD;
      case 5:
        switch (reg) {
          case 0: {
            const lo = dv.getUint32(0, true), hi = dv.getUint32(4, true);
            if (this.isEmpty(7) && X.fromF64Fast(lo, hi)) { this.pushFast(); return FPU_OK; }
            this.load((cc) => { if (F.fromF64Words(cc, lo, hi)) cc.exc |= DE; this.quietLoad(cc); }, true);
            return FPU_OK;
          }
          case 2: case 3: this.storeFloat(mem, 8, reg === 3); return FPU_OK;
          case 4: this.frstor(mem, o32, pm); return FPU_OK;
          case 6: this.fnsave(mem, o32, pm); this.wrote = o32 ? 108 : 94; return FPU_OK;
          case 7: dv.setUint16(0, this.fsw, true); this.wrote = 2; return FPU_OK;
        }
        return FPU_UD;
      case 7:
        switch (reg) {
          case 0: { const v = dv.getInt16(0, true); if (!this.fildFast(v)) this.load((cc) => F.fromInt(cc, BigInt(v))); return FPU_OK; }
          case 2: case 3: this.storeInt(mem, 2, reg === 3); return FPU_OK;
          case 4: { const b = mem.slice(0, 10); this.load((cc) => F.fromBCD(cc, b)); return FPU_OK; }
          case 5: { const v = dv.getBigInt64(0, true); this.load((cc) => F.fromInt(cc, v)); return FPU_OK; }
          case 6: this.storeBCD(mem); return FPU_OK;
          case 7: this.storeInt(mem, 8, true); return FPU_OK;
        }
        return FPU_UD;
    }
    return FPU_UD;
  }

  /** A float32/float64 load: SNaN → IE and quieted. */
  private quietLoad(c: F.Ctx): void {
    if (F.classify(c.se, c.m) === Kind.SNaN) { c.exc |= IE; c.m |= F.QBIT; }
  }

  private storeFloat(mem: Uint8Array, size: number, pop: boolean): void {
    const dv = this.view(mem);
    const t = this.top;
    if (!(this.empty & (1 << t)) && (size === 8 ? X.toF64Fast : X.toF32Fast)(this.rse[t]!, this.rhi[t]!, this.rlo[t]!, (this.cw >> 10) & 3)) {
      if (X.finexact) { this.setC1(X.fup ? 1 : 0); this.signal(F.PE); } else this.setC1(0);
      if (size === 8) { dv.setUint32(0, X.flo, true); dv.setUint32(4, X.fhi, true); } else dv.setUint32(0, X.fint, true);
      this.wrote = size;
      if (pop) this.pop();
      return;
    }
    if (this.isEmpty(0)) {
      if (!this.underflow()) return;
      if (size === 4) dv.setUint32(0, 0xffc00000, true); else dv.setBigUint64(0, 0xfff8000000000000n, true);
      this.wrote = size;
      if (pop) this.pop();
      return;
    }
    const c = this.begin();
    const v = size === 4 ? F.toF32(c, this.stSe(0), this.stM(0)) : F.toF64(c, this.stSe(0), this.stM(0));
    this.setC1(c.c1);
    if (this.signal(c.exc) || v === null) return;
    if (size === 4) dv.setUint32(0, v as number, true); else dv.setBigUint64(0, v as bigint, true);
    this.wrote = size;
    if (pop) this.pop();
  }

  /** FILD of a 16/32-bit integer onto a stack with room. */
  private fildFast(v: number): boolean {
    if (!this.isEmpty(7)) return false;
    X.fromInt32Fast(v);
    this.pushFast();
    return true;
  }

  /** Push the fast path's exact value (X.fse/fhi/flo); the caller checked that ST7 is empty. */
  private pushFast(): void {
    this.setC1(0);
    this.top = (this.top - 1) & 7;
    const t = this.top;
    this.rse[t] = X.fse; this.rhi[t] = X.fhi; this.rlo[t] = X.flo; this.empty &= ~(1 << t);
  }

  private storeInt(mem: Uint8Array, size: number, pop: boolean): void {
    const dv = this.view(mem);
    const t = this.top;
    if (size !== 8 && !(this.empty & (1 << t)) && X.toInt32Fast(this.rse[t]!, this.rhi[t]!, this.rlo[t]!, (this.cw >> 10) & 3)) {
      const v = X.fint;
      if (size === 4 ? v >= -2147483648 && v <= 2147483647 : v >= -32768 && v <= 32767) {
        if (X.finexact) { this.setC1(X.fup ? 1 : 0); this.signal(F.PE); } else this.setC1(0);
        if (size === 4) dv.setInt32(0, v, true); else dv.setInt16(0, v, true);
        this.wrote = size;
        if (pop) this.pop();
        return;
      }
    }
    let v: bigint;
    if (this.isEmpty(0)) {
      if (!this.underflow()) return;
      v = 1n << BigInt(size * 8 - 1);
    } else {
      const c = this.begin();
      v = F.toInt(c, this.stSe(0), this.stM(0), size * 8);
      this.setC1(c.c1);
      if (this.signal(c.exc)) return;
    }
    if (size === 2) dv.setUint16(0, Number(v), true);
    else if (size === 4) dv.setUint32(0, Number(v), true);
    else dv.setBigUint64(0, v, true);
    this.wrote = size;
    if (pop) this.pop();
  }

  private storeBCD(mem: Uint8Array): void {
    let b: Uint8Array;
    if (this.isEmpty(0)) {
      if (!this.underflow()) return;
      b = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff]);
    } else {
      const c = this.begin();
      b = F.toBCD(c, this.stSe(0), this.stM(0));
      this.setC1(c.c1);
      if (this.signal(c.exc)) return;
    }
    mem.set(b, 0);
    this.wrote = 10;
    this.pop();
  }

  private execReg(esc: number, reg: number, i: number, modrm: number): number {
    switch (esc) {
      case 0:
        if (reg === 2 || reg === 3) this.compare(i, 0, 0n, false, reg - 2, false);
        else this.arith(reg, 0, i, 0, 0n, 0);
        return FPU_OK;
      case 4: case 6:
        if (reg === 2 || reg === 3) {
          if (esc === 6 && reg === 3) { if (i !== 1) return FPU_UD; this.compare(1, 0, 0n, false, 2, false); return FPU_OK; }
          this.compare(i, 0, 0n, false, esc === 6 ? 1 : reg - 2, false);
          return FPU_OK;
        }
        this.arith(reg >= 4 ? reg ^ 1 : reg, i, 0, 0, 0n, esc === 6 ? 1 : 0);
        return FPU_OK;
      case 1: return this.execD9(reg, i, modrm);
      case 2:
        if (reg < 4) { this.fcmov(reg, false, i); return FPU_OK; }
        if (modrm === 0xe9) { this.compare(1, 0, 0n, true, 2, false); return FPU_OK; }
        return FPU_UD;
      case 3:
        if (reg < 4) { this.fcmov(reg, true, i); return FPU_OK; }
        if (reg === 4) {
          if (i === 2) { this.sw &= 0x7f00; return FPU_OK; }      // FNCLEX
          if (i === 3) { this.fninit(); return FPU_OK; }          // FNINIT
          if (i <= 4) return FPU_OK;                               // FENI, FDISI, FSETPM: no-ops on a 387+
          return FPU_UD;
        }
        if (reg === 5 || reg === 6) { this.compare(i, 0, 0n, reg === 5, 0, true); return FPU_OK; }
        return FPU_UD;
      case 5:
        switch (reg) {
          case 0: this.empty |= 1 << this.phys(i); this.setC1(0); return FPU_OK;          // FFREE
          case 1: this.fxch(i); return FPU_OK;
          case 2: case 3: this.fstReg(i, reg === 3); return FPU_OK;
          case 4: case 5: this.compare(i, 0, 0n, true, reg - 4, false); return FPU_OK;
        }
        return FPU_UD;
      case 7:
        switch (reg) {
          case 0: this.empty |= 1 << this.phys(i); this.pop(); this.setC1(0); return FPU_OK;  // FFREEP
          case 1: this.fxch(i); return FPU_OK;
          case 2: case 3: this.fstReg(i, true); return FPU_OK;
          case 4: if (i === 0) { this.ax = this.fsw; return FPU_OK; } return FPU_UD;
          case 5: case 6: this.compare(i, 0, 0n, reg === 5, 1, true); return FPU_OK;
        }
        return FPU_UD;
    }
    return FPU_UD;
  }

  private execD9(reg: number, i: number, modrm: number): number {
    switch (reg) {
      case 0: {                                                       // FLD ST(i)
        if (this.isEmpty(i)) { if (this.underflow()) this.push(F.IND_SE, F.IND_M); return FPU_OK; }
        if (!this.isEmpty(7)) { if (this.overflow()) this.push(F.IND_SE, F.IND_M); return FPU_OK; }
        const from = this.phys(i);
        this.setC1(0);
        this.top = (this.top - 1) & 7;
        this.copy(from, this.top);
        return FPU_OK;
      }
      case 1: this.fxch(i); return FPU_OK;
      case 2: if (i === 0) return FPU_OK; return FPU_UD;             // FNOP
      case 3:                                                         // FSTP1: an empty ST0 is just popped
        if (this.isEmpty(0)) { this.setC1(0); this.pop(); return FPU_OK; }
        this.fstReg(i, true);
        return FPU_OK;
    }
    switch (modrm) {
      case 0xe0: case 0xe1:                                           // FCHS, FABS
        if (this.isEmpty(0)) { if (this.underflow()) this.setSt(0, F.IND_SE, F.IND_M); return FPU_OK; }
        this.setC1(0);
        this.rse[this.top] = modrm === 0xe0 ? this.stSe(0) ^ 0x8000 : this.stSe(0) & 0x7fff;
        return FPU_OK;
      case 0xe4:                                                      // FTST
        this.compare(-1, 0, 0n, false, 0, false);
        return FPU_OK;
      case 0xe5: this.fxam(); return FPU_OK;
      case 0xe8: case 0xe9: case 0xea: case 0xeb: case 0xec: case 0xed: case 0xee: {
        const name = CONST_NAMES[modrm - 0xe8]!;
        this.load((c) => {
          if (name === "1") c.set(0x3fff, F.BIT63);
          else if (name === "z") c.set(0, 0n);
          else F.constant(c, name);
        });
        return FPU_OK;
      }
      case 0xf4: this.fxtract(); return FPU_OK;
      case 0xf5: case 0xf8: this.fprem(modrm === 0xf5); return FPU_OK;
      case 0xf6: this.top = (this.top - 1) & 7; this.setC1(0); return FPU_OK;   // FDECSTP
      case 0xf7: this.top = (this.top + 1) & 7; this.setC1(0); return FPU_OK;   // FINCSTP
      case 0xfa: {
        const t = this.top, e = this.rse[t]! & 0x7fff, pc = (this.cw >> 8) & 3;
        if (!(this.empty & (1 << t)) && e !== 0 && e !== 0x7fff && this.rhi[t]! >= 0x80000000 &&
            X.sqrtFast(this.rse[t]!, this.rhi[t]!, this.rlo[t]!, pc === 0 ? 24 : pc === 2 ? 53 : 64, (this.cw >> 10) & 3)) {
          if (X.finexact) { this.setC1(X.fup ? 1 : 0); this.signal(F.PE); } else this.setC1(0);
          this.rse[t] = X.fse; this.rhi[t] = X.fhi; this.rlo[t] = X.flo;
          return FPU_OK;
        }
        this.unary((c, se, m) => F.sqrt(c, se, m, c.pbits));
        return FPU_OK;
      }
      case 0xfc: this.unary((c, se, m) => F.frndint(c, se, m)); return FPU_OK;
      case 0xfd: this.fscale(); return FPU_OK;
      case 0xf0: this.unary((c, se, m) => T.f2xm1(c, se, m)); return FPU_OK;
      case 0xf1: this.binaryPop(T.fyl2x); return FPU_OK;
      case 0xf3: this.binaryPop(T.fpatan); return FPU_OK;
      case 0xf9: this.binaryPop(T.fyl2xp1); return FPU_OK;
      case 0xfe: this.trig("sin"); return FPU_OK;
      case 0xff: this.trig("cos"); return FPU_OK;
      case 0xf2: this.trig("tan"); return FPU_OK;
      case 0xfb: this.trig("sincos"); return FPU_OK;
    }
    return FPU_UD;
  }

  /** ST1 = fn(ST0, ST1), pop (FYL2X, FYL2XP1, FPATAN). */
  private binaryPop(fn: (c: F.Ctx, xse: number, xm: bigint, yse: number, ym: bigint) => void): void {
    if (this.isEmpty(0) || this.isEmpty(1)) {
      if (this.underflow()) { this.setSt(1, F.IND_SE, F.IND_M); this.pop(); }
      return;
    }
    const c = this.begin();
    fn(c, this.stSe(0), this.stM(0), this.stSe(1), this.stM(1));
    this.commit(1, 1);
  }

  /** FSIN, FCOS (ST0 replaced), FPTAN (ST0 = tan, push 1), FSINCOS (ST0 = sin, push cos). */
  private trig(op: "sin" | "cos" | "tan" | "sincos"): void {
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

  private fxch(i: number): void {
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

  private fstReg(i: number, pop: boolean): void {
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
  private fcmov(reg: number, not: boolean, i: number): void {
    const f = this.eflags;
    let cond = [f & 1, f & 0x40, f & 0x41, f & 4][reg]! !== 0;
    if (not) cond = !cond;
    if (this.isEmpty(0) || this.isEmpty(i)) {
      if (this.underflow()) this.setSt(0, F.IND_SE, F.IND_M);
      return;
    }
    if (cond) this.copy(this.phys(i), this.top);
  }

  private fxam(): void {
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

  private fscale(): void {
    if (this.isEmpty(0) || this.isEmpty(1)) { if (this.underflow()) this.setSt(0, F.IND_SE, F.IND_M); return; }
    const c = this.begin();
    F.fscale(c, this.stSe(0), this.stM(0), this.stSe(1), this.stM(1));
    this.commit(0, 0);
  }

  private fxtract(): void {
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

  private fprem(ieee: boolean): void {
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
