/**
 * Instruction helpers shared by the handlers (exec.ts, handlers.ts) and the record interpreter:
 * operands (r/m read and write, next EIP, near jumps), shifts and rotates, multiply and divide
 * (group 3), BCD adjustments, bit tests, INC/DEC and group 5 (CALL/JMP/PUSH r/m).
 */
import type { CpuCore as Cpu } from "./interrupts.ts";
import { EAX, EDX } from "./arch.ts";
import { CS, type Insn } from "./decode.ts";
import { OPFLAGS, OpF } from "./optable.ts";
import { AF, CF, MASK, OF, SIGN, BITS } from "./flags.ts";

export function next(c: Cpu, i: Insn): number {
  return c.code32 ? (c.eip + i.len) >>> 0 : (c.eip + i.len) & 0xffff;
}

export function opsz(i: Insn): number {
  return OPFLAGS[i.op]! & OpF.BYTE ? 0 : i.o32 ? 2 : 1;
}

/** Read the r/m operand. */
export function rmRead(c: Cpu, i: Insn, sz: number): number {
  if (i.mod === 3) return c.getReg(sz, i.rm);
  return c.rd(sz, c.seg(i), c.ea(i));
}

/** Write the r/m operand. */
export function rmWrite(c: Cpu, i: Insn, sz: number, v: number): void {
  if (i.mod === 3) c.setReg(sz, i.rm, v);
  else c.wr(sz, c.seg(i), c.ea(i), v);
}

export function jumpTo(c: Cpu, t: number, o32: boolean): void {
  t = o32 ? t >>> 0 : t & 0xffff;
  if (t > c.segLimit[CS]! && c.pe()) c.gp(0);
  c.eip = t;
}

export function ud(c: Cpu): never { return c.fault(6); }

