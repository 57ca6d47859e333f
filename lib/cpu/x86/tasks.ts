/**
 * Hardware task switching (Intel SDM vol. 3, "Task Management"): JMP and CALL to a TSS
 * descriptor or through a task gate (protection.ts's farTransfer), interrupts and exceptions
 * through task gates (interrupts.ts), and IRET with NT=1 back along the link field.
 *
 * A switch checks everything it can before it changes anything (faults there belong to the old
 * task, at the instruction that caused the switch): the new TSS descriptor (#GP/#NP), its limit
 * (#TS), and it reads the new task's whole state from its TSS. Then it saves the old task's
 * state (EIP, EFLAGS, general and segment registers) in the old TSS, updates the busy bits and
 * the link field, loads TR and sets CR0.TS: that is the commit point. What follows belongs to
 * the new task: CR3 (32-bit TSS, paging on; the TLB is flushed), EFLAGS, EIP and the registers,
 * the LDT (#TS), the segment registers with their checks (#TS, #NP, #SS), the error code of an
 * exception on the new stack, and the T bit (#DB with DR6.BT). A fault after the commit point is
 * delivered here, in the new task, and the instruction that caused the switch retires.
 *
 * 16-bit TSSes (types 1 and 3) hold IP, FLAGS, AX..DI, ES, CS, SS, DS and the LDT; FS and GS
 * become null and the upper halves of the general registers stay as they were (the SDM leaves
 * them undefined; QEMU does this). A TSS whose EFLAGS has VM=1 starts in virtual-8086 mode.
 */
import { FAULT, AR_P, AR_S, AR_CODE, descAr, descBase, descLimit } from "./arch.ts";
import { CS, SS } from "./decode.ts";
import { NT, VM } from "./flags.ts";
import { CpuProtection } from "./protection.ts";

/** What caused a task switch. */
export const TS_JMP = 0, TS_CALL = 1, TS_IRET = 2, TS_INT = 3;

/** Segment registers in TSS order (ES, CS, SS, DS, FS, GS) are the decoder's numbering 0-5. */
const NSEG = 6;

export abstract class CpuTasks extends CpuProtection {
  /** Deliver an exception (interrupts.ts): faults after the commit point, the T bit. */
  abstract raise(vec: number, hasErr: boolean, err: number, soft?: boolean, ext?: boolean): void;

  /** JMP/CALL far to a TSS descriptor (`sel`, `d`) or a task gate. */
  protected taskJump(sel: number, d: { lo: number; hi: number }, call: boolean, nextEip: number): void {
    const ar = descAr(d.hi), type = ar & 0x0f, dpl = (ar >> 5) & 3;
    const src = call ? TS_CALL : TS_JMP;
    if (dpl < this.cpl || dpl < (sel & 3)) this.gp(sel & 0xfffc);
    if (type === 0x05) {
      if (!(ar & AR_P)) this.fault(11, sel & 0xfffc);
      const tsel = d.lo >>> 16;
      this.switchTask(tsel, this.gateTss(tsel, 0), src, nextEip, 0, false, 0);
      return;
    }
    if ((sel & 4) || type === 0x03 || type === 0x0b) this.gp(sel & 0xfffc); // in the LDT, or busy
    if (!(ar & AR_P)) this.fault(11, sel & 0xfffc);
    this.switchTask(sel, d, src, nextEip, 0, false, 0);
  }

  /** The TSS descriptor a task gate names: an available TSS in the GDT (#GP, #NP otherwise). */
  gateTss(tsel: number, extBit: number): { lo: number; hi: number } {
    const err = (tsel & 0xfffc) + extBit;
    if (tsel & 4) this.gp(err);
    const d = this.readDescriptor(tsel, extBit, 13);
    const ar = descAr(d.hi), type = ar & 0x1f;
    if (type !== 0x01 && type !== 0x09) this.gp(err);
    if (!(ar & AR_P)) this.fault(11, err);
    return d;
  }

  /** IRET with NT=1: the task in the link field must be a busy TSS in the GDT (#TS otherwise). */
  protected taskReturn(nextEip: number): void {
    const link = this.rs16(this.trBase);
    const err = link & 0xfffc;
    if (link & 4) this.fault(10, err);
    const d = this.readDescriptor(link, 0, 10);
    const ar = descAr(d.hi), type = ar & 0x1f;
    if (type !== 0x03 && type !== 0x0b) this.fault(10, err);
    if (!(ar & AR_P)) this.fault(11, err);
    this.switchTask(link, d, TS_IRET, nextEip, 0, false, 0);
  }

