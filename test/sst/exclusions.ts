/**
 * What the 80286 real-mode tests may not be compared on for rrx's i686 model, and why: flags
 * the manuals leave undefined (masked per test, so the defined flags are still checked) and
 * whole tests whose instruction a 286 and a P6-family CPU define differently (excluded, each
 * with its reason). Every entry is taken from the Intel manuals (SDM = Intel 64 and IA-32
 * Architectures Software Developer's Manual; "80286 PRM" = the 80286 Programmer's Reference
 * Manual / 80286 and 80287 Programmer's Reference), never from what rrx does. test/sst/README.md
 * lists them with their sources.
 */
import { R_AX, R_BP, R_BX, R_CS, R_CX, R_DI, R_DS, R_DX, R_ES, R_FLAGS, R_SI, R_SP, R_SS, type MooTest } from "./moo.ts";

export const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, DF = 0x400, OF = 0x800;
export const ARITH = CF | PF | AF | ZF | SF | OF;
/** FLAGS bits 12-14 (IOPL, NT): a 286 keeps them 0 in real mode, a 386+ loads them. */
export const IOPL_NT = 0x7000;

export interface Verdict {
  /** Why the whole test is not compared, or null. */
  excluded: string | null;
  /** FLAGS bits not compared in the final FLAGS. */
  flagMask: number;
  /** FLAGS bits not compared in the FLAGS image an exception pushed (test.exception). */
  pushedFlagMask: number;
  /** Reasons for the masks (for the tallies). */
  masked: string[];
  /** Registers (REG_NAMES indexes) not compared. */
  regMask: number[];
  /**
   * For an excluded test: the vector the SDM says an i686 delivers first (-1: none), checked
   * instead of the 286's outcome; null when not checked.
   */
  expectVector: number | null;
}

/** Exclusion reasons (the keys of the tallies and of the README table). */
export const EXCLUDE = {
  lock: "LOCK on a non-lockable instruction (#UD on 386+)",
  length: "instruction longer than 10 bytes (interrupt 13 on a 286, up to 15 bytes on 386+)",
  fsgs: "MOV to/from segment register 4/5 (FS/GS on 386+, #UD on a 286)",
  ssWrap: "word access through SS crossing offset FFFFh (interrupt 13 on a 286, #SS on 386+)",
  escWrap: "ESC (x87) doubleword operand at offset FFFEh (no fault on the 286 without an 80287, #GP/#SS on 386+)",
  popStore: "POP m16 whose store faults (a 286 has already incremented SP)",
  idiv: "IDIV quotient out of range that the 286 returns as 80h instead of raising #DE",
  suspect: "vector inconsistent with the manuals and its form's other tests",
} as const;

/** Masking reasons. */
export const MASK = {
  logicAF: "AF after AND/OR/XOR/TEST",
  mul: "SF ZF AF PF after MUL/IMUL",
  div: "all arithmetic flags after DIV/IDIV",
  shift: "OF/AF/CF after shifts and rotates (count-dependent)",
  bcd: "flags after DAA/DAS/AAA/AAS/AAM/AAD",
  popf: "IOPL/NT after POPF/IRET (kept 0 by a 286 in real mode)",
  aam0: "flags after AAM 0 (#DE: a 286 updates them first)",
  stringWrap: "SI/DI/CX after a string instruction's segment overrun (a 286 has advanced them)",
} as const;

/** A decoded instruction: just what the classification needs. */
export interface Decoded {
  prefixes: number;
  /** The last segment-override prefix as a MOO register index (R_ES...), or -1. */
  seg: number;
  lock: boolean;
  rep: boolean;
  op: number;
  modrm: number;
  mod: number;
  reg: number;
  rm: number;
  /** Length in bytes including prefixes (without the HLT after it). */
  len: number;
  /** First immediate byte (for C0/C1, D4/D5), or -1. */
  imm8: number;
}

const PREFIX = new Set([0x26, 0x2e, 0x36, 0x3e, 0xf0, 0xf2, 0xf3]);
const SEG_PREFIX = new Map([[0x26, R_ES], [0x2e, R_CS], [0x36, R_SS], [0x3e, R_DS]]);

