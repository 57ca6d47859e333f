/**
 * The one opcode table. It drives the decoder (which operands follow the opcode), the
 * interpreter (the opcode number is the dispatch key), the block builder (which opcodes end a
 * block) and the disassembler (mnemonics). Adding an instruction means adding its row here
 * and its case in exec.ts.
 *
 * Index: 0x000-0x0FF one-byte opcodes, 0x100-0x1FF two-byte opcodes (0F xx).
 */

/** Operand-encoding and behaviour flags of an opcode. */
export const enum OpF {
  MODRM = 1 << 0,
  IMM8 = 1 << 1, // one byte immediate
  IMM16 = 1 << 2, // word immediate (RET imm16, ENTER's first)
  IMMV = 1 << 3, // word or dword by operand size
  MOFFS = 1 << 4, // moffs: word or dword by address size
  FAR = 1 << 5, // ptr16:16/32
  REL8 = 1 << 6,
  RELV = 1 << 7,
  /** Ends a basic block: control transfer, I/O, or anything that changes mode, IF or the TLB. */
  TERM = 1 << 8,
  INVALID = 1 << 9,
  /** LOCK prefix allowed (only with a memory destination; checked at execution). */
  LOCKOK = 1 << 10,
  /** Byte-sized operation (bit 0 of the opcode clear in ALU groups). */
  BYTE = 1 << 11,
  /** Immediate depends on ModRM.reg (F6/F7 /0,/1 TEST has one). */
  GRP3 = 1 << 12,
  /** x87 escape. */
  FPU = 1 << 13,
}

export interface OpInfo {
  readonly name: string;
  readonly flags: number;
}

const table: OpInfo[] = new Array(0x200);
function def(op: number, name: string, flags: number): void {
  table[op] = { name, flags };
}
for (let i = 0; i < 0x200; i++) def(i, "(bad)", OpF.INVALID | OpF.TERM);

const M = OpF.MODRM, I8 = OpF.IMM8, IV = OpF.IMMV, T = OpF.TERM, L = OpF.LOCKOK, B = OpF.BYTE;

// ALU groups 00-3F: op r/m,r ; op r,r/m ; op AL,ib ; op eAX,iv
const alu = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"];
for (let g = 0; g < 8; g++) {
  const base = g * 8;
  const lock = g === 7 ? 0 : L;
  def(base + 0, alu[g]!, M | B | lock);
  def(base + 1, alu[g]!, M | lock);
  def(base + 2, alu[g]!, M | B);
  def(base + 3, alu[g]!, M);
  def(base + 4, alu[g]!, I8 | B);
  def(base + 5, alu[g]!, IV);
}
def(0x06, "push es", 0); def(0x07, "pop es", T);
def(0x0e, "push cs", 0);
def(0x16, "push ss", 0); def(0x17, "pop ss", T);
def(0x1e, "push ds", 0); def(0x1f, "pop ds", T);
def(0x27, "daa", 0); def(0x2f, "das", 0); def(0x37, "aaa", 0); def(0x3f, "aas", 0);
for (let r = 0; r < 8; r++) {
  def(0x40 + r, "inc", 0);
  def(0x48 + r, "dec", 0);
  def(0x50 + r, "push", 0);
  def(0x58 + r, "pop", 0);
  def(0x90 + r, r === 0 ? "nop" : "xchg", 0);
  def(0xb0 + r, "mov", I8 | B);
  def(0xb8 + r, "mov", IV);
}
def(0x60, "pusha", 0); def(0x61, "popa", 0);
def(0x62, "bound", M | T);
def(0x63, "arpl", M);
def(0x68, "push", IV); def(0x69, "imul", M | IV);
def(0x6a, "push", I8); def(0x6b, "imul", M | I8);
def(0x6c, "insb", T | B); def(0x6d, "ins", T); def(0x6e, "outsb", T | B); def(0x6f, "outs", T);
const cc = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];
for (let c = 0; c < 16; c++) {
  def(0x70 + c, "j" + cc[c], OpF.REL8 | T);
  def(0x180 + c, "j" + cc[c], OpF.RELV | T);
  def(0x190 + c, "set" + cc[c], M | B);
  def(0x140 + c, "cmov" + cc[c], M);
}
def(0x80, "grp1", M | I8 | B | L); def(0x81, "grp1", M | IV | L);
def(0x82, "grp1", M | I8 | B | L); def(0x83, "grp1", M | I8 | L);
def(0x84, "test", M | B); def(0x85, "test", M);
def(0x86, "xchg", M | B | L); def(0x87, "xchg", M | L);
def(0x88, "mov", M | B); def(0x89, "mov", M); def(0x8a, "mov", M | B); def(0x8b, "mov", M);
def(0x8c, "mov", M); def(0x8d, "lea", M); def(0x8e, "mov", M | T); def(0x8f, "pop", M);
def(0x98, "cbw", 0); def(0x99, "cwd", 0);
def(0x9a, "callf", OpF.FAR | T);
def(0x9b, "fwait", 0);
def(0x9c, "pushf", 0); def(0x9d, "popf", T);
def(0x9e, "sahf", 0); def(0x9f, "lahf", 0);
def(0xa0, "mov", OpF.MOFFS | B); def(0xa1, "mov", OpF.MOFFS);
def(0xa2, "mov", OpF.MOFFS | B); def(0xa3, "mov", OpF.MOFFS);
def(0xa4, "movsb", B); def(0xa5, "movs", 0); def(0xa6, "cmpsb", B); def(0xa7, "cmps", 0);
def(0xa8, "test", I8 | B); def(0xa9, "test", IV);
def(0xaa, "stosb", B); def(0xab, "stos", 0); def(0xac, "lodsb", B); def(0xad, "lods", 0);
def(0xae, "scasb", B); def(0xaf, "scas", 0);
def(0xc0, "grp2", M | I8 | B); def(0xc1, "grp2", M | I8);
def(0xc2, "ret", OpF.IMM16 | T); def(0xc3, "ret", T);
def(0xc4, "les", M | T); def(0xc5, "lds", M | T);
def(0xc6, "mov", M | I8 | B); def(0xc7, "mov", M | IV);
def(0xc8, "enter", OpF.IMM16 | I8); def(0xc9, "leave", 0);
def(0xca, "retf", OpF.IMM16 | T); def(0xcb, "retf", T);
def(0xcc, "int3", T); def(0xcd, "int", I8 | T); def(0xce, "into", T); def(0xcf, "iret", T);
def(0xd0, "grp2", M | B); def(0xd1, "grp2", M); def(0xd2, "grp2", M | B); def(0xd3, "grp2", M);
def(0xd4, "aam", I8); def(0xd5, "aad", I8);
def(0xd6, "salc", 0);
def(0xd7, "xlat", 0);
for (let i = 0xd8; i <= 0xdf; i++) def(i, "esc", M | OpF.FPU);
def(0xe0, "loopne", OpF.REL8 | T); def(0xe1, "loope", OpF.REL8 | T); def(0xe2, "loop", OpF.REL8 | T);
def(0xe3, "jcxz", OpF.REL8 | T);
def(0xe4, "in", I8 | B | T); def(0xe5, "in", I8 | T); def(0xe6, "out", I8 | B | T); def(0xe7, "out", I8 | T);
def(0xe8, "call", OpF.RELV | T); def(0xe9, "jmp", OpF.RELV | T);
def(0xea, "jmpf", OpF.FAR | T); def(0xeb, "jmp", OpF.REL8 | T);
def(0xec, "in", B | T); def(0xed, "in", T); def(0xee, "out", B | T); def(0xef, "out", T);
def(0xf1, "int1", T);
def(0xf4, "hlt", T); def(0xf5, "cmc", 0);
def(0xf6, "grp3", M | B | OpF.GRP3 | L); def(0xf7, "grp3", M | OpF.GRP3 | L);
def(0xf8, "clc", 0); def(0xf9, "stc", 0); def(0xfa, "cli", T); def(0xfb, "sti", T);
def(0xfc, "cld", 0); def(0xfd, "std", 0);
def(0xfe, "grp4", M | B | L); def(0xff, "grp5", M | L | T);

