/**
 * The JavaScript subset the block translator emits (jit.ts, jit-insn.ts), as a syntax tree:
 * a tokenizer and a recursive-descent parser with one precedence table for binary operators.
 * Anything outside the subset throws Unsupported (jit-wasm.ts then keeps the region JavaScript).
 */
export class Unsupported extends Error {}
export const no = (why: string): never => { throw new Unsupported(why); };

// ---------------------------------------------------------------- tokenizer
// Tokens as parallel arrays: kind (identifier, number, punctuation) and text.
const T_ID = 0, T_NUM = 1, T_P = 2;
type Toks = { kind: Uint8Array; text: string[]; n: number };
/** Punctuation, longest first: the first that matches is the longest. */
const PUNCT = [">>>=", ">>>", "===", "!==", "<<", ">>", "<=", ">=", "&&", "||", "+=", "-=", "--", "++",
  "{", "}", "(", ")", "[", "]", ";", ",", ":", "?", ".", "=", "+", "-", "*", "/", "%", "&", "|", "^", "~", "!", "<", ">"];
/** PUNCT by first character code (same order). */
const PUNCT_AT: (string[] | undefined)[] = [];
for (const p of PUNCT) (PUNCT_AT[p.charCodeAt(0)] ??= []).push(p);
/** The punctuation at src[i] (whose code is ch). */
function punctAt(src: string, i: number, ch: number): string {
  const cands = PUNCT_AT[ch];
  if (cands !== undefined) {
    next: for (let k = 0; k < cands.length; k++) {
      const p = cands[k]!;
      for (let j = 1; j < p.length; j++) if (src.charCodeAt(i + j) !== p.charCodeAt(j)) continue next;
      return p;
    }
  }
  return no(`char ${src[i]}`);
}
/** Character classes by code (ASCII). */
const C_SPACE = 1, C_ID = 2, C_DIGIT = 4, C_HEX = 8; // C_HEX: also in a number (x a-f A-F)
const CCLASS = new Uint8Array(128);
for (const ch of " \n\t\r") CCLASS[ch.charCodeAt(0)] = C_SPACE;
for (let ch = 0; ch < 128; ch++) {
  const s = String.fromCharCode(ch);
  if (/[A-Za-z_$]/.test(s)) CCLASS[ch] |= C_ID;
  if (/[0-9]/.test(s)) CCLASS[ch] |= C_DIGIT;
  if (/[xa-fA-F]/.test(s)) CCLASS[ch] |= C_HEX;
}
const cclass = (ch: number): number => ch < 128 ? CCLASS[ch]! : 0;
/** Tokens of src (whitespace and // comments dropped); throws Unsupported on other characters. */
export function tokenize(src: string): Toks {
  const n = src.length;
  const kind = new Uint8Array(n + 1), text: string[] = [];
  let k = 0, i = 0;
  while (i < n) {
    const ch = src.charCodeAt(i), cl = cclass(ch);
    if (cl === C_SPACE) { i++; continue; }
    if (ch === 47 && src.charCodeAt(i + 1) === 47) { const j = src.indexOf("\n", i); i = j < 0 ? n : j; continue; } // comment
    let j = i + 1;
    if (cl & C_ID) { while (j < n && (cclass(src.charCodeAt(j)) & (C_ID | C_DIGIT)) !== 0) j++; kind[k] = T_ID; }
    else if (cl & C_DIGIT) { while (j < n && (cclass(src.charCodeAt(j)) & (C_DIGIT | C_HEX)) !== 0) j++; kind[k] = T_NUM; }
    else {
      const p = punctAt(src, i, ch);
      kind[k] = T_P; text[k++] = p; i += p.length;
      continue;
    }
    text[k++] = src.slice(i, j); i = j;
  }
  return { kind, text, n: k };
}

