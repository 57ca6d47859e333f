/**
 * The i386 CPU: reset, the run loop (exactly n instructions or a stop reason; interrupts
 * recognised between blocks; translated blocks run back to back), and snapshot/restore. The
 * layers below (state, memory, protection, interrupts, interp, blocks: see state.ts) hold
 * everything else.
 */
import type { CpuBus } from "./bus.ts";
import type { PhysMem } from "../../machine/ram.ts";
import type { StateReader, StateWriter } from "../../machine/snapshot.ts";
import { Stop, type GuestCpu } from "../contract.ts";
import { CR0_EM, CR0_TS, EDX, FAULT } from "./arch.ts";
import { CS } from "./decode.ts";
import { IF, LF_EAGER, TF } from "./flags.ts";
import { runInsn } from "./handlers.ts";
import { mul32, imul32, shift, shiftDouble } from "./ops.ts";
import { readTsc } from "./system.ts";
import { compileBlock, regionOf, JIT_LONG_BLOCK, JIT_LUKEWARM, JIT_MAX_BLOCKS, JIT_THRESHOLD, JIT_WINDOW } from "./jit.ts";
import { LINK_BITS, LINK_WORDS, TABLE_SLOTS, S_SPIN, SPIN_SLOTS, linkSlot } from "./jit-wasm.ts";
import type { Block } from "./block.ts";
import { CpuBlocks } from "./blocks.ts";
import { X86Debug } from "./debug.ts";
import { DEFAULT_MODEL, FEAT, hasP6Pmu, type X86Model } from "./model.ts";
import { Fpu, ES as FSW_ES } from "./fpu/fpu.ts";
import { escOp } from "./x87.ts";
import { X87J } from "./jit-x87.ts";

export { Stop, type Watchpoint } from "../contract.ts";
export { EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI, FAULT, descBase, descLimit, descAr } from "./arch.ts";
export type { Block } from "./block.ts";

/**
 * Deliveries within one run() call with no instruction retired before run() gives up with
 * Stop.STUCK: a handler that faults again at once retires nothing and would freeze virtual
 * time (a real CPU hangs there too). Host-side only: it changes no guest state.
 */
const FAULT_STORM = 100_000;
/** runTranslated results besides a Stop. */
const RT_CONTINUE = -2, RT_NOT_RUN = -1;
/**
 * A translated block entered from the run loop SHORT_RUNS times in a row with fewer than
 * SHORT_INSNS instructions a run on average (it leaves translated code at once, for blocks
 * that are not translated) is interpreted from then on: the interpreter goes through it on its
 * way, where each switch between the interpreter and translated code costs about as much as
 * interpreting those instructions. Translated code still chains into it.
 */
const SHORT_RUNS = 16, SHORT_INSNS = 32;

export class Cpu extends CpuBlocks implements GuestCpu {
  noJit = false;
  /** Executions of a block before it is translated (tests set 1 to translate everything). */
  jitThreshold = JIT_THRESHOLD;
  /** The most translated blocks kept (tests set a few to exercise dropping them). */
  jitMaxBlocks = JIT_MAX_BLOCKS;

  /** Slots through which translated WebAssembly code and its wrapper pass values (jit-wasm.ts). */
  readonly wasmScratch: Int32Array;
  /** Where WebAssembly regions go on to without the run loop (jit-wasm.ts chains): EIP -> region. */
  readonly wasmLinks: Int32Array;
  /** Generation of each slot of the table of WebAssembly regions (jit-wasm.ts chains). */
  readonly wasmGen: Int32Array;
  /** The loop state a translated polling-loop header saves to compare (jit.ts emitRegion); in wasmScratch. */
  readonly spinQ: Int32Array;

  constructor(bus: CpuBus, mem: PhysMem, model: X86Model = DEFAULT_MODEL) {
    super(bus, mem);
    this.wasmScratch = mem.stateArray(Int32Array, 64);
    this.wasmLinks = mem.stateArray(Int32Array, LINK_WORDS << LINK_BITS);
    this.wasmGen = mem.stateArray(Int32Array, TABLE_SLOTS);
    this.spinQ = this.wasmScratch.subarray(S_SPIN >> 2, (S_SPIN >> 2) + SPIN_SLOTS);
    this.model = model;
    this.fpu = model.features & FEAT.FPU ? new Fpu() : null;
    this.reset();
  }

