/**
 * An i386 machine-code encoder for a chosen instruction subset, and fast-check arbitraries
 * that produce random valid instruction sequences (for differential tests and random guest
 * workloads).
 *
 *   encode({ op: "add", dst: { reg: "eax" }, src: { mem: { base: "ebx", disp: 8 } } })
 *
 * Operand size comes from a register operand or from `size`. `code32` (default true) is the
 * default operand/address size of the code segment: 0x66/0x67 prefixes are added as needed.
 * Memory operands with 16-bit registers (bx, bp, si, di) use 16-bit addressing.
 *
 * FLAG_EFFECTS (below) is the one table of which arithmetic flags each instruction defines,
 * leaves undefined (Intel SDM) or reads; the generator uses it to never feed an undefined flag
 * into a later instruction, and the differential tests use it to mask undefined flags.
 */
import fc from "fast-check";

// =========================================================================================
// Registers and operands
// =========================================================================================

export const REG32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"] as const;
export const REG16 = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"] as const;
export const REG8 = ["al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"] as const;
export const SREG = ["es", "cs", "ss", "ds", "fs", "gs"] as const;
export type Reg32 = (typeof REG32)[number];
export type Reg16 = (typeof REG16)[number];
export type Reg8 = (typeof REG8)[number];
export type Reg = Reg32 | Reg16 | Reg8 | SReg;
export type SReg = (typeof SREG)[number];
export type Size = 8 | 16 | 32;

export const CONDS = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"] as const;
export type Cond = (typeof CONDS)[number];

export interface Mem {
  base?: Reg32 | Reg16;
  index?: Reg32 | Reg16;
  scale?: 1 | 2 | 4 | 8;
  disp?: number;
  seg?: SReg;
}
export type Operand = { reg: Reg } | { mem: Mem } | { imm: number };

export interface Insn {
  op: string;
  dst?: Operand;
  src?: Operand;
  /** Third operand: IMUL r, r/m, imm; SHLD/SHRD count (imm or cl). */
  src2?: Operand;
  /** Operand size when no register operand gives it (memory/imm forms, string ops, push imm). */
  size?: Size;
  /** Condition for jcc/setcc/cmovcc (op "jcc", "setcc", "cmovcc"), or use "je", "setne", ... */
  cc?: Cond;
  rep?: "rep" | "repe" | "repne";
  lock?: boolean;
  /** Relative displacement for short/near branches (from the end of the instruction). */
  rel?: number;
  /** Pick the alternative encoding (accumulator short forms, reg,r/m direction, 0xC0 for 1-bit shifts...). */
  alt?: boolean;
  /** Raw bytes (op "raw"). */
  bytes?: number[];
}

export class EncodeError extends Error {}

function regInfo(r: Reg): { n: number; size: Size } {
  let n = (REG32 as readonly string[]).indexOf(r);
  if (n >= 0) return { n, size: 32 };
  n = (REG16 as readonly string[]).indexOf(r);
  if (n >= 0) return { n, size: 16 };
  n = (REG8 as readonly string[]).indexOf(r);
  if (n >= 0) return { n, size: 8 };
  throw new EncodeError(`unknown register ${r}`);
}

const isReg = (o: Operand | undefined): o is { reg: Reg } => !!o && "reg" in o;
const isMem = (o: Operand | undefined): o is { mem: Mem } => !!o && "mem" in o;
const isImm = (o: Operand | undefined): o is { imm: number } => !!o && "imm" in o;

function le(v: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((v >>> (8 * i)) & 0xff);
  return out;
}
const fits8 = (v: number) => (v | 0) >= -128 && (v | 0) <= 127;
/** True if `v` (a value of `size` bits) is the sign extension of its low byte. */
const fitsS8 = (v: number, size: Size) => fits8(size === 16 ? (v << 16) >> 16 : size === 8 ? (v << 24) >> 24 : v | 0);

/** ModRM (+SIB +disp) bytes for r/m operand `o` with reg field `r`, and whether it needs 16-bit addressing. */
function modrm(r: number, o: Operand): { bytes: number[]; a16: boolean } {
  if (isReg(o)) return { bytes: [0xc0 | (r << 3) | regInfo(o.reg).n], a16: false };
  if (!isMem(o)) throw new EncodeError("r/m operand must be a register or memory");
  const m = o.mem;
  const disp = m.disp ?? 0;
  const b16 = m.base !== undefined && regInfo(m.base).size === 16;
  const i16 = m.index !== undefined && regInfo(m.index).size === 16;
  if (b16 || i16) {
    // 16-bit addressing: [bx+si] [bx+di] [bp+si] [bp+di] [si] [di] [bp] [bx]
    const key = [m.base, m.index].filter((x) => x !== undefined).sort().join("+");
    const table: Record<string, number> = { "bx+si": 0, "bx+di": 1, "bp+si": 2, "bp+di": 3, si: 4, di: 5, bp: 6, bx: 7 };
    const rm = table[key];
    if (rm === undefined || (m.scale ?? 1) !== 1) throw new EncodeError(`invalid 16-bit address [${key}]`);
    const d = disp & 0xffff;
    if (d === 0 && rm !== 6) return { bytes: [(r << 3) | rm], a16: true };
    if (fits8((d << 16) >> 16)) return { bytes: [0x40 | (r << 3) | rm, d & 0xff], a16: true };
    return { bytes: [0x80 | (r << 3) | rm, ...le(d, 2)], a16: true };
  }
  if (m.base === undefined && m.index === undefined) {
    return { bytes: [(r << 3) | 5, ...le(disp, 4)], a16: false };
  }
  const scale = m.scale ?? 1;
  const ss = scale === 1 ? 0 : scale === 2 ? 1 : scale === 4 ? 2 : scale === 8 ? 3 : -1;
  if (ss < 0) throw new EncodeError(`bad scale ${scale}`);
  if (m.index === "esp") throw new EncodeError("esp cannot be an index");
  if (m.base === undefined) {
    const idx = regInfo(m.index!).n;
    return { bytes: [(r << 3) | 4, (ss << 6) | (idx << 3) | 5, ...le(disp, 4)], a16: false };
  }
  const base = regInfo(m.base).n;
  const mod = disp === 0 && base !== 5 ? 0 : fits8(disp) ? 1 : 2;
  const dbytes = mod === 0 ? [] : mod === 1 ? [disp & 0xff] : le(disp, 4);
  if (m.index === undefined && base !== 4) return { bytes: [(mod << 6) | (r << 3) | base, ...dbytes], a16: false };
  const idx = m.index === undefined ? 4 : regInfo(m.index).n;
  return { bytes: [(mod << 6) | (r << 3) | 4, (ss << 6) | (idx << 3) | base, ...dbytes], a16: false };
}

const ALU_OPS = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"];
const SHIFT_OPS = ["rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar"];
const SEG_PREFIX: Record<SReg, number> = { es: 0x26, cs: 0x2e, ss: 0x36, ds: 0x3e, fs: 0x64, gs: 0x65 };

function opSize(i: Insn): Size {
  if (isReg(i.dst)) return regInfo(i.dst.reg).size;
  if (isReg(i.src) && !["movzx", "movsx", "shl", "shr", "sar", "rol", "ror", "rcl", "rcr", "sal"].includes(i.op)) return regInfo(i.src.reg).size;
  if (i.size) return i.size;
  throw new EncodeError(`${i.op}: operand size unknown (give size)`);
}

