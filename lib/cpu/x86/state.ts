/**
 * The bottom layer of the i386 core: the register file (general, segment caches, control,
 * debug and descriptor-table registers), the lazy arithmetic flags and the ALU helpers built on
 * them, registers by operand size, and raising an exception (`fault`: record the vector and
 * throw FAULT; interrupts.ts delivers it).
 *
 * The core is a stack of classes, one file per concern, each extending the one below:
 *   state.ts (CpuState) -> memory.ts (CpuMemory) -> protection.ts (CpuProtection) ->
 *   tasks.ts (CpuTasks) ->
 *   interrupts.ts (CpuInterrupts = CpuCore, what instruction handlers and translated code see)
 *   -> interp.ts (CpuInterp) -> blocks.ts (CpuBlocks) -> cpu.ts (Cpu, the run loop).
 * A lower layer that needs something from a higher one declares it abstract.
 *
 * The core is a pure function of its state, guest memory and the bus: it reads no host time
 * and does no host I/O. The instruction counter `icount` counts retired instructions and is
 * exact at every point anything outside can observe it (see docs/ARCHITECTURE.md, "icount").
 */
import type { Watchpoint } from "../contract.ts";
import type { PhysMem } from "../../machine/ram.ts";
import { FAULT, CR0_PE, CR0_PG } from "./arch.ts";
import { DEFAULT_MODEL, type X86Model } from "./model.ts";
import type { Fpu } from "./fpu/fpu.ts";
import { ARITH, AF, CF, LF_ADD, LF_DEC, LF_EAGER, LF_INC, LF_LOGIC, LF_SUB, MASK, OF, PARITY, PF, SF, SIGN, VM, ZF, SH_SHL, SH_SHR, SH_SAR, IMUL_FLAGS } from "./flags.ts";


/** The int32 sign bit: x ^ MIN < y ^ MIN is the unsigned x < y, in int32 (x >>> 0 is a double for negative x). */
const MIN = -2147483648;

/** CF of an addition a + b + cin of size sz (operands int32 bits for 32-bit, else 0..mask). */
function addCarry(a: number, b: number, cin: number, sz: number): number {
  if (sz !== 2) return a + b + cin > MASK[sz]! ? 1 : 0;
  const r = (a + b + cin) ^ MIN, x = a ^ MIN;
  return (cin === 0 ? r < x : r <= x) ? 1 : 0;
}

/** CF (borrow) of a subtraction a - b - cin of size sz (operands as for addCarry). */
function subBorrow(a: number, b: number, cin: number, sz: number): number {
  if (sz !== 2) return a < b + cin ? 1 : 0;
  const x = a ^ MIN, y = b ^ MIN;
  return (cin === 0 ? x < y : x <= y) ? 1 : 0;
}

/** CF of a 32-bit shift by 1-31 (SH_SHL, SH_SHR, SH_SAR; a: the value shifted, int32). */
function shiftCf32(k: number, a: number, cnt: number): number {
  return k === SH_SHL ? (a >>> (32 - cnt)) & 1 : k === SH_SHR ? (a >>> (cnt - 1)) & 1 : (a >> (cnt - 1)) & 1;
}

/** CF of a 16-bit shift by 1-31 (a: the value shifted, 0..65535; a count above 16 shifts everything out). */
function shiftCf16(k: number, a: number, cnt: number): number {
  if (k === SH_SHL) return cnt > 16 ? 0 : (a >>> (16 - cnt)) & 1;
  if (k === SH_SHR) return cnt > 16 ? 0 : (a >>> (cnt - 1)) & 1;
  const sv = (a << 16) >> 16;
  return cnt >= 16 ? (sv < 0 ? 1 : 0) : (sv >> (cnt - 1)) & 1;
}

