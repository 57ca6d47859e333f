/**
 * toy32: a tiny ISA that exists only to prove the CPU contract (lib/cpu/contract.ts) carries a
 * second ISA through the machine, recording, replay, the reverse engine and the gdb stub.
 * Test-only: lib/ never imports it.
 *
 * Eight 32-bit registers r0..r7, a pc, an interrupt-enable bit `ie` and `epc` (the pc an
 * interrupt saved). Every instruction is 4 bytes, little-endian: byte 0 the opcode, byte 1
 * `rd | rs << 4`, bytes 2..3 a 16-bit immediate (sign-extended where it is a number).
 *
 *   00 HALT            halt for good (ie = 0)        07 BZ rd, off   if rd == 0: pc = next + off
 *   01 LI rd, imm      rd = imm                      08 BNZ rd, off  if rd != 0: pc = next + off
 *   02 LUI rd, imm     rd = imm << 16 | rd & 0xffff  09 OUT rd, port port <- rd (32-bit)
 *   03 ADD rd, rs      rd = rd + rs                  0A IN rd, port  rd <- port (32-bit)
 *   04 ADDI rd, imm    rd = rd + imm                 0B WFI          wait for an interrupt
 *   05 LD rd, rs, imm  rd = mem32[rs + imm]          0C IRET         pc = epc, ie = 1
 *   06 ST rd, rs, imm  mem32[rs + imm] = rd          0D EI imm       ie = imm & 1
 *
 * Any other opcode halts like HALT. An interrupt is taken between instructions when the input
 * is high and ie = 1: epc = pc, ie = 0, pc = HANDLER; it retires nothing (WFI retires once, then
 * the CPU waits without counting). Breakpoints stop before the instruction; watchpoints after
 * the load or store that touched the range.
 */
import { Stop, type CpuBus, type DebugView, type GuestCpu, type RegisterLayout, type Watchpoint } from "../../../lib/cpu/contract.ts";
import type { PhysMem } from "../../../lib/machine/ram.ts";
import type { StateReader, StateWriter } from "../../../lib/machine/snapshot.ts";

export const enum Op { HALT = 0, LI, LUI, ADD, ADDI, LD, ST, BZ, BNZ, OUT, IN, WFI, IRET, EI }
/** Where an interrupt enters. */
export const HANDLER = 0x10;
/** gdb numbering: r0..r7, pc, epc, ie. */
export const PC_REG = 8;
const NREGS = 11;

const TDESC = `<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
  <architecture>toy32</architecture>
  <feature name="org.rrx.toy32.core">
${[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `    <reg name="r${i}" bitsize="32" type="int32"${i === 0 ? ' regnum="0"' : ""}/>`).join("\n")}
    <reg name="pc" bitsize="32" type="code_ptr"/>
    <reg name="epc" bitsize="32" type="code_ptr"/>
    <reg name="ie" bitsize="32" type="int32"/>
  </feature>
</target>
`;

export const TOY_LAYOUT: RegisterLayout = {
  targetXml: TDESC,
  sizes: Array<number>(NREGS).fill(4),
  general: NREGS,
  pc: PC_REG,
  expedite: [PC_REG],
};

const NAMES = ["halt", "li", "lui", "add", "addi", "ld", "st", "bz", "bnz", "out", "in", "wfi", "iret", "ei"];

/** One instruction's text. */
export function disasm(word: number): string {
  const op = word & 0xff, rd = (word >>> 8) & 0xf, rs = (word >>> 12) & 0xf, imm = word >> 16, u = word >>> 16;
  const n = NAMES[op] ?? "halt";
  switch (op) {
    case Op.LI: case Op.ADDI: case Op.BZ: case Op.BNZ: return `${n} r${rd}, ${imm}`;
    case Op.LUI: return `${n} r${rd}, 0x${u.toString(16)}`;
    case Op.ADD: return `${n} r${rd}, r${rs}`;
    case Op.LD: case Op.ST: return `${n} r${rd}, [r${rs}${imm < 0 ? "" : "+"}${imm}]`;
    case Op.OUT: case Op.IN: return `${n} r${rd}, 0x${u.toString(16)}`;
    case Op.EI: return `${n} ${u & 1}`;
    default: return n;
  }
}

export class ToyCpu implements GuestCpu {
  readonly r = new Uint32Array(8);
  pc = 0;
  epc = 0;
  ie = false;
  icount = 0;
  halted = false;
  intrLine = false;
  stopOnDelivery = false;
  onDeliver: ((vec: number, soft: boolean) => void) | null = null;
  singleStep = false;
  bpAddr = 0;
  watchHit: { type: 2 | 3 | 4; addr: number } | null = null;
  readonly debug: DebugView;
  private brk: Stop = Stop.BUDGET;
  private readonly bps = new Set<number>();
  private watches: Watchpoint[] = [];

  constructor(private readonly bus: CpuBus, private readonly mem: PhysMem) {
    this.debug = new ToyDebug(this, bus.ram.length);
  }

  interruptsEnabled(): boolean { return this.ie; }
  requestStop(): void { this.brk = Stop.REQUEST; }

  reset(): void {
    this.r.fill(0);
    this.pc = 0; this.epc = 0; this.ie = false; this.halted = false;
  }

