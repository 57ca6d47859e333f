/**
 * The x87 in translated code. jit-insn.ts hands every x87 instruction it translates here:
 * the common forms become one call of a function of `X87J` specialised for the form (reached
 * as `c.x87j`, its operands resolved at translation time), which runs the instruction when
 * nothing unusual is in the way and returns false otherwise having changed nothing; the
 * translated code then makes the general call `c.x87(...)` (x87.ts escOp), which decides every
 * case exactly as the interpreter does. Other forms are that call alone.
 *
 * A fast function runs the instruction only when escOp would run it without more ado: an FPU,
 * CR0.EM and CR0.TS clear, no pending unmasked exception (FSW.ES clear: IGNNE# then drops, as
 * in escOp), a flat segment and a read (or write) TLB hit with the whole operand in one page at
 * a 4-aligned address; and the FPU's fast entry point (fpu.ts: regOp, fldF64, arithF64, stF64,
 * fldF80, stF80) accepts it. It then sets FIP/FCS/FOP (and FDP/FDS for a memory operand) as
 * escOp does: every form here is a non-control instruction. The operand is read and written
 * through the translated function's own RAM views and TLB (`m`, `m4`, `tr`, `tw`), like its
 * inline integer accesses.
 *
 * Each form is a call rather than code in the translated function: an n-body loop is 75 x87
 * instructions in one region, and the engine's optimising compile of a function grows much
 * faster than its size (inline x87 code took it from tens of milliseconds to half a second).
 */
import type { Insn } from "./decode.ts";
import type { CpuCore as Cpu } from "./interrupts.ts";
import type { Fpu } from "./fpu/fpu.ts";

/** FSW.ES; CR0.EM | CR0.TS. */
const FSW_ES = 0x80, EM_TS = 12;

/** The FPU when the CPU would run an ESC instruction at once (see above), else null. */
function ready(c: Cpu): Fpu | null {
  const f = c.fpu;
  return f !== null && (c.cr0 & EM_TS) === 0 && (f.sw & FSW_ES) === 0 ? f : null;
}

/** The word index in RAM of `n` bytes at seg:o if they are in one page of the TLB `tlb`, 4-aligned; else -1. */
function word(c: Cpu, tlb: Uint32Array, s: number, o: number, n: number): number {
  if (c.segFast[s] !== 1) return -1;
  const l = (c.segBase[s]! + o) >>> 0;
  if ((l & 3) !== 0 || (l & 4095) > 4096 - n) return -1;
  const e = tlb[l >>> 12]!;
  return e === 0 ? -1 : ((e - 1) << 10) | ((l & 4095) >> 2);
}

/** The bookkeeping of a memory form that ran (escOp's noteInsn, IGNNE#). */
function noteMem(c: Cpu, f: Fpu, eip: number, fop: number, s: number, o: number): true {
  c.ignne = false;
  f.fcs = c.sel[1]!; f.fip = eip; f.fop = fop; f.fds = c.sel[s]!; f.fdp = o;
  return true;
}

/**
 * The fast forms. Arguments: the CPU, the function's RAM views and TLB where needed, the
 * segment and offset of a memory operand, the instruction's EIP and FOP (11 bits).
 */
