/**
 * The block translator: hot blocks (executed JIT_THRESHOLD times) become one JavaScript
 * function built with `new Function`, specialised for their instructions. Instructions the
 * translator does not handle are executed by calling the interpreter for that one instruction,
 * so every block can be translated and the opcode table stays the single source of truth for
 * decoding and semantics.
 *
 * Two shapes of function:
 *  - a *block* function runs one block (a block whose last instruction branches back to its
 *    own start loops inside the function);
 *  - a *region* function runs a hot block together with the blocks it reaches by direct
 *    branches, calls and returns inside its 4 KiB page and one other (checked through the
 *    read TLB on entry), when all of them translate without
 *    interpreter fallbacks: a loop spread over several blocks then runs inside one function
 *    (a `switch` on a dense member index), with the instruction budget checked
 *    before each block.
 *
 * Guest registers live in JavaScript locals (int32) for the whole function: they are loaded on
 * entry and written back on every exit, before an interpreter fallback (and reloaded after it),
 * and on a fault (only the calls that can fault are inside a try, off the fast paths: its catch
 * leaves through a fault exit that writes back and rethrows; see jit-insn.ts faultSites).
 *
 * Contract with the run loop (cpu.ts) and the block cache (blocks.ts, block.ts):
 *  - the function runs only when its first block fits the instruction budget, interrupts are
 *    not inhibited and TF is clear; it returns the number of instructions it retired, or -1
 *    when an entry guard fails (the interpreter then runs the block);
 *  - a fault notes the faulting instruction's index (`ci`, stored in `cpu.ci` when the fault
 *    leaves the function); `Block.jitOff[ci]` is that instruction's offset from
 *    the function's entry EIP and `Block.jitIdx[ci]` its index in its block, and `cpu.jitDone`
 *    holds the instructions retired by earlier blocks (or loop iterations) of this call, so a
 *    fault leaves the state the interpreter would;
 *  - `cpu.eip` is written at the end, before an interpreted instruction, and at every exit.
 * Lazy flags are stored only for a flag writer whose result can be observed (by a later
 * reader, a fault, or the block's end).
 */
import { noFTL } from "bun:jsc";
import type { CpuCore as Cpu } from "./interrupts.ts";
import type { Block, BlockFn } from "./block.ts";
import type { Insn } from "./decode.ts";
import { CS } from "./decode.ts";
import { OPFLAGS, OpF, endsBlock } from "./optable.ts";
import { wasmRegion } from "./jit-wasm.ts";
import { flagUse, inlineOnly, translate, translatePair, R, RW, W, type Out, type Prod } from "./jit-insn.ts";

/**
 * Executions before a block is translated, and the most translated blocks kept. Creating a
 * function costs tens of microseconds: thousands of translated blocks that each run rarely are
 * slower than interpreting them, so only blocks that are hot by this measure are translated.
 * The engine's code memory is limited: when JIT_MAX_BLOCKS blocks are translated and another
 * one gets hot, every translation is dropped and the blocks count up to the threshold again
 * (a guest that moves on to other code gets its new hot set translated). A Linux boot and
 * shell session translates about 450 blocks.
 */
export const JIT_THRESHOLD = 500;
/**
 * A block is translated when it reaches the threshold within JIT_WINDOW instructions of its
 * count starting, else its count starts again, and after JIT_LUKEWARM such slow rounds it is
 * translated anyway (cpu.ts hotEnough). Code run a few thousand times over a long stretch (a
 * kernel's initialisation, a program's per-line work) costs more to compile than to interpret:
 * with this rule a Linux boot and shell session takes about two thirds of the CPU time it took
 * with the threshold alone (bench/ linux-boot).
 */
export const JIT_WINDOW = 100_000;
export const JIT_LUKEWARM = 40;
/**
 * A block of at least this many instructions that gets to the threshold slowly is translated
 * then, at its first slow round: its executions so far were already at least 16 K instructions,
 * and straight-line code that long (unrolled hashes and ciphers: blake2s and chacha in a Linux
 * boot, about 30 M instructions interpreted otherwise) runs in long bursts. A Linux boot and
 * shell session takes about 3% less time than without this rule.
 */
export const JIT_LONG_BLOCK = 32;
/**
 * Executions before a block with x87 instructions is translated (it starts counting this far
 * below JIT_THRESHOLD). The interpreter runs each of them through escOp's decoding and
 * checks, translated code makes one call of a form's function: the x87 n-body's 64-instruction
 * blocks ran at about 1 MIPS interpreted, 50 translated, and their first 500 executions were a
 * tenth of a 17 M-instruction run's CPU time.
 */
export const JIT_X87_THRESHOLD = 100;
export const JIT_MAX_BLOCKS = 16384;
/** Polling-loop detection: header visits between two samples of the loop state (emitRegion). */
const SPIN_SAMPLE = 16;
/** "No state saved" (header offsets lie within ±4096). */
const SPIN_NONE = 1 << 30;
/** Where a header's saved state goes in c.spinQ: the instruction count, the lazy flags, the registers (REGS + n). */
const SQ = { DONE: 0, FK: 1, FA: 2, FB: 3, FR: 4, FZ: 5, FC: 6, REGS: 7 } as const;
/**
 * Functions with more source than this stay in JavaScriptCore's DFG tier (bun:jsc noFTL): the
 * FTL tier's compile time grows much faster than the function, and a large region seldom runs
 * long enough to repay it (the boot of a Linux kernel runs each of its hot regions for seconds
 * at most), while small hot loops do gain from it.
 */
export const FTL_MAX_SOURCE = 8000;
/**
 * Region limits: member blocks and instructions; pages: the head's and one other. The second
 * page takes in loops across a page boundary (XZ's BCJ filter: 12 M exits fewer, its phase
 * about 5% faster); up to four pages made larger regions whose compiles cost more than the
 * exits they saved (Linux session with the compiler on the main thread: about 8% more CPU).
 */
