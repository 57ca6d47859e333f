/**
 * The generic instruction handler: one case per opcode-table row (helpers in ops.ts,
 * strings.ts and system.ts; handlers.ts picks a specialised handler where one exists, and the
 * record interpreter in interp.ts runs the commonest forms inline). Handlers leave `cpu.eip` at the start of
 * the instruction until they have done everything that can fault, so a faulting instruction
 * changes nothing and does not retire.
 */
import type { CpuCore as Cpu } from "./interrupts.ts";
import { EAX, ECX, EDX, EBX, ESP, EBP, CR4_DE, descLimit } from "./arch.ts";
import { CS, DS, ES, FS, GS, SS, type Insn } from "./decode.ts";
import { AC, AF, CF, DF, ID, IF, IOPL, MASK, NT, OF, PF, RF, SF, TF, ZF } from "./flags.ts";
import { next, opsz, rmRead, rmWrite, jumpTo, ud, shift, shiftDouble, imul32, sext, grp3, bcd, bitOp, incdec, grp5 } from "./ops.ts";
import { stringOp } from "./strings.ts";
import { esc, fwait } from "./x87.ts";
import { descCheck, setZF, grp6, grp7, softInt, cpuid, rdtsc, msr, rdpmc, sysenter, sysexit } from "./system.ts";

const SEG_OF_OP: Record<number, number> = { 0x06: ES, 0x07: ES, 0x0e: CS, 0x16: SS, 0x17: SS, 0x1e: DS, 0x1f: DS, 0x1a0: FS, 0x1a1: FS, 0x1a8: GS, 0x1a9: GS };