function splitCc(op: string): { base: string; cc?: Cond } {
  for (const p of ["cmov", "set", "j"]) {
    if (op.startsWith(p)) {
      const rest = op.slice(p.length);
      const alias: Record<string, Cond> = { c: "b", nae: "b", nc: "ae", nb: "ae", z: "e", nz: "ne", na: "be", nbe: "a", pe: "p", po: "np", nge: "l", nl: "ge", ng: "le", nle: "g" };
      const cc = (CONDS as readonly string[]).includes(rest) ? (rest as Cond) : alias[rest];
      if (cc) return { base: p === "j" ? "jcc" : p + "cc", cc };
    }
  }
  return { base: op };
}

/** Encode one instruction. */
export function encode(insn: Insn, code32 = true): Uint8Array {
  return Uint8Array.from(encodeBytes(insn, code32));
}

function encodeBytes(insn: Insn, code32: boolean): number[] {
  const { base: op, cc: cc0 } = splitCc(insn.op);
  const cc = insn.cc ?? cc0;
  const ccn = cc === undefined ? -1 : CONDS.indexOf(cc);
  const pre: number[] = [];
  if (insn.lock) pre.push(0xf0);
  if (insn.rep) pre.push(insn.rep === "repne" ? 0xf2 : 0xf3);
  let a16 = false, memUsed = false;
  const body: number[] = [];
  let size = 32 as Size;
  const osz = (s: Size) => { size = s; };
  const rm = (r: number, o: Operand) => { const m = modrm(r, o); a16 = m.a16; memUsed = isMem(o); body.push(...m.bytes); if (isMem(o) && o.mem.seg) pre.push(SEG_PREFIX[o.mem.seg]); };
  const imm = (v: number, s: Size) => body.push(...le(v, s === 8 ? 1 : s === 16 ? 2 : 4));
  const need = (c: boolean, what: string) => { if (!c) throw new EncodeError(`${insn.op}: ${what}`); };
  const { dst, src, src2 } = insn;
  const w = () => (size === 8 ? 0 : 1);

  const aluIdx = ALU_OPS.indexOf(op);
  const shIdx = SHIFT_OPS.indexOf(op);
  if (op === "raw") return insn.bytes ?? [];
  if (aluIdx >= 0) {
    osz(opSize(insn));
    need(!!dst && !!src, "needs dst and src");
    if (isImm(src)) {
      if (isReg(dst) && regInfo(dst.reg).n === 0 && insn.alt) {
        body.push(aluIdx * 8 + 4 + w()); imm(src.imm, size);
      } else if (size !== 8 && fitsS8(src.imm, size) && !(insn.alt && !isReg(dst))) {
        body.push(0x83); rm(aluIdx, dst!); body.push(src.imm & 0xff);
      } else {
        body.push(size === 8 ? 0x80 : 0x81); rm(aluIdx, dst!); imm(src.imm, size);
      }
    } else if (isReg(src) && (!isReg(dst) || !insn.alt)) {
      body.push(aluIdx * 8 + w()); rm(regInfo(src.reg).n, dst!);
    } else {
      need(isReg(dst), "bad operands");
      body.push(aluIdx * 8 + 2 + w()); rm(regInfo((dst as { reg: Reg }).reg).n, src!);
    }
  } else if (shIdx >= 0) {
    osz(opSize(insn));
    need(!!dst, "needs dst");
    const cnt = src ?? { imm: 1 };
    if (isReg(cnt)) { need(cnt.reg === "cl", "count register must be cl"); body.push(0xd2 + w()); rm(shIdx, dst!); }
    else if (isImm(cnt) && cnt.imm === 1 && !insn.alt) { body.push(0xd0 + w()); rm(shIdx, dst!); }
    else if (isImm(cnt)) { body.push(0xc0 + w()); rm(shIdx, dst!); body.push(cnt.imm & 0xff); }
    else need(false, "bad count");
  } else {
    switch (op) {
      case "test":
        osz(opSize(insn));
        if (isImm(src)) {
          if (isReg(dst) && regInfo(dst.reg).n === 0 && insn.alt) { body.push(0xa8 + w()); imm(src.imm, size); }
          else { body.push(0xf6 + w()); rm(0, dst!); imm(src.imm, size); }
        } else { need(isReg(src), "src must be reg or imm"); body.push(0x84 + w()); rm(regInfo((src as { reg: Reg }).reg).n, dst!); }
        break;
      case "mov":
        if (isReg(dst) && SREG.includes(dst.reg as SReg)) {
          osz(16); body.push(0x8e); rm(SREG.indexOf(dst.reg as SReg), src!); size = code32 ? 32 : 16; break;
        }
        if (isReg(src) && SREG.includes(src.reg as SReg)) {
          body.push(0x8c); rm(SREG.indexOf(src.reg as SReg), dst!); size = isReg(dst) ? regInfo(dst.reg).size : (code32 ? 32 : 16); break;
        }
        osz(opSize(insn));
        if (isImm(src)) {
          if (isReg(dst) && !insn.alt) { body.push((size === 8 ? 0xb0 : 0xb8) + regInfo(dst.reg).n); imm(src.imm, size); }
          else { body.push(0xc6 + w()); rm(0, dst!); imm(src.imm, size); }
        } else if (isMem(src) && isReg(dst) && regInfo(dst.reg).n === 0 && insn.alt && !src.mem.base && !src.mem.index) {
          body.push(0xa0 + w()); if (src.mem.seg) pre.push(SEG_PREFIX[src.mem.seg]); imm(src.mem.disp ?? 0, code32 ? 32 : 16);
        } else if (isMem(dst) && isReg(src) && regInfo(src.reg).n === 0 && insn.alt && !dst.mem.base && !dst.mem.index) {
          body.push(0xa2 + w()); if (dst.mem.seg) pre.push(SEG_PREFIX[dst.mem.seg]); imm(dst.mem.disp ?? 0, code32 ? 32 : 16);
        } else if (isReg(src) && (!isReg(dst) || !insn.alt)) { body.push(0x88 + w()); rm(regInfo(src.reg).n, dst!); }
        else { need(isReg(dst), "bad operands"); body.push(0x8a + w()); rm(regInfo((dst as { reg: Reg }).reg).n, src!); }
        break;
      case "not": case "neg": case "mul": case "div": case "idiv":
        osz(opSize(insn));
        body.push(0xf6 + w()); rm({ not: 2, neg: 3, mul: 4, div: 6, idiv: 7 }[op]!, dst ?? src!);
        break;
      case "imul":
        osz(opSize(insn));
        if (src2) { need(isImm(src2) && isReg(dst), "imul r, r/m, imm"); const i8 = fitsS8((src2 as { imm: number }).imm, size) && !insn.alt; body.push(i8 ? 0x6b : 0x69); rm(regInfo((dst as { reg: Reg }).reg).n, src!); imm((src2 as { imm: number }).imm, i8 ? 8 : size); }
        else if (src) { need(isReg(dst) && size !== 8, "imul r, r/m"); body.push(0x0f, 0xaf); rm(regInfo((dst as { reg: Reg }).reg).n, src); }
        else { body.push(0xf6 + w()); rm(5, dst!); }
        break;
      case "inc": case "dec":
        osz(opSize(insn));
        if (isReg(dst) && size !== 8 && !insn.alt) body.push((op === "inc" ? 0x40 : 0x48) + regInfo(dst.reg).n);
        else { body.push(0xfe + w()); rm(op === "inc" ? 0 : 1, dst!); }
        break;
      case "movzx": case "movsx": {
        need(isReg(dst), "dst must be a register");
        osz(regInfo((dst as { reg: Reg }).reg).size);
        const ss = isReg(src) ? regInfo(src.reg).size : insn.size ?? 8;
        body.push(0x0f, (op === "movzx" ? 0xb6 : 0xbe) + (ss === 16 ? 1 : 0)); rm(regInfo((dst as { reg: Reg }).reg).n, src!);
        break;
      }
      case "setcc": size = code32 ? 32 : 16; body.push(0x0f, 0x90 + ccn); rm(0, dst!); break;
      case "cmovcc": osz(opSize(insn)); body.push(0x0f, 0x40 + ccn); rm(regInfo((dst as { reg: Reg }).reg).n, src!); break;
      case "jcc":
        size = code32 ? 32 : 16;
        if (fits8(insn.rel ?? 0) && !insn.alt) body.push(0x70 + ccn, (insn.rel ?? 0) & 0xff);
        else { body.push(0x0f, 0x80 + ccn); imm(insn.rel ?? 0, size); }
        break;
      case "jmp":
        size = code32 ? 32 : 16;
        if (dst) { body.push(0xff); rm(4, dst); }
        else if (fits8(insn.rel ?? 0) && !insn.alt) body.push(0xeb, (insn.rel ?? 0) & 0xff);
        else { body.push(0xe9); imm(insn.rel ?? 0, size); }
        break;
      case "call":
        size = code32 ? 32 : 16;
        if (dst) { body.push(0xff); rm(2, dst); } else { body.push(0xe8); imm(insn.rel ?? 0, size); }
        break;
      case "loop": case "loope": case "loopne": case "jecxz": case "jcxz":
        size = code32 ? 32 : 16;
        body.push({ loop: 0xe2, loope: 0xe1, loopne: 0xe0, jecxz: 0xe3, jcxz: 0xe3 }[op]!, (insn.rel ?? 0) & 0xff);
        if (op === "jcxz" && code32) pre.push(0x67);
        if (op === "jecxz" && !code32) pre.push(0x67);
        break;
      case "bt": case "bts": case "btr": case "btc": {
        osz(opSize(insn));
        const k = ["bt", "bts", "btr", "btc"].indexOf(op);
        if (isImm(src)) { body.push(0x0f, 0xba); rm(4 + k, dst!); body.push(src.imm & 0xff); }
        else { body.push(0x0f, [0xa3, 0xab, 0xb3, 0xbb][k]!); rm(regInfo((src as { reg: Reg }).reg).n, dst!); }
        break;
      }
      case "bsf": case "bsr":
        osz(opSize(insn)); body.push(0x0f, op === "bsf" ? 0xbc : 0xbd); rm(regInfo((dst as { reg: Reg }).reg).n, src!); break;
      case "shld": case "shrd": {
        osz(opSize(insn));
        const cl = isReg(src2);
        body.push(0x0f, (op === "shld" ? 0xa4 : 0xac) + (cl ? 1 : 0)); rm(regInfo((src as { reg: Reg }).reg).n, dst!);
        if (!cl) body.push((src2 as { imm: number }).imm & 0xff);
        break;
      }
      case "xchg":
        osz(opSize(insn));
        if (insn.alt && isReg(dst) && isReg(src) && size !== 8 && (regInfo(dst.reg).n === 0 || regInfo(src.reg).n === 0)) {
          body.push(0x90 + (regInfo(dst.reg).n || regInfo(src.reg).n));
        } else if (isReg(src)) { body.push(0x86 + w()); rm(regInfo(src.reg).n, dst!); }
        else { body.push(0x86 + w()); rm(regInfo((dst as { reg: Reg }).reg).n, src!); }
        break;
      case "xadd": case "cmpxchg":
        osz(opSize(insn)); body.push(0x0f, (op === "xadd" ? 0xc0 : 0xb0) + w()); rm(regInfo((src as { reg: Reg }).reg).n, dst!); break;
      case "cmpxchg8b": size = code32 ? 32 : 16; body.push(0x0f, 0xc7); rm(1, dst!); break;
      case "bswap": osz(32); body.push(0x0f, 0xc8 + regInfo((dst as { reg: Reg }).reg).n); break;
      case "lea": osz(opSize(insn)); body.push(0x8d); rm(regInfo((dst as { reg: Reg }).reg).n, src!); break;
      case "push": case "pop": {
        const o = op === "push" ? (dst ?? src)! : dst!;
        if (isReg(o) && SREG.includes(o.reg as SReg)) {
          osz(insn.size ?? (code32 ? 32 : 16));
          const s = SREG.indexOf(o.reg as SReg);
          if (s >= 4) body.push(0x0f, (s === 4 ? 0xa0 : 0xa8) + (op === "pop" ? 1 : 0));
          else { need(!(op === "pop" && s === 1), "pop cs"); body.push(s * 8 + 6 + (op === "pop" ? 1 : 0)); }
        } else if (isImm(o)) {
          osz(insn.size ?? (code32 ? 32 : 16));
          if (fitsS8(o.imm, size) && !insn.alt) body.push(0x6a, o.imm & 0xff); else { body.push(0x68); imm(o.imm, size); }
        } else if (isReg(o) && !insn.alt) {
          osz(regInfo(o.reg).size); need(size !== 8, "8-bit push"); body.push((op === "push" ? 0x50 : 0x58) + regInfo(o.reg).n);
        } else {
          osz(isReg(o) ? regInfo(o.reg).size : insn.size ?? (code32 ? 32 : 16));
          if (op === "push") { body.push(0xff); rm(6, o); } else { body.push(0x8f); rm(0, o); }
        }
        break;
      }
      case "movs": case "cmps": case "stos": case "lods": case "scas": case "ins": case "outs": {
        osz(insn.size ?? 8);
        const b = { movs: 0xa4, cmps: 0xa6, stos: 0xaa, lods: 0xac, scas: 0xae, ins: 0x6c, outs: 0x6e }[op]!;
        body.push(b + w());
        const seg = isMem(src) ? src.mem.seg : undefined;
        if (seg) pre.push(SEG_PREFIX[seg]);
        break;
      }
      case "in": case "out": {
        const acc = op === "in" ? dst : src, port = op === "in" ? src : dst;
        osz(isReg(acc) ? regInfo(acc.reg).size : 8);
        if (isImm(port)) body.push((op === "in" ? 0xe4 : 0xe6) + w(), port.imm & 0xff);
        else body.push((op === "in" ? 0xec : 0xee) + w());
        break;
      }
      case "int": size = code32 ? 32 : 16; body.push(0xcd, (isImm(dst) ? dst.imm : isImm(src) ? src.imm : 0) & 0xff); break;
      case "aam": case "aad": size = code32 ? 32 : 16; body.push(op === "aam" ? 0xd4 : 0xd5, (isImm(src) ? src.imm : isImm(dst) ? dst.imm : 10) & 0xff); break;
      case "ret": case "retf": {
        size = insn.size ?? (code32 ? 32 : 16);
        const n = isImm(src) ? src.imm : isImm(dst) ? dst.imm : undefined;
        const b = op === "ret" ? 0xc2 : 0xca;
        if (n === undefined) body.push(b + 1); else { body.push(b, ...le(n, 2)); }
        break;
      }
      case "iret": size = insn.size ?? (code32 ? 32 : 16); body.push(0xcf); break;
      case "enter": size = insn.size ?? (code32 ? 32 : 16); body.push(0xc8, ...le(isImm(dst) ? dst.imm : 0, 2), (isImm(src) ? src.imm : 0) & 0xff); break;
      case "bound": osz(opSize(insn)); body.push(0x62); rm(regInfo((dst as { reg: Reg }).reg).n, src!); break;
      case "pushf": case "popf": case "pusha": case "popa":
        size = insn.size ?? (code32 ? 32 : 16);
        body.push({ pushf: 0x9c, popf: 0x9d, pusha: 0x60, popa: 0x61 }[op]!); break;
      case "cbw": osz(16); body.push(0x98); break;
      case "cwde": osz(32); body.push(0x98); break;
      case "cwd": osz(16); body.push(0x99); break;
      case "cdq": osz(32); body.push(0x99); break;
      default: {
        const simple: Record<string, number[]> = {
          nop: [0x90], hlt: [0xf4], int3: [0xcc], into: [0xce], int1: [0xf1], lahf: [0x9f], sahf: [0x9e], clc: [0xf8], stc: [0xf9], cmc: [0xf5],
          cld: [0xfc], std: [0xfd], cli: [0xfa], sti: [0xfb], daa: [0x27], das: [0x2f], aaa: [0x37], aas: [0x3f], salc: [0xd6], xlat: [0xd7],
          leave: [0xc9], ud2: [0x0f, 0x0b], cpuid: [0x0f, 0xa2], rdtsc: [0x0f, 0x31], clts: [0x0f, 0x06],
        };
        const s = simple[op];
        if (!s) throw new EncodeError(`unsupported instruction ${insn.op}`);
        size = code32 ? 32 : 16;
        body.push(...s);
      }
    }
  }
  if ((size === 16) === code32 && size !== 8) pre.push(0x66);
  if (memUsed && a16 === code32) pre.push(0x67);
  return [...pre, ...body];
}