const REGION_MAX_BLOCKS = 32;
const REGION_MAX_INSNS = 100;
/**
 * Limits for a region whose head reached the translation threshold within JIT_WINDOW (hot
 * code, not lukewarm): its loops then stay in one function instead of chaining between
 * regions (the Linux boot to its prompt: 28 M calls from one region to the next become 11 M).
 */
const HOT_REGION_MAX_BLOCKS = 256;
const HOT_REGION_MAX_INSNS = 1000;
/**
 * Such a region also takes blocks that ran at least 1/HOT_REGION_SHARE of the threshold (a
 * loop's rarer paths; 1/8 for other regions, blocks.ts): to the prompt, calls between regions
 * 10.8 M -> 4.9 M.
 */
const HOT_REGION_SHARE = 128;

/** What the translator needs from the CPU to grow a region. */
export interface RegionHost {
  /** The valid 32-bit block starting at this physical address, if one is cached. */
  blockAt(phys: number): Block | undefined;
  /** Whether a breakpoint is set at this linear address. */
  hasBreakpoint(lin: number): boolean;
  /** Whether the block ran often enough to be worth translating into a region (at least 1/share of the threshold). */
  hot(b: Block, share?: number): boolean;
  /** The physical page a linear page maps to through the read TLB, else -1. */
  tlbPage(lin: number): number;
  /** Notes that the region headed by `head` has members on physical page `pg`. */
  crossPage(head: Block, pg: number): void;
}

/** Whether an instruction can raise an exception or stop the block (memory and stack accesses). */
function mayFault(i: Insn): boolean {
  const op = i.op;
  if (op >= 0x50 && op <= 0x5f) return true;
  if (op >= 0xd8 && op <= 0xdf) return true; // x87: #NM, #MF, the operand
  if (op === 0xe8 || op === 0xc3 || op === 0xc2 || op === 0x68 || op === 0x6a || op === 0xc9 || op === 0xff) return true;
  if (op === 0xe4 || op === 0xe5 || op === 0xec || op === 0xed || op === 0x131) return true;
  if ((OPFLAGS[op]! & OpF.MODRM) && i.mod !== 3) return op !== 0x8d; // LEA touches no memory
  if ((OPFLAGS[op]! & OpF.MOFFS)) return true;
  if (op >= 0xa4 && op <= 0xaf && op !== 0xa8 && op !== 0xa9) return true; // string instructions
  // Register forms of ALU ops (ADC/SBB included), group 1 and the shifts cannot fault.
  if ((op < 0x40 && (op & 7) < 6) || (op >= 0x80 && op <= 0x83) || op === 0xc0 || op === 0xc1 || (op >= 0xd0 && op <= 0xd3)) return false;
  return flagUse(i) === RW && !(op >= 0x40 && op <= 0x4f); // unknown instructions: assume so
}

/**
 * Instructions a polling loop may contain for its iterations to be skipped (see emitRegion):
 * they write only registers and flags, and read registers, flags, a port or memory (no store,
 * no stack, no division). A memory read counts only when it hits the TLB, which holds plain
 * RAM pages only: nothing but the CPU writes RAM, and a store-free loop cannot, so such reads
 * give the same value until the run ends (emitRegion turns the slow path off for the pass).
 */
function spinSafe(i: Insn): boolean {
  const op = i.op;
  if ((OPFLAGS[op]! & OpF.MODRM) && i.mod !== 3 && op !== 0x8d) return spinLoad(i);
  if (op < 0x40) return (op & 7) < 6;
  if ((op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f)) return true;
  if ((op >= 0x80 && op <= 0x8b) || (op >= 0x90 && op <= 0x97) || (op >= 0xb0 && op <= 0xbf)) return true;
  if ((op >= 0x140 && op <= 0x14f) || (op >= 0x190 && op <= 0x19f)) return true;
  if (op === 0xf6 || op === 0xf7) return i.reg < 4;
  switch (op) {
    case 0xa0: case 0xa1: // MOV AL/EAX, moffs
    case 0x8d: case 0xa8: case 0xa9: case 0xeb: case 0xe9: case 0xe4: case 0xe5: case 0xec: case 0xed:
    case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3:
    case 0x1b6: case 0x1b7: case 0x1be: case 0x1bf:
      return true;
  }
  return false;
}

/**
 * A spinSafe instruction's effect on the 32-bit registers, for emitRegion's polling-loop check:
 * each register n holds the value register src[n] had at the loop header plus off[n], or
 * something else (src[n] = -1). Adding a constant (INC, DEC, ADD/SUB with an immediate, LEA
 * with a base and a displacement), copying a register (MOV, LEA without a displacement) and
 * exchanging two are followed; compares, tests and jumps leave the registers alone; anything
 * else makes what it may write unknown (forms not listed here: every register).
 */
