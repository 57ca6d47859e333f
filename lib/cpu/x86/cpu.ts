/**
 * The i386 CPU core: architectural state, the memory path (segmentation, paging, software
 * TLB), exceptions and interrupt delivery, the block cache and the run loop.
 *
 * The core is a pure function of its state, guest memory and the bus: it reads no host time
 * and does no host I/O. The instruction counter `icount` counts retired instructions and is
 * exact at every point anything outside can observe it (see docs/ARCHITECTURE.md, "icount").
 */
import type { CpuBus } from "./bus.ts";
import type { IoSize } from "../../machine/device.ts";
import type { PhysMem } from "../../machine/ram.ts";
import { CS, DS, ES, FS, GS, SS, DecodeError, Insn, decode, REP_NONE } from "./decode.ts";
import { OPFLAGS, OpF } from "./optable.ts";
import { ARITH, AF, CF, DF, IF, LF_ADD, LF_DEC, LF_EAGER, LF_INC, LF_LOGIC, LF_SUB, MASK, NT, OF, PARITY, PF, RF, SF, SIGN, TF, VM, ZF, AC, ID, IOPL } from "./flags.ts";
import { exec, handlerFor, shift, type Handler } from "./exec.ts";
import { compileBlock, JIT_MAX_BLOCKS, JIT_THRESHOLD, type BlockFn, SH_SHL, SH_SHR, SH_SAR } from "./jit.ts";
import type { StateReader, StateWriter } from "../../machine/snapshot.ts";

export const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7;

/** Why run() returned. */
export const enum Stop {
  /** Executed exactly the requested number of instructions. */
  BUDGET = 0,
  /** Halted (HLT) with no interrupt deliverable. */
  HALT = 1,
  /** About to execute an instruction at a breakpoint address (not executed, not retired). */
  BREAKPOINT = 2,
  /** A watched location was accessed by the instruction just retired. */
  WATCH = 3,
  /** Triple fault: the machine must reset or stop. */
  SHUTDOWN = 4,
  /** Something outside asked the CPU to stop after the current instruction (device exit/reset). */
  REQUEST = 5,
  /** With stopOnDelivery: an interrupt or exception was just delivered (EIP at the handler). */
  DELIVERED = 6,
  /** Exceptions keep being delivered and no instruction retires (see FAULT_STORM). */
  STUCK = 7,
}

/** Thrown (as this singleton) to abort an instruction with an exception. */
export const FAULT = { fault: true };

const CR0_PE = 1, CR0_MP = 2, CR0_EM = 4, CR0_TS = 8, CR0_WP = 0x10000, CR0_PG = 0x80000000;
const CR4_PSE = 0x10;

/** Segment access-rights word: descriptor byte 5 in bits 0-7, flags nibble (G, D/B) in bits 12-15. */
const AR_P = 0x80, AR_S = 0x10, AR_CODE = 0x08, AR_DB = 0x4000, AR_G = 0x8000;

const TLB_ENTRIES = 1 << 20;
/**
 * Deliveries within one run() call with no instruction retired before run() gives up with
 * Stop.STUCK: a handler that faults again at once retires nothing and would freeze virtual
 * time (a real CPU hangs there too). Host-side only: it changes no guest state.
 */
const FAULT_STORM = 100_000;
/** runTranslated results besides a Stop. */
const RT_CONTINUE = -2, RT_NOT_RUN = -1;
const MAX_BLOCK = 64;
const L1_BITS = 14;

/**
 * The interpreter's view of the block cache: every block also has a header and one fixed-size
 * record per instruction in one shared Int32Array (Cpu.uc), so the interpreted path reads a
 * few contiguous words per block and per instruction instead of an object graph, follows
 * successor links between headers, and runs the common 32-bit forms inline in run() (K
 * below). Anything else is K.GEN: the instruction's handler. The Block objects stay the
 * source of truth; the header mirrors what the interpreter needs of them.
 * Header (UHDR words, at Block.u):
 *   h+0: instruction count   h+1: 0 when invalid, else 1 + executions (saturating, see run()),
 *   or -1 once past the translation threshold without translated code (interpreted for good)
 *   h+2..3: successor-link epoch (a float64)   h+4, h+5: eip and header of successor 1
 *   h+6, h+7: eip and header of successor 2 (an empty slot points at the header at 0, which
 *   is never valid)
 * Record (UREC words per instruction, after the header):
 *   w0: kind | len << 8 | x << 12 | y << 16 | base << 20 | index << 24 | scale << 28
 *       (x: ALU op, condition or destination register; y: register operand;
 *        base, index: register or 8 for none)
 *   w1: immediate   w2: displacement   w3: segment of the memory operand
 */
const UHDR = 8, UREC = 4;
/** w0 bit 31 on an ADD/SUB/LOGIC register record: its flags are dead (markDeadFlags). */
const DEAD_FLAGS = 1 << 31;
const enum K {
  GEN, ALU_RR, ALU_RI, ALU_RM, ALU_MR, ALU_MI, MOV_RR, MOV_RI, MOV_RM, MOV_MR, MOV_MI, LEA,
  INC, DEC, PUSH, POP, JMP, JCC, TEST_RR, TEST_RM, CALL, RET,
  // ALU_RR and ALU_RI split by operation (ADC and SBB stay in the generic kinds).
  ADD_RR, SUB_RR, LOGIC_RR, CMP_RR, ADD_RI, SUB_RI, LOGIC_RI, CMP_RI,
  // Shift group on a register (count in w1, -1 for CL); MOVZX/MOVSX (variant in w0 bits 30-31:
  // 0 zx8, 1 zx16, 2 sx8, 3 sx16); byte MOV to and from memory; SETcc; CMOVcc (register
  // source in the base field).
  SHIFT_R, MOVX_R, MOVX_M, MOV8_MR, MOV8_RM, SETCC_R, SETCC_M, CMOV_RR, CMOV_RM,
}

/** Fill the interpreter record for `i` (a 32-bit code block) at uc[p..p+3]. */
function encodeRec(i: Insn, code32: boolean, uc: Int32Array, p: number): void {
  let k = K.GEN, x = 0, y = 0, base = 8, index = 8, scale = 0, imm = 0, disp = 0, seg = 0, variant = 0;
  const op = i.op, mem = i.mod !== 3;
  if (code32 && i.o32 && i.a32 && i.rep === REP_NONE && !i.lock) {
    if (op < 0x40 && (op & 7) < 6) {
      // x: the ALU op. Register forms: destination in the base field, source in y.
      const form = op & 7;
      x = op >> 3;
      if (form === 1) { if (mem) { k = K.ALU_MR; y = i.reg; } else { k = K.ALU_RR; base = i.rm; y = i.reg; } }
      else if (form === 3) { if (mem) { k = K.ALU_RM; y = i.reg; } else { k = K.ALU_RR; base = i.reg; y = i.rm; } }
      else if (form === 5) { k = K.ALU_RI; base = 0; imm = i.imm; }
    } else if (op >= 0x40 && op <= 0x47) { k = K.INC; x = op & 7; }
    else if (op >= 0x48 && op <= 0x4f) { k = K.DEC; x = op & 7; }
    else if (op >= 0x50 && op <= 0x57) { k = K.PUSH; x = op & 7; }
    else if (op >= 0x58 && op <= 0x5f) { k = K.POP; x = op & 7; }
    else if ((op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f)) { k = K.JCC; x = op & 0xf; imm = i.imm; }
    else if (op >= 0xb8 && op <= 0xbf) { k = K.MOV_RI; x = op & 7; imm = i.imm; }
    else {
      switch (op) {
        case 0x81: case 0x83:
          x = i.reg;
          imm = op === 0x83 ? (i.imm << 24) >> 24 : i.imm;
          if (mem) k = K.ALU_MI; else { k = K.ALU_RI; base = i.rm; }
          break;
        case 0x85: k = mem ? K.TEST_RM : K.TEST_RR; y = i.reg; x = i.rm; break;
        case 0x89: if (mem) k = K.MOV_MR; else { k = K.MOV_RR; x = i.rm; } y = i.reg; break;
        case 0x8b: if (mem) k = K.MOV_RM; else { k = K.MOV_RR; y = i.rm; } x = i.reg; break;
        case 0x8d: if (mem) { k = K.LEA; x = i.reg; } break;
        case 0xc7: if (i.reg === 0) { imm = i.imm; if (mem) k = K.MOV_MI; else { k = K.MOV_RI; x = i.rm; } } break;
        case 0xe9: case 0xeb: k = K.JMP; imm = i.imm; break;
        case 0xe8: k = K.CALL; imm = i.imm; break;
        case 0xc3: k = K.RET; break;
        case 0xc1: case 0xd1: case 0xd3:
          if (!mem) { k = K.SHIFT_R; x = i.reg; y = i.rm; imm = op === 0xc1 ? i.imm : op === 0xd1 ? 1 : -1; }
          break;
        case 0x1b6: case 0x1b7: case 0x1be: case 0x1bf:
          variant = (op & 1) | (op >= 0x1be ? 2 : 0);
          x = i.reg;
          if (mem) k = K.MOVX_M; else { k = K.MOVX_R; y = i.rm; }
          break;
        case 0x88: if (mem) { k = K.MOV8_MR; y = i.reg; } break;
        case 0x8a: if (mem) { k = K.MOV8_RM; x = i.reg; } break;
        default:
          if (op >= 0x190 && op <= 0x19f) { x = op & 0xf; if (mem) k = K.SETCC_M; else { k = K.SETCC_R; y = i.rm; } }
          else if (op >= 0x140 && op <= 0x14f) { x = op & 0xf; y = i.reg; if (mem) k = K.CMOV_RM; else { k = K.CMOV_RR; base = i.rm; } }
      }
    }
    if (mem && (k === K.ALU_RM || k === K.ALU_MR || k === K.ALU_MI || k === K.MOV_RM || k === K.MOV_MR ||
        k === K.MOV_MI || k === K.LEA || k === K.TEST_RM || k === K.MOVX_M || k === K.MOV8_MR ||
        k === K.MOV8_RM || k === K.SETCC_M || k === K.CMOV_RM)) {
      base = i.base >= 0 ? i.base : 8;
      index = i.index >= 0 ? i.index : 8;
      scale = i.scale;
      disp = i.disp;
      seg = i.seg >= 0 ? i.seg : i.defSeg;
    }
  }
  if (k === K.ALU_RR || k === K.ALU_RI) {
    const rr = k === K.ALU_RR;
    if (x === 0) k = rr ? K.ADD_RR : K.ADD_RI;
    else if (x === 5) k = rr ? K.SUB_RR : K.SUB_RI;
    else if (x === 7) k = rr ? K.CMP_RR : K.CMP_RI;
    else if (x === 1 || x === 4 || x === 6) k = rr ? K.LOGIC_RR : K.LOGIC_RI;
  }
  uc[p] = k | (i.len << 8) | (x << 12) | (y << 16) | (base << 20) | (index << 24) | (scale << 28) | (variant << 30);
  uc[p + 1] = imm; uc[p + 2] = disp; uc[p + 3] = seg;
}

