/**
 * The block translator: hot blocks (executed JIT_THRESHOLD times) become one JavaScript
 * function built with `new Function`, specialised for their instructions. Instructions the
 * translator does not handle are executed by calling the interpreter for that one instruction,
 * so every block can be translated and the opcode table stays the single source of truth for
 * decoding and semantics.
 *
 * Contract with the run loop (cpu.ts):
 *  - the function runs only when the whole block fits the instruction budget, interrupts are
 *    not inhibited and TF is clear; it returns the number of instructions it retired (the block
 *    length, or fewer when something set `cpu.brk` after a memory write), or -1 when an entry
 *    guard fails (the interpreter then runs the block);
 *  - before any instruction that can fault it stores the instruction's index in `cpu.ci`, and
 *    it writes `cpu.eip` only at the end or before an interpreted instruction, so a fault leaves
 *    the architectural state as the interpreter would.
 * Lazy flags are stored only for the last flag-writer before a reader or the block's end.
 */
import type { Cpu, Block } from "./cpu.ts";
import type { Insn } from "./decode.ts";
import { CS, DS, SS } from "./decode.ts";
import { exec } from "./exec.ts";
import { OPFLAGS, OpF } from "./optable.ts";
import { LF_ADD, LF_DEC, LF_INC, LF_LOGIC, LF_SUB } from "./flags.ts";

/**
 * Executions before a block is translated, and the most translated blocks kept. Creating a
 * function costs tens of microseconds and the engine's code memory is limited: thousands of
 * translated blocks that each run rarely are slower than interpreting them, so only blocks that
 * are hot by this measure are translated, and at most JIT_MAX_BLOCKS of them.
 */
export const JIT_THRESHOLD = 500;
export const JIT_MAX_BLOCKS = 2048;

/** Runs the block; `lim` is the instruction budget (a self-looping block iterates within it). */
export type BlockFn = (c: Cpu, r: Uint32Array, I: Insn[], X: typeof exec, lim: number) => number;

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
  // Shifts by a non-zero constant write every arithmetic flag (some undefined); by CL they may not.
  if (op === 0xff) return i.reg < 2 ? RW : N;
  if (op === 0xf7) return i.reg === 2 ? N : i.reg === 3 || i.reg < 2 ? W : RW;
  // (Rotates change only CF and OF: they are partial writers.)
  if (op === 0xd1 || (op === 0xc1 && (i.imm & 31) !== 0)) return i.reg >= 4 ? W : RW;
  switch (op) {
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
    case 0x88: case 0x89: case 0x8a: case 0x8b: case 0x8d: case 0x90: case 0xc7: case 0xc6:
    case 0x1b6: case 0x1b7: case 0x1be: case 0x1bf: case 0xe8: case 0xe9: case 0xeb: case 0xc3:
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
    case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
    case 0x68: case 0x6a: case 0xc9: case 0x87: case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
    case 0x99: case 0x98: case 0xa1: case 0xa3: case 0x1c8: case 0x1c9: case 0x1ca: case 0x1cb: case 0x1cc: case 0x1cd: case 0x1ce: case 0x1cf:
      return N;
  }
  return RW; // anything else: assume it reads and writes flags
}

/** Whether an instruction can raise an exception or stop the block (memory and stack accesses). */
function mayFault(i: Insn): boolean {
  const op = i.op;
  if (op >= 0x50 && op <= 0x5f) return true;
  if (op === 0xe8 || op === 0xc3 || op === 0xc2 || op === 0x68 || op === 0x6a || op === 0xc9 || op === 0xff) return true;
  if ((OPFLAGS[op]! & OpF.MODRM) && i.mod !== 3) return op !== 0x8d; // LEA touches no memory
  if ((OPFLAGS[op]! & OpF.MOFFS)) return true;
  return flagUse(i) === RW && !(op >= 0x40 && op <= 0x4f); // unknown instructions: assume so
}

const COND_NAMES = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];
void COND_NAMES;