function hasModrm(op: number): boolean {
  if (op < 0x40) return (op & 7) < 4;
  return op === 0x62 || op === 0x63 || op === 0x69 || op === 0x6b || (op >= 0x80 && op <= 0x8f) ||
    op === 0xc0 || op === 0xc1 || (op >= 0xc4 && op <= 0xc7) || (op >= 0xd0 && op <= 0xd3) ||
    (op >= 0xd8 && op <= 0xdf) || op === 0xf6 || op === 0xf7 || op === 0xfe || op === 0xff;
}

/** Immediate bytes after the ModRM/displacement (16-bit operand size). */
function immLen(op: number, reg: number): number {
  if (op < 0x40) return (op & 7) === 4 ? 1 : (op & 7) === 5 ? 2 : 0;
  if (op >= 0x70 && op <= 0x7f) return 1;
  if (op >= 0xb0 && op <= 0xb7) return 1;
  if (op >= 0xb8 && op <= 0xbf) return 2;
  if (op >= 0xa0 && op <= 0xa3) return 2;
  if (op >= 0xe0 && op <= 0xe7) return 1;
  switch (op) {
    case 0x68: case 0x69: case 0x81: case 0xa9: case 0xc2: case 0xc7: case 0xca: case 0xe8: case 0xe9: return 2;
    case 0x6a: case 0x6b: case 0x80: case 0x82: case 0x83: case 0xa8: case 0xc0: case 0xc1: case 0xc6:
    case 0xcd: case 0xd4: case 0xd5: case 0xeb: return 1;
    case 0x9a: case 0xea: return 4;
    case 0xc8: return 3;
    case 0xf6: return reg < 2 ? 1 : 0;
    case 0xf7: return reg < 2 ? 2 : 0;
  }
  return 0;
}

export function decode(b: Uint8Array): Decoded {
  let k = 0, lock = false, rep = false, seg = -1;
  while (k < b.length && PREFIX.has(b[k]!)) {
    if (b[k] === 0xf0) lock = true;
    const sp = SEG_PREFIX.get(b[k]!);
    if (sp !== undefined) seg = sp;
    if (b[k] === 0xf2 || b[k] === 0xf3) rep = true;
    k++;
  }
  const prefixes = k;
  const op = b[k++] ?? 0;
  let modrm = -1, mod = 0, reg = 0, rm = 0;
  if (hasModrm(op)) {
    modrm = b[k++] ?? 0;
    mod = modrm >> 6; reg = (modrm >> 3) & 7; rm = modrm & 7;
    if (mod === 1) k += 1;
    else if (mod === 2 || (mod === 0 && rm === 6)) k += 2;
  }
  const imm8 = b[k] ?? -1;
  k += immLen(op, reg);
  return { prefixes, seg, lock, rep, op, modrm, mod, reg, rm, len: k, imm8 };
}

/**
 * LOCK on 386+ (SDM, LOCK; 80386 PRM 14.8/15.7): only ADD ADC AND BTC BTR BTS CMPXCHG DEC INC
 * NEG NOT OR SBB SUB XOR XADD XCHG, with a memory destination; anything else raises #UD
 * (interrupt 6 in real mode). A 286 takes LOCK before any instruction.
 */
export function lockable(d: Decoded): boolean {
  if (d.mod === 3 || d.modrm < 0) return false;
  const op = d.op;
  if (op < 0x40) return (op & 7) < 2 && (op >> 3) !== 7; // ALU r/m,reg forms except CMP
  if (op >= 0x80 && op <= 0x83) return d.reg !== 7;
  if (op === 0x86 || op === 0x87) return true;
  if (op === 0xf6 || op === 0xf7) return d.reg === 2 || d.reg === 3;
  if (op === 0xfe || op === 0xff) return d.reg === 0 || d.reg === 1;
  return false;
}

