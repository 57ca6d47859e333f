/**
 * The handler each decoded instruction runs (chosen once, when its block is built): a small
 * specialised function for the commonest 32-bit forms and for some forms kernels run often
 * with any prefixes, else exec() (exec.ts).
 */
import type { CpuCore as Cpu } from "./interrupts.ts";
import { CS, DS, ES, FS, GS, REP_NONE, SS, type Insn } from "./decode.ts";
import { jumpTo, next, opsz } from "./ops.ts";
import { stringOp } from "./strings.ts";
import { grp7 } from "./system.ts";
import { exec } from "./exec.ts";
import { esc } from "./x87.ts";
import { EAX, EBX, ECX, EDX } from "./arch.ts";
import { CF, IF, IOPL, RF, ZF } from "./flags.ts";

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

// ---------------------------------------------------------------------------------------
// Forms the record interpreter leaves to handlers (interp.ts K.GEN) that kernels run often:
// the same as exec()'s cases, in small functions the engine optimises early (exec() is one
// large function). Each hands anything unusual (a fault to raise, virtual-8086 mode) to exec().
// ---------------------------------------------------------------------------------------
/** CLI and STI where IOPL allows them (else exec() raises #GP). */
const cli: Handler = (c, i) => {
  if (c.pe() && c.cpl > ((c.eflags & IOPL) >>> 12)) { exec(c, i); return; }
  c.eflags &= ~IF;
  c.eip = nx32(c, i);
};
const sti: Handler = (c, i) => {
  if (c.pe() && c.cpl > ((c.eflags & IOPL) >>> 12)) { exec(c, i); return; }
  if (!(c.eflags & IF)) c.inhibit = true;
  c.eflags |= IF;
  c.eip = nx32(c, i);
};
/** PUSHFD outside virtual-8086 mode. */
const pushf: Handler = (c, i) => {
  if (c.v86()) { exec(c, i); return; }
  c.push32(c.getFlags() & ~(RF | 0x20000));
  c.eip = nx32(c, i);
};
/**
 * CMPXCHG8B m64 through a flat segment's write TLB, the quadword aligned to 4 in one page (a
 * write TLB entry: plain RAM, writable, no code, no watchpoint). Else exec().
 */
const cmpxchg8b: Handler = (c, i) => {
  if (i.reg !== 1 || i.mod === 3) { exec(c, i); return; }
  const s = i.seg >= 0 ? i.seg : i.defSeg;
  if (c.segFast[s] === 0) { exec(c, i); return; }
  const l = (c.segBase[s]! + c.ea(i)) >>> 0, e = c.tlbW[l >>> 12]!;
  if (e === 0 || (l & 3) !== 0 || (l & 0xfff) > 0xff8) { exec(c, i); return; }
  const q = ((((e - 1) << 12) | (l & 0xfff)) >>> 2), m = c.ram32, regs = c.regs;
  const lo = m[q]! >>> 0, hi = m[q + 1]! >>> 0;
  c.materialise();
  if (lo === regs[EAX] && hi === regs[EDX]) {
    m[q] = regs[EBX]!; m[q + 1] = regs[ECX]!;
    c.eflags |= ZF;
  } else {
    regs[EAX] = lo; regs[EDX] = hi;
    c.eflags &= ~ZF;
  }
  c.eip = nx32(c, i);
};
/** XADD r/m32, r32. */
const xadd32: Handler = (c, i) => {
  const src = c.regs[i.reg]!;
  if (i.mod === 3) {
    const d = c.regs[i.rm]!;
    const r = c.alu(0, d, src, 2);
    c.regs[i.reg] = d; c.regs[i.rm] = r;
  } else {
    const s = i.seg >= 0 ? i.seg : i.defSeg, o = c.ea(i);
    const d = c.rdRmw(2, s, o);
    const r = c.alu(0, d, src, 2);
    c.wr32(s, o, r);
    c.regs[i.reg] = d;
  }
  c.eip = nx32(c, i);
};
/** BT, BTS, BTR, BTC r/m32, imm8 (bitOp with an immediate). */
const btImm32: Handler = (c, i) => {
  const kind = i.reg - 4;
  if (kind < 0) { exec(c, i); return; }
  const mask = (1 << (i.imm & 31)) >>> 0;
  let v: number, s = 0, o = 0;
  if (i.mod === 3) v = c.regs[i.rm]!;
  else {
    s = i.seg >= 0 ? i.seg : i.defSeg; o = c.ea(i);
    v = kind !== 0 ? c.rdRmw(2, s, o) : c.rd32(s, o);
  }
  c.materialise();
  c.eflags = (c.eflags & ~CF) | ((v & mask) !== 0 ? 1 : 0);
  if (kind !== 0) {
    const r = (kind === 1 ? v | mask : kind === 2 ? v & ~mask : v ^ mask) >>> 0;
    if (i.mod === 3) c.regs[i.rm] = r; else c.wr32(s, o, r);
  }
  c.eip = nx32(c, i);
};
/**
 * IMUL r32, r/m32, imm32 or imm8: the low half by Math.imul; the product overflows 32 bits
 * exactly when the double product (exact while it fits) differs from it.
 */
