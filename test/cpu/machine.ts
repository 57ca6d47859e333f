/**
 * A minimal machine around the CPU core for unit tests: RAM, a recording I/O bus, an
 * interrupt line, and helpers to build real-mode, flat protected-mode (ring 0 or 3) and
 * paged environments with a GDT, TSS and an IDT whose handlers each execute HLT.
 */
import { Cpu, Stop, ESP } from "../../lib/cpu/x86/cpu.ts";
import { CS, DS, ES, FS, GS, SS } from "../../lib/cpu/x86/decode.ts";
import { PhysMem } from "../../lib/machine/ram.ts";
import type { CpuBus } from "../../lib/cpu/x86/bus.ts";
import { assemble, type Insn } from "../support/x86-encoder.ts";
import { saveToBytes } from "../../lib/machine/snapshot.ts";
import type { X86Model } from "../../lib/cpu/x86/model.ts";

export const GDT = 0x1000, TSS = 0x2000, IDT = 0x3000, HANDLERS = 0x4000, STACK0 = 0x8000, STACK3 = 0x9000;
export const CODE = 0x10000, DATA = 0x20000;
/** Selectors. */
export const KCODE = 0x08, KDATA = 0x10, UCODE = 0x1b, UDATA = 0x23, TSS_SEL = 0x28;
export { Stop };

export function descriptor(base: number, limit: number, access: number, flags: number): [number, number] {
  const lo = ((base & 0xffff) << 16) | (limit & 0xffff);
  const hi = ((base >>> 16) & 0xff) | (access << 8) | (limit & 0xf0000) | (flags << 20) | (base & 0xff000000);
  return [lo >>> 0, hi >>> 0];
}

export class TestMachine {
  readonly mem: PhysMem;
  readonly cpu: Cpu;
  readonly dv: DataView;
  readonly io: { dir: "in" | "out"; port: number; size: number; value: number }[] = [];
  intVector = 0x20;
  acks = 0;
  /** What the bus reports as the time-stamp counter (virtual time). */
  tsc = 0;
  /** TSC ticks per instruction retired (0: the TSC stays at `tsc`). */
  tscPerInsn = 0;

  /** stateBytes: the RAM's state area (ram.ts); 0 puts the CPU's arrays outside it (no wasm). */
  constructor(ramBytes = 8 << 20, model?: X86Model, stateBytes?: number) {
    const mem = (this.mem = new PhysMem(ramBytes, stateBytes));
    this.dv = new DataView(mem.ram.buffer);
    const bus: CpuBus = {
      ram: mem.ram,
      physRead8: () => 0xff,
      physWrite8: () => {},
      ioRead: (port, size) => { this.io.push({ dir: "in", port, size, value: 0 }); return 0x12345678 & (size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff); },
      ioWrite: (port, size, value) => { this.io.push({ dir: "out", port, size, value }); },
      readTsc: () => this.tsc + this.cpu.icount * this.tscPerInsn,
      ackInterrupt: () => { this.acks++; this.cpu.intrLine = false; return this.intVector; },
    };
    this.cpu = new Cpu(bus, mem, model);
  }

  w8(a: number, v: number) { this.mem.ram[a] = v; this.mem.markDirty(a >>> 12); }
  w16(a: number, v: number) { this.dv.setUint16(a, v, true); }
  w32(a: number, v: number) { this.dv.setUint32(a, v >>> 0, true); }
  r8(a: number) { return this.mem.ram[a]!; }
  r16(a: number) { return this.dv.getUint16(a, true); }
  r32(a: number) { return this.dv.getUint32(a, true); }
  write(a: number, bytes: Uint8Array | number[]) { this.mem.hostWrite(a, Uint8Array.from(bytes)); }
  /** Assemble and place code (32-bit unless code32 is false); returns its length. */
  code(a: number, insns: Insn[], code32 = true): number {
    const b = assemble(insns, code32);
    this.write(a, b);
    this.cpu.flushBlocks();
    return b.length;
  }
  gdt(sel: number, d: [number, number]) { this.w32(GDT + (sel & ~7), d[0]); this.w32(GDT + (sel & ~7) + 4, d[1]); }
  /** IDT gate: type 0xe interrupt, 0xf trap (32-bit); dpl; selector; offset. */
  gate(vec: number, off: number, type = 0xe, dpl = 0, sel = KCODE, present = true) {
    this.w32(IDT + vec * 8, ((sel << 16) | (off & 0xffff)) >>> 0);
    this.w32(IDT + vec * 8 + 4, ((off & 0xffff0000) | (present ? 0x8000 : 0) | (dpl << 13) | (type << 8)) >>> 0);
  }

