/**
 * A disassembler (Intel syntax) driven by the opcode table and the decoder: good enough to
 * print a failing program readably. Each line: address, bytes, instruction.
 */
import { decode, DecodeError, Insn, REP_E, REP_NE, REP_NONE } from "./decode.ts";
import { ALU_NAMES, CC_NAMES, OPFLAGS, OPS, OpF } from "./optable.ts";

const R32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const R16 = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"];
const R8 = ["al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"];
const SEGS = ["es", "cs", "ss", "ds", "fs", "gs"];
const SHIFTS = ["rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar"];
const GRP3 = ["test", "test", "not", "neg", "mul", "imul", "div", "idiv"];
const GRP5 = ["inc", "dec", "call", "call far", "jmp", "jmp far", "push", "(bad)"];
const GRP6 = ["sldt", "str", "lldt", "ltr", "verr", "verw", "(bad)", "(bad)"];
const GRP7 = ["sgdt", "sidt", "lgdt", "lidt", "smsw", "(bad)", "lmsw", "invlpg"];

const hex = (v: number) => "0x" + (v >>> 0).toString(16);
function shex(v: number): string {
  return v < 0 ? "-0x" + (-v).toString(16) : "0x" + v.toString(16);
}

function reg(n: number, sz: number): string {
  return sz === 0 ? R8[n]! : sz === 1 ? R16[n]! : R32[n]!;
}

function memStr(i: Insn, sz: number | null): string {
  const parts: string[] = [];
  const names = i.a32 ? R32 : R16;
  if (i.base >= 0) parts.push(names[i.base]!);
  if (i.index >= 0) parts.push(names[i.index]! + (i.scale ? "*" + (1 << i.scale) : ""));
  let s = parts.join("+");
  if (i.disp !== 0 || parts.length === 0) {
    if (parts.length === 0) s = hex(i.a32 ? i.disp >>> 0 : i.disp & 0xffff);
    else s += (i.disp < 0 ? "-" : "+") + hex(Math.abs(i.disp));
  }
  const ptr = sz === null ? "" : ["byte", "word", "dword", "fword", "qword"][sz]! + " ptr ";
  const seg = i.seg >= 0 ? SEGS[i.seg] + ":" : "";
  return `${ptr}${seg}[${s}]`;
}

function rm(i: Insn, sz: number): string {
  return i.mod === 3 ? reg(i.rm, sz) : memStr(i, sz);
}