/** Translate a block, or return null if it is not worth it (16-bit code). */
export function compileBlock(cpu: Cpu, b: Block): BlockFn | null {
  if (!b.code32) return null;
  const ins = b.insns;
  const n = b.n;
  // Flag liveness, backwards: is this instruction's flag output needed?
  const need = new Array<boolean>(n).fill(false);
  let live = true; // flags escape the block
  for (let k = n - 1; k >= 0; k--) {
    const u = flagUse(ins[k]!);
    if (u & W) need[k] = live || u === RW;
    if (u === W) live = false;
    if (u & R) live = true;
    // An instruction that can fault (or end the block early after a store) exposes EFLAGS:
    // the flags before it must be exact.
    if (mayFault(ins[k]!)) live = true;
  }
  // Translate every instruction first; a block whose instructions all translate and whose
  // last instruction branches back to its own start becomes a loop inside the function.
  const outs: (Out | null)[] = [];
  let prod: { kind: "sub" | "logic"; k: number } | null = null;
  for (let k = 0; k < n; k++) {
    const i = ins[k]!;
    const code = translate(i, k, i.off + i.len, need[k]!, prod);
    outs.push(code);
    const u = flagUse(i);
    if (code === null) prod = null;
    else if (code.prod) prod = { kind: code.prod, k };
    else if (u & W) prod = null;
  }
  const last = outs[n - 1];
  // Blocks are cut at breakpoints, so only the block's own start can hold one; then the loop
  // would pass it without looking. (Setting breakpoints drops every translation, so this is
  // decided again under the new set; translation happens as the block is entered, at cpu.eip.)
  const startLin = (cpu.segBase[CS]! + cpu.eip) >>> 0;
  const selfLoop = outs.every((o) => o !== null) && !!last?.branch && last.branch.takenOff === 0 && !cpu.breakpoints.has(startLin);

  const L: string[] = [];
  L.push("const e0 = c.eip, m = c.ram, sb = c.segBase, sf = c.segFast, tr = c.tlbR, tw = c.tlbW; let a = 0, b2 = 0, t = 0, o = 0, l = 0, e = 0, p = 0, done = 0;");
  L.push("if (c.segLimit[1] !== 4294967295 || !c.stack32) return -1;");
  if (selfLoop) L.push("for (;;) { c.jitDone = done;");
  for (let k = 0; k < n; k++) {
    const i = ins[k]!;
    const nextOff = i.off + i.len;
    const isLast = k === n - 1;
    const code = outs[k]!;
    if (code === null) {
      // Interpreter fallback for this one instruction.
      L.push(`c.ci = ${k}; c.eip = (e0 + ${i.off}) >>> 0; ${isLast ? `c.icount = c.jitBase + ${k};` : ""} X(c, I[${k}]);`);
      if (!isLast) L.push(`if (c.brk !== 0) return ${k + 1};`);
      else L.push(`return ${n};`);
      continue;
    }
    if (isLast && code.branch) {
      const br = code.branch;
      const taken = `((e0 + ${br.takenOff}) >>> 0)`, fall = `((e0 + ${nextOff}) >>> 0)`;
      L.push(code.src);
      if (selfLoop) {
        L.push(`done += ${n}; if (${br.cond}) { if (done + ${n} <= lim) continue; c.eip = e0; } else c.eip = ${fall}; return done; }`);
      } else if (br.cond === "true") {
        L.push(`c.eip = ${taken}; return ${n};`);
      } else {
        L.push(`c.eip = ${br.cond} ? ${taken} : ${fall}; return ${n};`);
      }
      continue;
    }
    L.push(code.src);
    if (code.store && !isLast) L.push(`if (c.brk !== 0) { c.eip = (e0 + ${nextOff}) >>> 0; return done + ${k + 1}; }`);
    if (code.ends) { L.push(`return ${n};`); continue; }
    if (isLast) L.push(`c.eip = (e0 + ${nextOff}) >>> 0; return ${n};`);
  }
  try {
    // eslint-disable-next-line no-new-func
    return new Function("c", "r", "I", "X", "lim", L.join("\n")) as BlockFn;
  } catch {
    return null;
  }
}

interface Out {
  src: string;
  /** Writes memory: the block must stop if the write hit code or a watchpoint. */
  store?: boolean;
  /** Sets EIP itself (call, ret). */
  ends?: boolean;
  prod?: "sub" | "logic";
  /** A relative branch: condition ("true" for JMP) and the taken target's offset in the block. */
  branch?: { cond: string; takenOff: number };
}

