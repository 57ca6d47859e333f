/**
 * Regions as WebAssembly. Compiles the JavaScript source that jit.ts emits for a region (a
 * small, regular subset of the language: int32 locals, typed-array reads and writes, if /
 * switch / labelled loops, && || ?:, Math.imul) into one wasm function over the machine's
 * memory: guest RAM at offset 0, then the CPU's registers, segment arrays, fast TLBs and
 * scratch slots (ram.ts stateArray). Anything outside the subset throws Unsupported and the
 * region stays JavaScript, so both backends run the same code. A memory access's slow path
 * becomes a side exit. A JavaScript wrapper per region keeps the BlockFn contract: it passes
 * eip and the TLB choice in scratch slots, applies the pending flags and eip, and runs a side
 * exit's instruction in the interpreter (a fault there leaves with jitDone/ci set).
 */
import { noFTL } from "bun:jsc";
import { buildModule, Buf, I32, OP } from "./wasm-emit.ts";
import type { BlockFn } from "./block.ts";
import { COMPARE, END_INPUT, no, Parser, tokenize, Unsupported, type Expr, type Stmt } from "./jsubset.ts";

/**
 * Where the CPU's arrays sit in its memory (byte offsets; ram.ts stateArray), for the region
 * being compiled: RAM is at 0, the scratch slots carry what the wrapper and the function pass.
 */
const ARENA = { SCRATCH: 0, REGS: 0, SEGBASE: 0, SEGLIMIT: 0, SEGFAST: 0 };
interface Arena { mem: WebAssembly.Memory; pages: number; S: Int32Array }
/** The CPU's memory and scratch slots when its RAM and all arrays wasm reads share one WebAssembly memory, else null. */
function arenaOf(c: Cpu): Arena | null {
  const mem: WebAssembly.Memory | null = c.mem.wasmMemory;
  if (mem === null) return null;
  const b = mem.buffer;
  const S: Int32Array = c.wasmScratch;
  for (const a of [c.ram, c.regs, c.segBase, c.segLimit, c.segFast, c.tlbSR, c.tlbSW, c.tlbUR, c.tlbUW, S, c.wasmLinks, c.wasmGen]) if (a.buffer !== b) return null;
  ARENA.SCRATCH = S.byteOffset; ARENA.REGS = c.regs.byteOffset; ARENA.SEGBASE = c.segBase.byteOffset;
  ARENA.SEGLIMIT = c.segLimit.byteOffset; ARENA.SEGFAST = c.segFast.byteOffset;
  return { mem, pages: b.byteLength / 65536, S };
}

// ---------------------------------------------------------------- types
// e: a value in 0..2^31-1 (fits both views); i: int32; u: uint32; m: a sum that may leave 32 bits
type Ty = "e" | "i" | "u" | "m";
const join = (a: Ty, b: Ty): Ty => a === b ? a : a === "e" ? b : b === "e" ? a : "m";

/** Arrays the function names: kind of element and where it lives. */
type Arr = { base: number; sh: 0 | 1 | 2; ty: Ty; ld: number; st: number } | "tlb";
const ramArr = (sh: 0 | 1 | 2): Arr => ({ base: 0, sh, ty: sh === 2 ? "i" : "e", ld: sh === 0 ? OP.i32_load8_u : sh === 1 ? OP.i32_load16_u : OP.i32_load, st: sh === 0 ? OP.i32_store8 : sh === 1 ? OP.i32_store16 : OP.i32_store });
let CARR: Record<string, Arr> = {};
let REGS: Arr;
function arrays(): void {
CARR = {
  ram: ramArr(0), ram16: ramArr(1), ram32: ramArr(2),
  // Words and halfwords at any byte address (see wasmRegion1: unaligned accesses).
  ramU32: { base: 0, sh: 0, ty: "i", ld: OP.i32_load, st: OP.i32_store },
  ramU16: { base: 0, sh: 0, ty: "e", ld: OP.i32_load16_u, st: OP.i32_store16 },
  segBase: { base: ARENA.SEGBASE, sh: 2, ty: "u", ld: OP.i32_load, st: OP.i32_store },
  segLimit: { base: ARENA.SEGLIMIT, sh: 2, ty: "u", ld: OP.i32_load, st: OP.i32_store },
  segFast: { base: ARENA.SEGFAST, sh: 0, ty: "e", ld: OP.i32_load8_u, st: OP.i32_store8 },
  spinQ: { base: ARENA.SCRATCH + S_SPIN, sh: 2, ty: "i", ld: OP.i32_load, st: OP.i32_store },
};
REGS = { base: ARENA.REGS, sh: 2, ty: "i", ld: OP.i32_load, st: OP.i32_store };
}
// Scratch slots (byte offsets). HEAD and RID: the running region's head EIP and serial number
// (for a side exit's instruction); EPOCH, CHAIN: the CPU's chain epoch and whether regions may
// go on to the next one (set by the wrapper); NCHAIN counts those calls; DF: EFLAGS.DF (bit 10),
// which a string instruction's step reads (only the interpreter changes it: CLD and STD, POPF,
// IRET and deliveries are never in a WebAssembly region, and a chain has only those).
export const S_EIP = 0, S_TLBR = 4, S_TLBW = 8, S_STACK32 = 12, S_FK = 20, S_DONE = 44, S_CI = 48, S_HI = 52,
  S_HEAD = 56, S_RID = 60, S_EPOCH = 64, S_CHAIN = 68, S_NCHAIN = 72, S_DF = 76;
/** The state a polling-loop header saves (c.spinQ, jit.ts emitRegion): 15 slots from this offset. */
export const S_SPIN = 80, SPIN_SLOTS = 15;

// Imports: index and type.
const IMPORTS = ["brk", "addSpin", "jitCf", "cond", "jitSh8", "jitShd", "jitMul", "jitRot"] as const;
const IMP_TYPE: Record<string, number> = { brk: 2, addSpin: 3, jitCf: 4, cond: 5, jitSh8: 1, jitShd: 6, jitMul: 1, jitRot: 5 };
// types: 0 = the region (lim d0 done)->i32, also the dispatcher (lim d0 tix)->i32; 1 = (i32 i32 i32)->i32; 2 = ()->i32; 3 = (i32)->(); 4 = 6xi32->i32 (also the CF
// helper); 5 = (i32)->i32; 6 = (i32 i32 i32 i32)->i32
const TYPES = [
  { params: [I32, I32, I32], results: [I32] }, { params: [I32, I32, I32], results: [I32] },
  { params: [], results: [I32] }, { params: [I32], results: [] }, { params: [I32, I32, I32, I32, I32, I32], results: [I32] },
  { params: [I32], results: [I32] }, { params: [I32, I32, I32, I32], results: [I32] },
];
const F_CF = IMPORTS.length + 1;

