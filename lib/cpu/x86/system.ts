/**
 * System instructions: descriptor checks (LAR, LSL, VERR, VERW), group 6 (SLDT, STR, LLDT, LTR,
 * VERR, VERW), group 7 (SGDT, SIDT, LGDT, LIDT, SMSW, LMSW, INVLPG), software interrupts,
 * CPUID, the time-stamp counter, RDMSR/WRMSR, RDPMC and SYSENTER/SYSEXIT.
 */
import type { CpuCore as Cpu } from "./interrupts.ts";
import { EAX, ECX, EDX, EBX, ESP, descAr, descBase, descLimit, AR_P, AR_S, AR_CODE } from "./arch.ts";
import { CS, SS, type Insn } from "./decode.ts";
import { IF, RF, VM, ZF } from "./flags.ts";
import { FEAT, family, hasP6Pmu } from "./model.ts";
import { next, rmRead, ud } from "./ops.ts";

// ---------------------------------------------------------------------------------------
// Descriptor checks: LAR, LSL, VERR, VERW
// ---------------------------------------------------------------------------------------
export function descCheck(c: Cpu, sel: number, forLsl: boolean): { ok: boolean; lo: number; hi: number } {
  const bad = { ok: false, lo: 0, hi: 0 };
  if ((sel & 0xfffc) === 0) return bad;
  let d: { lo: number; hi: number };
  try { d = c.readDescriptor(sel); } catch (e) { if (c.excVec === 13) return bad; throw e; }
  const ar = descAr(d.hi);
  const dpl = (ar >> 5) & 3;
  if (!(ar & AR_S)) {
    const t = ar & 0x0f;
    const okTypes = forLsl ? [1, 2, 3, 9, 11] : [1, 2, 3, 4, 5, 9, 11, 12];
    if (!okTypes.includes(t)) return bad;
  } else if ((ar & (AR_CODE | 0x04)) === (AR_CODE | 0x04)) {
    return { ok: true, ...d }; // conforming code: no privilege check
  }
  if (dpl < c.cpl || dpl < (sel & 3)) return bad;
  return { ok: true, ...d };
}

export function setZF(c: Cpu, on: boolean): void {
  c.materialise();
  c.eflags = on ? c.eflags | ZF : c.eflags & ~ZF;
}

export function grp6(c: Cpu, i: Insn): void {
  if (!c.pe() || c.v86()) ud(c);
  switch (i.reg) {
    case 0: // SLDT
      if (i.mod === 3) c.setReg(i.o32 ? 2 : 1, i.rm, c.ldtSel); else c.wr16(c.seg(i), c.ea(i), c.ldtSel);
      break;
    case 1: // STR
      if (i.mod === 3) c.setReg(i.o32 ? 2 : 1, i.rm, c.trSel); else c.wr16(c.seg(i), c.ea(i), c.trSel);
      break;
    case 2: { // LLDT
      if (c.cpl !== 0) c.gp(0);
      const sel = rmRead(c, i, 1);
      if ((sel & 0xfffc) === 0) { c.ldtSel = sel; c.ldtBase = 0; c.ldtLimit = 0; c.ldtAr = 0; break; }
      if (sel & 4) c.gp(sel & 0xfffc);
      const d = c.readDescriptor(sel);
      const ar = descAr(d.hi);
      if ((ar & AR_S) || (ar & 0x0f) !== 2) c.gp(sel & 0xfffc);
      if (!(ar & AR_P)) c.fault(11, sel & 0xfffc);
      c.ldtSel = sel; c.ldtBase = descBase(d.lo, d.hi); c.ldtLimit = descLimit(d.lo, d.hi); c.ldtAr = ar;
      break;
    }
    case 3: { // LTR
      if (c.cpl !== 0) c.gp(0);
      const sel = rmRead(c, i, 1);
      if ((sel & 0xfffc) === 0 || (sel & 4)) c.gp(sel & 0xfffc);
      const d = c.readDescriptor(sel);
      const ar = descAr(d.hi);
      const t = ar & 0x0f;
      if ((ar & AR_S) || (t !== 1 && t !== 9)) c.gp(sel & 0xfffc);
      if (!(ar & AR_P)) c.fault(11, sel & 0xfffc);
      // Mark busy.
      const a = (c.gdtBase + (sel & 0xfff8) + 5) >>> 0;
      c.ws8(a, ((d.hi >>> 8) & 0xff) | 2);
      c.trSel = sel; c.trBase = descBase(d.lo, d.hi); c.trLimit = descLimit(d.lo, d.hi); c.trAr = ar | 2;
      break;
    }
    case 4: case 5: { // VERR, VERW
      const sel = rmRead(c, i, 1);
      const r = descCheck(c, sel, false);
      let ok = r.ok;
      if (ok) {
        const ar = descAr(r.hi);
        if (!(ar & AR_S)) ok = false;
        else if (i.reg === 4) ok = !(ar & AR_CODE) || (ar & 0x02) !== 0;
        else ok = !(ar & AR_CODE) && (ar & 0x02) !== 0;
        if (ok && (ar & AR_CODE) && !(ar & 0x04)) ok = ((ar >> 5) & 3) >= c.cpl && ((ar >> 5) & 3) >= (sel & 3);
      }
      setZF(c, ok);
      break;
    }
    default: ud(c);
  }
  c.eip = next(c, i);
}