function ea(i: Insn): string {
  let s = String(i.disp | 0);
  if (i.base >= 0) s += ` + r[${i.base}]`;
  if (i.index >= 0) s += i.scale ? ` + (r[${i.index}] << ${i.scale})` : ` + r[${i.index}]`;
  return `((${s}) >>> 0)`;
}
function segOf(i: Insn): number { return i.seg >= 0 ? i.seg : i.defSeg; }
/** An 8-bit register as an expression. */
function r8(n: number): string { return n < 4 ? `(r[${n}] & 255)` : `((r[${n - 4}] >>> 8) & 255)`; }

/**
 * Inline 32-bit read of seg:o into `dst` (a statement): the TLB fast path for flat segments and
 * plain-RAM pages, the CPU's accessor otherwise (which checks limits, walks page tables, faults).
 */
function rd32(s: number, off: string, dst: string): string {
  return `o = ${off}; l = (sb[${s}] + o) >>> 0; if (sf[${s}] === 1 && (e = tr[l >>> 12]) !== 0 && (l & 4095) <= 4092) { p = ((e - 1) << 12) | (l & 4095); ${dst} = (m[p] | (m[p + 1] << 8) | (m[p + 2] << 16) | (m[p + 3] << 24)) >>> 0; } else ${dst} = c.rd32(${s}, o);`;
}
/** Inline 32-bit write of `val` (an expression without side effects) to seg:o. */
function wr32(s: number, off: string, val: string): string {
  return `o = ${off}; l = (sb[${s}] + o) >>> 0; if (sf[${s}] === 1 && (e = tw[l >>> 12]) !== 0 && (l & 4095) <= 4092) { p = ((e - 1) << 12) | (l & 4095); t = ${val}; m[p] = t; m[p + 1] = t >>> 8; m[p + 2] = t >>> 16; m[p + 3] = t >>> 24; } else c.wr32(${s}, o, ${val});`;
}
function rd8(s: number, off: string, dst: string): string {
  return `o = ${off}; l = (sb[${s}] + o) >>> 0; if (sf[${s}] === 1 && (e = tr[l >>> 12]) !== 0) { ${dst} = m[((e - 1) << 12) | (l & 4095)]; } else ${dst} = c.rd8(${s}, o);`;
}
function wr8(s: number, off: string, val: string): string {
  return `o = ${off}; l = (sb[${s}] + o) >>> 0; if (sf[${s}] === 1 && (e = tw[l >>> 12]) !== 0) { m[((e - 1) << 12) | (l & 4095)] = ${val}; } else c.wr8(${s}, o, ${val});`;
}

const ALU_EXPR = [
  (x: string, y: string) => `(${x} + ${y})`,
  (x: string, y: string) => `(${x} | ${y})`,
  null, null,
  (x: string, y: string) => `(${x} & ${y})`,
  (x: string, y: string) => `(${x} - ${y})`,
  (x: string, y: string) => `(${x} ^ ${y})`,
  (x: string, y: string) => `(${x} - ${y})`,
];

/** Flag bookkeeping for a 32-bit ALU op on locals a (dst) and b2 (src) with result t. */
function aluFlags(kind: number, need: boolean): string {
  if (!need) return "";
  if (kind === 0) return "c.lop = " + LF_ADD + "; c.la = a; c.lb = b2; c.lres = t; c.lsz = 2; c.lcin = 0;";
  if (kind === 5 || kind === 7) return "c.lop = " + LF_SUB + "; c.la = a; c.lb = b2; c.lres = t; c.lsz = 2; c.lcin = 0;";
  return "c.lop = " + LF_LOGIC + "; c.lres = t; c.lsz = 2;";
}