export abstract class CpuState {
  /** What this CPU reports in CPUID and implements (set once, by the constructor). */
  model: X86Model = DEFAULT_MODEL;
  // ---- architectural state ----
  // The registers and the segment cache live in the state area after guest RAM (ram.ts
  // stateArray), where translated WebAssembly code reads them.
  readonly regs: Uint32Array;
  /** The same registers as int32 (the interpreter's inline forms: no doubles for values >= 2^31). */
  protected readonly regsI: Int32Array;
  eip = 0;
  /** EFLAGS; the arithmetic bits are valid only when lop === LF_EAGER. */
  eflags = 2;
  lop = LF_EAGER;
  /** Lazy-flag operands and result as int32 (the bits; read as unsigned with `>>> 0`). */
  la = 0;
  lb = 0;
  lres = 0;
  lsz = 0;
  lcin = 0;
  readonly sel = new Uint16Array(6);
  readonly segBase: Uint32Array;
  /** The same, as int32 (the interpreter's address arithmetic). */
  protected readonly segBaseI: Int32Array;
  readonly segLimit: Uint32Array;
  readonly segAr = new Uint16Array(6);
  /** 1 when accesses through this segment need no limit/rights check (flat, present, RW). */
  readonly segFast: Uint8Array;
  cr0 = 0x60000010;
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  readonly dr = new Uint32Array(8);
  gdtBase = 0;
  gdtLimit = 0xffff;
  idtBase = 0;
  idtLimit = 0x3ff;
  ldtSel = 0;
  ldtBase = 0;
  ldtLimit = 0xffff;
  ldtAr = 0x82;
  trSel = 0;
  trBase = 0;
  trLimit = 0xffff;
  trAr = 0x8b;
  cpl = 0;
  halted = false;
  /** Interrupts inhibited for one instruction (after STI, MOV SS, POP SS). */
  inhibit = false;
  /** Retired instructions. */
  icount = 0;
  a20Mask = 0xffffffff;
  // ---- MSRs (models with FEAT.MSR; only those save them) ----
  /** TSC = bus TSC (virtual time) + tscOffset, mod 2^64; a WRMSR to the TSC sets the offset. */
  tscOffset = 0n;
  /** IA32_SYSENTER_CS/ESP/EIP (32 bits each on a CPU without Intel 64). */
  sysenterCs = 0;
  sysenterEsp = 0;
  sysenterEip = 0;
  // ---- P6 performance counters (models with a P6 PMU; only those save them; system.ts) ----
  /** PerfEvtSel0/1 (MSRs 186h/187h). */
  readonly pmcSel: [number, number] = [0, 0];
  /** PerfCtr0/1 (MSRs C1h/C2h): the 40-bit value at icount pmcFrom[i] (when counting). */
  readonly pmcBase: [number, number] = [0, 0];
  /** The icount since which counter i counts retired instructions, or -1 when it does not count. */
  readonly pmcFrom: [number, number] = [-1, -1];
  // ---- machine-check architecture (models with FEAT.MCA; only those save it; system.ts) ----
  /** MCG_CTL then MC0_CTL .. MC4_CTL, each as [low, high]. */
  readonly mcCtl = new Uint32Array(12);
  // ---- x87 (models with FEAT.FPU; only those save it) ----
  /** The x87 (null on a model without one: every ESC raises #NM or #UD). Set by the Cpu. */
  fpu: Fpu | null = null;
  /** IGNNE# asserted: waiting x87 instructions go on past a pending error (x87.ts). */
  ignne = false;

  // ---- derived / transient (not saved: recomputed on restore) ----
  code32 = false;
  stack32 = false;
  /** INTR input (driven by the machine from the PIC). */
  intrLine = false;
  /** Set to a Stop value by anything that must end the current block after this instruction. */
  brk = 0;
  /** Deliveries so far (not state: run() uses it to notice a fault storm). */
  deliveries = 0;
  /** For the REP handler: the icount at which run() must stop. */
  runTarget = 0;
  /** Exception being raised. */
  excVec = 0;
  excErr = 0;
  excHasErr = false;
  /** Breakpoints (linear addresses of instruction starts). */
  readonly breakpoints = new Set<number>();
  readonly watchpoints: Watchpoint[] = [];
  watchHit: { type: 2 | 3 | 4; addr: number } | null = null;
  /** Stop-reason detail for BREAKPOINT. */
  bpAddr = 0;
  /** Disable the block cache: every block is one instruction (the reference single-step mode). */
  singleStep = false;
  /**
   * Return Stop.DELIVERED right after delivering an interrupt or exception, before the handler's
   * first instruction (a debugger's single step that takes an interrupt stops there).
   */
  stopOnDelivery = false;
  /** Called whenever an exception or interrupt is about to be delivered (debugger bookkeeping). */
  onDeliver: ((vec: number, soft: boolean) => void) | null = null;
  /** Regions become WebAssembly where their code allows (jit-wasm.ts); false: JavaScript only. */
  jitWasm = true;
  /** Do not skip the iterations of polling loops that have reached a fixed point (jit.ts). */
  noSpinSkip = false;
  /** Index, in the running translated block, of the instruction that may fault next. */
  ci = 0;
  /** icount at the start of the running translated block. */
  jitBase = 0;
  /** Instructions retired by earlier iterations of a self-looping translated block. */
  jitDone = 0;
  /** Instructions retired by skipping iterations of fixed-point polling loops (jit.ts). */
  spinSkipped = 0;