// ---------------------------------------------------------------- codegen
/** The comparison opcode: i64 signed, i32 unsigned or i32 signed. */
function cmpOp(op: string, kind: "i64" | "u32" | "s32"): number {
  const k = kind === "i64" ? 0 : kind === "u32" ? 1 : 2;
  switch (op) {
    case "===": return k === 0 ? OP.i64_eq : OP.i32_eq;
    case "!==": return k === 0 ? OP.i64_ne : OP.i32_ne;
    case "<": return k === 0 ? OP.i64_lt_s : k === 1 ? OP.i32_lt_u : OP.i32_lt_s;
    case ">": return k === 0 ? OP.i64_gt_s : k === 1 ? OP.i32_gt_u : OP.i32_gt_s;
    case "<=": return k === 0 ? OP.i64_le_s : k === 1 ? OP.i32_le_u : OP.i32_le_s;
    case ">=": return k === 0 ? OP.i64_ge_s : k === 1 ? OP.i32_ge_u : OP.i32_ge_s;
  }
  return no(`compare ${op}`);
}
type Frame = { brk?: string | true; cont?: string | true; lbl?: string ; sw?: SwitchCtx; swCase?: number; swOf?: SwitchCtx };
/**
 * A `switch` on a local directly inside a loop (a region's member dispatch): `d = k; continue`
 * to a case after the current one branches straight to that case's code (its block ends where
 * the case starts) instead of going round the loop and the jump table.
 */
type SwitchCtx = { d: string; caseOf: Map<number, number>; def: number; cur: number };

/**
 * A variable: its wasm local (-1 until first used), its type (the join of every value assigned
 * to it so far; undefined before the first) and the last pass that read that type.
 */
type Var = { local: number; ty: Ty | undefined; readPass: number };

/**
 * The code generator. Variable types are inferred by running it in passes over the whole
 * function (see wasmRegion1): a pass reads a variable's type as it stands, so when a type grows
 * after being read (a loop's back edge), the pass is stale and runs again.
 */
class Gen {
  code = new Buf(16384);
  vars = new Map<string, Var>();
  nlocals = 3; // lim, d0, dn (the instructions retired before it, by the regions before it in a chain)
  arrays = new Map<string, Arr>();
  frames: Frame[] = [];
  pass = 0;
  changed = false; // a type grew in this pass
  stale = false; // a type grew after this pass had read it
  constructor() {
    this.vars.set("lim", { local: 0, ty: "i", readPass: -1 }); this.vars.set("d0", { local: 1, ty: "i", readPass: -1 });
    this.vars.set("dn", { local: 2, ty: "i", readPass: -1 });
  }
  v(n: string): Var {
    let x = this.vars.get(n);
    if (x === undefined) { x = { local: -1, ty: undefined, readPass: -1 }; this.vars.set(n, x); }
    return x;
  }
  local(n: string): number {
    const x = this.v(n);
    if (x.local < 0) x.local = this.nlocals++;
    return x.local;
  }
  /** Variable n's type (e before any assignment), read by this pass. */
  vt(n: string): Ty { const x = this.v(n); x.readPass = this.pass; return x.ty ?? "e"; }
  op(x: number): void { this.code.byte(x); }
  op2(x: number, y: number): void { this.code.byte(x).byte(y); }
  i32(v: number): void { this.code.byte(OP.i32_const).s32(v | 0); }
  get(n: string): void { this.code.byte(OP.local_get).u32(this.local(n)); }
  set(n: string): void { this.code.byte(OP.local_set).u32(this.local(n)); }
  load(opc: number, off: number): void { this.code.byte(opc).u32(opc === OP.i32_load8_u || opc === OP.i32_store8 ? 0 : opc === OP.i32_load16_u || opc === OP.i32_store16 ? 1 : 2).u32(off); }
  setVt(n: string, t: Ty): void {
    const x = this.v(n);
    const j = x.ty === undefined ? t : join(x.ty, t);
    if (j !== x.ty) { x.ty = j; this.changed = true; if (x.readPass === this.pass) this.stale = true; }
  }