// ---------------------------------------------------------------- parser
export type Expr =
  | { k: "num"; v: number }
  | { k: "null" }
  | { k: "id"; n: string }
  | { k: "cprop"; n: string }
  | { k: "index"; o: Expr; i: Expr }
  | { k: "call"; f: Expr; a: Expr[] }
  | { k: "un"; op: string; e: Expr }
  | { k: "bin"; op: string; l: Expr; r: Expr }
  | { k: "cond"; c: Expr; a: Expr; b: Expr }
  | { k: "assign"; op: string; t: Expr; v: Expr }
  | { k: "math"; n: string };
export type Stmt =
  | { k: "decl"; d: [string, Expr | null][] }
  | { k: "expr"; e: Expr }
  | { k: "if"; c: Expr; t: Stmt; f: Stmt | null }
  | { k: "block"; b: Stmt[]; label?: string }
  | { k: "for"; b: Stmt; label?: string }
  | { k: "switch"; d: Expr; cases: { v: number | null; b: Stmt[] }[] }
  | { k: "break" | "continue"; label?: string }
  | { k: "return" | "throw"; e: Expr };

/** Binary operators by precedence (higher binds tighter; all left-associative). */
export const PREC = new Map<string, number>([["||", 1], ["&&", 2], ["|", 3], ["^", 4], ["&", 5], ["===", 6], ["!==", 6],
  ["<", 7], [">", 7], ["<=", 7], [">=", 7], ["<<", 8], [">>", 8], [">>>", 8], ["+", 9], ["-", 9], ["*", 10], ["/", 10], ["%", 10]]);
export const UNARY = new Set(["-", "~", "!", "--", "+"]);
export const COMPARE = new Set(["===", "!==", "<", ">", "<=", ">="]);
/** Where a statement list ends: at the end of input, at `}`, or at `}`/`case`/`default`. */
export const END_INPUT = 0, END_BRACE = 1, END_CASE = 2;