  /**
   * Switch to the task whose TSS descriptor (already checked by the caller: type, privilege,
   * presence) is `d`. `nextEip` is the old task's EIP to save; `extBit` goes into error codes;
   * an exception's error code (`hasErr`, `err`) is pushed on the new task's stack.
   */
  switchTask(tsel: number, d: { lo: number; hi: number }, src: number, nextEip: number, extBit: number,
    hasErr: boolean, err: number): void {
    const ar = descAr(d.hi);
    const n32 = (ar & 8) !== 0, o32 = (this.trAr & 8) !== 0;
    const nb = descBase(d.lo, d.hi), nlim = descLimit(d.lo, d.hi);
    if (nlim < (n32 ? 0x67 : 0x2b)) this.fault(10, (tsel & 0xfffc) + extBit);
    if (this.trLimit < (o32 ? 0x67 : 0x2b)) this.fault(10, (this.trSel & 0xfffc) + extBit);

    // The new task's state, read before anything changes (a #PF here belongs to the old task).
    const r16 = (o: number) => this.rs16((nb + o) >>> 0), r32 = (o: number) => this.rs32((nb + o) >>> 0);
    const gpr = new Array<number>(8), segs = new Array<number>(NSEG).fill(0);
    let eip: number, fl: number, ldt: number, cr3 = 0, trap = false;
    if (n32) {
      cr3 = r32(0x1c); eip = r32(0x20); fl = r32(0x24);
      for (let k = 0; k < 8; k++) gpr[k] = r32(0x28 + 4 * k);
      for (let s = 0; s < NSEG; s++) segs[s] = r16(0x48 + 4 * s);
      ldt = r16(0x60); trap = (r16(0x64) & 1) !== 0;
    } else {
      eip = r16(0x0e); fl = r16(0x10);
      for (let k = 0; k < 8; k++) gpr[k] = ((this.regs[k]! & 0xffff0000) | r16(0x12 + 2 * k)) >>> 0;
      for (let s = 0; s < 4; s++) segs[s] = r16(0x22 + 2 * s);
      ldt = r16(0x2a);
    }

    // Save the old task (IRET saves NT=0: it leaves that task).
    const ob = this.trBase;
    let ofl = this.getFlags();
    if (src === TS_IRET) ofl &= ~NT;
    if (o32) {
      this.wsys32((ob + 0x20) >>> 0, nextEip); this.wsys32((ob + 0x24) >>> 0, ofl);
      for (let k = 0; k < 8; k++) this.wsys32((ob + 0x28 + 4 * k) >>> 0, this.regs[k]!);
      for (let s = 0; s < NSEG; s++) this.wsys16((ob + 0x48 + 4 * s) >>> 0, this.sel[s]!);
    } else {
      this.wsys16((ob + 0x0e) >>> 0, nextEip); this.wsys16((ob + 0x10) >>> 0, ofl);
      for (let k = 0; k < 8; k++) this.wsys16((ob + 0x12 + 2 * k) >>> 0, this.regs[k]!);
      for (let s = 0; s < 4; s++) this.wsys16((ob + 0x22 + 2 * s) >>> 0, this.sel[s]!);
    }
    // Busy bits and the link field.
    if (src === TS_JMP || src === TS_IRET) this.setBusy(this.trSel, false);
    if (src === TS_CALL || src === TS_INT) { this.wsys16(nb, this.trSel); fl |= NT; }
    if (src !== TS_IRET) this.setBusy(tsel, true);
    // Commit: TR, CR0.TS.
    this.trSel = tsel & 0xffff; this.trBase = nb; this.trLimit = nlim; this.trAr = ar | 2;
    this.cr0 = (this.cr0 | 8) >>> 0;

    // The new task's state; from here on a fault is the new task's.
    if (n32 && this.paging()) { this.cr3 = cr3 >>> 0; this.flushTlb(); }
    this.setFlags(n32 ? fl : fl & 0xffff);
    this.eip = n32 ? eip >>> 0 : eip & 0xffff;
    for (let k = 0; k < 8; k++) this.regs[k] = gpr[k]!;
    const v86 = this.v86();
    for (let s = 0; s < NSEG; s++) {
      // Selectors first, with empty caches: the checks below may fault.
      this.sel[s] = segs[s]!; this.segBase[s] = 0; this.segLimit[s] = 0; this.segAr[s] = 0;
    }
    this.ldtSel = ldt & 0xffff; this.ldtBase = 0; this.ldtLimit = 0; this.ldtAr = 0;
    this.setCpl(v86 ? 3 : segs[CS]! & 3);
    let faulted = false;
    try {
      this.loadTaskLdt(ldt, extBit);
      if (v86) this.enterV86(this.eip, segs);
      else {
        this.loadTaskSeg(CS, segs[CS]!, extBit);
        this.loadTaskSeg(SS, segs[SS]!, extBit);
        for (const s of [0, 3, 4, 5]) this.loadTaskSeg(s, segs[s]!, extBit);
      }
      if (this.eip > this.segLimit[CS]!) this.gp(0);
      if (hasErr) { if (n32) this.push32(err); else this.push16(err); }
    } catch (e) {
      if (e !== FAULT) throw e;
      faulted = true;
    }
    this.modeChanged();
    if (faulted) this.raise(this.excVec, this.excHasErr, this.excErr);
    else if (trap) {
      // T bit: a debug trap in the new task before its first instruction.
      this.dr[6] = (this.dr[6]! | 0x8000) >>> 0;
      this.raise(1, false, 0);
    }
  }