  /** Whether an interrupt on INTR would be taken now (EFLAGS.IF; the shadow is run()'s business). */
  interruptsEnabled(): boolean { return (this.eflags & IF) !== 0; }

  /** Port F0h written (the board's x87 error latch): IGNNE# while an x87 error is pending. */
  fpuErrorAck(): void {
    if (this.fpu !== null && (this.fpu.sw & FSW_ES)) this.ignne = true;
  }

  // =====================================================================================
  // Helpers that translated code calls (jit-insn.ts): the interpreter's semantics, on values
  // the function holds in locals
  // =====================================================================================

  /** The high half of the last jitRdtsc or jitMul result. */
  jitHi = 0;

  /** RDTSC at the icount the caller has set: the low half (the high half in jitHi). */
  jitRdtsc(): number {
    if ((this.cr4 & 4) && this.pe() && this.cpl !== 0) this.gp(0);
    const [lo, hi] = readTsc(this);
    this.jitHi = hi;
    return lo;
  }

  /**
   * The 64-bit product of two 32-bit values (MUL, or IMUL when signed): the low half (the high
   * half in jitHi), with the flags set as the interpreter sets them (CF = OF = the high half is
   * significant).
   */
  jitMul(a: number, b: number, signed: boolean): number {
    const [lo, hi] = signed ? imul32(a >>> 0, b >>> 0) : mul32(a >>> 0, b >>> 0);
    this.jitHi = hi;
    const over = signed ? hi !== ((lo & 0x80000000) ? 0xffffffff : 0) : hi !== 0;
    this.setSZP(lo, 2, over ? 1 : 0, over);
    return lo;
  }

  /**
   * SHLD/SHRD of a 32-bit register by 1-31 (translated code): the result, with every arithmetic
   * flag set as the interpreter sets it.
   */
  jitShd(left: boolean, dst: number, src: number, cnt: number): number {
    return shiftDouble(this, left, dst >>> 0, src >>> 0, cnt, 2);
  }

  /**
   * SHL/SHR/SAR of a byte (op: the ModRM reg field, 4-7) by 1-31 (translated code): the result,
   * with every arithmetic flag set as the interpreter sets it.
   */
  jitSh8(op: number, v: number, cnt: number): number {
    return shift(this, op, v, cnt, 0);
  }

  /** The x87 forms translated code runs without escOp's dispatch (jit-x87.ts). */
  readonly x87j = X87J;

  /** An x87 instruction from translated code (jit-insn.ts x87): see x87.ts escOp. */
  x87(e: number, modrm: number, o32: boolean, seg: number, off: number, eip: number): void {
    // The common register forms with no pending exception, one call less (Fpu.regOp).
    const f = this.fpu;
    if (modrm >= 0xc0 && f !== null && (this.cr0 & (CR0_EM | CR0_TS)) === 0 && (f.sw & FSW_ES) === 0 && f.regOp(e, modrm)) {
      this.ignne = false;
      f.fcs = this.sel[CS]!; f.fip = eip; f.fop = ((e << 8) | modrm) & 0x7ff;
      return;
    }
    escOp(this, e, modrm, o32, seg, off, eip);
  }

  /**
   * x87() for translated code without a try of its own around the call: what it threw (a
   * guest exception), or null. The caller leaves through its fault exit, which rethrows.
   */
  x87t(e: number, modrm: number, o32: boolean, seg: number, off: number, eip: number): unknown {
    try {
      this.x87(e, modrm, o32, seg, off, eip);
    } catch (x) {
      return x;
    }
    return null;
  }

  /** The debugger's view (gdb i386 registers, translation, disassembler). */
  get debug(): X86Debug { return new X86Debug(this); }


  // =====================================================================================
  // Reset and mode bookkeeping
  // =====================================================================================