// Two-byte opcodes.
def(0x100, "grp6", M | T); def(0x101, "grp7", M | T);
def(0x102, "lar", M); def(0x103, "lsl", M);
def(0x106, "clts", T);
def(0x108, "invd", 0); def(0x109, "wbinvd", 0);
def(0x10b, "ud2", T);
def(0x11f, "nop", M);
def(0x120, "mov", M | T); def(0x121, "mov", M | T); def(0x122, "mov", M | T); def(0x123, "mov", M | T);
def(0x130, "wrmsr", T); def(0x131, "rdtsc", T); def(0x132, "rdmsr", T); def(0x133, "rdpmc", T);
def(0x134, "sysenter", T); def(0x135, "sysexit", T);
def(0x1a0, "push fs", 0); def(0x1a1, "pop fs", T); def(0x1a2, "cpuid", 0);
def(0x1a3, "bt", M); def(0x1a4, "shld", M | I8); def(0x1a5, "shld", M);
def(0x1a8, "push gs", 0); def(0x1a9, "pop gs", T);
def(0x1ab, "bts", M | L); def(0x1ac, "shrd", M | I8); def(0x1ad, "shrd", M); def(0x1af, "imul", M);
def(0x1b0, "cmpxchg", M | B | L); def(0x1b1, "cmpxchg", M | L);
def(0x1b2, "lss", M | T); def(0x1b3, "btr", M | L); def(0x1b4, "lfs", M | T); def(0x1b5, "lgs", M | T);
def(0x1b6, "movzx", M | B); def(0x1b7, "movzx", M);
def(0x1ba, "grp8", M | I8 | L); def(0x1bb, "btc", M | L);
def(0x1bc, "bsf", M); def(0x1bd, "bsr", M);
def(0x1be, "movsx", M | B); def(0x1bf, "movsx", M);
def(0x1c0, "xadd", M | B | L); def(0x1c1, "xadd", M | L);
def(0x1c7, "grp9", M | L);
for (let r = 0; r < 8; r++) def(0x1c8 + r, "bswap", 0);

export const OPS: readonly OpInfo[] = table;
export const OPFLAGS: Uint32Array = Uint32Array.from(table, (e) => e.flags);
export const CC_NAMES = cc;
export const ALU_NAMES = alu;

/**
 * Whether an instruction ends its basic block: a TERM opcode, except group 5's INC, DEC and
 * PUSH r/m (FF /0, /1, /6), which fall through like any other instruction (the opcode is TERM
 * for its CALL and JMP forms).
 */
export function endsBlock(op: number, reg: number): boolean {
  if (!(OPFLAGS[op]! & OpF.TERM)) return false;
  return !(op === 0xff && (reg < 2 || reg === 6));
}