  // Expressions leave one i32 on the stack and return its type.
  expr(e: Expr): Ty {
    switch (e.k) {
      case "num": {
        if (!Number.isInteger(e.v) || e.v < -2147483648 || e.v > 4294967295) no("num");
        this.i32(e.v);
        return e.v >= 0 && e.v < 2147483648 ? "e" : e.v < 0 ? "i" : "u";
      }
      case "null": this.i32(0); return "e";
      case "id": {
        if (this.arrays.has(e.n) || e.n === "c" || e.n === "I" || e.n === "X") no(`id ${e.n}`);
        this.get(e.n);
        return this.vt(e.n);
      }
      case "cprop": return this.cprop(e.n);
      case "index": {
        const a = this.arrayOf(e.o);
        if (a === "tlb") {
          // tr[x]: the TLB pointer local + x * 4
          const o = e.o as { k: "id"; n: string };
          this.get(o.n); this.expr(e.i); this.i32(2); this.op2(OP.i32_shl, OP.i32_add); this.load(OP.i32_load, 0);
          return "e";
        }
        this.addr(a, e.i); this.load(a.ld, 0); return a.ty;
      }
      case "call": return this.call(e);
      case "un": {
        if (e.op === "-") { this.i32(0); this.expr(e.e); this.op(OP.i32_sub); return "i"; }
        if (e.op === "~") { this.expr(e.e); this.i32(-1); this.op(OP.i32_xor); return "i"; }
        if (e.op === "!") { this.expr(e.e); this.op(OP.i32_eqz); return "e"; }
        if (e.op === "--") {
          if (e.e.k !== "id") no("--");
          const n = (e.e as { n: string }).n;
          this.get(n); this.i32(1); this.op(OP.i32_sub); this.code.byte(OP.local_tee).u32(this.local(n));
          this.setVt(n, "i");
          return "i";
        }
        return no(`unary ${e.op}`);
      }
      case "bin": return this.bin(e.op, e.l, e.r);
      case "cond": {
        this.cond(e.c);
        this.op2(OP.if, I32); const a = this.expr(e.a); this.op(OP.else); const b = this.expr(e.b); this.op(OP.end);
        return join(a, b);
      }
      case "assign": return this.assign(e.op, e.t, e.v, true);
      case "math": return no("math");
    }
  }
  arrayOf(o: Expr): Arr {
    if (o.k === "id") { const a = this.arrays.get(o.n); if (a) return a; }
    if (o.k === "cprop") { const a = CARR[o.n]; if (a) return a; }
    return no("array");
  }
  addr(a: Exclude<Arr, "tlb">, i: Expr): void {
    this.expr(i);
    if (a.sh) { this.i32(a.sh); this.op(OP.i32_shl); }
    if (a.base) { this.i32(a.base); this.op(OP.i32_add); }
  }
  /** A condition as i32 0/1 (or any non-zero for true). */
  cond(e: Expr): void {
    const t = this.expr(e);
    void t;
  }
  cprop(n: string): Ty {
    switch (n) {
      case "eip": this.i32(ARENA.SCRATCH + S_EIP); this.load(OP.i32_load, 0); return "u";
      case "tlbR": this.i32(ARENA.SCRATCH + S_TLBR); this.load(OP.i32_load, 0); return "e";
      case "tlbW": this.i32(ARENA.SCRATCH + S_TLBW); this.load(OP.i32_load, 0); return "e";
      case "stack32": this.i32(ARENA.SCRATCH + S_STACK32); this.load(OP.i32_load, 0); return "e";
      case "brk": this.code.byte(OP.call).u32(IMPORTS.indexOf("brk")); return "e";
      case "jitHi": this.i32(ARENA.SCRATCH + S_HI); this.load(OP.i32_load, 0); return "i"; // (set by the jitMul import)
      case "jitDf": this.i32(ARENA.SCRATCH + S_DF); this.load(OP.i32_load, 0); return "e"; // (set by the wrapper)
    }
    return no(`c.${n}`);
  }
  call(e: { f: Expr; a: Expr[] }): Ty {
    const f = e.f;
    if (f.k === "math") {
      if (f.n === "imul" && e.a.length === 2) { this.expr(e.a[0]!); this.expr(e.a[1]!); this.op(OP.i32_mul); return "i"; }
      if (f.n === "floor" && e.a.length === 1 && e.a[0]!.k === "bin" && e.a[0]!.op === "/") {
        // (only lim - done over a pass length: both positive)
        this.expr(e.a[0]!.l); this.expr(e.a[0]!.r); this.op(OP.i32_div_s); return "i";
      }
      return no("Math");
    }
    if (f.k !== "cprop") return no("call");
    switch (f.n) {
      case "addSpin":
        for (const a of e.a) this.expr(a);
        this.code.byte(OP.call).u32(IMPORTS.indexOf("addSpin"));
        return "e";
      case "cond": case "jitRot":
        // A condition on flags set before the region (or by a producer it cannot fuse), which
        // the CPU evaluates, and a rotate's CF and OF over the flags before it: the import
        // applies the deferred pending flags first.
        if (e.a.length !== 1) no(f.n);
        this.expr(e.a[0]!);
        this.code.byte(OP.call).u32(IMPORTS.indexOf(f.n));
        return "e";
      case "jitSh8": case "jitShd": case "jitMul":
        // Helpers that set every arithmetic flag on the CPU: the import applies the deferred
        // pending flags first, as the JavaScript did before the call.
        if (e.a.length !== (f.n === "jitShd" ? 4 : 3)) no(f.n);
        for (const a of e.a) this.expr(a);
        this.code.byte(OP.call).u32(IMPORTS.indexOf(f.n));
        return "i";
      case "jitCf":
        if (e.a.length !== 6) no("jitCf");
        for (const a of e.a) this.expr(a);
        this.code.byte(OP.call).u32(F_CF);
        return "e";
      case "jitFlags": {
        // Deferred: stored in the scratch slots, the wrapper applies them (valid because the
        // function reads the CPU's flags only through the cond import, which applies them
        // first; c.materialise is not supported).
        if (e.a.length !== 6) no("jitFlags");
        e.a.forEach((a, j) => { this.i32(ARENA.SCRATCH + S_FK + 4 * j); this.expr(a); this.load(OP.i32_store, 0); });
        this.i32(0); return "e";
      }
    }
    return no(`c.${f.n}()`);
  }
  bin(op: string, l: Expr, r: Expr): Ty {
    if (op === "&&" || op === "||") {
      this.expr(l);
      this.op2(OP.if, I32);
      if (op === "&&") { this.expr(r); this.i32(0); this.op2(OP.i32_ne, OP.else); this.i32(0); }
      else { this.i32(1); this.op(OP.else); this.expr(r); this.i32(0); this.op(OP.i32_ne); }
      this.op(OP.end);
      return "e";
    }
    if ((op === "===" || op === "!==") && (l.k === "null" || r.k === "null")) {
      this.expr(l.k === "null" ? r : l);
      if (op === "===") this.op(OP.i32_eqz); else { this.i32(0); this.op(OP.i32_ne); }
      return "e";
    }
    const cmp = COMPARE.has(op);
    if (cmp && (l.k === "bin" && l.op === "*" || r.k === "bin" && r.op === "*")) {
      // An exact product compared (IMUL's overflow test): in i64.
      const wide = (x: Expr): void => {
        if (x.k === "bin" && x.op === "*") {
          const a = this.expr(x.l); this.op(a === "u" ? OP.i64_extend_i32_u : OP.i64_extend_i32_s);
          const b = this.expr(x.r); this.op(b === "u" ? OP.i64_extend_i32_u : OP.i64_extend_i32_s);
          if (a === "m" || b === "m") no("wide product operand");
          this.op(OP.i64_mul);
        } else { const a = this.expr(x); if (a === "m") no("wide"); this.op(a === "u" ? OP.i64_extend_i32_u : OP.i64_extend_i32_s); }
      };
      wide(l); wide(r);
      this.op(cmpOp(op, "i64"));
      return "e";
    }
    if (cmp) {
      // The operands' types decide the comparison: both are emitted, then (for a signed
      // against an unsigned operand) widened to i64 by an extension inserted after the left.
      const tl = this.expr(l); const mid = this.code.n; const tr = this.expr(r);
      if (tl === "m" || tr === "m") no("compare of a wide sum");
      const wide = (tl === "u" && tr === "i") || (tl === "i" && tr === "u");
      if (wide) {
        this.code.insert(mid, tl === "u" ? OP.i64_extend_i32_u : OP.i64_extend_i32_s);
        this.op(tr === "u" ? OP.i64_extend_i32_u : OP.i64_extend_i32_s);
        this.op(cmpOp(op, "i64"));
        return "e";
      }
      this.op(cmpOp(op, tl === "u" || tr === "u" ? "u32" : "s32"));
      return "e";
    }
    const tl = this.expr(l), tr = this.expr(r);
    switch (op) {
      case "+": this.op(OP.i32_add); return tl === "u" || tr === "u" ? "m" : tl === "m" || tr === "m" ? "m" : "i";
      case "-": this.op(OP.i32_sub); return tl === "u" || tr === "u" || tl === "m" || tr === "m" ? "m" : "i";
      case "*": this.op(OP.i32_mul); return "i"; // (bounded products: a pass count times its length)
      case "&": this.op(OP.i32_and); return tl === "e" || tr === "e" ? "e" : "i";
      case "|": this.op(OP.i32_or); return "i";
      case "^": this.op(OP.i32_xor); return "i";
      case "<<": this.op(OP.i32_shl); return "i";
      case ">>": this.op(OP.i32_shr_s); return "i";
      case ">>>": this.op(OP.i32_shr_u); return r.k === "num" && (r.v & 31) !== 0 ? "e" : "u";
    }
    return no(`op ${op}`);
  }
  assign(op: string, t: Expr, v: Expr, value: boolean): Ty {
    if (t.k === "id") {
      if (this.arrays.has(t.n)) no("array assign");
      let ty: Ty;
      if (op === "=") ty = this.expr(v);
      else { this.get(t.n); const tv = this.expr(v); this.op(op === "+=" ? OP.i32_add : OP.i32_sub); ty = join(join(this.vt(t.n), tv), "i"); if (ty === "e") ty = "i"; }
      this.setVt(t.n, ty);
      this.code.byte(value ? OP.local_tee : OP.local_set).u32(this.local(t.n));
      return ty;
    }
    if (op !== "=" && !(t.k === "cprop" && t.n === "spinSkipped" && op === "+=")) no("compound assign");
    if (t.k === "index") {
      const a = this.arrayOf(t.o);
      if (a === "tlb") return no("tlb store");
      this.addr(a, t.i); this.expr(v);
      if (value) no("store as value");
      this.load(a.st, 0);
      return "e";
    }
    if (t.k === "cprop") {
      if (value) no("cprop assign as value");
      const slot = t.n === "eip" ? S_EIP : t.n === "jitDone" ? S_DONE : t.n === "ci" ? S_CI : t.n === "jitHead" ? S_HEAD : t.n === "jitRid" ? S_RID : undefined;
      if (t.n === "spinSkipped") { this.expr(v); this.code.byte(OP.call).u32(IMPORTS.indexOf("addSpin")); return "e"; }
      if (slot === undefined) no(`c.${t.n} =`);
      this.i32(ARENA.SCRATCH + slot!); this.expr(v); this.load(OP.i32_store, 0);
      return "e";
    }
    return no("assign target");
  }

