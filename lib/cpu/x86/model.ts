/**
 * CPU models: what one x86 CPU reports in CPUID and implements. A recording names its model in
 * the log header (`cpu`), and a replay builds the same model, so a log keeps replaying after the
 * core learns new features: the state a model saves (and hashes) is the state it has.
 *
 * - `rrx-i586`: the model of logs recorded before the header named one: a Pentium-class CPU
 *   without an FPU (every x87 opcode #NM/#UD as CR0 says), no MSRs. Kept for old logs only:
 *   it is `legacy`, so it keeps rrx's behaviour from before models existed where that differs
 *   from hardware in ways an old log could have recorded (see `legacy`).
 * - `i686`: the default for new recordings. A P6-family CPU (see MODEL_I686 for the signature
 *   and features it reports, and why).
 *
 * Every behaviour a feature bit announces is gated on that bit (`model.features & FEAT.X`), so
 * a model without it keeps #UD/#GP there as before: RDMSR/WRMSR (MSR), SYSENTER/SYSEXIT (SEP),
 * global pages and CR4.PGE (PGE), CR4.PCE with RDPMC (family 6).
 */

/** CPUID leaf 1 EDX feature bits. */
export const FEAT = {
  FPU: 1 << 0, VME: 1 << 1, DE: 1 << 2, PSE: 1 << 3, TSC: 1 << 4, MSR: 1 << 5, PAE: 1 << 6,
  MCE: 1 << 7, CX8: 1 << 8, APIC: 1 << 9, SEP: 1 << 11, MTRR: 1 << 12, PGE: 1 << 13,
  MCA: 1 << 14, CMOV: 1 << 15, PAT: 1 << 16, PSE36: 1 << 17, MMX: 1 << 23, FXSR: 1 << 24,
} as const;

export interface X86Model {
  /** The name a log header stores. */
  readonly name: string;
  /** CPUID: vendor string (12 characters). */
  readonly vendor: string;
  /** CPUID leaf 1 EAX: stepping, model, family. */
  readonly signature: number;
  /** CPUID leaf 1 EDX. */
  readonly features: number;
  /** Highest standard CPUID leaf. */
  readonly maxLeaf: number;
  /** Brand string (leaves 0x80000002-4), or null for no extended leaves. */
  readonly brand: string | null;
  /**
   * rrx's behaviour before models existed, kept where it differs from hardware in ways old
   * logs may hold in their state hashes: OF after RCL/RCR by more than 1 and OF/AF/CF after
   * AAD (other models give Intel's values), CPUID leaves past the last one (zeros, not the
   * last basic leaf), CR4 bits accepted whatever CPUID says, MOV DR4/DR5 aliasing DR6/DR7
   * even with CR4.DE, RDPMC #UD. Defects that only show in states no old log plausibly
   * reached (stack wrap-around, faults on odd stacks) are fixed for all models.
   */
  readonly legacy: boolean;
}

/** CPUID leaf 1 EAX family (bits 8-11). */
export function family(m: X86Model): number { return (m.signature >>> 8) & 0xf; }

/** Whether the model has the P6 family's performance counters (system.ts: MSRs 186h/187h, C1h/C2h, RDPMC). */
export function hasP6Pmu(m: X86Model): boolean { return !m.legacy && family(m) === 6; }

/**
 * The CR4 bits a MOV to CR4 may set (others: #GP(0)): those of the features the model reports
 * (PCE from the P6 family on). A legacy model accepts what rrx always did.
 */
export function cr4Writable(m: X86Model): number {
  if (m.legacy) return 0x29f;
  const f = m.features;
  let b = 0;
  if (f & FEAT.VME) b |= 0x3; // VME, PVI
  if (f & FEAT.TSC) b |= 0x4; // TSD
  if (f & FEAT.DE) b |= 0x8;
  if (f & FEAT.PSE) b |= 0x10;
  if (f & FEAT.PAE) b |= 0x20;
  if (f & FEAT.MCE) b |= 0x40;
  if (f & FEAT.PGE) b |= 0x80;
  if (family(m) >= 6) b |= 0x100; // PCE
  if (f & FEAT.FXSR) b |= 0x200; // OSFXSR
  return b;
}

export const MODEL_I586: X86Model = {
  name: "rrx-i586",
  vendor: "GenuineIntel",
  signature: 0x543, // family 5, model 4, stepping 3
  features: FEAT.DE | FEAT.PSE | FEAT.TSC | FEAT.CX8 | FEAT.CMOV,
  maxLeaf: 1,
  brand: null,
  legacy: true,
};

/**
 * A P6-family CPU, reporting only what rrx implements: FPU (the x87, x87.ts), DE, PSE, TSC,
 * MSR, MCE, CX8, SEP, PGE, MCA (five banks that never log an error), CMOV, and the P6
 * performance counters (system.ts; instructions retired count exactly). No APIC, PAE, MTRR,
 * PAT, MMX or FXSR.
 *
 * The signature is family 6 model 1 stepping 9: a Pentium Pro (the only P6 model without MMX,
 * which rrx does not implement), at a stepping past its errata that system software checks
 * by signature. Linux clears SEP on family 6 when model < 3 and stepping < 3 (the Pentium Pro
 * reported SEP without having SYSENTER: the SDM gives the same rule), and treats a Pentium Pro
 * below stepping 8 as having the errata-50 memory bug; stepping 9 has neither, so SEP stands
 * and is real here. Family 6 also makes Linux read the microcode revision through
 * IA32_BIOS_SIGN_ID (0x8B), which exists (revision 0).
 *
 * CPUID: leaf 0 reports max leaf 2; leaf 2 gives one round of null cache/TLB descriptors (rrx
 * models no caches); leaves 0x80000000-0x80000004 give the brand string (which the real
 * Pentium Pro lacked), 0x80000001 no extended features. Any other leaf past the last basic or
 * extended one returns the last basic leaf's data, as Intel CPUs do (SDM, CPUID).
 */
export const MODEL_I686: X86Model = {
  name: "i686",
  vendor: "GenuineIntel",
  signature: 0x619, // family 6, model 1, stepping 9
  features: FEAT.FPU | FEAT.DE | FEAT.PSE | FEAT.TSC | FEAT.MSR | FEAT.MCE | FEAT.CX8 | FEAT.SEP | FEAT.PGE | FEAT.MCA | FEAT.CMOV,
  maxLeaf: 2,
  brand: "rrx virtual i686 CPU",
  legacy: false,
};

export const MODELS: readonly X86Model[] = [MODEL_I686, MODEL_I586];
/** The model of new recordings. */
export const DEFAULT_MODEL = MODEL_I686;
/** The model of a log whose header names none (recorded before models existed). */
export const LEGACY_MODEL = MODEL_I586;

export function findModel(name: string): X86Model | undefined {
  return MODELS.find((m) => m.name === name);
}