/** Recursive descent over the statements, precedence climbing over binary operators. */
export class Parser {
  p = 0;
  readonly kind: Uint8Array;
  readonly text: string[];
  readonly n: number;
  constructor(t: Toks) { this.kind = t.kind; this.text = t.text; this.n = t.n; }
  /** Token p + o is the punctuation or word v. */
  is(v: string, o = 0): boolean { const q = this.p + o; return q < this.n && this.text[q] === v && this.kind[q] !== T_NUM; }
  eat(v: string): void { if (!this.is(v)) no(`expected ${v} got ${this.text[this.p]}`); this.p++; }
  opt(v: string): boolean { if (this.is(v)) { this.p++; return true; } return false; }
  atId(): boolean { return this.p < this.n && this.kind[this.p] === T_ID; }
  id(): string { if (!this.atId()) no("expected id"); return this.text[this.p++]!; }
  stmts(end: number): Stmt[] {
    const out: Stmt[] = [];
    while (this.p < this.n) {
      if (end !== END_INPUT && (this.is("}") || end === END_CASE && (this.is("case") || this.is("default")))) break;
      out.push(this.stmt());
    }
    return out;
  }
  stmt(): Stmt {
    if (this.p >= this.n) no("unexpected end");
    const v = this.text[this.p]!;
    if (this.atId() && this.is(":", 1)) { const label = this.id(); this.eat(":"); const s = this.stmt(); if (s.k === "for" || s.k === "block") return { ...s, label }; no("label"); }
    if (this.opt(";")) return { k: "block", b: [] };
    if (this.opt("{")) { const b = this.stmts(END_BRACE); this.eat("}"); return { k: "block", b }; }
    if (this.atId()) {
      switch (v) {
        case "let": case "const": {
          this.p++;
          const d: [string, Expr | null][] = [];
          do { const n = this.id(); d.push([n, this.opt("=") ? this.assign() : null]); } while (this.opt(","));
          this.opt(";");
          return { k: "decl", d };
        }
        case "if": {
          this.p++; this.eat("("); const c = this.expr(); this.eat(")");
          const s = this.stmt();
          const f = this.opt("else") ? this.stmt() : null;
          return { k: "if", c, t: s, f };
        }
        case "for": { this.p++; this.eat("("); this.eat(";"); this.eat(";"); this.eat(")"); return { k: "for", b: this.stmt() }; }
        case "switch": {
          this.p++; this.eat("("); const d = this.expr(); this.eat(")"); this.eat("{");
          const cases: { v: number | null; b: Stmt[] }[] = [];
          while (!this.opt("}")) {
            let v: number | null = null;
            if (this.opt("case")) { const e = this.unary(); v = constOf(e); this.eat(":"); } else { this.eat("default"); this.eat(":"); }
            cases.push({ v, b: this.stmts(END_CASE) });
          }
          return { k: "switch", d, cases };
        }
        case "break": case "continue": {
          this.p++; let label: string | undefined;
          if (this.atId()) label = this.id();
          this.opt(";");
          return { k: v, label };
        }
        case "return": case "throw": { this.p++; const e = this.expr(); this.opt(";"); return { k: v, e }; }
      }
    }
    const e = this.expr(); this.opt(";");
    return { k: "expr", e };
  }
  expr(): Expr { return this.assign(); }
  assign(): Expr {
    const l = this.ternary();
    if (this.p < this.n && this.kind[this.p] === T_P) {
      const op = this.text[this.p]!;
      if (op === "=" || op === "+=" || op === "-=") { this.p++; return { k: "assign", op, t: l, v: this.assign() }; }
    }
    return l;
  }
  ternary(): Expr {
    const c = this.bin(1);
    if (this.opt("?")) { const a = this.assign(); this.eat(":"); const b = this.assign(); return { k: "cond", c, a, b }; }
    return c;
  }
  /** Operands joined by binary operators of precedence minPrec or higher. */
  bin(minPrec: number): Expr {
    let l = this.unary();
    while (this.p < this.n && this.kind[this.p] === T_P) {
      const op = this.text[this.p]!;
      const prec = PREC.get(op);
      if (prec === undefined || prec < minPrec) break;
      this.p++;
      l = { k: "bin", op, l, r: this.bin(prec + 1) };
    }
    return l;
  }
  unary(): Expr {
    if (this.p < this.n && this.kind[this.p] !== T_NUM && UNARY.has(this.text[this.p]!)) { const op = this.text[this.p++]!; return { k: "un", op, e: this.unary() }; }
    return this.postfix();
  }
  postfix(): Expr {
    let e = this.primary();
    for (;;) {
      if (this.opt(".")) {
        const n = this.id();
        if (e.k === "id" && e.n === "c") e = { k: "cprop", n };
        else if (e.k === "id" && e.n === "Math") e = { k: "math", n };
        else no("member");
      } else if (this.opt("[")) { const i = this.expr(); this.eat("]"); e = { k: "index", o: e, i }; }
      else if (this.opt("(")) {
        const a: Expr[] = [];
        if (!this.opt(")")) { do a.push(this.assign()); while (this.opt(",")); this.eat(")"); }
        e = { k: "call", f: e, a };
      } else return e;
    }
  }
  primary(): Expr {
    if (this.opt("(")) { const e = this.expr(); this.eat(")"); return e; }
    if (this.p >= this.n) no("primary undefined");
    const k = this.kind[this.p], v = this.text[this.p++]!;
    if (k === T_NUM) return { k: "num", v: Number(v) };
    if (k === T_ID) {
      if (v === "null") return { k: "null" };
      if (v === "true") return { k: "num", v: 1 };
      if (v === "false") return { k: "num", v: 0 };
      return { k: "id", n: v };
    }
    return no(`primary ${v}`);
  }
}
export function constOf(e: Expr): number {
  if (e.k === "num") return e.v;
  if (e.k === "un" && e.op === "-" && e.e.k === "num") return -e.e.v;
  return no("case value");
}
