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
 *    branches, calls and returns inside the same 4 KiB page, when all of them translate without
 *    interpreter fallbacks: a loop spread over several blocks then runs inside one function
 *    (a `switch` on the offset from the region's head), with the instruction budget checked
 *    before each block.
 *
 * Guest registers live in JavaScript locals (int32) for the whole function: they are loaded on
 * entry and written back on every exit, before an interpreter fallback (and reloaded after it),
 * and on a fault (a catch that writes back and rethrows).
 *
 * Contract with the run loop (cpu.ts) and the block cache (blocks.ts, block.ts):
 *  - the function runs only when its first block fits the instruction budget, interrupts are
 *    not inhibited and TF is clear; it returns the number of instructions it retired, or -1
 *    when an entry guard fails (the interpreter then runs the block);
 *  - before any instruction that can fault it notes an index (a local `ci`, stored in `cpu.ci`
 *    when a fault leaves the function); `Block.jitOff[ci]` is that instruction's offset from
 *    the function's entry EIP and `Block.jitIdx[ci]` its index in its block, and `cpu.jitDone`
 *    holds the instructions retired by earlier blocks (or loop iterations) of this call, so a
 *    fault leaves the state the interpreter would;
 *  - `cpu.eip` is written at the end, before an interpreted instruction, and at every exit.
 * Lazy flags are stored only for a flag writer whose result can be observed (by a later
 * reader, a fault, or the block's end).
 */
import type { CpuCore as Cpu } from "./interrupts.ts";
import type { Block, BlockFn } from "./block.ts";
import type { Insn } from "./decode.ts";
import { CS, SS } from "./decode.ts";
import { OPFLAGS, OpF } from "./optable.ts";
import { LF_ADD, LF_DEC, LF_INC, LF_LOGIC, LF_SUB, SH_SHL, SH_SHR, SH_SAR } from "./flags.ts";

/**
 * Executions before a block is translated, and the most translated blocks kept. Creating a
 * function costs tens of microseconds and the engine's code memory is limited: thousands of
 * translated blocks that each run rarely are slower than interpreting them, so only blocks that
 * are hot by this measure are translated, and at most JIT_MAX_BLOCKS of them.
 */
export const JIT_THRESHOLD = 500;
export const JIT_MAX_BLOCKS = 2048;
/** Polling-loop detection: header visits between two samples of the loop state (emitRegion). */
const SPIN_SAMPLE = 16;
/** "No state saved" (header offsets lie within ±4096). */
const SPIN_NONE = 1 << 30;
/** Region limits: member blocks and instructions. */
const REGION_MAX_BLOCKS = 32;
const REGION_MAX_INSNS = 400;


/** What the translator needs from the CPU to grow a region. */
export interface RegionHost {
  /** The valid 32-bit block starting at this physical address, if one is cached. */
  blockAt(phys: number): Block | undefined;
  /** Whether a breakpoint is set at this linear address. */
  hasBreakpoint(lin: number): boolean;
}

// How an instruction uses the arithmetic flags: W = writes all six, R = reads some, P = partial
// writer that also depends on old flags (INC/DEC keep CF), N = neither.
const N = 0, W = 1, R = 2, RW = 3;

function flagUse(i: Insn): number {
  const op = i.op;
  if (op < 0x40 && (op & 7) < 6) return ((op >> 3) === 2 || (op >> 3) === 3) ? RW : W; // ADC/SBB read CF
  if (op >= 0x40 && op <= 0x4f) return RW; // INC/DEC keep CF
  if (op >= 0x70 && op <= 0x7f) return R;
  if (op >= 0x180 && op <= 0x19f) return R;
  if (op >= 0x140 && op <= 0x14f) return R;
  if (op >= 0x80 && op <= 0x83) return (i.reg === 2 || i.reg === 3) ? RW : W;
  if (op === 0x84 || op === 0x85 || op === 0xa8 || op === 0xa9) return W;
  // IMUL: CF/OF defined, the rest undefined (whatever the interpreter leaves): a full writer.
  if (op === 0x1af || op === 0x69 || op === 0x6b) return W;
  // Shifts by a non-zero constant write every arithmetic flag (some undefined); by CL they may not.
  if (op === 0xff || op === 0xfe) return i.reg < 2 ? RW : N;
  if (op === 0xf7 || op === 0xf6) return i.reg === 2 ? N : i.reg === 3 || i.reg < 2 ? W : RW; // TEST, NEG: W; MUL/DIV: RW (conservative)
  // (Rotates change only CF and OF: they are partial writers.)
  if (op === 0xd1 || op === 0xd0 || ((op === 0xc1 || op === 0xc0) && (i.imm & 31) !== 0)) return i.reg >= 4 ? W : RW;
  switch (op) {
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
    case 0x88: case 0x89: case 0x8a: case 0x8b: case 0x8d: case 0x90: case 0xc7: case 0xc6:
    case 0x1b6: case 0x1b7: case 0x1be: case 0x1bf: case 0xe8: case 0xe9: case 0xeb: case 0xc3:
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
    case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
    case 0x68: case 0x6a: case 0xc9: case 0x87: case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
    case 0xe4: case 0xe5: case 0xec: case 0xed:
    case 0x99: case 0x98: case 0xa0: case 0xa1: case 0xa2: case 0xa3: case 0x1c8: case 0x1c9: case 0x1ca: case 0x1cb: case 0x1cc: case 0x1cd: case 0x1ce: case 0x1cf:
      return N;
  }
  return RW; // anything else: assume it reads and writes flags
}

/** Whether an instruction can raise an exception or stop the block (memory and stack accesses). */
function mayFault(i: Insn): boolean {
  const op = i.op;
  if (op >= 0x50 && op <= 0x5f) return true;
  if (op === 0xe8 || op === 0xc3 || op === 0xc2 || op === 0x68 || op === 0x6a || op === 0xc9 || op === 0xff) return true;
  if (op === 0xe4 || op === 0xe5 || op === 0xec || op === 0xed) return true;
  if ((OPFLAGS[op]! & OpF.MODRM) && i.mod !== 3) return op !== 0x8d; // LEA touches no memory
  if ((OPFLAGS[op]! & OpF.MOFFS)) return true;
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

type ProdKind = "sub" | "logic" | "add" | "sub8" | "logic8";
type Prod = { kind: ProdKind; k: number } | null;

interface Out {
  src: string;
  /** Writes memory: the block must stop if the write hit code or a watchpoint. */
  store?: boolean;
  /** Sets c.eip itself (call, ret, indirect jump). */
  ends?: boolean;
  prod?: ProdKind;
  /** A relative branch: condition ("true" for JMP) and the taken target's offset in the block. */
  branch?: { cond: string; takenOff: number };
  /** Port input: the run loop must look at requests and interrupts right after it. */
  io?: boolean;
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
}

/** Flag liveness, backwards, with `fused` readers (conditions taken from a producer's consts) not counted. */
function liveness(ins: Insn[], fused: Set<number>): { need: boolean[] } {
  const n = ins.length;
  const need = new Array<boolean>(n).fill(false);
  let live = true; // flags escape the block
  for (let k = n - 1; k >= 0; k--) {
    let u = flagUse(ins[k]!);
    if (fused.has(k)) u &= ~R;
    if (u & W) need[k] = live || u === RW;
    if (u === W) live = false;
    if (u & R) live = true;
    // An instruction that can fault (or end the block early after a store) exposes EFLAGS:
    // the flags before it must be exact.
    if (mayFault(ins[k]!)) live = true;
  }
  return { need };
}

function translateAll(ins: Insn[], ciBase: number, need: boolean[]): (Out | null)[] {
  const outs: (Out | null)[] = [];
  let prod: Prod = null;
  for (let k = 0; k < ins.length; k++) {
    const i = ins[k]!;
    const code = translate(i, ciBase + k, k, i.off + i.len, need[k]!, prod);
    outs.push(code);
    const u = flagUse(i);
    if (code === null) prod = null;
    else if (code.prod) prod = { kind: code.prod, k: ciBase + k };
    else if (u & W) prod = null;
  }
  return outs;
}

function translateBlock(b: Block, ciBase: number, delta: number): Tr {
  const ins = b.insns.slice(0, b.n);
  const n = b.n;
  // First pass: which flag readers take their condition from a producer's consts.
  let { need } = liveness(ins, new Set());
  let outs = translateAll(ins, ciBase, need);
  const fused = new Set<number>();
  for (let k = 0; k < n; k++) {
    const o = outs[k];
    if (o && (flagUse(ins[k]!) & R) && !(o.src.includes("c.cond(") || (o.branch && o.branch.cond.includes("c.cond(")))) {
      // Only readers with no other use of the lazy state (INC/DEC read CF through c.cf()).
      if (!o.src.includes("$MAT")) fused.add(k);
    }
  }
  need = liveness(ins, fused).need;
  outs = translateAll(ins, ciBase, need);
  return { b, outs, pure: outs.every((o) => o !== null), ciBase, delta };
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
  if (op === 0xe4 || op === 0xe5 || op === 0xec || op === 0xed) return [end]; // IN ends a block but falls through
  if (OPFLAGS[op]! & OpF.TERM) return [];
  return [end];
}

/**
 * Translate a block (or a region headed by it), or return null if it is not worth it (16-bit
 * code). Sets `b.jitOff`, `b.jitIdx` (fault bookkeeping) and `b.region`.
 */
export function compileBlock(cpu: Cpu, b: Block, host?: RegionHost): BlockFn | null {
  if (!b.code32 || b.n === 0) return null;
  const startLin = (cpu.segBase[CS]! + cpu.eip) >>> 0;
  const canRegion = !!host && b.phys2 < 0 && !cpu.breakpoints.has(startLin);
  const head = translateBlock(b, 0, 0);
  const members: Tr[] = [head];
  if (canRegion && head.pure) {
    // Grow a region over blocks reachable by direct control flow inside the head's page.
    const pageOff = b.phys & 0xfff;
    const seen = new Set<number>([0]);
    let insns = b.n;
    for (let q = 0; q < members.length && members.length < REGION_MAX_BLOCKS; q++) {
      const from = members[q]!;
      for (const s of successors(from.b)) {
        const delta = from.delta + s;
        if (seen.has(delta)) continue;
        seen.add(delta);
        if (pageOff + delta < 0 || pageOff + delta >= 4096) continue;
        const mb = host.blockAt(b.phys + delta);
        if (!mb || !mb.valid || !mb.code32 || mb.phys2 >= 0 || mb.n === 0) continue;
        if (insns + mb.n > REGION_MAX_INSNS || members.length >= REGION_MAX_BLOCKS) continue;
        if (host.hasBreakpoint((startLin + delta) >>> 0)) continue;
        const t = translateBlock(mb, insns, delta);
        if (!t.pure) continue;
        members.push(t);
        insns += mb.n;
      }
    }
  }
  // A pure head is emitted as a region even alone (it may loop to itself).
  const region = canRegion && head.pure;
  const total = members.reduce((s, m) => s + m.b.n, 0);
  const jitOff = new Int32Array(total), jitIdx = new Int32Array(total);
  for (const m of members) {
    for (let k = 0; k < m.b.n; k++) { jitOff[m.ciBase + k] = m.delta + m.b.insns[k]!.off; jitIdx[m.ciBase + k] = k; }
  }

  // Registers used anywhere in the function become locals.
  const used = new Set<number>();
  const L: string[] = [];
  const body: string[] = [];
  if (region) emitRegion(members, body, !cpu.noSpinSkip); else emitSingle(head, body, startLin, cpu);
  const text = body.join("\n").replace(/\$STABLE\(o, \d\)/g, "");
  for (const mt of text.matchAll(/\br([0-7])\b/g)) used.add(Number(mt[1]));
  const regs = [...used];
  const segs = [0, 1, 2, 3, 4, 5].filter((x) => text.includes(`sb${x}`));
  const MAT = "if (fk !== 0) { c.jitFlags(fk, fa, fb, fr, fz, fc); fk = 0; }";
  const WB = MAT + " " + regs.map((n) => `r[${n}] = r${n};`).join(" ");
  // After an interpreter fallback: registers, segments and the TLB of the privilege level may have changed.
  const LD = regs.map((n) => `r${n} = r[${n}] | 0;`).join(" ") + " " + segs.map((x) => `sb${x} = sb[${x}]; sf${x} = sf[${x}] === 1;`).join(" ") + " tr = c.tlbR; tw = c.tlbW;";
  L.push("const E = c.eip, m = c.ram, sb = c.segBase, sf = c.segFast; let tr = c.tlbR, tw = c.tlbW;");
  L.push("if (c.segLimit[1] !== 4294967295 || !c.stack32) return -1;");
  // `ci`: the index of the instruction that may fault next, a local (cpu.ci is set on a fault only).
  L.push("let a = 0, b2 = 0, t = 0, o = 0, l = 0, e = 0, p = 0, done = 0, pc = 0, d = 0, ci = 0, fk = 0, fa = 0, fb = 0, fr = 0, fz = 0, fc = 0;");
  if (segs.length) L.push(`let ${segs.map((x) => `sb${x} = sb[${x}], sf${x} = sf[${x}] === 1`).join(", ")};`);
  if (regs.length) L.push(`let ${regs.map((n) => `r${n} = r[${n}] | 0`).join(", ")};`);
  const spin = text.includes("$SPINEQ");
  if (spin) L.push(`let qt = 1, qh = ${SPIN_NONE}, qs = 0, qd = 0, qn = 0, qe = 0, qk = 0, qa = 0, qb = 0, qr = 0, qz = 0, qc = 0${regs.map((n) => `, q${n} = 0`).join("")};`);
  // `sy` is 1 while an interpreter fallback runs (the array is then the truth: a fault inside
  // it must not be overwritten by the locals).
  const fallback = text.includes("$SYNC");
  if (fallback) L.push("let sy = 0;");
  L.push("try {");
  const spinEq = regs.map((n) => `r${n} === q${n}`).join(" && ") || "true";
  const spinSave = regs.map((n) => `q${n} = r${n};`).join(" ");
  L.push(text.replaceAll("c.ci = ", "ci = ").replaceAll("$SPINEQ", spinEq).replaceAll("$SPINSAVE", spinSave).replaceAll("$WB", WB).replaceAll("$LD", LD).replaceAll("$SYNC", "").replaceAll("$MAT", MAT));
  // On a fault: instructions retired by earlier blocks or iterations of this call, for cpu.ts.
  L.push(fallback ? `} catch (x) { c.jitDone = done; c.ci = ci; if (sy === 0) { ${WB} } throw x; }` : `} catch (x) { c.jitDone = done; c.ci = ci; ${WB} throw x; }`);
  // Names the function in profiles and stack traces.
  L.push(`//# sourceURL=rrx-${region ? "region" : "block"}-${b.phys.toString(16)}.js`);
  let fn: BlockFn;
  try {
    // eslint-disable-next-line no-new-func
    fn = new Function("c", "r", "I", "X", "lim", L.join("\n")) as BlockFn;
  } catch {
    return null;
  }
  b.jitOff = jitOff;
  b.jitIdx = jitIdx;
  b.region = members.length > 1;
  return fn;
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
  if (selfLoop) L.push("for (;;) {");
  for (let k = 0; k < n; k++) {
    const i = ins[k]!;
    const nextOff = i.off + i.len;
    const isLast = k === n - 1;
    const code = outs[k]!;
    if (code === null) {
      // Interpreter fallback for this one instruction: registers go back to the array first.
      L.push(`$SYNC$WB sy = 1; c.ci = ${k}; c.eip = (e0 + ${i.off}) >>> 0; ${isLast ? `c.icount = c.jitBase + ${k};` : ""} X(c, I[${k}]);`);
      if (!isLast) L.push(`$LD sy = 0; if (c.brk !== 0) return ${k + 1};`);
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
    L.push(code.src);
    if (code.store && !isLast) L.push(`if (c.brk !== 0) { c.eip = (e0 + ${nextOff}) >>> 0; $WB return done + ${k + 1}; }`);
    if (code.ends) { L.push(`$WB return ${n};`); continue; }
    if (isLast) L.push(`c.eip = (e0 + ${nextOff}) >>> 0; $WB return ${n};`);
  }
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
 * budget runs out happens at its icount), and no observable state differs.
 */
function emitRegion(members: Tr[], L: string[], spin: boolean): void {
  const safe = members.map((tr) => tr.b.insns.slice(0, tr.b.n).every(spinSafe));
  // Loop headers: safe members that a member at the same or a higher offset branches to. The
  // fixed point is checked there (one saved state, tagged with the header's offset).
  const headers = new Set<number>();
  for (const tr of members) for (const s of successors(tr.b)) if (s <= 0) headers.add(tr.delta + s);
  const isHdr = members.map((tr, j) => safe[j]! && headers.has(tr.delta));
  spin = spin && isHdr.some((x) => x);
  const writesFlags = members.some((tr, j) => safe[j] && tr.b.insns.slice(0, tr.b.n).some((i) => (flagUse(i) & W) !== 0));
  L.push("for (;;) { switch (d) {");
  for (const [j, tr] of members.entries()) {
    const ins = tr.b.insns;
    const n = tr.b.n;
    const dl = tr.delta;
    L.push(`case ${dl}: { if (done + ${n} > lim) break; const e0 = ${dl === 0 ? "E" : `(E + ${dl}) >>> 0`};`);
    if (spin && isHdr[j]) {
      const flagsSame = `(fk === 0 ? ${!writesFlags} : fa === qa && fb === qb && fr === qr && fz === qz && fc === qc)`;
      // Sampled, so that loops that never reach a fixed point pay almost nothing: every
      // SPIN_SAMPLE-th visit saves the state (armed), and the next visit compares.
      L.push(`if (--qt === 0) { if (qh === ${dl}) {`);
      L.push(`if (qs === 1 && fk === qk && ${flagsSame} && $SPINEQ) { qn = done - qd; qe = Math.floor((lim - done) / qn) - 1; if (qe > 0) { done += qe * qn; c.spinSkipped += qe * qn; } }`);
      L.push(`qh = ${SPIN_NONE}; qt = ${SPIN_SAMPLE}; } else { qh = ${dl}; qt = 1; qs = 1; qd = done; qk = fk; qa = fa; qb = fb; qr = fr; qz = fz; qc = fc; $SPINSAVE } }`);
    } else if (spin && !safe[j]) L.push("qs = 0;");
    let stores = false;
    for (let k = 0; k < n; k++) {
      const i = ins[k]!;
      const nextOff = i.off + i.len;
      const isLast = k === n - 1;
      const code = tr.outs[k]!;
      if (code.store || code.ends) stores = true;
      let src = code.src.replace(/\$STABLE\(o, (\d)\)/g, spin ? `if (qh !== ${SPIN_NONE} && !c.ioStable(o, $1)) qs = 0;` : "");
      // A memory read off the TLB (not plain RAM, or crossing a page) makes the pass count as unstable.
      if (spin && safe[j]) src = src.replace(/else ([a-z0-9]+) = (c\.rd(?:8|16|32)\(\d, o\)(?: \| 0)?);/g, "else { qs = 0; $1 = $2; }");
      L.push(src);
      if (isLast) {
        L.push(`done += ${n};`);
        const br = code.branch;
        if (code.ends) L.push("pc = c.eip;");
        else if (br && br.cond !== "true") L.push(`pc = ${br.cond} ? ((e0 + ${br.takenOff}) >>> 0) : ((e0 + ${nextOff}) >>> 0);`);
        else L.push(`pc = (e0 + ${br ? br.takenOff : nextOff}) >>> 0;`);
        if (stores) L.push("if (c.brk !== 0) { c.eip = pc; $WB return done; }");
        if (code.io) L.push("if (c.brk !== 0 || (c.intrLine && (c.eflags & 512) !== 0)) { c.eip = pc; $WB return done; }");
        L.push("d = (pc - E) | 0; continue; }");
      } else if (code.store) {
        L.push(`if (c.brk !== 0) { c.eip = (e0 + ${nextOff}) >>> 0; $WB return done + ${k + 1}; }`);
      }
    }
  }
  L.push("} break; }");
  L.push("c.eip = (E + d) >>> 0; $WB return done;");
}

function ea(i: Insn): string {
  let s = String(i.disp | 0);
  if (i.base >= 0) s += ` + r${i.base}`;
  if (i.index >= 0) s += i.scale ? ` + (r${i.index} << ${i.scale})` : ` + r${i.index}`;
  return `((${s}) >>> 0)`;
}
function segOf(i: Insn): number { return i.seg >= 0 ? i.seg : i.defSeg; }
/** An 8-bit register as an expression. */
function r8(n: number): string { return n < 4 ? `(r${n} & 255)` : `((r${n - 4} >> 8) & 255)`; }
/** Assign an 8-bit value (expression in 0..255) to an 8-bit register. */
function setR8(n: number, v: string): string {
  return n < 4 ? `r${n} = (r${n} & -256) | ${v};` : `r${n - 4} = (r${n - 4} & -65281) | (${v} << 8);`;
}

/**
 * Inline 32-bit read of seg:o into `dst` (an int32 local; a statement): the TLB fast path for
 * flat segments and plain-RAM pages, the CPU's accessor otherwise (which checks limits, walks
 * page tables, faults).
 */
function rd32(s: number, off: string, dst: string): string {
  return `o = ${off}; l = (sb${s} + o) >>> 0; if (sf${s} && (e = tr[l >>> 12]) !== 0 && (l & 4095) <= 4092) { p = ((e - 1) << 12) | (l & 4095); ${dst} = m[p] | (m[p + 1] << 8) | (m[p + 2] << 16) | (m[p + 3] << 24); } else ${dst} = c.rd32(${s}, o) | 0;`;
}
/** Inline 32-bit write of `val` (an expression without side effects) to seg:o. */
function wr32(s: number, off: string, val: string): string {
  return `o = ${off}; l = (sb${s} + o) >>> 0; if (sf${s} && (e = tw[l >>> 12]) !== 0 && (l & 4095) <= 4092) { p = ((e - 1) << 12) | (l & 4095); t = ${val}; m[p] = t; m[p + 1] = t >> 8; m[p + 2] = t >> 16; m[p + 3] = t >> 24; } else c.wr32(${s}, o, (${val}) >>> 0);`;
}
function rd16(s: number, off: string, dst: string): string {
  return `o = ${off}; l = (sb${s} + o) >>> 0; if (sf${s} && (e = tr[l >>> 12]) !== 0 && (l & 4095) <= 4094) { p = ((e - 1) << 12) | (l & 4095); ${dst} = m[p] | (m[p + 1] << 8); } else ${dst} = c.rd16(${s}, o);`;
}
function rd8(s: number, off: string, dst: string): string {
  return `o = ${off}; l = (sb${s} + o) >>> 0; if (sf${s} && (e = tr[l >>> 12]) !== 0) { ${dst} = m[((e - 1) << 12) | (l & 4095)]; } else ${dst} = c.rd8(${s}, o);`;
}
function wr8(s: number, off: string, val: string): string {
  return `o = ${off}; l = (sb${s} + o) >>> 0; if (sf${s} && (e = tw[l >>> 12]) !== 0) { m[((e - 1) << 12) | (l & 4095)] = ${val}; } else c.wr8(${s}, o, ${val});`;
}

/** int32 result expressions of the 32-bit ALU ops on locals (ADC/SBB: not translated). */
const ALU_EXPR = [
  (x: string, y: string) => `(${x} + ${y}) | 0`,
  (x: string, y: string) => `${x} | ${y}`,
  null, null,
  (x: string, y: string) => `${x} & ${y}`,
  (x: string, y: string) => `(${x} - ${y}) | 0`,
  (x: string, y: string) => `${x} ^ ${y}`,
  (x: string, y: string) => `(${x} - ${y}) | 0`,
];

/** Flag bookkeeping for an ALU op on locals a (dst) and b2 (src) with result t, size sz (0 or 2). */
function aluFlags(kind: number, sz = 2): string {
  // Pending flags live in locals (fk, fa, fb, fr, fz, fc): the engine drops the dead stores,
  // and $MAT writes them to the CPU where anything can observe them.
  if (kind === 0) return `fk = ${LF_ADD}; fa = a; fb = b2; fr = t; fz = ${sz}; fc = 0;`;
  if (kind === 5 || kind === 7) return `fk = ${LF_SUB}; fa = a; fb = b2; fr = t; fz = ${sz}; fc = 0;`;
  return `fk = ${LF_LOGIC}; fr = t; fz = ${sz};`;
}

/**
 * A condition from a known producer (the last flag writer in this block: its operands and
 * result are kept in block-local consts, int32 for 32-bit producers), or via c.cond().
 */
function condExpr(cc: number, prod: Prod): string {
  if (prod && (prod.kind === "sub8" || prod.kind === "logic8")) {
    // 8-bit producer: operands and result are 0..255.
    const A = `fa${prod.k}`, B = `fb${prod.k}`, T = `ft${prod.k}`;
    const sA = `((${A} << 24) >> 24)`, sB = `((${B} << 24) >> 24)`;
    if (prod.kind === "sub8") {
      switch (cc) {
        case 2: return `(${A} < ${B})`;
        case 3: return `(${A} >= ${B})`;
        case 4: return `(${A} === ${B})`;
        case 5: return `(${A} !== ${B})`;
        case 6: return `(${A} <= ${B})`;
        case 7: return `(${A} > ${B})`;
        case 8: return `((${T} & 128) !== 0)`;
        case 9: return `((${T} & 128) === 0)`;
        case 12: return `(${sA} < ${sB})`;
        case 13: return `(${sA} >= ${sB})`;
        case 14: return `(${sA} <= ${sB})`;
        case 15: return `(${sA} > ${sB})`;
      }
    } else {
      switch (cc) {
        case 2: return "false";
        case 3: return "true";
        case 4: case 6: return `(${T} === 0)`;
        case 5: case 7: return `(${T} !== 0)`;
        case 8: case 12: return `((${T} & 128) !== 0)`;
        case 9: case 13: return `((${T} & 128) === 0)`;
        case 14: return `(${T} === 0 || (${T} & 128) !== 0)`;
        case 15: return `(${T} !== 0 && (${T} & 128) === 0)`;
      }
    }
    return `c.cond(${cc})`;
  }
  if (prod && prod.kind !== "add") {
    const A = `fa${prod.k}`, B = `fb${prod.k}`, T = `ft${prod.k}`;
    if (prod.kind === "sub") {
      switch (cc) {
        case 2: return `((${A} >>> 0) < (${B} >>> 0))`;
        case 3: return `((${A} >>> 0) >= (${B} >>> 0))`;
        case 4: return `(${A} === ${B})`;
        case 5: return `(${A} !== ${B})`;
        case 6: return `((${A} >>> 0) <= (${B} >>> 0))`;
        case 7: return `((${A} >>> 0) > (${B} >>> 0))`;
        case 8: return `(${T} < 0)`;
        case 9: return `(${T} >= 0)`;
        case 12: return `(${A} < ${B})`;
        case 13: return `(${A} >= ${B})`;
        case 14: return `(${A} <= ${B})`;
        case 15: return `(${A} > ${B})`;
      }
    } else {
      switch (cc) {
        case 4: return `(${T} === 0)`;
        case 5: return `(${T} !== 0)`;
        case 8: case 12: return `(${T} < 0)`;
        case 9: case 13: return `(${T} >= 0)`;
        case 14: return `(${T} <= 0)`;
        case 15: return `(${T} > 0)`;
        case 2: return "false";
        case 3: return "true";
        case 6: return `(${T} === 0)`;
        case 7: return `(${T} !== 0)`;
      }
    }
  }
  return `c.cond(${cc})`;
}


/**
 * One instruction as JavaScript on int32 register locals r0..r7, or null (interpreter
 * fallback). `k` numbers the instruction in the function (c.ci, producer consts).
 */
function translate(i: Insn, k: number, kl: number, nextOff: number, needFlags: boolean, prod: Prod): Out | null {
  const out = translate1(i, k, kl, nextOff, needFlags, prod);
  // Anything that reads the CPU's flag state sees the pending (local) flags first.
  if (out && (out.src.includes("c.cond(") || out.branch?.cond.includes("c.cond(")) && !out.src.includes("$MAT")) out.src = "$MAT " + out.src;
  return out;
}

function translate1(i: Insn, k: number, kl: number, nextOff: number, needFlags: boolean, prod: Prod): Out | null {
  const op = i.op;
  if (i.rep !== 0 || !i.a32 || i.lock) return null;
  const o32 = i.o32;
  const nx = `((e0 + ${nextOff}) >>> 0)`;
  // Keep producer operands in block-local consts for later condition evaluation (32-bit producers).
  const keep = (kind: ProdKind) => kind !== "logic" ? `const fa${k} = a, fb${k} = b2, ft${k} = t;` : `const ft${k} = t;`;

  // ---- ALU 00-3F, 32-bit forms ----
  if (op < 0x40 && (op & 7) < 6 && o32) {
    const kind = op >> 3, form = op & 7;
    const f = ALU_EXPR[kind];
    if (form === 0 || form === 2 || form === 4) {
      if (kind === 2 || kind === 3) return null;
      return alu8(i, k, kind, form === 4 ? "imm" : form === 0 ? "rm,r" : "r,rm", needFlags);
    }
    if (!f) return null;
    const pk: ProdKind = kind === 5 || kind === 7 ? "sub" : kind === 0 ? "add" : "logic";
    const fl = aluFlags(kind);
    const res = `t = ${f("a", "b2")};`;
    const kp = keep(pk);
    if (form === 5) {
      return { src: `a = r0; b2 = ${i.imm | 0}; ${res} ${kind !== 7 ? "r0 = t;" : ""} ${fl} ${kp}`, prod: pk };
    }
    if (form === 1) {
      if (i.mod === 3) {
        // xor r, r / sub r, r: the result is 0 whatever the register held.
        return { src: `a = r${i.rm}; b2 = r${i.reg}; ${res} ${kind !== 7 ? `r${i.rm} = t;` : ""} ${fl} ${kp}`, prod: pk };
      }
      const s = segOf(i);
      return {
        src: `c.ci = ${k}; ${rd32(s, ea(i), "a")} b2 = r${i.reg}; ${res} ${kind !== 7 ? wr32(s, "o", "t") : ""} ${fl} ${kp}`,
        store: kind !== 7, prod: pk,
      };
    }
    // form 3: reg, r/m
    const load = i.mod === 3 ? `b2 = r${i.rm};` : `c.ci = ${k}; ${rd32(segOf(i), ea(i), "b2")}`;
    return { src: `${load} a = r${i.reg}; ${res} ${kind !== 7 ? `r${i.reg} = t;` : ""} ${fl} ${kp}`, prod: pk };
  }
  // ---- ALU 00-3F, 8-bit forms (r/m8, r8 / r8, r/m8 / AL, imm8) ----
  if (op < 0x40 && (op & 7) < 6 && ((op & 7) === 0 || (op & 7) === 2 || (op & 7) === 4)) {
    const kind = op >> 3, form = op & 7;
    if (kind === 2 || kind === 3) return null;
    return alu8(i, k, kind, form === 4 ? "imm" : form === 0 ? "rm,r" : "r,rm", needFlags);
  }
  switch (op) {
    case 0x81: case 0x83: {
      if (!o32) return null;
      const kind = i.reg;
      const f = ALU_EXPR[kind];
      if (!f) return null;
      const imm = op === 0x83 ? (i.imm << 24) >> 24 : i.imm | 0;
      const pk: ProdKind = kind === 5 || kind === 7 ? "sub" : kind === 0 ? "add" : "logic";
      const fl = aluFlags(kind);
      const res = `t = ${f("a", "b2")};`;
      const kp = keep(pk);
      if (i.mod === 3) {
        return { src: `a = r${i.rm}; b2 = ${imm}; ${res} ${kind !== 7 ? `r${i.rm} = t;` : ""} ${fl} ${kp}`, prod: pk };
      }
      const s = segOf(i);
      return {
        src: `c.ci = ${k}; ${rd32(s, ea(i), "a")} b2 = ${imm}; ${res} ${kind !== 7 ? wr32(s, "o", "t") : ""} ${fl} ${kp}`,
        store: kind !== 7, prod: pk,
      };
    }
    case 0x80: {
      if (i.reg === 2 || i.reg === 3) return null;
      return alu8(i, k, i.reg, "rm,imm", needFlags);
    }
    case 0x85: {
      if (!o32) return null;
      const load = i.mod === 3 ? `a = r${i.rm};` : `c.ci = ${k}; ${rd32(segOf(i), ea(i), "a")}`;
      return { src: `${load} t = a & r${i.reg}; ${aluFlags(4)} ${keep("logic")}`, prod: "logic" };
    }
    case 0xa9:
      if (!o32) return null;
      return { src: `t = r0 & ${i.imm | 0}; ${aluFlags(4)} ${keep("logic")}`, prod: "logic" };
    case 0x84: {
      const load = i.mod === 3 ? `a = ${r8(i.rm)};` : `c.ci = ${k}; ${rd8(segOf(i), ea(i), "a")}`;
      return { src: `${load} t = a & ${r8(i.reg)}; fk = ${LF_LOGIC}; fr = t; fz = 0; const ft${k} = t;`, prod: "logic8" };
    }
    case 0xa8:
      return { src: `t = r0 & ${i.imm & 255}; fk = ${LF_LOGIC}; fr = t; fz = 0; const ft${k} = t;`, prod: "logic8" };
    case 0xa1:
      if (!o32) return null;
      return { src: `c.ci = ${k}; ${rd32(segOf(i), String(i.disp >>> 0), "r0")}` };
    case 0xa3:
      if (!o32) return null;
      return { src: `c.ci = ${k}; ${wr32(segOf(i), String(i.disp >>> 0), "r0")}`, store: true };
    case 0xa0:
      return { src: `c.ci = ${k}; ${rd8(segOf(i), String(i.disp >>> 0), "t")} ${setR8(0, "t")}` };
    case 0xa2:
      return { src: `c.ci = ${k}; ${wr8(segOf(i), String(i.disp >>> 0), r8(0))}`, store: true };
    case 0x89:
      if (!o32) return null;
      if (i.mod === 3) return { src: `r${i.rm} = r${i.reg};` };
      return { src: `c.ci = ${k}; ${wr32(segOf(i), ea(i), `r${i.reg}`)}`, store: true };
    case 0x8b:
      if (!o32) return null;
      if (i.mod === 3) return { src: `r${i.reg} = r${i.rm};` };
      return { src: `c.ci = ${k}; ${rd32(segOf(i), ea(i), "t")} r${i.reg} = t;` };
    case 0x88:
      if (i.mod === 3) return { src: `t = ${r8(i.reg)}; ${setR8(i.rm, "t")}` };
      return { src: `c.ci = ${k}; ${wr8(segOf(i), ea(i), r8(i.reg))}`, store: true };
    case 0x8a:
      if (i.mod === 3) return { src: `t = ${r8(i.rm)}; ${setR8(i.reg, "t")}` };
      return { src: `c.ci = ${k}; ${rd8(segOf(i), ea(i), "t")} ${setR8(i.reg, "t")}` };
    case 0xc6:
      if (i.reg !== 0) return null;
      if (i.mod === 3) return { src: setR8(i.rm, String(i.imm & 255)) };
      return { src: `c.ci = ${k}; ${wr8(segOf(i), ea(i), String(i.imm & 255))}`, store: true };
    case 0xc7:
      if (!o32 || i.reg !== 0) return null;
      if (i.mod === 3) return { src: `r${i.rm} = ${i.imm | 0};` };
      return { src: `c.ci = ${k}; ${wr32(segOf(i), ea(i), String(i.imm | 0))}`, store: true };
    case 0x8d:
      if (!o32 || i.mod === 3) return null;
      return { src: `r${i.reg} = ${ea(i)} | 0;` };
    case 0x90: return { src: "" };
    case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
      return { src: setR8(op & 7, String(i.imm & 255)) };
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
      if (!o32) return null;
      return { src: `r${op & 7} = ${i.imm | 0};` };
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f: {
      if (!o32) return null;
      const rr = op & 7, dec = op >= 0x48;
      if (!needFlags) return { src: `r${rr} = (r${rr} ${dec ? "-" : "+"} 1) | 0;` };
      return {
        src: `$MAT if (c.lop !== ${LF_INC} && c.lop !== ${LF_DEC}) { c.eflags = (c.eflags & ~1) | c.cf(); } a = r${rr}; t = (a ${dec ? "-" : "+"} 1) | 0; r${rr} = t; c.lop = ${dec ? LF_DEC : LF_INC}; c.la = a; c.lb = 1; c.lres = t; c.lsz = 2;`,
      };
    }
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x55: case 0x56: case 0x57:
      if (!o32) return null;
      return { src: `c.ci = ${k}; ${wr32(SS, "((r4 - 4) >>> 0)", `r${op & 7}`)} r4 = (r4 - 4) | 0;`, store: true };
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5d: case 0x5e: case 0x5f:
      if (!o32) return null;
      return { src: `c.ci = ${k}; ${rd32(SS, "(r4 >>> 0)", "t")} r4 = (r4 + 4) | 0; r${op & 7} = t;` };
    case 0x1b6: case 0x1b7: case 0x1be: case 0x1bf: {
      if (!o32) return null;
      const w = op & 1;
      let src: string;
      let pre = "";
      if (i.mod === 3) src = w ? `(r${i.rm} & 0xffff)` : r8(i.rm);
      else {
        pre = `c.ci = ${k}; ${w ? rd16(segOf(i), ea(i), "t") : rd8(segOf(i), ea(i), "t")}`;
        src = "t";
      }
      if (op >= 0x1be) src = w ? `((${src} << 16) >> 16)` : `((${src} << 24) >> 24)`;
      return { src: `${pre} r${i.reg} = ${src};` };
    }
    case 0x1af: case 0x69: case 0x6b: {
      if (!o32 || needFlags) return null;
      const load = i.mod === 3 ? `b2 = r${i.rm};` : `c.ci = ${k}; ${rd32(segOf(i), ea(i), "b2")}`;
      if (op === 0x1af) return { src: `${load} r${i.reg} = Math.imul(r${i.reg}, b2);` };
      const imm = op === 0x6b ? (i.imm << 24) >> 24 : i.imm | 0;
      return { src: `${load} r${i.reg} = Math.imul(b2, ${imm});` };
    }
    case 0xc1: case 0xd1: case 0xd3: {
      if (!o32 || i.mod !== 3 || i.reg < 4) return null;
      const rm = i.rm, kind = i.reg === 6 ? 4 : i.reg;
      const body = (cnt: string) => {
        // CF/OF are derived from (a, count, t) by Cpu.jitFlags when the flags are materialised.
        const res = kind === 4 ? `a << ${cnt}` : kind === 5 ? `(a >>> ${cnt}) | 0` : `a >> ${cnt}`;
        const flags = ` fk = ${kind === 4 ? SH_SHL : kind === 5 ? SH_SHR : SH_SAR}; fa = a; fb = ${cnt}; fr = t; fz = 2;`;
        return `a = r${rm}; t = ${res}; r${rm} = t;${flags}`;
      };
      if (op === 0xd3) return { src: `b2 = r1 & 31; if (b2 !== 0) { ${body("b2")} }` };
      const n = op === 0xd1 ? 1 : i.imm & 31;
      if (n === 0) return { src: "" };
      return { src: body(String(n)) };
    }
    case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
    case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f:
    case 0x180: case 0x181: case 0x182: case 0x183: case 0x184: case 0x185: case 0x186: case 0x187:
    case 0x188: case 0x189: case 0x18a: case 0x18b: case 0x18c: case 0x18d: case 0x18e: case 0x18f: {
      if (!o32) return null;
      return { src: "", branch: { cond: condExpr(op & 15, prod), takenOff: nextOff + i.imm } };
    }
    case 0xeb: case 0xe9:
      if (!o32) return null;
      return { src: "", branch: { cond: "true", takenOff: nextOff + i.imm } };
    case 0xe8:
      if (!o32) return null;
      return { src: `c.ci = ${k}; ${wr32(SS, "((r4 - 4) >>> 0)", nx)} r4 = (r4 - 4) | 0; c.eip = (e0 + ${nextOff + i.imm}) >>> 0;`, ends: true, store: true };
    case 0x68: case 0x6a: {
      if (!o32) return null;
      const v = op === 0x6a ? (i.imm << 24) >> 24 : i.imm | 0;
      return { src: `c.ci = ${k}; ${wr32(SS, "((r4 - 4) >>> 0)", String(v))} r4 = (r4 - 4) | 0;`, store: true };
    }
    case 0xc9:
      if (!o32) return null;
      return { src: `c.ci = ${k}; ${rd32(SS, "(r5 >>> 0)", "t")} r4 = (r5 + 4) | 0; r5 = t;` };
    case 0xff: {
      if (!o32 || i.reg < 2 || i.reg === 3 || i.reg === 5 || i.reg === 7) return null;
      const load = i.mod === 3 ? `b2 = r${i.rm};` : `${rd32(segOf(i), ea(i), "b2")}`;
      if (i.reg === 4) return { src: `c.ci = ${k}; ${load} c.eip = b2 >>> 0;`, ends: true };
      const push = wr32(SS, "((r4 - 4) >>> 0)", i.reg === 2 ? nx : "b2");
      if (i.reg === 2) return { src: `c.ci = ${k}; ${load} ${push} r4 = (r4 - 4) | 0; c.eip = b2 >>> 0;`, ends: true, store: true };
      return { src: `c.ci = ${k}; ${load} ${push} r4 = (r4 - 4) | 0;`, store: true };
    }
    case 0x140: case 0x141: case 0x142: case 0x143: case 0x144: case 0x145: case 0x146: case 0x147:
    case 0x148: case 0x149: case 0x14a: case 0x14b: case 0x14c: case 0x14d: case 0x14e: case 0x14f: {
      if (!o32) return null;
      const load = i.mod === 3 ? `b2 = r${i.rm};` : `c.ci = ${k}; ${rd32(segOf(i), ea(i), "b2")}`;
      return { src: `${load} if (${condExpr(op & 15, prod)}) r${i.reg} = b2;` };
    }
    case 0x190: case 0x191: case 0x192: case 0x193: case 0x194: case 0x195: case 0x196: case 0x197:
    case 0x198: case 0x199: case 0x19a: case 0x19b: case 0x19c: case 0x19d: case 0x19e: case 0x19f: {
      const v = `(${condExpr(op & 15, prod)} ? 1 : 0)`;
      if (i.mod !== 3) return { src: `c.ci = ${k}; t = ${v}; ${wr8(segOf(i), ea(i), "t")}`, store: true };
      return { src: `t = ${v}; ${setR8(i.rm, "t")}` };
    }
    case 0xf7: {
      if (o32 && i.reg === 0) { // TEST r/m32, imm32
        const load = i.mod === 3 ? `a = r${i.rm};` : `c.ci = ${k}; ${rd32(segOf(i), ea(i), "a")}`;
        return { src: `${load} t = a & ${i.imm | 0}; ${aluFlags(4)} ${keep("logic")}`, prod: "logic" };
      }
      if (!o32 || i.mod !== 3 || (i.reg !== 2 && i.reg !== 3)) return null;
      if (i.reg === 2) return { src: `r${i.rm} = ~r${i.rm};` };
      return { src: `a = 0; b2 = r${i.rm}; t = (0 - b2) | 0; r${i.rm} = t; ${aluFlags(5)}` };
    }
    case 0x99:
      if (!o32) return null;
      return { src: "r2 = r0 >> 31;" };
    case 0x87:
      if (!o32 || i.mod !== 3) return null;
      return { src: `t = r${i.rm}; r${i.rm} = r${i.reg}; r${i.reg} = t;` };
    case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
      if (!o32) return null;
      return { src: `t = r0; r0 = r${op & 7}; r${op & 7} = t;` };
    case 0x1c8: case 0x1c9: case 0x1ca: case 0x1cb: case 0x1cc: case 0x1cd: case 0x1ce: case 0x1cf: {
      if (!o32) return null;
      const n = op & 7;
      return { src: `t = r${n}; r${n} = (t >>> 24) | ((t >> 8) & 0xff00) | ((t << 8) & 0xff0000) | (t << 24);` };
    }
    case 0xe4: case 0xe5: case 0xec: case 0xed: { // IN: icount exact for the device, as in the interpreter
      const w = (op & 1) === 0 ? 1 : o32 ? 4 : 2;
      const port = op <= 0xe5 ? String(i.imm & 0xff) : "(r2 & 0xffff)";
      const set = w === 1 ? setR8(0, "t") : w === 2 ? "r0 = (r0 & -65536) | (t & 0xffff);" : "r0 = t | 0;";
      return { src: `c.ci = ${k}; o = ${port}; c.checkIo(o, ${w}); c.icount = c.jitBase + done + ${kl}; $STABLE(o, ${w}) t = c.bus.ioRead(o, ${w}); c.icount = c.jitBase; ${set}`, io: true };
    }
    case 0xc3:
      if (!o32) return null;
      return { src: `c.ci = ${k}; ${rd32(SS, "(r4 >>> 0)", "t")} r4 = (r4 + 4) | 0; c.eip = t >>> 0;`, ends: true };
  }
  return null;
}

/**
 * 8-bit ALU (ADD/OR/AND/SUB/XOR/CMP; ADC/SBB excluded by the caller) in one of its forms.
 * Flags are stored for size 0 when needed; no fused producer (conditions use c.cond()).
 */
function alu8(i: Insn, k: number, kind: number, form: "imm" | "rm,r" | "r,rm" | "rm,imm", needFlags: boolean): Out | null {
  const ops = ["+", "|", "", "", "&", "-", "^", "-"];
  const opx = ops[kind]!;
  const res = `t = (a ${opx} b2) & 255;`;
  const pk: ProdKind | undefined = kind === 5 || kind === 7 ? "sub8" : kind === 0 ? undefined : "logic8";
  const fl = aluFlags(kind, 0) + (pk === "sub8" ? ` const fa${k} = a, fb${k} = b2, ft${k} = t;` : pk ? ` const ft${k} = t;` : "");
  const write = kind !== 7;
  if (form === "imm") {
    return { src: `a = r0 & 255; b2 = ${i.imm & 255}; ${res} ${write ? setR8(0, "t") : ""} ${fl}`, prod: pk };
  }
  if (form === "r,rm") {
    const load = i.mod === 3 ? `b2 = ${r8(i.rm)};` : `c.ci = ${k}; ${rd8(segOf(i), ea(i), "b2")}`;
    return { src: `${load} a = ${r8(i.reg)}; ${res} ${write ? setR8(i.reg, "t") : ""} ${fl}`, prod: pk };
  }
  const src = form === "rm,r" ? r8(i.reg) : String(i.imm & 255);
  if (i.mod === 3) return { src: `a = ${r8(i.rm)}; b2 = ${src}; ${res} ${write ? setR8(i.rm, "t") : ""} ${fl}`, prod: pk };
  const s = segOf(i);
  return {
    src: `c.ci = ${k}; ${rd8(s, ea(i), "a")} b2 = ${src}; ${res} ${write ? wr8(s, "o", "t") : ""} ${fl}`,
    store: write, prod: pk,
  };
}