  reset(): void {
    this.regs.fill(0);
    this.regs[EDX] = this.model.signature; // as CPUID leaf 1 EAX
    this.eip = 0xfff0;
    this.eflags = 2;
    this.lop = LF_EAGER;
    this.cr0 = 0x60000010;
    this.cr2 = this.cr3 = this.cr4 = 0;
    this.dr.fill(0);
    this.dr[6] = 0xffff0ff0;
    this.dr[7] = 0x400;
    for (let s = 0; s < 6; s++) {
      this.sel[s] = 0;
      this.segBase[s] = 0;
      this.segLimit[s] = 0xffff;
      this.segAr[s] = 0x93;
    }
    this.sel[CS] = 0xf000;
    this.segBase[CS] = 0xffff0000;
    this.segAr[CS] = 0x9b;
    this.gdtBase = 0; this.gdtLimit = 0xffff;
    this.idtBase = 0; this.idtLimit = 0xffff; // SDM Vol. 3 Table 9-1: IDTR base 0, limit FFFFH
    this.ldtSel = 0; this.ldtBase = 0; this.ldtLimit = 0xffff; this.ldtAr = 0x82;
    this.trSel = 0; this.trBase = 0; this.trLimit = 0xffff; this.trAr = 0x8b;
    this.cpl = 0;
    this.halted = false;
    this.inhibit = false;
    this.a20Mask = 0xffffffff;
    this.tscOffset = 0n;
    this.sysenterCs = this.sysenterEsp = this.sysenterEip = 0;
    this.pmcSel[0] = this.pmcSel[1] = this.pmcBase[0] = this.pmcBase[1] = 0;
    this.pmcFrom[0] = this.pmcFrom[1] = -1;
    this.mcCtl.fill(0);
    this.fpu?.reset();
    this.ignne = false;
    this.modeChanged();
    this.flushTlb();
  }

  // =====================================================================================
  // The run loop
  // =====================================================================================

