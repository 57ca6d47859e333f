/**
 * The x87 as the CPU runs it: the glue between the decoder and the FPU unit (fpu/fpu.ts).
 *
 * For every ESC instruction (D8..DF) and WAIT/FWAIT (9B) this file applies what belongs to the
 * CPU rather than to the FPU (Intel SDM vol. 1 ch. 8 and vol. 3 ch. 2.5, 6.15):
 *  - CR0.EM or CR0.TS: #NM (device not available) before anything else; WAIT only with MP and TS;
 *  - a pending unmasked exception (FSW.ES) reported at the next *waiting* instruction: with
 *    CR0.NE as #MF (vector 16, a fault on that instruction); without NE the PC way (FERR# to
 *    the board, which raises IRQ 13; the CPU waits at the instruction until an interrupt comes,
 *    and goes on past the error once IGNNE# is asserted: the board asserts it when the guest
 *    writes port F0h while FERR# is active, and it drops when ES is cleared);
 *  - the memory operand: read into a buffer before the FPU runs, or probed for write faults
 *    before it (so a faulting instruction changes nothing) and written back after;
 *  - FIP/FCS/FOP and FDP/FDS, kept for every non-control instruction;
 *  - FCOMI/FUCOMI(P) results into EFLAGS, FCMOVcc reading them, FNSTSW AX.
 * A model without an FPU (the legacy rrx-i586) raises #NM or #UD as CR0 says.
 */
import type { CpuCore as Cpu } from "./interrupts.ts";
import { CS, type Insn } from "./decode.ts";
import { CR0_EM, CR0_MP, CR0_NE, CR0_TS, EAX, FAULT, FERR_WAIT } from "./arch.ts";
import { next } from "./ops.ts";
import { ES, FPU_UD, memAccess } from "./fpu/fpu.ts";

/** The memory operand of the running x87 instruction (FNSAVE/FRSTOR images are the largest). */
const buf = new Uint8Array(108);

/**
 * Instructions that do not wait for a pending exception: FNINIT, FNCLEX, FNSTSW, FNSTCW,
 * FNSTENV, FNSAVE (and the 8087's FNENI/FNDISI and the 287's FNSETPM, no-ops here).
 * `e`: the escape 0..7 (D8..DF).
 */
function nonWaiting(e: number, modrm: number): boolean {
  if (modrm < 0xc0) {
    const reg = (modrm >> 3) & 7;
    return (e === 1 && reg >= 6) || (e === 5 && reg >= 6);
  }
  return (e === 3 && (modrm === 0xe0 || modrm === 0xe1 || modrm === 0xe2 || modrm === 0xe3 || modrm === 0xe4)) ||
    (e === 7 && modrm === 0xe0);
}

/**
 * Control instructions, which leave FIP/FDP/FOP as the last non-control instruction set them:
 * the non-waiting ones and FLDCW, FLDENV, FRSTOR.
 */
function isControl(e: number, modrm: number): boolean {
  if (nonWaiting(e, modrm)) return true;
  if (modrm >= 0xc0) return false;
  const reg = (modrm >> 3) & 7;
  return (e === 1 && (reg === 4 || reg === 5)) || (e === 5 && reg === 4);
}

/**
 * A waiting instruction found FSW.ES set: #MF with CR0.NE; else FERR# (IRQ 13 through the
 * board) and wait at the instruction, unless IGNNE# lets it go on.
 */
function reportPending(c: Cpu): void {
  if (c.cr0 & CR0_NE) c.fault(16);
  if (c.ignne) return;
  c.bus.fpuError?.();
  c.excVec = FERR_WAIT;
  throw FAULT;
}

/** isControl() for every (esc, modrm), built once: the CPU asks on every x87 instruction. */
const CONTROL = Uint8Array.from({ length: 2048 }, (_, k) => (isControl(k >> 8, k & 0xff) ? 1 : 0));

/** D8..DF from the interpreter. */
export function esc(c: Cpu, i: Insn): void {
  const mem = i.mod !== 3;
  escOp(c, i.op - 0xd8, (i.mod << 6) | (i.reg << 3) | i.rm, i.o32, mem ? c.seg(i) : 0, mem ? c.ea(i) : 0, c.eip);
  c.eip = next(c, i);
}

/**
 * One ESC instruction: `e` the escape 0..7 (D8..DF), `modrm` its ModRM byte, the memory
 * operand at seg:off (mod != 3), `eip` the instruction's address (for FIP). Leaves c.eip alone,
 * so translated code (jit-insn.ts) calls it as it is, with the address computed from its
 * register locals: it reads and writes no general register and no arithmetic flag for the
 * forms the translator hands it (not FCMOVcc, FCOMI/FUCOMI(P), FNSTSW AX).
 */