/** A condition from a known producer (the last flag writer in this block), or via c.cond(). */
function condExpr(cc: number, prod: { kind: "sub" | "logic"; k: number } | null): string {
  if (prod) {
    const A = `fa${prod.k}`, B = `fb${prod.k}`, T = `ft${prod.k}`;
    if (prod.kind === "sub") {
      switch (cc) {
        case 2: return `(${A} < ${B})`;
        case 3: return `(${A} >= ${B})`;
        case 4: return `(${A} === ${B})`;
        case 5: return `(${A} !== ${B})`;
        case 6: return `(${A} <= ${B})`;
        case 7: return `(${A} > ${B})`;
        case 8: return `((${T} & 0x80000000) !== 0)`;
        case 9: return `((${T} & 0x80000000) === 0)`;
        case 12: return `((${A} | 0) < (${B} | 0))`;
        case 13: return `((${A} | 0) >= (${B} | 0))`;
        case 14: return `((${A} | 0) <= (${B} | 0))`;
        case 15: return `((${A} | 0) > (${B} | 0))`;
      }
    } else {
      switch (cc) {
        case 4: return `(${T} === 0)`;
        case 5: return `(${T} !== 0)`;
        case 8: case 12: return `((${T} | 0) < 0)`;
        case 9: case 13: return `((${T} | 0) >= 0)`;
        case 14: return `((${T} | 0) <= 0)`;
        case 15: return `((${T} | 0) > 0)`;
        case 2: return "false";
        case 3: return "true";
        case 6: return `(${T} === 0)`;
        case 7: return `(${T} !== 0)`;
      }
    }
  }
  return `c.cond(${cc})`;
}

