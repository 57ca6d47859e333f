/**
 * Segmentation and protection: the mode bookkeeping derived from CR0 and the segment caches,
 * the stack, descriptor loads with their privilege checks, far JMP/CALL (call gates), far RET
 * and IRET, virtual-8086 mode (entered by IRET with VM=1, real-mode style segments at CPL 3),
 * the TSS stack switch used by interrupts.ts, the I/O permission check, and the control
 * registers. Task switches (TSS descriptors, task gates, IRET with NT=1) are tasks.ts's: the
 * layer above, declared here as abstract methods.
 */
import type { IoSize } from "../../machine/device.ts";
import { ESP, CR0_PE, CR0_PG, CR0_EM, CR0_TS, CR4_PGE, AR_P, AR_S, AR_CODE, AR_DB, descAr, descBase, descLimit } from "./arch.ts";
import { CS, DS, ES, FS, GS, SS } from "./decode.ts";
import { AC, AF, CF, DF, ID, IF, IOPL, NT, OF, PF, RF, SF, TF, VIF, VIP, VM, ZF } from "./flags.ts";
import { CpuMemory } from "./memory.ts";
import { cr4Writable } from "./model.ts";

export abstract class CpuProtection extends CpuMemory {
  /** JMP/CALL far to a TSS descriptor or a task gate (tasks.ts). */
  protected abstract taskJump(sel: number, d: { lo: number; hi: number }, call: boolean, nextEip: number): void;
  /** IRET with NT=1: back to the task in the current TSS's link field (tasks.ts). */
  protected abstract taskReturn(nextEip: number): void;

  // =====================================================================================
  // Mode bookkeeping
  // =====================================================================================

  /**
   * Recompute everything derived from the segment caches, CR0 and CPL. Block links switch to
   * those of the new context (they assume CS and CPL: memory.ts linkContext). The TLB stays:
   * it maps linear pages, which no segment or privilege change touches (the user and
   * supervisor entries are kept apart, and setCpl picks them), as on a real CPU, which keeps
   * its TLB across interrupts, IRET and far transfers. Writes to CR0, CR3 and CR4 flush it.
   */
  modeChanged(): void {
    this.code32 = (this.segAr[CS]! & AR_DB) !== 0 && this.pe();
    this.stack32 = (this.segAr[SS]! & AR_DB) !== 0 && this.pe();
    for (let s = 0; s < 6; s++) this.updateSegFast(s);
    this.linkContext();
  }

  protected updateSegFast(s: number): void {
    const ar = this.segAr[s]!;
    // Fast: present data segment, writable, expand-up, limit 4G. CS (never writable) is never fast.
    this.segFast[s] = (ar & (AR_P | AR_S | AR_CODE | 0x06)) === (AR_P | AR_S | 0x02) && this.segLimit[s] === 0xffffffff ? 1 : 0;
  }

  protected nullIfInaccessible(s: number): void {
    const ar = this.segAr[s]!;
    const dpl = (ar >> 5) & 3;
    const conformingCode = (ar & (AR_CODE | 0x04)) === (AR_CODE | 0x04);
    if ((this.sel[s]! & 0xfffc) !== 0 && !conformingCode && dpl < this.cpl) {
      this.sel[s] = 0; this.segAr[s] = 0; this.segBase[s] = 0; this.segLimit[s] = 0;
    }
    this.updateSegFast(s);
  }

  protected tssStack(dpl: number, extBit: number): { ss: number; esp: number } {
    const t32 = (this.trAr & 0x0f) === 0x09 || (this.trAr & 0x0f) === 0x0b;
    if (t32) {
      const off = 4 + dpl * 8;
      if (off + 5 > this.trLimit) this.fault(10, (this.trSel & 0xfffc) + extBit);
      return { esp: this.rs32((this.trBase + off) >>> 0), ss: this.rs16((this.trBase + off + 4) >>> 0) };
    }
    const off = 2 + dpl * 4;
    if (off + 3 > this.trLimit) this.fault(10, (this.trSel & 0xfffc) + extBit);
    return { esp: this.rs16((this.trBase + off) >>> 0), ss: this.rs16((this.trBase + off + 2) >>> 0) };
  }