export const X87J = {
  /** FLD m64. */
  ld64(c: Cpu, m4: Int32Array, tr: Uint32Array, s: number, o: number, eip: number, fop: number): boolean {
    const f = ready(c);
    if (f === null) return false;
    const p = word(c, tr, s, o, 8);
    return p >= 0 && f.fldF64(m4[p]!, m4[p + 1]!) && noteMem(c, f, eip, fop, s, o);
  },
  /** FADD, FMUL, FCOM, FCOMP, FSUB, FSUBR, FDIV, FDIVR m64 (`reg` the ModRM reg field). */
  ar64(c: Cpu, m4: Int32Array, tr: Uint32Array, s: number, o: number, eip: number, fop: number, reg: number): boolean {
    const f = ready(c);
    if (f === null) return false;
    const p = word(c, tr, s, o, 8);
    return p >= 0 && f.arithF64(reg, m4[p]!, m4[p + 1]!) && noteMem(c, f, eip, fop, s, o);
  },
  /** FST m64, FSTP m64. */
  st64(c: Cpu, m4: Int32Array, tw: Uint32Array, s: number, o: number, eip: number, fop: number, pop: boolean): boolean {
    const f = ready(c);
    if (f === null) return false;
    const p = word(c, tw, s, o, 8);
    if (p < 0 || !f.stF64(pop)) return false;
    m4[p] = f.mlo; m4[p + 1] = f.mhi;
    return noteMem(c, f, eip, fop, s, o);
  },
  /** FLD m80. */
  ld80(c: Cpu, m: Uint8Array, m4: Int32Array, tr: Uint32Array, s: number, o: number, eip: number, fop: number): boolean {
    const f = ready(c);
    if (f === null) return false;
    const p = word(c, tr, s, o, 10);
    return p >= 0 && f.fldF80(m4[p]!, m4[p + 1]!, m[(p << 2) + 8]! | (m[(p << 2) + 9]! << 8)) && noteMem(c, f, eip, fop, s, o);
  },
  /** FSTP m80. */
  st80(c: Cpu, m: Uint8Array, m4: Int32Array, tw: Uint32Array, s: number, o: number, eip: number, fop: number): boolean {
    const f = ready(c);
    if (f === null) return false;
    const p = word(c, tw, s, o, 10);
    if (p < 0 || !f.stF80()) return false;
    m4[p] = f.mlo; m4[p + 1] = f.mhi; m[(p << 2) + 8] = f.mse; m[(p << 2) + 9] = f.mse >> 8;
    return noteMem(c, f, eip, fop, s, o);
  },
  /** The register forms of Fpu.regOp (`e` the escape 0..7). */
  reg(c: Cpu, e: number, modrm: number, eip: number): boolean {
    const f = ready(c);
    if (f === null || !f.regOp(e, modrm)) return false;
    c.ignne = false;
    f.fcs = c.sel[1]!; f.fip = eip; f.fop = ((e << 8) | modrm) & 0x7ff;
    return true;
  },
};

/** The source of one x87 instruction (or null: jit-insn.ts then emits the plain call). */
export interface X87Src { src: string; store: boolean }

/**
 * One x87 instruction: `k` its fault index, `ea` the offset expression (memory forms), `seg`
 * its segment, `eip` the expression of its address, `call` the escOp call with the offset in `o`.
 */
export function x87Translate(i: Insn, k: number, ea: string, seg: number, eip: string, call: string): X87Src | null {
  const e = i.op - 0xd8;
  const modrm = (i.mod << 6) | (i.reg << 3) | i.rm;
  const fop = ((e << 8) | modrm) & 0x7ff;
  if (i.mod === 3) {
    if (!regFast(e, i.reg, modrm)) return null;
    return { src: `c.ci = ${k}; if (!c.x87j.reg(c, ${e}, ${modrm}, ${eip})) ${call}`, store: false };
  }
  const head = `c.ci = ${k}; o = ${ea}; if (!c.x87j.`;
  const args = `${seg}, o, ${eip}, ${fop}`;
  if (e === 5 && i.reg === 0) return { src: `${head}ld64(c, m4, tr, ${args})) ${call}`, store: false };
  if (e === 4) return { src: `${head}ar64(c, m4, tr, ${args}, ${i.reg})) ${call}`, store: false };
  if (e === 5 && (i.reg === 2 || i.reg === 3)) return { src: `${head}st64(c, m4, tw, ${args}, ${i.reg === 3})) ${call}`, store: true };
  if (e === 3 && i.reg === 5) return { src: `${head}ld80(c, m, m4, tr, ${args})) ${call}`, store: false };
  if (e === 3 && i.reg === 7) return { src: `${head}st80(c, m, m4, tw, ${args})) ${call}`, store: true };
  return null;
}

/** Register forms Fpu.regOp may decide (it declines the rest, which would only cost a call). */
function regFast(e: number, reg: number, modrm: number): boolean {
  switch (e) {
    case 0: case 4: case 6: return reg !== 2 && reg !== 3;
    case 1: return reg <= 1 || modrm === 0xe0 || modrm === 0xe1 || modrm === 0xfa;
    case 5: return reg === 2 || reg === 3;
  }
  return false;
}