  /** Set or clear the busy bit of the TSS descriptor `sel` in the GDT. */
  protected setBusy(sel: number, busy: boolean): void {
    const a = (this.gdtBase + (sel & 0xfff8) + 5) >>> 0;
    const b = this.rs16(a) & 0xff;
    this.ws8(a, busy ? b | 2 : b & ~2);
  }

  /** LDTR from the new TSS: null, or an LDT descriptor in the GDT (#TS(selector) otherwise). */
  protected loadTaskLdt(ldt: number, extBit: number): void {
    if ((ldt & 0xfffc) === 0) return;
    const err = (ldt & 0xfffc) + extBit;
    if (ldt & 4) this.fault(10, err);
    const d = this.readDescriptor(ldt, extBit, 10);
    const ar = descAr(d.hi);
    if ((ar & AR_S) || (ar & 0x0f) !== 2 || !(ar & AR_P)) this.fault(10, err);
    this.ldtBase = descBase(d.lo, d.hi); this.ldtLimit = descLimit(d.lo, d.hi); this.ldtAr = ar;
  }

  /**
   * A segment register from the new TSS, at the new CPL: CS a code segment (DPL = CPL, or <= CPL
   * if conforming), SS a writable data segment at CPL, the others null or readable at CPL and
   * RPL. #TS(selector) for a bad descriptor, #NP (#SS for SS) when not present.
   */
  protected loadTaskSeg(s: number, sel: number, extBit: number): void {
    const err = (sel & 0xfffc) + extBit;
    if ((sel & 0xfffc) === 0) {
      if (s === CS || s === SS) this.fault(10, extBit);
      return;
    }
    const d = this.readDescriptor(sel, extBit, 10);
    const ar = descAr(d.hi), dpl = (ar >> 5) & 3, cpl = this.cpl;
    const code = (ar & AR_CODE) !== 0, conforming = code && (ar & 0x04) !== 0;
    if (!(ar & AR_S)) this.fault(10, err);
    if (s === CS) {
      if (!code || (conforming ? dpl > cpl : dpl !== cpl)) this.fault(10, err);
    } else if (s === SS) {
      if (code || !(ar & 0x02) || dpl !== cpl || (sel & 3) !== cpl) this.fault(10, err);
      if (!(ar & AR_P)) this.fault(12, err);
    } else {
      if (code && !(ar & 0x02)) this.fault(10, err);
      if (!conforming && (dpl < cpl || dpl < (sel & 3))) this.fault(10, err);
    }
    if (!(ar & AR_P)) this.fault(11, err);
    this.touchDescriptor(sel, d.hi);
    this.loadSegDesc(s, sel, d.lo, d.hi);
  }
}