  /** Validate a stack segment selector for privilege `rpl`; `vec` is the fault to raise (#TS or #GP). */
  checkStackSeg(sel: number, rpl: number, extBit: number, vec: number): { lo: number; hi: number } {
    if ((sel & 0xfffc) === 0) this.fault(vec, extBit);
    if ((sel & 3) !== rpl) this.fault(vec, (sel & 0xfffc) + extBit);
    const d = this.readDescriptor(sel, extBit, vec);
    const ar = descAr(d.hi);
    if (!(ar & AR_S) || (ar & AR_CODE) || !(ar & 0x02) || ((ar >> 5) & 3) !== rpl) this.fault(vec, (sel & 0xfffc) + extBit);
    if (!(ar & AR_P)) this.fault(12, (sel & 0xfffc) + extBit);
    return d;
  }

  protected wsys32(l: number, v: number): void {
    this.ws8(l, v); this.ws8((l + 1) >>> 0, v >>> 8); this.ws8((l + 2) >>> 0, v >>> 16); this.ws8((l + 3) >>> 0, v >>> 24);
  }
  protected wsys16(l: number, v: number): void {
    this.ws8(l, v); this.ws8((l + 1) >>> 0, v >>> 8);
  }

  // =====================================================================================
  // Stack
  // =====================================================================================

  push16(v: number): void {
    const sp = this.stack32 ? (this.regs[ESP]! - 2) >>> 0 : (this.regs[ESP]! - 2) & 0xffff;
    this.wr16(SS, sp, v);
    if (this.stack32) this.regs[ESP] = sp; else this.regs[ESP] = (this.regs[ESP]! & 0xffff0000) | sp;
  }
  push32(v: number): void {
    const sp = this.stack32 ? (this.regs[ESP]! - 4) >>> 0 : (this.regs[ESP]! - 4) & 0xffff;
    this.wr32(SS, sp, v);
    if (this.stack32) this.regs[ESP] = sp; else this.regs[ESP] = (this.regs[ESP]! & 0xffff0000) | sp;
  }
  push(o32: boolean, v: number): void { if (o32) this.push32(v); else this.push16(v); }
  /** Read the value at the top of the stack + `skip` bytes without popping. */
  peek(o32: boolean, skip = 0): number {
    const sp = this.stack32 ? (this.regs[ESP]! + skip) >>> 0 : (this.regs[ESP]! + skip) & 0xffff;
    return o32 ? this.rd32(SS, sp) : this.rd16(SS, sp);
  }
  /** Adjust the stack pointer by `n` bytes (positive = pop). */
  adjSp(n: number): void {
    if (this.stack32) this.regs[ESP] = (this.regs[ESP]! + n) >>> 0;
    else this.regs[ESP] = (this.regs[ESP]! & 0xffff0000) | ((this.regs[ESP]! + n) & 0xffff);
  }
  pop(o32: boolean): number {
    const v = this.peek(o32);
    this.adjSp(o32 ? 4 : 2);
    return v;
  }

  // =====================================================================================
  // Segments and descriptors
  // =====================================================================================

  /** Read the 8-byte descriptor for a selector from the GDT or LDT; #GP (or `vec`) if outside. */
  readDescriptor(sel: number, extBit = 0, vec = 13): { lo: number; hi: number } {
    const idx = sel & 0xfff8;
    let base: number, limit: number;
    if (sel & 4) { base = this.ldtBase; limit = this.ldtLimit; if ((this.ldtSel & 0xfffc) === 0) this.fault(vec, (sel & 0xfffc) + extBit); }
    else { base = this.gdtBase; limit = this.gdtLimit; }
    if (idx + 7 > limit) this.fault(vec, (sel & 0xfffc) + extBit);
    const a = (base + idx) >>> 0;
    return { lo: this.rs32(a), hi: this.rs32((a + 4) >>> 0) };
  }

  /** Set the accessed bit of a descriptor. */
  protected touchDescriptor(sel: number, hi: number): void {
    if (hi & 0x100) return;
    const base = sel & 4 ? this.ldtBase : this.gdtBase;
    const a = (base + (sel & 0xfff8) + 5) >>> 0;
    this.ws8(a, ((hi >>> 8) & 0xff) | 1);
  }

  loadSegReal(s: number, v: number): void {
    v &= 0xffff;
    this.sel[s] = v;
    this.segBase[s] = v << 4;
    // Limit and rights stay cached, as on hardware (unreal mode).
    this.updateSegFast(s);
    if (s === CS) this.linkContext();
  }