/**
 * Set DEAD_FLAGS on the ADD/SUB/logic register records whose lazy-flag update no one can see:
 * the next record in the block overwrites every arithmetic flag without reading any, and it
 * cannot fault (so no exception frame sees the flags in between). interp() still writes the
 * flags when the record is the last one it runs (a stop after it sees them).
 */
function markDeadFlags(uc: Int32Array, p: number, n: number): void {
  for (let k = 0; k + 1 < n; k++, p += UREC) {
    const a = uc[p]! & 0xff, b = uc[p + UREC]! & 0xff;
    if ((a === K.ADD_RR || a === K.ADD_RI || a === K.SUB_RR || a === K.SUB_RI || a === K.LOGIC_RR || a === K.LOGIC_RI) &&
        (b === K.ADD_RR || b === K.ADD_RI || b === K.SUB_RR || b === K.SUB_RI || b === K.LOGIC_RR || b === K.LOGIC_RI ||
         b === K.CMP_RR || b === K.CMP_RI || b === K.TEST_RR)) uc[p] = uc[p]! | DEAD_FLAGS;
  }
}

export interface Block {
  insns: Insn[];
  n: number;
  phys: number;
  physEnd: number;
  code32: boolean;
  /** Physical address of the second page's start if the block crosses a page, else -1. */
  phys2: number;
  valid: boolean;
  /** Translated code (after JIT_THRESHOLD executions), or null. */
  fn: BlockFn | null;
  /** For `fn`: each fault index's offset from the entry EIP and index in its block (jit.ts). */
  jitOff: Int32Array | null;
  jitIdx: Int32Array | null;
  /** `fn` is a region (runs other blocks of this page too). */
  region: boolean;
  /** Successor cache (two slots: taken and fall-through), valid for one chain epoch. */
  s1: Block | null;
  s1Eip: number;
  s2: Block | null;
  s2Eip: number;
  sEpoch: number;
  /** Offset of the block's interpreter records in Cpu.uc (UREC words per instruction). */
  u?: number;
}

export interface Watchpoint {
  type: 2 | 3 | 4; // write, read, access (gdb Z2/Z3/Z4)
  addr: number;
  len: number;
}

export class Cpu {
  // ---- architectural state ----
  readonly regs = new Uint32Array(8);
  /** The same registers as int32 (the interpreter's inline forms: no doubles for values >= 2^31). */
  private readonly regsI = new Int32Array(this.regs.buffer);
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
  readonly segBase = new Uint32Array(6);
  /** The same, as int32 (the interpreter's address arithmetic). */
  private readonly segBaseI = new Int32Array(this.segBase.buffer);
  readonly segLimit = new Uint32Array(6);
  readonly segAr = new Uint16Array(6);
  /** 1 when accesses through this segment need no limit/rights check (flat, present, RW). */
  readonly segFast = new Uint8Array(6);
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
  /** Disable the block translator (interpreter only). */
  noJit = false;
  /** Executions of a block before it is translated (tests set 1 to translate everything). */
  jitThreshold = JIT_THRESHOLD;
  /** Do not skip the iterations of polling loops that have reached a fixed point (jit.ts). */
  noSpinSkip = false;
  /** Index, in the running translated block, of the instruction that may fault next. */
  ci = 0;
  /** icount at the start of the running translated block. */
  jitBase = 0;
  /** Instructions retired by earlier iterations of a self-looping translated block. */
  jitDone = 0;

  readonly ram: Uint8Array;
  private readonly ramLen: number;
  // Software TLB: index = linear page, value = physical page + 1 (0 = miss). Only RAM pages.
  private readonly tlbSR = new Uint32Array(TLB_ENTRIES);
  private readonly tlbSW = new Uint32Array(TLB_ENTRIES);
  private readonly tlbUR = new Uint32Array(TLB_ENTRIES);
  private readonly tlbUW = new Uint32Array(TLB_ENTRIES);
  /** The TLBs for the current privilege level (read by translated code). */
  tlbR: Uint32Array;
  tlbW: Uint32Array;
  private readonly tlbUsed = new Int32Array(4096);
  private tlbUsedN = 0;

  // Block cache.
  private readonly blocks = new Map<number, Block>();
  private readonly l1 = new Array<Block | null>(1 << L1_BITS).fill(null);
  private readonly pageBlocks = new Map<number, Block[]>();
  private curBlock: Block | null = null;
  /** The block that ran last (for the successor cache) and the epoch of all successor links. */
  private prevBlock: Block | null = null;
  private chainEpoch = 0;
  private readonly fetchInsn = new Insn();
  /** Interpreter headers and records of all blocks (see UHDR), bump-allocated from ucTop. */
  private uc = new Int32Array(1 << 16);
  /** The same store as float64 (the link epochs). */
  private ucf = new Float64Array(this.uc.buffer);
  private ucTop = UHDR;
  /** The Block of each header: ublk[h >> 2]. */
  private ublk: (Block | null)[] = new Array<Block | null>((1 << 16) >> 2).fill(null);
  /** Header of the block that ran last (the successor links' source), or -1. */
  private prevH = -1;
  /** Header of the block being interpreted, or -1. */
  private curH = -1;
  /** RAM as aligned 32-bit words (little-endian host), for aligned accesses. */
  private readonly ram32: Int32Array;
  private decodeLin = 0;
  /** The page translation of the last instruction fetch, valid while one block is decoded. */
  private fetchLinPage = -1;
  private fetchPhysPage = 0;
  private decodeUser = false;
  /** Statistics (not state). */
  blocksBuilt = 0;
  /** Translated blocks created since the block cache was last flushed. */
  translated = 0;
  /** Instructions retired by skipping iterations of fixed-point polling loops (jit.ts). */
  spinSkipped = 0;

  constructor(readonly bus: CpuBus, readonly mem: PhysMem) {
    this.ram = mem.ram;
    this.ramLen = mem.ram.length;
    if ((mem.ram.byteOffset & 3) !== 0) throw new Error("RAM must be 4-byte aligned");
    this.ram32 = new Int32Array(mem.ram.buffer, mem.ram.byteOffset, mem.ram.length >>> 2);
    this.tlbR = this.tlbSR;
    this.tlbW = this.tlbSW;
    mem.onRevokeFastWrite = () => this.flushWriteTlb();
    this.reset();
  }

  // =====================================================================================
  // Reset and mode bookkeeping
  // =====================================================================================

  reset(): void {
    this.regs.fill(0);
    this.regs[EDX] = 0x00000543; // family 5, model 4, stepping 3
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
    this.modeChanged();
  }

  /** Recompute everything derived from segment caches, CR0/CR4 and CPL. */
  modeChanged(): void {
    this.code32 = (this.segAr[CS]! & AR_DB) !== 0 && this.pe();
    this.stack32 = (this.segAr[SS]! & AR_DB) !== 0 && this.pe();
    for (let s = 0; s < 6; s++) this.updateSegFast(s);
    this.flushTlb();
  }

  pe(): boolean { return (this.cr0 & CR0_PE) !== 0; }
  paging(): boolean { return (this.cr0 & CR0_PG) !== 0 && this.pe(); }

  private updateSegFast(s: number): void {
    const ar = this.segAr[s]!;
    // Fast: present data segment, writable, expand-up, limit 4G. CS (never writable) is never fast.
    this.segFast[s] = (ar & (AR_P | AR_S | AR_CODE | 0x06)) === (AR_P | AR_S | 0x02) && this.segLimit[s] === 0xffffffff ? 1 : 0;
  }

  setA20(on: boolean): void {
    const m = on ? 0xffffffff : 0xffefffff;
    if (m !== this.a20Mask) { this.a20Mask = m; this.flushTlb(); }
  }

  // =====================================================================================
  // Lazy flags
  // =====================================================================================