  constructor(mem: PhysMem) {
    this.regs = mem.stateArray(Uint32Array, 8);
    this.regsI = new Int32Array(this.regs.buffer, this.regs.byteOffset, 8);
    this.segBase = mem.stateArray(Uint32Array, 6);
    this.segBaseI = new Int32Array(this.segBase.buffer, this.segBase.byteOffset, 6);
    this.segLimit = mem.stateArray(Uint32Array, 6);
    this.segFast = mem.stateArray(Uint8Array, 6);
  }

  pe(): boolean { return (this.cr0 & CR0_PE) !== 0; }
  paging(): boolean { return (this.cr0 & CR0_PG) !== 0 && this.pe(); }

  // =====================================================================================
  // Lazy flags
  // =====================================================================================

  cf(): number {
    switch (this.lop) {
      case LF_EAGER: case LF_INC: case LF_DEC: return this.eflags & CF;
      case LF_ADD: return addCarry(this.la, this.lb, this.lcin, this.lsz);
      case LF_SUB: return subBorrow(this.la, this.lb, this.lcin, this.lsz);
      default: return 0;
    }
  }
  zf(): boolean { return this.lop === LF_EAGER ? (this.eflags & ZF) !== 0 : this.lres === 0; }
  sf(): boolean { return this.lop === LF_EAGER ? (this.eflags & SF) !== 0 : (this.lres & SIGN[this.lsz]!) !== 0; }
  pf(): boolean { return this.lop === LF_EAGER ? (this.eflags & PF) !== 0 : PARITY[this.lres & 0xff] === 1; }
  of(): boolean {
    const s = SIGN[this.lsz]!;
    switch (this.lop) {
      case LF_EAGER: return (this.eflags & OF) !== 0;
      case LF_ADD: case LF_INC: return ((this.la ^ this.lres) & (this.lb ^ this.lres) & s) !== 0;
      case LF_SUB: case LF_DEC: return ((this.la ^ this.lb) & (this.la ^ this.lres) & s) !== 0;
      default: return false;
    }
  }
  af(): boolean {
    switch (this.lop) {
      case LF_EAGER: return (this.eflags & AF) !== 0;
      case LF_LOGIC: return false;
      default: return ((this.la ^ this.lb ^ this.lres) & 0x10) !== 0;
    }
  }

  /** Full EFLAGS value. */
  getFlags(): number {
    if (this.lop === LF_EAGER) return this.eflags >>> 0;
    let f = this.eflags & ~ARITH;
    if (this.cf()) f |= CF;
    if (this.pf()) f |= PF;
    if (this.af()) f |= AF;
    if (this.zf()) f |= ZF;
    if (this.sf()) f |= SF;
    if (this.of()) f |= OF;
    return f >>> 0;
  }

  /** Replace the arithmetic flags (others untouched). */
  setArith(f: number): void {
    this.eflags = (this.eflags & ~ARITH) | (f & ARITH);
    this.lop = LF_EAGER;
  }

