/**
 * String instructions (MOVS, CMPS, STOS, LODS, SCAS, INS, OUTS) with and without REP: each
 * iteration of a REP form retires as one instruction (docs/ARCHITECTURE.md, "icount").
 */
import type { CpuCore as Cpu } from "./interrupts.ts";
import { EAX, ECX, EDX, ESI, EDI } from "./arch.ts";
import { DS, ES, REP_E, REP_NONE, type Insn } from "./decode.ts";
import { DF, IF } from "./flags.ts";
import { next } from "./ops.ts";

// ---------------------------------------------------------------------------------------
// String instructions
// ---------------------------------------------------------------------------------------
export function stringOp(c: Cpu, i: Insn, kind: number, sz: number): void {
  const a32 = i.a32;
  const width = 1 << sz;
  const step = (c.eflags & DF) ? -width : width;
  const src = i.seg >= 0 ? i.seg : DS;
  const rep = i.rep;
  if (rep !== REP_NONE) {
    const cx0 = a32 ? c.regs[ECX]! : c.regs[ECX]! & 0xffff;
    if (cx0 === 0) { c.eip = next(c, i); return; }
  }
  // REP MOVS and STOS through flat memory, either way: whole runs of iterations at once.
  // icount counts the iteration about to run; up to runTarget - icount of them fit the budget.
  // The single-step mode (the tests' reference) goes one iteration at a time.
  const bulk = rep !== REP_NONE && a32 && (kind === 0 || kind === 2) && !c.singleStep;
  for (;;) {
    if (bulk) {
      const n = c.bulkString(kind, sz, src, Math.min(c.regs[ECX]!, c.runTarget - c.icount), step < 0);
      if (n > 0) {
        c.icount += n - 1;
        if (c.regs[ECX] === 0) { c.eip = next(c, i); return; }
        if (c.icount + 1 >= c.runTarget || c.brk !== 0 || (c.intrLine && (c.eflags & IF))) return;
        c.icount++;
        continue;
      }
    }
    const si = a32 ? c.regs[ESI]! : c.regs[ESI]! & 0xffff;
    const di = a32 ? c.regs[EDI]! : c.regs[EDI]! & 0xffff;
    let stop = false;
    switch (kind) {
      case 0: // MOVS
        c.wr(sz, ES, di, c.rd(sz, src, si));
        advance(c, ESI, step, a32); advance(c, EDI, step, a32);
        break;
      case 1: { // CMPS
        const a = c.rd(sz, src, si), b = c.rd(sz, ES, di);
        c.alu(7, a, b, sz);
        advance(c, ESI, step, a32); advance(c, EDI, step, a32);
        if (rep !== REP_NONE) stop = rep === REP_E ? !c.zf() : c.zf();
        break;
      }
      case 2: // STOS
        c.wr(sz, ES, di, c.getReg(sz, EAX));
        advance(c, EDI, step, a32);
        break;
      case 3: // LODS
        c.setReg(sz, EAX, c.rd(sz, src, si));
        advance(c, ESI, step, a32);
        break;
      case 4: { // SCAS
        const b = c.rd(sz, ES, di);
        c.alu(7, c.getReg(sz, EAX), b, sz);
        advance(c, EDI, step, a32);
        if (rep !== REP_NONE) stop = rep === REP_E ? !c.zf() : c.zf();
        break;
      }
      case 5: { // INS
        const port = c.regs[EDX]! & 0xffff;
        c.checkIo(port, width);
        c.lin(ES, di, width, true); // fault before the port read has side effects
        const v = c.bus.ioRead(port, width as 1 | 2 | 4);
        c.wr(sz, ES, di, v);
        advance(c, EDI, step, a32);
        break;
      }
      default: { // OUTS
        const port = c.regs[EDX]! & 0xffff;
        c.checkIo(port, width);
        const v = c.rd(sz, src, si);
        c.bus.ioWrite(port, width as 1 | 2 | 4, v);
        advance(c, ESI, step, a32);
        break;
      }
    }
    if (rep === REP_NONE) { c.eip = next(c, i); return; }
    let cx: number;
    if (a32) { cx = (c.regs[ECX]! - 1) >>> 0; c.regs[ECX] = cx; }
    else { cx = (c.regs[ECX]! - 1) & 0xffff; c.regs[ECX] = (c.regs[ECX]! & 0xffff0000) | cx; }
    if (cx === 0 || stop) { c.eip = next(c, i); return; }
    // Each iteration retires as one instruction; leave EIP on the instruction when the budget
    // ends or something must be looked at between iterations.
    if (c.icount + 1 >= c.runTarget || c.brk !== 0 || (c.intrLine && (c.eflags & IF))) return;
    c.icount++;
  }
}

export function advance(c: Cpu, r: number, step: number, a32: boolean): void {
  if (a32) c.regs[r] = (c.regs[r]! + step) >>> 0;
  else c.regs[r] = (c.regs[r]! & 0xffff0000) | ((c.regs[r]! + step) & 0xffff);
}