export function grp7(c: Cpu, i: Insn): void {
  switch (i.reg) {
    case 0: case 1: { // SGDT, SIDT
      if (i.mod === 3) ud(c);
      const s = c.seg(i), o = c.ea(i);
      const base = i.reg === 0 ? c.gdtBase : c.idtBase, limit = i.reg === 0 ? c.gdtLimit : c.idtLimit;
      c.wr16(s, o, limit);
      c.wr32(s, (o + 2) >>> 0, i.o32 ? base : (base & 0x00ffffff) | 0xff000000);
      break;
    }
    case 2: case 3: { // LGDT, LIDT
      if (i.mod === 3) ud(c);
      if (c.pe() && c.cpl !== 0) c.gp(0);
      const s = c.seg(i), o = c.ea(i);
      const limit = c.rd16(s, o);
      let base = c.rd32(s, (o + 2) >>> 0);
      if (!i.o32) base &= 0x00ffffff;
      if (i.reg === 2) { c.gdtBase = base >>> 0; c.gdtLimit = limit; } else { c.idtBase = base >>> 0; c.idtLimit = limit; }
      break;
    }
    case 4: { // SMSW
      const v = c.cr0 & 0xffff;
      if (i.mod === 3) c.setReg(i.o32 ? 2 : 1, i.rm, i.o32 ? c.cr0 : v); else c.wr16(c.seg(i), c.ea(i), v);
      break;
    }
    case 6: { // LMSW: can set PE but not clear it
      if (c.pe() && c.cpl !== 0) c.gp(0);
      const v = rmRead(c, i, 1);
      const pe = (c.cr0 & 1) | (v & 1);
      c.writeCr(0, ((c.cr0 & ~0xf) | (v & 0xe) | pe) >>> 0);
      break;
    }
    case 7: { // INVLPG
      if (i.mod === 3) ud(c);
      if (c.pe() && c.cpl !== 0) c.gp(0);
      c.invlpg(c.lin(c.seg(i), c.ea(i), 1, false) >>> 0);
      break;
    }
    default: ud(c);
  }
  c.eip = next(c, i);
}

export function softInt(c: Cpu, i: Insn, vec: number): void {
  const nx = next(c, i);
  const save = c.eip;
  c.eip = nx; // INT n pushes the address of the next instruction
  try {
    c.raise(vec, false, 0, true, false);
  } catch (e) {
    c.eip = save;
    throw e;
  }
}

