import { describe, expect, test } from "bun:test";
import { Machine, MAX_IDLE_NS } from "./machine.ts";
import { setMultibootEntryState } from "../boards/pc-boot.ts";
import { Stop } from "../cpu/contract.ts";

function machineWith(code: number[]): Machine {
  const m = new Machine({ memBytes: 4 << 20, bootEpochSeconds: 0 });
  m.ram.set(code, 0x100000);
  setMultibootEntryState(m.cpu, 0x100000, 0);
  // A GDT with flat code (0x08) and data (0x10) so interrupt gates can name their segment.
  const dv = new DataView(m.ram.buffer);
  dv.setUint32(0x1008, 0x0000ffff, true); dv.setUint32(0x100c, 0x00cf9a00, true);
  dv.setUint32(0x1010, 0x0000ffff, true); dv.setUint32(0x1014, 0x00cf9200, true);
  m.cpu.gdtBase = 0x1000; m.cpu.gdtLimit = 0x17;
  return m;
}

// PIT channel 0, mode 2, ~100 Hz; then STI; HLT; JMP back to the HLT.
const PIT_100HZ = [0xb0, 0x34, 0xe6, 0x43, 0xb0, 0x9c, 0xe6, 0x40, 0xb0, 0x2e, 0xe6, 0x40];

describe("machine run loop", () => {
  test("a halted CPU whose timer interrupt is masked becomes idle after MAX_IDLE_NS, the same way every time", () => {
    const run = () => {
      const m = machineWith([...PIT_100HZ, 0xfb, 0xf4, 0xeb, 0xfd]); // IRQ0 stays masked (BIOS PIC state)
      const r = m.runUntil(1e9);
      return { r, icount: m.cpu.icount, now: m.now() };
    };
    const a = run(), b = run();
    expect(a.r).toEqual({ kind: "idle" });
    expect(a.icount).toBe(8);
    expect(a.now).toBeGreaterThan(MAX_IDLE_NS * 0.99);
    expect(a.now).toBeLessThanOrEqual(MAX_IDLE_NS + 1e9);
    expect(b).toEqual(a);
  });

  test("with the timer unmasked the halted CPU wakes at each tick, at the same icount each run", () => {
    // Unmask IRQ0 (OCW1 = 0xFE), IDT entry for vector 8 -> IRET stub, STI; HLT loop.
    const m = machineWith([...PIT_100HZ, 0xb0, 0xfe, 0xe6, 0x21, 0xfb, 0xf4, 0xeb, 0xfd]);
    // IDT at 0x2000 with vector 8 pointing at a handler at 0x3000: EOI, IRET.
    const idt = 0x2000, handler = 0x3000;
    m.ram.set([0xb0, 0x20, 0xe6, 0x20, 0xcf], handler);
    const dv = new DataView(m.ram.buffer);
    dv.setUint32(idt + 8 * 8, (0x08 << 16) | (handler & 0xffff), true);
    dv.setUint32(idt + 8 * 8 + 4, (handler & 0xffff0000) | 0x8e00, true);
    m.cpu.idtBase = idt; m.cpu.idtLimit = 0x7ff;
    m.cpu.regs[4] = 0x80000; // a stack
    const seen: number[] = [];
    m.cpu.onDeliver = (vec: number) => { seen.push(vec, m.cpu.icount); };
    const r = m.runUntil(60);
    expect(r).toEqual({ kind: "limit" });
    expect(seen.filter((_, i) => i % 2 === 0).every((v) => v === 8)).toBe(true);
    expect(seen.length).toBeGreaterThan(4);
    // Each tick: MOV, OUT (EOI), IRET, JMP, HLT = 5 instructions from one delivery to the next.
    const at = seen.filter((_, i) => i % 2 === 1);
    for (let k = 1; k < at.length; k++) expect(at[k]! - at[k - 1]!).toBe(5);
    // ... and 10 ms of virtual time apart (the PIT at ~100 Hz), so most of it was idle.
    expect(m.now()).toBeGreaterThan(8 * 9_000_000);
  });

  test("a handler that faults at once, over and over, ends the run as stuck instead of hanging", () => {
    // IRQ0 unmasked, its vector 8 points at a UD2, and so does #UD's (vector 6): the handler
    // faults at once, its #UD handler faults at once...
    const m = machineWith([...PIT_100HZ, 0xb0, 0xfe, 0xe6, 0x21, 0xfb, 0xf4, 0xeb, 0xfd]);
    const dv = new DataView(m.ram.buffer);
    m.ram[0x3000] = 0x0f; m.ram[0x3001] = 0x0b;
    for (const v of [6, 8]) {
      dv.setUint32(0x2000 + v * 8, (0x08 << 16) | 0x3000, true);
      dv.setUint32(0x2000 + v * 8 + 4, 0x8e00, true);
    }
    m.cpu.idtBase = 0x2000; m.cpu.idtLimit = 0x7ff;
    const r = m.runUntil(1e6);
    expect(r).toEqual({ kind: "stuck" });
    expect(m.cpu.icount).toBeLessThan(20);
  });

  test("stopOnDelivery stops at the handler's first instruction with nothing retired", () => {
    // INT3 handler at 0x3000 (IDT vector 3).
    const m = machineWith([0x90, 0xcc, 0x90, 0xf4]);
    const dv = new DataView(m.ram.buffer);
    dv.setUint32(0x2000 + 3 * 8, (0x08 << 16) | 0x3000, true);
    dv.setUint32(0x2000 + 3 * 8 + 4, 0x8f00, true);
    m.cpu.idtBase = 0x2000; m.cpu.idtLimit = 0x7ff;
    m.ram[0x3000] = 0xcf;
    m.cpu.stopOnDelivery = true;
    // A fault (not INT3) is what stops: make the second instruction #UD instead.
    m.ram[0x100001] = 0x0f; m.ram[0x100002] = 0x0b; // UD2
    dv.setUint32(0x2000 + 6 * 8, (0x08 << 16) | 0x3000, true);
    dv.setUint32(0x2000 + 6 * 8 + 4, 0x8e00, true);
    expect(m.cpu.run(10)).toBe(Stop.DELIVERED);
    expect(m.cpu.icount).toBe(1); // the NOP retired, UD2 did not
    expect(m.cpu.eip).toBe(0x3000);
  });
});
