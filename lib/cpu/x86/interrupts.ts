/**
 * Interrupt and exception delivery: real-mode IVT and protected-mode IDT gates (with the stack
 * switch to an inner privilege level; from virtual-8086 mode only to ring 0, saving and zeroing
 * the data segment registers), task gates (tasks.ts), the double-fault and triple-fault
 * (shutdown) rules, and external interrupts acknowledged from the bus. An instruction aborts with `fault()`
 * (state.ts); the run loop (cpu.ts) catches FAULT and calls raise().
 *
 * CpuInterrupts is the top of the architectural layers: `CpuCore` is what instruction handlers
 * (exec.ts) and translated code (jit.ts) see of the CPU.
 */
import { Stop } from "../contract.ts";
import { ESP, FAULT, FERR_WAIT, AR_P, AR_S, AR_CODE, AR_DB, descAr, descBase } from "./arch.ts";
import { CS, DS, ES, FS, GS, SS } from "./decode.ts";
import { AC, IF, LF_EAGER, NT, RF, TF, VM } from "./flags.ts";
import { CpuTasks, TS_INT } from "./tasks.ts";

export abstract class CpuInterrupts extends CpuTasks {
  /** Ask run() to return after the current instruction (devices: exit, reset). */
  requestStop(): void { this.brk = Stop.REQUEST; }

  // =====================================================================================
  // Interrupt and exception delivery
  // =====================================================================================

  protected deliverExternal(): void {
    const vec = this.bus.ackInterrupt() & 0xff;
    this.raise(vec, false, 0, false, true);
  }

  /**
   * Deliver an exception or interrupt, applying the double-fault rules when delivery itself
   * faults. `soft` marks INT n/INT3/INTO (gate DPL checked); `ext` marks hardware interrupts.
   */
  raise(vec: number, hasErr: boolean, err: number, soft = false, ext = false): void {
    if (vec === FERR_WAIT) { this.halted = true; return; } // not a delivery: wait at the x87 instruction
    if (this.onDeliver !== null) this.onDeliver(vec, soft);
    this.deliveries++;
    if (soft) {
      // INT n/INT3/INTO: a fault during delivery is reported against the INT instruction.
      this.deliver(vec, hasErr, err, true, false);
      return;
    }
    let first = vec;
    for (let tries = 0; tries < 4; tries++) {
      try {
        this.deliver(vec, hasErr, err, soft, ext);
        return;
      } catch (e) {
        if (e !== FAULT) throw e;
        const v2 = this.excVec;
        if (vec === 8 || tries >= 2) { this.shutdown(); return; }
        const contributory = (v: number) => v === 0 || (v >= 10 && v <= 13);
        if ((contributory(first) && contributory(v2)) || (first === 14 && (contributory(v2) || v2 === 14))) {
          vec = 8; hasErr = true; err = 0;
        } else {
          vec = v2; hasErr = this.excHasErr; err = this.excErr;
        }
        first = vec;
        soft = false;
        ext = true;
      }
    }
    this.shutdown();
  }

  protected shutdown(): void {
    this.brk = Stop.SHUTDOWN;
    this.halted = true;
  }