/** CPUID from the CPU's model (lib/cpu/x86/model.ts). */
export function cpuid(c: Cpu): void {
  const m = c.model;
  let leaf = c.regs[EAX]!;
  const str = (s: string, at: number) => s.charCodeAt(at) | (s.charCodeAt(at + 1) << 8) | (s.charCodeAt(at + 2) << 16) | (s.charCodeAt(at + 3) << 24);
  const set = (a: number, b: number, cx: number, d: number) => { c.regs[EAX] = a; c.regs[EBX] = b; c.regs[ECX] = cx; c.regs[EDX] = d; };
  const extMax = m.brand !== null ? 0x80000004 : -1;
  // Past the last basic or extended leaf, Intel CPUs return the last basic leaf (SDM, CPUID).
  if (!m.legacy && (leaf >= 0x80000000 ? leaf > extMax : leaf > m.maxLeaf)) leaf = m.maxLeaf;
  if (leaf === 0) return set(m.maxLeaf, str(m.vendor, 0), str(m.vendor, 8), str(m.vendor, 4));
  if (leaf === 1) return set(m.signature, 0, 0, m.features);
  // Leaf 2: one round (AL = 1) of null cache and TLB descriptors: rrx models no caches.
  if (leaf === 2 && m.maxLeaf >= 2) return set(1, 0, 0, 0);
  if (m.brand !== null && leaf >= 0x80000000 && leaf <= 0x80000004) {
    if (leaf === 0x80000000) return set(0x80000004, 0, 0, 0);
    if (leaf === 0x80000001) return set(0, 0, 0, 0);
    const b = m.brand.padEnd(48, "\0"), o = (leaf - 0x80000002) * 16;
    return set(str(b, o), str(b, o + 4), str(b, o + 8), str(b, o + 12));
  }
  set(0, 0, 0, 0);
}

// ---------------------------------------------------------------------------------------
// Time-stamp counter and MSRs
// ---------------------------------------------------------------------------------------

/** MSR numbers the MSR-capable models implement (SDM Vol. 4). */
export const MSR_TSC = 0x10, MSR_BIOS_SIGN_ID = 0x8b, MSR_SYSENTER_CS = 0x174, MSR_SYSENTER_ESP = 0x175, MSR_SYSENTER_EIP = 0x176;
/** The P6 family's performance counters: PerfEvtSel0/1 and PerfCtr0/1 (SDM Vol. 4, "MSRs in the P6 Family"). */
export const MSR_PERFEVTSEL0 = 0x186, MSR_PERFCTR0 = 0xc1;
/** The microcode update revision IA32_BIOS_SIGN_ID reports (EDX): none loaded. */
export const MICROCODE_REVISION = 0;

/** The 64-bit time-stamp counter as [low, high]: virtual time (the bus's) plus the WRMSR offset. */
export function readTsc(c: Cpu): [number, number] {
  const t = c.bus.readTsc();
  if (c.tscOffset === 0n) return [t % 4294967296, Math.floor(t / 4294967296)];
  const v = BigInt.asUintN(64, BigInt(Math.floor(t)) + c.tscOffset);
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
}

/** RDTSC: #GP(0) at CPL > 0 with CR4.TSD. */
export function rdtsc(c: Cpu, i: Insn): void {
  if ((c.cr4 & 4) && c.pe() && c.cpl !== 0) c.gp(0);
  const [lo, hi] = readTsc(c);
  c.regs[EAX] = lo;
  c.regs[EDX] = hi;
  c.eip = next(c, i);
}

/** RDMSR (0F 32) and WRMSR (0F 30): #UD without FEAT.MSR, #GP(0) at CPL > 0 or for an MSR that does not exist. */
export function msr(c: Cpu, i: Insn, write: boolean): void {
  if (!(c.model.features & FEAT.MSR)) ud(c);
  if (c.pe() && c.cpl !== 0) c.gp(0);
  const n = c.regs[ECX]!, lo = c.regs[EAX]!; // EDX: the high halves, all cleared or unused here
  let rlo = 0, rhi = 0;
  switch (n) {
    case MSR_TSC:
      if (write) {
        // P6 family: only the low 32 bits are written, the high 32 bits are cleared (SDM Vol. 3,
        // "Time-Stamp Counter"). The counter goes on from there with virtual time.
        const t = c.bus.readTsc();
        c.tscOffset = BigInt.asIntN(64, BigInt(lo >>> 0) - BigInt(Math.floor(t)));
      } else [rlo, rhi] = readTsc(c);
      break;
    case MSR_BIOS_SIGN_ID:
      // Software writes 0 and runs CPUID before reading the revision; nothing is loaded here.
      rhi = MICROCODE_REVISION;
      break;
    case MSR_SYSENTER_CS: if (write) c.sysenterCs = lo; else rlo = c.sysenterCs; break;
    case MSR_SYSENTER_ESP: if (write) c.sysenterEsp = lo; else rlo = c.sysenterEsp; break;
    case MSR_SYSENTER_EIP: if (write) c.sysenterEip = lo; else rlo = c.sysenterEip; break;
    case MSR_PERFEVTSEL0: case MSR_PERFEVTSEL0 + 1: {
      if (!hasP6Pmu(c.model)) c.gp(0);
      const k = n - MSR_PERFEVTSEL0;
      if (write) { pmcFold(c); c.pmcSel[k] = lo >>> 0; pmcStart(c); } else rlo = c.pmcSel[k]!;
      break;
    }
    case MSR_PERFCTR0: case MSR_PERFCTR0 + 1: {
      if (!hasP6Pmu(c.model)) c.gp(0);
      const k = n - MSR_PERFCTR0;
      if (write) {
        // Only the low 32 bits are written; bits 32-39 take bit 31 (SDM Vol. 3, P6 family counters).
        pmcFold(c);
        c.pmcBase[k] = (lo >>> 0) + (lo & 0x80000000 ? 0xff * 4294967296 : 0);
        pmcStart(c);
      } else [rlo, rhi] = pmcRead(c, k);
      break;
    }
    default:
      if (!(c.model.features & FEAT.MCA) || !machineCheckMsr(c, n, write)) c.gp(0);
      if (!write) { rlo = c.regs[EAX]!; rhi = c.regs[EDX]!; }
  }
  if (!write) { c.regs[EAX] = rlo; c.regs[EDX] = rhi; }
  c.eip = next(c, i);
}

