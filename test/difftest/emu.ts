/**
 * Run a difftest case in rrx's CPU: flat 32-bit protected mode at CPL 3 (like the native
 * user process), code and sandbox at the same linear addresses as in the harness, and an IDT
 * whose ring-0 handlers halt, so that a fault is reported with the faulting state (the
 * exception frame goes to the ring-0 stack, outside the sandbox).
 */
import { Cpu, Stop, ESP } from "../../lib/cpu/x86/cpu.ts";
import { CS, DS, ES, FS, GS, SS } from "../../lib/cpu/x86/decode.ts";
import { PhysMem } from "../../lib/machine/ram.ts";
import type { CpuBus } from "../../lib/cpu/x86/bus.ts";
import type { Case, Result } from "./native.ts";

export const GDT = 0x1000, TSS = 0x2000, IDT = 0x3000, HANDLERS = 0x4000, STACK0 = 0x7000;

export function descriptor(base: number, limit: number, access: number, flags: number): [number, number] {
  const lo = ((base & 0xffff) << 16) | (limit & 0xffff);
  const hi = ((base >>> 16) & 0xff) | (access << 8) | (limit & 0xf0000) | (flags << 20) | (base & 0xff000000);
  return [lo >>> 0, hi >>> 0];
}

export class Emu {
  readonly mem = new PhysMem(4 << 20);
  readonly cpu: Cpu;
  private readonly pristine: Uint8Array;
  constructor() {
    const mem = this.mem;
    const bus: CpuBus = {
      ram: mem.ram,
      physRead8: () => 0xff,
      physWrite8: () => {},
      ioRead: () => 0xffffffff,
      ioWrite: () => {},
      readTsc: () => 0,
      ackInterrupt: () => 0x20,
    };
    this.cpu = new Cpu(bus, mem);
    // Untraced runs execute whole blocks: translate every block on first use so that the
    // block translator is what gets compared.
    if ("jitThreshold" in this.cpu) (this.cpu as { jitThreshold: number }).jitThreshold = 1;
    const dv = new DataView(mem.ram.buffer);
    const put = (a: number, [lo, hi]: [number, number]) => { dv.setUint32(a, lo, true); dv.setUint32(a + 4, hi, true); };
    put(GDT + 0x08, descriptor(0, 0xfffff, 0x9a, 0xc));
    put(GDT + 0x10, descriptor(0, 0xfffff, 0x92, 0xc));
    put(GDT + 0x18, descriptor(0, 0xfffff, 0xfa, 0xc));
    put(GDT + 0x20, descriptor(0, 0xfffff, 0xf2, 0xc));
    put(GDT + 0x28, descriptor(TSS, 0x67, 0x89, 0));
    dv.setUint32(TSS + 4, STACK0, true);
    dv.setUint32(TSS + 8, 0x10, true);
    dv.setUint16(TSS + 0x66, 0x68, true);
    for (let v = 0; v < 32; v++) {
      const off = HANDLERS + v * 16;
      dv.setUint32(IDT + v * 8, (0x08 << 16) | (off & 0xffff), true);
      // As Linux: INT3 and INTO may be used from user mode (DPL 3).
      dv.setUint32(IDT + v * 8 + 4, (off & 0xffff0000) | (v === 3 || v === 4 ? 0xee00 : 0x8e00), true);
      mem.ram[off] = 0xf4; // hlt
    }
    this.pristine = mem.ram.slice(0, 0x8000);
  }

  /** Put the CPU in the user-mode entry state for a case. */
  load(c: Case): void {
    const { cpu, mem } = this;
    mem.ram.set(this.pristine, 0);
    mem.ram.fill(0xcc, 0x100000, 0x110000);
    mem.hostWrite(0x100000, c.code);
    mem.hostWrite(c.dataAddr, c.data);
    mem.markAllDirty();
    cpu.reset();
    cpu.flushBlocks();
    cpu.cr0 = 0x60000011;
    cpu.gdtBase = GDT; cpu.gdtLimit = 0x2f;
    cpu.idtBase = IDT; cpu.idtLimit = 32 * 8 - 1;
    const dv = new DataView(mem.ram.buffer);
    const seg = (s: number, sel: number) => cpu.loadSegDesc(s, sel, dv.getUint32(GDT + (sel & ~7), true), dv.getUint32(GDT + (sel & ~7) + 4, true));
    seg(CS, 0x1b);
    for (const s of [DS, ES, FS, GS, SS]) seg(s, 0x23);
    cpu.trSel = 0x28; cpu.trBase = TSS; cpu.trLimit = 0x67; cpu.trAr = 0x8b;
    cpu.setCpl(3);
    cpu.modeChanged();
    for (let k = 0; k < 8; k++) cpu.regs[k] = c.regs[k]! >>> 0;
    cpu.setFlags(c.eflags | 0x202);
    cpu.eip = 0x100000;
    cpu.icount = 0;
    cpu.setBreakpoints([0x100000 + c.code.length]);
  }

  /** Run to the end of the code, a fault, or `budget` instructions. */
  finish(c: Case, budget = 100_000): Result {
    const { cpu, mem } = this;
    const stop = cpu.run(budget);
    const data = mem.ram.slice(c.dataAddr, c.dataAddr + c.data.length);
    const regs = Array.from(cpu.regs);
    if (stop === Stop.BREAKPOINT) return { status: 0, eip: cpu.eip, vector: -1, regs, eflags: cpu.getFlags(), data, trace: [] };
    if (stop === Stop.HALT && cpu.cpl === 0 && cpu.eip > HANDLERS && cpu.eip < HANDLERS + 32 * 16) {
      const vector = (cpu.eip - HANDLERS - 1) >> 4;
      const hasErr = vector === 8 || (vector >= 10 && vector <= 14) || vector === 17;
      const dv = new DataView(mem.ram.buffer);
      let sp = cpu.regs[ESP]! + (hasErr ? 4 : 0);
      const eip = dv.getUint32(sp, true), eflags = dv.getUint32(sp + 8, true), esp = dv.getUint32(sp + 12, true);
      sp += 20;
      regs[ESP] = esp;
      return { status: signalOf(vector), eip, vector, regs, eflags, data, trace: [] };
    }
    return { status: -1, eip: cpu.eip, vector: -1, regs, eflags: cpu.getFlags(), data, trace: [] };
  }

  /** Like run(), single-stepping with run(1) and recording the state after every step. */
  runTraced(c: Case, maxSteps = 4096): Result {
    this.load(c);
    const cpu = this.cpu;
    const trace: number[][] = [];
    const rec = () => trace.push([cpu.eip, ...cpu.regs, cpu.getFlags()]);
    rec();
    let n = 0;
    // A fault is delivered and its handler's HLT retires within the same run(1): HALT.
    while (cpu.run(1) === Stop.BUDGET && cpu.cpl === 3 && ++n < maxSteps) rec();
    return { ...this.finish(c, 1), trace };
  }

  run(c: Case, budget = 100_000): Result {
    this.load(c);
    return this.finish(c, budget);
  }
}

/** The signal Linux delivers for an exception vector in user mode. */
export function signalOf(vector: number): number {
  switch (vector) {
    case 0: return 8; // SIGFPE
    case 6: return 4; // SIGILL
    case 1: case 3: return 5; // SIGTRAP
    case 17: return 7; // SIGBUS
    default: return 11; // SIGSEGV (#GP, #SS, #NP, #PF, INTO, BOUND)
  }
}
