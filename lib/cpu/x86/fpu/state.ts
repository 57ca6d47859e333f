/**
 * The x87's state and the operations on it that are not arithmetic (arith.ts, formats.ts and
 * fpu.ts build the instructions on top): the eight registers as a stack with TOP and the abridged tag, the
 * control and status words with their exception flags and ES, the last-instruction pointers,
 * stack overflow and underflow, the FNSTENV/FLDENV and FNSAVE/FRSTOR images, and the snapshot.
 */
import * as F from "./f80.ts";
import { IE, DE, ZE, SF, Kind } from "./f80.ts";
import type { StateReader, StateWriter } from "../../../machine/snapshot.ts";

/** Status word bits: condition codes, exception summary, busy. */
export const C0 = 0x100, C1 = 0x200, C2 = 0x400, C3 = 0x4000, ES = 0x80, B = 0x8000;
const CC = C0 | C1 | C2 | C3;

export class FpuState {
  /** Physical registers R0..R7: sign+exponent and the significand's two words. ST(i) is R[(top + i) & 7]. */
  readonly rse = new Uint16Array(8);
  readonly rhi = new Uint32Array(8);
  readonly rlo = new Uint32Array(8);
  /** Bit p set: physical register p is empty (the abridged tag). */
  empty = 0xff;
  top = 0;
  cw = 0x037f;
  /** Status word without TOP. */
  sw = 0;
  fip = 0; fcs = 0; fop = 0; fdp = 0; fds = 0;

  /** Processor RESET (SDM vol. 3 table 9-1): FCW 0040h, FTW 5555h (all valid), registers +0. */
  reset(): void {
    this.rse.fill(0); this.rhi.fill(0); this.rlo.fill(0);
    this.empty = 0; this.top = 0; this.cw = 0x0040; this.sw = 0;
    this.fip = this.fcs = this.fop = this.fdp = this.fds = 0;
  }

  fninit(): void {
    this.cw = 0x037f; this.sw = 0; this.top = 0; this.empty = 0xff;
    this.fip = this.fcs = this.fop = this.fdp = this.fds = 0;
  }

  get fsw(): number { return (this.sw & ~0x3800) | (this.top << 11); }

  /** The full tag word computed from the register contents (FNSTENV/FNSAVE). */
  get ftw(): number {
    let t = 0;
    for (let p = 0; p < 8; p++) {
      let tag: number;
      if (this.empty & (1 << p)) tag = 3;
      else {
        const k = F.classify(this.rse[p]!, this.sig(p));
        tag = k === Kind.Normal ? 0 : k === Kind.Zero ? 1 : 2;
      }
      t |= tag << (2 * p);
    }
    return t;
  }

  /** Record the last non-control instruction (for FNSTENV/FNSAVE). */
  noteInsn(cs: number, ip: number, opcode: number, ds: number, dp: number): void {
    this.fcs = cs; this.fip = ip; this.fop = opcode & 0x7ff; this.fds = ds; this.fdp = dp;
  }

  // --- stack -----------------------------------------------------------------------------------

  protected phys(i: number): number { return (this.top + i) & 7; }
  isEmpty(i: number): boolean { return (this.empty & (1 << this.phys(i))) !== 0; }
  stSe(i: number): number { return this.rse[this.phys(i)]!; }
  stM(i: number): bigint { return this.sig(this.phys(i)); }
  /** The significand of physical register p as a BigInt. */
  protected sig(p: number): bigint { return (BigInt(this.rhi[p]!) << 32n) | BigInt(this.rlo[p]!); }
  setSt(i: number, se: number, m: bigint): void {
    const p = this.phys(i);
    this.rse[p] = se; this.rhi[p] = Number(m >> 32n); this.rlo[p] = Number(m & 0xffffffffn); this.empty &= ~(1 << p);
  }
  /** Copy physical register `from` into `to` (which becomes non-empty). */
  protected copy(from: number, to: number): void {
    this.rse[to] = this.rse[from]!; this.rhi[to] = this.rhi[from]!; this.rlo[to] = this.rlo[from]!;
    this.empty &= ~(1 << to);
  }
  push(se: number, m: bigint): void { this.top = (this.top - 1) & 7; this.setSt(0, se, m); }
  pop(): void { this.empty |= 1 << this.top; this.top = (this.top + 1) & 7; }

