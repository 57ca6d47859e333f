/**
 * The translator's instruction level (the block level is jit.ts): one decoded instruction as
 * JavaScript source on int32 register locals r0..r7 (`translate`), or null when the
 * interpreter must run it; which flags each instruction reads and writes (`flagUse`, for the
 * block's flag liveness); and the condition of a flag reader taken straight from the operands
 * of the instruction that produced the flags (`Prod`), so that CMP/TEST + Jcc need no lazy-flag
 * state. Nothing here depends on the block cache: jit.ts assembles these pieces into a block or
 * region function.
 */
import { noFTL } from "bun:jsc";
import type { Insn } from "./decode.ts";
import { DS, ES, SS } from "./decode.ts";
import { x87Pair, x87Translate } from "./jit-x87.ts";
import { LF_ADD, LF_DEC, LF_INC, LF_LOGIC, LF_SUB, SH_SHL, SH_SHR, SH_SAR, IMUL_FLAGS } from "./flags.ts";

// How an instruction uses the arithmetic flags: W = writes all six, R = reads some, RW = a
// writer that also depends on old flags (ADC/SBB read CF, INC/DEC keep it), N = neither.
export const N = 0, W = 1, R = 2, RW = 3;

export function flagUse(i: Insn): number {
  const op = i.op;
  if (op >= 0xd8 && op <= 0xdf && x87Direct(i)) return N;
  if (op < 0x40 && (op & 7) < 6) return ((op >> 3) === 2 || (op >> 3) === 3) ? RW : W; // ADC/SBB read CF
  if (op >= 0x40 && op <= 0x4f) return RW; // INC/DEC keep CF
  if ((op >= 0x70 && op <= 0x7f) || op === 0x9c) return R; // Jcc, PUSHF
  if (op >= 0x180 && op <= 0x19f) return R;
  if (op >= 0x140 && op <= 0x14f) return R;
  if (op >= 0x80 && op <= 0x83) return (i.reg === 2 || i.reg === 3) ? RW : W;
  if (op === 0x84 || op === 0x85 || op === 0xa8 || op === 0xa9) return W;
  // IMUL: CF/OF defined, the rest undefined (whatever the interpreter leaves): a full writer.
  if (op === 0x1af || op === 0x69 || op === 0x6b) return W;
  // SHLD/SHRD of registers by a non-zero constant (by CL they may leave the flags: RW below).
  if ((op === 0x1a4 || op === 0x1ac) && i.mod === 3 && (i.imm & 31) !== 0) return W;
  // Shifts by a non-zero constant write every arithmetic flag (some undefined); by CL they may not.
  if (op === 0xff || op === 0xfe) return i.reg < 2 ? RW : N;
  if (op === 0xf7 || op === 0xf6) return i.reg === 2 ? N : i.reg < 6 ? W : RW; // TEST, NEG, MUL, IMUL: W; DIV: RW (conservative)
  // (Rotates change only CF and OF: they are partial writers.)
  if (op === 0xd1 || op === 0xd0 || ((op === 0xc1 || op === 0xc0) && (i.imm & 31) !== 0)) return i.reg >= 4 ? W : RW;
  // MOVS, STOS, LODS touch no arithmetic flag (DF is not one); CMPS and SCAS write all six.
  if (op === 0xa4 || op === 0xa5 || (op >= 0xaa && op <= 0xad)) return N;
  if (op === 0xa6 || op === 0xa7 || op === 0xae || op === 0xaf) return W;
  switch (op) {
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
    case 0x88: case 0x89: case 0x8a: case 0x8b: case 0x8d: case 0x90: case 0xc7: case 0xc6:
    case 0x1b6: case 0x1b7: case 0x1be: case 0x1bf: case 0xe8: case 0xe9: case 0xeb: case 0xc3:
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
    case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
    case 0x68: case 0x6a: case 0xc9: case 0x87: case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
    case 0xe4: case 0xe5: case 0xec: case 0xed: case 0x131:
    case 0x99: case 0x98: case 0xa0: case 0xa1: case 0xa2: case 0xa3: case 0x1c8: case 0x1c9: case 0x1ca: case 0x1cb: case 0x1cc: case 0x1cd: case 0x1ce: case 0x1cf:
      return N;
  }
  return RW; // anything else: assume it reads and writes flags
}

export type ProdKind = "sub" | "logic" | "add" | "sub8" | "logic8" | "incdec";
export type Prod = { kind: ProdKind; k: number } | null;