  /**
   * Translated code's pending flags (jit.ts): a lazy kind (LF_*) stored as is, or a 32-bit
   * or 16-bit shift (SH_SHL, SH_SHR, SH_SAR; a = the value shifted, int32 or 0..65535 by sz,
   * b = count 1-31, r = result) or an IMUL (IMUL_FLAGS) evaluated as the interpreter does.
   */
  jitFlags(k: number, a: number, b: number, r: number, sz: number, cin: number): void {
    if (k < SH_SHL) {
      // INC/DEC keep CF, which the pending state carries in cin (see jitCf).
      if (k === LF_INC || k === LF_DEC) this.eflags = (this.eflags & ~CF) | cin;
      this.lop = k; this.la = a | 0; this.lb = b | 0; this.lres = r | 0; this.lsz = sz; this.lcin = cin;
      return;
    }
    if (k === IMUL_FLAGS) this.setSZP(r | 0, 2, a, a !== 0);
    else if (sz === 2) this.shiftFlags32(k, a, b, r); else this.shiftFlags16(k, a, b, r);
  }

  /**
   * CF of translated code's pending flags (as jitFlags would leave it), or of the CPU's flags
   * when none are pending (k = 0), without materialising anything: the carry into ADC/SBB and
   * the CF that INC/DEC keep (their pending state carries it in cin).
   */
  jitCf(k: number, a: number, b: number, r: number, sz: number, cin: number): number {
    switch (k) {
      case 0: return this.cf();
      case LF_ADD: return addCarry(a, b, cin, sz);
      case LF_SUB: return subBorrow(a, b, cin, sz);
      case LF_INC: case LF_DEC: return cin;
      case IMUL_FLAGS: return a;
      case SH_SHL: case SH_SHR: case SH_SAR: return sz === 2 ? shiftCf32(k, a, b) : shiftCf16(k, a, b);
      default: return 0;
    }
  }

  /**
   * Flags of a 16-bit shift by 1-31 (a: the operand, r: the result, both 0..65535), as
   * shift() computes them (a count above 16 shifts everything out: CF 0 for SHL and SHR).
   */
  protected shiftFlags16(k: number, a: number, cnt: number, r: number): void {
    const cf = shiftCf16(k, a, cnt);
    const of = k === SH_SHL ? (((r >>> 15) & 1) ^ cf) !== 0 : k === SH_SHR ? (a & 0x8000) !== 0 : false;
    this.setSZP(r, 1, cf, of);
  }

  /**
   * Flags of a 32-bit shift by 1-31 (k: SH_SHL, SH_SHR, SH_SAR; a: the value shifted, r: the
   * result, both int32), as shift() computes them: for translated code and interp().
   */
  protected shiftFlags32(k: number, a: number, cnt: number, r: number): void {
    const cf = shiftCf32(k, a, cnt);
    const of = k === SH_SHL ? ((r >>> 31) ^ cf) !== 0 : k === SH_SHR ? a < 0 : false;
    this.setSZP(r | 0, 2, cf, of);
  }

  /** Materialise lazy flags into eflags (before a partial flag update). */
  materialise(): void {
    if (this.lop !== LF_EAGER) { this.eflags = this.getFlags(); this.lop = LF_EAGER; }
  }

  /** Set EFLAGS wholesale (no privilege checks: callers apply those). */
  setFlags(f: number): void {
    this.eflags = ((f & 0x3f7fd5) | 2) >>> 0;
    this.lop = LF_EAGER;
  }

  /** Virtual-8086 mode (EFLAGS.VM; protection.ts enters and leaves it). */
  v86(): boolean { return (this.eflags & VM) !== 0; }

  /** Evaluate condition code 0-15 (the low nibble of Jcc/SETcc/CMOVcc). */
  cond(c: number): boolean {
    let r: boolean;
    const c2 = c >> 1, lop = this.lop;
    // Straight from the lazy operands after a 32-bit CMP/SUB or logic op (int32; SF != OF
    // after a subtraction is a signed a < b), without materialising any flag.
    if (lop === LF_SUB && this.lsz === 2 && this.lcin === 0 && c2 !== 0 && c2 !== 5) {
      const x = this.la, y = this.lb;
      r = c2 === 2 ? x === y : c2 === 1 ? (x ^ MIN) < (y ^ MIN) : c2 === 3 ? (x ^ MIN) <= (y ^ MIN) :
        c2 === 4 ? this.lres < 0 : c2 === 6 ? x < y : x <= y;
      return (c & 1) ? !r : r;
    }
    if (lop === LF_LOGIC && this.lsz === 2 && c2 !== 5) {
      const v = this.lres;
      r = c2 <= 1 ? false : c2 <= 3 ? v === 0 : c2 === 7 ? v <= 0 : v < 0;
      return (c & 1) ? !r : r;
    }
    switch (c2) {
      case 0: r = this.of(); break;
      case 1: r = this.cf() !== 0; break;
      case 2: r = this.zf(); break;
      case 3: r = this.cf() !== 0 || this.zf(); break;
      case 4: r = this.sf(); break;
      case 5: r = this.pf(); break;
      case 6: r = this.sf() !== this.of(); break;
      default: r = this.zf() || this.sf() !== this.of(); break;
    }
    return (c & 1) ? !r : r;
  }