/** The shift/rotate count a C0/C1/D0-D3 instruction uses, masked to 5 bits as on both CPUs. */
function shiftCount(d: Decoded, t: MooTest): number {
  if (d.op === 0xd0 || d.op === 0xd1) return 1;
  if (d.op === 0xd2 || d.op === 0xd3) return t.initial.regs[R_CX]! & 0x1f;
  return d.imm8 & 0x1f;
}

/**
 * Flags the SDM leaves undefined after this instruction (with these operands), and which of
 * the MASK reasons applies.
 */
function undefinedFlags(d: Decoded, t: MooTest): [number, string | null] {
  const op = d.op;
  // AND, OR, XOR, TEST: AF undefined (SDM AND/OR/XOR/TEST, "Flags Affected").
  if (op < 0x40 && [1, 4, 6].includes(op >> 3) && (op & 7) < 6) return [AF, MASK.logicAF];
  if (op === 0x84 || op === 0x85 || op === 0xa8 || op === 0xa9) return [AF, MASK.logicAF];
  if (op >= 0x80 && op <= 0x83 && [1, 4, 6].includes(d.reg)) return [AF, MASK.logicAF];
  if ((op === 0xf6 || op === 0xf7) && d.reg < 2) return [AF, MASK.logicAF];
  // MUL/IMUL: SF ZF AF PF undefined; DIV/IDIV: all six (SDM MUL, IMUL, DIV, IDIV).
  if (op === 0x69 || op === 0x6b || ((op === 0xf6 || op === 0xf7) && (d.reg === 4 || d.reg === 5))) return [SF | ZF | AF | PF, MASK.mul];
  if ((op === 0xf6 || op === 0xf7) && d.reg >= 6) return [ARITH, MASK.div];
  // BCD (SDM DAA, DAS: OF undefined; AAA, AAS: OF SF ZF PF; AAM, AAD: OF AF CF).
  if (op === 0x27 || op === 0x2f) return [OF, MASK.bcd];
  if (op === 0x37 || op === 0x3f) return [OF | SF | ZF | PF, MASK.bcd];
  if (op === 0xd4 || op === 0xd5) return [OF | AF | CF, MASK.bcd];
  // Shifts and rotates (SDM SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR): a masked count of 0 changes no
  // flag. Rotates: OF defined only for a count of 1. Shifts: AF undefined for any non-zero
  // count, OF defined only for a count of 1, CF undefined for SHL/SHR when the count is at
  // least the operand width.
  if (op === 0xc0 || op === 0xc1 || (op >= 0xd0 && op <= 0xd3)) {
    const n = shiftCount(d, t);
    if (n === 0) return [0, null];
    const width = op & 1 ? 16 : 8;
    let m = n !== 1 ? OF : 0;
    if (d.reg >= 4) {
      m |= AF;
      if (d.reg !== 7 && n >= width) m |= CF;
    }
    return [m, m ? MASK.shift : null];
  }
  return [0, null];
}

/** One memory access of the instruction: segment (MOO register index), offset, size in bytes. */
interface Access { seg: number; off: number; size: number }

/** Size of the ModRM memory operand (0: none, as LEA). */
function memSize(d: Decoded): number {
  const op = d.op;
  if (op < 0x40) return 1 + (op & 1);
  switch (op) {
    case 0x62: case 0xc4: case 0xc5: case 0xd8: return 4;
    case 0x8d: return 0;
    case 0x69: case 0x6b: case 0x81: case 0x83: case 0x85: case 0x87: case 0x89: case 0x8b: case 0x8c: case 0x8e:
    case 0x8f: case 0xc1: case 0xc7: case 0xd1: case 0xd3: case 0xf7: return 2;
    case 0xff: return d.reg === 3 || d.reg === 5 ? 4 : 2;
  }
  return 1;
}

const reg16 = (t: MooTest, r: number): number => t.initial.regs[r]!;

