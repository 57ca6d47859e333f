/**
 * The interpreter: one case per opcode-table row. Handlers leave `cpu.eip` at the start of
 * the instruction until they have done everything that can fault, so a faulting instruction
 * changes nothing and does not retire.
 */
import type { Cpu } from "./cpu.ts";
import { EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI, descAr, descBase, descLimit, AR_P, AR_S, AR_CODE } from "./cpu.ts";
import { CS, DS, ES, FS, GS, SS, REP_E, REP_NE, REP_NONE, type Insn } from "./decode.ts";
import { OPFLAGS, OpF } from "./optable.ts";
import { AC, AF, CF, DF, ID, IF, IOPL, LF_EAGER, MASK, NT, OF, PARITY, PF, RF, SF, SIGN, TF, ZF, BITS } from "./flags.ts";

const SEG_OF_OP: Record<number, number> = { 0x06: ES, 0x07: ES, 0x0e: CS, 0x16: SS, 0x17: SS, 0x1e: DS, 0x1f: DS, 0x1a0: FS, 0x1a1: FS, 0x1a8: GS, 0x1a9: GS };

function next(c: Cpu, i: Insn): number {
  return c.code32 ? (c.eip + i.len) >>> 0 : (c.eip + i.len) & 0xffff;
}

function opsz(i: Insn): number {
  return OPFLAGS[i.op]! & OpF.BYTE ? 0 : i.o32 ? 2 : 1;
}

/** Read the r/m operand. */
function rmRead(c: Cpu, i: Insn, sz: number): number {
  if (i.mod === 3) return c.getReg(sz, i.rm);
  return c.rd(sz, c.seg(i), c.ea(i));
}

/** Write the r/m operand. */
function rmWrite(c: Cpu, i: Insn, sz: number, v: number): void {
  if (i.mod === 3) c.setReg(sz, i.rm, v);
  else c.wr(sz, c.seg(i), c.ea(i), v);
}

function jumpTo(c: Cpu, t: number, o32: boolean): void {
  t = o32 ? t >>> 0 : t & 0xffff;
  if (t > c.segLimit[CS]! && c.pe()) c.gp(0);
  c.eip = t;
}

function ud(c: Cpu): never { return c.fault(6); }