function regEffect(i: Insn, src: Int32Array, off: Int32Array): void {
  const op = i.op, r = i.rm;
  const lost = (n: number): void => { src[n] = -1; src[n & 3] = -1; }; // (byte registers 4-7: AH..BH)
  const add = (n: number, k: number): void => { off[n] = (off[n]! + k) | 0; };
  const copy = (d: number, s: number, k: number): void => { src[d] = src[s]!; off[d] = (off[s]! + k) | 0; };
  if (op >= 0x40 && op <= 0x4f) { if (i.o32) add(op & 7, op < 0x48 ? 1 : -1); else lost(op & 7); return; }
  if ((op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f) || op === 0xeb || op === 0xe9) return;
  if ((op >= 0x38 && op <= 0x3d) || op === 0x84 || op === 0x85 || op === 0xa8 || op === 0xa9) return; // CMP, TEST
  if (op < 0x40) { // the ALU forms spinSafe takes: op r/m, r (0, 1); op r, r/m (2, 3); op AL/EAX, imm (4, 5)
    const f = op & 7;
    if (f === 5 && i.o32 && (op === 0x05 || op === 0x2d)) add(0, op === 0x05 ? i.imm : -i.imm);
    else lost(f >= 4 ? 0 : f >= 2 ? i.reg : r);
    return;
  }
  if (op >= 0x80 && op <= 0x83) {
    if (i.reg === 7) return; // CMP
    if (op !== 0x80 && i.o32 && i.mod === 3 && (i.reg === 0 || i.reg === 5)) {
      const k = op === 0x83 ? (i.imm << 24) >> 24 : i.imm;
      add(r, i.reg === 0 ? k : -k);
    } else lost(r);
    return;
  }
  if ((op === 0x89 || op === 0x8b) && i.o32 && i.mod === 3) { if (op === 0x89) copy(r, i.reg, 0); else copy(i.reg, r, 0); return; }
  if (op === 0x8d) {
    if (i.o32 && i.a32 && i.base >= 0 && i.index < 0) copy(i.reg, i.base, i.disp);
    else lost(i.reg);
    return;
  }
  if (op === 0xf6 || op === 0xf7) { if (i.reg >= 2) lost(r); return; } // TEST (0, 1); NOT, NEG
  if (op === 0x87 && i.o32 && i.mod === 3) {
    const s0 = src[r]!, o0 = off[r]!;
    copy(r, i.reg, 0); src[i.reg] = s0; off[i.reg] = o0;
    return;
  }
  if (op >= 0x90 && op <= 0x97) { if (op !== 0x90) { lost(0); lost(op & 7); } return; }
  if (op === 0x86 || op === 0x87) { lost(i.reg); lost(r); return; }
  if (op === 0x88 || op === 0x89 || op === 0xc0 || op === 0xc1 || (op >= 0xd0 && op <= 0xd3) || (op >= 0x190 && op <= 0x19f)) { lost(r); return; }
  if (op === 0x8a || op === 0x8b || op === 0x1b6 || op === 0x1b7 || op === 0x1be || op === 0x1bf || (op >= 0x140 && op <= 0x14f)) { lost(i.reg); return; }
  if (op >= 0xb0 && op <= 0xbf) { lost(op & 7); return; }
  if (op === 0xa0 || op === 0xa1 || op === 0xe4 || op === 0xe5 || op === 0xec || op === 0xed) { lost(0); return; }
  src.fill(-1);
}

/** Memory-operand forms that only read memory (into registers or flags). */
function spinLoad(i: Insn): boolean {
  const op = i.op;
  if (op < 0x40) return (op & 7) === 2 || (op & 7) === 3 || op === 0x38 || op === 0x39; // op r, m; CMP m, r
  if (op >= 0x80 && op <= 0x83) return i.reg === 7; // CMP m, imm
  if (op === 0xf6 || op === 0xf7) return i.reg < 2; // TEST m, imm
  if (op >= 0x140 && op <= 0x14f) return true; // CMOVcc r, m
  switch (op) {
    case 0x84: case 0x85: case 0x8a: case 0x8b: case 0x1b6: case 0x1b7: case 0x1be: case 0x1bf:
      return true;
  }
  return false;
}

/** One block's translation: every instruction's code (null = interpreter fallback) and flag needs. */
interface Tr {
  b: Block;
  outs: (Out | null)[];
  pure: boolean;
  /** Index of the block's first instruction in the function's ci numbering. */
  ciBase: number;
  /** Offset of the block's start from the function's entry EIP. */
  delta: number;
  /** The register a PC thunk that its last instruction (CALL rel32) calls loads, else -1 (thunkAt). */
  thunk: number;
  /** On the head's page (0) or the region's other page (1). */
  pg: number;
}

/** Flag liveness, backwards, with `fused` readers (conditions taken from a producer's consts) not counted. */
function liveness(ins: Insn[], fused: Set<number>, faults = true): { need: boolean[] } {
  const n = ins.length;
  const need = new Array<boolean>(n).fill(false);
  let live = true; // flags escape the block
  for (let k = n - 1; k >= 0; k--) {
    let u = flagUse(ins[k]!);
    if (fused.has(k)) u &= ~R;
    // (A writer that also reads, ADC/SBB or INC/DEC, needs its result flags only if they are live.)
    if (u & W) need[k] = live;
    if (u === W) live = false;
    if (u & R) live = true;
    // An instruction that can fault (or end the block early after a store) exposes EFLAGS:
    // the flags before it must be exact.
    if (faults && mayFault(ins[k]!)) live = true;
  }
  return { need };
}

function translateAll(ins: Insn[], ciBase: number, need: boolean[], real: boolean[]): (Out | null)[] {
  const outs: (Out | null)[] = [];
  let prod: Prod = null;
  // A rotate's CF and OF wait in `fo` (jit-insn.ts) until the next writer of all the flags.
  let rot = false;
  for (let k = 0; k < ins.length; k++) {
    const i = ins[k]!;
    const code = translate(i, ciBase + k, k, i.off + i.len, need[k]!, prod, need[k]! && !real[k]!);
    outs.push(code);
    const u = flagUse(i);
    if (code !== null && rot && u === W) { code.src += " fo = -1;"; rot = false; }
    if (code !== null && code.src.includes("fo = (")) rot = true;
    if (code === null) prod = null;
    else if (code.prod) prod = { kind: code.prod, k: ciBase + k };
    else if (u & W) prod = null;
    // FSTP m64 ; FLD m64 of the same operand: one call for both (the first's code moves into
    // the second's, behind the call, with the check after its store between).
    const pv = k > 0 ? outs[k - 1] : null;
    if (code !== null && pv && pv.src !== "" && !pv.branch && !pv.ends && !code.branch && !code.ends) {
      const pair = translatePair(ins[k - 1]!, i, pv.src, code.src);
      if (pair !== null) { outs[k - 1] = { ...pv, src: "", store: false }; outs[k] = { ...code, src: pair, store: false }; }
    }
  }
  return outs;
}

