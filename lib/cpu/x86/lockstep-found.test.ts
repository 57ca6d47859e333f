/**
 * Regressions found by comparing rrx with QEMU in lockstep (test/difftest/qemu-lockstep.ts).
 */
import { describe, expect, test } from "bun:test";
import { Stop } from "./cpu.ts";
import { TestMachine } from "../../../test/cpu/machine.ts";

describe("lockstep-found", () => {
  test("reset: IDTR and GDTR are base 0, limit FFFFH (SDM Vol. 3 Table 9-1); SIDT/SGDT in real mode show it", () => {
    const m = new TestMachine();
    m.real(0x7c00);
    expect(m.cpu.idtLimit).toBe(0xffff);
    expect(m.cpu.gdtLimit).toBe(0xffff);
    // o32 sidt [0x600]; o32 sgdt [0x608]; hlt (32-bit operand size: the whole base is stored)
    m.write(0x7c00, [0x66, 0x0f, 0x01, 0x0e, 0x00, 0x06, 0x66, 0x0f, 0x01, 0x06, 0x08, 0x06, 0xf4]);
    m.cpu.flushBlocks();
    expect(m.cpu.run(10)).toBe(Stop.HALT);
    expect(m.r16(0x600)).toBe(0xffff);
    expect(m.r32(0x602)).toBe(0);
    expect(m.r16(0x608)).toBe(0xffff);
    expect(m.r32(0x60a)).toBe(0);
  });
});