  /** Real mode, CS=DS=ES=SS=0, IP=`ip`, SP=0x7000, IVT entries pointing to HLT stubs at 0x500+v. */
  real(ip = 0x7c00): void {
    const cpu = this.cpu;
    cpu.reset();
    for (const s of [CS, DS, ES, SS, FS, GS]) cpu.loadSegReal(s, 0);
    cpu.eip = ip;
    cpu.regs[ESP] = 0x7000;
    for (let v = 0; v < 256; v++) { this.w16(v * 4, 0x500 + v); this.w16(v * 4 + 2, 0); this.mem.ram[0x500 + v] = 0xf4; }
    cpu.modeChanged();
    cpu.flushBlocks();
  }

  /**
   * Flat 32-bit protected mode. GDT: 0x08 ring-0 code, 0x10 ring-0 data, 0x1b ring-3 code,
   * 0x23 ring-3 data, 0x28 TSS (ESP0 = STACK0). IDT: 32 interrupt gates (DPL 0) to HLT stubs
   * at HANDLERS + 16*v, and vector 0x80 with DPL 3.
   */
  flat(cpl: 0 | 3 = 0, eip = CODE): void {
    const cpu = this.cpu;
    cpu.reset();
    this.gdt(KCODE, descriptor(0, 0xfffff, 0x9a, 0xc));
    this.gdt(KDATA, descriptor(0, 0xfffff, 0x92, 0xc));
    this.gdt(UCODE, descriptor(0, 0xfffff, 0xfa, 0xc));
    this.gdt(UDATA, descriptor(0, 0xfffff, 0xf2, 0xc));
    this.gdt(TSS_SEL, descriptor(TSS, 0x67 + 0x2000 / 8 + 1, 0x89, 0));
    this.w32(TSS + 4, STACK0);
    this.w32(TSS + 8, KDATA);
    this.w16(TSS + 0x66, 0x68); // I/O bitmap right after the TSS (all ports allowed unless set)
    for (let v = 0; v < 256; v++) {
      this.gate(v, HANDLERS + v * 16, 0xe, v === 0x80 ? 3 : 0);
      this.mem.ram[HANDLERS + v * 16] = 0xf4;
    }
    cpu.cr0 = 0x60000011;
    cpu.gdtBase = GDT; cpu.gdtLimit = 0xff;
    cpu.idtBase = IDT; cpu.idtLimit = 256 * 8 - 1;
    this.loadSeg(CS, cpl ? UCODE : KCODE);
    for (const s of [DS, ES, FS, GS, SS]) this.loadSeg(s, cpl ? UDATA : KDATA);
    cpu.trSel = TSS_SEL; cpu.trBase = TSS; cpu.trLimit = 0x67 + 0x2000 / 8 + 1; cpu.trAr = 0x8b;
    cpu.setCpl(cpl);
    cpu.modeChanged();
    cpu.eip = eip;
    cpu.regs[ESP] = cpl ? STACK3 : STACK0;
    cpu.setFlags(0x2);
    cpu.flushBlocks();
  }

  loadSeg(s: number, sel: number): void {
    const a = GDT + (sel & ~7);
    this.cpu.loadSegDesc(s, sel, this.r32(a), this.r32(a + 4));
  }