function translateBlock(b: Block, ciBase: number, delta: number): Tr {
  const ins = b.insns.slice(0, b.n);
  const n = b.n;
  // First pass: which flag readers take their condition from a producer's consts.
  // (Flags live only for a fault or a stop: `real` leaves those out.)
  let { need } = liveness(ins, new Set());
  let outs = translateAll(ins, ciBase, need, liveness(ins, new Set(), false).need);
  const fused = new Set<number>();
  for (let k = 0; k < n; k++) {
    const o = outs[k];
    // Pure readers only: a writer that may keep the old flags (a shift by CL = 0) is no fused reader.
    if (o && flagUse(ins[k]!) === R && !(o.src.includes("c.cond(") || (o.branch && o.branch.cond.includes("c.cond(")))) {
      // Only readers with no other use of the lazy state (INC/DEC read CF through c.cf()).
      if (!o.src.includes("$MAT")) fused.add(k);
    }
  }
  need = liveness(ins, fused).need;
  outs = translateAll(ins, ciBase, need, liveness(ins, fused, false).need);
  return { b, outs, pure: outs.every((o) => o !== null), ciBase, delta, thunk: -1, pg: 0 };
}

/** Static successors of a block, as offsets from its start (call targets and return points included). */
function successors(b: Block): number[] {
  const last = b.insns[b.n - 1]!;
  const end = last.off + last.len;
  const op = last.op;
  if (!last.o32) return [];
  if ((op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f)) return [end + last.imm, end];
  if (op === 0xeb || op === 0xe9) return [end + last.imm];
  if (op === 0xe8) return [end + last.imm, end];
  if (op === 0xe4 || op === 0xe5 || op === 0xec || op === 0xed || op === 0x131) return [end]; // IN and RDTSC end a block but fall through
  if (endsBlock(op, last.reg)) return [];
  return [end];
}

/**
 * Position-independent code (i386 PIC and PIE: glibc, a static busybox) calls a *PC thunk* at
 * every function entry, `MOV reg, [ESP]; RET`, to load its own address, and the thunk lies on
 * another page than its callers: two region exits per call. When the call's target holds such
 * a thunk (aligned, in the read TLB: a page that can be fetched), this returns its register
 * (else -1) and the region runs the call, the MOV and the RET at once (emitRegion), after the
 * same check of the bytes at run time: a guest that rewrites or remaps the thunk runs it.
 */
function thunkAt(cpu: Cpu, host: RegionHost, lin: number): number {
  if ((lin & 3) !== 0 || host.hasBreakpoint(lin) || host.hasBreakpoint((lin + 3) >>> 0)) return -1;
  const pg = host.tlbPage(lin);
  if (pg < 0) return -1;
  const w = cpu.ram32[(pg << 10) | ((lin & 4095) >> 2)]!;
  const reg = (w >>> 11) & 7;
  return thunkWord(reg) === w && reg !== 4 ? reg : -1;
}
/** The bytes of `MOV reg, [ESP]; RET` (8B /r with ModRM mod 0, rm 4; SIB 24; C3), little-endian, as an int32. */
function thunkWord(reg: number): number {
  return (0x8b | ((0x04 | (reg << 3)) << 8) | (0x24 << 16) | (0xc3 << 24)) | 0;
}

/**
 * The head of the translated region that block `b` is a member of, if that head still heads it
 * (jitEntry 0: the head may since have become a member entering another head's region, whose
 * offsets are not b's rDelta), else null. Translating `b` then costs nothing: it enters that
 * region's function at itself (compileBlock).
 */
export function regionOf(b: Block): Block | null {
  const h = b.rHead;
  return h !== null && h.valid && h.region && h.fn !== null && h.jitEntry === 0 && h.rMembers !== null && h.rMembers.includes(b) ? h : null;
}

/**
 * Translate a block (or a region headed by it), or return null if it is not worth it (16-bit
 * code). Sets `b.jitOff`, `b.jitIdx` (fault bookkeeping) and `b.region`.
 */
