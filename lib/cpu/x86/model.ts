/**
 * CPU models: what one x86 CPU reports in CPUID and implements. A recording names its model in
 * the log header (`cpu`), and a replay builds the same model, so a log keeps replaying after the
 * core learns new features: the state a model saves (and hashes) is the state it has.
 *
 * - `rrx-i586`: the model of logs recorded before the header named one: a Pentium-class CPU
 *   without an FPU (every x87 opcode #NM/#UD as CR0 says), no MSRs. Kept for old logs only.
 * - `i686`: the default for new recordings.
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
}

export const MODEL_I586: X86Model = {
  name: "rrx-i586",
  vendor: "GenuineIntel",
  signature: 0x543, // family 5, model 4, stepping 3
  features: FEAT.DE | FEAT.PSE | FEAT.TSC | FEAT.CX8 | FEAT.CMOV,
  maxLeaf: 1,
  brand: null,
};

export const MODEL_I686: X86Model = {
  name: "i686",
  vendor: "GenuineIntel",
  signature: 0x543,
  features: FEAT.DE | FEAT.PSE | FEAT.TSC | FEAT.CX8 | FEAT.CMOV,
  maxLeaf: 1,
  brand: null,
};

export const MODELS: readonly X86Model[] = [MODEL_I686, MODEL_I586];
/** The model of new recordings. */
export const DEFAULT_MODEL = MODEL_I686;
/** The model of a log whose header names none (recorded before models existed). */
export const LEGACY_MODEL = MODEL_I586;

export function findModel(name: string): X86Model | undefined {
  return MODELS.find((m) => m.name === name);
}
