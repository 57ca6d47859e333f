/**
 * The x87's memory formats (on FpuArith; fpu.ts dispatches to them): pushing a loaded value
 * (float32/64 with SNaN quieting, int16/32/64, packed BCD, the constants) and storing ST0 as
 * float32/64, int16/32/64 or packed BCD with each format's rounding, invalid-operation value
 * and exceptions. The 80-bit FLD/FSTP forms are plain copies and stay in fpu.ts; the
 * environment and save images are the state's (state.ts).
 */
import * as F from "./f80.ts";
import * as X from "./fast.ts";
import { IE, DE, Kind } from "./f80.ts";
import { FpuArith } from "./arith.ts";

export class FpuFormats extends FpuArith {
  /** Load a value: push with the stack-overflow check. `conv` fills ctx. */
  protected load(conv: (c: F.Ctx) => void, float = false): void {
    if (!this.isEmpty(7)) { if (this.overflow()) this.push(F.IND_SE, F.IND_M); return; }
    const c = this.begin();
    conv(c);
    // A float32/64 load of a denormal pushes the value even with DE unmasked (measured).
    if (float && (c.exc & DE) && !(c.exc & IE)) { this.setC1(c.c1); this.signal(c.exc); this.push(c.se, c.m); return; }
    this.commitPush();
  }

  private dvMem: Uint8Array | null = null;
  private dvView: DataView | null = null;
  protected view(mem: Uint8Array): DataView {
    if (this.dvMem !== mem) { this.dvMem = mem; this.dvView = new DataView(mem.buffer, mem.byteOffset, mem.byteLength); }
    return this.dvView!;
  }

  /** A float32/float64 load: SNaN → IE and quieted. */
  protected quietLoad(c: F.Ctx): void {
    if (F.classify(c.se, c.m) === Kind.SNaN) { c.exc |= IE; c.m |= F.QBIT; }
  }

  protected storeFloat(mem: Uint8Array, size: number, pop: boolean): void {
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
  protected fildFast(v: number): boolean {
    if (!this.isEmpty(7)) return false;
    X.fromInt32Fast(v);
    this.pushFast();
    return true;
  }

  /** Push the fast path's exact value (X.fse/fhi/flo); the caller checked that ST7 is empty. */
  protected pushFast(): void {
    this.setC1(0);
    this.top = (this.top - 1) & 7;
    const t = this.top;
    this.rse[t] = X.fse; this.rhi[t] = X.fhi; this.rlo[t] = X.flo; this.empty &= ~(1 << t);
  }

  protected storeInt(mem: Uint8Array, size: number, pop: boolean): void {
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

  protected storeBCD(mem: Uint8Array): void {
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
}