export function compileBlock(cpu: Cpu, b: Block, host?: RegionHost): BlockFn | null {
  if (!b.code32 || b.n === 0) return null;
  const startLin = (cpu.segBase[CS]! + cpu.eip) >>> 0;
  const canRegion = !!host && b.phys2 < 0 && !cpu.breakpoints.has(startLin);
  // A member of a region already translated enters that region's function at itself: the
  // blocks of one loop then share one function, however many of them become hot entries.
  const h = canRegion ? regionOf(b) : null;
  if (h !== null) {
    b.jitOff = h.jitOff; b.jitIdx = h.jitIdx; b.jitEntry = b.rDelta; b.region = true; b.xPage = -1; b.rMembers = null;
    return h.fn;
  }
  const head = translateBlock(b, 0, 0);
  const members: Tr[] = [head];
  // The one other page a region may reach into: its linear and physical page numbers.
  let xLin = -1, xPhys = -1;
  if (canRegion && head.pure) {
    // Grow a region over blocks reachable by direct control flow inside the head's page and
    // one other page (a loop across a page boundary, a call of a function elsewhere). Members
    // there are found through the read TLB; the function checks that page's mapping when it
    // runs (emitRegion), and a change of code there drops the region (blocks.ts xHeads).
    const headLin = startLin >>> 12;
    const seen = new Set<number>([0]);
    let insns = b.n;
    const hot = cpu.icount - b.hotFrom <= JIT_WINDOW;
    const maxBlocks = hot ? HOT_REGION_MAX_BLOCKS : REGION_MAX_BLOCKS, maxInsns = hot ? HOT_REGION_MAX_INSNS : REGION_MAX_INSNS;
    for (let q = 0; q < members.length && members.length < maxBlocks; q++) {
      const from = members[q]!;
      for (const s of successors(from.b)) {
        const delta = from.delta + s;
        if (seen.has(delta)) continue;
        seen.add(delta);
        const lin = (startLin + delta) >>> 0, lp = lin >>> 12;
        let phys: number;
        if (lp === headLin) phys = b.phys + delta;
        else {
          // (A PC thunk there is run inline by the call: emitRegion.)
          if ((xLin >= 0 && lp !== xLin) || thunkAt(cpu, host, lin) >= 0) continue;
          const pp = host.tlbPage(lin);
          if (pp < 0 || pp === b.phys >>> 12) continue;
          phys = ((pp << 12) | (lin & 0xfff)) >>> 0;
        }
        const mb = host.blockAt(phys);
        if (!mb || !mb.valid || !mb.code32 || mb.phys2 >= 0 || mb.n === 0) continue;
        if (insns + mb.n > maxInsns || members.length >= maxBlocks) continue;
        if (host.hasBreakpoint(lin) || !host.hot(mb, hot ? HOT_REGION_SHARE : undefined)) continue;
        const t = translateBlock(mb, insns, delta);
        if (!t.pure) continue;
        if (lp !== headLin) { xLin = lp; xPhys = phys >>> 12; t.pg = 1; }
        members.push(t);
        insns += mb.n;
      }
    }
  }
  // A pure head is emitted as a region even alone (it may loop to itself).
  const region = canRegion && head.pure;
  if (region) {
    for (const m of members) {
      const last = m.b.insns[m.b.n - 1]!;
      if (last.op !== 0xe8 || !last.o32) continue;
      m.thunk = thunkAt(cpu, host!, (startLin + m.delta + last.off + last.len + last.imm) >>> 0);
    }
  }
  const total = members.reduce((s, m) => s + m.b.n, 0);
  const jitOff = new Int32Array(total), jitIdx = new Int32Array(total);
  for (const m of members) {
    for (let k = 0; k < m.b.n; k++) { jitOff[m.ciBase + k] = m.delta + m.b.insns[k]!.off; jitIdx[m.ciBase + k] = k; }
  }

  // Registers used anywhere in the function become locals.
  const used = new Set<number>();
  const L: string[] = [];
  const body: string[] = [];
  if (region) emitRegion(members, body, !cpu.noSpinSkip, xLin >= 0); else emitSingle(head, body, startLin, cpu);
  // A region is entered at its head (d0 = 0) or at a member d0 bytes after it.
  if (region) L.push("const E = (c.eip - (d0 | 0)) >>> 0;"); else L.push("const E = c.eip;");
  let text = dropUnusedConsts(body.join("\n").replace(/\$STABLE\(o, \d\)/g, ""));
  for (const mt of text.matchAll(/\br([0-7])\b/g)) used.add(Number(mt[1]));
  const regs = [...used];
  const segs = [0, 1, 2, 3, 4, 5].filter((x) => text.includes(`sb${x}`));
  // Segments that take the inline memory paths (segFast: a writable expand-up data segment
  // with a 4 GiB limit) when the function is built: checked once on entry rather than at every
  // access, in functions without interpreter fallbacks (which may load segments). The entry
  // guard fails (the interpreter runs the block) if one is not fast then.
  const fastSegs = text.includes("$LD") ? [] : segs.filter((x) => cpu.segFast[x] === 1);
  for (const x of fastSegs) text = text.replaceAll(`if (sf${x} && `, "if (");
  // Of those, the ones based at 0 (flat memory: guarded for it too) need no offset apart from
  // the linear address: one variable less to keep (the write of a read-modify-write reuses l).
  const zeroSegs = fastSegs.filter((x) => cpu.segBase[x] === 0);
  for (const x of zeroSegs) {
    text = text.replaceAll(`o = ((o) | 0); l = (sb${x} + o) | 0; `, "")
      .replace(new RegExp(`o = ([^;]*); l = \\(sb${x} \\+ o\\) \\| 0;`, "g"), "l = $1;")
      .replace(new RegExp(`c\\.(jr|jw)(8|16|32)\\(${x}, o >>> 0`, "g"), `c.$1$2(${x}, l >>> 0`);
  }
  const MAT = "if (fk !== 0) { c.jitFlags(fk, fa, fb, fr, fz, fc); fk = 0; }";
  // A rotate's CF and OF over the flags before it, at an exit before the next flag writer.
  const rot = text.includes("fo = (");
  const FO = rot ? " if (fo !== -1) { c.materialise(); c.eflags = (c.eflags & ~2049) | fo; fo = -1; }" : "";
  const WB = MAT + FO + " " + regs.map((n) => `r[${n}] = r${n};`).join(" ");
  // The fault exit (reached by `break R` with fx set): the instructions retired by earlier
  // blocks or iterations of this call and the faulting one's index for cpu.ts, the locals
  // written back, the exception rethrown.
  const FAULTEXIT = `if (fx !== null) { c.jitDone = done; c.ci = ci; ${WB} throw fx; }`;
  // After an interpreter fallback: registers, segments and the TLB of the privilege level may have changed.
  const LD = regs.map((n) => `r${n} = r[${n}] | 0;`).join(" ") + " " + segs.map((x) => `sb${x} = sb[${x}]; sf${x} = sf[${x}] === 1;`).join(" ") + " tr = c.tlbR; tw = c.tlbW;";
  L.push("const m = c.ram, m4 = c.ram32, m2 = c.ram16, sb = c.segBase, sf = c.segFast; let tr = c.tlbR, tw = c.tlbW;");
  L.push(`if (c.segLimit[1] !== 4294967295 || !c.stack32${fastSegs.map((x) => ` || sf[${x}] !== 1`).join("")}${zeroSegs.map((x) => ` || sb[${x}] !== 0`).join("")}) return -1;`);
  // `ci`: the index of the instruction that may fault next, a local (cpu.ci is set on a fault only).
  L.push("let a = 0, b2 = 0, t = 0, o = 0, l = 0, e = 0, p = 0, done = 0, pc = 0, d = 0, ci = 0, cy = 0, fk = 0, fa = 0, fb = 0, fr = 0, fz = 0, fc = 0, sk = 0;");
  if (segs.length) L.push(`let ${segs.map((x) => `sb${x} = sb[${x}], sf${x} = sf[${x}] === 1`).join(", ")};`);
  if (regs.length) L.push(`let ${regs.map((n) => `r${n} = r[${n}] | 0`).join(", ")};`);
  // The entry member's index (emitRegion numbers the members in order). With a second page:
  // whether each page maps where it did at translation (through the read TLB), the entry's
  // own page taken as found (the block cache looked it up).
  const two = xLin >= 0;
  if (two) {
    L.push(`const LE = (sb[1] + E) | 0; let x0 = tr[LE >>> 12] === ${(b.phys >>> 12) + 1}, x1 = tr[(LE + ${(xLin - (startLin >>> 12)) * 4096}) >>> 12] === ${xPhys + 1};`);
  }
  if (region) L.push(`switch (d0 | 0) { ${members.map((m, j) => `case ${m.delta}: d = ${j};${two ? ` x${m.pg} = true;` : ""} break;`).join(" ")} }`);
  const spin = text.includes("$SPINEQ");
  // The state a header saves goes to the CPU's spin slots (c.spinQ, see SQ), not to locals: it
  // would otherwise be live across the whole dispatch loop.
  if (spin) L.push(`let qt = 1, qh = ${SPIN_NONE}, qs = 0, qn = 0, qe = 0; const qq = c.spinQ;`);
  // `fx`: the exception a call raised (see jit-insn.ts faultSites); the fault exit rethrows it.
  L.push(rot ? "let fx = null, fo = -1;" : "let fx = null;");
  const spinEq = regs.map((n) => `r${n} === qq[${SQ.REGS + n}]`).join(" && ") || "true";
  const spinSave = regs.map((n) => `qq[${SQ.REGS + n}] = r${n};`).join(" ");
  L.push(text.replaceAll("$SPINEQ", spinEq).replaceAll("$SPINSAVE", spinSave).replaceAll("$FAULTEXIT", FAULTEXIT).replaceAll("$WB", WB).replaceAll("$LD", LD).replaceAll("$MAT", MAT));
  // Names the function in profiles and stack traces.
  L.push(`//# sourceURL=rrx-${region ? "region" : "block"}-${b.phys.toString(16)}.js`);
  const src = L.join("\n");
  let fn: BlockFn | null = null;
  try {
    // A region goes to WebAssembly when its code allows (jit-wasm.ts), else to JavaScript.
    if (region && cpu.jitWasm) {
      const insn: Insn[] = [];
      for (const m of members) for (let k = 0; k < m.b.n; k++) insn[m.ciBase + k] = m.b.insns[k]!;
      fn = wasmRegion(cpu, src, { off: jitOff, idx: jitIdx, insn });
    }
    if (fn === null) {
      // eslint-disable-next-line no-new-func
      fn = new Function("c", "r", "I", "X", "lim", "d0", src) as BlockFn;
      if (text.length > FTL_MAX_SOURCE) noFTL(fn);
    }
  } catch {
    return null;
  }
  b.jitOff = jitOff;
  b.jitIdx = jitIdx;
  b.jitEntry = 0;
  b.region = members.length > 1;
  b.rMembers = b.region ? members.slice(1).map((m) => m.b) : null;
  for (const m of members) if (m.delta !== 0) { m.b.rHead = b; m.b.rDelta = m.delta; }
  b.xPage = b.region && xLin >= 0 ? xPhys : -1;
  if (b.xPage >= 0) host!.crossPage(b, xPhys);
  return fn;
}