  protected deliver(vec: number, hasErr: boolean, err: number, soft: boolean, ext: boolean): void {
    if (!this.pe()) {
      // Real mode: IVT entry, push FLAGS, CS, IP.
      if (vec * 4 + 3 > this.idtLimit) this.gp(0);
      const ent = this.rs32((this.idtBase + vec * 4) >>> 0);
      const fl = this.getFlags();
      this.push16(fl & 0xffff);
      this.push16(this.sel[CS]!);
      this.push16(this.eip & 0xffff);
      this.eflags = this.getFlags() & ~(IF | TF | AC | RF);
      this.lop = LF_EAGER;
      this.loadSegReal(CS, ent >>> 16);
      this.eip = ent & 0xffff;
      this.halted = false;
      return;
    }
    const extBit = ext ? 1 : 0;
    if (vec * 8 + 7 > this.idtLimit) this.gp(vec * 8 + 2 + extBit);
    const ga = (this.idtBase + vec * 8) >>> 0;
    const lo = this.rs32(ga), hi = this.rs32((ga + 4) >>> 0);
    const type = (hi >>> 8) & 0x1f;
    const dpl = (hi >>> 13) & 3;
    if (type !== 0x0e && type !== 0x0f && type !== 0x06 && type !== 0x07 && type !== 0x05) this.gp(vec * 8 + 2 + extBit);
    if (soft && dpl < this.cpl) this.gp(vec * 8 + 2);
    if (!(hi & 0x8000)) this.fault(11, vec * 8 + 2 + extBit);
    if (type === 0x05) {
      // Task gate: switch to the task, which gets the error code on its stack.
      const tsel = lo >>> 16;
      this.switchTask(tsel, this.gateTss(tsel, extBit), TS_INT, this.eip, extBit, hasErr, err);
      this.halted = false;
      return;
    }
    const gate32 = (type & 8) !== 0;
    const sel = lo >>> 16;
    const offset = gate32 ? ((hi & 0xffff0000) | (lo & 0xffff)) >>> 0 : lo & 0xffff;
    if ((sel & 0xfffc) === 0) this.gp(extBit);
    const d = this.readDescriptor(sel, extBit);
    const dar = descAr(d.hi);
    const ddpl = (dar >> 5) & 3;
    if (!(dar & AR_S) || !(dar & AR_CODE) || ddpl > this.cpl) this.gp((sel & 0xfffc) + extBit);
    if (!(dar & AR_P)) this.fault(11, (sel & 0xfffc) + extBit);
    const oldFlags = this.getFlags();
    const oldCs = this.sel[CS]!, oldEip = this.eip;
    const conforming = (dar & 0x04) !== 0;
    const v86 = (oldFlags & VM) !== 0;
    // From virtual-8086 mode only to a ring-0 non-conforming code segment.
    if (v86 && (conforming || ddpl !== 0)) this.gp((sel & 0xfffc) + extBit);
    if (!conforming && ddpl < this.cpl) {
      // Inter-privilege: new stack from the TSS.
      const { ss: nss, esp: nesp } = this.tssStack(ddpl, extBit);
      const sd = this.checkStackSeg(nss, ddpl, extBit, 10);
      const oldSs = this.sel[SS]!, oldEsp = this.regs[ESP]!;
      const s32 = (descAr(sd.hi) & AR_DB) !== 0;
      const sbase = descBase(sd.lo, sd.hi);
      let sp = nesp;
      const push = (v: number) => {
        if (gate32) { sp = s32 ? (sp - 4) >>> 0 : (sp - 4) & 0xffff; this.wsys32((sbase + sp) >>> 0, v); }
        else { sp = s32 ? (sp - 2) >>> 0 : (sp - 2) & 0xffff; this.wsys16((sbase + sp) >>> 0, v); }
      };
      if (v86) { push(this.sel[GS]!); push(this.sel[FS]!); push(this.sel[DS]!); push(this.sel[ES]!); }
      push(oldSs); push(oldEsp); push(oldFlags); push(oldCs); push(oldEip);
      if (hasErr) push(err);
      // Commit.
      this.loadSegDesc(SS, (nss & 0xfffc) | ddpl, sd.lo, sd.hi);
      this.regs[ESP] = s32 ? sp : (this.regs[ESP]! & 0xffff0000) | sp;
      this.loadSegDesc(CS, (sel & 0xfffc) | ddpl, d.lo, d.hi);
      this.setCpl(ddpl);
      for (const s of [ES, DS, FS, GS]) {
        if (v86) { this.sel[s] = 0; this.segBase[s] = 0; this.segLimit[s] = 0; this.segAr[s] = 0; }
        this.nullIfInaccessible(s);
      }
    } else {
      const newCpl = this.cpl;
      if (gate32) { this.push32(oldFlags); this.push32(oldCs); this.push32(oldEip); if (hasErr) this.push32(err); }
      else { this.push16(oldFlags); this.push16(oldCs); this.push16(oldEip); if (hasErr) this.push16(err); }
      this.loadSegDesc(CS, (sel & 0xfffc) | newCpl, d.lo, d.hi);
    }
    this.eip = offset;
    let nf = oldFlags & ~(TF | NT | RF | VM);
    if (!(type & 1)) nf &= ~IF;
    this.eflags = nf;
    this.lop = LF_EAGER;
    this.halted = false;
    this.modeChanged();
  }
}

/** What instruction handlers and translated code see of the CPU. */
export type CpuCore = CpuInterrupts;