  /** Load a segment cache from a descriptor (no checks). */
  loadSegDesc(s: number, sel: number, lo: number, hi: number): void {
    this.sel[s] = sel;
    this.segBase[s] = descBase(lo, hi);
    this.segLimit[s] = descLimit(lo, hi);
    this.segAr[s] = descAr(hi);
    this.updateSegFast(s);
    if (s === CS) { this.code32 = (this.segAr[CS]! & AR_DB) !== 0; this.linkContext(); }
    if (s === SS) this.stack32 = (this.segAr[SS]! & AR_DB) !== 0;
  }

  /** MOV/POP/LxS to a data or stack segment register, with protected-mode checks. */
  loadSeg(s: number, v: number): void {
    v &= 0xffff;
    if (!this.pe() || this.v86()) { this.loadSegReal(s, v); return; }
    const rpl = v & 3;
    if (s === SS) {
      const d = this.checkStackSeg(v, this.cpl, 0, 13);
      this.touchDescriptor(v, d.hi);
      this.loadSegDesc(SS, v, d.lo, d.hi);
      return;
    }
    if ((v & 0xfffc) === 0) {
      this.sel[s] = v; this.segBase[s] = 0; this.segLimit[s] = 0; this.segAr[s] = 0; this.updateSegFast(s);
      return;
    }
    const d = this.readDescriptor(v);
    const ar = descAr(d.hi);
    const dpl = (ar >> 5) & 3;
    if (!(ar & AR_S)) this.gp(v & 0xfffc);
    if ((ar & AR_CODE) && !(ar & 0x02)) this.gp(v & 0xfffc); // execute-only code
    const conforming = (ar & (AR_CODE | 0x04)) === (AR_CODE | 0x04);
    if (!conforming && (rpl > dpl || this.cpl > dpl)) this.gp(v & 0xfffc);
    if (!(ar & AR_P)) this.fault(11, v & 0xfffc);
    this.touchDescriptor(v, d.hi);
    this.loadSegDesc(s, v, d.lo, d.hi);
  }