  run(n: number, ignoreBpAt = -1): Stop {
    const target = this.icount + n;
    this.brk = Stop.BUDGET;
    this.watchHit = null;
    let first = true;
    while (this.icount < target) {
      if (this.intrLine && this.ie) {
        this.halted = false;
        const vec = this.bus.ackInterrupt();
        this.onDeliver?.(vec, false);
        this.epc = this.pc; this.ie = false; this.pc = HANDLER;
        if (this.stopOnDelivery) return Stop.DELIVERED;
      }
      if (this.halted) return Stop.HALT;
      if (this.bps.size !== 0 && this.bps.has(this.pc) && !(first && this.pc === ignoreBpAt)) {
        this.bpAddr = this.pc;
        return Stop.BREAKPOINT;
      }
      first = false;
      this.step();
      this.icount++;
      if (this.brk !== Stop.BUDGET) { const r = this.brk; this.brk = Stop.BUDGET; return r; }
    }
    return Stop.BUDGET;
  }

  private step(): void {
    const w = this.read32(this.pc, false);
    const next = (this.pc + 4) >>> 0;
    const op = w & 0xff, rd = (w >>> 8) & 7, rs = (w >>> 12) & 7, imm = w >> 16;
    const r = this.r;
    this.pc = next;
    switch (op) {
      case Op.LI: r[rd] = imm; break;
      case Op.LUI: r[rd] = ((w >>> 16) << 16) | (r[rd]! & 0xffff); break;
      case Op.ADD: r[rd] = r[rd]! + r[rs]!; break;
      case Op.ADDI: r[rd] = r[rd]! + imm; break;
      case Op.LD: r[rd] = this.read32((r[rs]! + imm) >>> 0, true); break;
      case Op.ST: this.write32((r[rs]! + imm) >>> 0, r[rd]!); break;
      case Op.BZ: if (r[rd] === 0) this.pc = (next + imm) >>> 0; break;
      case Op.BNZ: if (r[rd] !== 0) this.pc = (next + imm) >>> 0; break;
      case Op.OUT: this.bus.ioWrite(w >>> 16, 4, r[rd]!); break;
      case Op.IN: r[rd] = this.bus.ioRead(w >>> 16, 4); break;
      case Op.WFI: this.halted = true; break;
      case Op.IRET: this.pc = this.epc; this.ie = true; break;
      case Op.EI: this.ie = (w >>> 16 & 1) === 1; break;
      default: this.halted = true; this.ie = false; this.pc = (next - 4) >>> 0; break; // HALT: stays here
    }
  }

  private byte(a: number): number {
    const ram = this.bus.ram;
    return a < ram.length ? ram[a]! : this.bus.physRead8(a);
  }

  read32(a: number, data: boolean): number {
    if (data) this.watch(a, false);
    return (this.byte(a) | this.byte(a + 1) << 8 | this.byte(a + 2) << 16 | this.byte(a + 3) << 24) >>> 0;
  }

  private write32(a: number, v: number): void {
    this.watch(a, true);
    const ram = this.bus.ram;
    for (let i = 0; i < 4; i++) {
      const p = (a + i) >>> 0, b = (v >>> (8 * i)) & 0xff;
      if (p < ram.length) { if (!this.mem.readonly[p >>> 12]) { ram[p] = b; this.mem.markDirty(p >>> 12); } }
      else this.bus.physWrite8(p, b);
    }
  }

  private watch(a: number, write: boolean): void {
    for (const w of this.watches) {
      if ((w.type === 2 && !write) || (w.type === 3 && write)) continue;
      if (a + 4 > w.addr && a < w.addr + w.len) {
        this.watchHit ??= { type: w.type, addr: w.addr };
        this.brk = Stop.WATCH;
      }
    }
  }

  save(w: StateWriter): void {
    for (let i = 0; i < 8; i++) w.u32(this.r[i]!);
    w.u32(this.pc).u32(this.epc).bool(this.ie).bool(this.halted).f64(this.icount);
  }

  restore(rd: StateReader, _keepBlocks?: boolean): void {
    for (let i = 0; i < 8; i++) this.r[i] = rd.u32();
    this.pc = rd.u32(); this.epc = rd.u32(); this.ie = rd.bool(); this.halted = rd.bool(); this.icount = rd.f64();
  }

  // No block cache and no TLB: nothing derived from memory to drop.
  flushBlocks(): void {}
  flushTlb(): void {}
  flushWriteTlb(): void {}
  invalidatePage(_pg: number): void {}

  setBreakpoints(addrs: Iterable<number>): void {
    this.bps.clear();
    for (const a of addrs) this.bps.add(a >>> 0);
  }
  setWatchpoints(list: Watchpoint[]): void { this.watches = list.slice(); }
}

class ToyDebug implements DebugView {
  readonly arch = "toy32";
  readonly layout = TOY_LAYOUT;
  constructor(private readonly cpu: ToyCpu, private readonly ramBytes: number) {}
  readRegisters(): number[] {
    const c = this.cpu;
    return [...c.r, c.pc >>> 0, c.epc >>> 0, c.ie ? 1 : 0];
  }
  pcAddress(): number { return this.cpu.pc >>> 0; }
  writeRegister(n: number, value: number): boolean {
    const c = this.cpu;
    if (n >= 0 && n < 8) c.r[n] = value;
    else if (n === 8) c.pc = value >>> 0;
    else if (n === 9) c.epc = value >>> 0;
    else if (n === 10) c.ie = (value & 1) === 1;
    else return false;
    return true;
  }
  xlate(addr: number): number {
    return addr >>> 0 < this.ramBytes ? addr >>> 0 : -1;
  }
  disassemble(code: Uint8Array, _addr: number): { text: string; len: number } | null {
    if (code.length < 4) return null;
    return { text: disasm((code[0]! | code[1]! << 8 | code[2]! << 16 | code[3]! << 24) >>> 0), len: 4 };
  }
}
