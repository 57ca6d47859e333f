/**
 * System instructions: descriptor checks (LAR, LSL, VERR, VERW), group 6 (SLDT, STR, LLDT, LTR,
 * VERR, VERW), group 7 (SGDT, SIDT, LGDT, LIDT, SMSW, LMSW, INVLPG), software interrupts and
 * CPUID.
 */
import type { CpuCore as Cpu } from "./interrupts.ts";
import { EAX, ECX, EDX, EBX, descAr, descBase, descLimit, AR_P, AR_S, AR_CODE } from "./arch.ts";
import { type Insn } from "./decode.ts";
import { ZF } from "./flags.ts";
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
  const leaf = c.regs[EAX]!, m = c.model;
  const str = (s: string, at: number) => s.charCodeAt(at) | (s.charCodeAt(at + 1) << 8) | (s.charCodeAt(at + 2) << 16) | (s.charCodeAt(at + 3) << 24);
  const set = (a: number, b: number, cx: number, d: number) => { c.regs[EAX] = a; c.regs[EBX] = b; c.regs[ECX] = cx; c.regs[EDX] = d; };
  if (leaf === 0) return set(m.maxLeaf, str(m.vendor, 0), str(m.vendor, 8), str(m.vendor, 4));
  if (leaf === 1) return set(m.signature, 0, 0, m.features);
  if (m.brand !== null && leaf >= 0x80000000 && leaf <= 0x80000004) {
    if (leaf === 0x80000000) return set(0x80000004, 0, 0, 0);
    const b = m.brand.padEnd(48, "\0"), o = (leaf - 0x80000002) * 16;
    return set(str(b, o), str(b, o + 4), str(b, o + 8), str(b, o + 12));
  }
  set(0, 0, 0, 0);
}