  protected setC1(v: number): void { this.sw = v ? this.sw | C1 : this.sw & ~C1; }
  protected setCC(c3: number, c2: number, c1: number, c0: number): void {
    this.sw = (this.sw & ~CC) | (c3 ? C3 : 0) | (c2 ? C2 : 0) | (c1 ? C1 : 0) | (c0 ? C0 : 0);
  }

  /** Record exceptions; true when an unmasked IE/DE/ZE means the result is not delivered. */
  protected signal(exc: number): boolean {
    this.sw |= exc & 0x7f;
    if (exc & ~this.cw & 0x3f) this.sw |= ES | B;
    return (exc & ~this.cw & (IE | DE | ZE)) !== 0;
  }

  /** Stack underflow (reading an empty register): IE+SF, C1=0; true when masked. */
  protected underflow(): boolean {
    this.setC1(0);
    this.signal(IE | SF);
    return (this.cw & IE) !== 0;
  }
  /** Stack overflow (push onto a full stack): IE+SF, C1=1; true when masked. */
  protected overflow(): boolean {
    this.setC1(1);
    this.signal(IE | SF);
    return (this.cw & IE) !== 0;
  }

  fldcw(v: number): void {
    this.cw = (v & 0x1f7f) | 0x40;
    this.updateES();
  }

  /** ES (and B, its copy on a 387+) is set exactly when an exception flag is set and unmasked. */
  protected updateES(): void {
    if (this.sw & ~this.cw & 0x3f) this.sw |= ES | B; else this.sw &= ~(ES | B);
  }

  // --- environment and save images ----------------------------------------------------------

  /** FNSTENV image (14 or 28 bytes) at mem[0]. */
  storeEnv(mem: Uint8Array, o32: boolean, pm: boolean): void {
    const dv = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
    const cw = this.cw, sw = this.fsw, tw = this.ftw;
    if (o32) {
      dv.setUint32(0, 0xffff0000 | cw, true);
      dv.setUint32(4, 0xffff0000 | sw, true);
      dv.setUint32(8, 0xffff0000 | tw, true);
      if (pm) {
        dv.setUint32(12, this.fip, true);
        dv.setUint32(16, (this.fcs & 0xffff) | ((this.fop & 0x7ff) << 16), true);
        dv.setUint32(20, this.fdp, true);
        dv.setUint32(24, 0xffff0000 | (this.fds & 0xffff), true);
      } else {
        const ip = this.linearIp(), dp = this.linearDp();
        dv.setUint32(12, 0xffff0000 | (ip & 0xffff), true);
        dv.setUint32(16, (this.fop & 0x7ff) | ((ip >>> 16) << 12), true);
        dv.setUint32(20, 0xffff0000 | (dp & 0xffff), true);
        dv.setUint32(24, (dp >>> 16) << 12, true);
      }
    } else {
      dv.setUint16(0, cw, true); dv.setUint16(2, sw, true); dv.setUint16(4, tw, true);
      if (pm) {
        dv.setUint16(6, this.fip, true); dv.setUint16(8, this.fcs, true);
        dv.setUint16(10, this.fdp, true); dv.setUint16(12, this.fds, true);
      } else {
        const ip = this.linearIp(), dp = this.linearDp();
        dv.setUint16(6, ip, true); dv.setUint16(8, (this.fop & 0x7ff) | (((ip >>> 16) & 0xf) << 12), true);
        dv.setUint16(10, dp, true); dv.setUint16(12, ((dp >>> 16) & 0xf) << 12, true);
      }
    }
  }

  protected linearIp(): number { return ((this.fcs << 4) + this.fip) >>> 0; }
  protected linearDp(): number { return ((this.fds << 4) + this.fdp) >>> 0; }