/** Machine-check MSRs (SDM Vol. 3, "Machine-Check Architecture"; Vol. 4, P6 family). */
export const MSR_MCG_CAP = 0x179, MSR_MCG_STATUS = 0x17a, MSR_MCG_CTL = 0x17b, MSR_MC0_CTL = 0x400;
/** Error-reporting banks, as on the P6 family; MCG_CAP also reports MCG_CTL (bit 8). */
export const MC_BANKS = 5;

/**
 * The machine-check architecture of a CPU that never detects an error: MCG_CAP (read-only),
 * MCG_CTL and the banks' MCi_CTL read back what was written, MCG_STATUS and every MCi_STATUS
 * read 0 and take only 0 (writing 1s is #GP(0), SDM), and MCi_ADDR/MCi_MISC, which hold nothing
 * without a logged error, are #GP(0). Reads leave the value in EDX:EAX. False: no such MSR.
 */
function machineCheckMsr(c: Cpu, n: number, write: boolean): boolean {
  const lo = c.regs[EAX]!, hi = c.regs[EDX]!;
  let slot = -1;
  if (n === MSR_MCG_CAP) {
    if (write) c.gp(0);
    c.regs[EAX] = MC_BANKS | 0x100; c.regs[EDX] = 0;
    return true;
  }
  if (n === MSR_MCG_CTL) slot = 0;
  else if (n >= MSR_MC0_CTL && n < MSR_MC0_CTL + 4 * MC_BANKS) {
    const reg = (n - MSR_MC0_CTL) & 3;
    if (reg === 0) slot = 1 + ((n - MSR_MC0_CTL) >> 2);
    else if (reg === 1) { // MCi_STATUS
      if (write ? (lo | hi) !== 0 : false) c.gp(0);
      if (!write) { c.regs[EAX] = 0; c.regs[EDX] = 0; }
      return true;
    } else c.gp(0); // MCi_ADDR, MCi_MISC: no error logged
  } else if (n === MSR_MCG_STATUS) {
    if (write && (lo | hi) !== 0) c.gp(0);
    if (!write) { c.regs[EAX] = 0; c.regs[EDX] = 0; }
    return true;
  } else return false;
  if (write) { c.mcCtl[2 * slot] = lo; c.mcCtl[2 * slot + 1] = hi; }
  else { c.regs[EAX] = c.mcCtl[2 * slot]!; c.regs[EDX] = c.mcCtl[2 * slot + 1]!; }
  return true;
}

// The P6 performance counters count one event exactly: instructions retired (event C0h) in
// both rings (USR and OS set, no CMASK, no INV), while PerfEvtSel0's EN bit enables the pair.
// Every other event counts nothing (rrx models no caches, buses or pipelines), and a counter
// that overflows raises no interrupt (the P6 signals that through a local APIC, which rrx
// lacks). A counter is its value at pmcFrom plus the instructions retired since.
const PMC_EN = 1 << 22, PMC_USR_OS = 3 << 16, PMC_INV = 1 << 23, PMC_MODULUS = 2 ** 40;

