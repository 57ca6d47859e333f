/**
 * The x87 FPU as a unit the decoder calls: `exec(esc, modrm, mem, eflags, o32, pm)` runs one
 * D8..DF instruction on an operand buffer the CPU has read (and writes back when `wrote` > 0).
 * Arithmetic is exact (f80.ts). See docs/FPU.md.
 *
 * The `Fpu` is a stack of classes, each extending the one before: state.ts (registers, stack,
 * control and status words, environment and save images, snapshot) → arith.ts (arithmetic,
 * compares, transcendentals, register moves) → formats.ts (loads and stores of the memory
 * formats) → this file: which memory operand each instruction has, and the D8..DF dispatch.
 */
import * as F from "./f80.ts";
import * as T from "./transcend.ts";
import * as X from "./fast.ts";
import { DE } from "./f80.ts";
import { FpuFormats } from "./formats.ts";

import { C1 } from "./state.ts";

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

export class Fpu extends FpuFormats {
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
    if (this.regOp(esc, modrm)) return FPU_OK;
    return this.execReg(esc, reg, rm, modrm);
  }

  /** The words of a double FST/FSTP stored by stF64() (and FSTP m80's by stF80()). */
  mlo = 0;
  mhi = 0;
  mse = 0;

  /** FLD m80 (a copy, whatever it holds) onto a stack with room; false (nothing changed) if full. */
  fldF80(lo: number, hi: number, se: number): boolean {
    const t = (this.top - 1) & 7;
    if (!(this.empty & (1 << t))) return false;
    this.sw &= ~C1;
    this.top = t;
    this.rlo[t] = lo; this.rhi[t] = hi; this.rse[t] = se;
    this.empty &= ~(1 << t);
    return true;
  }

  /** FSTP m80 of a non-empty ST0 (the words in mlo/mhi/mse); false (nothing changed) if empty. */
  stF80(): boolean {
    const t = this.top;
    if (this.empty & (1 << t)) return false;
    this.mlo = this.rlo[t]!; this.mhi = this.rhi[t]!; this.mse = this.rse[t]!;
    this.sw &= ~C1;
    this.pop();
    return true;
  }

  /**
   * The double forms without an operand buffer (x87.ts calls these first; on false it runs
   * exec() with the operand, which decides every other case; exec() tries them first too, so
   * the host difftest covers them): FLD m64 of a normal double onto a
   * stack with room, FADD..FDIVR/FCOM(P) m64 (`reg` as DC's ModRM reg) when fast.ts applies, and
   * FST(P) m64 of a value that rounds to a normal double (the words in mlo/mhi). A false return
   * changes no state. `wrote`, `eflags` and `ax` are left as they are.
   */
  fldF64(lo: number, hi: number): boolean {
    if (!(this.empty & (1 << ((this.top - 1) & 7))) || !X.fromF64Fast(lo, hi)) return false;
    this.pushFast();
    return true;
  }

  arithF64(reg: number, lo: number, hi: number): boolean {
    if (!X.fromF64Fast(lo, hi)) return false;
    if (reg !== 2 && reg !== 3) return this.arithFastV(reg, 0, X.fse, X.fhi, X.flo, 0);
    const t = this.top;
    if (this.empty & (1 << t)) return false;
    const r = X.cmpFast(this.rse[t]!, this.rhi[t]!, this.rlo[t]!, X.fse, X.fhi, X.flo);
    if (r < 0) return false;
    this.compareDone(r, false, reg - 2);
    return true;
  }

  /**
   * The common register forms without exec()'s dispatch (x87.ts calls this first): FADD..FDIVR
   * with ST0 and ST(i) either way and popping, FLD ST(i), FXCH, FST(P) ST(i), FCHS, FABS and
   * FSQRT, on non-empty registers and (arithmetic) values fast.ts handles. False: nothing has
   * changed and exec() decides (which calls this first too). Every form here is a non-control
   * instruction.
   */
  regOp(esc: number, modrm: number): boolean {
    const reg = (modrm >> 3) & 7, i = modrm & 7, t = this.top, e = this.empty;
    switch (esc) {
      case 0:
        if (reg === 2 || reg === 3 || (e & (1 << t)) || (e & (1 << ((t + i) & 7)))) return false;
        return this.arithFast(reg, 0, i, 0);
      case 4: case 6:
        if (reg === 2 || reg === 3 || (e & (1 << t)) || (e & (1 << ((t + i) & 7)))) return false;
        return this.arithFast(reg >= 4 ? reg ^ 1 : reg, i, 0, esc === 6 ? 1 : 0);
      case 1: {
        if (reg === 0) {                                              // FLD ST(i)
          const from = (t + i) & 7, to = (t - 1) & 7;
          if ((e & (1 << from)) || !(e & (1 << to))) return false;
          this.sw &= ~C1;
          this.top = to;
          this.copy(from, to);
          return true;
        }
        if (reg === 1) {                                              // FXCH
          const b = (t + i) & 7;
          if ((e & (1 << t)) || (e & (1 << b))) return false;
          this.sw &= ~C1;
          const se = this.rse[t]!, hi = this.rhi[t]!, lo = this.rlo[t]!;
          this.rse[t] = this.rse[b]!; this.rhi[t] = this.rhi[b]!; this.rlo[t] = this.rlo[b]!;
          this.rse[b] = se; this.rhi[b] = hi; this.rlo[b] = lo;
          return true;
        }
        if (e & (1 << t)) return false;
        if (modrm === 0xe0 || modrm === 0xe1) {                       // FCHS, FABS
          this.sw &= ~C1;
          this.rse[t] = modrm === 0xe0 ? this.rse[t]! ^ 0x8000 : this.rse[t]! & 0x7fff;
          return true;
        }
        if (modrm !== 0xfa) return false;
        const se = this.rse[t]!, x = se & 0x7fff, pc = (this.cw >> 8) & 3;
        if (x === 0 || x === 0x7fff || this.rhi[t]! < 0x80000000 ||
            !X.sqrtFast(se, this.rhi[t]!, this.rlo[t]!, pc === 0 ? 24 : pc === 2 ? 53 : 64, (this.cw >> 10) & 3)) return false;
        if (X.finexact) { this.setC1(X.fup ? 1 : 0); this.signal(F.PE); } else this.sw &= ~C1;
        this.rse[t] = X.fse; this.rhi[t] = X.fhi; this.rlo[t] = X.flo;
        return true;
      }
      case 5: {                                                       // FST, FSTP ST(i)
        if ((reg !== 2 && reg !== 3) || (e & (1 << t))) return false;
        this.sw &= ~C1;
        this.copy(t, (t + i) & 7);
        if (reg === 3) this.pop();
        return true;
      }
    }
    return false;
  }

  stF64(pop: boolean): boolean {
    const t = this.top;
    if ((this.empty & (1 << t)) || !X.toF64Fast(this.rse[t]!, this.rhi[t]!, this.rlo[t]!, (this.cw >> 10) & 3)) return false;
    if (X.finexact) { this.setC1(X.fup ? 1 : 0); this.signal(F.PE); } else this.setC1(0);
    this.mlo = X.flo; this.mhi = X.fhi;
    if (pop) this.pop();
    return true;
  }

  private execMem(esc: number, reg: number, mem: Uint8Array, o32: boolean, pm: boolean): number {
    const dv = this.view(mem);
    switch (esc) {
      case 0: case 2: case 4: case 6: {
        // arithmetic / compare with m32real, m32int, m64real, m16int
        if (esc === 4 && this.arithF64(reg, dv.getUint32(0, true), dv.getUint32(4, true))) return FPU_OK;
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
          case 5:
            if (!this.fldF80(dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint16(8, true)) && this.overflow()) this.push(F.IND_SE, F.IND_M);
            return FPU_OK;
          case 7:
            if (this.stF80()) {
              dv.setUint32(0, this.mlo, true); dv.setUint32(4, this.mhi, true); dv.setUint16(8, this.mse, true);
              this.wrote = 10;
              return FPU_OK;
            }
            if (!this.underflow()) return FPU_OK;
            dv.setBigUint64(0, F.IND_M, true); dv.setUint16(8, F.IND_SE, true);
            this.wrote = 10; this.pop();
            return FPU_OK;
        }
        return FPU_UD;
      case 5:
        switch (reg) {
          case 0: {
            const lo = dv.getUint32(0, true), hi = dv.getUint32(4, true);
            if (this.fldF64(lo, hi)) return FPU_OK;
            this.load((cc) => { if (F.fromF64Words(cc, lo, hi)) cc.exc |= DE; this.quietLoad(cc); }, true);
            return FPU_OK;
          }
          case 2: case 3:
            if (this.stF64(reg === 3)) { dv.setUint32(0, this.mlo, true); dv.setUint32(4, this.mhi, true); this.wrote = 8; return FPU_OK; }
            this.storeFloat(mem, 8, reg === 3);
            return FPU_OK;
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
}