/** Disassemble one decoded instruction at `addr` (for branch targets). */
export function formatInsn(i: Insn, addr: number, code32: boolean): string {
  const op = i.op;
  const fl = OPFLAGS[op]!;
  if (fl & OpF.INVALID) return "(bad)";
  const v = i.o32 ? 2 : 1;
  const sz = fl & OpF.BYTE ? 0 : v;
  const end = addr + i.len;
  const rel = (d: number) => hex(code32 ? (end + d) >>> 0 : (end + d) & 0xffff);
  const imm8s = ((i.imm << 24) >> 24);
  let name = OPS[op]!.name;
  let args: string[] = [];
  const pre: string[] = [];
  if (i.lock) pre.push("lock");
  const isCmpStr = op === 0xa6 || op === 0xa7 || op === 0xae || op === 0xaf;
  if (i.rep === REP_E) pre.push(isCmpStr ? "repe" : "rep");
  else if (i.rep === REP_NE) pre.push(isCmpStr ? "repne" : "repne");
  const strSuffix = () => (sz === 0 ? "b" : sz === 1 ? "w" : "d");

  if (op < 0x40 && (op & 7) < 6) {
    const form = op & 7;
    const s = form & 1 ? v : 0;
    if (form < 2) args = [rm(i, s), reg(i.reg, s)];
    else if (form < 4) args = [reg(i.reg, s), rm(i, s)];
    else if (form === 4) args = ["al", hex(i.imm)];
    else args = [reg(0, v), hex(i.imm)];
  } else if (op >= 0x40 && op <= 0x5f) args = [reg(op & 7, v)];
  else if (op >= 0x70 && op <= 0x7f || op >= 0x180 && op <= 0x18f || op === 0xeb || op === 0xe9 || op === 0xe8 || (op >= 0xe0 && op <= 0xe3)) {
    args = [rel(i.imm)];
    if (op === 0xe3) name = i.a32 ? "jecxz" : "jcxz";
  } else if (op >= 0x91 && op <= 0x97) args = [reg(0, v), reg(op & 7, v)];
  else if (op >= 0xb0 && op <= 0xb7) args = [reg(op & 7, 0), hex(i.imm)];
  else if (op >= 0xb8 && op <= 0xbf) args = [reg(op & 7, v), hex(i.imm)];
  else if (op >= 0x190 && op <= 0x19f) args = [rm(i, 0)];
  else if (op >= 0x140 && op <= 0x14f) args = [reg(i.reg, v), rm(i, v)];
  else if (op >= 0x1c8 && op <= 0x1cf) args = [reg(op & 7, v)];
  else {
    switch (op) {
      case 0x62: args = [reg(i.reg, v), memStr(i, null)]; break;
      case 0x63: args = [rm(i, 1), reg(i.reg, 1)]; break;
      case 0x68: args = [hex(i.imm)]; if (!i.o32) name = "push word"; break;
      case 0x6a: args = [shex(imm8s)]; break;
      case 0x69: args = [reg(i.reg, v), rm(i, v), hex(i.imm)]; break;
      case 0x6b: args = [reg(i.reg, v), rm(i, v), shex(imm8s)]; break;
      case 0x6c: case 0x6d: case 0x6e: case 0x6f: case 0xa4: case 0xa5: case 0xa6: case 0xa7:
      case 0xaa: case 0xab: case 0xac: case 0xad: case 0xae: case 0xaf:
        name = name.replace(/b$/, "") + strSuffix();
        if (i.seg >= 0) pre.push(SEGS[i.seg]!);
        break;
      case 0x80: case 0x81: case 0x82: case 0x83:
        name = ALU_NAMES[i.reg]!;
        args = [rm(i, sz), op === 0x83 ? shex(imm8s) : hex(i.imm)];
        break;
      case 0x84: case 0x85: case 0x86: case 0x87: case 0x88: case 0x89: args = [rm(i, sz), reg(i.reg, sz)]; break;
      case 0x8a: case 0x8b: args = [reg(i.reg, sz), rm(i, sz)]; break;
      case 0x8c: args = [i.mod === 3 ? reg(i.rm, v) : memStr(i, 1), SEGS[i.reg] ?? "?"]; break;
      case 0x8d: args = [reg(i.reg, v), memStr(i, null)]; break;
      case 0x8e: args = [SEGS[i.reg] ?? "?", rm(i, 1)]; break;
      case 0x8f: args = [rm(i, v)]; break;
      case 0x98: name = i.o32 ? "cwde" : "cbw"; break;
      case 0x99: name = i.o32 ? "cdq" : "cwd"; break;
      case 0x9a: case 0xea: args = [`${hex(i.imm2)}:${hex(i.imm)}`]; break;
      case 0x9c: case 0x9d: case 0x60: case 0x61: case 0xcf: if (i.o32) name += "d"; break;
      case 0xa0: case 0xa1: args = [reg(0, sz), memStr(i, sz)]; break;
      case 0xa2: case 0xa3: args = [memStr(i, sz), reg(0, sz)]; break;
      case 0xa8: case 0xa9: args = [reg(0, sz), hex(i.imm)]; break;
      case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3:
        name = SHIFTS[i.reg]!;
        args = [rm(i, sz), op <= 0xc1 ? hex(i.imm) : op <= 0xd1 ? "1" : "cl"];
        break;
      case 0xc2: case 0xca: args = [hex(i.imm)]; break;
      case 0xc4: case 0xc5: case 0x1b2: case 0x1b4: case 0x1b5: args = [reg(i.reg, v), memStr(i, null)]; break;
      case 0xc6: case 0xc7: args = [rm(i, sz), hex(i.imm)]; break;
      case 0xc8: args = [hex(i.imm), hex(i.imm2)]; break;
      case 0xcd: args = [hex(i.imm)]; break;
      case 0xd4: case 0xd5: if (i.imm !== 10) args = [hex(i.imm)]; break;
      case 0xe4: case 0xe5: args = [reg(0, sz), hex(i.imm)]; break;
      case 0xe6: case 0xe7: args = [hex(i.imm), reg(0, sz)]; break;
      case 0xec: case 0xed: args = [reg(0, sz), "dx"]; break;
      case 0xee: case 0xef: args = ["dx", reg(0, sz)]; break;
      case 0xf6: case 0xf7:
        name = GRP3[i.reg]!;
        args = i.reg < 2 ? [rm(i, sz), hex(i.imm)] : [rm(i, sz)];
        break;
      case 0xfe: name = i.reg === 0 ? "inc" : i.reg === 1 ? "dec" : "(bad)"; args = [rm(i, 0)]; break;
      case 0xff:
        name = GRP5[i.reg]!;
        args = [i.reg === 3 || i.reg === 5 ? memStr(i, null) : rm(i, v)];
        break;
      case 0x100: name = GRP6[i.reg]!; args = [rm(i, 1)]; break;
      case 0x101: name = GRP7[i.reg]!; args = [i.reg === 4 || i.reg === 6 ? rm(i, 1) : memStr(i, null)]; break;
      case 0x102: case 0x103: case 0x1af: case 0x1bc: case 0x1bd: args = [reg(i.reg, v), rm(i, v)]; break;
      case 0x120: args = [R32[i.rm]!, "cr" + i.reg]; break;
      case 0x122: args = ["cr" + i.reg, R32[i.rm]!]; break;
      case 0x121: args = [R32[i.rm]!, "dr" + i.reg]; break;
      case 0x123: args = ["dr" + i.reg, R32[i.rm]!]; break;
      case 0x11f: args = [rm(i, v)]; break;
      case 0x1a3: case 0x1ab: case 0x1b3: case 0x1bb: args = [rm(i, v), reg(i.reg, v)]; break;
      case 0x1a4: case 0x1ac: args = [rm(i, v), reg(i.reg, v), hex(i.imm)]; break;
      case 0x1a5: case 0x1ad: args = [rm(i, v), reg(i.reg, v), "cl"]; break;
      case 0x1b0: case 0x1b1: case 0x1c0: case 0x1c1: args = [rm(i, sz), reg(i.reg, sz)]; break;
      case 0x1b6: case 0x1be: args = [reg(i.reg, v), rm(i, 0)]; break;
      case 0x1b7: case 0x1bf: args = [reg(i.reg, v), rm(i, 1)]; break;
      case 0x1ba: name = i.reg >= 4 ? ["bt", "bts", "btr", "btc"][i.reg - 4]! : "(bad)"; args = [rm(i, v), hex(i.imm)]; break;
      case 0x1c7: name = i.reg === 1 ? "cmpxchg8b" : "(bad)"; args = [memStr(i, 4)]; break;
      default:
        if (fl & OpF.FPU) args = [i.mod === 3 ? `st(${i.rm})` : memStr(i, null)];
        break;
    }
  }
  void CC_NAMES; void REP_NONE;
  return [...pre, name].join(" ") + (args.length ? " " + args.join(", ") : "");
}

/**
 * Disassemble a byte sequence. Each line: address, hex bytes, instruction. Undecodable or
 * truncated bytes print as "(bad)" and advance by one byte.
 */
export function disasm(bytes: Uint8Array, code32: boolean, base = 0): string[] {
  const out: string[] = [];
  let pos = 0;
  const ins = new Insn();
  while (pos < bytes.length) {
    const p = pos;
    const f = { fetch8(n: number): number { if (p + n >= bytes.length) throw new RangeError("truncated"); return bytes[p + n]!; } };
    let text: string, len: number;
    try {
      decode(f, code32, ins);
      len = ins.len;
      text = formatInsn(ins, base + p, code32);
    } catch (e) {
      if (!(e instanceof DecodeError) && !(e instanceof RangeError)) throw e;
      len = 1;
      text = "(bad)";
    }
    const hb = Array.from(bytes.subarray(p, p + len), (b) => b.toString(16).padStart(2, "0")).join(" ");
    out.push(`${(base + p).toString(16).padStart(8, "0")}  ${hb.padEnd(24)} ${text}`);
    pos += len;
  }
  return out;
}