export interface Out {
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

function ea(i: Insn): string {
  let s = String(i.disp | 0);
  if (i.base >= 0) s += ` + r${i.base}`;
  if (i.index >= 0) s += i.scale ? ` + (r${i.index} << ${i.scale})` : ` + r${i.index}`;
  return `((${s}) >>> 0)`;
}
/**
 * An offset expression as int32 for the inline memory paths: addresses of 2^31 and above (a
 * kernel's) then stay int32 in the engine's optimised code rather than becoming doubles; the
 * CPU's accessors on the slow path take the offset as unsigned (`o >>> 0`).
 */
function i32(off: string): string {
  const mt = /^\(\((.*)\) >>> 0\)$/.exec(off) ?? /^\((r[0-7]) >>> 0\)$/.exec(off);
  return mt ? `((${mt[1]}) | 0)` : /^-?\d+$/.test(off) ? String(Number(off) | 0) : `((${off}) | 0)`;
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
 * aligned accesses through flat segments to plain-RAM pages (a word of the RAM's Int32Array
 * view: the host is little-endian, as the interpreter assumes), the CPU's accessor otherwise
 * (which checks limits, walks page tables, faults, and handles unaligned accesses). The slow
 * path reads into `p` first: a load that faults leaves its destination register as it was.
 */
function rd32(s: number, off: string, dst: string): string {
  return `o = ${i32(off)}; l = (sb${s} + o) | 0; if (sf${s} && (l & 3) === 0 && (e = tr[l >>> 12]) !== 0) ${dst} = m4[((e - 1) << 10) | ((l & 4095) >> 2)]; else { p = c.jr32(${s}, o >>> 0); if (c.jfx !== null) { $FAULT } ${dst} = p; }`;
}
/** Inline 32-bit write of `val` (an expression without side effects) to seg:o. */
function wr32(s: number, off: string, val: string): string {
  return `o = ${i32(off)}; l = (sb${s} + o) | 0; if (sf${s} && (l & 3) === 0 && (e = tw[l >>> 12]) !== 0) m4[((e - 1) << 10) | ((l & 4095) >> 2)] = ${val}; else { if (c.jw32(${s}, o >>> 0, (${val}) >>> 0) !== 0) { $FAULT } sk = 1; }`;
}
/** Inline 16-bit read into `dst`: aligned words through the RAM's Uint16Array view, the rest through the CPU. */
function rd16(s: number, off: string, dst: string): string {
  return `o = ${i32(off)}; l = (sb${s} + o) | 0; if (sf${s} && (l & 1) === 0 && (e = tr[l >>> 12]) !== 0) ${dst} = m2[((e - 1) << 11) | ((l & 4095) >> 1)]; else { p = c.jr16(${s}, o >>> 0); if (c.jfx !== null) { $FAULT } ${dst} = p; }`;
}
/** Inline 16-bit write of `val` (an expression without side effects; only its low 16 bits count) to seg:o, aligned words inline. */
function wr16(s: number, off: string, val: string): string {
  return `o = ${i32(off)}; l = (sb${s} + o) | 0; if (sf${s} && (l & 1) === 0 && (e = tw[l >>> 12]) !== 0) m2[((e - 1) << 11) | ((l & 4095) >> 1)] = ${val}; else { if (c.jw16(${s}, o >>> 0, (${val}) & 65535) !== 0) { $FAULT } sk = 1; }`;
}
/** Assign a 16-bit value (an expression; only its low 16 bits count) to a 16-bit register. */
function setR16(n: number, v: string): string { return `r${n} = (r${n} & -65536) | ((${v}) & 65535);`; }
function rd8(s: number, off: string, dst: string): string {
  return `o = ${i32(off)}; l = (sb${s} + o) | 0; if (sf${s} && (e = tr[l >>> 12]) !== 0) { ${dst} = m[((e - 1) << 12) | (l & 4095)]; } else { p = c.jr8(${s}, o >>> 0); if (c.jfx !== null) { $FAULT } ${dst} = p; }`;
}
function wr8(s: number, off: string, val: string): string {
  return `o = ${i32(off)}; l = (sb${s} + o) | 0; if (sf${s} && (e = tw[l >>> 12]) !== 0) { m[((e - 1) << 12) | (l & 4095)] = ${val}; } else { if (c.jw8(${s}, o >>> 0, ${val}) !== 0) { $FAULT } sk = 1; }`;
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

/** The int32 sign bit. */
const MIN = -2147483648;

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
  if (prod && prod.kind === "incdec") {
    // 32-bit INC/DEC: ZF and SF from the result (CF is the old one's, OF rarely tested).
    const T = `ft${prod.k}`;
    switch (cc) {
      case 4: return `(${T} === 0)`;
      case 5: return `(${T} !== 0)`;
      case 8: return `(${T} < 0)`;
      case 9: return `(${T} >= 0)`;
    }
    return `c.cond(${cc})`;
  }
  if (prod && prod.kind !== "add") {
    const A = `fa${prod.k}`, B = `fb${prod.k}`, T = `ft${prod.k}`;
    if (prod.kind === "sub") {
      switch (cc) {
        // Unsigned order as a signed one with the sign bits flipped: int32 throughout (x >>> 0
        // is a double for negative x, and the engine's optimised code speculated it was not).
        case 2: return `((${A} ^ ${MIN}) < (${B} ^ ${MIN}))`;
        case 3: return `((${A} ^ ${MIN}) >= (${B} ^ ${MIN}))`;
        case 4: return `(${A} === ${B})`;
        case 5: return `(${A} !== ${B})`;
        case 6: return `((${A} ^ ${MIN}) <= (${B} ^ ${MIN}))`;
        case 7: return `((${A} ^ ${MIN}) > (${B} ^ ${MIN}))`;
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
/** The pending-flag stores of a flag writer (aluFlags and the shifts). */
const DEAD_FLAG_STORE = /fk = \d+; (?:fa = \w+; fb = \w+; )?fr = t; fz = \d;(?: fc = \w+;)?/g;

export function translate(i: Insn, k: number, kl: number, nextOff: number, needFlags: boolean, prod: Prod, faultOnly = false): Out | null {
  const out = translate1(i, k, kl, nextOff, needFlags, prod, faultOnly);
  // Flags no one can observe (the block's liveness): the pending-flag stores are left out.
  if (out && !needFlags) out.src = out.src.replace(DEAD_FLAG_STORE, "");
  // Anything that reads the CPU's flag state sees the pending (local) flags first.
  if (out && (out.src.includes("c.cond(") || out.branch?.cond.includes("c.cond(")) && !out.src.includes("$MAT")) out.src = "$MAT " + out.src;
  if (out) out.src = faultSites(out.src, k);
  return out;
}

/** Calls of translated code into the CPU that never raise a guest exception. */
const INLINE_CALL = /\bc\.(?:jitFlags|jitCf|cf|cond|materialise|getFlags|jitMul|jitShd|jitSh8|ioStable|jr8|jr16|jr32|jw8|jw16|jw32)\(/g;
const NO_FAULT_CALL = /\bc\.(?:jitFlags|jitCf|cf|cond|materialise|getFlags|jitMul|jitShd|jitSh8|ioStable|jr8|jr16|jr32|jw8|jw16|jw32|x87t|x87j\.\w+)\(/g;
/**
 * Whether an instruction's code calls the CPU only for flags and through the memory accessors'
 * slow paths (INLINE_CALL). Only a slow path can then set `c.brk` (a write to a page with code:
 * a fast-path store hits plain RAM without code, and nothing is translated while a watchpoint
 * is set), and a write's slow path sets the local `sk`: the check after such a store reads
 * `c.brk` only when `sk` is set. (The x87 calls store through the CPU: not inline.)
 */
export function inlineOnly(src: string): boolean {
  return !/\bc\.[\w.]+\(/.test(src.replace(INLINE_CALL, ""));
}

/**
 * Where the instruction can fault, and what then: translated code has no try around its
 * whole body (a try makes the engine keep every variable the handler reads in memory across
 * the whole protected code), only around the calls that can raise a guest exception, which
 * are off the fast paths. `$FAULT` (a memory access's slow path) notes the instruction and
 * leaves through the function's fault exit (jit.ts), which writes the locals back and
 * rethrows; an instruction with any other call that may fault is protected as a whole.
 */
function faultSites(src: string, k: number): string {
  src = src.replaceAll(`c.ci = ${k}; `, "").replaceAll("$XFAULT", `ci = ${k}; break R;`).replaceAll("$FAULT", `ci = ${k}; fx = c.jfx; c.jfx = null; break R;`);
  const rest = src.replace(NO_FAULT_CALL, "");
  if (!/\bc\.[\w.]+\(/.test(rest)) return src;
  const exit = `ci = ${k}; fx = x; break R;`;
  // (Its producer consts stay visible after the try: var, not const.)
  return `try { ${src.replace(/\bconst (f[abt]\d+ = )/g, "var $1")} } catch (x) { ${exit} }`;
}

function translate1(i: Insn, k: number, kl: number, nextOff: number, needFlags: boolean, prod: Prod, faultOnly: boolean): Out | null {
  const op = i.op;
  if (op === 0x90 && !i.lock) return { src: "" }; // NOP, and PAUSE (F3 90)
  // (A LOCK prefix where it is not allowed decodes as #UD, op 0x1FF: one CPU needs nothing more.)
  if (i.rep !== 0 || !i.a32) return null;
  const o32 = i.o32;
  const nx = `((e0 + ${nextOff}) >>> 0)`;
  // Keep producer operands in block-local consts for later condition evaluation (32-bit producers).
  const keep = (kind: ProdKind) => kind !== "logic" ? `const fa${k} = a, fb${k} = b2, ft${k} = t;` : `const ft${k} = t;`;

  // ---- ALU 00-3F, 16-bit forms ----
  if (op < 0x40 && ((op & 7) === 1 || (op & 7) === 3 || (op & 7) === 5) && !o32) {
    const kind = op >> 3, form = op & 7;
    if (kind === 2 || kind === 3) return null;
    return alu16(i, k, kind, form === 5 ? "imm" : form === 1 ? "rm,r" : "r,rm", i.imm & 65535);
  }
  // ---- ALU 00-3F, 32-bit forms ----
  if (op < 0x40 && (op & 7) < 6 && o32) {
    const kind = op >> 3, form = op & 7;
    const f = ALU_EXPR[kind];
    if (form === 0 || form === 2 || form === 4) {
      if (kind === 2 || kind === 3) return null;
      return alu8(i, k, kind, form === 4 ? "imm" : form === 0 ? "rm,r" : "r,rm", needFlags);
    }
    if (!f) return adcSbb32(i, k, kind === 3, form === 5 ? "eax,imm" : form === 1 ? "rm,r" : "r,rm", i.imm | 0, prod);
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
  if (op >= 0xa4 && op <= 0xaf && op !== 0xa8 && op !== 0xa9) return stringOne(i, k);
  switch (op) {
    case 0x81: case 0x83: {
      if (!o32) {
        if (i.reg === 2 || i.reg === 3) return null;
        return alu16(i, k, i.reg, "rm,imm", (op === 0x83 ? (i.imm << 24) >> 24 : i.imm) & 65535);
      }
      const kind = i.reg;
      const f = ALU_EXPR[kind];
      const imm = op === 0x83 ? (i.imm << 24) >> 24 : i.imm | 0;
      if (!f) return adcSbb32(i, k, kind === 3, "rm,imm", imm, prod);
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
      if (!o32) return alu16(i, k, 4, "test", 0);
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
      if (!o32) {
        if (i.mod === 3) return { src: setR16(i.rm, `r${i.reg}`) };
        return { src: `c.ci = ${k}; ${wr16(segOf(i), ea(i), `r${i.reg}`)}`, store: true };
      }
      if (i.mod === 3) return { src: `r${i.rm} = r${i.reg};` };
      return { src: `c.ci = ${k}; ${wr32(segOf(i), ea(i), `r${i.reg}`)}`, store: true };
    case 0x8b:
      if (!o32) {
        if (i.mod === 3) return { src: setR16(i.reg, `r${i.rm}`) };
        return { src: `c.ci = ${k}; ${rd16(segOf(i), ea(i), "t")} ${setR16(i.reg, "t")}` };
      }
      if (i.mod === 3) return { src: `r${i.reg} = r${i.rm};` };
      return { src: `c.ci = ${k}; ${rd32(segOf(i), ea(i), `r${i.reg}`)}` };
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
      if (i.reg !== 0) return null;
      if (!o32) {
        if (i.mod === 3) return { src: setR16(i.rm, String(i.imm & 65535)) };
        return { src: `c.ci = ${k}; ${wr16(segOf(i), ea(i), String(i.imm & 65535))}`, store: true };
      }
      if (i.mod === 3) return { src: `r${i.rm} = ${i.imm | 0};` };
      return { src: `c.ci = ${k}; ${wr32(segOf(i), ea(i), String(i.imm | 0))}`, store: true };
    case 0x8d:
      if (!o32 || i.mod === 3) return null;
      return { src: `r${i.reg} = ${i32(ea(i))};` };
    case 0x90: return { src: "" };
    case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
      return { src: setR8(op & 7, String(i.imm & 255)) };
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
      if (!o32) return null;
      return { src: `r${op & 7} = ${i.imm | 0};` };
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f:
      if (!o32) return null;
      return incDec32(i, k, op >= 0x48, needFlags, op & 7, prod);
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x55: case 0x56: case 0x57:
      if (!o32) return null;
      return { src: `c.ci = ${k}; ${wr32(SS, "((r4 - 4) >>> 0)", `r${op & 7}`)} r4 = (r4 - 4) | 0;`, store: true };
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5d: case 0x5e: case 0x5f:
      if (!o32) return null;
      return { src: `c.ci = ${k}; ${rd32(SS, "(r4 >>> 0)", "t")} r4 = (r4 + 4) | 0; r${op & 7} = t;` };
    case 0x9c: // PUSHF (32-bit code is never virtual-8086): EFLAGS without RF and VM
      if (!o32) return null;
      return { src: `$MAT c.ci = ${k}; t = c.getFlags() & ${~0x30000}; ${wr32(SS, "((r4 - 4) >>> 0)", "t")} r4 = (r4 - 4) | 0;`, store: true };
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
      if (!o32) return null;
      const load = i.mod === 3 ? `b2 = r${i.rm};` : `c.ci = ${k}; ${rd32(segOf(i), ea(i), "b2")}`;
      const other = op === 0x1af ? `r${i.reg}` : String(op === 0x6b ? (i.imm << 24) >> 24 : i.imm | 0);
      // With the flags needed: pending (IMUL_FLAGS), CF = OF = the product does not fit in
      // int32, which the double product tells exactly (see Cpu.jitFlags).
      if (needFlags) return { src: `${load} t = Math.imul(${other}, b2); fk = ${IMUL_FLAGS}; fa = ${other} * b2 !== t ? 1 : 0; fr = t; fz = 2; r${i.reg} = t;` };
      return { src: `${load} r${i.reg} = Math.imul(${other}, b2);` };
    }
    case 0x131: // RDTSC: at its exact icount, as the interpreter (where it ends a block)
      return { src: `c.ci = ${k}; c.icount = c.jitBase + done + ${kl}; r0 = c.jitRdtsc() | 0; c.icount = c.jitBase; r2 = c.jitHi | 0;` };
    case 0xf6: {
      if (i.reg > 1) return null; // TEST r/m8, imm8 (/1 is an alias)
      const load = i.mod === 3 ? `a = ${r8(i.rm)};` : `c.ci = ${k}; ${rd8(segOf(i), ea(i), "a")}`;
      return { src: `${load} t = a & ${i.imm & 255}; fk = ${LF_LOGIC}; fr = t; fz = 0; const ft${k} = t;`, prod: "logic8" };
    }
    case 0xc1: case 0xd1: case 0xd3: {
      if (i.mod === 3 && o32 && i.reg < 2 && op !== 0xd3) {
        // ROL/ROR r32 by a constant: CF and OF only (as shift() sets them), the rest kept.
        const n = op === 0xd1 ? 1 : i.imm & 31;
        if (n === 0) return { src: "" };
        const rm = i.rm, rol = i.reg === 0;
        const res = rol ? `(a << ${n}) | (a >>> ${32 - n})` : `(a >>> ${n}) | (a << ${32 - n})`;
        const bits = rol ? "(t & 1) | ((((t >>> 31) ^ t) & 1) << 11)" : "(t >>> 31) | ((((t >>> 31) ^ (t >>> 30)) & 1) << 11)";
        // Flags that only a fault or a stop before the next flag writer can see (faultOnly):
        // CF and OF wait in `fo`, which the exits apply over the pending flags (jit.ts).
        const fl = !needFlags ? "" : faultOnly ? `fo = ${bits};` : `$MAT c.materialise(); c.eflags = (c.eflags & ~2049) | ${bits};`;
        return { src: `a = r${rm}; t = ${res}; r${rm} = t; ${fl}` };
      }
      if (i.mod !== 3 || i.reg < 4) return null;
      const rm = i.rm, kind = i.reg === 6 ? 4 : i.reg;
      if (!o32) {
        // 16-bit: a = the operand (0..65535), t = the result; jitFlags evaluates the flags for size 1.
        const body16 = (cnt: string) => {
          const res = kind === 4 ? `(a << ${cnt}) & 65535` : kind === 5 ? `a >>> ${cnt}` : `(((a << 16) >> 16) >> (${cnt} > 15 ? 15 : ${cnt})) & 65535`;
          return `a = r${rm} & 65535; t = ${res}; ${setR16(rm, "t")} fk = ${kind === 4 ? SH_SHL : kind === 5 ? SH_SHR : SH_SAR}; fa = a; fb = ${cnt}; fr = t; fz = 1;`;
        };
        if (op === 0xd3) return { src: `b2 = r1 & 31; if (b2 !== 0) { ${body16("b2")} }` };
        const n = op === 0xd1 ? 1 : i.imm & 31;
        if (n === 0) return { src: "" };
        return { src: body16(String(n)) };
      }
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
      if (o32 && i.reg < 2) return incDec32(i, k, i.reg === 1, needFlags, i.mod === 3 ? i.rm : -1, prod);
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
    case 0x1b1: { // CMPXCHG m32, r32 (LOCK or not: one CPU)
      if (!o32 || i.mod === 3) return null;
      // As the interpreter: read, write (the source on a match, else the old value back), then
      // the flags of CMP EAX, old and, on a mismatch, EAX = old. A fault leaves all as it was.
      const s = segOf(i), off = ea(i);
      return {
        src: `c.ci = ${k}; ${rd32(s, off, "b2")} t = r0 === b2 ? r${i.reg} : b2; ${wr32(s, off, "t")} a = r0; t = (a - b2) | 0; ${aluFlags(7)} ${keep("sub")} if (a !== b2) r0 = b2;`,
        store: true, prod: "sub",
      };
    }
    case 0xc0: case 0xd0: case 0xd2: { // SHL/SHR/SAR r8 by imm8, 1 or CL (rotates fall back)
      if (i.mod !== 3 || i.reg < 4) return null;
      const call = (n: string) => `fk = 0; t = c.jitSh8(${i.reg}, ${r8(i.rm)}, ${n}) | 0; ${setR8(i.rm, "t")}`;
      if (op === 0xd2) return { src: `b2 = r1 & 31; if (b2 !== 0) { ${call("b2")} }` };
      const n = op === 0xd0 ? 1 : i.imm & 31;
      return { src: n === 0 ? "" : call(String(n)) };
    }
    case 0x1a4: case 0x1a5: case 0x1ac: case 0x1ad: { // SHLD/SHRD r32, r32, imm8 or CL
      if (!o32 || i.mod !== 3) return null;
      const left = op < 0x1a8;
      const call = (n: string) => `fk = 0; r${i.rm} = c.jitShd(${left}, r${i.rm}, r${i.reg}, ${n}) | 0;`;
      if ((op & 1) === 0) return { src: (i.imm & 31) === 0 ? "" : call(String(i.imm & 31)) };
      // A count of 0 changes nothing, not even the flags pending in the locals.
      return { src: `t = r1 & 31; if (t !== 0) { ${call("t")} }` };
    }
    case 0xf7: {
      if (o32 && i.reg === 0) { // TEST r/m32, imm32
        const load = i.mod === 3 ? `a = r${i.rm};` : `c.ci = ${k}; ${rd32(segOf(i), ea(i), "a")}`;
        return { src: `${load} t = a & ${i.imm | 0}; ${aluFlags(4)} ${keep("logic")}`, prod: "logic" };
      }
      if (o32 && (i.reg === 4 || i.reg === 5)) { // MUL/IMUL EDX:EAX = EAX * r/m32
        const load = i.mod === 3 ? `b2 = r${i.rm};` : `c.ci = ${k}; ${rd32(segOf(i), ea(i), "b2")}`;
        return { src: `${load} fk = 0; r0 = c.jitMul(r0, b2, ${i.reg === 5}) | 0; r2 = c.jitHi | 0;` };
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
    case 0xd8: case 0xd9: case 0xda: case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf: {
      // x87 (x87.ts escOp): the operand's address from the locals; it touches no general
      // register and no arithmetic flag (the forms that do are interpreted). Stores: D9, DB,
      // DD, DF with ModRM reg 2, 3, 6, 7.
      if (!x87Direct(i)) return null;
      const mem = i.mod !== 3;
      const modrm = (i.mod << 6) | (i.reg << 3) | i.rm;
      // The common forms: one call of a per-form function (jit-x87.ts), this call when it declines.
      const fast = x87Translate(i, k, mem ? ea(i) : "0", mem ? segOf(i) : 0, `((e0 + ${i.off}) >>> 0)`,
        `{ if ((fx = c.x87t(${op - 0xd8}, ${modrm}, ${o32}, ${mem ? segOf(i) : 0}, ${mem ? "o" : 0}, (e0 + ${i.off}) >>> 0)) !== null) { $XFAULT } }`);
      if (fast) return fast;
      return { src: `${mem ? `o = ${ea(i)}; ` : ""}if ((fx = c.x87t(${op - 0xd8}, ${modrm}, ${o32}, ${mem ? segOf(i) : 0}, ${mem ? "o" : 0}, (e0 + ${i.off}) >>> 0)) !== null) { $XFAULT }`, store: mem && (op & 1) === 1 && (i.reg & 2) !== 0 };
    }
  }
  return null;
}

/**
 * x87 instructions the translator calls directly: all but FCMOVcc and FCOMI/FUCOMI(P) (EFLAGS)
 * and FNSTSW AX (DA/DB/DF register forms, which also hold FUCOMPP and FNCLEX/FNINIT: rare).
 */
export function x87Direct(i: Insn): boolean {
  return i.mod !== 3 || (i.op !== 0xda && i.op !== 0xdb && i.op !== 0xdf);
}

/**
 * One iteration of a string instruction without REP (32-bit addresses): MOVS, STOS and LODS of
 * any size, CMPS and SCAS of bytes and dwords (word compares are interpreted). Source DS:ESI
 * (or its override), destination ES:EDI; the step's sign from DF, read from the CPU (CLD and
 * STD are interpreted). ESI and EDI move after every access succeeded, and a compare's flags
 * are set last, so a fault leaves the instruction undone, as stringOp does.
 */
function stringOne(i: Insn, k: number): Out | null {
  const op = i.op;
  const sz = (op & 1) === 0 ? 1 : i.o32 ? 4 : 2;
  const src = i.seg >= 0 ? i.seg : DS;
  const step = `((c.eflags & 1024) !== 0 ? ${-sz} : ${sz})`;
  const rd = sz === 1 ? rd8 : sz === 2 ? rd16 : rd32;
  const wr = sz === 1 ? wr8 : sz === 2 ? wr16 : wr32;
  const si = "(r6 >>> 0)", di = "(r7 >>> 0)";
  const acc = sz === 1 ? "(r0 & 255)" : sz === 2 ? "(r0 & 65535)" : "r0";
  const setAcc = (v: string) => sz === 1 ? setR8(0, v) : sz === 2 ? setR16(0, v) : `r0 = ${v};`;
  switch (op) {
    case 0xa4: case 0xa5: // MOVS
      return { src: `c.ci = ${k}; ${rd(src, si, "t")} ${wr(ES, di, "t")} b2 = ${step}; r6 = (r6 + b2) | 0; r7 = (r7 + b2) | 0;`, store: true };
    case 0xaa: case 0xab: // STOS
      return { src: `c.ci = ${k}; ${wr(ES, di, acc)} r7 = (r7 + ${step}) | 0;`, store: true };
    case 0xac: case 0xad: // LODS
      return { src: `c.ci = ${k}; ${rd(src, si, "t")} ${setAcc("t")} r6 = (r6 + ${step}) | 0;` };
  }
  if (sz === 2) return null;
  // CMPS: [ESI] - [EDI]; SCAS: accumulator - [EDI]. A producer like CMP of the same size.
  const load = op === 0xa6 || op === 0xa7 ? `${rd(src, si, "a")} ${rd(ES, di, "b2")}` : `${rd(ES, di, "b2")} a = ${acc};`;
  const move = op === 0xa6 || op === 0xa7 ? `b2 = ${step}; r6 = (r6 + b2) | 0; r7 = (r7 + b2) | 0;` : `r7 = (r7 + ${step}) | 0;`;
  // (The step reuses b2 only after the producer's consts kept the operand.)
  if (sz === 1) {
    return { src: `c.ci = ${k}; ${load} t = (a - b2) & 255; ${aluFlags(7, 0)} const fa${k} = a, fb${k} = b2, ft${k} = t; ${move}`, prod: "sub8" };
  }
  return { src: `c.ci = ${k}; ${load} t = (a - b2) | 0; ${aluFlags(7)} const fa${k} = a, fb${k} = b2, ft${k} = t; ${move}`, prod: "sub" };
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

/** CF of the pending flags (or the CPU's), materialising nothing (Cpu.jitCf): a statement's right side. */
const JIT_CF = "c.jitCf(fk, fa, fb, fr, fz, fc);";
/**
 * The same from a known producer's consts, without the call, where its kind gives CF simply:
 * ADD's carry, SUB's and CMP's borrow (32- or 8-bit), 0 after a logic operation, the CF an
 * INC or DEC kept.
 */
function cfFrom(prod: Prod): string {
  if (prod === null) return JIT_CF;
  const A = `fa${prod.k}`, B = `fb${prod.k}`, T = `ft${prod.k}`;
  switch (prod.kind) {
    // (Unsigned order in int32, as condExpr: x >>> 0 is a double for negative x.)
    case "add": return `(${T} ^ ${MIN}) < (${A} ^ ${MIN}) ? 1 : 0;`;
    case "sub": return `(${A} ^ ${MIN}) < (${B} ^ ${MIN}) ? 1 : 0;`;
    case "sub8": return `${A} < ${B} ? 1 : 0;`;
    case "logic": case "logic8": return "0;";
    // The CF an INC/DEC kept is in cy already (flag liveness made it compute cy: this reads CF).
    case "incdec": return "cy;";
    default: return JIT_CF;
  }
}

/**
 * INC/DEC of a 32-bit register (`reg`) or memory operand (`reg` -1). They keep CF: with their flags
 * needed, they are pending like any other flags, with the CF they keep (that of the flags before
 * them) in fc; set after the memory write, so a fault leaves the flags untouched.
 */
function incDec32(i: Insn, k: number, dec: boolean, needFlags: boolean, reg: number, prod: Prod): Out {
  const res = `t = (a ${dec ? "-" : "+"} 1) | 0;`;
  const flags = needFlags ? `cy = ${cfFrom(prod)} fk = ${dec ? LF_DEC : LF_INC}; fa = a; fb = 1; fr = t; fz = 2; fc = cy;` : "";
  // The result for a fused condition after it (jz/jnz of a loop counter).
  const kp = `const ft${k} = t;`;
  if (reg >= 0) return { src: `a = r${reg}; ${res} r${reg} = t; ${flags} ${kp}`, prod: "incdec" };
  const s = segOf(i);
  return { src: `c.ci = ${k}; ${rd32(s, ea(i), "a")} ${res} ${wr32(s, "o", "t")} ${flags} ${kp}`, store: true, prod: "incdec" };
}

/**
 * ADC/SBB on 32-bit operands: the carry in from the pending flags (jitCf); the result's flags
 * are pending with it (fc), as CpuState.alu leaves them.
 */
function adcSbb32(i: Insn, k: number, sbb: boolean, form: "eax,imm" | "rm,r" | "r,rm" | "rm,imm", imm: number, prod: Prod): Out {
  const res = sbb ? "t = (a - b2 - cy) | 0;" : "t = (a + b2 + cy) | 0;";
  const fl = `fk = ${sbb ? LF_SUB : LF_ADD}; fa = a; fb = b2; fr = t; fz = 2; fc = cy;`;
  const cin = `cy = ${cfFrom(prod)}`;
  if (form === "eax,imm") return { src: `${cin} a = r0; b2 = ${imm}; ${res} r0 = t; ${fl}` };
  if (form === "r,rm") {
    const load = i.mod === 3 ? `b2 = r${i.rm};` : `c.ci = ${k}; ${rd32(segOf(i), ea(i), "b2")}`;
    return { src: `${load} ${cin} a = r${i.reg}; ${res} r${i.reg} = t; ${fl}` };
  }
  const src = form === "rm,r" ? `r${i.reg}` : String(imm);
  if (i.mod === 3) return { src: `${cin} a = r${i.rm}; b2 = ${src}; ${res} r${i.rm} = t; ${fl}` };
  const s = segOf(i);
  return { src: `c.ci = ${k}; ${rd32(s, ea(i), "a")} ${cin} b2 = ${src}; ${res} ${wr32(s, "o", "t")} ${fl}`, store: true };
}

/**
 * 16-bit ALU (ADD/OR/AND/SUB/XOR/CMP, and TEST r/m16, r16; ADC/SBB excluded by the caller):
 * operands and result 0..65535 in the pending flags (size 1), no fused producer.
 */
function alu16(i: Insn, k: number, kind: number, form: "imm" | "rm,r" | "r,rm" | "rm,imm" | "test", imm: number): Out {
  const ops = ["+", "|", "", "", "&", "-", "^", "-"];
  const res = `t = (a ${ops[kind]} b2) & 65535;`;
  const fl = aluFlags(kind, 1);
  const write = kind !== 7 && form !== "test";
  if (form === "imm") return { src: `a = r0 & 65535; b2 = ${imm}; ${res} ${write ? setR16(0, "t") : ""} ${fl}` };
  if (form === "r,rm") {
    const load = i.mod === 3 ? `b2 = r${i.rm} & 65535;` : `c.ci = ${k}; ${rd16(segOf(i), ea(i), "b2")}`;
    return { src: `${load} a = r${i.reg} & 65535; ${res} ${write ? setR16(i.reg, "t") : ""} ${fl}` };
  }
  const src = form === "rm,imm" ? String(imm) : `r${i.reg} & 65535`;
  if (i.mod === 3) return { src: `a = r${i.rm} & 65535; b2 = ${src}; ${res} ${write ? setR16(i.rm, "t") : ""} ${fl}` };
  const s = segOf(i);
  return {
    src: `c.ci = ${k}; ${rd16(s, ea(i), "a")} b2 = ${src}; ${res} ${write ? wr16(s, "o", "t") : ""} ${fl}`,
    store: write,
  };
}

/**
 * Two translated x87 instructions in a row that can run as one call (jit-x87.ts x87Pair: FSTP
 * m64 and FLD m64 of the same operand, the same address expression and segment): the pair's
 * source, to stand in for the second's (the first's is then empty), or null.
 */
export function translatePair(a: Insn, b: Insn, srcA: string, srcB: string): string | null {
  if (a.mod === 3 || b.mod === 3 || !x87Direct(a) || !x87Direct(b)) return null;
  if (ea(a) !== ea(b) || segOf(a) !== segOf(b) || a.a32 !== b.a32 || !a.a32) return null;
  return x87Pair(a, b, ea(a), segOf(a), srcA, srcB);
}

// The translator runs once per translated block: the engine's top tier would cost more to
// compile it (its compiler thread shares the cores with the guest) than it saves.
for (const f of [flagUse, ea, aluFlags, condExpr, translate, inlineOnly, faultSites, translate1, stringOne, alu8, cfFrom, incDec32, adcSbb32, alu16, translatePair]) noFTL(f);
