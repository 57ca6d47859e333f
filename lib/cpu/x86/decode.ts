import { OPFLAGS, OpF } from "./optable.ts";

/** Segment register numbers, in x86 encoding order. */
export const ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5;

/** REP prefix kinds. */
export const REP_NONE = 0, REP_E = 1, REP_NE = 2;

/**
 * A decoded instruction. One shape for every instruction so that the interpreter's
 * property accesses stay monomorphic.
 */
export class Insn {
  /** Opcode index into the opcode table (0x000-0x1FF). */
  op = 0;
  /** Length in bytes including prefixes. */
  len = 0;
  /** Offset of the instruction from the start of its block. */
  off = 0;
  o32 = false;
  a32 = false;
  /** Segment override or -1. */
  seg = -1;
  rep = REP_NONE;
  lock = false;
  /** ModRM fields (mod 3 = register operand). */
  mod = 0;
  reg = 0;
  rm = 0;
  /** Effective address: base and index register numbers or -1, scale shift, displacement. */
  base = -1;
  index = -1;
  scale = 0;
  disp = 0;
  /** Default segment of the memory operand (SS for EBP/ESP-based, else DS). */
  defSeg = DS;
  imm = 0;
  imm2 = 0;
  /** The interpreter's handler for this instruction (set by the block builder). */
  fn: (c: never, i: Insn) => void = noHandler;
}

function noHandler(): void { throw new Error("instruction executed before its handler was set"); }

/** Fetch interface: the decoder reads instruction bytes through it (may throw a CPU fault). */
export interface ByteFetcher {
  fetch8(offset: number): number;
}

/** Raised by the decoder for an encoding that must raise #UD or #GP (too long). */
export class DecodeError {
  constructor(public readonly vector: number, public readonly len: number) {}
}

/**
 * Decode one instruction at `eip` (an offset inside the code segment) with the given default
 * operand/address size. `f.fetch8(n)` returns the byte at eip+n.
 */