  // Statements.
  stmt(s: Stmt): void {
    switch (s.k) {
      case "decl":
        for (const [n, init] of s.d) {
          if (init && init.k === "cprop" && CARR[init.n]) { this.arrays.set(n, CARR[init.n]!); continue; }
          if (init && init.k === "cprop" && (init.n === "tlbR" || init.n === "tlbW")) { this.arrays.set(n, "tlb"); this.expr(init); this.set(n); continue; }
          if (init) this.assign("=", { k: "id", n }, init, false);
          else this.local(n);
        }
        return;
      case "expr": {
        const e = s.e;
        if (e.k === "assign") { this.assign(e.op, e.t, e.v, false); return; }
        this.expr(e); this.op(OP.drop); return;
      }
      case "if":
        this.cond(s.c);
        this.op2(OP.if, 0x40); this.frames.push({});
        this.stmt(s.t);
        if (s.f) { this.op(OP.else); this.stmt(s.f); }
        this.op(OP.end); this.frames.pop();
        return;
      case "block":
        if (s.label) { this.op2(OP.block, 0x40); this.frames.push({ lbl: s.label }); }
        this.stmts(s.b);
        if (s.label) { this.op(OP.end); this.frames.pop(); }
        return;
      case "for":
        this.op2(OP.block, 0x40); this.frames.push({ brk: s.label ?? true });
        this.op2(OP.loop, 0x40); this.frames.push({ cont: s.label ?? true });
        // (an unlabelled break/continue inside finds these as the innermost loop)
        this.stmt(s.b);
        this.code.byte(OP.br).u32(0);
        this.op(OP.end); this.frames.pop();
        this.op(OP.end); this.frames.pop();
        return;
      case "switch": return this.sw(s);
      case "break": case "continue": {
        const want = s.label;
        for (let d = this.frames.length - 1; d >= 0; d--) {
          const f = this.frames[d]!;
          const hit = s.k === "break" ? (want ? f.brk === want || f.lbl === want : f.brk !== undefined) : (want ? f.cont === want : f.cont !== undefined);
          if (hit) { this.code.byte(OP.br).u32(this.frames.length - 1 - d); return; }
        }
        return no(`${s.k} target`);
      }
      case "return": this.expr(s.e); this.op(OP.return); return;
      case "throw": this.i32(-1); this.expr(s.e); this.op(OP.i32_sub); this.op(OP.return); return; // -2 fault, -3 side exit
    }
  }
  /** Statements in order; `d = k; continue` of a member dispatch becomes a direct jump (SwitchCtx). */
  stmts(b: Stmt[]): void {
    for (let i = 0; i < b.length; i++) {
      const x = b[i]!, y = b[i + 1];
      if (y !== undefined && y.k === "continue" && x.k === "expr" && x.e.k === "assign" && x.e.op === "=" && x.e.t.k === "id") {
        const ctx = this.dispatchFor(x.e.t.n, y.label);
        if (ctx !== null && this.jumpTo(ctx, x.e.v)) { i++; continue; }
      }
      this.stmt(x);
    }
  }
  /** The member dispatch that `continue label` after an assignment to `d` goes round to, if any. */
  dispatchFor(d: string, label: string | undefined): SwitchCtx | null {
    for (let k = this.frames.length - 1; k >= 0; k--) {
      const f = this.frames[k]!;
      if (f.cont === undefined || (label !== undefined && f.cont !== label)) continue;
      const inner = this.frames[k + 1];
      return inner !== undefined && inner.sw !== undefined && inner.sw.d === d && inner.sw.cur >= 0 ? inner.sw : null;
    }
    return null;
  }
  /** `d = e; continue` as jumps when e is a constant or a choice of two; false: not that form. */
  jumpTo(ctx: SwitchCtx, e: Expr): boolean {
    if (e.k === "num" && Number.isInteger(e.v)) { this.jump(ctx, e.v); return true; }
    if (e.k === "cond" && e.a.k === "num" && e.b.k === "num" && Number.isInteger(e.a.v) && Number.isInteger(e.b.v)) {
      this.cond(e.c);
      this.op2(OP.if, 0x40); this.frames.push({});
      this.jump(ctx, e.a.v);
      this.op(OP.else);
      this.jump(ctx, e.b.v);
      this.op(OP.end); this.frames.pop();
      this.op(OP.unreachable);
      return true;
    }
    return false;
  }
  jump(ctx: SwitchCtx, v: number): void {
    this.assign("=", { k: "id", n: ctx.d }, { k: "num", v }, false);
    const k = ctx.caseOf.get(v) ?? ctx.def;
    let to = -1;
    for (let j = this.frames.length - 1; j >= 0; j--) {
      const f = this.frames[j]!;
      if (k > ctx.cur && f.swOf === ctx && f.swCase === k) { to = j; wasmStats.directJumps++; break; }
      if (f.cont !== undefined && this.frames[j + 1]?.sw === ctx) { to = j; break; }
    }
    if (to < 0) no("dispatch jump");
    this.code.byte(OP.br).u32(this.frames.length - 1 - to);
  }
  swn = 0;
  sw(s: { d: Expr; cases: { v: number | null; b: Stmt[] }[] }): void {
    const n = s.cases.length;
    const top = this.frames[this.frames.length - 1];
    let ctx: SwitchCtx | undefined;
    if (s.d.k === "id" && top !== undefined && top.cont !== undefined) {
      const caseOf = new Map<number, number>();
      s.cases.forEach((c, k) => { if (c.v !== null && !caseOf.has(c.v)) caseOf.set(c.v, k); });
      const def = s.cases.findIndex((c) => c.v === null);
      ctx = { d: s.d.n, caseOf, def: def >= 0 ? def : n, cur: -1 };
    }
    const tmp = `$sw${this.swn++}`;
    this.expr(s.d); this.set(tmp);
    this.op2(OP.block, 0x40); this.frames.push({ brk: true, sw: ctx });
    // Case k's code starts where the block at depth k (from the jump table) ends.
    for (let k = n - 1; k >= 0; k--) { this.op2(OP.block, 0x40); this.frames.push({ swCase: k, swOf: ctx }); }
    const def = s.cases.findIndex((c) => c.v === null);
    const defDepth = def >= 0 ? def : n;
    const vals = s.cases.map((c, k) => [c.v, k] as const).filter(([v]) => v !== null) as [number, number][];
    if (vals.length) {
      const lo = Math.min(...vals.map(([v]) => v)), hi = Math.max(...vals.map(([v]) => v));
      if (hi - lo + 1 <= 4 * vals.length + 8) {
        const tbl = new Array<number>(hi - lo + 1).fill(defDepth);
        for (const [v, k] of vals) if (tbl[v - lo] === defDepth) tbl[v - lo] = k;
        this.get(tmp); if (lo !== 0) { this.i32(lo); this.op(OP.i32_sub); }
        this.code.byte(OP.br_table).u32(tbl.length); for (const x of tbl) this.code.u32(x); this.code.u32(defDepth);
      } else {
        for (const [v, k] of vals) { this.get(tmp); this.i32(v); this.op(OP.i32_eq); this.code.byte(OP.br_if).u32(k); }
        this.code.byte(OP.br).u32(defDepth);
      }
    } else this.code.byte(OP.br).u32(defDepth);
    for (let k = 0; k < n; k++) {
      this.op(OP.end); this.frames.pop();
      if (ctx) ctx.cur = k;
      this.stmts(s.cases[k]!.b);
    }
    if (ctx) ctx.cur = -1;
    this.op(OP.end); this.frames.pop();
  }
}