  /**
   * Execute exactly `n` instructions, or fewer with a reason. A breakpoint stop happens before
   * the instruction executes. With `ignoreBpAt` the breakpoint at that linear address is
   * ignored for the first instruction (resuming from a breakpoint).
   */
  run(n: number, ignoreBpAt = -1): Stop {
    const target = this.icount + n;
    this.runTarget = target;
    this.brk = 0;
    this.watchHit = null;
    let first = true;
    let stormFrom = this.deliveries, stormAt = this.icount;
    // Only the debugger changes these, never while run() runs.
    const bps = this.breakpoints.size !== 0;
    const jitOk = !this.noJit && this.watchpoints.length === 0, thr = this.jitThreshold;
    while (this.icount < target) {
      if (this.deliveries - stormFrom > FAULT_STORM) {
        if (this.icount === stormAt) return Stop.STUCK;
        stormFrom = this.deliveries; stormAt = this.icount;
      }
      // Interrupts are recognised between instructions.
      if (this.intrLine && !this.inhibit && (this.eflags & IF)) {
        this.halted = false;
        this.deliverExternal();
        this.prevH = -1; // the handler is no successor of the block before it
        if (this.brk === Stop.SHUTDOWN) return Stop.SHUTDOWN;
        if (this.stopOnDelivery) return Stop.DELIVERED;
      }
      if (this.halted) return Stop.HALT;
      if (bps) {
        const linEip = (this.segBase[CS]! + this.eip) >>> 0;
        if (this.breakpoints.has(linEip) && !(first && linEip === ignoreBpAt)) {
          this.bpAddr = linEip;
          return Stop.BREAKPOINT;
        }
      }
      first = false;
      const tf = (this.eflags & TF) !== 0;
      const base = this.icount;
      // The successor links in the previous block's header, else the block cache.
      let uc = this.uc, h = 0;
      const ph = this.prevH;
      if (ph >= 0 && this.ucf[(ph >> 1) + 1] === this.chainEpoch) {
        const e = this.eip | 0;
        if (uc[ph + 4] === e) h = uc[ph + 5]!;
        else if (uc[ph + 6] === e) h = uc[ph + 7]!;
      }
      if (uc[h + 1] === 0) {
        try {
          h = this.lookupBlock().u!;
        } catch (e) {
          if (e !== FAULT) throw e;
          this.raise(this.excVec, this.excHasErr, this.excErr);
          this.prevH = -1;
          if (this.brk === Stop.SHUTDOWN) return Stop.SHUTDOWN;
          if (this.stopOnDelivery) return Stop.DELIVERED;
          continue;
        }
        uc = this.uc;
      }
      const n = uc[h]!;
      let count = n;
      const left = target - base;
      if (count > left) count = left;
      // In an interrupt shadow (after STI, MOV SS, POP SS) one instruction runs, and then the
      // loop looks for an interrupt: the interpreter must not chain on into linked blocks.
      const shadow = this.inhibit;
      if (shadow || tf) count = 1;
      this.inhibit = false;
      this.curH = h;
      this.prevH = h;
      // Translated code checks for watchpoint hits only after stores: no translation while any
      // watchpoint is set. Executions are counted in the header up to the threshold; from
      // there on the Block decides (translate once, run translated code if there is any).
      if (count === n && !tf && jitOk) {
        const hv = uc[h + 1]!; // hv: executions including this one (< 0: interpreted for good)
        if (hv > 0 && hv <= thr) uc[h + 1] = hv + 1;
        if (hv >= thr) {
          const blk = this.ublk[h >> 2]!;
          if (hv === thr && blk.fn === null) {
            if (!this.hotEnough(blk)) uc[h + 1] = blk.head; // lukewarm: counted again
            else {
              if (this.translated >= this.jitMaxBlocks) this.dropTranslations();
              blk.fn = compileBlock(this, blk, this.singleStep ? undefined : this.regionHost);
              if (blk.fn !== null) this.translated++;
              else uc[h + 1] = -1; // cannot be translated: it stays interpreted
            }
          }
          if (blk.fn !== null) {
            this.curH = -1;
            this.curBlock = blk;
            this.prevBlock = blk;
            const r = this.runTranslated(blk, target);
            this.curBlock = null;
            this.prevH = this.prevBlock !== null ? this.prevBlock.u! : -1;
            if (r !== RT_NOT_RUN) {
              blk.rtInsns += this.icount - base;
              if (++blk.rtRuns === SHORT_RUNS) {
                if (blk.rtInsns < SHORT_RUNS * SHORT_INSNS && this.ublk[h >> 2] === blk && uc[h + 1]! > 0) uc[h + 1] = -1;
                blk.rtRuns = 0; blk.rtInsns = 0;
              }
            }
            if (r === RT_CONTINUE) continue;
            if (r !== RT_NOT_RUN) return r;
            this.curH = h;
          } else if (uc[h + 1]! > thr) uc[h + 1] = -1; // past the threshold untranslated: it stays interpreted
        }
      }
      // The interpreter (it may go on to the following blocks); on a fault it has set EIP and
      // icount for the delivery.
      try {
        this.interp(h, count, base, target, !tf && !bps && !shadow, jitOk ? thr : -1);
      } catch (e) {
        this.curH = -1;
        if (e !== FAULT) throw e;
        this.raise(this.excVec, this.excHasErr, this.excErr);
        this.prevH = -1;
        if (this.brk === Stop.SHUTDOWN) return Stop.SHUTDOWN;
        if (this.stopOnDelivery) return Stop.DELIVERED;
        continue;
      }
      this.curH = -1;
      if (tf && !this.inhibit) {
        this.dr[6] |= 0x4000;
        this.raise(1, false, 0);
        this.prevH = -1;
      }
      if (this.brk !== 0) {
        const r = this.brk;
        if (r === Stop.WATCH || r === Stop.REQUEST || r === Stop.SHUTDOWN) return r;
        this.brk = 0; // code invalidation only
      }
      if (this.halted) {
        if (this.intrLine && (this.eflags & IF)) continue;
        return Stop.HALT;
      }
    }
    return Stop.BUDGET;
  }