/** The test after a store for a stop it may have caused (see inlineOnly). */
function brkTest(src: string): string {
  return inlineOnly(src) ? "sk !== 0 && c.brk !== 0" : "c.brk !== 0";
}

/**
 * Leaves out the producer consts (`const fa7 = a, fb7 = b2, ft7 = t;`) that no fused condition
 * reads: fewer variables for the engine.
 */
function dropUnusedConsts(text: string): string {
  const uses = new Map<string, number>();
  for (const mt of text.matchAll(/\bf[abt]\d+\b/g)) uses.set(mt[0], (uses.get(mt[0]) ?? 0) + 1);
  return text.replace(/const (f[abt]\d+ = \w+(?:, f[abt]\d+ = \w+)*);/g, (_, decl: string) => {
    const kept = decl.split(", ").filter((d) => uses.get(d.slice(0, d.indexOf(" ")))! > 1);
    return kept.length ? `const ${kept.join(", ")};` : "";
  });
}

/** One block, looping inside the function when it branches back to its own start. */
function emitSingle(tr: Tr, L: string[], startLin: number, cpu: Cpu): void {
  const ins = tr.b.insns;
  const n = tr.b.n;
  const outs = tr.outs;
  const last = outs[n - 1];
  // Blocks are cut at breakpoints, so only the block's own start can hold one; then the loop
  // would pass it without looking. (Setting breakpoints drops every translation, so this is
  // decided again under the new set; translation happens as the block is entered, at cpu.eip.)
  const selfLoop = tr.pure && !!last?.branch && last.branch.takenOff === 0 && !cpu.breakpoints.has(startLin);
  L.push("const e0 = E;");
  // Every way out returns inside R but a fault, which breaks out of it to the fault exit.
  L.push("R: {");
  if (selfLoop) L.push("for (;;) {");
  for (let k = 0; k < n; k++) {
    const i = ins[k]!;
    const nextOff = i.off + i.len;
    const isLast = k === n - 1;
    const code = outs[k]!;
    if (code === null) {
      // Interpreter fallback for this one instruction: registers go back to the array first.
      // A fault inside it finds the registers in the array already.
      L.push(`$WB c.eip = (e0 + ${i.off}) >>> 0; ${isLast ? `c.icount = c.jitBase + ${k};` : ""} try { X(c, I[${k}]); } catch (x) { c.jitDone = done; c.ci = ${k}; throw x; }`);
      if (!isLast) L.push(`$LD if (c.brk !== 0) return ${k + 1};`);
      else L.push(`return ${n};`);
      continue;
    }
    if (isLast && code.branch) {
      const br = code.branch;
      const taken = `((e0 + ${br.takenOff}) >>> 0)`, fall = `((e0 + ${nextOff}) >>> 0)`;
      L.push(code.src);
      if (selfLoop) {
        L.push(`done += ${n}; if (${br.cond}) { if (done + ${n} <= lim) continue; c.eip = e0; } else c.eip = ${fall}; $WB return done; }`);
      } else if (br.cond === "true") {
        L.push(`c.eip = ${taken}; $WB return ${n};`);
      } else {
        L.push(`c.eip = ${br.cond} ? ${taken} : ${fall}; $WB return ${n};`);
      }
      continue;
    }
    // (A pair's first instruction, a store, ended at this one's offset: translateAll.)
    L.push(code.src.replace("$BRKPREV", `if (c.brk !== 0) { c.eip = (e0 + ${i.off}) >>> 0; $WB return done + ${k}; }`));
    if (code.store && !isLast) L.push(`if (${brkTest(code.src)}) { c.eip = (e0 + ${nextOff}) >>> 0; $WB return done + ${k + 1}; }`);
    if (code.ends) { L.push(`$WB return ${n};`); continue; }
    if (isLast) L.push(`c.eip = (e0 + ${nextOff}) >>> 0; $WB return ${n};`);
  }
  L.push("}");
  L.push("$FAULTEXIT");
}

