/**
 * icount rules: run(n) executes exactly n instructions; a faulting instruction does not
 * retire; INT n retires; each REP iteration counts one; HLT retires once; a breakpoint stops
 * before the instruction; interrupts wait one instruction after STI and MOV SS.
 */
import { describe, expect, test } from "bun:test";
import { Stop, EAX, ECX, ESP } from "./cpu.ts";
import { TestMachine, CODE, DATA, HANDLERS, STACK0, KDATA } from "../../../test/cpu/machine.ts";
import type { Insn } from "../../../test/support/x86-encoder.ts";

const nop: Insn = { op: "nop" };
function ring0(insns: Insn[]): TestMachine {
  const m = new TestMachine(2 << 20);
  m.flat(0);
  m.code(CODE, insns);
  return m;
}

describe("icount", () => {
  test("run(n) stops inside a block at exactly n, and resumes there", () => {
    const m = ring0([nop, nop, nop, nop, nop, nop, nop, nop, { op: "hlt" }]);
    expect(m.cpu.run(3)).toBe(Stop.BUDGET);
    expect([m.cpu.icount, m.cpu.eip]).toEqual([3, CODE + 3]);
    expect(m.cpu.run(2)).toBe(Stop.BUDGET);
    expect([m.cpu.icount, m.cpu.eip]).toEqual([5, CODE + 5]);
    expect(m.cpu.run(100)).toBe(Stop.HALT);
    expect(m.cpu.icount).toBe(9);
  });

  test("HLT retires once; running a halted CPU retires nothing", () => {
    const m = ring0([{ op: "hlt" }, nop]);
    expect(m.cpu.run(10)).toBe(Stop.HALT);
    expect(m.cpu.icount).toBe(1);
    expect(m.cpu.run(10)).toBe(Stop.HALT);
    expect(m.cpu.icount).toBe(1);
    expect(m.cpu.eip).toBe(CODE + 1);
  });

  test("a faulting instruction in the middle of a block does not retire; the ones before it do", () => {
    const m = ring0([{ op: "mov", dst: { reg: "eax" }, src: { imm: 1 } }, { op: "xor", dst: { reg: "ecx" }, src: { reg: "ecx" } }, { op: "div", dst: { reg: "ecx" } }, nop]);
    expect(m.cpu.run(2)).toBe(Stop.BUDGET);
    expect(m.cpu.eip).toBe(CODE + 7);
    expect(m.cpu.run(1)).toBe(Stop.HALT); // the fault is delivered; the handler's HLT retires
    expect(m.cpu.icount).toBe(3);
    expect(m.exception()).toMatchObject({ vector: 0, eip: CODE + 7 });
    // Same program in one go
    const n = ring0([{ op: "mov", dst: { reg: "eax" }, src: { imm: 1 } }, { op: "xor", dst: { reg: "ecx" }, src: { reg: "ecx" } }, { op: "div", dst: { reg: "ecx" } }, nop]);
    expect(n.cpu.run(100)).toBe(Stop.HALT);
    expect(n.cpu.icount).toBe(3);
  });

  test("a #PF in a later REP iteration keeps the retired iterations", () => {
    const m = ring0([{ op: "mov", dst: { reg: "edi" }, src: { imm: 0x500ffe } }, { op: "mov", dst: { reg: "ecx" }, src: { imm: 5 } }, { op: "stos", size: 8, rep: "rep" }, nop]);
    m.paging();
    m.w32(m.pte(0x501000), 0);
    m.cpu.run(100);
    expect(m.exception()).toMatchObject({ vector: 14, eip: CODE + 10 });
    expect(m.cpu.regs[ECX]).toBe(3);
    expect(m.cpu.cr2).toBe(0x501000);
    expect(m.cpu.icount).toBe(2 + 2 + 1); // two movs, two iterations, the handler's HLT
  });

  test("INT n retires (and INT3, INTO taken)", () => {
    const m = ring0([{ op: "int", src: { imm: 0x40 } }]);
    m.cpu.run(100);
    expect(m.cpu.icount).toBe(2);
    expect(m.exception()).toMatchObject({ vector: 0x40, eip: CODE + 2 });
    const b = ring0([{ op: "int3" }]);
    b.cpu.run(100);
    expect(b.cpu.icount).toBe(2);
    expect(b.exception()).toMatchObject({ vector: 3, eip: CODE + 1 });
  });

  test("each REP iteration counts one, and interrupts are taken between iterations", () => {
    const m = ring0([{ op: "mov", dst: { reg: "ecx" }, src: { imm: 10 } }, { op: "mov", dst: { reg: "edi" }, src: { imm: DATA } }, { op: "stos", size: 8, rep: "rep" }, { op: "hlt" }]);
    m.cpu.setFlags(0x202);
    expect(m.cpu.run(4)).toBe(Stop.BUDGET);
    expect([m.cpu.icount, m.cpu.regs[ECX], m.cpu.eip]).toEqual([4, 8, CODE + 10]);
    m.cpu.intrLine = true;
    m.intVector = 0x41;
    m.cpu.run(1); // the interrupt is delivered, then the handler's HLT retires
    expect(m.cpu.icount).toBe(5);
    expect(m.exception()).toMatchObject({ vector: 0x41, eip: CODE + 10 });
    expect(m.cpu.regs[ECX]).toBe(8);
    // Budget stops inside a REP (no interrupt): exact counts
    const n = ring0([{ op: "mov", dst: { reg: "ecx" }, src: { imm: 10 } }, { op: "mov", dst: { reg: "edi" }, src: { imm: DATA } }, { op: "stos", size: 8, rep: "rep" }, { op: "hlt" }]);
    let stops = 0;
    while (n.cpu.run(3) === Stop.BUDGET) stops++;
    expect(n.cpu.icount).toBe(2 + 10 + 1);
    expect(n.cpu.regs[ECX]).toBe(0);
    expect(stops).toBe(4);
  });

  test("REP with ECX = 0 retires once", () => {
    const m = ring0([{ op: "xor", dst: { reg: "ecx" }, src: { reg: "ecx" } }, { op: "movs", size: 32, rep: "rep" }, { op: "hlt" }]);
    m.cpu.run(100);
    expect(m.cpu.icount).toBe(3);
  });

  test("STI shadow: the interrupt is taken after the instruction following STI", () => {
    const m = ring0([{ op: "sti" }, nop, nop, { op: "hlt" }]);
    m.cpu.intrLine = true;
    m.cpu.run(1);
    expect(m.cpu.icount).toBe(1);
    m.cpu.run(1);
    expect([m.cpu.icount, m.cpu.eip, m.acks]).toEqual([2, CODE + 2, 0]);
    m.cpu.run(1);
    expect(m.acks).toBe(1);
    expect(m.exception()).toMatchObject({ vector: 0x20, eip: CODE + 2 });
    // In one run() call the same holds.
    const n = ring0([{ op: "sti" }, nop, nop, { op: "hlt" }]);
    n.cpu.intrLine = true;
    n.cpu.run(100);
    expect(n.exception()).toMatchObject({ vector: 0x20, eip: CODE + 2 });
    expect(n.cpu.icount).toBe(3);
  });

  test("MOV SS shadow: no interrupt between MOV SS and the next instruction", () => {
    const m = ring0([{ op: "mov", dst: { reg: "eax" }, src: { imm: KDATA } }, { op: "mov", dst: { reg: "ss" }, src: { reg: "ax" } }, { op: "mov", dst: { reg: "esp" }, src: { imm: STACK0 - 64 } }, nop, { op: "hlt" }]);
    m.cpu.setFlags(0x202);
    m.cpu.run(2);
    m.cpu.intrLine = true;
    m.cpu.run(1);
    expect([m.cpu.icount, m.acks, m.cpu.eip]).toEqual([3, 0, CODE + 5 + 2 + 5]);
    m.cpu.run(100);
    expect(m.exception()).toMatchObject({ vector: 0x20, eip: CODE + 5 + 2 + 5 });
    expect(m.cpu.regs[ESP]).toBe(STACK0 - 64 - 12);
  });

  test("a breakpoint stops before the instruction, which does not retire; resuming ignores it once", () => {
    const m = ring0([nop, nop, { op: "inc", dst: { reg: "eax" } }, nop, { op: "hlt" }]);
    m.cpu.setBreakpoints([CODE + 2]);
    expect(m.cpu.run(100)).toBe(Stop.BREAKPOINT);
    expect([m.cpu.icount, m.cpu.eip, m.cpu.regs[EAX]]).toEqual([2, CODE + 2, 0]);
    expect(m.cpu.run(100)).toBe(Stop.BREAKPOINT); // not resumed past it
    expect(m.cpu.icount).toBe(2);
    expect(m.cpu.run(100, CODE + 2)).toBe(Stop.HALT);
    expect([m.cpu.icount, m.cpu.regs[EAX]]).toEqual([5, 1]);
  });

  test("save/restore mid-block reproduces the same future", () => {
    const prog: Insn[] = [];
    for (let k = 0; k < 20; k++) prog.push({ op: "add", dst: { reg: "eax" }, src: { imm: k * 7 } }, { op: "rol", dst: { reg: "eax" }, src: { imm: 3 } });
    prog.push({ op: "hlt" });
    const m = ring0(prog);
    m.cpu.run(7);
    const snap = m.state();
    const ram = m.mem.ram.slice();
    m.cpu.run(100);
    const final = m.state();
    const n = new TestMachine(2 << 20);
    n.mem.ram.set(ram);
    const { StateReader } = require("../../machine/snapshot.ts");
    n.cpu.restore(new StateReader(snap));
    n.cpu.run(100);
    expect(Buffer.compare(n.state(), final)).toBe(0);
  });
});
void HANDLERS;