  /**
   * Whether a block that reached the translation threshold is hot enough to translate: it got
   * there within JIT_WINDOW instructions, or has got there slowly JIT_LUKEWARM times, or it is
   * JIT_LONG_BLOCK instructions or longer (jit.ts), or it is a member of a translated region
   * (entering that region's function costs no compile). Otherwise its count starts again.
   */
  private hotEnough(blk: Block): boolean {
    if (this.icount - blk.hotFrom <= JIT_WINDOW || blk.lukewarm >= JIT_LUKEWARM || blk.n >= JIT_LONG_BLOCK || regionOf(blk) !== null) return true;
    blk.lukewarm++;
    blk.hotFrom = this.icount;
    return false;
  }

  /**
   * Run translated blocks back to back, following the successor cache, while nothing needs
   * the outer loop (an interrupt, a breakpoint, a block that does not fit the budget or is not
   * translated). Returns RT_CONTINUE, RT_NOT_RUN (an entry guard failed: interpret the block)
   * or a Stop for run() to return.
   */
  protected runTranslated(first: Block, target: number): number {
    let blk = first;
    for (let iter = 0; ; iter++) {
      const fn = blk.fn!;
      const insns = blk.insns;
      const e0 = this.eip;
      const base = this.icount;
      this.jitBase = base;
      this.jitDone = 0;
      let k: number;
      try {
        k = fn(this, this.regsI, insns, runInsn, target - base, blk.jitEntry);
      } catch (e) {
        this.curBlock = null;
        if (e !== FAULT) throw e;
        // (ci < 0: the function has set EIP and icount, jit-wasm.ts.)
        const ci = this.ci;
        if (ci >= 0) {
          this.eip = (e0 - blk.jitEntry + blk.jitOff![ci]!) >>> 0;
          this.icount = Math.max(this.icount, base + this.jitDone + blk.jitIdx![ci]!);
        }
        this.raise(this.excVec, this.excHasErr, this.excErr);
        this.prevBlock = null;
        return this.brk === Stop.SHUTDOWN ? Stop.SHUTDOWN : RT_CONTINUE;
      }
      if (k < 0) return iter === 0 ? RT_NOT_RUN : RT_CONTINUE;
      this.curBlock = null;
      this.icount = this.icount > base ? this.icount + 1 : base + k;
      if (this.brk !== 0) {
        const r = this.brk;
        if (r === Stop.WATCH || r === Stop.REQUEST || r === Stop.SHUTDOWN) return r;
        this.brk = 0;
      }
      if (this.halted) return this.intrLine && (this.eflags & IF) ? RT_CONTINUE : Stop.HALT;
      // Chain to the next block only through the successor cache, and only when the outer
      // loop would have nothing else to do first.
      if ((this.intrLine && (this.eflags & IF)) || this.inhibit || (this.eflags & TF)) return RT_CONTINUE;
      const eip = this.eip;
      // The successor slots (valid for one chain epoch), else (a region's many exits) the L1
      // through the read TLB.
      const nb = blk.sEpoch !== this.chainEpoch ? this.probeBlock(eip)
        : blk.s1Eip === eip ? blk.s1 : blk.s2Eip === eip ? blk.s2 : this.probeBlock(eip);
      if (nb === null || !nb.valid || nb.fn === null || nb.n > target - this.icount) return RT_CONTINUE;
      // Blocks are cut at breakpoints, so only a block's first instruction can be one: one check per block.
      if (this.breakpoints.size !== 0 && this.breakpoints.has((this.segBase[CS]! + eip) >>> 0)) return RT_CONTINUE;
      // A WebAssembly region: WebAssembly regions that end at this EIP go on to it by themselves
      // from now on, while this link holds (jit-wasm.ts chains).
      const tix = nb.fn.tix;
      if (tix !== undefined && tix !== 0) {
        const L = this.wasmLinks, i = linkSlot(eip), g = this.wasmGen[tix]!;
        if (L[i + 1] !== (eip | 0) || L[i] !== (this.chainEpoch | 0) || L[i + 2] !== tix || L[i + 3] !== g || L[i + 4] !== nb.jitEntry) {
          L[i] = this.chainEpoch; L[i + 1] = eip; L[i + 2] = tix; L[i + 3] = g; L[i + 4] = nb.jitEntry;
        }
      }
      this.curBlock = nb;
      this.prevBlock = nb;
      blk = nb;
    }
  }