// ---------------------------------------------------------------------------------------
// Shifts and rotates (count already masked to 5 bits by the caller).
// ---------------------------------------------------------------------------------------
export function shift(c: Cpu, op: number, v: number, cnt: number, sz: number): number {
  cnt &= 0x1f;
  const bits = BITS[sz]!, m = MASK[sz]!, sign = SIGN[sz]!;
  if (cnt === 0) return v;
  let r: number, cf: number, of: boolean;
  switch (op) {
    // Rotates: OF is defined for a count of 1 only. ROL/ROR set it by the count-1 rule applied
    // to the result. For RCL/RCR by other counts Intel CPUs set OF as a rotate by 1 of the
    // operand would (MSB XOR next bit for RCL, MSB XOR CF for RCR), and a count that is a
    // multiple of the width + 1 changes no flag (measured on an Intel Xeon, the native
    // difftest's oracle, with CL and immediate counts alike; ROL/ROR there keep OF for an
    // immediate count but not for CL, so they stay as they were). A legacy model keeps rrx's
    // old RCL/RCR rules.
    case 0: { // ROL
      const n = cnt % bits;
      r = n === 0 ? v : (((v << n) | (v >>> (bits - n))) & m) >>> 0;
      cf = r & 1;
      of = (((r & sign) !== 0 ? 1 : 0) ^ cf) !== 0;
      c.materialise();
      c.eflags = (c.eflags & ~(CF | OF)) | cf | (of ? OF : 0);
      return r;
    }
    case 1: { // ROR
      const n = cnt % bits;
      r = n === 0 ? v : (((v >>> n) | (v << (bits - n))) & m) >>> 0;
      cf = (r & sign) !== 0 ? 1 : 0;
      of = (((r & sign) !== 0) !== ((r & (sign >>> 1)) !== 0));
      c.materialise();
      c.eflags = (c.eflags & ~(CF | OF)) | cf | (of ? OF : 0);
      return r;
    }
    case 2: { // RCL
      const n = cnt % (bits + 1);
      if (n === 0 && !c.model.legacy) return v;
      c.materialise();
      let cfi = c.eflags & CF;
      r = v;
      for (let k = 0; k < n; k++) {
        const out = (r & sign) !== 0 ? 1 : 0;
        r = (((r << 1) | cfi) & m) >>> 0;
        cfi = out;
      }
      of = c.model.legacy ? (((r & sign) !== 0 ? 1 : 0) ^ cfi) !== 0 : ((v & sign) !== 0) !== ((v & (sign >>> 1)) !== 0);
      c.eflags = (c.eflags & ~(CF | OF)) | cfi | (of ? OF : 0);
      return r;
    }
    case 3: { // RCR
      const n = cnt % (bits + 1);
      if (n === 0 && !c.model.legacy) return v;
      c.materialise();
      let cfi = c.eflags & CF;
      r = v;
      of = (((r & sign) !== 0 ? 1 : 0) ^ cfi) !== 0;
      for (let k = 0; k < n; k++) {
        const out = r & 1;
        r = ((r >>> 1) | (cfi ? sign : 0)) >>> 0;
        cfi = out;
      }
      c.eflags = (c.eflags & ~(CF | OF)) | cfi | (of ? OF : 0);
      return r;
    }
    case 4: case 6: { // SHL/SAL
      if (cnt > bits) { r = 0; cf = 0; }
      else { r = cnt === 32 ? 0 : ((v << cnt) & m) >>> 0; cf = (v >>> (bits - cnt)) & 1; }
      of = (((r & sign) !== 0 ? 1 : 0) ^ cf) !== 0;
      c.setSZP(r, sz, cf, of);
      return r;
    }
    case 5: { // SHR
      r = cnt >= 32 ? 0 : (v >>> cnt);
      cf = cnt > bits ? 0 : (v >>> (cnt - 1)) & 1;
      of = (v & sign) !== 0;
      c.setSZP(r, sz, cf, of);
      return r;
    }
    default: { // SAR
      const sv = sz === 2 ? v | 0 : sz === 1 ? (v << 16) >> 16 : (v << 24) >> 24;
      const n = cnt > bits - 1 ? bits - 1 : cnt;
      r = ((sv >> n) & m) >>> 0;
      cf = cnt >= bits ? (sv < 0 ? 1 : 0) : (sv >> (cnt - 1)) & 1;
      c.setSZP(r, sz, cf, false);
      return r;
    }
  }
}

export function shiftDouble(c: Cpu, left: boolean, dst: number, src: number, cnt: number, sz: number): number {
  cnt &= 0x1f;
  if (cnt === 0) return dst;
  const bits = BITS[sz]!, m = MASK[sz]!, sign = SIGN[sz]!;
  let r: number, cf: number;
  if (sz === 1 && cnt > 16) {
    // Undefined result on hardware; behave like a 32-bit rotate through dst:src:dst (Intel).
    const wide = left ? ((dst << 16) | src) >>> 0 : ((src << 16) | dst) >>> 0;
    const big = left ? ((BigInt(wide) << 16n) | BigInt(dst)) : ((BigInt(dst) << 32n) | BigInt(wide));
    if (left) {
      const x = (big << BigInt(cnt)) >> 32n;
      r = Number(x & 0xffffn);
      cf = Number((big >> BigInt(48 - cnt)) & 1n);
    } else {
      const x = big >> BigInt(cnt);
      r = Number(x & 0xffffn);
      cf = Number((big >> BigInt(cnt - 1)) & 1n);
    }
  } else if (left) {
    r = cnt === bits ? src : (((dst << cnt) | (src >>> (bits - cnt))) & m) >>> 0;
    cf = (dst >>> (bits - cnt)) & 1;
  } else {
    r = cnt === bits ? src : (((dst >>> cnt) | (src << (bits - cnt))) & m) >>> 0;
    cf = (dst >>> (cnt - 1)) & 1;
  }
  const of = ((r ^ dst) & sign) !== 0;
  c.setSZP(r, sz, cf, of);
  return r;
}

