/**
 * i386 architectural constants shared by every part of the core: register numbers, control
 * register and descriptor bits, the decoding of a segment descriptor, and the exception
 * signal. A leaf module: it imports nothing.
 */

export const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7;

/** Thrown (as this singleton) to abort an instruction with an exception. */
export const FAULT = { fault: true };
/**
 * Not a vector: `excVec` when an x87 instruction stops on FERR# (x87.ts). The instruction
 * does not retire and the CPU waits at it, as at HLT, until an interrupt comes.
 */
export const FERR_WAIT = 0x100;

const CR0_PE = 1, CR0_MP = 2, CR0_EM = 4, CR0_TS = 8, CR0_NE = 0x20, CR0_WP = 0x10000, CR0_PG = 0x80000000;
const CR4_VME = 0x1, CR4_PVI = 0x2, CR4_TSD = 0x4, CR4_DE = 0x8, CR4_PSE = 0x10, CR4_PAE = 0x20, CR4_MCE = 0x40,
  CR4_PGE = 0x80, CR4_PCE = 0x100, CR4_OSFXSR = 0x200;

/** Segment access-rights word: descriptor byte 5 in bits 0-7, flags nibble (G, D/B) in bits 12-15. */
const AR_P = 0x80, AR_S = 0x10, AR_CODE = 0x08, AR_DB = 0x4000, AR_G = 0x8000;

export function descBase(lo: number, hi: number): number {
  return ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0;
}
export function descLimit(lo: number, hi: number): number {
  let l = (lo & 0xffff) | (hi & 0xf0000);
  if (hi & 0x800000) l = ((l << 12) | 0xfff) >>> 0;
  return l >>> 0;
}
export function descAr(hi: number): number {
  return ((hi >>> 8) & 0xff) | ((hi >>> 8) & 0xf000);
}

export { CR0_PE, CR0_PG, CR0_EM, CR0_TS, CR0_MP, CR0_NE, CR0_WP, CR4_VME, CR4_PVI, CR4_TSD, CR4_DE, CR4_PSE, CR4_PAE, CR4_MCE, CR4_PGE, CR4_PCE, CR4_OSFXSR, AR_P, AR_S, AR_CODE, AR_DB, AR_G };