  // =====================================================================================
  // Snapshot
  // =====================================================================================

  save(w: StateWriter): void {
    for (let i = 0; i < 8; i++) w.u32(this.regs[i]!);
    w.u32(this.eip).u32(this.getFlags());
    for (let s = 0; s < 6; s++) w.u16(this.sel[s]!).u32(this.segBase[s]!).u32(this.segLimit[s]!).u16(this.segAr[s]!);
    w.u32(this.cr0).u32(this.cr2).u32(this.cr3).u32(this.cr4);
    for (let i = 0; i < 8; i++) w.u32(this.dr[i]!);
    w.u32(this.gdtBase).u32(this.gdtLimit).u32(this.idtBase).u32(this.idtLimit);
    w.u16(this.ldtSel).u32(this.ldtBase).u32(this.ldtLimit).u16(this.ldtAr);
    w.u16(this.trSel).u32(this.trBase).u32(this.trLimit).u16(this.trAr);
    w.u8(this.cpl).bool(this.halted).bool(this.inhibit).f64(this.icount).u32(this.a20Mask);
    // Appended per feature, so a model without it saves the bytes it always did.
    if (this.model.features & FEAT.MSR) {
      const t = BigInt.asUintN(64, this.tscOffset);
      w.u32(Number(t & 0xffffffffn)).u32(Number(t >> 32n)).u32(this.sysenterCs).u32(this.sysenterEsp).u32(this.sysenterEip);
    }
    if (hasP6Pmu(this.model)) for (let i = 0; i < 2; i++) w.u32(this.pmcSel[i]!).f64(this.pmcBase[i]!).f64(this.pmcFrom[i]!);
    if (this.model.features & FEAT.MCA) for (let i = 0; i < 12; i++) w.u32(this.mcCtl[i]!);
    if (this.fpu !== null) { this.fpu.save(w); w.bool(this.ignne); }
  }

  /** Restore; with keepBlocks the caller invalidates the pages whose contents changed. */
  restore(r: StateReader, keepBlocks = false): void {
    for (let i = 0; i < 8; i++) this.regs[i] = r.u32();
    this.eip = r.u32();
    this.eflags = r.u32();
    this.lop = LF_EAGER;
    for (let s = 0; s < 6; s++) {
      this.sel[s] = r.u16(); this.segBase[s] = r.u32(); this.segLimit[s] = r.u32(); this.segAr[s] = r.u16();
    }
    this.cr0 = r.u32(); this.cr2 = r.u32(); this.cr3 = r.u32(); this.cr4 = r.u32();
    for (let i = 0; i < 8; i++) this.dr[i] = r.u32();
    this.gdtBase = r.u32(); this.gdtLimit = r.u32(); this.idtBase = r.u32(); this.idtLimit = r.u32();
    this.ldtSel = r.u16(); this.ldtBase = r.u32(); this.ldtLimit = r.u32(); this.ldtAr = r.u16();
    this.trSel = r.u16(); this.trBase = r.u32(); this.trLimit = r.u32(); this.trAr = r.u16();
    this.setCpl(r.u8());
    this.halted = r.bool(); this.inhibit = r.bool(); this.icount = r.f64(); this.a20Mask = r.u32();
    if (this.model.features & FEAT.MSR) {
      const lo = r.u32(), hi = r.u32();
      this.tscOffset = BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
      this.sysenterCs = r.u32(); this.sysenterEsp = r.u32(); this.sysenterEip = r.u32();
    }
    if (hasP6Pmu(this.model)) for (let i = 0; i < 2; i++) { this.pmcSel[i] = r.u32(); this.pmcBase[i] = r.f64(); this.pmcFrom[i] = r.f64(); }
    if (this.model.features & FEAT.MCA) for (let i = 0; i < 12; i++) this.mcCtl[i] = r.u32();
    if (this.fpu !== null) { this.fpu.restore(r); this.ignne = r.bool(); }
    this.modeChanged();
    this.flushTlb();
    this.prevBlock = null;
    this.prevH = -1;
    if (!keepBlocks) this.flushBlocks();
  }
}