// ---------------------------------------------------------------------------------------
// Multiply and divide
// ---------------------------------------------------------------------------------------
export function mul32(a: number, b: number): [number, number] {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  const lo = (((mid & 0xffff) << 16) | (ll & 0xffff)) >>> 0;
  const hi = (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0;
  return [lo, hi];
}

export function imul32(a: number, b: number): [number, number] {
  let [lo, hi] = mul32(a, b);
  if (a & 0x80000000) hi = (hi - b) >>> 0;
  if (b & 0x80000000) hi = (hi - a) >>> 0;
  return [lo, hi];
}

export function sext(v: number, sz: number): number {
  return sz === 2 ? v | 0 : sz === 1 ? (v << 16) >> 16 : (v << 24) >> 24;
}

export function grp3(c: Cpu, i: Insn, sz: number): void {
  const reg = i.reg;
  switch (reg) {
    case 0: case 1: { // TEST r/m, imm
      c.alu(4, rmRead(c, i, sz), i.imm & MASK[sz]!, sz);
      break;
    }
    case 2: { // NOT
      if (i.mod === 3) c.setReg(sz, i.rm, ~c.getReg(sz, i.rm));
      else { const s = c.seg(i), o = c.ea(i); c.wr(sz, s, o, ~c.rd(sz, s, o)); }
      break;
    }
    case 3: { // NEG
      if (i.mod === 3) c.setReg(sz, i.rm, c.alu(5, 0, c.getReg(sz, i.rm), sz));
      else { const s = c.seg(i), o = c.ea(i); const v = c.rdRmw(sz, s, o); c.wr(sz, s, o, c.alu(5, 0, v, sz)); }
      break;
    }
    case 4: case 5: { // MUL, IMUL (one operand)
      const src = rmRead(c, i, sz);
      if (sz === 0) {
        const a = c.regs[EAX]! & 0xff;
        const r = reg === 4 ? a * src : ((sext(a, 0) * sext(src, 0)) & 0xffff);
        c.setReg(1, EAX, r);
        const over = reg === 4 ? (r & 0xff00) !== 0 : sext(r & 0xff, 0) !== sext(r, 1);
        c.setSZP(r & 0xff, 0, over ? 1 : 0, over);
      } else if (sz === 1) {
        const a = c.regs[EAX]! & 0xffff;
        const r = reg === 4 ? a * src : (sext(a, 1) * sext(src, 1));
        const ru = r >>> 0;
        c.setReg(1, EAX, ru & 0xffff);
        c.setReg(1, EDX, (ru >>> 16) & 0xffff);
        const over = reg === 4 ? (ru >>> 16) !== 0 : sext(ru & 0xffff, 1) !== r;
        c.setSZP(ru & 0xffff, 1, over ? 1 : 0, over);
      } else {
        const a = c.regs[EAX]!;
        const [lo, hi] = reg === 4 ? mul32(a, src) : imul32(a, src);
        c.regs[EAX] = lo; c.regs[EDX] = hi;
        const over = reg === 4 ? hi !== 0 : hi !== ((lo & 0x80000000) ? 0xffffffff : 0);
        c.setSZP(lo, 2, over ? 1 : 0, over);
      }
      break;
    }
    case 6: case 7: { // DIV, IDIV
      const src = rmRead(c, i, sz);
      if (src === 0) c.fault(0);
      if (sz === 0) {
        const a = c.regs[EAX]! & 0xffff;
        if (reg === 6) {
          const q = Math.floor(a / src);
          if (q > 0xff) c.fault(0);
          c.setReg(1, EAX, ((a % src) << 8) | q);
        } else {
          const sa = sext(a, 1), sb = sext(src, 0);
          const q = Math.trunc(sa / sb);
          if (q > 127 || q < -128) c.fault(0);
          c.setReg(1, EAX, (((sa % sb) & 0xff) << 8) | (q & 0xff));
        }
      } else if (sz === 1) {
        const a = (((c.regs[EDX]! & 0xffff) << 16) | (c.regs[EAX]! & 0xffff)) >>> 0;
        if (reg === 6) {
          const q = Math.floor(a / src);
          if (q > 0xffff) c.fault(0);
          c.setReg(1, EAX, q); c.setReg(1, EDX, a % src);
        } else {
          const sa = a | 0, sb = sext(src, 1);
          const q = Math.trunc(sa / sb);
          if (q > 32767 || q < -32768) c.fault(0);
          c.setReg(1, EAX, q & 0xffff); c.setReg(1, EDX, (sa % sb) & 0xffff);
        }
      } else {
        const hi = c.regs[EDX]!, lo = c.regs[EAX]!;
        if (reg === 6) {
          if (hi >= src) c.fault(0);
          let q: number, r: number;
          if (hi < 0x200000) {
            const a = hi * 4294967296 + lo;
            q = Math.floor(a / src); r = a - q * src;
          } else {
            const a = (BigInt(hi) << 32n) | BigInt(lo), b = BigInt(src);
            q = Number(a / b); r = Number(a % b);
          }
          c.regs[EAX] = q; c.regs[EDX] = r;
        } else {
          const a = BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)), b = BigInt(src | 0);
          const q = a / b, r = a % b;
          if (q > 2147483647n || q < -2147483648n) c.fault(0);
          c.regs[EAX] = Number(BigInt.asUintN(32, q)); c.regs[EDX] = Number(BigInt.asUintN(32, r));
        }
      }
      break;
    }
  }
  c.eip = next(c, i);
}