export function escOp(c: Cpu, e: number, modrm: number, o32: boolean, seg: number, off: number, eip: number): void {
  const fpu = c.fpu;
  if (fpu === null) { c.fpuCheck(); return; }
  if (c.cr0 & (CR0_EM | CR0_TS)) c.fault(7);
  if (fpu.sw & ES) { if (!nonWaiting(e, modrm)) reportPending(c); } else c.ignne = false;
  let lin = 0;
  if (modrm >= 0xc0) {
    if (fpu.regOp(e, modrm)) { fpu.fcs = c.sel[CS]!; fpu.fip = eip; fpu.fop = ((e << 8) | modrm) & 0x7ff; return; }
  } else {
    const reg = (modrm >> 3) & 7;
    // The double and extended forms first, without the operand buffer: FLD m64, FADD..FDIVR
    // m64, FST(P) m64, FLD m80, FSTP m80.
    if (e === 4 || (e === 5 && reg === 0)) {
      lin = c.lin(seg, off, 8, false);
      const lo = c.rl32(lin), hi = c.rl32((lin + 4) >>> 0);
      if (e === 4 ? fpu.arithF64(reg, lo, hi) : fpu.fldF64(lo, hi)) {
        fpu.noteInsn(c.sel[CS]!, eip, (e << 8) | modrm, c.sel[seg]!, off);
        return;
      }
      buf[0] = lo; buf[1] = lo >>> 8; buf[2] = lo >>> 16; buf[3] = lo >>> 24;
      buf[4] = hi; buf[5] = hi >>> 8; buf[6] = hi >>> 16; buf[7] = hi >>> 24;
    } else if (e === 3 && reg === 5) {                                 // FLD m80
      lin = c.lin(seg, off, 10, false);
      const lo = c.rl32(lin), hi = c.rl32((lin + 4) >>> 0), se = c.rl16((lin + 8) >>> 0);
      if (fpu.fldF80(lo, hi, se)) { fpu.noteInsn(c.sel[CS]!, eip, (e << 8) | modrm, c.sel[seg]!, off); return; }
      buf[0] = lo; buf[1] = lo >>> 8; buf[2] = lo >>> 16; buf[3] = lo >>> 24;
      buf[4] = hi; buf[5] = hi >>> 8; buf[6] = hi >>> 16; buf[7] = hi >>> 24; buf[8] = se; buf[9] = se >>> 8;
    } else if (e === 3 && reg === 7) {                                 // FSTP m80
      lin = c.lin(seg, off, 10, true);
      c.probeWrite(lin);
      c.probeWrite((lin + 9) >>> 0);
      if (fpu.stF80()) {
        c.wl32(lin, fpu.mlo); c.wl32((lin + 4) >>> 0, fpu.mhi); c.wl16((lin + 8) >>> 0, fpu.mse);
        fpu.noteInsn(c.sel[CS]!, eip, (e << 8) | modrm, c.sel[seg]!, off);
        return;
      }
    } else if (e === 5 && (reg === 2 || reg === 3)) {
      lin = c.lin(seg, off, 8, true);
      c.probeWrite(lin);
      c.probeWrite((lin + 7) >>> 0);
      if (fpu.stF64(reg === 3)) {
        c.wl32(lin, fpu.mlo);
        c.wl32((lin + 4) >>> 0, fpu.mhi);
        fpu.noteInsn(c.sel[CS]!, eip, (e << 8) | modrm, c.sel[seg]!, off);
        return;
      }
    } else {
      const acc = memAccess(e, reg, o32);
      const size = acc.size;
      if (acc.read) {
        lin = c.lin(seg, off, size, false);
        let k = 0;
        for (; k + 4 <= size; k += 4) {
          const v = c.rl32((lin + k) >>> 0);
          buf[k] = v; buf[k + 1] = v >>> 8; buf[k + 2] = v >>> 16; buf[k + 3] = v >>> 24;
        }
        for (; k < size; k++) buf[k] = c.rl8((lin + k) >>> 0);
      } else if (acc.write) {
        lin = c.lin(seg, off, size, true);
        c.probeWrite(lin);
        c.probeWrite((lin + size - 1) >>> 0);
      }
    }
  }
  // FCMOVcc reads EFLAGS; FCOMI/FUCOMI(P) write it (DA/DB/DF register forms).
  const flagsOp = modrm >= 0xc0 && (e === 2 || e === 3 || e === 7);
  const fl = flagsOp ? c.getFlags() : 0;
  if (fpu.exec(e, modrm, buf, fl, o32, c.pe() && !c.v86()) === FPU_UD) c.fault(6);
  const n = fpu.wrote;
  if (n > 0) {
    let k = 0;
    for (; k + 4 <= n; k += 4) c.wl32((lin + k) >>> 0, buf[k]! | (buf[k + 1]! << 8) | (buf[k + 2]! << 16) | (buf[k + 3]! << 24));
    for (; k < n; k++) c.wl8((lin + k) >>> 0, buf[k]!);
  }
  if (flagsOp && fpu.eflags !== fl) c.setFlags(fpu.eflags);
  if (fpu.ax >= 0) c.regs[EAX] = ((c.regs[EAX]! & 0xffff0000) | fpu.ax) >>> 0;
  if (CONTROL[(e << 8) | modrm] === 0) {
    if (modrm < 0xc0) fpu.noteInsn(c.sel[CS]!, eip, (e << 8) | modrm, c.sel[seg]!, off);
    else fpu.noteInsn(c.sel[CS]!, eip, (e << 8) | modrm, fpu.fds, fpu.fdp);
  }
}

/** WAIT/FWAIT (9B). */
export function fwait(c: Cpu, i: Insn): void {
  if ((c.cr0 & (CR0_MP | CR0_TS)) === (CR0_MP | CR0_TS)) c.fault(7);
  const fpu = c.fpu;
  if (fpu !== null) {
    if (fpu.sw & ES) reportPending(c); else c.ignne = false;
  }
  c.eip = next(c, i);
}
