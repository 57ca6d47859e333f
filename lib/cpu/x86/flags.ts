/** EFLAGS bits. */
export const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, TF = 0x100, IF = 0x200, DF = 0x400,
  OF = 0x800, IOPL = 0x3000, NT = 0x4000, RF = 0x10000, VM = 0x20000, AC = 0x40000, VIF = 0x80000,
  VIP = 0x100000, ID = 0x200000;
/** The six arithmetic flags that the lazy evaluator owns. */
export const ARITH = CF | PF | AF | ZF | SF | OF;

/** Lazy-flag operation kinds: how to derive the arithmetic flags from (a, b, res, size). */
export const LF_EAGER = 0, LF_ADD = 1, LF_SUB = 2, LF_LOGIC = 3, LF_INC = 4, LF_DEC = 5;
/**
 * Flag kinds past the lazy kinds, used by translated code's pending flags (jit.ts, the CPU's
 * jitFlags): 32-bit and 16-bit shifts (a = value, b = count, r = result; the size says which).
 */
export const SH_SHL = 10, SH_SHR = 11, SH_SAR = 12;
/**
 * A 32-bit two- or three-operand IMUL's pending flags in translated code: a = 1 when the
 * product does not fit in int32 (CF = OF), r = the result (SF, ZF, PF from it, AF clear: what
 * the interpreter leaves).
 */
export const IMUL_FLAGS = 13;

/** Operand sizes: 0 = byte, 1 = word, 2 = dword. */
export const MASK = [0xff, 0xffff, 0xffffffff] as const;
export const SIGN = [0x80, 0x8000, 0x80000000] as const;
export const BITS = [8, 16, 32] as const;

/** PF for every byte value: 1 if the number of set bits is even. */
export const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let b = i, p = 1;
  while (b) { p ^= b & 1; b >>= 1; }
  PARITY[i] = p;
}