/** The ModRM memory operand, from the initial registers (16-bit addressing). */
function modrmAccess(d: Decoded, t: MooTest): Access | null {
  if (d.modrm < 0 || d.mod === 3) return null;
  const size = memSize(d);
  if (size === 0) return null;
  const b = t.bytes, p = d.prefixes + 2;
  let off = 0, ss = false;
  switch (d.rm) {
    case 0: off = reg16(t, R_BX) + reg16(t, R_SI); break;
    case 1: off = reg16(t, R_BX) + reg16(t, R_DI); break;
    case 2: off = reg16(t, R_BP) + reg16(t, R_SI); ss = true; break;
    case 3: off = reg16(t, R_BP) + reg16(t, R_DI); ss = true; break;
    case 4: off = reg16(t, R_SI); break;
    case 5: off = reg16(t, R_DI); break;
    case 6: if (d.mod === 0) off = b[p]! | (b[p + 1]! << 8); else { off = reg16(t, R_BP); ss = true; } break;
    default: off = reg16(t, R_BX);
  }
  if (d.mod === 1) off += (b[p]! << 24) >> 24;
  else if (d.mod === 2) off += b[p]! | (b[p + 1]! << 8);
  return { seg: d.seg >= 0 ? d.seg : ss ? R_SS : R_DS, off: off & 0xffff, size };
}

/** Words the instruction pops (from SP up) and pushes (from SP down). */
function stackWords(d: Decoded, t: MooTest): { pop: number; push: number; from: number } {
  const op = d.op, sp = reg16(t, R_SP);
  if (op === 0xc9) return { pop: 1, push: 0, from: reg16(t, R_BP) }; // LEAVE: SP = BP, pop BP
  if ([0x07, 0x17, 0x1f, 0x8f, 0x9d, 0xc2, 0xc3].includes(op) || (op >= 0x58 && op <= 0x5f)) return { pop: 1, push: 0, from: sp };
  if (op === 0xca || op === 0xcb) return { pop: 2, push: 0, from: sp };
  if (op === 0xcf) return { pop: 3, push: 0, from: sp };
  if (op === 0x61) return { pop: 8, push: 0, from: sp };
  if ([0x06, 0x0e, 0x16, 0x1e, 0x68, 0x6a, 0x9c, 0xe8].includes(op) || (op >= 0x50 && op <= 0x57)) return { pop: 0, push: 1, from: sp };
  if (op === 0xff && (d.reg === 2 || d.reg === 6)) return { pop: 0, push: 1, from: sp };
  if (op === 0x9a || (op === 0xff && d.reg === 3)) return { pop: 0, push: 2, from: sp };
  if (op === 0x60) return { pop: 0, push: 8, from: sp };
  if (op === 0xcc || op === 0xcd || op === 0xce) return { pop: 0, push: 3, from: sp };
  return { pop: 0, push: 0, from: sp };
}

/** Whether a 286 faults on the access: it makes word accesses, and one at offset FFFFh wraps. */
function overruns286(a: Access): boolean {
  for (let k = 0; k + 1 < a.size; k += 2) if (((a.off + k) & 0xffff) === 0xffff) return true;
  return false;
}

/** Every memory access of the instruction that can cross the end of a segment. */
function accesses(d: Decoded, t: MooTest): Access[] {
  const out: Access[] = [];
  const m = modrmAccess(d, t);
  if (m) out.push(m);
  const s = stackWords(d, t);
  for (let k = 0; k < s.pop; k++) out.push({ seg: R_SS, off: (s.from + 2 * k) & 0xffff, size: 2 });
  for (let k = 1; k <= s.push; k++) out.push({ seg: R_SS, off: (s.from - 2 * k) & 0xffff, size: 2 });
  if (WORD_STRING.has(d.op)) {
    // Every iteration of a REP form (the suite keeps CX below 128).
    const n = d.rep ? reg16(t, R_CX) : 1, step = reg16(t, R_FLAGS) & DF ? -2 : 2;
    for (let k = 0; k < n; k++) {
      if (d.op !== 0xab && d.op !== 0xaf && d.op !== 0x6d) out.push({ seg: d.seg >= 0 ? d.seg : R_DS, off: (reg16(t, R_SI) + k * step) & 0xffff, size: 2 });
      if (d.op !== 0xad && d.op !== 0x6f) out.push({ seg: R_ES, off: (reg16(t, R_DI) + k * step) & 0xffff, size: 2 });
    }
  }
  return out;
}