/** Encode a sequence back to back. */
export function assemble(insns: Insn[], code32 = true): Uint8Array {
  const parts = insns.map((i) => encodeBytes(i, code32));
  return Uint8Array.from(parts.flat());
}

// =========================================================================================
// Flag semantics (Intel SDM), in one place
// =========================================================================================

export const F_CF = 0x1, F_PF = 0x4, F_AF = 0x10, F_ZF = 0x40, F_SF = 0x80, F_OF = 0x800, F_DF = 0x400;
export const F_ARITH = F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF;
const SZP = F_SF | F_ZF | F_PF;

/** Flags read by each condition code. */
export const COND_READS: Record<Cond, number> = {
  o: F_OF, no: F_OF, b: F_CF, ae: F_CF, e: F_ZF, ne: F_ZF, be: F_CF | F_ZF, a: F_CF | F_ZF,
  s: F_SF, ns: F_SF, p: F_PF, np: F_PF, l: F_SF | F_OF, ge: F_SF | F_OF, le: F_ZF | F_SF | F_OF, g: F_ZF | F_SF | F_OF,
};

export interface FlagEffect {
  /** Arithmetic flags (and DF) read. */
  reads: number;
  /** Flags given a defined value. */
  defines: number;
  /** Flags left undefined by the architecture (their value must not be compared or consumed). */
  undef: number;
}