function translate(i: Insn, k: number, nextOff: number, needFlags: boolean, prod: { kind: "sub" | "logic"; k: number } | null): Out | null {
  const op = i.op;
  if (i.rep !== 0 || !i.a32) return null;
  const o32 = i.o32;
  const nx = `((e0 + ${nextOff}) >>> 0)`;
  // Keep producer operands in block-local consts for later condition evaluation.
  const keep = (kind: "sub" | "logic") => kind === "sub" ? `const fa${k} = a, fb${k} = b2, ft${k} = t;` : `const ft${k} = t;`;

  // ---- ALU 00-3F, 32-bit forms ----
  if (op < 0x40 && (op & 7) < 6 && o32) {
    const kind = op >> 3, form = op & 7;
    const f = ALU_EXPR[kind];
    if (!f || form === 0 || form === 2 || form === 4) return null;
    const pk: "sub" | "logic" | undefined = kind === 5 || kind === 7 ? "sub" : kind === 0 ? undefined : "logic";
    const fl = aluFlags(kind, needFlags || !!pk);
    const res = `t = ${f("a", "b2")} >>> 0;`;
    if (form === 5) {
      const src = `a = r[0]; b2 = ${i.imm >>> 0}; ${res} ${kind !== 7 ? "r[0] = t;" : ""} ${fl} ${pk ? keep(pk) : ""}`;
      return { src, prod: pk };
    }
    if (form === 1) {
      if (i.mod === 3) {
        return { src: `a = r[${i.rm}]; b2 = r[${i.reg}]; ${res} ${kind !== 7 ? `r[${i.rm}] = t;` : ""} ${fl} ${pk ? keep(pk) : ""}`, prod: pk };
      }
      const s = segOf(i);
      return {
        src: `c.ci = ${k}; ${rd32(s, ea(i), "a")} b2 = r[${i.reg}]; ${res} ${kind !== 7 ? wr32(s, "o", "t") : ""} ${fl} ${pk ? keep(pk) : ""}`,
        store: kind !== 7, prod: pk,
      };
    }
    // form 3: reg, r/m
    const load = i.mod === 3 ? `b2 = r[${i.rm}];` : `c.ci = ${k}; ${rd32(segOf(i), ea(i), "b2")}`;
    return { src: `${load} a = r[${i.reg}]; ${res} ${kind !== 7 ? `r[${i.reg}] = t;` : ""} ${fl} ${pk ? keep(pk) : ""}`, prod: pk };
  }
  switch (op) {
    case 0x81: case 0x83: {
      if (!o32) return null;
      const kind = i.reg;
      const f = ALU_EXPR[kind];
      if (!f) return null;
      const imm = op === 0x83 ? ((i.imm << 24) >> 24) >>> 0 : i.imm >>> 0;
      const pk: "sub" | "logic" | undefined = kind === 5 || kind === 7 ? "sub" : kind === 0 ? undefined : "logic";
      const fl = aluFlags(kind, needFlags || !!pk);
      const res = `t = ${f("a", "b2")} >>> 0;`;
      if (i.mod === 3) {
        return { src: `a = r[${i.rm}]; b2 = ${imm}; ${res} ${kind !== 7 ? `r[${i.rm}] = t;` : ""} ${fl} ${pk ? keep(pk) : ""}`, prod: pk };
      }
      const s = segOf(i);
      return {
        src: `c.ci = ${k}; ${rd32(s, ea(i), "a")} b2 = ${imm}; ${res} ${kind !== 7 ? wr32(s, "o", "t") : ""} ${fl} ${pk ? keep(pk) : ""}`,
        store: kind !== 7, prod: pk,
      };
    }
    case 0x85: {
      if (!o32) return null;
      const src = i.mod === 3 ? `r[${i.rm}]` : `c.rd32(${segOf(i)}, ${ea(i)})`;
      return { src: `${i.mod === 3 ? "" : `c.ci = ${k};`} t = (${src} & r[${i.reg}]) >>> 0; ${aluFlags(4, true)} ${keep("logic")}`, prod: "logic" };
    }
    case 0xa8:
      return { src: `t = r[0] & ${i.imm & 255}; c.lop = ${LF_LOGIC}; c.lres = t; c.lsz = 0;` };
    case 0x3c:
      return { src: `a = r[0] & 255; b2 = ${i.imm & 255}; t = (a - b2) & 255; c.lop = ${LF_SUB}; c.la = a; c.lb = b2; c.lres = t; c.lsz = 0; c.lcin = 0;` };
    case 0x84: {
      if (i.mod !== 3) return null;
      return { src: `t = ${r8(i.rm)} & ${r8(i.reg)}; c.lop = ${LF_LOGIC}; c.lres = t; c.lsz = 0;` };
    }
    case 0x80: {
      if (i.reg !== 7) return null; // CMP r/m8, imm8
      const load = i.mod === 3 ? `a = ${r8(i.rm)};` : `c.ci = ${k}; ${rd8(segOf(i), ea(i), "a")}`;
      return { src: `${load} b2 = ${i.imm & 255}; t = (a - b2) & 255; c.lop = ${LF_SUB}; c.la = a; c.lb = b2; c.lres = t; c.lsz = 0; c.lcin = 0;` };
    }
    case 0xa1:
      if (!o32) return null;
      return { src: `c.ci = ${k}; ${rd32(segOf(i), String(i.disp >>> 0), "t")} r[0] = t;` };
    case 0xa3:
      if (!o32) return null;
      return { src: `c.ci = ${k}; ${wr32(segOf(i), String(i.disp >>> 0), "r[0]")}`, store: true };
    case 0xa9:
      if (!o32) return null;
      return { src: `t = (r[0] & ${i.imm >>> 0}) >>> 0; ${aluFlags(4, true)} ${keep("logic")}`, prod: "logic" };
    case 0x89:
      if (!o32) return null;
      if (i.mod === 3) return { src: `r[${i.rm}] = r[${i.reg}];` };
      return { src: `c.ci = ${k}; ${wr32(segOf(i), ea(i), `r[${i.reg}]`)}`, store: true };
    case 0x8b:
      if (!o32) return null;
      if (i.mod === 3) return { src: `r[${i.reg}] = r[${i.rm}];` };
      return { src: `c.ci = ${k}; ${rd32(segOf(i), ea(i), "t")} r[${i.reg}] = t;` };
    case 0x88:
      if (i.mod === 3) return null;
      if (i.reg < 4) return { src: `c.ci = ${k}; ${wr8(segOf(i), ea(i), `(r[${i.reg}] & 255)`)}`, store: true };
      return { src: `c.ci = ${k}; ${wr8(segOf(i), ea(i), `((r[${i.reg - 4}] >>> 8) & 255)`)}`, store: true };
    case 0x8a:
      if (i.mod === 3 || i.reg >= 4) return null;
      return { src: `c.ci = ${k}; ${rd8(segOf(i), ea(i), "t")} r[${i.reg}] = (r[${i.reg}] & 0xffffff00) | t;` };
    case 0xc6:
      if (i.mod === 3 || i.reg !== 0) return null;
      return { src: `c.ci = ${k}; c.wr8(${segOf(i)}, ${ea(i)}, ${i.imm & 255});`, store: true };
    case 0xc7:
      if (!o32 || i.reg !== 0) return null;
      if (i.mod === 3) return { src: `r[${i.rm}] = ${i.imm >>> 0};` };
      return { src: `c.ci = ${k}; ${wr32(segOf(i), ea(i), String(i.imm >>> 0))}`, store: true };
    case 0x8d:
      if (!o32 || i.mod === 3) return null;
      return { src: `r[${i.reg}] = ${ea(i)};` };
    case 0x90: return { src: "" };
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
      if (!o32) return null;
      return { src: `r[${op & 7}] = ${i.imm >>> 0};` };
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f: {
      if (!o32) return null;
      const rr = op & 7, dec = op >= 0x48;
      if (!needFlags) return { src: `r[${rr}] = r[${rr}] ${dec ? "-" : "+"} 1;` };
      return {
        src: `if (c.lop !== ${LF_INC} && c.lop !== ${LF_DEC}) { c.eflags = (c.eflags & ~1) | c.cf(); } a = r[${rr}]; t = (a ${dec ? "-" : "+"} 1) >>> 0; r[${rr}] = t; c.lop = ${dec ? LF_DEC : LF_INC}; c.la = a; c.lb = 1; c.lres = t; c.lsz = 2;`,
      };
    }
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x55: case 0x56: case 0x57:
      if (!o32) return null;
      return { src: `c.ci = ${k}; ${wr32(SS, "((r[4] - 4) >>> 0)", `r[${op & 7}]`)} r[4] = (r[4] - 4) >>> 0;`, store: true };
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5d: case 0x5e: case 0x5f:
      if (!o32) return null;
      return { src: `c.ci = ${k}; ${rd32(SS, "r[4]", "t")} r[4] = (r[4] + 4) >>> 0; r[${op & 7}] = t;` };
    case 0x1b6: case 0x1b7: case 0x1be: case 0x1bf: {
      if (!o32) return null;
      const w = op & 1;
      let src: string;
      if (i.mod === 3) {
        if (w) src = `(r[${i.rm}] & 0xffff)`;
        else src = i.rm < 4 ? `(r[${i.rm}] & 255)` : `((r[${i.rm - 4}] >>> 8) & 255)`;
      } else if (w) src = `c.rd16(${segOf(i)}, ${ea(i)})`;
      else src = "t";
      const pre = i.mod !== 3 && !w ? rd8(segOf(i), ea(i), "t") : "";
      if (op >= 0x1be) src = w ? `((${src} << 16) >> 16)` : `((${src} << 24) >> 24)`;
      return { src: `${i.mod === 3 ? "" : `c.ci = ${k};`} ${pre} r[${i.reg}] = ${src};` };
    }
    case 0x1af: {
      if (!o32 || needFlags) return null;
      const src = i.mod === 3 ? `r[${i.rm}]` : `c.rd32(${segOf(i)}, ${ea(i)})`;
      return { src: `${i.mod === 3 ? "" : `c.ci = ${k};`} r[${i.reg}] = Math.imul(r[${i.reg}], ${src});` };
    }
    case 0xc1: case 0xd1: case 0xd3: {
      if (!o32 || i.mod !== 3 || i.reg < 4) return null;
      const rm = i.rm, kind = i.reg === 6 ? 4 : i.reg;
      const body = (cnt: string) => {
        let res: string, cf: string, of: string;
        if (kind === 4) { res = `(a << ${cnt}) >>> 0`; cf = `((a >>> (32 - ${cnt})) & 1)`; of = `(((t >>> 31) ^ ${cf}) !== 0)`; }
        else if (kind === 5) { res = `a >>> ${cnt}`; cf = `((a >>> (${cnt} - 1)) & 1)`; of = `((a & 0x80000000) !== 0)`; }
        else { res = `((a | 0) >> ${cnt}) >>> 0`; cf = `(((a | 0) >> (${cnt} - 1)) & 1)`; of = "false"; }
        const flags = needFlags ? ` c.setSZP(t, 2, ${cf}, ${of});` : "";
        return `a = r[${rm}]; t = ${res}; r[${rm}] = t;${flags}`;
      };
      if (op === 0xd3) return { src: `b2 = r[1] & 31; if (b2 !== 0) { ${body("b2")} }` };
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
      return { src: `c.ci = ${k}; ${wr32(SS, "((r[4] - 4) >>> 0)", nx)} r[4] = (r[4] - 4) >>> 0; c.eip = (e0 + ${nextOff + i.imm}) >>> 0;`, ends: true };
    case 0x68: case 0x6a: {
      if (!o32) return null;
      const v = op === 0x6a ? ((i.imm << 24) >> 24) >>> 0 : i.imm >>> 0;
      return { src: `c.ci = ${k}; ${wr32(SS, "((r[4] - 4) >>> 0)", String(v))} r[4] = (r[4] - 4) >>> 0;`, store: true };
    }
    case 0xc9:
      if (!o32) return null;
      return { src: `c.ci = ${k}; ${rd32(SS, "r[5]", "t")} r[4] = (r[5] + 4) >>> 0; r[5] = t;` };
    case 0xff: {
      if (!o32 || i.reg < 2 || i.reg === 3 || i.reg === 5 || i.reg === 7) return null;
      const load = i.mod === 3 ? `b2 = r[${i.rm}];` : `${rd32(segOf(i), ea(i), "b2")}`;
      if (i.reg === 4) return { src: `c.ci = ${k}; ${load} c.eip = b2;`, ends: true };
      const push = wr32(SS, "((r[4] - 4) >>> 0)", i.reg === 2 ? nx : "b2");
      if (i.reg === 2) return { src: `c.ci = ${k}; ${load} ${push} r[4] = (r[4] - 4) >>> 0; c.eip = b2;`, ends: true };
      return { src: `c.ci = ${k}; ${load} ${push} r[4] = (r[4] - 4) >>> 0;`, store: true };
    }
    case 0x140: case 0x141: case 0x142: case 0x143: case 0x144: case 0x145: case 0x146: case 0x147:
    case 0x148: case 0x149: case 0x14a: case 0x14b: case 0x14c: case 0x14d: case 0x14e: case 0x14f: {
      if (!o32) return null;
      const load = i.mod === 3 ? `b2 = r[${i.rm}];` : `c.ci = ${k}; ${rd32(segOf(i), ea(i), "b2")}`;
      return { src: `${load} if (${condExpr(op & 15, prod)}) r[${i.reg}] = b2;` };
    }
    case 0x190: case 0x191: case 0x192: case 0x193: case 0x194: case 0x195: case 0x196: case 0x197:
    case 0x198: case 0x199: case 0x19a: case 0x19b: case 0x19c: case 0x19d: case 0x19e: case 0x19f: {
      if (i.mod !== 3) return null;
      const v = `(${condExpr(op & 15, prod)} ? 1 : 0)`;
      const n = i.rm;
      return { src: n < 4 ? `r[${n}] = (r[${n}] & 0xffffff00) | ${v};` : `r[${n - 4}] = (r[${n - 4}] & 0xffff00ff) | (${v} << 8);` };
    }
    case 0xf7: {
      if (!o32 || i.mod !== 3 || (i.reg !== 2 && i.reg !== 3)) return null;
      if (i.reg === 2) return { src: `r[${i.rm}] = ~r[${i.rm}];` };
      return { src: `a = 0; b2 = r[${i.rm}]; t = (0 - b2) >>> 0; r[${i.rm}] = t; ${aluFlags(5, true)}` };
    }
    case 0x99:
      if (!o32) return null;
      return { src: "r[2] = (r[0] & 0x80000000) !== 0 ? 4294967295 : 0;" };
    case 0x87:
      if (!o32 || i.mod !== 3) return null;
      return { src: `t = r[${i.rm}]; r[${i.rm}] = r[${i.reg}]; r[${i.reg}] = t;` };
    case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
      if (!o32) return null;
      return { src: `t = r[0]; r[0] = r[${op & 7}]; r[${op & 7}] = t;` };
    case 0xc3:
      if (!o32) return null;
      return { src: `c.ci = ${k}; ${rd32(SS, "r[4]", "t")} r[4] = (r[4] + 4) >>> 0; c.eip = t;`, ends: true };
  }
  return null;
}

void DS;