export function decode(f: ByteFetcher, code32: boolean, out: Insn): Insn {
  let n = 0;
  let o32 = code32, a32 = code32;
  let seg = -1, rep = REP_NONE, lock = false;
  let b: number;
  for (;;) {
    if (n >= 14) throw new DecodeError(13, n + 1);
    b = f.fetch8(n++);
    switch (b) {
      case 0x26: seg = ES; continue;
      case 0x2e: seg = CS; continue;
      case 0x36: seg = SS; continue;
      case 0x3e: seg = DS; continue;
      case 0x64: seg = FS; continue;
      case 0x65: seg = GS; continue;
      case 0x66: o32 = !code32; continue;
      case 0x67: a32 = !code32; continue;
      case 0xf0: lock = true; continue;
      case 0xf2: rep = REP_NE; continue;
      case 0xf3: rep = REP_E; continue;
    }
    break;
  }
  let op = b;
  if (b === 0x0f) {
    op = 0x100 | f.fetch8(n++);
  }
  const fl = OPFLAGS[op]!;
  out.op = op; out.o32 = o32; out.a32 = a32; out.seg = seg; out.rep = rep; out.lock = lock;
  out.mod = 0; out.reg = 0; out.rm = 0; out.base = -1; out.index = -1; out.scale = 0; out.disp = 0;
  out.defSeg = DS; out.imm = 0; out.imm2 = 0;
  if (fl & OpF.MODRM) {
    const m = f.fetch8(n++);
    const mod = m >> 6, reg = (m >> 3) & 7, rm = m & 7;
    out.mod = mod; out.reg = reg; out.rm = rm;
    if (mod !== 3) {
      if (a32) {
        let base = rm, index = -1, scale = 0;
        if (rm === 4) {
          const sib = f.fetch8(n++);
          scale = sib >> 6;
          index = (sib >> 3) & 7;
          if (index === 4) index = -1;
          base = sib & 7;
          if (base === 5 && mod === 0) {
            base = -1;
            out.disp = fetch32(f, n); n += 4;
          }
        } else if (rm === 5 && mod === 0) {
          base = -1;
          out.disp = fetch32(f, n); n += 4;
        }
        if (mod === 1) { out.disp = (f.fetch8(n++) << 24) >> 24; }
        else if (mod === 2) { out.disp = fetch32(f, n); n += 4; }
        out.base = base; out.index = index; out.scale = scale;
        out.defSeg = base === 4 || base === 5 ? SS : DS;
      } else {
        // 16-bit addressing: [bx+si] [bx+di] [bp+si] [bp+di] [si] [di] [bp] [bx]
        const B16 = [3, 3, 5, 5, 6, 7, 5, 3];
        const X16 = [6, 7, 6, 7, -1, -1, -1, -1];
        let base = B16[rm]!;
        const index = X16[rm]!;
        if (rm === 6 && mod === 0) {
          base = -1;
          out.disp = f.fetch8(n) | (f.fetch8(n + 1) << 8); n += 2;
        } else if (mod === 1) { out.disp = (f.fetch8(n++) << 24) >> 24; }
        else if (mod === 2) { out.disp = ((f.fetch8(n) | (f.fetch8(n + 1) << 8)) << 16) >> 16; n += 2; }
        out.base = base; out.index = index;
        out.defSeg = (rm === 2 || rm === 3 || (rm === 6 && mod !== 0)) ? SS : DS;
      }
    }
  }
  if (fl & OpF.GRP3) {
    if (out.reg < 2) {
      if (fl & OpF.BYTE) out.imm = f.fetch8(n++);
      else if (o32) { out.imm = fetch32(f, n); n += 4; }
      else { out.imm = fetch16(f, n); n += 2; }
    }
  } else if (fl & (OpF.IMM8 | OpF.IMM16 | OpF.IMMV | OpF.MOFFS | OpF.FAR | OpF.REL8 | OpF.RELV)) {
    if (fl & OpF.IMM16) {
      out.imm = fetch16(f, n); n += 2;
      if (fl & OpF.IMM8) { out.imm2 = f.fetch8(n++); }
    } else if (fl & OpF.IMM8) {
      out.imm = f.fetch8(n++);
    } else if (fl & OpF.IMMV) {
      if (o32) { out.imm = fetch32(f, n); n += 4; } else { out.imm = fetch16(f, n); n += 2; }
    } else if (fl & OpF.MOFFS) {
      if (a32) { out.disp = fetch32(f, n); n += 4; } else { out.disp = fetch16(f, n); n += 2; }
    } else if (fl & OpF.FAR) {
      if (o32) { out.imm = fetch32(f, n); n += 4; } else { out.imm = fetch16(f, n); n += 2; }
      out.imm2 = fetch16(f, n); n += 2;
    } else if (fl & OpF.REL8) {
      out.imm = (f.fetch8(n++) << 24) >> 24;
    } else {
      if (o32) { out.imm = fetch32(f, n); n += 4; } else { out.imm = (fetch16(f, n) << 16) >> 16; n += 2; }
    }
  }
  if (n > 15) throw new DecodeError(13, n);
  out.len = n;
  if (lock && !lockAllowed(op, fl, out.mod, out.reg)) out.op = 0x1ff; // #UD at execution
  return out;
}

/** LOCK is allowed only on read-modify-write instructions with a memory destination. */
function lockAllowed(op: number, fl: number, mod: number, reg: number): boolean {
  if (!(fl & OpF.LOCKOK) || mod === 3) return false;
  switch (op) {
    case 0x80: case 0x81: case 0x82: case 0x83: return reg !== 7;
    case 0xf6: case 0xf7: return reg === 2 || reg === 3;
    case 0xfe: case 0xff: return reg < 2;
    case 0x1ba: return reg >= 5;
    case 0x1c7: return reg === 1;
    default: return true;
  }
}

function fetch16(f: ByteFetcher, n: number): number {
  return f.fetch8(n) | (f.fetch8(n + 1) << 8);
}
function fetch32(f: ByteFetcher, n: number): number {
  return f.fetch8(n) | (f.fetch8(n + 1) << 8) | (f.fetch8(n + 2) << 16) | (f.fetch8(n + 3) << 24);
}