  // =====================================================================================
  // ALU helpers (values are unsigned within their size; results likewise)
  // =====================================================================================

  alu(op: number, a: number, b: number, sz: number): number {
    const m = MASK[sz]!;
    let r: number;
    switch (op) {
      case 0: r = (a + b) & m; this.lop = LF_ADD; this.lcin = 0; break;
      case 1: r = (a | b) & m; this.lop = LF_LOGIC; break;
      case 2: { const c = this.cf(); r = (a + b + c) & m; this.lop = LF_ADD; this.lcin = c; break; }
      case 3: { const c = this.cf(); r = (a - b - c) & m; this.lop = LF_SUB; this.lcin = c; break; }
      case 4: r = (a & b) & m; this.lop = LF_LOGIC; break;
      case 5: case 7: r = (a - b) & m; this.lop = LF_SUB; this.lcin = 0; break;
      default: r = (a ^ b) & m; this.lop = LF_LOGIC; break;
    }
    this.la = a | 0; this.lb = b | 0; this.lres = r | 0; this.lsz = sz;
    return r >>> 0;
  }

  inc(a: number, sz: number): number {
    const cf = this.cf();
    this.eflags = (this.eflags & ~CF) | cf;
    const r = ((a + 1) & MASK[sz]!) >>> 0;
    this.lop = LF_INC; this.la = a | 0; this.lb = 1; this.lres = r | 0; this.lsz = sz;
    return r;
  }

  dec(a: number, sz: number): number {
    const cf = this.cf();
    this.eflags = (this.eflags & ~CF) | cf;
    const r = ((a - 1) & MASK[sz]!) >>> 0;
    this.lop = LF_DEC; this.la = a | 0; this.lb = 1; this.lres = r | 0; this.lsz = sz;
    return r;
  }

  /** Set SF/ZF/PF from a result with other arithmetic flags given explicitly. */
  setSZP(r: number, sz: number, cf: number, of: boolean, af = false): void {
    let f = 0;
    if (cf) f |= CF;
    if (of) f |= OF;
    if (af) f |= AF;
    if (((r & MASK[sz]!) >>> 0) === 0) f |= ZF;
    if (r & SIGN[sz]!) f |= SF;
    if (PARITY[r & 0xff]) f |= PF;
    this.setArith(f);
  }

  // =====================================================================================
  // Registers by size
  // =====================================================================================

  getReg(sz: number, r: number): number {
    if (sz === 2) return this.regs[r]!;
    if (sz === 1) return this.regs[r]! & 0xffff;
    return r < 4 ? this.regs[r]! & 0xff : (this.regs[r - 4]! >>> 8) & 0xff;
  }

  setReg(sz: number, r: number, v: number): void {
    if (sz === 2) this.regs[r] = v;
    else if (sz === 1) this.regs[r] = (this.regs[r]! & 0xffff0000) | (v & 0xffff);
    else if (r < 4) this.regs[r] = (this.regs[r]! & 0xffffff00) | (v & 0xff);
    else this.regs[r - 4] = (this.regs[r - 4]! & 0xffff00ff) | ((v & 0xff) << 8);
  }

  // =====================================================================================
  // Exceptions
  // =====================================================================================

  /** Abort the current instruction with exception `vec`. */
  fault(vec: number, err = -1): never {
    this.excVec = vec;
    this.excHasErr = err >= 0;
    this.excErr = err >= 0 ? err : 0;
    throw FAULT;
  }

  gp(err = 0): never { return this.fault(13, err); }
}
