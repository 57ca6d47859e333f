/**
 * The record interpreter: every block in the cache also has a header and one fixed-size record
 * per instruction in one shared Int32Array (the record store, owned here), and interp() runs
 * blocks from their records, the common 32-bit forms inline and everything else through the
 * instruction's handler (exec.ts), following the successor links between headers.
 */
import { EAX, ECX, ESP, EBP, ESI, EDI, FAULT, CR0_PE } from "./arch.ts";
import { CS, DS, ES, SS, REP_NONE, type Insn } from "./decode.ts";
import { CF, DF, IF, LF_ADD, LF_DEC, LF_INC, LF_LOGIC, LF_SUB, TF, SH_SHL, SH_SHR, SH_SAR } from "./flags.ts";
import { shift } from "./ops.ts";
import type { Handler } from "./handlers.ts";
import type { Block } from "./block.ts";
import { CpuInterrupts } from "./interrupts.ts";

/**
 * The interpreter's view of the block cache: every block also has a header and one fixed-size
 * record per instruction in one shared Int32Array (Cpu.uc), so the interpreted path reads a
 * few contiguous words per block and per instruction instead of an object graph, follows
 * successor links between headers, and runs the common 32-bit forms inline in run() (K
 * below). Anything else is K.GEN: the instruction's handler. The Block objects stay the
 * source of truth; the header mirrors what the interpreter needs of them.
 * Header (UHDR words, at Block.u):
 *   h+0: instruction count   h+1: 0 when invalid, else 1 + executions (saturating, see run()),
 *   or -1 once past the translation threshold without translated code, or with translated code
 *   whose runs were too short to pay for leaving the interpreter (interpreted for good: cpu.ts)
 *   h+2..3: successor-link epoch (a float64)   h+4, h+5: eip and header of successor 1
 *   h+6, h+7: eip and header of successor 2 (an empty slot points at the header at 0, which
 *   is never valid)
 * Record (UREC words per instruction, after the header):
 *   w0: kind | len << 8 | x << 12 | y << 16 | base << 20 | index << 24 | scale << 28
 *       (x: ALU op, condition or destination register; y: register operand;
 *        base, index: register or 8 for none)
 *   w1: immediate   w2: displacement   w3: segment of the memory operand
 */
export const UHDR = 8, UREC = 4;
const MIN = 0x80000000 | 0;
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
  // Byte ALU (x: the ALU op, 8 for TEST): on a byte register (base) with an immediate or a
  // byte register (y), and on memory with an immediate. PUSH imm, PUSH m32, LEAVE; MOV m32,
  // imm32; MOV m8, imm8; INC/DEC m32 (x: 0 INC, 1 DEC); NOT r32.
  ALU8_RI, ALU8_RR, ALU8_MI, PUSH_I, PUSH_M, LEAVE, MOV8_MI, INCDEC_M, NOT_R,
  // TEST r32, imm32 (x: the register) and TEST m32, imm32; XCHG between registers (x, y; NOP
  // is XCHG EAX, EAX); NEG r32 and BSWAP r32 (x); CMPXCHG m32, r32 (y); MOV m16, r16 (y); a
  // string instruction without REP (x: 0 MOVS, 1 CMPS, 2 STOS, 3 LODS, 4 SCAS; y: 0 byte, 2
  // dword; w3: the source segment).
  TEST_RI, TEST_MI, XCHG_RR, NEG_R, BSWAP_R, CMPXCHG_M, MOV16_MR, STR,
}
/** The ALU op number ALU8 records give TEST (AND without a store). */
const TEST8 = 8;