/** The wasm internal CF helper (jitCf for the common kinds; the CPU for the rest). */
function cfFunc(): Uint8Array {
  const c = new Buf();
  const g = (x: number) => c.byte(OP.local_get).u32(x);
  const k32 = (v: number) => c.byte(OP.i32_const).s32(v);
  const MIN = -2147483648;
  // cin ? l6 <= l7 : l6 < l7
  const sel = () => { g(6); g(7); c.byte(OP.i32_le_s); g(6); g(7); c.byte(OP.i32_lt_s); g(5); c.byte(OP.select); };
  // params k a b r sz cin = 0..5
  // if (k === 4 || k === 5) return cin
  g(0); k32(4); c.byte(OP.i32_eq); g(0); k32(5); c.byte(OP.i32_eq); c.byte(OP.i32_or); c.byte(OP.if).byte(0x40); g(5); c.byte(OP.return); c.byte(OP.end);
  g(0); k32(3); c.byte(OP.i32_eq); c.byte(OP.if).byte(0x40); k32(0); c.byte(OP.return); c.byte(OP.end);
  g(0); k32(13); c.byte(OP.i32_eq); c.byte(OP.if).byte(0x40); g(1); c.byte(OP.return); c.byte(OP.end);
  g(4); k32(2); c.byte(OP.i32_eq); c.byte(OP.if).byte(0x40);
  {
    // ADD: r' = (a + b + cin) ^ MIN, x = a ^ MIN: cin ? r' <= x : r' < x
    g(0); k32(1); c.byte(OP.i32_eq); c.byte(OP.if).byte(0x40);
    g(1); g(2); c.byte(OP.i32_add); g(5); c.byte(OP.i32_add); k32(MIN); c.byte(OP.i32_xor); c.byte(OP.local_set).u32(6);
    g(1); k32(MIN); c.byte(OP.i32_xor); c.byte(OP.local_set).u32(7);
    sel();
    c.byte(OP.return); c.byte(OP.end);
    g(0); k32(2); c.byte(OP.i32_eq); c.byte(OP.if).byte(0x40);
    g(1); k32(MIN); c.byte(OP.i32_xor); c.byte(OP.local_set).u32(6); g(2); k32(MIN); c.byte(OP.i32_xor); c.byte(OP.local_set).u32(7);
    sel();
    c.byte(OP.return); c.byte(OP.end);
  }
  c.byte(OP.end);
  for (let j = 0; j < 6; j++) g(j);
  c.byte(OP.call).u32(IMPORTS.indexOf("jitCf"));
  return c.view();
}
const CF_CODE = cfFunc();