// ---------------------------------------------------------------------------------------
// The dispatcher
// ---------------------------------------------------------------------------------------
export function exec(c: Cpu, i: Insn): void {
  const op = i.op;
  if (op < 0x40 && (op & 7) < 6) {
    // ALU group: add/or/adc/sbb/and/sub/xor/cmp
    const kind = op >> 3, form = op & 7;
    const sz = form & 1 ? (i.o32 ? 2 : 1) : 0;
    switch (form) {
      case 0: case 1: {
        const b = c.getReg(sz, i.reg);
        if (i.mod === 3) {
          const r = c.alu(kind, c.getReg(sz, i.rm), b, sz);
          if (kind !== 7) c.setReg(sz, i.rm, r);
        } else {
          const s = c.seg(i), o = c.ea(i);
          const r = c.alu(kind, kind !== 7 ? c.rdRmw(sz, s, o) : c.rd(sz, s, o), b, sz);
          if (kind !== 7) c.wr(sz, s, o, r);
        }
        break;
      }
      case 2: case 3: {
        const r = c.alu(kind, c.getReg(sz, i.reg), rmRead(c, i, sz), sz);
        if (kind !== 7) c.setReg(sz, i.reg, r);
        break;
      }
      case 4: {
        const r = c.alu(kind, c.regs[EAX]! & 0xff, i.imm, 0);
        if (kind !== 7) c.setReg(0, EAX, r);
        break;
      }
      default: {
        const s2 = i.o32 ? 2 : 1;
        const r = c.alu(kind, c.getReg(s2, EAX), (i.imm & MASK[s2]!) >>> 0, s2);
        if (kind !== 7) c.setReg(s2, EAX, r);
        break;
      }
    }
    c.eip = next(c, i);
    return;
  }
  switch (op) {
    // ---- segment push/pop ----
    case 0x06: case 0x0e: case 0x16: case 0x1e: case 0x1a0: case 0x1a8:
      c.push(i.o32, c.sel[SEG_OF_OP[op]!]!);
      c.eip = next(c, i);
      return;
    case 0x07: case 0x17: case 0x1f: case 0x1a1: case 0x1a9: {
      const s = SEG_OF_OP[op]!;
      const v = c.peek(i.o32);
      // The stack pointer moves by the size of the stack popped from, even when the new SS
      // changes it (POP SS from a 16-bit stack into a 32-bit one), and only once the load is done.
      const w = i.o32 ? 4 : 2, sp = c.regs[ESP]!;
      const nsp = c.stack32 ? (sp + w) >>> 0 : ((sp & 0xffff0000) | ((sp + w) & 0xffff)) >>> 0;
      c.loadSeg(s, v);
      c.regs[ESP] = nsp;
      if (s === SS) c.inhibit = true;
      c.eip = next(c, i);
      return;
    }
    case 0x27: case 0x2f: case 0x37: case 0x3f:
      bcd(c, op, 0); c.eip = next(c, i); return;
    case 0x26: case 0x2e: case 0x36: case 0x3e:
      return ud(c);

    // ---- inc/dec/push/pop reg ----
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47: {
      const sz = i.o32 ? 2 : 1, r = op & 7;
      c.setReg(sz, r, c.inc(c.getReg(sz, r), sz));
      c.eip = next(c, i);
      return;
    }
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f: {
      const sz = i.o32 ? 2 : 1, r = op & 7;
      c.setReg(sz, r, c.dec(c.getReg(sz, r), sz));
      c.eip = next(c, i);
      return;
    }
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
      c.push(i.o32, c.getReg(i.o32 ? 2 : 1, op & 7));
      c.eip = next(c, i);
      return;
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f: {
      const v = c.peek(i.o32);
      c.adjSp(i.o32 ? 4 : 2);
      c.setReg(i.o32 ? 2 : 1, op & 7, v);
      c.eip = next(c, i);
      return;
    }
    case 0x60: { // PUSHA
      const sz = i.o32 ? 2 : 1, w = i.o32 ? 4 : 2;
      const sp = c.regs[ESP]!;
      // Each push wraps within a 16-bit stack, as separate pushes would; every slot is checked
      // before any is written. A slot straddling offset 0xFFFF is #GP in real mode (SDM PUSHA:
      // SP = 7, 9, 11, 13 or 15), else the segment limit's #SS.
      const at = (r: number) => c.stack32 ? (sp - (r + 1) * w) >>> 0 : (sp - (r + 1) * w) & 0xffff;
      for (let r = 0; r < 8; r++) {
        const a = at(r);
        if (!c.stack32 && !c.pe() && a + w > 0x10000) c.gp(0);
        c.lin(SS, a, w, true);
      }
      for (let r = 0; r < 8; r++) {
        const v = r === ESP ? (sz === 2 ? sp : sp & 0xffff) : c.getReg(sz, r);
        c.wr(sz, SS, at(r), v);
      }
      c.adjSp(-8 * w);
      c.eip = next(c, i);
      return;
    }
    case 0x61: { // POPA
      const sz = i.o32 ? 2 : 1, w = i.o32 ? 4 : 2;
      const vals: number[] = [];
      for (let r = 7; r >= 0; r--) vals[r] = c.peek(i.o32, (7 - r) * w);
      for (let r = 0; r < 8; r++) if (r !== ESP) c.setReg(sz, r, vals[r]!);
      c.adjSp(8 * w);
      c.eip = next(c, i);
      return;
    }
    case 0x62: { // BOUND
      if (i.mod === 3) return ud(c);
      const sz = i.o32 ? 2 : 1, s = c.seg(i), o = c.ea(i);
      // The upper bound follows the lower one within the address size (16-bit: wraps at 64 KiB).
      const o2 = i.a32 ? (o + (1 << sz)) >>> 0 : (o + (1 << sz)) & 0xffff;
      const lo = sext(c.rd(sz, s, o), sz), hi = sext(c.rd(sz, s, o2), sz);
      const v = sext(c.getReg(sz, i.reg), sz);
      if (v < lo || v > hi) c.fault(5);
      c.eip = next(c, i);
      return;
    }
    case 0x63: { // ARPL
      if (!c.pe() || c.v86()) return ud(c);
      const dst = rmRead(c, i, 1), src = c.getReg(1, i.reg);
      c.materialise();
      if ((dst & 3) < (src & 3)) {
        rmWrite(c, i, 1, (dst & ~3) | (src & 3));
        c.eflags |= ZF;
      } else c.eflags &= ~ZF;
      c.eip = next(c, i);
      return;
    }
    case 0x68: c.push(i.o32, i.imm); c.eip = next(c, i); return;
    case 0x6a: c.push(i.o32, (sext(i.imm, 0) & MASK[i.o32 ? 2 : 1]!) >>> 0); c.eip = next(c, i); return;
    case 0x69: case 0x6b: case 0x1af: { // IMUL r, r/m(, imm)
      const sz = i.o32 ? 2 : 1;
      const a = rmRead(c, i, sz);
      const b = op === 0x1af ? c.getReg(sz, i.reg) : op === 0x6b ? (sext(i.imm, 0) & MASK[sz]!) >>> 0 : i.imm;
      let r: number, over: boolean;
      if (sz === 2) {
        const [lo, hi] = imul32(a, b);
        r = lo; over = hi !== ((lo & 0x80000000) ? 0xffffffff : 0);
      } else {
        const p = sext(a, 1) * sext(b, 1);
        r = p & 0xffff; over = sext(r, 1) !== p;
      }
      c.setReg(sz, i.reg, r);
      c.setSZP(r, sz, over ? 1 : 0, over);
      c.eip = next(c, i);
      return;
    }
    case 0x6c: case 0x6d: stringOp(c, i, 5, op === 0x6c ? 0 : i.o32 ? 2 : 1); return;
    case 0x6e: case 0x6f: stringOp(c, i, 6, op === 0x6e ? 0 : i.o32 ? 2 : 1); return;

    // ---- jcc ----
    case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
    case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f:
    case 0x180: case 0x181: case 0x182: case 0x183: case 0x184: case 0x185: case 0x186: case 0x187:
    case 0x188: case 0x189: case 0x18a: case 0x18b: case 0x18c: case 0x18d: case 0x18e: case 0x18f: {
      const nx = next(c, i);
      if (c.cond(op & 0xf)) jumpTo(c, nx + i.imm, i.o32);
      else c.eip = nx;
      return;
    }

    // ---- group 1 ----
    case 0x80: case 0x81: case 0x82: case 0x83: {
      const sz = op === 0x81 || op === 0x83 ? (i.o32 ? 2 : 1) : 0;
      const imm = op === 0x83 ? (sext(i.imm, 0) & MASK[sz]!) >>> 0 : i.imm & MASK[sz]!;
      const kind = i.reg;
      if (i.mod === 3) {
        const r = c.alu(kind, c.getReg(sz, i.rm), imm >>> 0, sz);
        if (kind !== 7) c.setReg(sz, i.rm, r);
      } else {
        const s = c.seg(i), o = c.ea(i);
        const r = c.alu(kind, kind !== 7 ? c.rdRmw(sz, s, o) : c.rd(sz, s, o), imm >>> 0, sz);
        if (kind !== 7) c.wr(sz, s, o, r);
      }
      c.eip = next(c, i);
      return;
    }
    case 0x84: case 0x85: {
      const sz = opsz(i);
      c.alu(4, rmRead(c, i, sz), c.getReg(sz, i.reg), sz);
      c.eip = next(c, i);
      return;
    }
    case 0x86: case 0x87: { // XCHG r/m, r
      const sz = opsz(i);
      if (i.mod === 3) {
        const a = c.getReg(sz, i.rm), b = c.getReg(sz, i.reg);
        c.setReg(sz, i.rm, b); c.setReg(sz, i.reg, a);
      } else {
        const s = c.seg(i), o = c.ea(i);
        const a = c.rd(sz, s, o);
        c.wr(sz, s, o, c.getReg(sz, i.reg));
        c.setReg(sz, i.reg, a);
      }
      c.eip = next(c, i);
      return;
    }
    case 0x88: case 0x89: { const sz = opsz(i); rmWrite(c, i, sz, c.getReg(sz, i.reg)); c.eip = next(c, i); return; }
    case 0x8a: case 0x8b: { const sz = opsz(i); c.setReg(sz, i.reg, rmRead(c, i, sz)); c.eip = next(c, i); return; }
    case 0x8c: { // MOV r/m, Sreg
      if (i.reg > 5) return ud(c);
      const v = c.sel[i.reg]!;
      if (i.mod === 3) c.setReg(i.o32 ? 2 : 1, i.rm, v); else c.wr16(c.seg(i), c.ea(i), v);
      c.eip = next(c, i);
      return;
    }
    case 0x8d: { // LEA
      if (i.mod === 3) return ud(c);
      c.setReg(i.o32 ? 2 : 1, i.reg, c.ea(i));
      c.eip = next(c, i);
      return;
    }
    case 0x8e: { // MOV Sreg, r/m
      if (i.reg > 5 || i.reg === CS) return ud(c);
      const v = rmRead(c, i, 1);
      c.loadSeg(i.reg, v);
      if (i.reg === SS) c.inhibit = true;
      c.eip = next(c, i);
      return;
    }
    case 0x8f: { // POP r/m
      if (i.reg !== 0) return ud(c);
      const v = c.peek(i.o32);
      const w = i.o32 ? 4 : 2;
      // The address is computed with ESP already incremented.
      c.adjSp(w);
      try { rmWrite(c, i, i.o32 ? 2 : 1, v); } catch (e) { c.adjSp(-w); throw e; }
      c.eip = next(c, i);
      return;
    }
    case 0x90: c.eip = next(c, i); return;
    case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97: {
      const sz = i.o32 ? 2 : 1, r = op & 7;
      const a = c.getReg(sz, EAX);
      c.setReg(sz, EAX, c.getReg(sz, r)); c.setReg(sz, r, a);
      c.eip = next(c, i);
      return;
    }
    case 0x98: // CBW/CWDE
      if (i.o32) c.regs[EAX] = sext(c.regs[EAX]! & 0xffff, 1);
      else c.setReg(1, EAX, sext(c.regs[EAX]! & 0xff, 0));
      c.eip = next(c, i);
      return;
    case 0x99: // CWD/CDQ
      if (i.o32) c.regs[EDX] = (c.regs[EAX]! & 0x80000000) ? 0xffffffff : 0;
      else c.setReg(1, EDX, (c.regs[EAX]! & 0x8000) ? 0xffff : 0);
      c.eip = next(c, i);
      return;
    case 0x9a: c.farTransfer(i.imm2, i.imm, true, i.o32, next(c, i)); c.modeChanged(); return;
    case 0x9b: fwait(c, i); return;
    case 0x9c: { // PUSHF
      if (c.v86() && (c.eflags & IOPL) !== IOPL) c.gp(0);
      const f = c.getFlags() & ~(RF | 0x20000);
      c.push(i.o32, i.o32 ? f : f & 0xffff);
      c.eip = next(c, i);
      return;
    }
    case 0x9d: { // POPF
      if (c.v86() && (c.eflags & IOPL) !== IOPL) c.gp(0);
      const v = c.peek(i.o32);
      c.adjSp(i.o32 ? 4 : 2);
      const old = c.getFlags();
      let mask = CF | PF | AF | ZF | SF | TF | DF | OF | NT;
      if (i.o32) mask |= AC | ID;
      const iopl = (old & IOPL) >>> 12;
      if (!c.pe() || c.cpl === 0) mask |= IOPL;
      if (!c.pe() || c.cpl <= iopl) mask |= IF;
      c.setFlags((old & ~mask) | (v & mask));
      c.eip = next(c, i);
      return;
    }
    case 0x9e: { // SAHF
      const ah = (c.regs[EAX]! >>> 8) & 0xff;
      const f = c.getFlags();
      c.setArith((f & ~(SF | ZF | AF | PF | CF)) | (ah & (SF | ZF | AF | PF | CF)));
      c.eip = next(c, i);
      return;
    }
    case 0x9f: c.setReg(0, 4, (c.getFlags() & 0xd5) | 2); c.eip = next(c, i); return; // LAHF -> AH
    case 0xa0: case 0xa1: {
      const sz = opsz(i);
      c.setReg(sz, EAX, c.rd(sz, i.seg >= 0 ? i.seg : DS, i.disp >>> 0));
      c.eip = next(c, i);
      return;
    }
    case 0xa2: case 0xa3: {
      const sz = opsz(i);
      c.wr(sz, i.seg >= 0 ? i.seg : DS, i.disp >>> 0, c.getReg(sz, EAX));
      c.eip = next(c, i);
      return;
    }
    case 0xa4: case 0xa5: stringOp(c, i, 0, opsz(i)); return;
    case 0xa6: case 0xa7: stringOp(c, i, 1, opsz(i)); return;
    case 0xa8: case 0xa9: {
      const sz = opsz(i);
      c.alu(4, c.getReg(sz, EAX), i.imm & MASK[sz]!, sz);
      c.eip = next(c, i);
      return;
    }
    case 0xaa: case 0xab: stringOp(c, i, 2, opsz(i)); return;
    case 0xac: case 0xad: stringOp(c, i, 3, opsz(i)); return;
    case 0xae: case 0xaf: stringOp(c, i, 4, opsz(i)); return;
    case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
      c.setReg(0, op & 7, i.imm); c.eip = next(c, i); return;
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
      c.setReg(i.o32 ? 2 : 1, op & 7, i.imm >>> 0); c.eip = next(c, i); return;

    // ---- group 2: shifts ----
    case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
      const sz = opsz(i);
      const cnt = op <= 0xc1 ? i.imm : op <= 0xd1 ? 1 : c.regs[ECX]! & 0xff;
      if (i.mod === 3) c.setReg(sz, i.rm, shift(c, i.reg, c.getReg(sz, i.rm), cnt, sz));
      else {
        const s = c.seg(i), o = c.ea(i);
        const v = c.rdRmw(sz, s, o);
        c.wr(sz, s, o, shift(c, i.reg, v, cnt, sz));
      }
      c.eip = next(c, i);
      return;
    }
    case 0xc2: case 0xc3: { // RET near
      const t = c.peek(i.o32);
      jumpTo(c, t, i.o32);
      c.adjSp((i.o32 ? 4 : 2) + (op === 0xc2 ? i.imm : 0));
      return;
    }
    case 0xc4: case 0xc5: case 0x1b2: case 0x1b4: case 0x1b5: { // LES/LDS/LSS/LFS/LGS
      if (i.mod === 3) return ud(c);
      const sz = i.o32 ? 2 : 1, s = c.seg(i), o = c.ea(i);
      const off = c.rd(sz, s, o);
      const sel = c.rd16(s, i.a32 ? (o + (1 << sz)) >>> 0 : (o + (1 << sz)) & 0xffff);
      const seg = op === 0xc4 ? ES : op === 0xc5 ? DS : op === 0x1b2 ? SS : op === 0x1b4 ? FS : GS;
      c.loadSeg(seg, sel);
      c.setReg(sz, i.reg, off);
      c.eip = next(c, i);
      return;
    }
    case 0xc6: case 0xc7: {
      if (i.reg !== 0) return ud(c);
      rmWrite(c, i, opsz(i), i.imm);
      c.eip = next(c, i);
      return;
    }
    case 0xc8: { // ENTER (SDM: the frame pointer is as wide as the operand, the stack pointer as the stack)
      const sz = i.o32 ? 2 : 1, w = 1 << sz;
      const level = i.imm2 & 0x1f;
      const esp0 = c.regs[ESP]!, ebp0 = c.regs[EBP]!;
      try {
        c.push(i.o32, sz === 2 ? ebp0 : ebp0 & 0xffff);
        const frame = sz === 2 ? c.regs[ESP]! : c.regs[ESP]! & 0xffff; // FrameTemp
        let bp = ebp0;
        for (let k = 1; k < level; k++) {
          bp = c.stack32 ? (bp - w) >>> 0 : (bp - w) & 0xffff;
          c.push(i.o32, c.rd(sz, SS, bp));
        }
        if (level > 0) c.push(i.o32, frame);
        c.adjSp(-i.imm);
        // "A page fault whenever a write using the final value of the stack pointer (within the
        // current stack segment) would do so" (SDM ENTER): the segment, then paging.
        const top = c.stack32 ? c.regs[ESP]! : c.regs[ESP]! & 0xffff;
        c.probeWrite(c.lin(SS, top, w, true));
        c.setReg(sz, EBP, frame);
      } catch (e) {
        c.regs[ESP] = esp0;
        throw e;
      }
      c.eip = next(c, i);
      return;
    }
    case 0xc9: { // LEAVE
      const bp = c.stack32 ? c.regs[EBP]! : c.regs[EBP]! & 0xffff;
      const v = i.o32 ? c.rd32(SS, bp) : c.rd16(SS, bp);
      c.setReg(c.stack32 ? 2 : 1, ESP, bp);
      c.adjSp(i.o32 ? 4 : 2);
      c.setReg(i.o32 ? 2 : 1, EBP, v);
      c.eip = next(c, i);
      return;
    }
    case 0xca: case 0xcb: c.farReturn(i.o32, op === 0xca ? i.imm : 0); c.modeChanged(); return;
    case 0xcc: softInt(c, i, 3); return;
    case 0xcd: // INT n (IOPL-sensitive in virtual-8086 mode; INT3 and INTO are not)
      if (c.v86() && (c.eflags & IOPL) !== IOPL) c.gp(0);
      softInt(c, i, i.imm);
      return;
    case 0xce: if (c.of()) softInt(c, i, 4); else c.eip = next(c, i); return;
    case 0xf1: softInt(c, i, 1); return;
    case 0xcf: c.iret(i.o32, next(c, i)); c.modeChanged(); return;
    case 0xd4: case 0xd5: bcd(c, op, i.imm); c.eip = next(c, i); return;
    case 0xd6: c.setReg(0, EAX, c.cf() ? 0xff : 0); c.eip = next(c, i); return;
    case 0xd7: { // XLAT
      const off = i.a32 ? (c.regs[EBX]! + (c.regs[EAX]! & 0xff)) >>> 0 : (c.regs[EBX]! + (c.regs[EAX]! & 0xff)) & 0xffff;
      c.setReg(0, EAX, c.rd8(i.seg >= 0 ? i.seg : DS, off));
      c.eip = next(c, i);
      return;
    }
    case 0xd8: case 0xd9: case 0xda: case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf:
      esc(c, i); return;
    case 0xe0: case 0xe1: case 0xe2: { // LOOPNE/LOOPE/LOOP
      const nx = next(c, i);
      let cx: number;
      if (i.a32) { cx = (c.regs[ECX]! - 1) >>> 0; } else { cx = (c.regs[ECX]! - 1) & 0xffff; }
      const take = cx !== 0 && (op === 0xe2 || (op === 0xe1 ? c.zf() : !c.zf()));
      if (take) jumpTo(c, nx + i.imm, i.o32);
      if (i.a32) c.regs[ECX] = cx; else c.regs[ECX] = (c.regs[ECX]! & 0xffff0000) | cx;
      if (!take) c.eip = nx;
      return;
    }
    case 0xe3: { // JCXZ/JECXZ
      const nx = next(c, i);
      const cx = i.a32 ? c.regs[ECX]! : c.regs[ECX]! & 0xffff;
      if (cx === 0) jumpTo(c, nx + i.imm, i.o32); else c.eip = nx;
      return;
    }
    case 0xe4: case 0xe5: case 0xec: case 0xed: { // IN
      const sz = opsz(i), w = 1 << sz;
      const port = op <= 0xe5 ? i.imm : c.regs[EDX]! & 0xffff;
      c.checkIo(port, w);
      c.setReg(sz, EAX, c.bus.ioRead(port, w as 1 | 2 | 4));
      c.eip = next(c, i);
      return;
    }
    case 0xe6: case 0xe7: case 0xee: case 0xef: { // OUT
      const sz = opsz(i), w = 1 << sz;
      const port = op <= 0xe7 ? i.imm : c.regs[EDX]! & 0xffff;
      c.checkIo(port, w);
      c.eip = next(c, i);
      try { c.bus.ioWrite(port, w as 1 | 2 | 4, c.getReg(sz, EAX)); } catch (e) { c.eip = (c.eip - i.len) >>> 0; throw e; }
      return;
    }
    case 0xe8: { // CALL rel
      const nx = next(c, i);
      const t = i.o32 ? (nx + i.imm) >>> 0 : (nx + i.imm) & 0xffff;
      if (t > c.segLimit[CS]! && c.pe()) c.gp(0);
      c.push(i.o32, nx);
      c.eip = t;
      return;
    }
    case 0xe9: case 0xeb: jumpTo(c, next(c, i) + i.imm, i.o32); return;
    case 0xea: c.farTransfer(i.imm2, i.imm, false, i.o32, next(c, i)); c.modeChanged(); return;
    case 0xf4: // HLT
      if (c.pe() && c.cpl !== 0) c.gp(0);
      c.eip = next(c, i);
      c.halted = true;
      return;
    case 0xf5: c.materialise(); c.eflags ^= CF; c.eip = next(c, i); return;
    case 0xf6: case 0xf7: grp3(c, i, opsz(i)); return;
    case 0xf8: c.materialise(); c.eflags &= ~CF; c.eip = next(c, i); return;
    case 0xf9: c.materialise(); c.eflags |= CF; c.eip = next(c, i); return;
    case 0xfa: // CLI
      if (c.pe() && c.cpl > ((c.eflags & IOPL) >>> 12)) c.gp(0);
      c.eflags &= ~IF;
      c.eip = next(c, i);
      return;
    case 0xfb: // STI
      if (c.pe() && c.cpl > ((c.eflags & IOPL) >>> 12)) c.gp(0);
      if (!(c.eflags & IF)) c.inhibit = true;
      c.eflags |= IF;
      c.eip = next(c, i);
      return;
    case 0xfc: c.eflags &= ~DF; c.eip = next(c, i); return;
    case 0xfd: c.eflags |= DF; c.eip = next(c, i); return;
    case 0xfe: { // INC/DEC r/m8
      if (i.reg > 1) return ud(c);
      incdec(c, i, 0);
      return;
    }
    case 0xff: grp5(c, i); return;

    // ---- two-byte opcodes ----
    case 0x100: grp6(c, i); return;
    case 0x101: grp7(c, i); return;
    case 0x102: case 0x103: { // LAR, LSL
      if (!c.pe() || c.v86()) return ud(c);
      const sel = rmRead(c, i, 1);
      const r = descCheck(c, sel, op === 0x103);
      if (r.ok) {
        const sz = i.o32 ? 2 : 1;
        if (op === 0x102) c.setReg(sz, i.reg, (r.hi & 0x00f0ff00) >>> 0);
        else c.setReg(sz, i.reg, descLimit(r.lo, r.hi));
      }
      setZF(c, r.ok);
      c.eip = next(c, i);
      return;
    }
    case 0x106: // CLTS
      if (c.pe() && c.cpl !== 0) c.gp(0);
      c.cr0 = (c.cr0 & ~8) >>> 0;
      c.eip = next(c, i);
      return;
    case 0x108: case 0x109: // INVD, WBINVD
      if (c.pe() && c.cpl !== 0) c.gp(0);
      c.eip = next(c, i);
      return;
    case 0x11f: c.eip = next(c, i); return; // NOP r/m
    case 0x120: case 0x121: case 0x122: case 0x123: { // MOV r32, CRn / DRn and back
      if (c.pe() && c.cpl !== 0) c.gp(0);
      const n = i.reg;
      if (op === 0x120) c.regs[i.rm] = c.readCr(n);
      else if (op === 0x122) c.writeCr(n, c.regs[i.rm]!);
      else if (op === 0x121) {
        if ((n === 4 || n === 5) && (c.cr4 & CR4_DE) && !c.model.legacy) return ud(c); // DR4/DR5 with CR4.DE
        const d = n === 4 ? 6 : n === 5 ? 7 : n;
        c.regs[i.rm] = c.dr[d]!;
      } else {
        if ((n === 4 || n === 5) && (c.cr4 & CR4_DE) && !c.model.legacy) return ud(c);
        const d = n === 4 ? 6 : n === 5 ? 7 : n;
        c.dr[d] = c.regs[i.rm]!;
      }
      c.eip = next(c, i);
      return;
    }
    case 0x130: msr(c, i, true); return; // WRMSR
    case 0x131: rdtsc(c, i); return;
    case 0x132: msr(c, i, false); return; // RDMSR
    case 0x133: rdpmc(c, i); return;
    case 0x134: sysenter(c); return;
    case 0x135: sysexit(c); return;
    case 0x140: case 0x141: case 0x142: case 0x143: case 0x144: case 0x145: case 0x146: case 0x147:
    case 0x148: case 0x149: case 0x14a: case 0x14b: case 0x14c: case 0x14d: case 0x14e: case 0x14f: {
      const sz = i.o32 ? 2 : 1;
      const v = rmRead(c, i, sz); // the source is read (and may fault) even if not moved
      if (c.cond(op & 0xf)) c.setReg(sz, i.reg, v);
      else if (sz === 2) c.regs[i.reg] = c.regs[i.reg]!; // 32-bit form: no change in 32-bit mode
      c.eip = next(c, i);
      return;
    }
    case 0x190: case 0x191: case 0x192: case 0x193: case 0x194: case 0x195: case 0x196: case 0x197:
    case 0x198: case 0x199: case 0x19a: case 0x19b: case 0x19c: case 0x19d: case 0x19e: case 0x19f:
      rmWrite(c, i, 0, c.cond(op & 0xf) ? 1 : 0);
      c.eip = next(c, i);
      return;
    case 0x1a2: cpuid(c); c.eip = next(c, i); return;
    case 0x1a3: bitOp(c, i, 0, c.getReg(i.o32 ? 2 : 1, i.reg), true); return;
    case 0x1ab: bitOp(c, i, 1, c.getReg(i.o32 ? 2 : 1, i.reg), true); return;
    case 0x1b3: bitOp(c, i, 2, c.getReg(i.o32 ? 2 : 1, i.reg), true); return;
    case 0x1bb: bitOp(c, i, 3, c.getReg(i.o32 ? 2 : 1, i.reg), true); return;
    case 0x1ba: {
      if (i.reg < 4) return ud(c);
      bitOp(c, i, i.reg - 4, i.imm, false);
      return;
    }
    case 0x1a4: case 0x1a5: case 0x1ac: case 0x1ad: { // SHLD/SHRD
      const sz = i.o32 ? 2 : 1;
      const cnt = (op & 1) ? c.regs[ECX]! & 0xff : i.imm;
      const left = op < 0x1a8;
      const src = c.getReg(sz, i.reg);
      if (i.mod === 3) c.setReg(sz, i.rm, shiftDouble(c, left, c.getReg(sz, i.rm), src, cnt, sz));
      else {
        const s = c.seg(i), o = c.ea(i);
        const v = c.rdRmw(sz, s, o);
        c.wr(sz, s, o, shiftDouble(c, left, v, src, cnt, sz));
      }
      c.eip = next(c, i);
      return;
    }
    case 0x1b0: case 0x1b1: { // CMPXCHG
      const sz = opsz(i);
      const acc = c.getReg(sz, EAX);
      if (i.mod === 3) {
        const d = c.getReg(sz, i.rm);
        c.alu(7, acc, d, sz);
        if (acc === d) c.setReg(sz, i.rm, c.getReg(sz, i.reg)); else c.setReg(sz, EAX, d);
      } else {
        const s = c.seg(i), o = c.ea(i);
        const d = c.rd(sz, s, o);
        const eq = acc === d;
        // The destination is always written (with its old value on failure).
        c.wr(sz, s, o, eq ? c.getReg(sz, i.reg) : d);
        c.alu(7, acc, d, sz);
        if (!eq) c.setReg(sz, EAX, d);
      }
      c.eip = next(c, i);
      return;
    }
    case 0x1b6: case 0x1b7: case 0x1be: case 0x1bf: { // MOVZX/MOVSX
      const ssz = op & 1 ? 1 : 0;
      let v = rmRead(c, i, ssz);
      if (op >= 0x1be) v = sext(v, ssz);
      c.setReg(i.o32 ? 2 : 1, i.reg, v >>> 0);
      c.eip = next(c, i);
      return;
    }
    case 0x1bc: case 0x1bd: { // BSF/BSR
      const sz = i.o32 ? 2 : 1;
      const v = rmRead(c, i, sz);
      c.materialise();
      if (v === 0) { c.eflags |= ZF; }
      else {
        const r = op === 0x1bc ? 31 - Math.clz32(v & -v) : 31 - Math.clz32(v);
        c.setReg(sz, i.reg, r);
        c.eflags &= ~ZF;
      }
      c.eip = next(c, i);
      return;
    }
    case 0x1c0: case 0x1c1: { // XADD
      const sz = opsz(i);
      const src = c.getReg(sz, i.reg);
      if (i.mod === 3) {
        const d = c.getReg(sz, i.rm);
        const r = c.alu(0, d, src, sz);
        c.setReg(sz, i.reg, d); c.setReg(sz, i.rm, r);
      } else {
        const s = c.seg(i), o = c.ea(i);
        const d = c.rdRmw(sz, s, o);
        const r = c.alu(0, d, src, sz);
        c.wr(sz, s, o, r);
        c.setReg(sz, i.reg, d);
      }
      c.eip = next(c, i);
      return;
    }
    case 0x1c7: { // CMPXCHG8B
      if (i.reg !== 1 || i.mod === 3) return ud(c);
      const s = c.seg(i), o = c.ea(i), o2 = i.a32 ? (o + 4) >>> 0 : (o + 4) & 0xffff;
      const lo = c.rd32(s, o), hi = c.rd32(s, o2);
      // Both halves are written, the old value back on failure (a locked read-modify-write):
      // both must be writable before either is written, so a fault changes nothing.
      const l1 = c.lin(s, o, 4, true), l2 = c.lin(s, o2, 4, true);
      c.checkWritable(l1); c.checkWritable((l1 + 3) >>> 0); c.checkWritable(l2); c.checkWritable((l2 + 3) >>> 0);
      c.materialise();
      if (lo === c.regs[EAX] && hi === c.regs[EDX]) {
        c.wr32(s, o, c.regs[EBX]!); c.wr32(s, o2, c.regs[ECX]!);
        c.eflags |= ZF;
      } else {
        c.wr32(s, o, lo); c.wr32(s, o2, hi);
        c.regs[EAX] = lo; c.regs[EDX] = hi;
        c.eflags &= ~ZF;
      }
      c.eip = next(c, i);
      return;
    }
    case 0x1c8: case 0x1c9: case 0x1ca: case 0x1cb: case 0x1cc: case 0x1cd: case 0x1ce: case 0x1cf: {
      const r = op & 7, v = c.regs[r]!;
      if (i.o32) c.regs[r] = ((v >>> 24) | ((v >>> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24)) >>> 0;
      else c.setReg(1, r, 0); // BSWAP with a 16-bit operand is undefined; hardware zeroes it
      c.eip = next(c, i);
      return;
    }
    default:
      return ud(c);
  }
}