  /**
   * Identity-map the first 8 MiB with 4K pages (page tables at 0x100000), user+writable
   * unless changed, and enable paging.
   */
  paging(): void {
    const pd = 0x100000;
    for (let i = 0; i < 2; i++) {
      const pt = 0x101000 + i * 0x1000;
      this.w32(pd + i * 4, pt | 7);
      for (let j = 0; j < 1024; j++) this.w32(pt + j * 4, ((i * 1024 + j) << 12) | 7);
    }
    this.cpu.cr3 = pd;
    this.cpu.writeCr(0, this.cpu.cr0 | 0x80000000);
  }
  pte(lin: number): number { return 0x101000 + (lin >>> 12) * 4; }
  pde(lin: number): number { return 0x100000 + (lin >>> 22) * 4; }

  /** After a stop in a HLT stub: the exception vector and its frame. */
  exception(): { vector: number; err?: number; eip: number; cs: number; eflags: number; esp?: number; ss?: number } | null {
    const cpu = this.cpu;
    const e = cpu.eip;
    if (e <= HANDLERS || e > HANDLERS + 256 * 16) return null;
    const vector = (e - HANDLERS - 1) >> 4;
    const hasErr = vector === 8 || (vector >= 10 && vector <= 14) || vector === 17;
    let sp = cpu.regs[ESP]!;
    const f: ReturnType<TestMachine["exception"]> = { vector, eip: 0, cs: 0, eflags: 0 };
    if (hasErr) { f!.err = this.r32(sp); sp += 4; }
    f!.eip = this.r32(sp); f!.cs = this.r32(sp + 4) & 0xffff; f!.eflags = this.r32(sp + 8);
    if ((f!.cs & 3) !== cpu.cpl) { f!.esp = this.r32(sp + 12); f!.ss = this.r32(sp + 16) & 0xffff; }
    return f;
  }

  state(): Uint8Array { return saveToBytes(this.cpu); }
}

/** A program in CODE with data in DATA and a stack, registers and flags given: for property tests. */
export function programMachine(code: Uint8Array, regs: number[], flags: number, cpl: 0 | 3, mode: { singleStep?: boolean; jitThreshold?: number; stateBytes?: number }): TestMachine {
  const DATA_SIZE = 0x1000;
  const m = new TestMachine(2 << 20, undefined, mode.stateBytes);
  m.flat(cpl, CODE);
  m.write(CODE, code);
  m.w8(CODE + code.length, 0xf4); // HLT (at CPL 3: #GP, whose handler halts)
  for (let k = 0; k < DATA_SIZE; k++) m.mem.ram[DATA + k] = (k * 37) & 0xff;
  const c = m.cpu;
  [0, 1, 2, 3, 5, 6, 7].forEach((r, k) => (c.regs[r] = regs[k]! >>> 0));
  c.regs[ESP] = DATA + 0x800;
  c.setFlags(flags | 2);
  c.singleStep = mode.singleStep ?? false;
  if (mode.jitThreshold !== undefined) c.jitThreshold = mode.jitThreshold;
  c.flushBlocks();
  return m;
}

/**
 * Run two machines in chunks of the given sizes and throw at the first stop where their stop
 * reason, icount, CPU state or RAM differ (`where` describes the program for the report).
 */
export function compareRuns(a: TestMachine, b: TestMachine, chunks: number[], rounds: number, where: () => string): void {
  for (let k = 0; k < rounds; k++) {
    const n = chunks[k % chunks.length]!;
    const sa = a.cpu.run(n), sb = b.cpu.run(n);
    if (sa !== sb || a.cpu.icount !== b.cpu.icount) throw new Error(`stop ${sa}/${sb} icount ${a.cpu.icount}/${b.cpu.icount} after chunk ${k}\n${where()}`);
    if (Buffer.compare(a.state(), b.state()) !== 0) throw new Error(`CPU state differs at icount ${a.cpu.icount} (eip ${a.cpu.eip.toString(16)} vs ${b.cpu.eip.toString(16)})\n${where()}`);
    if (Buffer.compare(a.mem.ram, b.mem.ram) !== 0) throw new Error(`RAM differs at icount ${a.cpu.icount}\n${where()}`);
    if (sa === Stop.HALT || sa === Stop.SHUTDOWN) break;
  }
}