// ---------------------------------------------------------------- module, wrapper
type Cpu = any;
/** For each fault index of a region: its offset from the head, its index in its block, and the instruction. */
type SideExits = { off: Int32Array; idx: Int32Array; insn: unknown[] };
const importCache = new WeakMap<object, Record<string, unknown>>();
function importsFor(c: Cpu, mem: WebAssembly.Memory, S: Int32Array): Record<string, unknown> {
  let x = importCache.get(c);
  if (!x) {
    // The deferred pending flags (jitFlags into the scratch slots), applied before anything
    // reads or replaces the CPU's flags.
    const flush = (): void => { const k = S_FK >> 2; if (S[k] !== 0) { c.jitFlags(S[k], S[k + 1], S[k + 2], S[k + 3], S[k + 4], S[k + 5]); S[k] = 0; } };
    x = {
      mem,
      brk: () => c.brk,
      addSpin: (v: number) => { c.spinSkipped += v; },
      // (k = 0: the CPU's CF, which a region before this one in a chain may have left pending.)
      jitCf: (k: number, a: number, b: number, r: number, sz: number, cin: number) => { if (k === 0) flush(); return c.jitCf(k, a, b, r, sz, cin); },
      cond: (cc: number) => { flush(); return c.cond(cc) ? 1 : 0; },
      jitSh8: (op: number, v: number, cnt: number) => { flush(); return c.jitSh8(op, v, cnt); },
      jitShd: (left: number, dst: number, src: number, cnt: number) => { flush(); return c.jitShd(left !== 0, dst, src, cnt); },
      jitMul: (a: number, b: number, signed: number) => { flush(); const lo = c.jitMul(a, b, signed !== 0); S[S_HI >> 2] = c.jitHi; return lo; },
      jitRot: (bits: number) => { flush(); c.materialise(); c.eflags = (c.eflags & ~2049) | bits; return 0; },
    };
    importCache.set(c, x);
  }
  return x;
}

/** Regions offered, built, and refused by reason (tests and tools read them). */
export const wasmStats = { tried: 0, built: 0, rejected: new Map<string, number>(), directJumps: 0 };

// ---------------------------------------------------------------- chains
/**
 * Regions go on to the next region without returning to JavaScript. The wrapper calls the
 * CPU's dispatcher (one small module per CPU), which calls the region through a function table;
 * when the region returns at an EIP that the CPU's link table maps to a region (in this chain
 * epoch, with that region still in the table), the dispatcher calls that one next, passing the
 * instructions retired so far (every count and the budget are the chain's: `done` starts at the
 * `dn` parameter). cpu.ts runTranslated fills the link table where the run loop goes from a block
 * to a WebAssembly region, so the dispatcher follows exactly the links the run loop would. The
 * wrapper allows it only when the run loop would chain too (no breakpoints; no interrupt, shadow
 * or trap flag pending, which runTranslated checks before calling a translated block): nothing a
 * region does without a side exit changes those, its mode, CS, CPL or the TLBs.
 *
 * Link table entries (LINK_WORDS words): chain epoch, EIP, table slot, the slot's generation
 * when linked, the entry member's offset (d0). A region leaves the table (its slot's generation
 * moves on, so every link to it fails) when a block holding it drops it or the block cache is
 * flushed (blocks.ts).
 */
export const LINK_BITS = 13, LINK_WORDS = 8;
/** Table slots (slot 0 unused); a region built while all are taken runs unchained. */
export const TABLE_SLOTS = 4096;
/** The link table entry for an EIP (its first word's index). */
export function linkSlot(eip: number): number {
  return ((eip ^ (eip >>> LINK_BITS)) & ((1 << LINK_BITS) - 1)) * LINK_WORDS;
}
interface Chain {
  table: WebAssembly.Table;
  run: (lim: number, d0: number, tix: number) => number;
  free: number[];
  next: number;
  serial: number;
  /** Side exits of the regions in the table, by serial (the wrapper of a chain's first region runs a later one's). */
  sides: Map<number, SideExits>;
  gen: Int32Array;
}
const chains = new WeakMap<object, Chain>();
function chainOf(c: Cpu, ar: Arena): Chain {
  let ch = chains.get(c);
  if (ch === undefined) {
    const table = new WebAssembly.Table({ element: "anyfunc", initial: TABLE_SLOTS });
    const gen: Int32Array = c.wasmGen;
    gen[0] = 1; // (a zeroed link entry names slot 0 with generation 0: never valid)
    const bytes = buildModule([TYPES[0]!], [], ar.pages, [{ type: 0, locals: [I32, I32, I32, I32], code: dispatcherCode(c), export: "run" }], TABLE_SLOTS);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem: ar.mem, tbl: table } });
    ch = { table, run: inst.exports.run as Chain["run"], free: [], next: 1, serial: 0, sides: new Map(), gen };
    chains.set(c, ch);
  }
  return ch;
}
/** Table slots that hold a region now, on this CPU. */
export function wasmTableUsed(c: Cpu): number {
  const ch = chains.get(c);
  return ch === undefined ? 0 : ch.next - 1 - ch.free.length;
}
/** Calls of a region by another through the dispatcher, on this CPU so far. */
export function wasmChains(c: Cpu): number { return c.wasmScratch[S_NCHAIN >> 2]; }