/**
 * What an instruction does to the arithmetic flags. Counts of shifts/rotates are taken from
 * the immediate operand (or `clValue` for CL counts), since the rules depend on them.
 * With `intel`, flags the SDM leaves undefined but Intel CPUs set in a fixed way that rrx
 * matches count as defined: OF after RCL/RCR by more than 1 (see shift() in ops.ts), and OF,
 * AF, CF after AAM and AAD.
 */
export function flagEffect(i: Insn, clValue?: number, intel = false): FlagEffect {
  const { base: op, cc: cc0 } = splitCc(i.op);
  const cc = i.cc ?? cc0;
  const E = (reads: number, defines: number, undef = 0): FlagEffect => ({ reads, defines, undef });
  switch (op) {
    case "add": case "sub": case "cmp": case "neg": case "xadd": case "cmpxchg": return E(0, F_ARITH);
    case "adc": case "sbb": return E(F_CF, F_ARITH);
    case "and": case "or": case "xor": case "test": return E(0, F_ARITH & ~F_AF, F_AF);
    case "inc": case "dec": return E(0, F_ARITH & ~F_CF);
    case "rol": case "ror": case "rcl": case "rcr": case "shl": case "sal": case "shr": case "sar": {
      const size = opSize(i);
      const raw = i.src === undefined ? 1 : isImm(i.src) ? i.src.imm : clValue;
      const rc = op === "rcl" || op === "rcr" ? F_CF : 0;
      if (raw === undefined) return E(rc, 0, F_ARITH); // unknown count: assume the worst
      const c = raw & 0x1f;
      if (c === 0) return E(0, 0);
      const ofx = c === 1 ? F_OF : 0;
      if (intel && (op === "rcl" || op === "rcr")) return c % (size + 1) === 0 ? E(rc, 0) : E(rc, F_CF | F_OF); // by width + 1: the identity, no flag changes
      if (op === "rol" || op === "ror" || op === "rcl" || op === "rcr") return E(rc, F_CF | ofx, F_OF & ~ofx);
      const cfUndef = (op === "shl" || op === "sal" || op === "shr") && c >= size ? F_CF : 0;
      return E(0, SZP | ofx | (F_CF & ~cfUndef), F_AF | (F_OF & ~ofx) | cfUndef);
    }
    case "shld": case "shrd": {
      const raw = isImm(i.src2) ? i.src2.imm : clValue;
      if (raw === undefined) return E(0, 0, F_ARITH);
      const c = raw & 0x1f;
      if (c === 0) return E(0, 0);
      if (c > opSize(i)) return E(0, 0, F_ARITH);
      const ofx = c === 1 ? F_OF : 0;
      return E(0, SZP | F_CF | ofx, F_AF | (F_OF & ~ofx));
    }
    case "mul": return E(0, F_CF | F_OF, SZP | F_AF);
    case "imul": return E(0, F_CF | F_OF, SZP | F_AF);
    case "div": case "idiv": return E(0, 0, F_ARITH);
    case "bt": case "bts": case "btr": case "btc": return E(0, F_CF, F_OF | F_SF | F_AF | F_PF);
    case "bsf": case "bsr": return E(0, F_ZF, F_ARITH & ~F_ZF);
    case "daa": case "das": return E(F_AF | F_CF, F_ARITH & ~F_OF, F_OF);
    case "aaa": case "aas": return E(F_AF, F_AF | F_CF, F_OF | SZP);
    // Intel CPUs clear OF, AF and CF after AAM and set them after AAD as the byte addition
    // AL + AH * imm8 does (see bcd() in ops.ts).
    case "aam": case "aad": return intel ? E(0, F_ARITH) : E(0, SZP, F_OF | F_AF | F_CF);
    case "sahf": return E(0, F_ARITH & ~F_OF);
    case "lahf": return E(F_ARITH & ~F_OF, 0);
    case "pushf": return E(F_ARITH | F_DF, 0);
    case "popf": return E(0, F_ARITH | F_DF);
    case "clc": case "stc": return E(0, F_CF);
    case "cmc": case "salc": return E(F_CF, op === "cmc" ? F_CF : 0);
    case "cld": case "std": return E(0, F_DF);
    case "cmpxchg8b": return E(0, F_ZF);
    case "into": return E(F_OF, 0);
    case "jcc": case "setcc": case "cmovcc": return E(cc ? COND_READS[cc] : F_ARITH, 0);
    case "loope": case "loopne": return E(F_ZF, 0);
    case "cmps": case "scas": return E(F_DF, F_ARITH); // with REP and ECX=0 nothing changes: callers handle that
    case "movs": case "stos": case "lods": case "ins": case "outs": return E(F_DF, 0);
    default: return E(0, 0);
  }
}

// =========================================================================================
// Random programs
// =========================================================================================