  cf(): number {
    switch (this.lop) {
      case LF_EAGER: case LF_INC: case LF_DEC: return this.eflags & CF;
      case LF_ADD: return (this.la >>> 0) + (this.lb >>> 0) + this.lcin > MASK[this.lsz]! ? 1 : 0;
      case LF_SUB: return (this.la >>> 0) < (this.lb >>> 0) + this.lcin ? 1 : 0;
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
   * shift (SH_SHL, SH_SHR, SH_SAR; a = the int32 value shifted, b = count 1-31, r = result)
   * evaluated as the interpreter does.
   */
  jitFlags(k: number, a: number, b: number, r: number, sz: number, cin: number): void {
    if (k < SH_SHL) {
      this.lop = k; this.la = a | 0; this.lb = b | 0; this.lres = r | 0; this.lsz = sz; this.lcin = cin;
      return;
    }
    this.shiftFlags32(k, a, b, r);
  }

  /**
   * Flags of a 32-bit shift by 1-31 (k: SH_SHL, SH_SHR, SH_SAR; a: the value shifted, r: the
   * result, both int32), as shift() computes them: for translated code and interp().
   */
  private shiftFlags32(k: number, a: number, cnt: number, r: number): void {
    let cf: number, of: boolean;
    if (k === SH_SHL) { cf = (a >>> (32 - cnt)) & 1; of = ((r >>> 31) ^ cf) !== 0; }
    else if (k === SH_SHR) { cf = (a >>> (cnt - 1)) & 1; of = a < 0; }
    else { cf = (a >> (cnt - 1)) & 1; of = false; }
    this.setSZP(r | 0, 2, cf, of);
  }

  /** Materialise lazy flags into eflags (before a partial flag update). */
  materialise(): void {
    if (this.lop !== LF_EAGER) { this.eflags = this.getFlags(); this.lop = LF_EAGER; }
  }

  /** Set EFLAGS wholesale (no privilege checks: callers apply those). */
  setFlags(f: number): void {
    const oldIF = this.eflags & IF;
    this.eflags = ((f & 0x3f7fd5) | 2) >>> 0;
    this.lop = LF_EAGER;
    if (this.eflags & VM) {
      // Virtual-8086 mode is not supported yet: treat as a #GP at the next instruction.
      this.eflags &= ~VM;
    }
    void oldIF;
  }

  /** Evaluate condition code 0-15 (the low nibble of Jcc/SETcc/CMOVcc). */
  cond(c: number): boolean {
    let r: boolean;
    const c2 = c >> 1, lop = this.lop;
    // Straight from the lazy operands after a 32-bit CMP/SUB or logic op (int32; SF != OF
    // after a subtraction is a signed a < b), without materialising any flag.
    if (lop === LF_SUB && this.lsz === 2 && this.lcin === 0 && c2 !== 0 && c2 !== 5) {
      const x = this.la, y = this.lb;
      r = c2 === 2 ? x === y : c2 === 1 ? (x >>> 0) < (y >>> 0) : c2 === 3 ? (x >>> 0) <= (y >>> 0) :
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

  // =====================================================================================
  // Memory: segmentation
  // =====================================================================================

  /** Effective address (offset) of a ModRM memory operand. */
  ea(i: Insn): number {
    let a = i.disp;
    if (i.base >= 0) a += this.regs[i.base]!;
    if (i.index >= 0) a += this.regs[i.index]! << i.scale;
    return i.a32 ? a >>> 0 : a & 0xffff;
  }

  /** Segment of a ModRM memory operand. */
  seg(i: Insn): number { return i.seg >= 0 ? i.seg : i.defSeg; }

  /** Linear address for an access of `size` bytes at seg:off, with limit and rights checks. */
  lin(s: number, off: number, size: number, write: boolean): number {
    if (this.segFast[s]) return (this.segBase[s]! + off) >>> 0;
    return this.linSlow(s, off, size, write);
  }

  private linSlow(s: number, off: number, size: number, write: boolean): number {
    const ar = this.segAr[s]!;
    const fv = s === SS ? 12 : 13;
    if (this.pe()) {
      if ((this.sel[s]! & 0xfffc) === 0 && s !== CS && s !== SS) this.fault(fv, 0);
      if (!(ar & AR_P)) this.fault(fv, 0);
      if (ar & AR_CODE) {
        if (write && s !== -1) this.fault(fv, 0);
        if (!write && !(ar & 0x02) && s !== CS) this.fault(fv, 0);
      } else if (write && !(ar & 0x02)) this.fault(fv, 0);
    }
    const lim = this.segLimit[s]!;
    const last = off + size - 1;
    if (!(ar & AR_CODE) && (ar & 0x04)) {
      // Expand-down: valid offsets are (limit, 0xFFFF or 0xFFFFFFFF].
      const top = ar & AR_DB ? 0xffffffff : 0xffff;
      if (off <= lim || last > top) this.fault(fv, 0);
    } else if (last > lim) this.fault(fv, 0);
    return (this.segBase[s]! + off) >>> 0;
  }

  /** The interpreter's effective address from a record (see UREC): w0 and the displacement. */
  private uea(w: number, disp: number): number { return this.ueaI(w, disp) >>> 0; }
  /** The same as int32 (interp()'s inline memory forms). */
  private ueaI(w: number, disp: number): number {
    const ri = this.regsI, b = (w >>> 20) & 15, x = (w >>> 24) & 15;
    let a = disp;
    if (b < 8) a = (a + ri[b]!) | 0;
    if (x < 8) a = (a + (ri[x]! << ((w >>> 28) & 3))) | 0;
    return a;
  }
  /** rd32/wr32 with the aligned RAM case first (the interpreter's inline memory path). */
  private ur32(s: number, off: number): number {
    const l = this.segFast[s] !== 0 ? (this.segBase[s]! + off) >>> 0 : this.linSlow(s, off, 4, false);
    const e = this.tlbR[l >>> 12]!;
    if (e !== 0 && (l & 3) === 0) return this.ram32[(((e - 1) << 12) | (l & 0xfff)) >>> 2]! >>> 0;
    return this.rl32(l);
  }
  private uw32(s: number, off: number, v: number): void {
    const l = this.segFast[s] !== 0 ? (this.segBase[s]! + off) >>> 0 : this.linSlow(s, off, 4, true);
    const e = this.tlbW[l >>> 12]!;
    if (e !== 0 && (l & 3) === 0) { this.ram32[(((e - 1) << 12) | (l & 0xfff)) >>> 2] = v; return; }
    this.wl32(l, v);
  }

  // Memory operand accessors by segment:offset.
  rd8(s: number, off: number): number { return this.rl8(this.lin(s, off, 1, false)); }
  rd16(s: number, off: number): number { return this.rl16(this.lin(s, off, 2, false)); }
  rd32(s: number, off: number): number { return this.rl32(this.lin(s, off, 4, false)); }
  rd(sz: number, s: number, off: number): number {
    return sz === 2 ? this.rd32(s, off) : sz === 1 ? this.rd16(s, off) : this.rd8(s, off);
  }
  wr8(s: number, off: number, v: number): void { this.wl8(this.lin(s, off, 1, true), v); }
  wr16(s: number, off: number, v: number): void { this.wl16(this.lin(s, off, 2, true), v); }
  wr32(s: number, off: number, v: number): void { this.wl32(this.lin(s, off, 4, true), v); }
  wr(sz: number, s: number, off: number, v: number): void {
    if (sz === 2) this.wr32(s, off, v); else if (sz === 1) this.wr16(s, off, v); else this.wr8(s, off, v);
  }

  // =====================================================================================
  // Memory: linear accesses through the TLB
  // =====================================================================================

  rl8(l: number): number {
    const e = this.tlbR[l >>> 12]!;
    if (e !== 0) return this.ram[((e - 1) << 12) | (l & 0xfff)]!;
    return this.rl8Slow(l);
  }
  private rl8Slow(l: number): number {
    return this.physRead8(this.xlate(l, false, this.cpl === 3), l);
  }
  rl16(l: number): number {
    const e = this.tlbR[l >>> 12]!, o = l & 0xfff;
    if (e !== 0 && o <= 0xffe) {
      const p = ((e - 1) << 12) | o, r = this.ram;
      return r[p]! | (r[p + 1]! << 8);
    }
    return this.rl8(l) | (this.rl8((l + 1) >>> 0) << 8);
  }
  rl32(l: number): number {
    const e = this.tlbR[l >>> 12]!, o = l & 0xfff;
    if (e !== 0 && o <= 0xffc) {
      const p = ((e - 1) << 12) | o, r = this.ram;
      return (r[p]! | (r[p + 1]! << 8) | (r[p + 2]! << 16) | (r[p + 3]! << 24)) >>> 0;
    }
    return this.rl32Slow(l);
  }
  private rl32Slow(l: number): number {
    if ((l & 0xfff) <= 0xffc) {
      const p = this.xlate(l, false, this.cpl === 3);
      return (this.physRead8(p, l) | (this.physRead8(p + 1, l + 1) << 8) | (this.physRead8(p + 2, l + 2) << 16) | (this.physRead8(p + 3, l + 3) << 24)) >>> 0;
    }
    return (this.rl16(l) | (this.rl16((l + 2) >>> 0) << 16)) >>> 0;
  }
  wl8(l: number, v: number): void {
    const e = this.tlbW[l >>> 12]!;
    if (e !== 0) { this.ram[((e - 1) << 12) | (l & 0xfff)] = v; return; }
    this.wl8Slow(l, v);
  }
  private wl8Slow(l: number, v: number): void {
    this.physWrite8(this.xlate(l, true, this.cpl === 3), v, l);
  }
  wl16(l: number, v: number): void {
    const e = this.tlbW[l >>> 12]!, o = l & 0xfff;
    if (e !== 0 && o <= 0xffe) {
      const p = ((e - 1) << 12) | o, r = this.ram;
      r[p] = v; r[p + 1] = v >>> 8;
      return;
    }
    if (o > 0xffe) this.checkWritable((l + 1) >>> 0);
    this.wl8(l, v);
    this.wl8((l + 1) >>> 0, v >>> 8);
  }
  wl32(l: number, v: number): void {
    const e = this.tlbW[l >>> 12]!, o = l & 0xfff;
    if (e !== 0 && o <= 0xffc) {
      const p = ((e - 1) << 12) | o, r = this.ram;
      r[p] = v; r[p + 1] = v >>> 8; r[p + 2] = v >>> 16; r[p + 3] = v >>> 24;
      return;
    }
    this.wl32Slow(l, v);
  }
  private wl32Slow(l: number, v: number): void {
    const o = l & 0xfff;
    // A page-crossing write faults before any byte is written: lower page first, and CR2 is
    // the first byte of the access inside the faulting page.
    this.xlate(l, true, this.cpl === 3);
    if (o > 0xffc) this.checkWritable(((l + 3) & ~0xfff) >>> 0);
    this.wl8(l, v); this.wl8((l + 1) >>> 0, v >>> 8); this.wl8((l + 2) >>> 0, v >>> 16); this.wl8((l + 3) >>> 0, v >>> 24);
  }
  private checkWritable(l: number): void {
    this.xlate(l, true, this.cpl === 3);
  }

  /** Supervisor (system-structure) accesses: descriptor tables, TSS, IDT. */
  rs32(l: number): number {
    const saved = this.cpl;
    this.cpl = 0; this.tlbR = this.tlbSR;
    try { return this.rl32(l); } finally { this.cpl = saved; this.tlbR = saved === 3 ? this.tlbUR : this.tlbSR; }
  }
  rs16(l: number): number {
    const saved = this.cpl;
    this.cpl = 0; this.tlbR = this.tlbSR;
    try { return this.rl16(l); } finally { this.cpl = saved; this.tlbR = saved === 3 ? this.tlbUR : this.tlbSR; }
  }
  ws8(l: number, v: number): void {
    const saved = this.cpl;
    this.cpl = 0; this.tlbW = this.tlbSW;
    try { this.wl8(l, v); } finally { this.cpl = saved; this.tlbW = saved === 3 ? this.tlbUW : this.tlbSW; }
  }

  physRead8(p: number, lin: number): number {
    if (this.watchpoints.length) this.checkWatch(lin, 1, false);
    if (p < this.ramLen) return this.ram[p]!;
    return this.bus.physRead8(p) & 0xff;
  }

  physWrite8(p: number, v: number, lin: number): void {
    if (this.watchpoints.length) this.checkWatch(lin, 1, true);
    if (p < this.ramLen) {
      const pg = p >>> 12, mem = this.mem;
      if (mem.readonly[pg]) return;
      mem.markDirty(pg);
      if (mem.code[pg]) this.invalidateCodeAt(p);
      this.ram[p] = v;
      return;
    }
    this.bus.physWrite8(p, v & 0xff);
  }

  /** Physical read for the page walker and loaders (no watch checks). */
  private pr32(p: number): number {
    p >>>= 0;
    if (p + 3 < this.ramLen) {
      const r = this.ram;
      return (r[p]! | (r[p + 1]! << 8) | (r[p + 2]! << 16) | (r[p + 3]! << 24)) >>> 0;
    }
    return (this.bus.physRead8(p) | (this.bus.physRead8(p + 1) << 8) | (this.bus.physRead8(p + 2) << 16) | (this.bus.physRead8(p + 3) << 24)) >>> 0;
  }
  private pw32(p: number, v: number): void {
    p >>>= 0;
    if (p + 3 < this.ramLen) {
      const pg = p >>> 12;
      if (this.mem.readonly[pg]) return;
      this.mem.markDirty(pg);
      if (this.mem.code[pg]) this.invalidateCodeAt(p);
      const r = this.ram;
      r[p] = v; r[p + 1] = v >>> 8; r[p + 2] = v >>> 16; r[p + 3] = v >>> 24;
    }
  }

  /**
   * Translate a linear address (page walk on a TLB miss), raising #PF. Fills the TLB when the
   * page is plain RAM (and, for writes, when the write fast path is allowed on it).
   */
  xlate(l: number, write: boolean, user: boolean): number {
    l >>>= 0;
    let phys: number;
    if (!this.paging()) {
      phys = (l & this.a20Mask) >>> 0;
    } else {
      const pdeA = ((this.cr3 & 0xfffff000) + ((l >>> 22) << 2)) >>> 0;
      const pde = this.pr32(pdeA);
      const wp = (this.cr0 & CR0_WP) !== 0;
      const err = (write ? 2 : 0) | (user ? 4 : 0);
      if (!(pde & 1)) this.pageFault(l, err);
      if ((pde & 0x80) && (this.cr4 & CR4_PSE)) {
        if (user && !(pde & 4)) this.pageFault(l, err | 1);
        if (write && !(pde & 2) && (user || wp)) this.pageFault(l, err | 1);
        const npde = pde | 0x20 | (write ? 0x40 : 0);
        if (npde !== pde) this.pw32(pdeA, npde);
        phys = ((pde & 0xffc00000) | (l & 0x3fffff)) >>> 0;
      } else {
        const pteA = ((pde & 0xfffff000) + (((l >>> 12) & 0x3ff) << 2)) >>> 0;
        const pte = this.pr32(pteA);
        if (!(pte & 1)) this.pageFault(l, err);
        const perm = pde & pte;
        if (user && !(perm & 4)) this.pageFault(l, err | 1);
        if (write && !(perm & 2) && (user || wp)) this.pageFault(l, err | 1);
        if (!(pde & 0x20)) this.pw32(pdeA, pde | 0x20);
        const npte = pte | 0x20 | (write ? 0x40 : 0);
        if (npte !== pte) this.pw32(pteA, npte);
        phys = ((pte & 0xfffff000) | (l & 0xfff)) >>> 0;
      }
      phys = (phys & this.a20Mask) >>> 0;
    }
    if (phys < this.ramLen && this.watchpoints.length === 0) {
      const pg = phys >>> 12, lp = l >>> 12;
      if (write) {
        // The write fast path needs the page dirty everywhere: mark it now (the caller writes).
        if (!this.mem.readonly[pg] && !this.mem.code[pg] && !this.mem.watched[pg]) {
          this.mem.markDirty(pg);
          const t = user ? this.tlbUW : this.tlbSW;
          if (t[lp] === 0) this.tlbNote(lp);
          t[lp] = pg + 1;
        }
      } else {
        // Block links (chainEpoch) assume a linear page's read entry changes only through a
        // flush: a walk that finds a new mapping for a cached page drops them too.
        const t = user ? this.tlbUR : this.tlbSR, o = t[lp]!;
        if (o !== pg + 1) {
          if (o === 0) this.tlbNote(lp); else this.chainEpoch++;
          t[lp] = pg + 1;
        }
      }
    }
    return phys;
  }

  private pageFault(l: number, err: number): never {
    this.cr2 = l >>> 0;
    return this.fault(14, err);
  }

  private tlbNote(lp: number): void {
    if (this.tlbUsedN < this.tlbUsed.length) this.tlbUsed[this.tlbUsedN++] = lp;
    else this.tlbUsedN = this.tlbUsed.length + 1; // overflowed: flush clears everything
  }

  flushTlb(): void {
    this.chainEpoch++;
    if (this.tlbUsedN > this.tlbUsed.length) {
      this.tlbSR.fill(0); this.tlbSW.fill(0); this.tlbUR.fill(0); this.tlbUW.fill(0);
    } else {
      for (let i = 0; i < this.tlbUsedN; i++) {
        const lp = this.tlbUsed[i]!;
        this.tlbSR[lp] = 0; this.tlbSW[lp] = 0; this.tlbUR[lp] = 0; this.tlbUW[lp] = 0;
      }
    }
    this.tlbUsedN = 0;
    this.tlbR = this.cpl === 3 ? this.tlbUR : this.tlbSR;
    this.tlbW = this.cpl === 3 ? this.tlbUW : this.tlbSW;
  }

  flushWriteTlb(): void {
    if (this.tlbUsedN > this.tlbUsed.length) { this.flushTlb(); return; }
    for (let i = 0; i < this.tlbUsedN; i++) {
      const lp = this.tlbUsed[i]!;
      this.tlbSW[lp] = 0; this.tlbUW[lp] = 0;
    }
  }

  invlpg(l: number): void {
    this.chainEpoch++;
    const lp = l >>> 12;
    this.tlbSR[lp] = 0; this.tlbSW[lp] = 0; this.tlbUR[lp] = 0; this.tlbUW[lp] = 0;
  }

  setCpl(c: number): void {
    this.cpl = c;
    this.tlbR = c === 3 ? this.tlbUR : this.tlbSR;
    this.tlbW = c === 3 ? this.tlbUW : this.tlbSW;
  }

  // =====================================================================================
  // Debugger support: linear memory access without side effects on A/D bits is not
  // possible on x86 hardware either; we translate without touching A/D bits here.
  // =====================================================================================

  /** Translate for the debugger: no faults, no A/D updates. Returns -1 if unmapped. */
  debugXlate(l: number): number {
    l >>>= 0;
    if (!this.paging()) return (l & this.a20Mask) >>> 0;
    const pde = this.pr32(((this.cr3 & 0xfffff000) + ((l >>> 22) << 2)) >>> 0);
    if (!(pde & 1)) return -1;
    if ((pde & 0x80) && (this.cr4 & CR4_PSE)) return (((pde & 0xffc00000) | (l & 0x3fffff)) & this.a20Mask) >>> 0;
    const pte = this.pr32(((pde & 0xfffff000) + (((l >>> 12) & 0x3ff) << 2)) >>> 0);
    if (!(pte & 1)) return -1;
    return (((pte & 0xfffff000) | (l & 0xfff)) & this.a20Mask) >>> 0;
  }

  // =====================================================================================
  // Watchpoints and breakpoints
  // =====================================================================================

  private checkWatch(lin: number, size: number, write: boolean): void {
    for (const w of this.watchpoints) {
      if (w.type === 2 && !write) continue;
      if (w.type === 3 && write) continue;
      if (lin + size > w.addr && lin < w.addr + w.len) {
        if (!this.watchHit) this.watchHit = { type: w.type, addr: w.addr };
        this.brk = Stop.WATCH;
      }
    }
  }

  setWatchpoints(list: Watchpoint[]): void {
    this.watchpoints.length = 0;
    this.watchpoints.push(...list);
    this.flushTlb();
  }

  setBreakpoints(addrs: Iterable<number>): void {
    this.breakpoints.clear();
    for (const a of addrs) this.breakpoints.add(a >>> 0);
    this.flushBlocks();
  }

  // =====================================================================================
  // Block cache
  // =====================================================================================

  flushBlocks(): void {
    this.translated = 0;
    this.chainEpoch++;
    this.prevBlock = null;
    for (const b of this.blocks.values()) b.valid = false;
    this.blocks.clear();
    this.l1.fill(null);
    this.ucTop = UHDR;
    this.prevH = -1;
    this.ublk.fill(null);
    for (const pg of this.pageBlocks.keys()) this.mem.code[pg] = 0;
    this.pageBlocks.clear();
    this.flushWriteTlb();
  }

  /** A guest write hit a page holding translated code: drop the blocks that cover it. */
  private invalidateCodeAt(p: number): void {
    const pg = p >>> 12;
    const list = this.pageBlocks.get(pg);
    if (!list) { this.mem.code[pg] = 0; return; }
    let keep: Block[] | null = null;
    let hit = false;
    for (const b of list) {
      if (!b.valid) continue;
      const covers = (p >= b.phys && p < b.physEnd) || (b.phys2 >= 0 && p >= b.phys2 && p < b.phys2 + 4096);
      if (covers) {
        hit = true;
        b.valid = false;
        if (this.ublk[b.u! >> 2] === b) this.uc[b.u! + 1] = 0;
        if (b.fn !== null) { b.fn = null; this.translated--; }
        this.blocks.delete(b.phys * 2 + (b.code32 ? 1 : 0));
        if (b === this.curBlock || b.u === this.curH) this.brk = this.brk || 1;
      } else (keep ??= []).push(b);
    }
    // A region runs other blocks of its page: any block of the page dropped drops the regions
    // headed there (the running one stops after this instruction), to be translated again later.
    if (hit && keep) {
      for (const b of keep) {
        if (!b.region) continue;
        b.fn = null; b.region = false; this.translated--;
        if (this.ublk[b.u! >> 2] === b && this.uc[b.u! + 1]! !== 0) this.uc[b.u! + 1] = 1; // counted again to the threshold
        if (b === this.curBlock) this.brk = this.brk || 1;
      }
    }
    if (keep && keep.length) {
      this.pageBlocks.set(pg, keep);
      this.mem.code[pg] = keep.length;
    } else {
      this.pageBlocks.delete(pg);
      this.mem.code[pg] = 0;
    }
  }

  /** What the translator may look at to grow a region (jit.ts). */
  private readonly regionHost = {
    cpu: this as Cpu,
    blockAt(phys: number): Block | undefined { return this.cpu.blocks.get(phys * 2 + 1); },
    hasBreakpoint(lin: number): boolean { return this.cpu.breakpoints.has(lin); },
  };

  private fetcher = {
    cpu: this as Cpu,
    fetch8(n: number): number {
      const c = this.cpu;
      const off = c.code32 ? (c.decodeLin + n) >>> 0 : (c.decodeLin + n) & 0xffff;
      if (off > c.segLimit[CS]!) c.gp(0);
      const l = (c.segBase[CS]! + off) >>> 0;
      return c.physRead8Fetch(l);
    },
  };

  /** Instruction fetch of one byte at a linear address (user-mode rights when CPL 3). */
  physRead8Fetch(l: number): number {
    // One page walk per page per block built (the walk's A-bit updates happen on the first).
    let p: number;
    if ((l >>> 12) === this.fetchLinPage) p = (this.fetchPhysPage | (l & 0xfff)) >>> 0;
    else {
      p = this.xlate(l, false, this.decodeUser);
      this.fetchLinPage = l >>> 12;
      this.fetchPhysPage = (p & ~0xfff) >>> 0;
    }
    if (p < this.ramLen) return this.ram[p]!;
    return this.bus.physRead8(p) & 0xff;
  }

  /** The block at EIP (run() follows the header links itself first; this is the slow path). */
  private lookupBlock(): Block {
    const prev = this.prevH >= 0 ? this.ublk[this.prevH >> 2]! : null;
    const eip = this.eip;
    if (prev !== null && prev.sEpoch === this.chainEpoch) {
      const s1 = prev.s1;
      if (s1 !== null && prev.s1Eip === eip && s1.valid) return s1;
      const s2 = prev.s2;
      if (s2 !== null && prev.s2Eip === eip && s2.valid) return s2;
    }
    const b = this.lookupBlockSlow();
    // A block that crosses a page is linked only while the read TLB maps its second page (as
    // lookupBlockSlow just checked): that entry changes only with a new chain epoch.
    if (prev !== null && (b.phys2 < 0 || this.tlbR[(((this.segBase[CS]! + eip) & ~0xfff) + 0x1000) >>> 12] === (b.phys2 >>> 12) + 1)) {
      if (prev.sEpoch !== this.chainEpoch) { prev.sEpoch = this.chainEpoch; prev.s1 = null; prev.s2 = null; prev.s1Eip = -1; prev.s2Eip = -1; }
      if (prev.s1 === null) { prev.s1 = b; prev.s1Eip = eip; }
      else if (prev.s2 === null) { prev.s2 = b; prev.s2Eip = eip; }
      // Mirror the links into prev's header.
      const uc = this.uc, h = prev.u!;
      if (this.ublk[h >> 2] !== prev) return b; // prev left the store (compacted away)
      this.ucf[(h >> 1) + 1] = prev.sEpoch;
      uc[h + 4] = prev.s1Eip; uc[h + 5] = prev.s1 !== null ? prev.s1.u! : 0;
      uc[h + 6] = prev.s2Eip; uc[h + 7] = prev.s2 !== null ? prev.s2.u! : 0;
    }
    return b;
  }

  private lookupBlockSlow(): Block {
    const linEip = (this.segBase[CS]! + this.eip) >>> 0;
    const e = this.tlbR[linEip >>> 12]!;
    const phys = e !== 0 ? (((e - 1) << 12) | (linEip & 0xfff)) >>> 0 : this.xlate(linEip, false, this.cpl === 3);
    const slot = phys & ((1 << L1_BITS) - 1);
    let b = this.l1[slot];
    if (b !== null && b !== undefined && b.phys === phys && b.code32 === this.code32 && b.valid && (b.phys2 < 0 || this.phys2Matches(b, linEip))) return b;
    const m = this.blocks.get(phys * 2 + (this.code32 ? 1 : 0));
    if (m && (m.phys2 < 0 || this.phys2Matches(m, linEip))) { this.l1[slot] = m; return m; }
    const nb = this.buildBlock(phys, linEip);
    this.l1[slot] = nb;
    return nb;
  }

  /**
   * Whether the page after the one at linEip still maps to the block's second page: through
   * the read TLB, as for the first page (lookupBlockSlow), else a walk (which fills it).
   */
  private phys2Matches(b: Block, linEip: number): boolean {
    const l2 = ((linEip & ~0xfff) + 0x1000) >>> 0;
    const e = this.tlbR[l2 >>> 12]!;
    if (e !== 0) return ((e - 1) << 12) >>> 0 === b.phys2;
    try { return this.xlate(l2, false, this.cpl === 3) === b.phys2; } catch { return false; }
  }

  private buildBlock(phys: number, linEip: number): Block {
    const insns: Insn[] = [];
    const startEip = this.eip;
    let off = 0;
    let phys2 = -1;
    this.decodeUser = this.cpl === 3;
    this.fetchLinPage = -1;
    const max = this.singleStep ? 1 : MAX_BLOCK;
    const pageEnd = ((linEip & ~0xfff) + 0x1000);
    for (;;) {
      const insEip = this.code32 ? (startEip + off) >>> 0 : (startEip + off) & 0xffff;
      const insLin = (this.segBase[CS]! + insEip) >>> 0;
      if (insns.length > 0 && this.breakpoints.size && this.breakpoints.has(insLin)) break;
      this.decodeLin = insEip;
      const ins = new Insn();
      try {
        decode(this.fetcher, this.code32, ins);
      } catch (e) {
        if (insns.length === 0) {
          if (e instanceof DecodeError) this.fault(e.vector, 0);
          throw e;
        }
        break; // fault belongs to the next block's first instruction
      }
      ins.off = off;
      ins.fn = handlerFor(ins) as Insn["fn"];
      insns.push(ins);
      off += ins.len;
      const fl = OPFLAGS[ins.op]!;
      if (fl & OpF.TERM) break;
      // REP string instructions and any prefix-LOCKed or invalid form end the block.
      if (ins.rep !== REP_NONE && ((ins.op >= 0xa4 && ins.op <= 0xa7) || (ins.op >= 0xaa && ins.op <= 0xaf))) break;
      if (insns.length >= max) break;
      if (insLin + ins.len >= pageEnd) {
        if (insLin + ins.len > pageEnd) {
          // This instruction crosses into the next page.
          phys2 = this.xlate(pageEnd >>> 0, false, this.decodeUser);
        }
        break;
      }
    }
    // Instruction crossing the page boundary as the only / last instruction.
    if (phys2 < 0 && ((linEip & 0xfff) + off) > 0x1000) phys2 = this.xlate(pageEnd >>> 0, false, this.decodeUser);
    const u = this.ucAlloc(UHDR + insns.length * UREC), uc = this.uc;
    uc[u] = insns.length; uc[u + 1] = 1;
    this.ucf[(u >> 1) + 1] = -1;
    uc[u + 4] = -1; uc[u + 5] = 0; uc[u + 6] = -1; uc[u + 7] = 0;
    for (let k = 0; k < insns.length; k++) encodeRec(insns[k]!, this.code32, uc, u + UHDR + k * UREC);
    markDeadFlags(uc, u + UHDR, insns.length);
    const b: Block = {
      insns, n: insns.length, phys, physEnd: Math.min(phys + off, ((phys >>> 12) + 1) << 12), code32: this.code32, phys2, valid: true,
      fn: null, jitOff: null, jitIdx: null, region: false, s1: null, s1Eip: -1, s2: null, s2Eip: -1, sEpoch: -1, u,
    };
    this.blocks.set(phys * 2 + (this.code32 ? 1 : 0), b);
    this.ublk[u >> 2] = b;
    this.addPageBlock(phys >>> 12, b);
    if (phys2 >= 0) this.addPageBlock(phys2 >>> 12, b);
    this.blocksBuilt++;
    return b;
  }

  /**
   * Room for `words` words in the store. When it is full: if the blocks still in the cache
   * fill at most half of what is in use, their headers and records are copied to a fresh store
   * and blocks not copied are made unreachable (L1 cleared, successor links dropped by the
   * epoch); otherwise the store doubles (contents and offsets kept).
   */
  private ucAlloc(words: number): number {
    if (this.ucTop + words > this.uc.length) {
      let live = UHDR + words;
      for (const b of this.blocks.values()) live += UHDR + b.n * UREC;
      let cap = this.uc.length;
      while (live * 2 > cap) cap *= 2;
      const old = this.uc, uc = new Int32Array(cap), ucf = new Float64Array(uc.buffer);
      if (live * 2 > this.ucTop) {
        // Mostly live: grow in place.
        uc.set(old);
        for (let k = this.ublk.length; k < cap >> 2; k++) this.ublk.push(null);
        this.uc = uc; this.ucf = ucf;
      } else {
        const ublk = new Array<Block | null>(cap >> 2).fill(null);
        let top = UHDR;
        for (const b of this.blocks.values()) {
          const n = UHDR + b.n * UREC, from = b.u!;
          for (let k = 0; k < n; k++) uc[top + k] = old[from + k]!;
          b.u = top;
          ublk[top >> 2] = b;
          ucf[(top >> 1) + 1] = -1; // links dropped (chainEpoch moves on below as well)
          top += n;
        }
        this.uc = uc; this.ucf = ucf; this.ublk = ublk;
        this.ucTop = top;
        this.l1.fill(null);
        this.chainEpoch++;
        this.prevH = -1;
      }
    }
    const u = this.ucTop;
    this.ucTop += words;
    return u;
  }

  private addPageBlock(pg: number, b: Block): void {
    if (pg >= this.mem.pages) return; // ROM outside RAM cannot be written
    let list = this.pageBlocks.get(pg);
    if (!list) { list = []; this.pageBlocks.set(pg, list); }
    list.push(b);
    const wasCode = this.mem.code[pg] !== 0;
    this.mem.code[pg] = list.length;
    if (!wasCode) this.flushWriteTlb();
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
      if (this.inhibit || tf) count = 1;
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
          if (hv === thr && blk.fn === null && this.translated < JIT_MAX_BLOCKS) {
            blk.fn = compileBlock(this, blk, this.singleStep ? undefined : this.regionHost);
            if (blk.fn !== null) this.translated++;
          }
          if (blk.fn !== null) {
            this.curH = -1;
            this.curBlock = blk;
            this.prevBlock = blk;
            const r = this.runTranslated(blk, target);
            this.curBlock = null;
            this.prevH = this.prevBlock!.u!;
            if (r === RT_CONTINUE) continue;
            if (r !== RT_NOT_RUN) return r;
            this.curH = h;
          } else uc[h + 1] = -1; // past the threshold untranslated: it stays interpreted
        }
      }
      // The interpreter (it may go on to the following blocks); on a fault it has set EIP and
      // icount for the delivery.
      try {
        this.interp(h, count, base, target, !tf && !bps, jitOk ? thr : -1);
      } catch (e) {
        this.curH = -1;
        if (e !== FAULT) throw e;
        this.raise(this.excVec, this.excHasErr, this.excErr);
        if (this.brk === Stop.SHUTDOWN) return Stop.SHUTDOWN;
        if (this.stopOnDelivery) return Stop.DELIVERED;
        continue;
      }
      this.curH = -1;
      if (tf && !this.inhibit) {
        this.dr[6] |= 0x4000;
        this.raise(1, false, 0);
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
   * Interpret `count` instructions of the block with header `h` from its first, icount being
   * `base` at its start, and leave icount counting what retired (fewer when something set brk,
   * more when a REP retired iterations). icount is set once per block to the exact count of
   * the last instruction (it may be I/O, or a REP that retires iterations itself): the others
   * cannot observe it (whatever reads it ends a block), and a stop or a fault before the last
   * one sets it from the record pointer. The loop itself only advances the record pointer:
   * the forms that can set brk (memory accesses off the TLB fast path, handlers) check it
   * themselves. EIP lives in `eip` while inline forms run; a handler gets and returns it in
   * this.eip. On a fault, EIP and icount are left for the delivery (the instruction did not
   * retire) and the fault propagates.
   *
   * With `chain`, goes on with the next blocks through the header links for as long as run()'s
   * loop would have nothing else to do between them: no brk, not halted, no interrupt shadow,
   * TF clear, no interrupt deliverable, no delivery since the start (so run()'s fault-storm
   * check would not fire), budget left, and the next block is linked and below the translation
   * threshold `thr` (-1: no translation). Only handlers and memory accesses off the TLB fast
   * path can change the CPU-side conditions, so those are checked only after a block that ran
   * one (`gen`).
   */
  private interp(h: number, count: number, base: number, target: number, chain: boolean, thr: number): void {
    const ri = this.regsI, uc = this.uc, d0 = this.deliveries;
    const segFast = this.segFast, segBaseI = this.segBaseI, ram32 = this.ram32, ram8 = this.ram;
    let eip = this.eip, p = h + UHDR, pend = p + count * UREC, gen = false;
    // The CS limit for near jumps (none in real mode); only a handler can change it.
    let csLim = (this.cr0 & CR0_PE) !== 0 ? this.segLimit[CS]! : 0xffffffff;
    this.icount = base + count - 1;
    try {
      for (;;) {
      body: for (;;) {
        const w = uc[p]!;
        switch (w & 0xff) {
          case K.ADD_RR: case K.ADD_RI: {
            const d = (w >>> 20) & 15, a = ri[d]!, b = (w & 0xff) === K.ADD_RR ? ri[(w >>> 16) & 15]! : uc[p + 1]!;
            const r = (a + b) | 0;
            if (w >= 0 || p + UREC === pend) { this.lop = LF_ADD; this.lcin = 0; this.la = a; this.lb = b; this.lres = r; this.lsz = 2; }
            ri[d] = r;
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            break;
          }
          case K.SUB_RR: case K.SUB_RI: case K.CMP_RR: case K.CMP_RI: {
            const kk = w & 0xff, d = (w >>> 20) & 15, a = ri[d]!;
            const b = kk === K.SUB_RR || kk === K.CMP_RR ? ri[(w >>> 16) & 15]! : uc[p + 1]!;
            const r = (a - b) | 0;
            if (w >= 0 || p + UREC === pend) { this.lop = LF_SUB; this.lcin = 0; this.la = a; this.lb = b; this.lres = r; this.lsz = 2; }
            if (kk === K.SUB_RR || kk === K.SUB_RI) ri[d] = r;
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            break;
          }
          case K.LOGIC_RR: case K.LOGIC_RI: {
            const d = (w >>> 20) & 15, a = ri[d]!, b = (w & 0xff) === K.LOGIC_RR ? ri[(w >>> 16) & 15]! : uc[p + 1]!;
            const op = (w >>> 12) & 15, r = op === 6 ? a ^ b : op === 4 ? a & b : a | b;
            if (w >= 0 || p + UREC === pend) { this.lop = LF_LOGIC; this.la = a; this.lb = b; this.lres = r; this.lsz = 2; }
            ri[d] = r;
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            break;
          }
          case K.MOV_RR:
            ri[(w >>> 12) & 15] = ri[(w >>> 16) & 15]!;
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            break;
          case K.MOV_RI:
            ri[(w >>> 12) & 15] = uc[p + 1]!;
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            break;
          case K.MOV_MR: {
            // uw32(uea(...)) inline: flat segment, aligned, TLB hit.
            const s = uc[p + 3]!, v = ri[(w >>> 16) & 15]!;
            const a = this.ueaI(w, uc[p + 2]!);
            if (segFast[s] !== 0) {
              const l = (segBaseI[s]! + a) | 0, e = this.tlbW[l >>> 12]!;
              if (e !== 0 && (l & 3) === 0) ram32[(((e - 1) << 12) | (l & 0xfff)) >> 2] = v;
              else { this.wl32(l >>> 0, v); gen = true; }
            } else { this.wl32(this.linSlow(s, a >>> 0, 4, true), v); gen = true; }
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            // A TLB hit is plain RAM holding no code, with no watchpoint: only the slow path
            // can set brk.
            if (gen && this.brk !== 0) { p += UREC; break body; }
            break;
          }
          case K.MOV_RM: case K.ALU_RM: {
            // 32-bit load inline (ur32(uea(...))): flat segment, aligned, TLB hit.
            const s = uc[p + 3]!;
            const a = this.ueaI(w, uc[p + 2]!);
            let v: number;
            if (segFast[s] !== 0) {
              const l = (segBaseI[s]! + a) | 0, e = this.tlbR[l >>> 12]!;
              if (e !== 0 && (l & 3) === 0) v = ram32[(((e - 1) << 12) | (l & 0xfff)) >> 2]!;
              else { v = this.rl32(l >>> 0) | 0; gen = true; }
            } else { v = this.rl32(this.linSlow(s, a >>> 0, 4, false)) | 0; gen = true; }
            if ((w & 0xff) === K.MOV_RM) ri[(w >>> 12) & 15] = v;
            else {
              // As the ADD/SUB/LOGIC/CMP register forms; ADC and SBB (which read CF) through alu().
              const y = (w >>> 16) & 15, op = (w >>> 12) & 15, u = ri[y]!;
              let r: number;
              if (op === 2 || op === 3) r = this.alu(op, u, v, 2) | 0;
              else {
                if (op === 0) { r = (u + v) | 0; this.lop = LF_ADD; this.lcin = 0; }
                else if (op === 5 || op === 7) { r = (u - v) | 0; this.lop = LF_SUB; this.lcin = 0; }
                else { r = op === 1 ? u | v : op === 4 ? u & v : u ^ v; this.lop = LF_LOGIC; }
                this.la = u; this.lb = v; this.lres = r; this.lsz = 2;
              }
              if (op !== 7) ri[y] = r;
            }
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            // A TLB hit is plain RAM with no watchpoint: only the slow path can set brk.
            if (gen && this.brk !== 0) { p += UREC; break body; }
            break;
          }
          case K.SHIFT_R: {
            // SHL/SHR/SAR as shift() computes them, on int32; rotates through shift().
            const y = (w >>> 16) & 15, c = uc[p + 1]!, op = (w >>> 12) & 15, v = ri[y]!;
            const cnt = (c >= 0 ? c : ri[ECX]!) & 0x1f;
            if (cnt !== 0) {
              if (op >= 4) { // SHL (4, 6), SHR, SAR
                const r = op === 5 ? (v >>> cnt) | 0 : op === 7 ? v >> cnt : v << cnt;
                this.shiftFlags32(op === 5 ? SH_SHR : op === 7 ? SH_SAR : SH_SHL, v, cnt, r);
                ri[y] = r;
              } else ri[y] = shift(this, op, v, cnt, 2) | 0;
            }
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            break;
          }
          case K.MOVX_R: {
            const vt = w >>> 30, y = (w >>> 16) & 15;
            let v = (vt & 1) !== 0 ? ri[y]! & 0xffff : y < 4 ? ri[y]! & 0xff : (ri[y - 4]! >> 8) & 0xff;
            if (vt >= 2) v = (vt & 1) !== 0 ? (v << 16) >> 16 : (v << 24) >> 24;
            ri[(w >>> 12) & 15] = v;
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            break;
          }
          case K.MOVX_M: {
            // Byte or word load through a flat segment's TLB fast path inline (a word only
            // within its page).
            const vt = w >>> 30, s = uc[p + 3]!;
            const a = this.ueaI(w, uc[p + 2]!);
            let v: number;
            if (segFast[s] !== 0) {
              const l = (segBaseI[s]! + a) | 0, e = this.tlbR[l >>> 12]!;
              if (e !== 0 && ((vt & 1) === 0 || (l & 0xfff) !== 0xfff)) {
                const q = ((e - 1) << 12) | (l & 0xfff);
                v = (vt & 1) !== 0 ? ram8[q]! | (ram8[q + 1]! << 8) : ram8[q]!;
              } else { v = (vt & 1) !== 0 ? this.rl16(l >>> 0) : this.rl8(l >>> 0); gen = true; }
            } else {
              const l = this.linSlow(s, a >>> 0, (vt & 1) !== 0 ? 2 : 1, false);
              v = (vt & 1) !== 0 ? this.rl16(l) : this.rl8(l);
              gen = true;
            }
            if (vt >= 2) v = (vt & 1) !== 0 ? (v << 16) >> 16 : (v << 24) >> 24;
            ri[(w >>> 12) & 15] = v;
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            if (gen && this.brk !== 0) { p += UREC; break body; }
            break;
          }
          case K.LEA: {
            ri[(w >>> 12) & 15] = this.ueaI(w, uc[p + 2]!);
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            break;
          }
          case K.INC: {
            const d = (w >>> 12) & 15;
            const a = ri[d]!, r = (a + 1) | 0;
            // INC keeps CF: it goes to EFLAGS from the previous lazy state.
            this.eflags = (this.eflags & ~CF) | this.cf();
            this.lop = LF_INC; this.la = a; this.lb = 1; this.lres = r; this.lsz = 2;
            ri[d] = r;
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            break;
          }
          case K.DEC: {
            const d = (w >>> 12) & 15;
            const a = ri[d]!, r = (a - 1) | 0;
            this.eflags = (this.eflags & ~CF) | this.cf();
            this.lop = LF_DEC; this.la = a; this.lb = 1; this.lres = r; this.lsz = 2;
            ri[d] = r;
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            break;
          }
          case K.PUSH:
            this.push32(ri[(w >>> 12) & 15]!);
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            gen = true;
            if (this.brk !== 0) { p += UREC; break body; }
            break;
          case K.POP: {
            const v = this.peek(true) | 0;
            this.adjSp(4);
            ri[(w >>> 12) & 15] = v;
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            gen = true;
            if (this.brk !== 0) { p += UREC; break body; }
            break;
          }
          case K.TEST_RR: {
            const x = ri[(w >>> 12) & 15]!, y = ri[(w >>> 16) & 15]!;
            this.lop = LF_LOGIC; this.la = x; this.lb = y; this.lres = x & y; this.lsz = 2;
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            break;
          }
          case K.JMP: {
            const t = (eip + ((w >>> 8) & 15) + uc[p + 1]!) >>> 0;
            if (t > csLim) this.gp(0);
            eip = t;
            break;
          }
          case K.JCC: {
            const nx = (eip + ((w >>> 8) & 15)) >>> 0;
            if (this.cond((w >>> 12) & 15)) {
              const t = (nx + uc[p + 1]!) >>> 0;
              if (t > csLim) this.gp(0);
              eip = t;
            } else eip = nx;
            break;
          }
          case K.CALL: {
            const nx = (eip + ((w >>> 8) & 15)) >>> 0, t = (nx + uc[p + 1]!) >>> 0;
            if (t > csLim) this.gp(0);
            this.push32(nx);
            eip = t;
            gen = true;
            if (this.brk !== 0) { p += UREC; break body; }
            break;
          }
          case K.RET: {
            const t = this.peek(true);
            if (t > csLim) this.gp(0);
            eip = t;
            this.adjSp(4);
            gen = true;
            if (this.brk !== 0) { p += UREC; break body; }
            break;
          }
          case K.GEN: {
            const ins = this.ublk[h >> 2]!.insns[(p - h - UHDR) >> 2]!;
            this.eip = eip;
            (ins.fn as Handler)(this, ins);
            eip = this.eip;
            gen = true;
            csLim = (this.cr0 & CR0_PE) !== 0 ? this.segLimit[CS]! : 0xffffffff;
            if (this.brk !== 0) { p += UREC; break body; }
            break;
          }
          default:
            this.uop(w, uc, p);
            eip = (eip + ((w >>> 8) & 15)) >>> 0;
            gen = true;
            if (this.brk !== 0) { p += UREC; break body; }
            break;
        }
        p += UREC;
        if (p === pend) break;
      }
      // The last instruction retired (a REP may have counted iterations itself), or something
      // set brk after an earlier one.
      if (p === pend) this.icount++;
      else this.icount = base + ((p - h - UHDR) >> 2);
      // The next block, if run()'s loop would do nothing before it but find it (linked, and
      // not for the translator).
      if (!chain || this.ucf[(h >> 1) + 1] !== this.chainEpoch) break;
      const e = eip | 0;
      let nh = 0;
      if (uc[h + 4] === e) nh = uc[h + 5]!;
      else if (uc[h + 6] === e) nh = uc[h + 7]!;
      const hv = uc[nh + 1]!;
      if (hv === 0 || (thr >= 0 && hv >= thr) || this.brk !== 0) break;
      // Only a handler (GEN or uop) can halt, set the interrupt shadow or TF, raise the
      // interrupt line (port I/O) or deliver (INT n).
      if (gen && (this.halted || this.inhibit || (this.eflags & TF) !== 0 ||
          (this.intrLine && (this.eflags & IF) !== 0) || this.deliveries !== d0)) break;
      base = this.icount;
      if (base >= target) break;
      const n = uc[nh]!;
      if (n <= target - base) {
        if (thr >= 0 && hv > 0) uc[nh + 1] = hv + 1;
        count = n;
      } else count = target - base;
      h = nh; this.curH = h;
      p = h + UHDR; pend = p + count * UREC; gen = false;
      this.icount = base + count - 1;
      }
    } catch (e) {
      // An inline form faults before it changes anything: EIP is at the instruction. Every
      // instruction but the last ran with icount preset for the last one.
      if ((uc[p]! & 0xff) !== K.GEN) this.eip = eip;
      if (e === FAULT && p + UREC !== pend) this.icount = base + ((p - h - UHDR) >> 2);
      this.prevH = h;
      throw e;
    }
    this.eip = eip;
    this.prevH = h;
  }

  /**
   * The record kinds interp() does not run inline (no control transfer: EIP is the caller's):
   * the less common ones, kept out of interp() to keep it small.
   */
  private uop(w: number, uc: Int32Array, p: number): void {
    const regs = this.regs;
    switch (w & 0xff) {
      case K.ALU_RR: {
        const d = (w >>> 20) & 15, r = this.alu((w >>> 12) & 15, regs[d]!, regs[(w >>> 16) & 15]!, 2);
        if ((w & 0x7000) !== 0x7000) regs[d] = r;
        break;
      }
      case K.ALU_RI: {
        const d = (w >>> 20) & 15, r = this.alu((w >>> 12) & 15, regs[d]!, uc[p + 1]! >>> 0, 2);
        if ((w & 0x7000) !== 0x7000) regs[d] = r;
        break;
      }
      case K.ALU_MR: {
        const s = uc[p + 3]!, o = this.uea(w, uc[p + 2]!);
        const r = this.alu((w >>> 12) & 15, this.ur32(s, o), regs[(w >>> 16) & 15]!, 2);
        if ((w & 0x7000) !== 0x7000) this.uw32(s, o, r);
        break;
      }
      case K.ALU_MI: {
        const s = uc[p + 3]!, o = this.uea(w, uc[p + 2]!);
        const r = this.alu((w >>> 12) & 15, this.ur32(s, o), uc[p + 1]! >>> 0, 2);
        if ((w & 0x7000) !== 0x7000) this.uw32(s, o, r);
        break;
      }
      case K.MOV_MI:
        this.uw32(uc[p + 3]!, this.uea(w, uc[p + 2]!), uc[p + 1]!);
        break;
      case K.TEST_RM:
        this.alu(4, this.ur32(uc[p + 3]!, this.uea(w, uc[p + 2]!)), regs[(w >>> 16) & 15]!, 2);
        break;
      case K.MOV8_MR:
        this.wr8(uc[p + 3]!, this.uea(w, uc[p + 2]!), this.getReg(0, (w >>> 16) & 15));
        break;
      case K.MOV8_RM:
        this.setReg(0, (w >>> 12) & 15, this.rd8(uc[p + 3]!, this.uea(w, uc[p + 2]!)));
        break;
      case K.SETCC_R:
        this.setReg(0, (w >>> 16) & 15, this.cond((w >>> 12) & 15) ? 1 : 0);
        break;
      case K.SETCC_M:
        this.wr8(uc[p + 3]!, this.uea(w, uc[p + 2]!), this.cond((w >>> 12) & 15) ? 1 : 0);
        break;
      case K.CMOV_RR: case K.CMOV_RM: {
        // The source is read (and may fault) even if not moved.
        const v = (w & 0xff) === K.CMOV_RR ? regs[(w >>> 20) & 15]! : this.ur32(uc[p + 3]!, this.uea(w, uc[p + 2]!));
        if (this.cond((w >>> 12) & 15)) regs[(w >>> 16) & 15] = v;
        break;
      }
    }
  }

  /**
   * Run translated blocks back to back, following the successor cache, while nothing needs
   * the outer loop (an interrupt, a breakpoint, a block that does not fit the budget or is not
   * translated). Returns RT_CONTINUE, RT_NOT_RUN (an entry guard failed: interpret the block)
   * or a Stop for run() to return.
   */
  private runTranslated(first: Block, target: number): number {
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
        k = fn(this, this.regs, insns, exec, target - base);
      } catch (e) {
        this.curBlock = null;
        if (e !== FAULT) throw e;
        const ci = this.ci;
        this.eip = (e0 + blk.jitOff![ci]!) >>> 0;
        this.icount = Math.max(this.icount, base + this.jitDone + blk.jitIdx![ci]!);
        this.raise(this.excVec, this.excHasErr, this.excErr);
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
      if (blk.sEpoch !== this.chainEpoch) return RT_CONTINUE;
      const eip = this.eip;
      const nb = blk.s1Eip === eip ? blk.s1 : blk.s2Eip === eip ? blk.s2 : null;
      if (nb === null || !nb.valid || nb.fn === null || nb.n > target - this.icount) return RT_CONTINUE;
      // Blocks are cut at breakpoints, so only a block's first instruction can be one: one check per block.
      if (this.breakpoints.size !== 0 && this.breakpoints.has((this.segBase[CS]! + eip) >>> 0)) return RT_CONTINUE;
      this.curBlock = nb;
      this.prevBlock = nb;
      blk = nb;
    }
  }

  /** Ask run() to return after the current instruction (devices: exit, reset). */
  requestStop(): void { this.brk = Stop.REQUEST; }

  // =====================================================================================
  // Interrupt and exception delivery
  // =====================================================================================

  private deliverExternal(): void {
    const vec = this.bus.ackInterrupt() & 0xff;
    this.raise(vec, false, 0, false, true);
  }

  /**
   * Deliver an exception or interrupt, applying the double-fault rules when delivery itself
   * faults. `soft` marks INT n/INT3/INTO (gate DPL checked); `ext` marks hardware interrupts.
   */
  raise(vec: number, hasErr: boolean, err: number, soft = false, ext = false): void {
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

  private shutdown(): void {
    this.brk = Stop.SHUTDOWN;
    this.halted = true;
  }

  private deliver(vec: number, hasErr: boolean, err: number, soft: boolean, ext: boolean): void {
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
    if (type !== 0x0e && type !== 0x0f && type !== 0x06 && type !== 0x07) this.gp(vec * 8 + 2 + extBit);
    if (soft && dpl < this.cpl) this.gp(vec * 8 + 2);
    if (!(hi & 0x8000)) this.fault(11, vec * 8 + 2 + extBit);
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
      push(oldSs); push(oldEsp); push(oldFlags); push(oldCs); push(oldEip);
      if (hasErr) push(err);
      // Commit.
      this.loadSegDesc(SS, (nss & 0xfffc) | ddpl, sd.lo, sd.hi);
      this.regs[ESP] = s32 ? sp : (this.regs[ESP]! & 0xffff0000) | sp;
      this.loadSegDesc(CS, (sel & 0xfffc) | ddpl, d.lo, d.hi);
      this.setCpl(ddpl);
      for (const s of [ES, DS, FS, GS]) this.nullIfInaccessible(s);
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

  private nullIfInaccessible(s: number): void {
    const ar = this.segAr[s]!;
    const dpl = (ar >> 5) & 3;
    const conformingCode = (ar & (AR_CODE | 0x04)) === (AR_CODE | 0x04);
    if ((this.sel[s]! & 0xfffc) !== 0 && !conformingCode && dpl < this.cpl) {
      this.sel[s] = 0; this.segAr[s] = 0; this.segBase[s] = 0; this.segLimit[s] = 0;
    }
    this.updateSegFast(s);
  }

  private tssStack(dpl: number, extBit: number): { ss: number; esp: number } {
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

  private wsys32(l: number, v: number): void {
    this.ws8(l, v); this.ws8((l + 1) >>> 0, v >>> 8); this.ws8((l + 2) >>> 0, v >>> 16); this.ws8((l + 3) >>> 0, v >>> 24);
  }
  private wsys16(l: number, v: number): void {
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
  private touchDescriptor(sel: number, hi: number): void {
    if (hi & 0x100) return;
    const base = sel & 4 ? this.ldtBase : this.gdtBase;
    const a = (base + (sel & 0xfff8) + 5) >>> 0;
    this.ws8(a, ((hi >>> 8) & 0xff) | 1);
  }

  loadSegReal(s: number, v: number): void {
    v &= 0xffff;
    this.sel[s] = v;
    this.segBase[s] = v << 4;
    if (s === CS) this.chainEpoch++;
    // Limit and rights stay cached, as on hardware (unreal mode).
    this.updateSegFast(s);
  }

  /** Load a segment cache from a descriptor (no checks). */
  loadSegDesc(s: number, sel: number, lo: number, hi: number): void {
    if (s === CS) this.chainEpoch++;
    this.sel[s] = sel;
    this.segBase[s] = descBase(lo, hi);
    this.segLimit[s] = descLimit(lo, hi);
    this.segAr[s] = descAr(hi);
    this.updateSegFast(s);
    if (s === CS) this.code32 = (this.segAr[CS]! & AR_DB) !== 0;
    if (s === SS) this.stack32 = (this.segAr[SS]! & AR_DB) !== 0;
  }

  /** MOV/POP/LxS to a data or stack segment register, with protected-mode checks. */
  loadSeg(s: number, v: number): void {
    v &= 0xffff;
    if (!this.pe()) { this.loadSegReal(s, v); return; }
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
    if (!this.pe()) {
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
    // System descriptor: call gate (0x4 16-bit, 0xC 32-bit). Task gates/TSS: not supported.
    const type = ar & 0x0f;
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

  private pushPair(o32: boolean, cs: number, eip: number): void {
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
  private checkReturnCs(sel: number): { lo: number; hi: number } {
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
    if (!this.pe()) {
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

  /** IRET / IRETD. */
  iret(o32: boolean): void {
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
    if (this.eflags & NT) this.gp(0); // nested task return: task switching is not supported
    const eip = this.peek(o32, 0);
    const sel = this.peek(o32, w) & 0xffff;
    const fl = this.peek(o32, 2 * w);
    const rpl = sel & 3;
    const d = this.checkReturnCs(sel);
    if (fl & VM && this.cpl === 0 && o32) this.gp(0); // return to virtual-8086 mode: not supported
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

  // =====================================================================================
  // I/O permission
  // =====================================================================================

  /** Whether a port read now is stable (CpuBus.ioReadStable), for translated polling loops. */
  ioStable(port: number, size: IoSize): boolean {
    return this.bus.ioReadStable !== undefined && this.bus.ioReadStable(port, size);
  }

  /** #GP unless CPL <= IOPL or the TSS I/O bitmap allows all `size` ports. */
  checkIo(port: number, size: number): void {
    if (!this.pe()) return;
    const iopl = (this.eflags & IOPL) >>> 12;
    if (this.cpl <= iopl) return;
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
        break;
      }
      case 2: this.cr2 = v; break;
      case 3: this.cr3 = v; this.flushTlb(); break;
      case 4:
        if (v & ~0x0000001f & ~0x80 & ~0x200) this.gp(0);
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

  fpuCheck(): void {
    if (this.cr0 & (CR0_EM | CR0_TS)) this.fault(7);
    this.fault(6);
  }
  fwaitCheck(): void {
    if ((this.cr0 & (CR0_MP | CR0_TS)) === (CR0_MP | CR0_TS)) this.fault(7);
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
    this.modeChanged();
    this.prevBlock = null;
    this.prevH = -1;
    if (!keepBlocks) this.flushBlocks();
  }

  /**
   * Drop every translated block that starts in or reaches into physical page `pg` (a caller
   * that rewrote the page from outside the guest: checkpoint restore, debugger writes).
   */
  invalidatePage(pg: number): void {
    if (!this.mem.code[pg] && !this.pageBlocks.has(pg)) return;
    const list = this.pageBlocks.get(pg);
    if (list) {
      for (const b of list) {
        if (!b.valid) continue;
        b.valid = false;
        if (this.ublk[b.u! >> 2] === b) this.uc[b.u! + 1] = 0;
        if (b.fn !== null) { b.fn = null; this.translated--; }
        this.blocks.delete(b.phys * 2 + (b.code32 ? 1 : 0));
        const other = b.phys >>> 12 === pg ? (b.phys2 >= 0 ? b.phys2 >>> 12 : -1) : b.phys >>> 12;
        if (other >= 0) {
          const ol = this.pageBlocks.get(other);
          if (ol) {
            const keep = ol.filter((x) => x !== b);
            if (keep.length) { this.pageBlocks.set(other, keep); this.mem.code[other] = keep.length; }
            else { this.pageBlocks.delete(other); this.mem.code[other] = 0; }
          }
        }
      }
      this.pageBlocks.delete(pg);
    }
    this.mem.code[pg] = 0;
    this.chainEpoch++;
  }
}

export function descBase(lo: number, hi: number): number {
  return ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0;
}
export function descLimit(lo: number, hi: number): number {
  let l = (lo & 0xffff) | (hi & 0xf0000);
  if (hi & 0x800000) l = ((l << 12) | 0xfff) >>> 0;
  return l >>> 0;
}
export function descAr(hi: number): number {
  return ((hi >>> 8) & 0xff) | ((hi >>> 8) & 0xf000);
}

export { CR0_PE, CR0_PG, CR0_EM, CR0_TS, CR0_MP, AR_P, AR_S, AR_CODE, AR_DB, AR_G };