/** Fill the interpreter record for `i` (a 32-bit code block) at uc[p..p+3]. */
export function encodeRec(i: Insn, code32: boolean, uc: Int32Array, p: number): void {
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
      // Byte forms: op AL, imm8; op r/m8, r8 and op r8, r/m8 between registers.
      else if (form === 4) { k = K.ALU8_RI; base = 0; imm = i.imm & 0xff; }
      else if (form === 0) { if (!mem) { k = K.ALU8_RR; base = i.rm; y = i.reg; } }
      else if (!mem) { k = K.ALU8_RR; base = i.reg; y = i.rm; }
    } else if (op >= 0x40 && op <= 0x47) { k = K.INC; x = op & 7; }
    else if (op >= 0x48 && op <= 0x4f) { k = K.DEC; x = op & 7; }
    else if (op >= 0x50 && op <= 0x57) { k = K.PUSH; x = op & 7; }
    else if (op >= 0x58 && op <= 0x5f) { k = K.POP; x = op & 7; }
    else if ((op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f)) { k = K.JCC; x = op & 0xf; imm = i.imm; }
    else if (op >= 0xb8 && op <= 0xbf) { k = K.MOV_RI; x = op & 7; imm = i.imm; }
    else if (op >= 0x90 && op <= 0x97) { k = K.XCHG_RR; x = 0; y = op & 7; }
    else if (op >= 0x1c8 && op <= 0x1cf) { k = K.BSWAP_R; x = op & 7; }
    else if (op >= 0xa4 && op <= 0xaf && op !== 0xa8 && op !== 0xa9) {
      // MOVS, CMPS, STOS, LODS, SCAS (the pairs A4/A5 ... AE/AF, TEST AL/EAX, imm between).
      k = K.STR; x = op < 0xa8 ? (op - 0xa4) >> 1 : ((op - 0xaa) >> 1) + 2; y = (op & 1) !== 0 ? 2 : 0;
      seg = i.seg >= 0 ? i.seg : DS;
    } else {
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
        case 0xa1: k = K.MOV_RM; x = 0; break; // MOV EAX, moffs32: the memory fields below
        case 0xa3: k = K.MOV_MR; y = 0; break;
        case 0x80: x = i.reg; imm = i.imm & 0xff; if (mem) k = K.ALU8_MI; else { k = K.ALU8_RI; base = i.rm; } break;
        case 0xf6: if (i.reg === 0) { x = TEST8; imm = i.imm & 0xff; if (mem) k = K.ALU8_MI; else { k = K.ALU8_RI; base = i.rm; } } break;
        case 0xa8: k = K.ALU8_RI; x = TEST8; base = 0; imm = i.imm & 0xff; break;
        case 0x84: if (!mem) { k = K.ALU8_RR; x = TEST8; base = i.rm; y = i.reg; } break;
        case 0x68: k = K.PUSH_I; imm = i.imm; break;
        case 0x6a: k = K.PUSH_I; imm = (i.imm << 24) >> 24; break;
        case 0xff: if (mem && i.reg === 6) k = K.PUSH_M; else if (mem && i.reg <= 1) { k = K.INCDEC_M; x = i.reg; } break;
        case 0xc9: k = K.LEAVE; break;
        case 0xc6: if (mem && i.reg === 0) { k = K.MOV8_MI; imm = i.imm & 0xff; } break;
        case 0xf7:
          if (i.reg === 0) { imm = i.imm; if (mem) k = K.TEST_MI; else { k = K.TEST_RI; x = i.rm; } }
          else if (!mem && i.reg === 2) { k = K.NOT_R; x = i.rm; }
          else if (!mem && i.reg === 3) { k = K.NEG_R; x = i.rm; }
          break;
        case 0xa9: k = K.TEST_RI; x = 0; imm = i.imm; break;
        case 0x87: if (!mem) { k = K.XCHG_RR; x = i.reg; y = i.rm; } break;
        case 0x1b1: if (mem) { k = K.CMPXCHG_M; y = i.reg; } break;
        case 0x88: if (mem) { k = K.MOV8_MR; y = i.reg; } break;
        case 0x8a: if (mem) { k = K.MOV8_RM; x = i.reg; } break;
        default:
          if (op >= 0x190 && op <= 0x19f) { x = op & 0xf; if (mem) k = K.SETCC_M; else { k = K.SETCC_R; y = i.rm; } }
          else if (op >= 0x140 && op <= 0x14f) { x = op & 0xf; y = i.reg; if (mem) k = K.CMOV_RM; else { k = K.CMOV_RR; base = i.rm; } }
      }
    }
  } else if (code32 && !i.o32 && i.a32 && i.rep === REP_NONE && !i.lock && op === 0x89 && mem) {
    k = K.MOV16_MR; y = i.reg;
  }
  if (mem && (k === K.ALU_RM || k === K.ALU_MR || k === K.ALU_MI || k === K.MOV_RM || k === K.MOV_MR ||
      k === K.MOV_MI || k === K.LEA || k === K.TEST_RM || k === K.MOVX_M || k === K.MOV8_MR ||
      k === K.MOV8_RM || k === K.SETCC_M || k === K.CMOV_RM || k === K.ALU8_MI || k === K.PUSH_M ||
      k === K.MOV8_MI || k === K.INCDEC_M || k === K.TEST_MI || k === K.CMPXCHG_M || k === K.MOV16_MR)) {
    base = i.base >= 0 ? i.base : 8;
    index = i.index >= 0 ? i.index : 8;
    scale = i.scale;
    disp = i.disp;
    seg = i.seg >= 0 ? i.seg : i.defSeg;
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
export function markDeadFlags(uc: Int32Array, p: number, n: number): void {
  for (let k = 0; k + 1 < n; k++, p += UREC) {
    const a = uc[p]! & 0xff, b = uc[p + UREC]! & 0xff;
    if ((a === K.ADD_RR || a === K.ADD_RI || a === K.SUB_RR || a === K.SUB_RI || a === K.LOGIC_RR || a === K.LOGIC_RI) &&
        (b === K.ADD_RR || b === K.ADD_RI || b === K.SUB_RR || b === K.SUB_RI || b === K.LOGIC_RR || b === K.LOGIC_RI ||
         b === K.CMP_RR || b === K.CMP_RI || b === K.TEST_RR)) uc[p] = uc[p]! | DEAD_FLAGS;
  }
}

export abstract class CpuInterp extends CpuInterrupts {
  /** Interpreter headers and records of all blocks (see UHDR), bump-allocated from ucTop. */
  protected uc = new Int32Array(1 << 16);
  /** The same store as float64 (the link epochs). */
  protected ucf = new Float64Array(this.uc.buffer);
  protected ucTop = UHDR;
  /** The Block of each header: ublk[h >> 2]. */
  protected ublk: (Block | null)[] = new Array<Block | null>((1 << 16) >> 2).fill(null);
  /** Header of the block that ran last (the successor links' source), or -1. */
  protected prevH = -1;
  /** Header of the block being interpreted, or -1. */
  protected curH = -1;
  /** The header of the cached block at EIP that the read TLB and the L1 find, else 0 (blocks.ts). */
  protected abstract probeH(eip: number): number;
  /** A link to the block at EIP was made (blocks.ts). */
  protected abstract noteLink(eip: number): void;

  /** The interpreter's effective address from a record (see UREC): w0 and the displacement. */
  protected uea(w: number, disp: number): number { return this.ueaI(w, disp) >>> 0; }
  /** The same as int32 (interp()'s inline memory forms). */
  protected ueaI(w: number, disp: number): number {
    const ri = this.regsI, b = (w >>> 20) & 15, x = (w >>> 24) & 15;
    let a = disp;
    if (b < 8) a = (a + ri[b]!) | 0;
    if (x < 8) a = (a + (ri[x]! << ((w >>> 28) & 3))) | 0;
    return a;
  }
  /** rd32/wr32 with the aligned RAM case first (the interpreter's inline memory path). */
  protected ur32(s: number, off: number): number {
    const l = this.segFast[s] !== 0 ? (this.segBase[s]! + off) >>> 0 : this.linSlow(s, off, 4, false);
    const e = this.tlbR[l >>> 12]!;
    if (e !== 0 && (l & 3) === 0) return this.ram32[(((e - 1) << 12) | (l & 0xfff)) >>> 2]! >>> 0;
    return this.rl32(l);
  }
  protected uw32(s: number, off: number, v: number): void {
    const l = this.segFast[s] !== 0 ? (this.segBase[s]! + off) >>> 0 : this.linSlow(s, off, 4, true);
    const e = this.tlbW[l >>> 12]!;
    if (e !== 0 && (l & 3) === 0) { this.ram32[(((e - 1) << 12) | (l & 0xfff)) >>> 2] = v; return; }
    this.wl32(l, v);
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
   * With `chain`, goes on with the next blocks through the header links (and makes the links
   * it finds missing, as run()'s lookups do) for as long as run()'s loop would have nothing
   * else to do between them: no brk, not halted, no interrupt shadow, TF clear, no interrupt
   * deliverable, no delivery since the start (so run()'s fault-storm check would not fire),
   * budget left, and the next block is found and below the translation threshold `thr` (-1: no
   * translation). Only handlers and memory accesses off the TLB fast
   * path can change the CPU-side conditions, so those are checked only after a block that ran
   * one (`gen`).
   */
  protected interp(h: number, count: number, base: number, target: number, chain: boolean, thr: number): void {
    const ri = this.regsI, uc = this.uc, d0 = this.deliveries;
    const segFast = this.segFast, segBaseI = this.segBaseI, ram32 = this.ram32, ram8 = this.ram;
    let eip = this.eip | 0, p = h + UHDR, pend = p + count * UREC, gen = false;
    // The CS limit for near jumps (none in real mode); only a handler can change it.
    // EIP stays int32 here (a kernel's addresses above 2^31 as doubles made the engine's
    // optimised code fail its checks); the limit is compared unsigned: as int32 ^ MIN.
    let csLim = (this.cr0 & CR0_PE) !== 0 ? (this.segLimit[CS]! ^ MIN) | 0 : 0x7fffffff;
    // A 32-bit flat stack: pushes and pops through the TLB fast path inline (only a handler
    // can change SS).
    let stk = this.stack32 && segFast[SS] !== 0;
    // The current privilege's fast TLB (only a handler changes CPL or flushes it).
    let tR = this.tlbR, tW = this.tlbW;
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
            eip = (eip + ((w >>> 8) & 15)) | 0;
            break;
          }
          case K.SUB_RR: case K.SUB_RI: case K.CMP_RR: case K.CMP_RI: {
            const kk = w & 0xff, d = (w >>> 20) & 15, a = ri[d]!;
            const b = kk === K.SUB_RR || kk === K.CMP_RR ? ri[(w >>> 16) & 15]! : uc[p + 1]!;
            const r = (a - b) | 0;
            if (w >= 0 || p + UREC === pend) { this.lop = LF_SUB; this.lcin = 0; this.la = a; this.lb = b; this.lres = r; this.lsz = 2; }
            if (kk === K.SUB_RR || kk === K.SUB_RI) ri[d] = r;
            eip = (eip + ((w >>> 8) & 15)) | 0;
            break;
          }
          case K.LOGIC_RR: case K.LOGIC_RI: {
            const d = (w >>> 20) & 15, a = ri[d]!, b = (w & 0xff) === K.LOGIC_RR ? ri[(w >>> 16) & 15]! : uc[p + 1]!;
            const op = (w >>> 12) & 15, r = op === 6 ? a ^ b : op === 4 ? a & b : a | b;
            if (w >= 0 || p + UREC === pend) { this.lop = LF_LOGIC; this.la = a; this.lb = b; this.lres = r; this.lsz = 2; }
            ri[d] = r;
            eip = (eip + ((w >>> 8) & 15)) | 0;
            break;
          }
          case K.MOV_RR:
            ri[(w >>> 12) & 15] = ri[(w >>> 16) & 15]!;
            eip = (eip + ((w >>> 8) & 15)) | 0;
            break;
          case K.MOV_RI:
            ri[(w >>> 12) & 15] = uc[p + 1]!;
            eip = (eip + ((w >>> 8) & 15)) | 0;
            break;
          case K.MOV_MR: case K.MOV_MI: {
            // uw32(uea(...)) inline: flat segment, aligned, TLB hit.
            const s = uc[p + 3]!, v = (w & 0xff) === K.MOV_MR ? ri[(w >>> 16) & 15]! : uc[p + 1]!, rb = (w >>> 20) & 15, rx = (w >>> 24) & 15;
            let a = uc[p + 2]!;
            if (rb < 8) a = (a + ri[rb]!) | 0;
            if (rx < 8) a = (a + (ri[rx]! << ((w >>> 28) & 3))) | 0;
            if (segFast[s] !== 0) {
              const l = (segBaseI[s]! + a) | 0, e = tW[l >>> 12]!;
              if (e !== 0 && (l & 3) === 0) ram32[(((e - 1) << 12) | (l & 0xfff)) >> 2] = v;
              else { this.wl32(l >>> 0, v); gen = true; }
            } else { this.wl32(this.linSlow(s, a >>> 0, 4, true), v); gen = true; }
            eip = (eip + ((w >>> 8) & 15)) | 0;
            // A TLB hit is plain RAM holding no code, with no watchpoint: only the slow path
            // can set brk.
            if (gen && this.brk !== 0) { p += UREC; break body; }
            break;
          }
          case K.MOV_RM: case K.ALU_RM: {
            // 32-bit load inline (ur32(uea(...))): flat segment, aligned, TLB hit.
            const s = uc[p + 3]!, rb = (w >>> 20) & 15, rx = (w >>> 24) & 15;
            let a = uc[p + 2]!;
            if (rb < 8) a = (a + ri[rb]!) | 0;
            if (rx < 8) a = (a + (ri[rx]! << ((w >>> 28) & 3))) | 0;
            let v: number;
            if (segFast[s] !== 0) {
              const l = (segBaseI[s]! + a) | 0, e = tR[l >>> 12]!;
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
            eip = (eip + ((w >>> 8) & 15)) | 0;
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
            eip = (eip + ((w >>> 8) & 15)) | 0;
            break;
          }
          case K.MOVX_R: {
            const vt = w >>> 30, y = (w >>> 16) & 15;
            let v = (vt & 1) !== 0 ? ri[y]! & 0xffff : y < 4 ? ri[y]! & 0xff : (ri[y - 4]! >> 8) & 0xff;
            if (vt >= 2) v = (vt & 1) !== 0 ? (v << 16) >> 16 : (v << 24) >> 24;
            ri[(w >>> 12) & 15] = v;
            eip = (eip + ((w >>> 8) & 15)) | 0;
            break;
          }
          case K.MOVX_M: {
            // Byte or word load through a flat segment's TLB fast path inline (a word only
            // within its page).
            const vt = w >>> 30, s = uc[p + 3]!, rb = (w >>> 20) & 15, rx = (w >>> 24) & 15;
            let a = uc[p + 2]!;
            if (rb < 8) a = (a + ri[rb]!) | 0;
            if (rx < 8) a = (a + (ri[rx]! << ((w >>> 28) & 3))) | 0;
            let v: number;
            if (segFast[s] !== 0) {
              const l = (segBaseI[s]! + a) | 0, e = tR[l >>> 12]!;
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
            eip = (eip + ((w >>> 8) & 15)) | 0;
            if (gen && this.brk !== 0) { p += UREC; break body; }
            break;
          }
          case K.LEA: {
            const rb = (w >>> 20) & 15, rx = (w >>> 24) & 15;
            let a = uc[p + 2]!;
            if (rb < 8) a = (a + ri[rb]!) | 0;
            if (rx < 8) a = (a + (ri[rx]! << ((w >>> 28) & 3))) | 0;
            ri[(w >>> 12) & 15] = a;
            eip = (eip + ((w >>> 8) & 15)) | 0;
            break;
          }
          case K.INC: {
            const d = (w >>> 12) & 15;
            const a = ri[d]!, r = (a + 1) | 0;
            // INC keeps CF: it goes to EFLAGS from the previous lazy state.
            this.eflags = (this.eflags & ~CF) | this.cf();
            this.lop = LF_INC; this.la = a; this.lb = 1; this.lres = r; this.lsz = 2;
            ri[d] = r;
            eip = (eip + ((w >>> 8) & 15)) | 0;
            break;
          }
          case K.DEC: {
            const d = (w >>> 12) & 15;
            const a = ri[d]!, r = (a - 1) | 0;
            this.eflags = (this.eflags & ~CF) | this.cf();
            this.lop = LF_DEC; this.la = a; this.lb = 1; this.lres = r; this.lsz = 2;
            ri[d] = r;
            eip = (eip + ((w >>> 8) & 15)) | 0;
            break;
          }
          case K.PUSH: {
            // push32 inline: flat 32-bit stack, aligned, TLB hit (plain RAM, no code).
            const v = ri[(w >>> 12) & 15]!, sp = (ri[ESP]! - 4) | 0, l = (segBaseI[SS]! + sp) | 0, e = tW[l >>> 12]!;
            if (stk && e !== 0 && (l & 3) === 0) { ram32[(((e - 1) << 12) | (l & 0xfff)) >> 2] = v; ri[ESP] = sp; }
            else { this.push32(v); gen = true; }
            eip = (eip + ((w >>> 8) & 15)) | 0;
            if (gen && this.brk !== 0) { p += UREC; break body; }
            break;
          }
          case K.POP: {
            const sp = ri[ESP]!, l = (segBaseI[SS]! + sp) | 0, e = tR[l >>> 12]!;
            let v: number;
            if (stk && e !== 0 && (l & 3) === 0) { v = ram32[(((e - 1) << 12) | (l & 0xfff)) >> 2]!; ri[ESP] = (sp + 4) | 0; }
            else { v = this.peek(true) | 0; this.adjSp(4); gen = true; }
            ri[(w >>> 12) & 15] = v;
            eip = (eip + ((w >>> 8) & 15)) | 0;
            if (gen && this.brk !== 0) { p += UREC; break body; }
            break;
          }
          case K.TEST_RR: {
            const x = ri[(w >>> 12) & 15]!, y = ri[(w >>> 16) & 15]!;
            this.lop = LF_LOGIC; this.la = x; this.lb = y; this.lres = x & y; this.lsz = 2;
            eip = (eip + ((w >>> 8) & 15)) | 0;
            break;
          }
          case K.JMP: {
            const t = (eip + ((w >>> 8) & 15) + uc[p + 1]!) | 0;
            if ((t ^ MIN) > csLim) this.gp(0);
            eip = t;
            break;
          }
          case K.JCC: {
            const nx = (eip + ((w >>> 8) & 15)) | 0;
            if (this.cond((w >>> 12) & 15)) {
              const t = (nx + uc[p + 1]!) | 0;
              if ((t ^ MIN) > csLim) this.gp(0);
              eip = t;
            } else eip = nx;
            break;
          }
          case K.CALL: {
            const nx = (eip + ((w >>> 8) & 15)) | 0, t = (nx + uc[p + 1]!) | 0;
            if ((t ^ MIN) > csLim) this.gp(0);
            const sp = (ri[ESP]! - 4) | 0, l = (segBaseI[SS]! + sp) | 0, e = tW[l >>> 12]!;
            if (stk && e !== 0 && (l & 3) === 0) { ram32[(((e - 1) << 12) | (l & 0xfff)) >> 2] = nx; ri[ESP] = sp; }
            else { this.push32(nx); gen = true; }
            eip = t;
            if (gen && this.brk !== 0) { p += UREC; break body; }
            break;
          }
          case K.RET: {
            const sp = ri[ESP]!, l = (segBaseI[SS]! + sp) | 0, e = tR[l >>> 12]!;
            if (stk && e !== 0 && (l & 3) === 0) {
              const t = ram32[(((e - 1) << 12) | (l & 0xfff)) >> 2]!;
              if ((t ^ MIN) > csLim) this.gp(0);
              eip = t;
              ri[ESP] = (sp + 4) | 0;
              break;
            }
            const t = this.peek(true) | 0;
            if ((t ^ MIN) > csLim) this.gp(0);
            eip = t;
            this.adjSp(4);
            gen = true;
            if (this.brk !== 0) { p += UREC; break body; }
            break;
          }
          case K.GEN: {
            const ins = this.ublk[h >> 2]!.insns[(p - h - UHDR) >> 2]!;
            this.eip = eip >>> 0;
            (ins.fn as Handler)(this, ins);
            eip = this.eip | 0;
            gen = true;
            csLim = (this.cr0 & CR0_PE) !== 0 ? (this.segLimit[CS]! ^ MIN) | 0 : 0x7fffffff;
            stk = this.stack32 && segFast[SS] !== 0;
            tR = this.tlbR; tW = this.tlbW;
            if (this.brk !== 0) { p += UREC; break body; }
            break;
          }
          default:
            this.uop(w, uc, p);
            eip = (eip + ((w >>> 8) & 15)) | 0;
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
      if (!chain) break;
      const e = eip;
      let nh = 0;
      if (this.ucf[(h >> 1) + 1] !== this.chainEpoch) {
        nh = this.probeH(eip);
        if (nh !== 0) { this.ucf[(h >> 1) + 1] = this.chainEpoch; uc[h + 4] = e; uc[h + 5] = nh; uc[h + 6] = -1; uc[h + 7] = 0; this.noteLink(eip); }
      }
      else if (uc[h + 4] === e) nh = uc[h + 5]!;
      else if (uc[h + 6] === e) nh = uc[h + 7]!;
      else {
        nh = this.probeH(eip);
        if (nh !== 0 && uc[h + 6] === -1) { uc[h + 6] = e; uc[h + 7] = nh; this.noteLink(eip); }
      }
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
      if ((uc[p]! & 0xff) !== K.GEN) this.eip = eip >>> 0;
      if (e === FAULT && p + UREC !== pend) this.icount = base + ((p - h - UHDR) >> 2);
      this.prevH = h;
      throw e;
    }
    this.eip = eip >>> 0;
    this.prevH = h;
  }

  /**
   * The record kinds interp() does not run inline (no control transfer: EIP is the caller's):
   * the less common ones, kept out of interp() to keep it small.
   */
  protected uop(w: number, uc: Int32Array, p: number): void {
    const regs = this.regs, ri = this.regsI, segFast = this.segFast, segBaseI = this.segBaseI, ram32 = this.ram32, ram8 = this.ram;
    const tR = this.tlbR, tW = this.tlbW, stk = this.stack32 && segFast[SS] !== 0;
    switch (w & 0xff) {
      case K.ALU8_RI: case K.ALU8_RR: {
        // As exec's byte ALU forms between registers (AL, CL, DL, BL, AH, CH, DH, BH).
        const d = (w >>> 20) & 15, op = (w >>> 12) & 15, a = d < 4 ? ri[d]! & 0xff : (ri[d - 4]! >> 8) & 0xff;
        let b: number;
        if ((w & 0xff) === K.ALU8_RI) b = uc[p + 1]!;
        else { const y = (w >>> 16) & 15; b = y < 4 ? ri[y]! & 0xff : (ri[y - 4]! >> 8) & 0xff; }
        const r = this.alu(op === TEST8 ? 4 : op, a, b, 0);
        if (op !== 7 && op !== TEST8) {
          if (d < 4) ri[d] = (ri[d]! & ~0xff) | r; else ri[d - 4] = (ri[d - 4]! & ~0xff00) | (r << 8);
        }
        break;
      }
      case K.ALU8_MI: case K.MOV8_MI: case K.INCDEC_M: {
        // Byte ALU with an immediate on memory, MOV m8, imm8 and INC/DEC m32 through a flat
        // segment's TLB fast path (a read-modify-write needs the read and the write entry, as
        // rdRmw and the store use them); otherwise the accessors exec uses.
        const kk = w & 0xff, s = uc[p + 3]!, op = (w >>> 12) & 15, rb = (w >>> 20) & 15, rx = (w >>> 24) & 15;
        let a = uc[p + 2]!;
        if (rb < 8) a = (a + ri[rb]!) | 0;
        if (rx < 8) a = (a + (ri[rx]! << ((w >>> 28) & 3))) | 0;
        const fast = segFast[s] !== 0, l = (segBaseI[s]! + a) | 0, eR = tR[l >>> 12]!, eW = tW[l >>> 12]!;
        if (kk === K.MOV8_MI) {
          if (fast && eW !== 0) ram8[((eW - 1) << 12) | (l & 0xfff)] = uc[p + 1]!;
          else this.wr8(s, a >>> 0, uc[p + 1]!);
        } else if (kk === K.INCDEC_M) {
          if (fast && eR !== 0 && eW !== 0 && (l & 3) === 0) {
            const v = ram32[(((eR - 1) << 12) | (l & 0xfff)) >> 2]!, r = op === 0 ? (v + 1) | 0 : (v - 1) | 0;
            // INC/DEC keep CF: it goes to EFLAGS from the previous lazy state.
            this.eflags = (this.eflags & ~CF) | this.cf();
            this.lop = op === 0 ? LF_INC : LF_DEC; this.la = v; this.lb = 1; this.lres = r; this.lsz = 2;
            ram32[(((eW - 1) << 12) | (l & 0xfff)) >> 2] = r;
          } else {
            const o = a >>> 0, v = this.rdRmw(2, s, o);
            this.wr32(s, o, op === 0 ? this.inc(v, 2) : this.dec(v, 2));
          }
        } else if (op === 7 || op === TEST8) {
          let v: number;
          if (fast && eR !== 0) v = ram8[((eR - 1) << 12) | (l & 0xfff)]!;
          else v = this.rd8(s, a >>> 0);
          this.alu(op === TEST8 ? 4 : 7, v, uc[p + 1]!, 0);
        } else if (fast && eR !== 0 && eW !== 0) {
          const v = ram8[((eR - 1) << 12) | (l & 0xfff)]!;
          ram8[((eW - 1) << 12) | (l & 0xfff)] = this.alu(op, v, uc[p + 1]!, 0);
        } else {
          const o = a >>> 0, v = this.rdRmw(0, s, o);
          this.wr8(s, o, this.alu(op, v, uc[p + 1]!, 0));
        }
        break;
      }
      case K.PUSH_I: case K.PUSH_M: {
        // PUSH imm32 (sign-extended imm8) and PUSH m32 (read, then pushed) as PUSH.
        let v: number;
        if ((w & 0xff) === K.PUSH_I) v = uc[p + 1]!;
        else {
          const s = uc[p + 3]!, rb = (w >>> 20) & 15, rx = (w >>> 24) & 15;
          let a = uc[p + 2]!;
          if (rb < 8) a = (a + ri[rb]!) | 0;
          if (rx < 8) a = (a + (ri[rx]! << ((w >>> 28) & 3))) | 0;
          const l = (segBaseI[s]! + a) | 0, e = tR[l >>> 12]!;
          if (segFast[s] !== 0 && e !== 0 && (l & 3) === 0) v = ram32[(((e - 1) << 12) | (l & 0xfff)) >> 2]!;
          else v = this.rd32(s, a >>> 0) | 0;
        }
        const sp = (ri[ESP]! - 4) | 0, l = (segBaseI[SS]! + sp) | 0, e = tW[l >>> 12]!;
        if (stk && e !== 0 && (l & 3) === 0) { ram32[(((e - 1) << 12) | (l & 0xfff)) >> 2] = v; ri[ESP] = sp; }
        else this.push32(v);
        break;
      }
      case K.LEAVE: {
        // ESP = EBP, then POP EBP (exec's code off the fast path).
        const bp = ri[EBP]!, l = (segBaseI[SS]! + bp) | 0, e = tR[l >>> 12]!;
        if (stk && e !== 0 && (l & 3) === 0) {
          const v = ram32[(((e - 1) << 12) | (l & 0xfff)) >> 2]!;
          ri[ESP] = (bp + 4) | 0;
          ri[EBP] = v;
          break;
        }
        const sp = this.stack32 ? bp >>> 0 : bp & 0xffff, v = this.rd32(SS, sp);
        this.setReg(this.stack32 ? 2 : 1, ESP, sp);
        this.adjSp(4);
        this.regs[EBP] = v;
        break;
      }
      case K.NOT_R: {
        const d = (w >>> 12) & 15;
        ri[d] = ~ri[d]!;
        break;
      }
      case K.TEST_RI: {
        const a = ri[(w >>> 12) & 15]!, b = uc[p + 1]!;
        this.lop = LF_LOGIC; this.la = a; this.lb = b; this.lres = a & b; this.lsz = 2;
        break;
      }
      case K.TEST_MI:
        this.alu(4, this.ur32(uc[p + 3]!, this.uea(w, uc[p + 2]!)), uc[p + 1]!, 2);
        break;
      case K.XCHG_RR: {
        const x = (w >>> 12) & 15, y = (w >>> 16) & 15, a = ri[x]!;
        ri[x] = ri[y]!; ri[y] = a;
        break;
      }
      case K.NEG_R: {
        const d = (w >>> 12) & 15;
        ri[d] = this.alu(5, 0, ri[d]!, 2);
        break;
      }
      case K.BSWAP_R: {
        const d = (w >>> 12) & 15, v = ri[d]!;
        ri[d] = (v << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
        break;
      }
      case K.CMPXCHG_M: {
        // As exec: the destination is always written (its old value when they differ), then
        // the flags of CMP EAX, destination.
        const s = uc[p + 3]!, o = this.uea(w, uc[p + 2]!), acc = ri[EAX]!, d = this.ur32(s, o) | 0;
        this.uw32(s, o, acc === d ? ri[(w >>> 16) & 15]! : d);
        this.alu(7, acc, d, 2);
        if (acc !== d) ri[EAX] = d;
        break;
      }
      case K.MOV16_MR:
        this.wr(1, uc[p + 3]!, this.uea(w, uc[p + 2]!), ri[(w >>> 16) & 15]! & 0xffff);
        break;
      case K.STR: {
        // As strings.ts without REP: the accesses first (a fault leaves ESI and EDI), then
        // the index registers move by the element size, down when DF is set.
        const sz = (w >>> 16) & 15, width = 1 << sz, step = (this.eflags & DF) !== 0 ? -width : width;
        const si = regs[ESI]!, di = regs[EDI]!;
        switch ((w >>> 12) & 15) {
          case 0: // MOVS
            this.wr(sz, ES, di, this.rd(sz, uc[p + 3]!, si));
            ri[ESI] = (ri[ESI]! + step) | 0; ri[EDI] = (ri[EDI]! + step) | 0;
            break;
          case 1: { // CMPS
            const a = this.rd(sz, uc[p + 3]!, si), b = this.rd(sz, ES, di);
            this.alu(7, a, b, sz);
            ri[ESI] = (ri[ESI]! + step) | 0; ri[EDI] = (ri[EDI]! + step) | 0;
            break;
          }
          case 2: // STOS
            this.wr(sz, ES, di, sz === 0 ? ri[EAX]! & 0xff : ri[EAX]!);
            ri[EDI] = (ri[EDI]! + step) | 0;
            break;
          case 3: { // LODS
            const v = this.rd(sz, uc[p + 3]!, si);
            ri[EAX] = sz === 0 ? (ri[EAX]! & ~0xff) | v : v;
            ri[ESI] = (ri[ESI]! + step) | 0;
            break;
          }
          default: { // SCAS
            const b = this.rd(sz, ES, di);
            this.alu(7, sz === 0 ? ri[EAX]! & 0xff : ri[EAX]!, b, sz);
            ri[EDI] = (ri[EDI]! + step) | 0;
            break;
          }
        }
        break;
      }
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
        const r = this.alu((w >>> 12) & 15, (w & 0x7000) !== 0x7000 ? this.rdRmw(2, s, o) : this.ur32(s, o), regs[(w >>> 16) & 15]!, 2);
        if ((w & 0x7000) !== 0x7000) this.uw32(s, o, r);
        break;
      }
      case K.ALU_MI: {
        const s = uc[p + 3]!, o = this.uea(w, uc[p + 2]!);
        const r = this.alu((w >>> 12) & 15, (w & 0x7000) !== 0x7000 ? this.rdRmw(2, s, o) : this.ur32(s, o), uc[p + 1]! >>> 0, 2);
        if ((w & 0x7000) !== 0x7000) this.uw32(s, o, r);
        break;
      }
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
}