  /** Far JMP/CALL target in protected mode (code segment or call gate). */
  farTransfer(sel: number, off: number, call: boolean, o32: boolean, nextEip: number): void {
    sel &= 0xffff;
    if (!this.pe() || this.v86()) {
      if (call) { this.push(o32, this.sel[CS]!); this.push(o32, nextEip); }
      this.loadSegReal(CS, sel);
      this.eip = o32 ? off >>> 0 : off & 0xffff;
      return;
    }
    if ((sel & 0xfffc) === 0) this.gp(0);
    const d = this.readDescriptor(sel);
    const ar = descAr(d.hi);
    const dpl = (ar >> 5) & 3;
    const rpl = sel & 3;
    if (ar & AR_S) {
      if (!(ar & AR_CODE)) this.gp(sel & 0xfffc);
      if (ar & 0x04) { if (dpl > this.cpl) this.gp(sel & 0xfffc); }
      else if (rpl > this.cpl || dpl !== this.cpl) this.gp(sel & 0xfffc);
      if (!(ar & AR_P)) this.fault(11, sel & 0xfffc);
      const lim = descLimit(d.lo, d.hi);
      const eip = o32 ? off >>> 0 : off & 0xffff;
      if (eip > lim) this.gp(0);
      if (call) {
        // Push before committing so a stack fault leaves the state unchanged.
        this.pushPair(o32, this.sel[CS]!, nextEip);
      }
      this.touchDescriptor(sel, d.hi);
      this.loadSegDesc(CS, (sel & 0xfffc) | this.cpl, d.lo, d.hi);
      this.eip = eip;
      return;
    }
    // System descriptor: TSS (available 1/9, busy 3/0xB) or task gate (5): a task switch;
    // call gate (0x4 16-bit, 0xC 32-bit).
    const type = ar & 0x0f;
    if (type === 0x01 || type === 0x09 || type === 0x03 || type === 0x0b || type === 0x05) {
      this.taskJump(sel, d, call, nextEip);
      return;
    }
    if (type !== 0x04 && type !== 0x0c) this.gp(sel & 0xfffc);
    if (dpl < this.cpl || dpl < rpl) this.gp(sel & 0xfffc);
    if (!(ar & AR_P)) this.fault(11, sel & 0xfffc);
    const gate32 = type === 0x0c;
    const csel = d.lo >>> 16;
    const goff = gate32 ? ((d.hi & 0xffff0000) | (d.lo & 0xffff)) >>> 0 : d.lo & 0xffff;
    const pcount = d.hi & 0x1f;
    if ((csel & 0xfffc) === 0) this.gp(0);
    const cd = this.readDescriptor(csel);
    const car = descAr(cd.hi);
    const cdpl = (car >> 5) & 3;
    if (!(car & AR_S) || !(car & AR_CODE) || cdpl > this.cpl) this.gp(csel & 0xfffc);
    if (!(car & AR_P)) this.fault(11, csel & 0xfffc);
    if (goff > descLimit(cd.lo, cd.hi)) this.gp(0);
    const conforming = (car & 0x04) !== 0;
    if (call && !conforming && cdpl < this.cpl) {
      // Inter-privilege call through the gate: switch stacks, copy parameters.
      const { ss: nss, esp: nesp } = this.tssStack(cdpl, 0);
      const sd = this.checkStackSeg(nss, cdpl, 0, 10);
      const s32 = (descAr(sd.hi) & AR_DB) !== 0;
      const sbase = descBase(sd.lo, sd.hi);
      const params: number[] = [];
      for (let k = pcount - 1; k >= 0; k--) params.push(this.peek(gate32, k * (gate32 ? 4 : 2)));
      let sp = nesp;
      const wsz = gate32 ? 4 : 2;
      const push = (v: number) => {
        sp = s32 ? (sp - wsz) >>> 0 : (sp - wsz) & 0xffff;
        if (gate32) this.wsys32((sbase + sp) >>> 0, v); else this.wsys16((sbase + sp) >>> 0, v);
      };
      push(this.sel[SS]!); push(this.regs[ESP]!);
      for (const p of params) push(p);
      push(this.sel[CS]!); push(nextEip);
      this.loadSegDesc(SS, (nss & 0xfffc) | cdpl, sd.lo, sd.hi);
      this.regs[ESP] = s32 ? sp : (this.regs[ESP]! & 0xffff0000) | sp;
      this.loadSegDesc(CS, (csel & 0xfffc) | cdpl, cd.lo, cd.hi);
      this.setCpl(cdpl);
      this.eip = goff;
      this.modeChanged();
      return;
    }
    if (!call && !conforming && cdpl !== this.cpl) this.gp(csel & 0xfffc);
    if (call) this.pushPair(gate32, this.sel[CS]!, nextEip);
    this.loadSegDesc(CS, (csel & 0xfffc) | this.cpl, cd.lo, cd.hi);
    this.eip = goff;
  }

  protected pushPair(o32: boolean, cs: number, eip: number): void {
    const w = o32 ? 4 : 2;
    const sp0 = this.regs[ESP]!;
    const a1 = this.stack32 ? (sp0 - w) >>> 0 : (sp0 - w) & 0xffff;
    const a2 = this.stack32 ? (sp0 - 2 * w) >>> 0 : (sp0 - 2 * w) & 0xffff;
    // Check both slots before writing either.
    this.lin(SS, a2, 2 * w, true);
    if (o32) { this.wr32(SS, a1, cs); this.wr32(SS, a2, eip); } else { this.wr16(SS, a1, cs); this.wr16(SS, a2, eip); }
    this.adjSp(-2 * w);
  }

  /** The checks far RET and IRET make on the code segment they return to; its descriptor. */
  protected checkReturnCs(sel: number): { lo: number; hi: number } {
    if ((sel & 0xfffc) === 0) this.gp(0);
    const rpl = sel & 3;
    if (rpl < this.cpl) this.gp(sel & 0xfffc);
    const d = this.readDescriptor(sel);
    const ar = descAr(d.hi);
    const dpl = (ar >> 5) & 3;
    if (!(ar & AR_S) || !(ar & AR_CODE)) this.gp(sel & 0xfffc);
    if ((ar & 0x04) ? dpl > rpl : dpl !== rpl) this.gp(sel & 0xfffc);
    if (!(ar & AR_P)) this.fault(11, sel & 0xfffc);
    return d;
  }