/** The dispatcher: run(lim, d0, tix) -> instructions retired, or a region's negative exit code. */
function dispatcherCode(c: Cpu): Uint8Array {
  const scr = ARENA.SCRATCH, links: number = c.wasmLinks.byteOffset, gen: number = c.wasmGen.byteOffset;
  const b = new Buf();
  const g = (x: number) => b.byte(OP.local_get).u32(x), st = (x: number) => b.byte(OP.local_set).u32(x);
  const k = (v: number) => b.byte(OP.i32_const).s32(v);
  const ld = (off: number) => b.byte(OP.i32_load).u32(2).u32(off);
  const op = (x: number) => b.byte(x);
  const retDoneIf = () => { op(OP.if); op(0x40); g(3); op(OP.return); op(OP.end); };
  // locals: 0 lim, 1 d0, 2 tix, 3 done, 4 r, 5 eip, 6 e
  op(OP.loop); op(0x40);
  g(0); g(1); g(3); g(2); b.byte(OP.call_indirect).u32(0).u32(0); st(4);
  // r < 0: a side exit (-3) is the wrapper's; a guard that fails (-1) after earlier regions is a stop at that entry.
  g(4); k(0); op(OP.i32_lt_s); op(OP.if); op(0x40);
  g(4); k(-1); op(OP.i32_eq); g(3); k(0); op(OP.i32_gt_s); op(OP.i32_and); retDoneIf();
  g(4); op(OP.return); op(OP.end);
  // Nothing retired (the budget): stop.
  g(4); g(3); op(OP.i32_eq); retDoneIf();
  g(4); st(3);
  k(scr + S_CHAIN); ld(0); op(OP.i32_eqz); retDoneIf();
  // The link entry of the EIP the region left at.
  k(scr + S_EIP); ld(0); b.byte(OP.local_tee).u32(5);
  g(5); k(LINK_BITS); op(OP.i32_shr_u); op(OP.i32_xor); k((1 << LINK_BITS) - 1); op(OP.i32_and);
  k(Math.log2(LINK_WORDS * 4)); op(OP.i32_shl); k(links); op(OP.i32_add); st(6);
  g(6); ld(0); k(scr + S_EPOCH); ld(0); op(OP.i32_ne); retDoneIf();
  g(6); ld(4); g(5); op(OP.i32_ne); retDoneIf();
  g(6); ld(8); b.byte(OP.local_tee).u32(2); k(2); op(OP.i32_shl); ld(gen); g(6); ld(12); op(OP.i32_ne); retDoneIf();
  g(6); ld(16); st(1);
  k(scr + S_NCHAIN); k(scr + S_NCHAIN); ld(0); k(1); op(OP.i32_add); b.byte(OP.i32_store).u32(2).u32(0);
  b.byte(OP.br).u32(0);
  op(OP.end);
  op(OP.unreachable);
  return b.view();
}

/** A WebAssembly region: its function, side exits, serial number and table slot (0: none). */
interface Region { f: (lim: number, d0: number, dn: number) => number; side: SideExits; serial: number; tix: number; ch: Chain; S: Int32Array }
const EIP = S_EIP >> 2, FK = S_FK >> 2, DONE = S_DONE >> 2, CI = S_CI >> 2;
/**
 * What a region's wrapper does (one function for all, so the engine optimises it once, and its
 * call of the dispatcher has one target per CPU): sets the scratch slots the regions read, runs
 * the chain (or the region alone when it has no table slot), applies the pending flags and
 * EIP, and runs a side exit's instruction, which may be a later region's of the chain (its
 * serial number says whose).
 */
function runRegion(c: Cpu, X: (c: Cpu, i: unknown) => void, lim: number, d0: number, g: Region): number {
  const S = g.S;
  S[EIP] = c.eip; S[S_TLBR >> 2] = c.tlbR.byteOffset; S[S_TLBW >> 2] = c.tlbW.byteOffset; S[S_STACK32 >> 2] = c.stack32 ? 1 : 0;
  S[S_DF >> 2] = c.eflags & 1024; S[S_EPOCH >> 2] = c.chainEpoch; S[S_CHAIN >> 2] = c.breakpoints.size === 0 ? 1 : 0;
  const L = lim > 0x7fffffff ? 0x7fffffff : lim;
  const n = g.tix !== 0 ? g.ch.run(L, d0, g.tix) : g.f(L, d0, 0);
  if (S[FK] !== 0) { c.jitFlags(S[FK], S[FK + 1], S[FK + 2], S[FK + 3], S[FK + 4], S[FK + 5]); S[FK] = 0; }
  if (n >= 0) { c.eip = S[EIP]! >>> 0; return n; }
  if (n === -1) return -1;
  if (n === -3) {
    const rid = S[S_RID >> 2]!, sd = rid === g.serial ? g.side : g.ch.sides.get(rid)!;
    const k = S[CI]!, done = S[DONE]! + sd.idx[k]!, eip = (S[S_HEAD >> 2]! + sd.off[k]!) >>> 0, ic = c.jitBase + done;
    c.eip = eip; c.icount = ic;
    // (A fault: EIP and icount are the instruction's; ci = -1 tells runTranslated so.)
    try { X(c, sd.insn[k]); } catch (x) { c.eip = eip; c.icount = ic; c.ci = -1; throw x; }
    return done + 1;
  }
  throw new Error(`wasm region: exit ${n}`);
}