export interface ProgramOptions {
  /** Linear address where the code will be placed (needed for self-modifying writes). */
  codeBase: number;
  /** Sandbox data region: every memory access of the program stays inside it. */
  dataBase: number;
  dataSize: number;
  /** ESP at entry (inside the sandbox, with room both ways); the program never writes ESP. */
  stackTop: number;
  /** Number of items (each one instruction or a short setup+instruction group). Default 1..24. */
  minItems?: number;
  maxItems?: number;
  /** Self-modifying writes into the code region and the very next instruction. */
  selfModify?: boolean;
  /** Allow DIV/IDIV operands that may raise #DE. Default false (divisors guarded). */
  unguardedDiv?: boolean;
  /** Include forward jcc/jmp skips and bounded loops. Default true. */
  branches?: boolean;
  /** Treat the flags Intel CPUs define beyond the SDM as defined (flagEffect's `intel`). Default false. */
  intelFlags?: boolean;
}

export interface Program {
  code: Uint8Array;
  /** The instructions in layout order (branch displacements resolved). */
  insns: Insn[];
  /** Arithmetic flags whose final value is architecturally undefined. */
  undefFlags: number;
  /** Undefined arithmetic flags before each instruction (for a fault in the middle). */
  undefBefore: number[];
  /** Offset of each instruction in `code`. */
  offsets: number[];
  /** Registers whose final value is undefined (bit per register number). */
  undefRegs: number;
}

type Sz = 8 | 16 | 32;
type RmSpec = { kind: "reg"; r: number } | { kind: "mem"; form: number; off: number; b: number; x: number; scale: number; split: number };

/** One program item: pure data (shrinkable), turned into instructions by buildProgram. */
export type Item =
  | { k: "alu"; op: number; size: Sz; form: number; a: number; rm: RmSpec; imm: number; alt: boolean }
  | { k: "mov"; size: Sz; form: number; a: number; rm: RmSpec; imm: number; alt: boolean }
  | { k: "shift"; op: number; size: Sz; rm: RmSpec; cnt: number; how: number; alt: boolean }
  | { k: "shd"; left: boolean; size: 16 | 32; rm: RmSpec; a: number; cnt: number; cl: boolean }
  | { k: "unary"; op: number; size: Sz; rm: RmSpec; alt: boolean }
  | { k: "muldiv"; op: number; size: Sz; rm: RmSpec; guard: boolean; v: number; w: number }
  | { k: "imul"; size: 16 | 32; form: number; a: number; rm: RmSpec; imm: number; alt: boolean }
  | { k: "movx"; sx: boolean; size: 16 | 32; ssize: 8 | 16; a: number; rm: RmSpec }
  | { k: "setcc"; cc: number; rm: RmSpec }
  | { k: "cmov"; cc: number; size: 16 | 32; a: number; rm: RmSpec }
  | { k: "bt"; op: number; size: 16 | 32; rm: RmSpec; a: number; imm: boolean; bit: number }
  | { k: "bsx"; r: boolean; size: 16 | 32; a: number; rm: RmSpec }
  | { k: "xchg"; op: number; size: Sz; rm: RmSpec; a: number; lock: boolean; alt: boolean }
  | { k: "bswap"; a: number }
  | { k: "lea"; size: 16 | 32; a: number; b: number; x: number; scale: number; disp: number; form: number }
  | { k: "push"; form: number; a: number; rm: RmSpec; imm: number; o16: boolean }
  | { k: "pop"; form: number; a: number; rm: RmSpec; o16: boolean }
  | { k: "str"; op: number; size: Sz; rep: number; n: number; df: boolean; si: number; di: number }
  | { k: "misc"; op: number; imm: number }
  | { k: "sys"; op: number; v: number; a: number; rm: RmSpec }
  | { k: "smc"; v: number; far: number }
  | { k: "skip"; cc: number; body: Item[] }
  | { k: "loop"; kind: number; n: number; body: Item[] };

const RSZ = (sz: Sz): Size => sz;
function regName(n: number, sz: Size): Reg {
  return sz === 32 ? REG32[n]! : sz === 16 ? REG16[n]! : REG8[n]!;
}

class Builder {
  out: Insn[] = [];
  /** Undefined arithmetic flags before each instruction of `out`. */
  st: number[] = [];
  /** Arithmetic flags currently undefined. */
  undef = 0;
  undefRegs = 0;
  constructor(readonly o: Required<ProgramOptions>) {}

  put(i: Insn): void { this.out.push(i); this.st.push(this.undef); }
  merge(sub: Builder): void { this.out.push(...sub.out); this.st.push(...sub.st); }

  emit(i: Insn, clValue?: number): void {
    const e = flagEffect(i, clValue, this.o.intelFlags);
    if (e.reads & this.undef) {
      // Define every arithmetic flag first: never consume an undefined flag.
      this.put({ op: "cmp", dst: { reg: "eax" }, src: { reg: "ecx" } });
      this.undef = 0;
    }
    this.put(i);
    this.undef = (this.undef & ~e.defines) | e.undef;
  }

  /** A writable register (never ESP/SP; AH..BH are fine for 8-bit). */
  wreg(a: number, sz: Size, avoid: number[] = []): Reg {
    let n = a & 7;
    for (let k = 0; k < 8; k++) {
      const m = (n + k) & 7;
      const phys = sz === 8 ? m & 3 : m;
      if ((sz !== 8 && m === 4) || avoid.includes(phys)) continue;
      n = m;
      return regName(n, sz);
    }
    throw new Error("no register");
  }

  /** A sandbox memory operand of `bytes` bytes, emitting setup moves for base/index registers. */
  mem(s: RmSpec & { kind: "mem" }, bytes: number, avoid: number[] = []): Mem {
    const o = this.o;
    const room = Math.max(1, o.dataSize - bytes);
    const off = s.off % room;
    const addr = (o.dataBase + off) >>> 0;
    switch (s.form % 4) {
      case 0: return { disp: addr };
      case 1: { // [esp + d]: ESP stays inside the sandbox
        const d = Math.max(-120, Math.min(120, (s.off % 241) - 120));
        const lo = o.dataBase - o.stackTop + 512, hi = o.dataBase + o.dataSize - o.stackTop - 512 - bytes;
        return { base: "esp", disp: Math.max(lo, Math.min(hi, d)) };
      }
      case 2: { // [base + disp]
        const b = this.wreg(s.b, 32, avoid) as Reg32;
        const split = s.split % 300 - 150;
        this.put({ op: "mov", dst: { reg: b }, src: { imm: (addr - split) >>> 0 } });
        return { base: b, disp: split };
      }
      default: { // [base + index*scale + disp]
        const b = this.wreg(s.b, 32, avoid) as Reg32;
        const x = this.wreg(s.x, 32, [...avoid, REG32.indexOf(b)]) as Reg32;
        const scale = ([1, 2, 4, 8] as const)[s.scale & 3]!;
        const k = (s.split % 17) - 8;
        const split = (s.split >> 5) % 200 - 100;
        this.put({ op: "mov", dst: { reg: b }, src: { imm: (addr - k * scale - split) >>> 0 } });
        this.put({ op: "mov", dst: { reg: x }, src: { imm: k >>> 0 } });
        return { base: b, index: x, scale, disp: split };
      }
    }
  }

  rm(s: RmSpec, sz: Size, avoid: number[] = []): Operand {
    if (s.kind === "reg") return { reg: this.wreg(s.r, sz, avoid) };
    return { mem: this.mem(s, sz / 8, avoid) };
  }
}

function resolveOptions(o: ProgramOptions): Required<ProgramOptions> {
  return { minItems: 1, maxItems: 24, selfModify: false, unguardedDiv: false, branches: true, intelFlags: false, ...o };
}

function regOf(op: Operand): number {
  return isReg(op) ? (regInfo(op.reg).size === 8 ? regInfo(op.reg).n & 3 : regInfo(op.reg).n) : -1;
}

