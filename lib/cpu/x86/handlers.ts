/**
 * The handler each decoded instruction runs (chosen once, when its block is built): a small
 * specialised function for the commonest 32-bit forms, else exec() (exec.ts).
 */
import type { CpuCore as Cpu } from "./interrupts.ts";
import { REP_NONE, type Insn } from "./decode.ts";
import { jumpTo } from "./ops.ts";
import { exec } from "./exec.ts";
import { esc } from "./x87.ts";

// ---------------------------------------------------------------------------------------
// Specialised handlers for the commonest 32-bit forms. Each is exactly exec()'s generic case
// restricted to o32/a32 operands, chosen per decoded instruction by `handlerFor` (so the block
// loop calls a small function instead of entering the big switch). Anything else: exec().
// ---------------------------------------------------------------------------------------
export type Handler = (c: Cpu, i: Insn) => void;

function nx32(c: Cpu, i: Insn): number { return c.code32 ? (c.eip + i.len) >>> 0 : (c.eip + i.len) & 0xffff; }

function aluRmR(kind: number): Handler {
  const store = kind !== 7;
  return (c, i) => {
    const b = c.regs[i.reg]!;
    if (i.mod === 3) {
      const r = c.alu(kind, c.regs[i.rm]!, b, 2);
      if (store) c.regs[i.rm] = r;
    } else {
      const s = i.seg >= 0 ? i.seg : i.defSeg, o = c.ea(i);
      const r = c.alu(kind, store ? c.rdRmw(2, s, o) : c.rd32(s, o), b, 2);
      if (store) c.wr32(s, o, r);
    }
    c.eip = nx32(c, i);
  };
}
function aluRRm(kind: number): Handler {
  const store = kind !== 7;
  return (c, i) => {
    const src = i.mod === 3 ? c.regs[i.rm]! : c.rd32(i.seg >= 0 ? i.seg : i.defSeg, c.ea(i));
    const r = c.alu(kind, c.regs[i.reg]!, src, 2);
    if (store) c.regs[i.reg] = r;
    c.eip = nx32(c, i);
  };
}
function aluEaxImm(kind: number): Handler {
  const store = kind !== 7;
  return (c, i) => {
    const r = c.alu(kind, c.regs[0]!, i.imm >>> 0, 2);
    if (store) c.regs[0] = r;
    c.eip = nx32(c, i);
  };
}
const grp1: Handler = (c, i) => {
  const kind = i.reg;
  const imm = i.op === 0x83 ? ((i.imm << 24) >> 24) >>> 0 : i.imm >>> 0;
  if (i.mod === 3) {
    const r = c.alu(kind, c.regs[i.rm]!, imm, 2);
    if (kind !== 7) c.regs[i.rm] = r;
  } else {
    const s = i.seg >= 0 ? i.seg : i.defSeg, o = c.ea(i);
    const r = c.alu(kind, kind !== 7 ? c.rdRmw(2, s, o) : c.rd32(s, o), imm, 2);
    if (kind !== 7) c.wr32(s, o, r);
  }
  c.eip = nx32(c, i);
};
const movRmR: Handler = (c, i) => {
  if (i.mod === 3) c.regs[i.rm] = c.regs[i.reg]!;
  else c.wr32(i.seg >= 0 ? i.seg : i.defSeg, c.ea(i), c.regs[i.reg]!);
  c.eip = nx32(c, i);
};
const movRRm: Handler = (c, i) => {
  c.regs[i.reg] = i.mod === 3 ? c.regs[i.rm]! : c.rd32(i.seg >= 0 ? i.seg : i.defSeg, c.ea(i));
  c.eip = nx32(c, i);
};
const movRImm: Handler = (c, i) => { c.regs[i.op & 7] = i.imm >>> 0; c.eip = nx32(c, i); };
const lea: Handler = (c, i) => { c.regs[i.reg] = c.ea(i); c.eip = nx32(c, i); };
const incR: Handler = (c, i) => { const r = i.op & 7; c.regs[r] = c.inc(c.regs[r]!, 2); c.eip = nx32(c, i); };
const decR: Handler = (c, i) => { const r = i.op & 7; c.regs[r] = c.dec(c.regs[r]!, 2); c.eip = nx32(c, i); };
const pushR: Handler = (c, i) => { c.push32(c.regs[i.op & 7]!); c.eip = nx32(c, i); };
const popR: Handler = (c, i) => {
  const v = c.peek(true);
  c.adjSp(4);
  c.regs[i.op & 7] = v;
  c.eip = nx32(c, i);
};
const jcc: Handler = (c, i) => {
  const n = nx32(c, i);
  if (c.cond(i.op & 0xf)) jumpTo(c, n + i.imm, true);
  else c.eip = n;
};
const jmpRel: Handler = (c, i) => { jumpTo(c, nx32(c, i) + i.imm, true); };
const testRmR: Handler = (c, i) => {
  const a = i.mod === 3 ? c.regs[i.rm]! : c.rd32(i.seg >= 0 ? i.seg : i.defSeg, c.ea(i));
  c.alu(4, a, c.regs[i.reg]!, 2);
  c.eip = nx32(c, i);
};

/** The handler for one decoded instruction: a specialised one when its form allows, else exec. */
export function handlerFor(i: Insn): Handler {
  if (i.op >= 0xd8 && i.op <= 0xdf) return esc;
  if (!i.o32 || !i.a32 || i.rep !== REP_NONE || i.lock) return exec;
  const op = i.op;
  if (op < 0x40 && (op & 7) < 6) {
    const kind = op >> 3, form = op & 7;
    if (form === 1) return aluRmRs[kind]!;
    if (form === 3) return aluRRms[kind]!;
    if (form === 5) return aluEaxImms[kind]!;
    return exec;
  }
  if (op >= 0x40 && op <= 0x47) return incR;
  if (op >= 0x48 && op <= 0x4f) return decR;
  if (op >= 0x50 && op <= 0x57) return pushR;
  if (op >= 0x58 && op <= 0x5f) return popR;
  if ((op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f)) return jcc;
  if (op >= 0xb8 && op <= 0xbf) return movRImm;
  switch (op) {
    case 0x81: case 0x83: return grp1;
    case 0x85: return testRmR;
    case 0x89: return movRmR;
    case 0x8b: return movRRm;
    case 0x8d: return i.mod === 3 ? exec : lea;
    case 0xe9: case 0xeb: return jmpRel;
  }
  return exec;
}
const aluRmRs = [0, 1, 2, 3, 4, 5, 6, 7].map(aluRmR);
const aluRRms = [0, 1, 2, 3, 4, 5, 6, 7].map(aluRRm);
const aluEaxImms = [0, 1, 2, 3, 4, 5, 6, 7].map(aluEaxImm);