const imulImm32: Handler = (c, i) => {
  const a = i.mod === 3 ? c.regs[i.rm]! : c.rd32(i.seg >= 0 ? i.seg : i.defSeg, c.ea(i));
  const b = i.op === 0x6b ? (i.imm << 24) >> 24 : i.imm | 0;
  const r = Math.imul(a, b), over = (a | 0) * b !== r;
  c.regs[i.reg] = r;
  c.setSZP(r, 2, over ? 1 : 0, over);
  c.eip = nx32(c, i);
};
/** The ALU group on r/m16 with a sign-extended imm8 (66 83 /k). */
const grp1w: Handler = (c, i) => {
  const kind = i.reg, imm = ((i.imm << 24) >> 24) & 0xffff;
  if (i.mod === 3) {
    const r = c.alu(kind, c.regs[i.rm]! & 0xffff, imm, 1);
    if (kind !== 7) c.setReg(1, i.rm, r);
  } else {
    const s = i.seg >= 0 ? i.seg : i.defSeg, o = c.ea(i);
    const r = c.alu(kind, kind !== 7 ? c.rdRmw(1, s, o) : c.rd16(s, o), imm, 1);
    if (kind !== 7) c.wr16(s, o, r);
  }
  c.eip = nx32(c, i);
};

// Forms a kernel runs often outside exec()'s common cases, with any prefix, as exec() runs them:
// the string instructions (its memset, memcpy and memcmp run REP forms hundreds of thousands
// of times), group 7 (INVLPG), IRET and PUSH of a segment register (Linux's sync_core is
// PUSH CS, PUSH, IRET), MOV between the accumulator and a memory offset.
const strKinds: Handler[] = [0, 1, 2, 3, 4].map((kind) => (c, i) => stringOp(c, i, kind, opsz(i)));
const STR_KIND: Record<number, number> = { 0xa4: 0, 0xa5: 0, 0xa6: 1, 0xa7: 1, 0xaa: 2, 0xab: 2, 0xac: 3, 0xad: 3, 0xae: 4, 0xaf: 4 };
const iret: Handler = (c, i) => { c.iret(i.o32, next(c, i)); c.modeChanged(); };
const pushSeg = (s: number): Handler => (c, i) => { c.push(i.o32, c.sel[s]!); c.eip = next(c, i); };
const PUSH_SEG: Record<number, Handler> = { 0x06: pushSeg(ES), 0x0e: pushSeg(CS), 0x16: pushSeg(SS), 0x1e: pushSeg(DS), 0x1a0: pushSeg(FS), 0x1a8: pushSeg(GS) };
const movAccMem: Handler = (c, i) => {
  const sz = opsz(i), s = i.seg >= 0 ? i.seg : DS;
  if (i.op <= 0xa1) c.setReg(sz, EAX, c.rd(sz, s, i.disp >>> 0));
  else c.wr(sz, s, i.disp >>> 0, c.getReg(sz, EAX));
  c.eip = next(c, i);
};

/**
 * How translated code runs an instruction it does not inline (jit.ts, jit-wasm.ts): through the
 * instruction's handler, as the interpreter does, rather than exec() for all.
 */
export const runInsn = (c: Cpu, i: Insn): void => (i.fn as Handler)(c, i);

/** The handler for one decoded instruction: a specialised one when its form allows, else exec. */
export function handlerFor(i: Insn): Handler {
  if (i.op >= 0xd8 && i.op <= 0xdf) return esc;
  const sk = STR_KIND[i.op];
  if (sk !== undefined) return strKinds[sk]!;
  if (i.op === 0x101) return grp7;
  if (i.op === 0xcf) return iret;
  if (i.op >= 0xa0 && i.op <= 0xa3) return movAccMem;
  const ps = PUSH_SEG[i.op];
  if (ps !== undefined) return ps;
  if (!i.a32 || i.rep !== REP_NONE) return exec;
  // (LOCK changes nothing on one CPU; exec() ignores it too.)
  if (i.op === 0x1c7) return cmpxchg8b;
  if (i.op === 0x1c1 && i.o32) return xadd32;
  if (i.lock) return exec;
  if (i.op === 0xfa) return cli;
  if (i.op === 0xfb) return sti;
  if (!i.o32) return i.op === 0x83 ? grp1w : exec;
  const op = i.op;
  if (op === 0x9c) return pushf;
  if (op === 0x1ba) return btImm32;
  if (op === 0x69 || op === 0x6b) return imulImm32;
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