function buildItem(b: Builder, it: Item, inLoop: boolean): void {
  const noEcx = inLoop ? [1] : [];
  switch (it.k) {
    case "alu": {
      const sz = it.size;
      const op = ALU_OPS[it.op & 7]!;
      const rm = b.rm(it.rm, sz, noEcx);
      const r: Operand = { reg: b.wreg(it.a, sz, noEcx) };
      const imm = sz === 8 ? it.imm & 0xff : sz === 16 ? it.imm & 0xffff : it.imm >>> 0;
      switch (it.form % 3) {
        case 0: b.emit({ op, dst: rm, src: r, alt: it.alt }); break;
        case 1: b.emit({ op, dst: r, src: rm, alt: it.alt }); break;
        default: b.emit({ op, dst: rm, src: { imm: it.alt ? imm : (((imm << 24) >> 24) & (sz === 32 ? 0xffffffff : sz === 16 ? 0xffff : 0xff)) >>> 0 }, size: RSZ(sz), alt: it.alt }); break;
      }
      return;
    }
    case "mov": {
      const sz = it.size;
      const rm = b.rm(it.rm, sz, noEcx);
      const r: Operand = { reg: b.wreg(it.a, sz, noEcx) };
      switch (it.form % 4) {
        case 0: b.emit({ op: "mov", dst: rm, src: r, alt: it.alt }); break;
        case 1: b.emit({ op: "mov", dst: r, src: rm, alt: it.alt }); break;
        case 2: b.emit({ op: "mov", dst: rm, src: { imm: it.imm }, size: sz, alt: true }); break;
        default: b.emit({ op: "test", dst: rm, src: it.alt ? { imm: it.imm } : r, size: sz }); break;
      }
      return;
    }
    case "shift": {
      const op = SHIFT_OPS[[0, 1, 2, 3, 4, 5, 7][it.op % 7]!]!;
      const how = inLoop && it.how % 3 === 2 ? 1 : it.how % 3; // loop bodies never write ECX
      const cnt = how === 0 ? 1 : it.cnt & 0x1f;
      if (how === 2) b.put({ op: "mov", dst: { reg: "cl" }, src: { imm: it.cnt & 0xff } });
      const dst = b.rm(it.rm, it.size, how === 2 || inLoop ? [1] : []);
      b.emit({ op, dst, src: how === 2 ? { reg: "cl" } : { imm: how === 0 ? 1 : it.cnt & 0xff }, size: it.size, alt: it.alt && how === 0 }, it.cnt & 0xff);
      void cnt;
      return;
    }
    case "shd": {
      if (inLoop && it.cl) it = { ...it, cl: false };
      const max = it.size === 16 ? 17 : 32;
      const c = it.cnt % max; // 16-bit counts above 16 give undefined results: avoided
      if (it.cl) b.put({ op: "mov", dst: { reg: "cl" }, src: { imm: c } });
      const avoid = it.cl || inLoop ? [1] : [];
      const dst = b.rm(it.rm, it.size, avoid);
      const src: Operand = { reg: b.wreg(it.a, it.size, avoid) };
      b.emit({ op: it.left ? "shld" : "shrd", dst, src, src2: it.cl ? { reg: "cl" } : { imm: c }, size: it.size }, c);
      return;
    }
    case "unary": {
      const op = ["not", "neg", "inc", "dec"][it.op & 3]!;
      b.emit({ op, dst: b.rm(it.rm, it.size, noEcx), size: it.size, alt: it.alt });
      return;
    }
    case "muldiv": {
      const op = ["mul", "imul", "div", "idiv"][it.op & 3]!;
      const sz = it.size;
      const isDiv = (it.op & 3) >= 2;
      // Operand: never the accumulator registers the instruction itself uses.
      const avoid = sz === 8 ? [0] : [0, 2];
      let src = b.rm(it.rm, sz, avoid);
      if (isReg(src) && sz === 8 && (src.reg === "ah")) src = { reg: "bl" };
      if (isDiv && (it.guard || !b.o.unguardedDiv)) {
        const m = sz === 32 ? 0xffffffff : sz === 16 ? 0xffff : 0xff;
        let d = (it.v & m) >>> 0;
        if (d === 0 || d === m) d = 3;
        b.emit({ op: "mov", dst: src, src: { imm: d }, size: sz });
        if (op === "div") {
          if (sz === 8) b.put({ op: "mov", dst: { reg: "ah" }, src: { imm: 0 } });
          else b.put({ op: "mov", dst: { reg: sz === 16 ? "dx" : "edx" }, src: { imm: 0 } });
        } else {
          b.put({ op: sz === 8 ? "cbw" : sz === 16 ? "cwd" : "cdq" });
        }
      }
      b.emit({ op, dst: src, size: sz });
      return;
    }
    case "imul": {
      const sz = it.size;
      const rm = b.rm(it.rm, sz, noEcx);
      const r: Operand = { reg: b.wreg(it.a, sz, noEcx) };
      if (it.form % 2 === 0) b.emit({ op: "imul", dst: r, src: rm });
      else b.emit({ op: "imul", dst: r, src: rm, src2: { imm: it.alt ? it.imm & (sz === 16 ? 0xffff : 0xffffffff) : (it.imm << 24) >> 24 }, alt: it.alt });
      return;
    }
    case "movx": {
      const ss = it.ssize === 16 && it.size === 16 ? 8 : it.ssize;
      b.emit({ op: it.sx ? "movsx" : "movzx", dst: { reg: b.wreg(it.a, it.size, noEcx) }, src: b.rm(it.rm, ss, noEcx), size: ss });
      return;
    }
    case "setcc": b.emit({ op: "setcc", cc: CONDS[it.cc & 15], dst: b.rm(it.rm, 8, noEcx) }); return;
    case "cmov": b.emit({ op: "cmovcc", cc: CONDS[it.cc & 15], dst: { reg: b.wreg(it.a, it.size, noEcx) }, src: b.rm(it.rm, it.size, noEcx) }); return;
    case "bt": {
      const op = ["bt", "bts", "btr", "btc"][it.op & 3]!;
      const sz = it.size;
      if (it.imm) { b.emit({ op, dst: b.rm(it.rm, sz, noEcx), src: { imm: it.bit & 0xff }, size: sz }); return; }
      const r = b.wreg(it.a, sz, noEcx);
      // A register bit offset on memory can address outside the operand: keep it small.
      const bit = it.rm.kind === "mem" ? ((it.bit % 160) - 64) : it.bit;
      b.put({ op: "mov", dst: { reg: r }, src: { imm: bit & (sz === 16 ? 0xffff : 0xffffffff) } });
      let dst: Operand;
      if (it.rm.kind === "mem") {
        const m = b.mem({ ...it.rm, off: 16 + (it.rm.off % Math.max(1, b.o.dataSize - 64)) }, 4, [regOf({ reg: r }), ...noEcx]);
        dst = { mem: m };
      } else dst = { reg: b.wreg(it.rm.r, sz, inLoop ? [1] : []) };
      b.emit({ op, dst, src: { reg: r }, size: sz });
      return;
    }
    case "bsx": b.emit({ op: it.r ? "bsr" : "bsf", dst: { reg: b.wreg(it.a, it.size, noEcx) }, src: b.rm(it.rm, it.size, noEcx) }); return;
    case "xchg": {
      const op = ["xchg", "xadd", "cmpxchg"][it.op % 3]!;
      const rm = b.rm(it.rm, it.size, noEcx);
      const avoid = op === "cmpxchg" ? [0, ...noEcx] : noEcx;
      let r: Reg = b.wreg(it.a, it.size, avoid);
      if (isReg(rm) && rm.reg === r && op === "xadd") r = b.wreg(it.a + 1, it.size, [regOf(rm), ...avoid]);
      b.emit({ op, dst: rm, src: { reg: r }, lock: it.lock && isMem(rm), alt: it.alt });
      return;
    }
    case "bswap": b.emit({ op: "bswap", dst: { reg: b.wreg(it.a, 32, noEcx) } }); return;
    case "lea": {
      const r = b.wreg(it.a, it.size, noEcx);
      const base = it.form % 3 === 2 ? undefined : REG32[it.b & 7];
      const index = it.form % 3 === 0 ? undefined : (REG32[it.x & 7] === "esp" ? "ebp" : REG32[it.x & 7]);
      b.emit({ op: "lea", dst: { reg: r }, src: { mem: { base, index, scale: ([1, 2, 4, 8] as const)[it.scale & 3], disp: it.disp } } });
      return;
    }
    case "push": {
      const sz: Size = it.o16 ? 16 : 32;
      switch (it.form % 3) {
        case 0: b.emit({ op: "push", dst: { reg: regName(it.a & 7, sz) } }); break;
        case 1: b.emit({ op: "push", dst: { imm: it.imm }, size: sz, alt: (it.imm & 1) === 1 }); break;
        default: b.emit({ op: "push", dst: b.rm(it.rm.kind === "mem" ? it.rm : { kind: "mem", form: 0, off: it.imm >>> 0, b: 0, x: 0, scale: 0, split: 0 }, sz, noEcx), size: sz }); break;
      }
      return;
    }
    case "pop": {
      const sz: Size = it.o16 ? 16 : 32;
      if (it.form % 2 === 0) b.emit({ op: "pop", dst: { reg: b.wreg(it.a, sz, noEcx) } });
      else {
        // POP to memory computes the address after ESP is incremented: avoid ESP-based forms.
        const spec = it.rm.kind === "mem" ? { ...it.rm, form: it.rm.form % 4 === 1 ? 0 : it.rm.form } : { kind: "mem" as const, form: 0, off: it.a, b: 0, x: 0, scale: 0, split: 0 };
        b.emit({ op: "pop", dst: { mem: b.mem(spec, sz / 8, noEcx) }, size: sz });
      }
      return;
    }
    case "str": {
      const op = ["movs", "cmps", "stos", "lods", "scas"][it.op % 5]!;
      const n = it.rep % 4 === 0 ? 1 : it.n % 9;
      const bytes = (it.size / 8) * Math.max(n, 1);
      const o = b.o;
      const span = o.dataSize - 2 * bytes - 16;
      const df = it.df;
      const place = (v: number) => (df ? o.dataBase + bytes + 8 + (v % span) : o.dataBase + 8 + (v % span)) >>> 0;
      b.put({ op: "mov", dst: { reg: "esi" }, src: { imm: place(it.si) } });
      b.put({ op: "mov", dst: { reg: "edi" }, src: { imm: place(it.di) } });
      if (it.rep % 4 !== 0) b.put({ op: "mov", dst: { reg: "ecx" }, src: { imm: n } });
      b.emit({ op: it.df ? "std" : "cld" });
      const cmp = op === "cmps" || op === "scas";
      // REPNE on a non-comparing string instruction is not architectural: only REP there.
      const rep = ([undefined, "rep", "repe", "repne"] as const)[it.rep % 4];
      const ins: Insn = { op, size: it.size, rep: rep === undefined ? undefined : cmp ? (rep === "repne" ? "repne" : "repe") : "rep" };
      if (n === 0 && (op === "cmps" || op === "scas")) b.put(ins); // no iteration: flags unchanged
      else b.emit(ins);
      return;
    }
    case "misc": {
      const ops = ["cbw", "cwde", "cwd", "cdq", "lahf", "sahf", "clc", "stc", "cmc", "daa", "das", "aaa", "aas", "aam", "aad", "nop", "cld"];
      const op = ops[it.op % ops.length]!;
      // AAM 0 raises #DE: only where faulting division is allowed.
      if (op === "aam" || op === "aad") b.emit({ op, src: { imm: op === "aam" && !b.o.unguardedDiv ? (it.imm & 0xff) || 10 : it.imm & 0xff } });
      else b.emit({ op });
      return;
    }
    case "sys": {
      const o = b.o;
      switch (it.op % 10) {
        case 0: { // CMPXCHG8B, equal or not
          const spec: RmSpec & { kind: "mem" } = it.rm.kind === "mem" ? it.rm : { kind: "mem", form: 0, off: it.v, b: 0, x: 0, scale: 0, split: 0 };
          const m = b.mem(spec, 8, [0, 1, 2, 3]);
          if (it.v & 1) {
            b.put({ op: "mov", dst: { reg: "eax" }, src: { mem: m } });
            b.put({ op: "mov", dst: { reg: "edx" }, src: { mem: { ...m, disp: (m.disp ?? 0) + 4 } } });
          }
          b.emit({ op: "cmpxchg8b", dst: { mem: m }, lock: (it.v & 2) !== 0 });
          return;
        }
        case 1: b.put({ op: "mov", dst: { reg: "ebx" }, src: { imm: o.dataBase + (it.v % (o.dataSize - 256)) } }); b.emit({ op: "xlat" }); return;
        case 2: b.emit({ op: "salc" }); return;
        case 3: b.emit({ op: "pusha", size: it.v & 1 ? 16 : 32 }); return;
        case 4: b.emit({ op: "popa", size: it.v & 1 ? 16 : 32 }); return;
        case 5: // ENTER (nesting level 0 or 1) ... LEAVE
          b.emit({ op: "enter", dst: { imm: it.v & 0x3c }, src: { imm: (it.v >> 8) & 1 } });
          b.emit({ op: "push", dst: { imm: it.a } });
          b.emit({ op: "leave" });
          return;
        case 6: { // BOUND (may raise #BR)
          const r = b.wreg(it.a, it.v & 1 ? 16 : 32, noEcx);
          const spec: RmSpec & { kind: "mem" } = it.rm.kind === "mem" ? it.rm : { kind: "mem", form: 0, off: it.v, b: 0, x: 0, scale: 0, split: 0 };
          b.emit({ op: "bound", dst: { reg: r }, src: { mem: b.mem(spec, 8, [regOf({ reg: r })]) } });
          return;
        }
        case 7: b.emit({ op: "into" }); return;
        case 8: b.emit({ op: "raw", bytes: [0xf0, 0x01, 0xc0 | ((it.a & 7) << 3) | (it.v & 7)] }); return; // LOCK on a register: #UD
        default: b.emit({ op: "ud2" }); return;
      }
    }
    case "smc": {
      // Patch the immediate of the instruction right after this one (same block), or a byte
      // of already-executed code (only invalidation is observable).
      if (!b.o.selfModify) return;
      const here = b.o.codeBase + lengthSoFar(b);
      if (it.far % 3 !== 0 && here > b.o.codeBase + 16) {
        const target = b.o.codeBase + (it.far % (here - b.o.codeBase - 8));
        b.emit({ op: "mov", dst: { mem: { disp: target } }, src: { imm: it.v & 0xff }, size: 8 });
        return;
      }
      // mov dword [next+1], v (10 bytes) ; mov eax, 0 (5 bytes)
      b.emit({ op: "mov", dst: { mem: { disp: (here + 10 + 1) >>> 0 } }, src: { imm: it.v >>> 0 }, size: 32 });
      b.emit({ op: "mov", dst: { reg: "eax" }, src: { imm: 0 } });
      return;
    }
    case "skip": case "loop": throw new Error("control item in buildItem");
  }
}