/** The region function `body` (jit.ts, parameters c, r, I, X, lim, d0) as wasm, or null. */
export function wasmRegion(c: Cpu, body: string, side: SideExits): BlockFn | null {
  const ar = arenaOf(c);
  if (ar === null) return null;
  wasmStats.tried++;
  try {
    return wasmRegion1(c, ar, body, side);
  } catch (e) {
    // Not expected (a compiler bug, or the engine refusing the module): the region stays
    // JavaScript, and the reason is counted under "error:" (the translator tests check none).
    const why = `error: ${e instanceof Error ? e.message : String(e)}`;
    wasmStats.rejected.set(why, (wasmStats.rejected.get(why) ?? 0) + 1);
    return null;
  }
}
function wasmRegion1(c: Cpu, ar: Arena, body0: string, side: SideExits): BlockFn | null {
  let bytes: Uint8Array<ArrayBuffer>;
  let body = body0;
  const ch = chainOf(c, ar);
  const serial = ++ch.serial;
  try {
    // A rotate's CF and OF (jit-insn.ts, and the exits' `fo`: jit.ts) through an import.
    body = body.replace(/c\.materialise\(\); c\.eflags = \(c\.eflags & ~2049\) \| ([^;]+);/g, "c.jitRot($1);");
    if (/\bc\.materialise\(/.test(body)) no("reads CPU flags");
    // Memory slow paths become side exits (fx = 2): the wrapper runs that one instruction in
    // the interpreter. Any other way to a fault (c.jfx) stays JavaScript.
    body = body.replace(/p = c\.jr(?:8|16|32)\(\d, [^;]*?\); if \(c\.jfx !== null\) \{ ci = (\d+); fx = c\.jfx; c\.jfx = null; break R; \} \w+ = p;/g, "ci = $1; fx = 2; break R;")
      .replace(/if \(c\.jw(?:8|16|32)\(\d, .*?\) !== 0\) \{ ci = (\d+); fx = c\.jfx; c\.jfx = null; break R; \} sk = 1;/g, "ci = $1; fx = 2; break R;");
    if (/c\.j[rw](8|16|32)\(/.test(body)) no("slow path left");
    // Unaligned words and halfwords within a page take the TLB fast path too: WebAssembly loads
    // and stores need no alignment, where the JavaScript version indexes the RAM's Int32Array
    // and Uint16Array views (a Linux boot and shell session makes about 850 000 unaligned ones,
    // each a side exit otherwise). One that crosses a page still goes the slow way.
    if (!body.includes("m2 = c.ram16,")) no("region header");
    body = body.replace("m2 = c.ram16,", "m2 = c.ram16, mu4 = c.ramU32, mu2 = c.ramU16,")
      .replaceAll("(l & 3) === 0 && (e = tr[l >>> 12]) !== 0)", "(l & 4095) <= 4092 && (e = tr[l >>> 12]) !== 0)")
      .replaceAll("(l & 3) === 0 && (e = tw[l >>> 12]) !== 0)", "(l & 4095) <= 4092 && (e = tw[l >>> 12]) !== 0)")
      .replaceAll("m4[((e - 1) << 10) | ((l & 4095) >> 2)]", "mu4[((e - 1) << 12) | (l & 4095)]")
      .replaceAll("(l & 1) === 0 && (e = tr[l >>> 12]) !== 0)", "(l & 4095) <= 4094 && (e = tr[l >>> 12]) !== 0)")
      .replaceAll("(l & 1) === 0 && (e = tw[l >>> 12]) !== 0)", "(l & 4095) <= 4094 && (e = tw[l >>> 12]) !== 0)")
      .replaceAll("m2[((e - 1) << 11) | ((l & 4095) >> 1)]", "mu2[((e - 1) << 12) | (l & 4095)]");
    // A string instruction's direction (the only read of EFLAGS a region may make).
    body = body.replaceAll("(c.eflags & 1024)", "c.jitDf");
    if (body.includes("c.jfx")) no("c.jfx");
    // In a chain: counts from the instructions retired before (dn), and the head EIP and serial
    // number for a side exit's instruction.
    const entry = "const E = (c.eip - (d0 | 0)) >>> 0;";
    if (!body.includes(entry) || !body.includes(", done = 0,")) no("region entry");
    body = body.replace(entry, `${entry} c.jitHead = E; c.jitRid = ${serial};`).replace(", done = 0,", ", done = dn,");
    const ast = new Parser(tokenize(body)).stmts(END_INPUT);
    arrays();
    const g = new Gen();
    // Type inference: passes until the variables' types settle. A pass that read no type
    // before it grew emits what the next pass would (that one would change nothing, and be
    // the last: at most 10 passes).
    let settled = false;
    for (let it = 0; it < 10; it++) {
      g.pass = it; g.changed = false; g.stale = false;
      g.code.n = 0; g.frames = []; g.swn = 0; g.arrays = new Map([["r", REGS]]);
      for (const s of ast) g.stmt(s);
      if (!g.changed) { settled = true; break; }
      if (!g.stale) { settled = it + 1 < 10; break; }
    }
    if (!settled) no("types do not settle");
    g.op(OP.unreachable);
    const locals = new Array<number>(g.nlocals - 3).fill(I32);
    bytes = buildModule(TYPES, IMPORTS.map((name) => ({ name, type: IMP_TYPE[name]! })), ar.pages,
      [{ type: 0, locals, code: g.code.view(), export: "f" }, { type: 4, locals: [I32, I32], code: CF_CODE }]);
  } catch (e) {
    if (!(e instanceof Unsupported)) throw e;
    wasmStats.rejected.set(e.message, (wasmStats.rejected.get(e.message) ?? 0) + 1);
    return null;
  }
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), { env: importsFor(c, ar.mem, ar.S) as any });
  wasmStats.built++;
  const f = inst.exports.f as (lim: number, d0: number, dn: number) => number;
  const g: Region = { f, side, serial, tix: 0, ch, S: ar.S };
  // (Closures of one arrow function: the engine compiles their code once for all regions.)
  const w = ((c: Cpu, _r: unknown, _I: unknown, X: (c: Cpu, i: unknown) => void, lim: number, d0: number) => runRegion(c, X, lim, d0, g)) as unknown as BlockFn;
  w.tix = 0;
  w.unlink = () => {
    if (g.tix === 0) return;
    ch.gen[g.tix]++; ch.table.set(g.tix, null); ch.sides.delete(serial); ch.free.push(g.tix);
    g.tix = 0; w.tix = 0;
  };
  const tix = ch.free.pop() ?? (ch.next < TABLE_SLOTS ? ch.next++ : 0);
  if (tix !== 0) { ch.table.set(tix, f); ch.sides.set(serial, side); g.tix = tix; w.tix = tix; }
  // String(fn) gives the JavaScript the function was compiled from, as for a JS region (tests
  // and profiles look into it).
  w.toString = () => `function anonymous(c,r,I,X,lim,d0\n) {\n${body0}\n}`;
  return w;
}

// The compiler to WebAssembly runs once per region: it stays below the engine's top tier (see
// jit-insn.ts).
for (const o of [Gen.prototype, Parser.prototype] as object[]) {
  for (const n of Object.getOwnPropertyNames(o)) {
    const f = (o as Record<string, unknown>)[n];
    if (n !== "constructor" && typeof f === "function") noFTL(f as (...a: unknown[]) => unknown);
  }
}
for (const f of [tokenize, buildModule, wasmRegion1]) noFTL(f);