/** Word string instructions: MOVSW CMPSW STOSW LODSW SCASW INSW OUTSW. */
const WORD_STRING = new Set([0xa5, 0xa7, 0xab, 0xad, 0xaf, 0x6d, 0x6f]);

/** A ModRM operand's value in the initial state (byte or word). */
function operand(d: Decoded, t: MooTest, word: boolean): number {
  if (d.mod === 3) {
    const r16 = [R_AX, R_CX, R_DX, R_BX, R_SP, R_BP, R_SI, R_DI];
    if (word) return reg16(t, r16[d.rm]!);
    const v = reg16(t, r16[d.rm & 3]!);
    return d.rm < 4 ? v & 0xff : v >> 8;
  }
  const a = modrmAccess(d, t)!;
  const base = reg16(t, a.seg) << 4;
  const byteAt = (o: number): number => {
    const addr = base + (o & 0xffff);
    const k = t.initial.addrs.indexOf(addr);
    return k >= 0 ? t.initial.values[k]! : 0;
  };
  return word ? byteAt(a.off) | (byteAt(a.off + 1) << 8) : byteAt(a.off);
}

/** IDIV whose true quotient is out of range (SDM IDIV: #DE). */
function idivOverflows(d: Decoded, t: MooTest): boolean {
  const word = d.op === 0xf7;
  const dv = operand(d, t, word);
  if (dv === 0) return false;
  const divisor = word ? (dv << 16) >> 16 : (dv << 24) >> 24;
  const dividend = word ? (reg16(t, R_DX) << 16) | reg16(t, R_AX) : (reg16(t, R_AX) << 16) >> 16;
  const q = Math.trunc(dividend / divisor);
  return word ? q < -0x8000 || q > 0x7fff : q < -0x80 || q > 0x7f;
}

/**
 * Tests whose recorded outcome no manual allows and which disagree with the other tests of
 * their form (all three push SS where the INT, INTO or #UD pushes CS, which every other one of
 * the form's tests pushes): taken for capture errors of the test rig.
 */
const SUSPECT = new Set([
  "ba5bb16b5a4306333a359c3abd2169b871ffa42c", // CD int 3Bh: pushed CS = SS
  "7df1d2a948c416f5a4416e2f747d2d357d497570", // CE into: pushed CS = SS
  "ab0cea0f2b89ae469a98eaf20dedc9ff2ca08c91", // FF.3 #UD (FF /3 with a register operand): pushed CS = SS
]);