function lengthSoFar(b: Builder): number {
  let n = 0;
  for (const i of b.out) n += encodeBytes(i, true).length;
  return n;
}

function buildItems(b: Builder, items: Item[], inLoop: boolean): void {
  for (const it of items) {
    if (it.k === "skip") {
      if (!b.o.branches || inLoop) continue;
      const before = b.undef;
      const sub = new Builder(b.o);
      sub.undef = b.undef;
      // Code inside the skipped region is placed after the branch; SMC inside is not allowed.
      buildItems(sub, it.body.filter((x) => x.k !== "smc" && x.k !== "skip" && x.k !== "loop"), false);
      const bodyLen = sub.out.reduce((n, i) => n + encodeBytes(i, true).length, 0);
      if (bodyLen > 127) { b.merge(sub); b.undef = sub.undef; continue; }
      const c = it.cc % 18;
      if (c === 16) b.put({ op: "jmp", rel: bodyLen });
      else if (c === 17) b.put({ op: "jecxz", rel: bodyLen });
      else b.emit({ op: "jcc", cc: CONDS[c], rel: bodyLen });
      b.merge(sub);
      b.undef = c === 16 ? before : sub.undef | before;
      continue;
    }
    if (it.k === "loop") {
      if (!b.o.branches || inLoop) continue;
      const n = 1 + (it.n % 5);
      b.put({ op: "mov", dst: { reg: "ecx" }, src: { imm: n } });
      const sub = new Builder(b.o);
      sub.undef = b.undef;
      buildItems(sub, it.body.filter((x) => x.k !== "smc" && x.k !== "skip" && x.k !== "loop" && x.k !== "str" && !(x.k === "muldiv") && !(x.k === "misc") && x.k !== "sys"), true);
      // End the body with an instruction that defines every arithmetic flag (LOOPE/LOOPNE read ZF,
      // and the next iteration must not see flags the body left undefined).
      sub.emit({ op: "cmp", dst: { reg: "eax" }, src: { reg: "edx" } });
      const bodyLen = sub.out.reduce((k, i) => k + encodeBytes(i, true).length, 0);
      if (bodyLen > 120) { b.merge(sub); b.undef = sub.undef; continue; }
      b.merge(sub);
      b.put({ op: ["loop", "loope", "loopne"][it.kind % 3]!, rel: -(bodyLen + 2) });
      b.undef = sub.undef;
      continue;
    }
    buildItem(b, it, inLoop);
  }
}