function pmcCounts(c: Cpu, k: number): boolean {
  const sel = c.pmcSel[k]!;
  return (c.pmcSel[0]! & PMC_EN) !== 0 && (sel & 0xff) === 0xc0 && (sel & PMC_USR_OS) === PMC_USR_OS &&
    (sel & PMC_INV) === 0 && (sel >>> 24) === 0;
}
function pmcValue(c: Cpu, k: number): number {
  const from = c.pmcFrom[k]!;
  return (c.pmcBase[k]! + (from >= 0 ? c.icount - from : 0)) % PMC_MODULUS;
}
/** Before a PMU MSR write: each counter's value so far becomes its base. */
function pmcFold(c: Cpu): void {
  for (let k = 0; k < 2; k++) { c.pmcBase[k] = pmcValue(c, k); c.pmcFrom[k] = -1; }
}
/** After a PMU MSR write: the counters that count now start from here. */
function pmcStart(c: Cpu): void {
  for (let k = 0; k < 2; k++) c.pmcFrom[k] = pmcCounts(c, k) ? c.icount + 1 : -1; // from the next instruction
}
function pmcRead(c: Cpu, k: number): [number, number] {
  const v = pmcValue(c, k);
  return [v % 4294967296, Math.floor(v / 4294967296)];
}

/**
 * RDPMC (0F 33): #UD before the P6 family. Allowed at CPL 0, in real mode, or with CR4.PCE
 * (else #GP(0)); ECX 0 or 1 reads PerfCtr0/1 (40 bits in EDX:EAX), any other ECX is #GP(0)
 * (SDM: "#GP(0) if ... ECX does not specify a valid counter").
 */
export function rdpmc(c: Cpu, i: Insn): void {
  if (c.model.legacy || family(c.model) < 6) ud(c);
  if (c.pe() && c.cpl !== 0 && !(c.cr4 & 0x100)) c.gp(0);
  const k = c.regs[ECX]!;
  if (!hasP6Pmu(c.model) || k > 1) c.gp(0);
  [c.regs[EAX], c.regs[EDX]] = pmcRead(c, k);
  c.eip = next(c, i);
}

// Flat segment caches SYSENTER/SYSEXIT load (base 0, limit 4 GiB, 32-bit; SDM SYSENTER): the
// descriptor words they correspond to. No descriptor is read and no accessed bit set.
const FLAT_LO = 0x0000ffff;
const FLAT_CODE0 = 0x00cf9b00, FLAT_DATA0 = 0x00cf9300, FLAT_CODE3 = 0x00cffb00, FLAT_DATA3 = 0x00cff300;

/** SYSENTER (0F 34): to CPL 0 at SYSENTER_CS:SYSENTER_EIP with SS:ESP = SYSENTER_CS+8:SYSENTER_ESP. */
export function sysenter(c: Cpu): void {
  if (!(c.model.features & FEAT.SEP)) ud(c);
  if (!c.pe() || (c.sysenterCs & 0xfffc) === 0) c.gp(0);
  const cs = c.sysenterCs & 0xfffc;
  c.eflags &= ~(VM | IF | RF);
  c.loadSegDesc(CS, cs, FLAT_LO, FLAT_CODE0);
  c.setCpl(0);
  c.loadSegDesc(SS, (cs + 8) & 0xfffc, FLAT_LO, FLAT_DATA0);
  c.regs[ESP] = c.sysenterEsp;
  c.eip = c.sysenterEip;
}

/** SYSEXIT (0F 35): from CPL 0 to CPL 3 at SYSENTER_CS+16:EDX with SS:ESP = SYSENTER_CS+24:ECX. */
export function sysexit(c: Cpu): void {
  if (!(c.model.features & FEAT.SEP)) ud(c);
  if (!c.pe() || (c.sysenterCs & 0xfffc) === 0 || c.cpl !== 0) c.gp(0);
  const cs = c.sysenterCs;
  c.loadSegDesc(CS, ((cs + 16) & 0xfffc) | 3, FLAT_LO, FLAT_CODE3);
  c.setCpl(3);
  c.loadSegDesc(SS, ((cs + 24) & 0xfffc) | 3, FLAT_LO, FLAT_DATA3);
  c.regs[ESP] = c.regs[ECX]!;
  c.eip = c.regs[EDX]!;
}