// ---------------------------------------------------------------------------------------
// Shifts and rotates (count already masked to 5 bits by the caller).
// ---------------------------------------------------------------------------------------
export function shift(c: Cpu, op: number, v: number, cnt: number, sz: number): number {
  cnt &= 0x1f;
  const bits = BITS[sz]!, m = MASK[sz]!, sign = SIGN[sz]!;
  if (cnt === 0) return v;
  let r: number, cf: number, of: boolean;
  switch (op) {
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
      c.materialise();
      let cfi = c.eflags & CF;
      r = v;
      for (let k = 0; k < n; k++) {
        const out = (r & sign) !== 0 ? 1 : 0;
        r = (((r << 1) | cfi) & m) >>> 0;
        cfi = out;
      }
      of = (((r & sign) !== 0 ? 1 : 0) ^ cfi) !== 0;
      c.eflags = (c.eflags & ~(CF | OF)) | cfi | (of ? OF : 0);
      return r;
    }
    case 3: { // RCR
      const n = cnt % (bits + 1);
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

function shiftDouble(c: Cpu, left: boolean, dst: number, src: number, cnt: number, sz: number): number {
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
function mul32(a: number, b: number): [number, number] {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  const lo = (((mid & 0xffff) << 16) | (ll & 0xffff)) >>> 0;
  const hi = (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0;
  return [lo, hi];
}

function imul32(a: number, b: number): [number, number] {
  let [lo, hi] = mul32(a, b);
  if (a & 0x80000000) hi = (hi - b) >>> 0;
  if (b & 0x80000000) hi = (hi - a) >>> 0;
  return [lo, hi];
}

function sext(v: number, sz: number): number {
  return sz === 2 ? v | 0 : sz === 1 ? (v << 16) >> 16 : (v << 24) >> 24;
}

function grp3(c: Cpu, i: Insn, sz: number): void {
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
      else { const s = c.seg(i), o = c.ea(i); const v = c.rd(sz, s, o); c.wr(sz, s, o, c.alu(5, 0, v, sz)); }
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
// String instructions
// ---------------------------------------------------------------------------------------
function stringOp(c: Cpu, i: Insn, kind: number, sz: number): void {
  const a32 = i.a32;
  const width = 1 << sz;
  const step = (c.eflags & DF) ? -width : width;
  const src = i.seg >= 0 ? i.seg : DS;
  const rep = i.rep;
  if (rep !== REP_NONE) {
    const cx0 = a32 ? c.regs[ECX]! : c.regs[ECX]! & 0xffff;
    if (cx0 === 0) { c.eip = next(c, i); return; }
  }
  for (;;) {
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

function advance(c: Cpu, r: number, step: number, a32: boolean): void {
  if (a32) c.regs[r] = (c.regs[r]! + step) >>> 0;
  else c.regs[r] = (c.regs[r]! & 0xffff0000) | ((c.regs[r]! + step) & 0xffff);
}

// ---------------------------------------------------------------------------------------
// BCD
// ---------------------------------------------------------------------------------------
function bcd(c: Cpu, op: number, imm: number): void {
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
function bitOp(c: Cpu, i: Insn, kind: number, bitIndex: number, fromReg: boolean): void {
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
    v = c.rd(sz, s, o);
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

// ---------------------------------------------------------------------------------------
// Descriptor checks: LAR, LSL, VERR, VERW
// ---------------------------------------------------------------------------------------
function descCheck(c: Cpu, sel: number, forLsl: boolean): { ok: boolean; lo: number; hi: number } {
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

function setZF(c: Cpu, on: boolean): void {
  c.materialise();
  c.eflags = on ? c.eflags | ZF : c.eflags & ~ZF;
}

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
          const r = c.alu(kind, c.rd(sz, s, o), b, sz);
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
      c.loadSeg(s, v);
      c.adjSp(i.o32 ? 4 : 2);
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
      const base = c.stack32 ? (sp - 8 * w) >>> 0 : (sp - 8 * w) & 0xffff;
      c.lin(SS, base, 8 * w, true);
      for (let r = 0; r < 8; r++) {
        const v = r === ESP ? (sz === 2 ? sp : sp & 0xffff) : c.getReg(sz, r);
        const a = c.stack32 ? (sp - (r + 1) * w) >>> 0 : (sp - (r + 1) * w) & 0xffff;
        c.wr(sz, SS, a, v);
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
      const lo = sext(c.rd(sz, s, o), sz), hi = sext(c.rd(sz, s, (o + (1 << sz)) >>> 0), sz);
      const v = sext(c.getReg(sz, i.reg), sz);
      if (v < lo || v > hi) c.fault(5);
      c.eip = next(c, i);
      return;
    }
    case 0x63: { // ARPL
      if (!c.pe()) return ud(c);
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
        const r = c.alu(kind, c.rd(sz, s, o), imm >>> 0, sz);
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
    case 0x9b: c.fwaitCheck(); c.eip = next(c, i); return;
    case 0x9c: { // PUSHF
      const f = c.getFlags() & ~(RF | 0x20000);
      c.push(i.o32, i.o32 ? f : f & 0xffff);
      c.eip = next(c, i);
      return;
    }
    case 0x9d: { // POPF
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
        const v = c.rd(sz, s, o);
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
    case 0xc8: { // ENTER
      const sz = i.o32 ? 2 : 1, w = 1 << sz;
      const level = i.imm2 & 0x1f;
      const ebp = c.regs[EBP]!;
      c.push(i.o32, sz === 2 ? ebp : ebp & 0xffff);
      const frame = c.stack32 ? c.regs[ESP]! : c.regs[ESP]! & 0xffff;
      let bp = ebp;
      for (let k = 1; k < level; k++) {
        bp = c.stack32 ? (bp - w) >>> 0 : (bp - w) & 0xffff;
        c.push(i.o32, c.rd(sz, SS, bp));
      }
      if (level > 0) c.push(i.o32, frame);
      c.setReg(c.stack32 ? 2 : 1, EBP, frame);
      c.adjSp(-i.imm);
      // Probe the new stack top as hardware does.
      c.lin(SS, c.stack32 ? c.regs[ESP]! : c.regs[ESP]! & 0xffff, 1, true);
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
    case 0xcd: softInt(c, i, i.imm); return;
    case 0xce: if (c.of()) softInt(c, i, 4); else c.eip = next(c, i); return;
    case 0xf1: softInt(c, i, 1); return;
    case 0xcf: c.iret(i.o32); c.modeChanged(); return;
    case 0xd4: case 0xd5: bcd(c, op, i.imm); c.eip = next(c, i); return;
    case 0xd6: c.setReg(0, EAX, c.cf() ? 0xff : 0); c.eip = next(c, i); return;
    case 0xd7: { // XLAT
      const off = i.a32 ? (c.regs[EBX]! + (c.regs[EAX]! & 0xff)) >>> 0 : (c.regs[EBX]! + (c.regs[EAX]! & 0xff)) & 0xffff;
      c.setReg(0, EAX, c.rd8(i.seg >= 0 ? i.seg : DS, off));
      c.eip = next(c, i);
      return;
    }
    case 0xd8: case 0xd9: case 0xda: case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf:
      c.fpuCheck(); return;
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
      if (!c.pe()) return ud(c);
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
        const d = n === 4 ? 6 : n === 5 ? 7 : n;
        c.regs[i.rm] = c.dr[d]!;
      } else {
        const d = n === 4 ? 6 : n === 5 ? 7 : n;
        c.dr[d] = c.regs[i.rm]!;
      }
      c.eip = next(c, i);
      return;
    }
    case 0x131: { // RDTSC
      if ((c.cr4 & 4) && c.pe() && c.cpl !== 0) c.gp(0);
      const t = c.bus.readTsc();
      c.regs[EAX] = t % 4294967296;
      c.regs[EDX] = Math.floor(t / 4294967296);
      c.eip = next(c, i);
      return;
    }
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
        const v = c.rd(sz, s, o);
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
        const d = c.rd(sz, s, o);
        const r = c.alu(0, d, src, sz);
        c.wr(sz, s, o, r);
        c.setReg(sz, i.reg, d);
      }
      c.eip = next(c, i);
      return;
    }
    case 0x1c7: { // CMPXCHG8B
      if (i.reg !== 1 || i.mod === 3) return ud(c);
      const s = c.seg(i), o = c.ea(i);
      const lo = c.rd32(s, o), hi = c.rd32(s, (o + 4) >>> 0);
      c.materialise();
      if (lo === c.regs[EAX] && hi === c.regs[EDX]) {
        c.wr32(s, o, c.regs[EBX]!); c.wr32(s, (o + 4) >>> 0, c.regs[ECX]!);
        c.eflags |= ZF;
      } else {
        c.wr32(s, o, lo); c.wr32(s, (o + 4) >>> 0, hi);
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

function incdec(c: Cpu, i: Insn, sz: number): void {
  const dec = i.reg === 1;
  if (i.mod === 3) {
    const v = c.getReg(sz, i.rm);
    c.setReg(sz, i.rm, dec ? c.dec(v, sz) : c.inc(v, sz));
  } else {
    const s = c.seg(i), o = c.ea(i);
    const v = c.rd(sz, s, o);
    const r = dec ? c.dec(v, sz) : c.inc(v, sz);
    c.wr(sz, s, o, r);
  }
  c.eip = next(c, i);
}

function grp5(c: Cpu, i: Insn): void {
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

function grp6(c: Cpu, i: Insn): void {
  if (!c.pe()) ud(c);
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

function grp7(c: Cpu, i: Insn): void {
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

function softInt(c: Cpu, i: Insn, vec: number): void {
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

function cpuid(c: Cpu): void {
  const leaf = c.regs[EAX]!;
  const str = (s: string) => s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24);
  switch (leaf) {
    case 0:
      c.regs[EAX] = 1;
      c.regs[EBX] = str("Genu"); c.regs[EDX] = str("ineI"); c.regs[ECX] = str("ntel");
      break;
    case 1:
      c.regs[EAX] = 0x543; // family 5 (Pentium), model 4, stepping 3
      c.regs[EBX] = 0;
      c.regs[ECX] = 0;
      // No FPU (bit 0) until one exists. DE(2) PSE(3) TSC(4) CX8(8) CMOV(15).
      c.regs[EDX] = (1 << 2) | (1 << 3) | (1 << 4) | (1 << 8) | (1 << 15);
      break;
    default:
      c.regs[EAX] = 0; c.regs[EBX] = 0; c.regs[ECX] = 0; c.regs[EDX] = 0;
  }
}

// Keep otherwise-unused imports referenced for future use in the translator.
void LF_EAGER; void PARITY;

// ---------------------------------------------------------------------------------------
// Specialised handlers for the commonest 32-bit forms. Each is exactly the generic case above
// restricted to o32/a32 operands, chosen per decoded instruction by `handlerFor` (so the block
// loop calls a small function instead of entering the big switch). Anything else: exec().
// ---------------------------------------------------------------------------------------
export type Handler = (c: Cpu, i: Insn) => void;

function nx32(c: Cpu, i: Insn): number { return c.code32 ? (c.eip + i.len) >>> 0 : (c.eip + i.len) & 0xffff; }

function aluRmR(kind: number): Handler {
  const store = kind !== 7;
  return (c, i) => {
    const b = c.regs[i.reg]!;
    if (i.mod === 3) {
      const r = c.alu(kind, c.regs[i.rm]!, b, 2);
      if (store) c.regs[i.rm] = r;
    } else {
      const s = i.seg >= 0 ? i.seg : i.defSeg, o = c.ea(i);
      const r = c.alu(kind, c.rd32(s, o), b, 2);
      if (store) c.wr32(s, o, r);
    }
    c.eip = nx32(c, i);
  };
}
function aluRRm(kind: number): Handler {
  const store = kind !== 7;
  return (c, i) => {
    const src = i.mod === 3 ? c.regs[i.rm]! : c.rd32(i.seg >= 0 ? i.seg : i.defSeg, c.ea(i));
    const r = c.alu(kind, c.regs[i.reg]!, src, 2);
    if (store) c.regs[i.reg] = r;
    c.eip = nx32(c, i);
  };
}
function aluEaxImm(kind: number): Handler {
  const store = kind !== 7;
  return (c, i) => {
    const r = c.alu(kind, c.regs[0]!, i.imm >>> 0, 2);
    if (store) c.regs[0] = r;
    c.eip = nx32(c, i);
  };
}
const grp1: Handler = (c, i) => {
  const kind = i.reg;
  const imm = i.op === 0x83 ? ((i.imm << 24) >> 24) >>> 0 : i.imm >>> 0;
  if (i.mod === 3) {
    const r = c.alu(kind, c.regs[i.rm]!, imm, 2);
    if (kind !== 7) c.regs[i.rm] = r;
  } else {
    const s = i.seg >= 0 ? i.seg : i.defSeg, o = c.ea(i);
    const r = c.alu(kind, c.rd32(s, o), imm, 2);
    if (kind !== 7) c.wr32(s, o, r);
  }
  c.eip = nx32(c, i);
};
const movRmR: Handler = (c, i) => {
  if (i.mod === 3) c.regs[i.rm] = c.regs[i.reg]!;
  else c.wr32(i.seg >= 0 ? i.seg : i.defSeg, c.ea(i), c.regs[i.reg]!);
  c.eip = nx32(c, i);
};
const movRRm: Handler = (c, i) => {
  c.regs[i.reg] = i.mod === 3 ? c.regs[i.rm]! : c.rd32(i.seg >= 0 ? i.seg : i.defSeg, c.ea(i));
  c.eip = nx32(c, i);
};
const movRImm: Handler = (c, i) => { c.regs[i.op & 7] = i.imm >>> 0; c.eip = nx32(c, i); };
const lea: Handler = (c, i) => { c.regs[i.reg] = c.ea(i); c.eip = nx32(c, i); };
const incR: Handler = (c, i) => { const r = i.op & 7; c.regs[r] = c.inc(c.regs[r]!, 2); c.eip = nx32(c, i); };
const decR: Handler = (c, i) => { const r = i.op & 7; c.regs[r] = c.dec(c.regs[r]!, 2); c.eip = nx32(c, i); };
const pushR: Handler = (c, i) => { c.push32(c.regs[i.op & 7]!); c.eip = nx32(c, i); };
const popR: Handler = (c, i) => {
  const v = c.peek(true);
  c.adjSp(4);
  c.regs[i.op & 7] = v;
  c.eip = nx32(c, i);
};
const jcc: Handler = (c, i) => {
  const n = nx32(c, i);
  if (c.cond(i.op & 0xf)) jumpTo(c, n + i.imm, true);
  else c.eip = n;
};
const jmpRel: Handler = (c, i) => { jumpTo(c, nx32(c, i) + i.imm, true); };
const testRmR: Handler = (c, i) => {
  const a = i.mod === 3 ? c.regs[i.rm]! : c.rd32(i.seg >= 0 ? i.seg : i.defSeg, c.ea(i));
  c.alu(4, a, c.regs[i.reg]!, 2);
  c.eip = nx32(c, i);
};

/** The handler for one decoded instruction: a specialised one when its form allows, else exec. */
export function handlerFor(i: Insn): Handler {
  if (!i.o32 || !i.a32 || i.rep !== REP_NONE || i.lock) return exec;
  const op = i.op;
  if (op < 0x40 && (op & 7) < 6) {
    const kind = op >> 3, form = op & 7;
    if (form === 1) return aluRmRs[kind]!;
    if (form === 3) return aluRRms[kind]!;
    if (form === 5) return aluEaxImms[kind]!;
    return exec;
  }
  if (op >= 0x40 && op <= 0x47) return incR;
  if (op >= 0x48 && op <= 0x4f) return decR;
  if (op >= 0x50 && op <= 0x57) return pushR;
  if (op >= 0x58 && op <= 0x5f) return popR;
  if ((op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f)) return jcc;
  if (op >= 0xb8 && op <= 0xbf) return movRImm;
  switch (op) {
    case 0x81: case 0x83: return grp1;
    case 0x85: return testRmR;
    case 0x89: return movRmR;
    case 0x8b: return movRRm;
    case 0x8d: return i.mod === 3 ? exec : lea;
    case 0xe9: case 0xeb: return jmpRel;
  }
  return exec;
}
const aluRmRs = [0, 1, 2, 3, 4, 5, 6, 7].map(aluRmR);
const aluRRms = [0, 1, 2, 3, 4, 5, 6, 7].map(aluRRm);
const aluEaxImms = [0, 1, 2, 3, 4, 5, 6, 7].map(aluEaxImm);