/** Turn items into a program (deterministic). */
export function buildProgram(items: Item[], opts: ProgramOptions): Program {
  const b = new Builder(resolveOptions(opts));
  buildItems(b, items, false);
  const parts = b.out.map((i) => encodeBytes(i, true));
  const offsets: number[] = [];
  let n = 0;
  for (const p of parts) { offsets.push(n); n += p.length; }
  const code = Uint8Array.from(parts.flat());
  return { code, insns: b.out, undefFlags: b.undef, undefBefore: b.st, offsets, undefRegs: b.undefRegs };
}

// ---- arbitraries ----

const u32 = () => fc.integer({ min: 0, max: 0xffffffff });
const small = (n: number) => fc.nat({ max: n });
const szArb = fc.constantFrom<Sz>(8, 16, 32);
const sz1632 = fc.constantFrom<16 | 32>(16, 32);

export const arbRm: fc.Arbitrary<RmSpec> = fc.oneof(
  fc.record({ kind: fc.constant("reg" as const), r: small(7) }),
  fc.record({ kind: fc.constant("mem" as const), form: small(3), off: small(1 << 20), b: small(7), x: small(7), scale: small(3), split: small(1 << 16) }),
);

const interesting = fc.oneof(u32(), fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff), small(40));

function arbSimpleItem(): fc.Arbitrary<Item> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ k: fc.constant("alu" as const), op: small(7), size: szArb, form: small(2), a: small(7), rm: arbRm, imm: interesting, alt: fc.boolean() }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant("mov" as const), size: szArb, form: small(3), a: small(7), rm: arbRm, imm: interesting, alt: fc.boolean() }) },
    { weight: 4, arbitrary: fc.record({ k: fc.constant("shift" as const), op: small(6), size: szArb, rm: arbRm, cnt: fc.oneof(small(33), small(255)), how: small(2), alt: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("shd" as const), left: fc.boolean(), size: sz1632, rm: arbRm, a: small(7), cnt: small(40), cl: fc.boolean() }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant("unary" as const), op: small(3), size: szArb, rm: arbRm, alt: fc.boolean() }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant("muldiv" as const), op: small(3), size: szArb, rm: arbRm, guard: fc.boolean(), v: interesting, w: u32() }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("imul" as const), size: sz1632, form: small(1), a: small(7), rm: arbRm, imm: interesting, alt: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("movx" as const), sx: fc.boolean(), size: sz1632, ssize: fc.constantFrom<8 | 16>(8, 16), a: small(7), rm: arbRm }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("setcc" as const), cc: small(15), rm: arbRm }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("cmov" as const), cc: small(15), size: sz1632, a: small(7), rm: arbRm }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("bt" as const), op: small(3), size: sz1632, rm: arbRm, a: small(7), imm: fc.boolean(), bit: u32() }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("bsx" as const), r: fc.boolean(), size: sz1632, a: small(7), rm: arbRm }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("xchg" as const), op: small(2), size: szArb, rm: arbRm, a: small(7), lock: fc.boolean(), alt: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant("bswap" as const), a: small(7) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("lea" as const), size: sz1632, a: small(7), b: small(7), x: small(7), scale: small(3), disp: fc.oneof(small(200), fc.integer({ min: -0x80000000, max: 0x7fffffff })), form: small(2) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("push" as const), form: small(2), a: small(7), rm: arbRm, imm: interesting, o16: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("pop" as const), form: small(1), a: small(7), rm: arbRm, o16: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("str" as const), op: small(4), size: szArb, rep: small(3), n: small(8), df: fc.boolean(), si: small(1 << 16), di: small(1 << 16) }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant("misc" as const), op: small(16), imm: small(255) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("sys" as const), op: fc.oneof({ weight: 6, arbitrary: small(5) }, { weight: 1, arbitrary: fc.integer({ min: 6, max: 9 }) }), v: u32(), a: u32(), rm: arbRm }) },
  );
}

export function arbItem(opts: { selfModify?: boolean; branches?: boolean } = {}): fc.Arbitrary<Item> {
  const simple = arbSimpleItem();
  const arbs: { weight: number; arbitrary: fc.Arbitrary<Item> }[] = [{ weight: 20, arbitrary: simple }];
  if (opts.branches !== false) {
    arbs.push({ weight: 2, arbitrary: fc.record({ k: fc.constant("skip" as const), cc: small(17), body: fc.array(simple, { maxLength: 4 }) }) });
    arbs.push({ weight: 1, arbitrary: fc.record({ k: fc.constant("loop" as const), kind: small(2), n: small(4), body: fc.array(simple, { maxLength: 4 }) }) });
  }
  if (opts.selfModify) arbs.push({ weight: 2, arbitrary: fc.record({ k: fc.constant("smc" as const), v: u32(), far: small(1 << 16) }) });
  return fc.oneof(...arbs);
}

/** Random valid instruction sequences confined to the sandbox (see ProgramOptions). */
export function arbProgram(opts: ProgramOptions): fc.Arbitrary<Program & { items: Item[] }> {
  const o = resolveOptions(opts);
  return fc.array(arbItem(o), { minLength: o.minItems, maxLength: o.maxItems }).map((items) => ({ ...buildProgram(items, o), items }));
}