// ---------------------------------------------------------------------------------------
// BCD
// ---------------------------------------------------------------------------------------
export function bcd(c: Cpu, op: number, imm: number): void {
  const f = c.getFlags();
  let al = c.regs[EAX]! & 0xff;
  let cf = f & CF, af = f & AF;
  switch (op) {
    case 0x27: { // DAA
      const oldAl = al, oldCf = cf;
      cf = 0;
      if ((al & 0x0f) > 9 || af) { al = (al + 6) & 0xff; cf = oldCf || (oldAl + 6 > 0xff ? 1 : 0); af = AF; } else af = 0;
      if (oldAl > 0x99 || oldCf) { al = (al + 0x60) & 0xff; cf = 1; } else cf = 0;
      c.setReg(0, EAX, al);
      c.setSZP(al, 0, cf, false, af !== 0);
      return;
    }
    case 0x2f: { // DAS
      const oldAl = al, oldCf = cf;
      cf = 0;
      if ((al & 0x0f) > 9 || af) { al = (al - 6) & 0xff; cf = oldCf || (oldAl < 6 ? 1 : 0); af = AF; } else af = 0;
      if (oldAl > 0x99 || oldCf) { al = (al - 0x60) & 0xff; cf = 1; }
      c.setReg(0, EAX, al);
      c.setSZP(al, 0, cf, false, af !== 0);
      return;
    }
    case 0x37: case 0x3f: { // AAA, AAS
      let ax = c.regs[EAX]! & 0xffff;
      if ((al & 0x0f) > 9 || af) {
        ax = op === 0x37 ? ax + 0x106 : ax - 0x106;
        af = AF; cf = 1;
      } else { af = 0; cf = 0; }
      ax = (ax & 0xff0f) & 0xffff;
      c.setReg(1, EAX, ax);
      c.setSZP(ax & 0xff, 0, cf, false, af !== 0);
      return;
    }
    case 0xd4: { // AAM
      if (imm === 0) c.fault(0);
      const ah = Math.floor(al / imm);
      al = al % imm;
      c.setReg(1, EAX, (ah << 8) | al);
      c.setSZP(al, 0, 0, false, false);
      return;
    }
    default: { // AAD
      const ah = (c.regs[EAX]! >>> 8) & 0xff;
      if (!c.model.legacy) {
        // OF, AF and CF are undefined (SDM); Intel CPUs set all six flags as the byte addition
        // AL + (AH * imm8 mod 256) does (measured on an Intel Xeon). A legacy model clears them.
        c.setReg(1, EAX, c.alu(0, al, (ah * imm) & 0xff, 0));
        return;
      }
      al = (al + ah * imm) & 0xff;
      c.setReg(1, EAX, al);
      c.setSZP(al, 0, 0, false, false);
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Bit operations
// ---------------------------------------------------------------------------------------
export function bitOp(c: Cpu, i: Insn, kind: number, bitIndex: number, fromReg: boolean): void {
  const sz = i.o32 ? 2 : 1;
  const bits = BITS[sz]!;
  let v: number, s = 0, o = 0;
  let bit: number;
  if (i.mod === 3) {
    bit = bitIndex & (bits - 1);
    v = c.getReg(sz, i.rm);
  } else {
    s = c.seg(i);
    o = c.ea(i);
    if (fromReg) {
      // The bit offset from a register is signed and can address outside the operand.
      const sb = sz === 2 ? bitIndex | 0 : (bitIndex << 16) >> 16;
      const wordOff = Math.floor(sb / bits) * (bits / 8);
      o = i.a32 ? (o + wordOff) >>> 0 : (o + wordOff) & 0xffff;
      bit = ((sb % bits) + bits) % bits;
    } else bit = bitIndex & (bits - 1);
    v = kind !== 0 ? c.rdRmw(sz, s, o) : c.rd(sz, s, o);
  }
  const mask = (1 << bit) >>> 0;
  const cf = (v & mask) !== 0 ? 1 : 0;
  c.materialise();
  c.eflags = (c.eflags & ~CF) | cf;
  if (kind !== 0) {
    let r: number;
    if (kind === 1) r = v | mask;         // BTS
    else if (kind === 2) r = v & ~mask;   // BTR
    else r = v ^ mask;                    // BTC
    r = (r & MASK[sz]!) >>> 0;
    if (i.mod === 3) c.setReg(sz, i.rm, r); else c.wr(sz, s, o, r);
  }
  c.eip = next(c, i);
}

export function incdec(c: Cpu, i: Insn, sz: number): void {
  const dec = i.reg === 1;
  if (i.mod === 3) {
    const v = c.getReg(sz, i.rm);
    c.setReg(sz, i.rm, dec ? c.dec(v, sz) : c.inc(v, sz));
  } else {
    const s = c.seg(i), o = c.ea(i);
    const v = c.rdRmw(sz, s, o);
    const r = dec ? c.dec(v, sz) : c.inc(v, sz);
    c.wr(sz, s, o, r);
  }
  c.eip = next(c, i);
}

export function grp5(c: Cpu, i: Insn): void {
  const sz = i.o32 ? 2 : 1;
  switch (i.reg) {
    case 0: case 1: incdec(c, i, sz); return;
    case 2: { // CALL near r/m
      const t = rmRead(c, i, sz);
      const nx = next(c, i);
      if (t > c.segLimit[CS]! && c.pe()) c.gp(0);
      c.push(i.o32, nx);
      c.eip = t;
      return;
    }
    case 3: case 5: { // CALL/JMP far m16:16/32
      if (i.mod === 3) ud(c);
      const s = c.seg(i), o = c.ea(i);
      const off = c.rd(sz, s, o);
      const sel = c.rd16(s, i.a32 ? (o + (1 << sz)) >>> 0 : (o + (1 << sz)) & 0xffff);
      c.farTransfer(sel, off, i.reg === 3, i.o32, next(c, i));
      c.modeChanged();
      return;
    }
    case 4: jumpTo(c, rmRead(c, i, sz), i.o32); return;
    case 6: c.push(i.o32, rmRead(c, i, sz)); c.eip = next(c, i); return;
    default: ud(c);
  }
}