export function classify(form: string, t: MooTest): Verdict {
  const d = decode(t.bytes);
  const v: Verdict = { excluded: null, flagMask: 0, pushedFlagMask: 0, masked: [], regMask: [], expectVector: null };
  if (d.lock && !lockable(d)) { v.excluded = EXCLUDE.lock; v.expectVector = 6; return v; }
  // Too long for a 286 (interrupt 13 in every such vector), not for 386+ (up to 15 bytes): the
  // i686 runs it, or raises #UD for an undefined C6/C7/8F form.
  if (form !== "F4" && d.len > 10) {
    v.excluded = EXCLUDE.length;
    v.expectVector = (d.op === 0xc6 || d.op === 0xc7 || d.op === 0x8f) && d.reg !== 0 ? 6 : -1;
    return v;
  }
  // FS and GS came with the 386 (SDM Vol. 3, 8086 emulation, "Registers supported in
  // real-address mode"): MOV r/m16,Sreg and MOV Sreg,r/m16 with reg 4 or 5 name them there;
  // the 286 raises #UD (interrupt 6 in its vectors).
  if ((d.op === 0x8c || d.op === 0x8e) && (d.reg === 4 || d.reg === 5)) { v.excluded = EXCLUDE.fsgs; v.expectVector = -1; return v; }
  if (SUSPECT.has(t.hash)) { v.excluded = EXCLUDE.suspect; return v; }
  const acc = accesses(d, t);
  // A word access past the end of a segment: interrupt 13 on a 286 whatever the segment
  // (80286 PRM Table 5-2: "segment overrun exception", any memory reference to a word at
  // offset 0FFFFH; vectors 10-12 are reserved in real mode; POP/POPA/POPF: "Interrupt 13 for
  // a word operand at offset 0FFFFH"), #SS (interrupt 12) on 386+ when the segment is SS (SDM
  // Vol. 3, architecture compatibility, "Segment wraparound": #GP for CS DS ES FS GS, #SS for
  // SS). PUSHA is the exception: 386+ check SP first and raise #GP for SP = 7, 9, 11, 13 or 15
  // (SDM PUSHA, real-address mode), as the 286 does.
  if (t.exception?.vector === 13 && d.op !== 0x60 && acc.some((a) => a.seg === R_SS && overruns286(a))) { v.excluded = EXCLUDE.ssWrap; v.expectVector = 12; return v; }
  // An x87 operand (the ESC D8 /r m32 forms) at offset FFFEh: 386+ read it as one doubleword
  // and check it against the limit (SDM FADD etc., real-address mode: #GP, or #SS for SS).
  // On a 286 an ESC operand running past FFFFh is interrupt 9, "processor extension segment
  // overrun", which needs an 80287 (80286 PRM Table 5-2); the suite's 286 has none, and its
  // vectors show interrupt 13 only for a word at FFFFh (Table 5-2's segment overrun) and no
  // fault at FFFEh. Two-word operands of integer instructions (LES, LDS, BOUND, far CALL/JMP)
  // are two word accesses, the second at (offset + 2) mod 64 KiB, on the 286 (80286 PRM
  // LDS/LES: interrupt 13 only "for operand at offset 0FFFFH or 0FFFDH") and on current CPUs
  // (`les ax,[fffe]` takes ES from offset 0: dosemu2 pull request 2651): those are compared.
  const mem = modrmAccess(d, t);
  if (d.op === 0xd8 && mem && mem.off === 0xfffe) { v.excluded = EXCLUDE.escWrap; v.expectVector = mem.seg === R_SS ? 12 : 13; return v; }
  // POP m16 pops first and stores second; when the store takes interrupt 13 a 286 has already
  // incremented SP, and the interrupt frame is 2 bytes higher. 386+ report a fault with the
  // state from before the instruction (SDM Vol. 3, "Exception classifications": faults).
  if (d.op === 0x8f && t.exception?.vector === 13) { v.excluded = EXCLUDE.popStore; v.expectVector = 13; return v; }
  // IDIV: the SDM raises #DE for a quotient out of range; the 286 misses some of them.
  if ((form === "F6.7" || form === "F7.7") && !t.exception && idivOverflows(d, t)) { v.excluded = EXCLUDE.idiv; v.expectVector = 0; return v; }
  // A word string instruction whose access takes interrupt 13 (a segment overrun): a 286 has
  // advanced SI/DI (and decremented CX under REP) for the iteration; 386+ report the fault
  // with them unchanged (SDM Vol. 3, "Exception classifications"). The rest (the interrupt
  // frame, CS:IP, flags) is compared.
  if (WORD_STRING.has(d.op) && t.exception?.vector === 13) { v.regMask.push(R_SI, R_DI, R_CX); v.masked.push(MASK.stringWrap); }
  // AAM 0 raises #DE; a 286 has updated the flags by then, 386+ fault with them unchanged.
  if (d.op === 0xd4 && d.imm8 === 0) { v.flagMask |= ARITH; v.pushedFlagMask |= ARITH; v.masked.push(MASK.aam0); }
  const [m, why] = undefinedFlags(d, t);
  if (m) {
    v.flagMask |= m;
    // A #DE from DIV/IDIV/AAM pushes the flags as the instruction left them.
    if (t.exception) v.pushedFlagMask |= m;
    v.masked.push(why!);
  }
  if (d.op === 0x9d || d.op === 0xcf) { v.flagMask |= IOPL_NT; v.masked.push(MASK.popf); }
  return v;
}