  loadEnv(mem: Uint8Array, o32: boolean, pm: boolean): void {
    const dv = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
    let cw: number, sw: number, tw: number;
    if (o32) {
      cw = dv.getUint16(0, true); sw = dv.getUint16(4, true); tw = dv.getUint16(8, true);
      if (pm) {
        this.fip = dv.getUint32(12, true); this.fcs = dv.getUint16(16, true); this.fop = dv.getUint16(18, true) & 0x7ff;
        this.fdp = dv.getUint32(20, true); this.fds = dv.getUint16(24, true);
      } else {
        const hi = dv.getUint32(16, true);
        this.fcs = 0; this.fip = (dv.getUint16(12, true) | ((hi >>> 12) << 16)) >>> 0; this.fop = hi & 0x7ff;
        this.fds = 0; this.fdp = (dv.getUint16(20, true) | ((dv.getUint32(24, true) >>> 12) << 16)) >>> 0;
      }
    } else {
      cw = dv.getUint16(0, true); sw = dv.getUint16(2, true); tw = dv.getUint16(4, true);
      if (pm) {
        this.fip = dv.getUint16(6, true); this.fcs = dv.getUint16(8, true); this.fop = 0;
        this.fdp = dv.getUint16(10, true); this.fds = dv.getUint16(12, true);
      } else {
        const hi = dv.getUint16(8, true);
        this.fcs = 0; this.fip = dv.getUint16(6, true) | ((hi >>> 12) << 16); this.fop = hi & 0x7ff;
        this.fds = 0; this.fdp = dv.getUint16(10, true) | ((dv.getUint16(12, true) >>> 12) << 16);
      }
    }
    this.cw = (cw & 0x1f7f) | 0x40;
    this.top = (sw >> 11) & 7;
    this.sw = sw & ~0x3800;
    this.updateES();
    let e = 0;
    for (let p = 0; p < 8; p++) if (((tw >> (2 * p)) & 3) === 3) e |= 1 << p;
    this.empty = e;
  }

  fnsave(mem: Uint8Array, o32: boolean, pm: boolean): void {
    this.image(mem, o32, pm);
    this.fninit();
  }

  /** The FNSAVE image (94 or 108 bytes) without FNSAVE's reinitialisation. */
  image(mem: Uint8Array, o32: boolean, pm: boolean): void {
    this.storeEnv(mem, o32, pm);
    const base = o32 ? 28 : 14;
    const dv = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
    for (let i = 0; i < 8; i++) {
      const p = this.phys(i);
      dv.setUint32(base + 10 * i, this.rlo[p]!, true);
      dv.setUint32(base + 10 * i + 4, this.rhi[p]!, true);
      dv.setUint16(base + 10 * i + 8, this.rse[p]!, true);
    }
  }

  frstor(mem: Uint8Array, o32: boolean, pm: boolean): void {
    this.loadEnv(mem, o32, pm);
    const base = o32 ? 28 : 14;
    const dv = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
    for (let i = 0; i < 8; i++) {
      const p = this.phys(i);
      this.rlo[p] = dv.getUint32(base + 10 * i, true);
      this.rhi[p] = dv.getUint32(base + 10 * i + 4, true);
      this.rse[p] = dv.getUint16(base + 10 * i + 8, true);
    }
  }

  // --- snapshot ------------------------------------------------------------------------------

  save(w: StateWriter): void {
    for (let p = 0; p < 8; p++) {
      w.u32(this.rlo[p]!).u32(this.rhi[p]!).u16(this.rse[p]!);
    }
    w.u8(this.empty).u8(this.top).u16(this.cw).u16(this.sw);
    w.u32(this.fip).u16(this.fcs).u16(this.fop).u32(this.fdp).u16(this.fds);
  }

  restore(r: StateReader): void {
    for (let p = 0; p < 8; p++) {
      const lo = r.u32(), hi = r.u32();
      this.rlo[p] = lo; this.rhi[p] = hi;
      this.rse[p] = r.u16();
    }
    this.empty = r.u8(); this.top = r.u8() & 7; this.cw = r.u16(); this.sw = r.u16() & ~0x3800;
    this.fip = r.u32(); this.fcs = r.u16(); this.fop = r.u16(); this.fdp = r.u32(); this.fds = r.u16();
  }
}