  /** Far RET (with `extra` bytes of parameters to release). */
  farReturn(o32: boolean, extra: number): void {
    const w = o32 ? 4 : 2;
    const eip = this.peek(o32, 0);
    const sel = this.peek(o32, w) & 0xffff;
    if (!this.pe() || this.v86()) {
      this.loadSegReal(CS, sel);
      this.eip = eip;
      this.adjSp(2 * w + extra);
      return;
    }
    const rpl = sel & 3;
    const d = this.checkReturnCs(sel);
    if (rpl === this.cpl) {
      this.loadSegDesc(CS, sel, d.lo, d.hi);
      this.eip = eip;
      this.adjSp(2 * w + extra);
      return;
    }
    // Return to an outer privilege level: pop SS:ESP too.
    const nesp = this.peek(o32, 2 * w + extra);
    const nss = this.peek(o32, 3 * w + extra) & 0xffff;
    const sd = this.checkStackSeg(nss, rpl, 0, 13);
    this.loadSegDesc(CS, sel, d.lo, d.hi);
    this.setCpl(rpl);
    this.loadSegDesc(SS, nss, sd.lo, sd.hi);
    this.regs[ESP] = this.stack32 ? (nesp + extra) >>> 0 : (this.regs[ESP]! & 0xffff0000) | ((nesp + extra) & 0xffff);
    this.eip = eip;
    for (const s of [ES, DS, FS, GS]) this.nullIfInaccessible(s);
    this.modeChanged();
  }

  /** IRET / IRETD (`nextEip`: the address after it, saved by a task return). */
  iret(o32: boolean, nextEip = this.eip): void {
    const w = o32 ? 4 : 2;
    if (!this.pe()) {
      const eip = this.peek(o32, 0), cs = this.peek(o32, w), fl = this.peek(o32, 2 * w);
      this.adjSp(3 * w);
      this.loadSegReal(CS, cs);
      this.eip = eip;
      const keep = o32 ? (VM | 0x180000) : 0xffff0000;
      this.setFlags((this.getFlags() & keep) | (fl & ~keep));
      return;
    }
    if (this.eflags & VM) {
      // Virtual-8086 mode: IOPL-sensitive (#GP(0) below IOPL 3); a real-mode IRET that leaves
      // VM, IOPL, VIF and VIP alone.
      if ((this.eflags & IOPL) !== IOPL) this.gp(0);
      const eip = this.peek(o32, 0), cs = this.peek(o32, w), fl = this.peek(o32, 2 * w);
      this.adjSp(3 * w);
      this.loadSegReal(CS, cs);
      this.eip = o32 ? eip >>> 0 : eip & 0xffff;
      const keep = VM | IOPL | VIF | VIP | (o32 ? 0 : 0xffff0000);
      this.setFlags((this.getFlags() & keep) | (fl & ~keep));
      return;
    }
    if (this.eflags & NT) { this.taskReturn(nextEip); return; }
    const eip = this.peek(o32, 0);
    const sel = this.peek(o32, w) & 0xffff;
    const fl = this.peek(o32, 2 * w);
    if (fl & VM && this.cpl === 0 && o32) { this.iretToV86(eip, sel, fl); return; }
    const rpl = sel & 3;
    const d = this.checkReturnCs(sel);
    const oldCpl = this.cpl;
    let nesp = 0, nss = 0, sd: { lo: number; hi: number } | null = null;
    if (rpl > oldCpl) {
      nesp = this.peek(o32, 3 * w);
      nss = this.peek(o32, 4 * w) & 0xffff;
      sd = this.checkStackSeg(nss, rpl, 0, 13);
    }
    // Flags: IOPL only at CPL 0, IF only when CPL <= IOPL.
    const old = this.getFlags();
    let mask = CF | PF | AF | ZF | SF | TF | DF | OF | NT | 0x2;
    if (o32) mask |= RF | AC | ID;
    if (oldCpl === 0) mask |= IOPL | (o32 ? 0x180000 : 0);
    if (oldCpl <= ((old & IOPL) >>> 12)) mask |= IF;
    this.loadSegDesc(CS, sel, d.lo, d.hi);
    this.eip = o32 ? eip : eip & 0xffff;
    this.setFlags((old & ~mask) | (fl & mask));
    if (sd) {
      this.setCpl(rpl);
      this.loadSegDesc(SS, nss, sd.lo, sd.hi);
      this.regs[ESP] = this.stack32 ? nesp >>> 0 : (this.regs[ESP]! & 0xffff0000) | (nesp & 0xffff);
      for (const s of [ES, DS, FS, GS]) this.nullIfInaccessible(s);
      this.modeChanged();
    } else {
      this.adjSp(3 * w);
    }
  }