/**
 * A region: a dispatch loop over member blocks keyed by their offset from the head.
 *
 * Polling loops (`spin`): take a loop header (a member some member branches back to) whose
 * instructions are spinSafe (write registers and flags only; read them, ports or memory). When
 * one pass from the header back to it ran only such blocks, every port it read was stable
 * (CpuBus.ioReadStable), every memory read hit the TLB, and every register and the flags are
 * as they were at the pass's start (sampled: see SPIN_SAMPLE), every further pass
 * does exactly the same until the next device deadline, which the run loop's budget never
 * crosses. Such passes are retired without running them: the instruction count advances by
 * whole passes, keeping at least one pass to run for real (so the last port read before the
 * budget runs out happens at its icount), and no observable state differs. Only headers that
 * such a pass can reach again unchanged get the check (see canSpin below); the state a header
 * saves goes to c.spinQ.
 */
function emitRegion(members: Tr[], L: string[], spin: boolean, two: boolean): void {
  const safe = members.map((tr) => tr.b.insns.slice(0, tr.b.n).every(spinSafe));
  // Loop headers: safe members that a member at the same or a higher offset branches to. The
  // fixed point is checked there (one saved state, tagged with the header's offset).
  const headers = new Set<number>();
  for (const tr of members) for (const s of successors(tr.b)) if (s <= 0) headers.add(tr.delta + s);
  // A header counts only if a pass through safe members alone can come back to it unchanged:
  // any other pass clears qs, and one that adds a constant to a register (a search loop's
  // pointer) never ends where it began, so the check could never fire. The state it saves
  // costs the dispatch loop a few loop-carried values, so a region that cannot skip (a
  // decompressor's loop, whose every pass stores) goes without it. Safe members end in direct
  // control flow only: successors() has all their edges. Registers are followed as regEffect
  // says, over the passes from the header through safe members (where paths meet with
  // different values, the register becomes unknown).
  const at = new Map<number, number>(members.map((tr, j) => [tr.delta, j]));
  const canSpin = (h: number): boolean => {
    // A state: src in 0..7, off in 8..15 (regEffect).
    const start = new Int32Array(16);
    for (let n = 0; n < 8; n++) start[n] = n;
    const entry = new Map<number, Int32Array>([[h, start]]);
    let back: Int32Array | null = null;
    const merge = (into: Int32Array, v: Int32Array): boolean => {
      let changed = false;
      for (let n = 0; n < 8; n++) if (into[n]! >= 0 && (into[n] !== v[n] || into[n + 8] !== v[n + 8])) { into[n] = -1; changed = true; }
      return changed;
    };
    const todo = [h];
    while (todo.length !== 0) {
      const j = todo.pop()!, m = members[j]!, v = entry.get(j)!.slice();
      const src = v.subarray(0, 8), off = v.subarray(8);
      for (let k = 0; k < m.b.n; k++) regEffect(m.b.insns[k]!, src, off);
      for (const s of successors(m.b)) {
        const k = at.get(m.delta + s);
        if (k === undefined || !safe[k]) continue;
        if (k === h) { if (back === null) back = v.slice(); else merge(back, v); continue; }
        const e = entry.get(k);
        if (e === undefined) { entry.set(k, v.slice()); todo.push(k); } else if (merge(e, v)) todo.push(k);
      }
    }
    // Every such pass ends with some register at its own value plus a constant other than 0:
    // never where it began.
    if (back === null) return false;
    for (let n = 0; n < 8; n++) if (back[n] === n && back[n + 8] !== 0) return false;
    return true;
  };
  const isHdr = members.map((tr, j) => safe[j]! && headers.has(tr.delta) && canSpin(j));
  spin = spin && isHdr.some((x) => x);
  const writesFlags = members.some((tr, j) => safe[j] && tr.b.insns.slice(0, tr.b.n).some((i) => (flagUse(i) & W) !== 0));
  // Dispatch on a dense index `d` (a jump table): members are 0..n-1 in order; every static
  // successor outside the region gets an index past them whose case leaves. Every exit but a
  // fault leaves through the end (`break R`): with d >= 0 the next EIP is that index's offset
  // from the head, with d = -1 it is in pc.
  const index = new Map<number, number>(members.map((tr, j) => [tr.delta, j]));
  const exits: number[] = [];
  const to = (delta: number): number => {
    let x = index.get(delta);
    if (x === undefined) { x = members.length + exits.length; index.set(delta, x); exits.push(delta); }
    return x;
  };
  const memberSwitch = members.map((tr, j) => `case ${tr.delta}: d = ${j}; continue R;`).join(" ");
  L.push("R: for (;;) { switch (d) {");
  for (const [j, tr] of members.entries()) {
    const ins = tr.b.insns;
    const n = tr.b.n;
    const dl = tr.delta;
    // (A member on a page that no longer maps where it did: the function leaves there.)
    L.push(`case ${j}: { if (done + ${n} > lim${two ? ` || !x${tr.pg}` : ""}) break R; const e0 = ${dl === 0 ? "E" : `(E + ${dl}) >>> 0`};`);
    if (spin && isHdr[j]) {
      const flagsSame = `(fk === 0 ? ${!writesFlags} : fa === qq[${SQ.FA}] && fb === qq[${SQ.FB}] && fr === qq[${SQ.FR}] && fz === qq[${SQ.FZ}] && fc === qq[${SQ.FC}])`;
      // Sampled, so that loops that never reach a fixed point pay almost nothing: every
      // SPIN_SAMPLE-th visit saves the state (armed), and the next visit compares.
      L.push(`if (--qt === 0) { if (qh === ${dl}) {`);
      L.push(`if (qs === 1 && fk === qq[${SQ.FK}] && ${flagsSame} && $SPINEQ) { qn = done - qq[${SQ.DONE}]; qe = Math.floor((lim - done) / qn) - 1; if (qe > 0) { done += qe * qn; c.spinSkipped += qe * qn; } }`);
      L.push(`qh = ${SPIN_NONE}; qt = ${SPIN_SAMPLE}; } else { qh = ${dl}; qt = 1; qs = 1; qq[${SQ.DONE}] = done; qq[${SQ.FK}] = fk; qq[${SQ.FA}] = fa; qq[${SQ.FB}] = fb; qq[${SQ.FR}] = fr; qq[${SQ.FZ}] = fz; qq[${SQ.FC}] = fc; $SPINSAVE } }`);
    } else if (spin && !safe[j]) L.push("qs = 0;");
    // Whether an instruction so far stored: 1 through the inline accessors only, 2 otherwise.
    let stores = 0;
    for (let k = 0; k < n; k++) {
      const i = ins[k]!;
      const nextOff = i.off + i.len;
      const isLast = k === n - 1;
      const code = tr.outs[k]!;
      if (code.store || code.ends) stores = Math.max(stores, inlineOnly(code.src) ? 1 : 2);
      let src = code.src.replace("$BRKPREV", `if (c.brk !== 0) { pc = (e0 + ${i.off}) >>> 0; d = -1; done += ${k}; break R; }`).replace(/\$STABLE\(o, (\d)\)/g, spin ? `if (qh !== ${SPIN_NONE} && !c.ioStable(o, $1)) qs = 0;` : "");
      // A memory read off the TLB (not plain RAM, or crossing a page) makes the pass count as unstable.
      if (spin && safe[j]) src = src.replace(/else \{ ([a-z0-9]+) = (c\.jr(?:8|16|32)\(\d, o >>> 0\));/g, "else { qs = 0; $1 = $2;");
      L.push(src);
      if (isLast) {
        L.push(`done += ${n};`);
        const br = code.branch;
        if (code.ends) {
          // A computed target (RET, CALL, indirect JMP): a member, or out.
          L.push("pc = c.eip; d = -1;");
          if (stores) L.push(`if (${stores === 1 ? "sk !== 0 && " : ""}c.brk !== 0) break R;`);
          if (tr.thunk >= 0) {
            // A call of a PC thunk (thunkAt) that is still there: its MOV and RET as well, on to the return point.
            L.push(`if (done + 2 <= lim && ((l = (sb[1] + pc) | 0) & 3) === 0 && (e = tr[l >>> 12]) !== 0 && m4[((e - 1) << 10) | ((l & 4095) >> 2)] === ${thunkWord(tr.thunk)}) {`);
            L.push(`r${tr.thunk} = (e0 + ${nextOff}) | 0; r4 = (r4 + 4) | 0; done += 2; d = ${to(dl + nextOff)}; continue; }`);
          }
          L.push(`switch ((pc - E) | 0) { ${memberSwitch} } break R; }`);
          continue;
        }
        if (br && br.cond !== "true") L.push(`d = ${br.cond} ? ${to(dl + br.takenOff)} : ${to(dl + nextOff)};`);
        else L.push(`d = ${to(dl + (br ? br.takenOff : nextOff))};`);
        if (stores) L.push(`if (${stores === 1 ? "sk !== 0 && " : ""}c.brk !== 0) break R;`);
        if (code.io) L.push("if (c.brk !== 0 || (c.intrLine && (c.eflags & 512) !== 0)) break R;");
        L.push("continue; }");
      } else if (code.store) {
        L.push(`if (${brkTest(code.src)}) { pc = (e0 + ${nextOff}) >>> 0; d = -1; done += ${k + 1}; break R; }`);
      }
    }
  }
  L.push(`default: break R; } }`);
  L.push("$FAULTEXIT");
  const all = [...members.map((tr) => tr.delta), ...exits];
  L.push(`if (d >= 0) switch (d) { ${all.map((dl, x) => `case ${x}: pc = (E + ${dl}) >>> 0; break;`).join(" ")} }`);
  L.push("c.eip = pc; $WB return done;");
}

// Translation runs once per block: it stays below the engine's top tier (see jit-insn.ts).
for (const f of [compileBlock, translateBlock, translateAll, liveness, successors, emitSingle, emitRegion, dropUnusedConsts]) noFTL(f);