  /**
   * IRETD at CPL 0 with VM=1 in the popped EFLAGS: ESP, SS, ES, DS, FS, GS follow EIP, CS and
   * EFLAGS on the stack (all read before anything changes: #SS(0) if outside the stack).
   */
  protected iretToV86(eip: number, cs: number, fl: number): void {
    const v = [12, 16, 20, 24, 28, 32].map((o) => this.peek(true, o));
    this.setFlags(fl);
    this.enterV86(eip & 0xffff, [v[2]!, cs, v[1]!, v[3]!, v[4]!, v[5]!]);
    this.regs[ESP] = v[0]!;
  }

  /**
   * Enter virtual-8086 mode (EFLAGS.VM already set): CPL 3, every segment real-mode style
   * (base = selector * 16, limit 0xFFFF, a present writable DPL 3 data segment as QEMU and
   * Bochs cache it). `segs` holds ES, CS, SS, DS, FS, GS.
   */
  enterV86(eip: number, segs: number[]): void {
    for (let s = 0; s < 6; s++) {
      const v = segs[s]! & 0xffff;
      this.sel[s] = v; this.segBase[s] = v << 4; this.segLimit[s] = 0xffff; this.segAr[s] = 0xf3;
    }
    this.setCpl(3);
    this.eip = eip;
    this.modeChanged();
  }

  // =====================================================================================
  // I/O permission
  // =====================================================================================

  /** Whether a port read now is stable (CpuBus.ioReadStable), for translated polling loops. */
  ioStable(port: number, size: IoSize): boolean {
    return this.bus.ioReadStable !== undefined && this.bus.ioReadStable(port, size);
  }

  /**
   * #GP unless CPL <= IOPL or the TSS I/O bitmap allows all `size` ports. In virtual-8086 mode
   * the bitmap decides at any IOPL.
   */
  checkIo(port: number, size: number): void {
    if (!this.pe()) return;
    const iopl = (this.eflags & IOPL) >>> 12;
    if (this.cpl <= iopl && !this.v86()) return;
    const t32 = (this.trAr & 0x0f) === 0x09 || (this.trAr & 0x0f) === 0x0b;
    if (!t32 || this.trLimit < 0x67) this.gp(0);
    const mapBase = this.rs16((this.trBase + 0x66) >>> 0);
    const byteOff = mapBase + (port >>> 3);
    if (byteOff + 1 > this.trLimit) this.gp(0);
    const bits = this.rs16((this.trBase + byteOff) >>> 0);
    const mask = ((1 << size) - 1) << (port & 7);
    if (bits & mask) this.gp(0);
  }

  // =====================================================================================
  // Control registers
  // =====================================================================================

  writeCr(n: number, v: number): void {
    v >>>= 0;
    switch (n) {
      case 0: {
        if ((v & CR0_PG) && !(v & CR0_PE)) this.gp(0);
        this.cr0 = (v | 0x10) >>> 0; // ET is hard-wired
        this.modeChanged();
        this.flushTlb(); // PG, WP
        break;
      }
      case 2: this.cr2 = v; break;
      // With CR4.PGE, translations of global pages survive a CR3 write (memory.ts).
      case 3: this.cr3 = v; this.flushTlb(!this.model.legacy && (this.cr4 & CR4_PGE) !== 0); break;
      case 4:
        if (v & ~cr4Writable(this.model)) this.gp(0);
        this.cr4 = v; this.flushTlb();
        break;
      default: this.fault(6);
    }
  }

  readCr(n: number): number {
    switch (n) {
      case 0: return this.cr0 >>> 0;
      case 2: return this.cr2;
      case 3: return this.cr3;
      case 4: return this.cr4;
      default: return this.fault(6);
    }
  }

  /** An x87 instruction on a model without an FPU: #NM with CR0.EM or TS, else #UD. */
  fpuCheck(): void {
    if (this.cr0 & (CR0_EM | CR0_TS)) this.fault(7);
    this.fault(6);
  }
}
