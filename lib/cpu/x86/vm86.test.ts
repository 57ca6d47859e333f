/**
 * Virtual-8086 mode, with expected values from the Intel SDM (vol. 3 ch. 20, "8086 Emulation":
 * 20.2 entering and leaving, 20.2.7 sensitive instructions, 20.3 interrupt and exception
 * handling; vol. 2 IRET, INT n, PUSHF/POPF, IN/OUT): entry by IRETD and by a task switch,
 * real-mode segments at CPL 3, the IOPL-sensitive instructions, the I/O bitmap at any IOPL, and
 * the ring-0 frame with the data segment registers saved and zeroed.
 */
import { describe, expect, test } from "bun:test";
import { Stop, EAX, EBX, ESP } from "./cpu.ts";
import { CS, DS, ES, FS, GS, SS } from "./decode.ts";
import { TestMachine, CODE, HANDLERS, KCODE, KDATA, STACK0, TSS, TSS_SEL, descriptor } from "../../../test/cpu/machine.ts";
import type { Insn } from "../../../test/support/x86-encoder.ts";

const raw = (...bytes: number[]): Insn => ({ op: "raw", bytes });
const SEG = 0x3000, BASE = SEG << 4, VM = 0x20000, IOPL3 = 0x3000;
const SEGS = { ss: 0x3100, es: 0x1111, ds: 0x2222, fs: 0x3333, gs: 0x4444 };

/** Ring 0 IRETD into vm86 mode at SEG:0 with `code` (16-bit), SP 0xFFF0 and EFLAGS `flags`. */
function v86(code: Insn[], flags = VM | 2): TestMachine {
  const m = new TestMachine();
  m.flat(0);
  m.code(CODE, [{ op: "iret", size: 32 }]);
  m.code(BASE, code, false);
  const frame = [0, SEG, flags, 0xfff0, SEGS.ss, SEGS.es, SEGS.ds, SEGS.fs, SEGS.gs];
  const sp = STACK0 - 4 * frame.length;
  frame.forEach((v, k) => m.w32(sp + 4 * k, v));
  m.cpu.regs[ESP] = sp;
  return m;
}

/** The ring-0 frame of an exception from vm86 mode (after a stop in a HLT stub). */
function frame(m: TestMachine, hasErr: boolean) {
  let sp = m.cpu.regs[ESP]!;
  const err = hasErr ? m.r32(sp) : undefined;
  if (hasErr) sp += 4;
  const w = (k: number) => m.r32(sp + 4 * k);
  return { vector: (m.cpu.eip - HANDLERS - 1) >> 4, err, eip: w(0), cs: w(1), eflags: w(2), esp: w(3), ss: w(4), es: w(5), ds: w(6), fs: w(7), gs: w(8), top: sp + 36 };
}

describe("entering virtual-8086 mode", () => {
  test("IRETD at CPL 0 with VM=1 pops ESP, SS, ES, DS, FS, GS: real-mode segments at CPL 3", () => {
    const m = v86([{ op: "hlt" }], VM | 0x202 | 0x80);
    expect(m.cpu.run(1)).toBe(Stop.BUDGET);
    const c = m.cpu;
    expect(c.v86()).toBe(true);
    expect(c.cpl).toBe(3);
    expect(c.eip).toBe(0);
    expect(c.regs[ESP]).toBe(0xfff0);
    expect(c.getFlags()).toBe(VM | 0x282);
    expect(c.code32).toBe(false);
    expect(c.stack32).toBe(false);
    const want: Record<number, number> = { [CS]: SEG, [SS]: SEGS.ss, [ES]: SEGS.es, [DS]: SEGS.ds, [FS]: SEGS.fs, [GS]: SEGS.gs };
    for (const s of [ES, CS, SS, DS, FS, GS]) {
      expect(c.sel[s]).toBe(want[s]!);
      expect(c.segBase[s]).toBe(want[s]! << 4);
      expect(c.segLimit[s]).toBe(0xffff);
    }
  });

  test("segment loads are real-mode style; an offset past 0xFFFF is #GP(0); HLT is #GP(0) (CPL 3)", () => {
    const m = v86([
      { op: "mov", dst: { reg: "ax" }, src: { imm: 0x1234 } }, { op: "mov", dst: { reg: "es" }, src: { reg: "ax" } },
      raw(0x26, 0xa3, 0x10, 0x00), // mov [es:0x10], ax
      { op: "hlt" },
    ]);
    m.cpu.run(10);
    expect(m.r16(0x12340 + 0x10)).toBe(0x1234);
    expect(frame(m, true)).toMatchObject({ vector: 13, err: 0, eip: 9, cs: SEG, es: 0x1234, ds: SEGS.ds });
    const o = v86([raw(0xa1, 0xff, 0xff)]); // mov ax, [0xffff]: its second byte is past the limit
    o.cpu.run(10);
    expect(frame(o, true)).toMatchObject({ vector: 13, err: 0, eip: 0 });
  });

  test("JMP to a TSS whose EFLAGS has VM=1 starts the task in virtual-8086 mode", () => {
    const m = new TestMachine();
    m.flat(0);
    m.gdt(TSS_SEL, descriptor(TSS, 0x67 + 0x2000 / 8 + 1, 0x8b, 0));
    const T = 0x6000;
    m.gdt(0x30, descriptor(T, 0x67, 0x89, 0));
    m.code(CODE, [raw(0xea, 0, 0, 0, 0, 0x30, 0)]);
    m.code(BASE + 0x20, [{ op: "mov", dst: { reg: "bx" }, src: { reg: "ds" } }, { op: "hlt" }], false);
    m.w32(T + 0x20, 0x20); m.w32(T + 0x24, VM | 2); m.w32(T + 0x28 + 4 * ESP, 0xffe0);
    m.w16(T + 0x48 + 4 * ES, 0x5555); m.w16(T + 0x48 + 4 * CS, SEG); m.w16(T + 0x48 + 4 * SS, SEG); m.w16(T + 0x48 + 4 * DS, 0x2000);
    m.cpu.run(2);
    const c = m.cpu;
    expect(c.v86()).toBe(true);
    expect(c.cpl).toBe(3);
    expect(c.trSel).toBe(0x30);
    expect(c.segBase[ES]).toBe(0x55550);
    expect(c.regs[EBX]! & 0xffff).toBe(0x2000);
    expect(c.eip).toBe(0x22);
  });
});

describe("IOPL-sensitive instructions", () => {
  test("at IOPL < 3, CLI STI PUSHF POPF PUSHFD INT n IRET raise #GP(0) at the instruction, which does not retire", () => {
    for (const bytes of [[0xfa], [0xfb], [0x9c], [0x9d], [0x66, 0x9c], [0x66, 0x9d], [0xcd, 0x21], [0xcf]]) {
      const m = v86([raw(...bytes)], VM | 0x1000 | 2); // IOPL 1
      m.cpu.run(10);
      expect(frame(m, true)).toMatchObject({ vector: 13, err: 0, eip: 0, cs: SEG });
      expect(m.cpu.icount).toBe(2); // the IRETD and the handler's HLT
    }
  });

  test("INT3 is not IOPL-sensitive: through the IDT, #GP(3*8+2) when its gate's DPL is below 3", () => {
    const m = v86([raw(0xcc)]);
    m.cpu.run(10);
    expect(frame(m, true)).toMatchObject({ vector: 13, err: 3 * 8 + 2, eip: 0 });
    const d = v86([raw(0xcc)]);
    d.gate(3, HANDLERS + 3 * 16, 0xe, 3);
    d.cpu.run(10);
    expect(frame(d, false)).toMatchObject({ vector: 3, eip: 1, cs: SEG });
  });

  test("at IOPL 3 they run: CLI clears IF, PUSHFD's image has VM=0, POPF cannot change IOPL, IRET is a real-mode IRET", () => {
    const m = v86([
      raw(0xfa), // cli
      raw(0x66, 0x9c, 0x66, 0x58), // pushfd; pop eax
      raw(0x6a, 0x00, 0x9d), // push 0; popf
      raw(0x9c, 0x5b), // pushf; pop bx
      raw(0x9c, 0x0e, 0x68, 0x10, 0x00, 0xcf), // pushf; push cs; push 0x10; iret
      raw(0xf4), // at 0x10: hlt
    ], VM | IOPL3 | 0x200 | 2);
    m.cpu.run(12); // the IRETD and 11
    const c = m.cpu;
    expect(c.regs[EAX]).toBe(IOPL3 | 2); // IF already cleared, VM not in the image
    expect(c.regs[EBX]! & 0xffff).toBe(IOPL3 | 2); // IOPL kept by POPF
    expect(c.v86()).toBe(true);
    expect(c.eip).toBe(0x10);
  });

  test("at IOPL 3, INT n goes through the IDT: a DPL 3 gate is delivered, a DPL 0 gate gives #GP(n*8+2)", () => {
    const m = v86([raw(0xcd, 0x80)], VM | IOPL3 | 2);
    m.cpu.run(10);
    expect(frame(m, false)).toMatchObject({ vector: 0x80, eip: 2, cs: SEG, eflags: VM | IOPL3 | 2, esp: 0xfff0, ss: SEGS.ss });
    const g = v86([raw(0xcd, 0x21)], VM | IOPL3 | 2);
    g.cpu.run(10);
    expect(frame(g, true)).toMatchObject({ vector: 13, err: 0x21 * 8 + 2, eip: 0 });
  });
});

describe("interrupts from virtual-8086 mode", () => {
  test("to ring 0 on the TSS stack, GS FS DS ES pushed and zeroed, VM and IF cleared; IRETD returns to vm86", () => {
    const m = v86([raw(0xcd, 0x80), raw(0x8c, 0xdb), raw(0xf4)], VM | IOPL3 | 0x200 | 2); // int 0x80; mov bx, ds; hlt
    m.mem.ram[HANDLERS + 0x80 * 16] = 0xf4;
    m.cpu.run(2);
    const c = m.cpu;
    expect(c.cpl).toBe(0);
    expect(c.v86()).toBe(false);
    expect(c.getFlags() & 0x200).toBe(0);
    for (const s of [DS, ES, FS, GS]) expect(c.sel[s]).toBe(0);
    expect(c.sel[CS]).toBe(KCODE);
    expect(c.sel[SS]).toBe(KDATA);
    const f = frame(m, false);
    expect(f.top).toBe(STACK0); // the TSS's ESP0
    expect(f).toMatchObject({ es: SEGS.es, ds: SEGS.ds, fs: SEGS.fs, gs: SEGS.gs, eflags: VM | IOPL3 | 0x200 | 2 });
    // Back by IRETD: the handler's HLT replaced by IRETD.
    m.mem.ram[HANDLERS + 0x80 * 16] = 0xcf;
    m.cpu.flushBlocks();
    m.cpu.eip = HANDLERS + 0x80 * 16;
    m.cpu.halted = false;
    m.cpu.run(2);
    expect(c.v86()).toBe(true);
    expect(c.regs[EBX]! & 0xffff).toBe(SEGS.ds);
    expect(c.segBase[DS]).toBe(SEGS.ds << 4);
  });

  test("a hardware interrupt in vm86 mode takes the same path", () => {
    const m = v86([raw(0xeb, 0xfe)], VM | 0x200 | 2); // jmp $
    m.cpu.run(5);
    m.cpu.intrLine = true;
    m.cpu.run(1);
    expect(frame(m, false)).toMatchObject({ vector: 0x20, cs: SEG, eip: 0, ds: SEGS.ds });
    expect(m.cpu.sel[DS]).toBe(0);
  });

  test("a gate to a ring-3 (or conforming) code segment from vm86 mode: #GP(selector)", () => {
    const m = v86([raw(0xcd, 0x80)], VM | IOPL3 | 2);
    m.gate(0x80, HANDLERS + 0x80 * 16, 0xe, 3, 0x1b);
    m.cpu.run(10);
    expect(frame(m, true)).toMatchObject({ vector: 13, err: 0x18, eip: 0 });
  });
});

describe("I/O in virtual-8086 mode", () => {
  test("the TSS I/O bitmap decides at any IOPL, including 3", () => {
    for (const iopl of [0, IOPL3]) {
      const m = v86([raw(0xe4, 0x70), raw(0xe4, 0x71)], VM | iopl | 2); // in al, 0x70; in al, 0x71
      m.w8(TSS + 0x68 + (0x71 >> 3), 1 << (0x71 & 7));
      m.cpu.run(10);
      expect(m.io).toEqual([{ dir: "in", port: 0x70, size: 1, value: 0 }]);
      expect(frame(m, true)).toMatchObject({ vector: 13, err: 0, eip: 2 });
    }
  });

  test("LAR, LSL, VERR, LTR and ARPL are #UD in vm86 mode", () => {
    for (const bytes of [[0x0f, 0x02, 0xc1], [0x0f, 0x03, 0xc1], [0x0f, 0x00, 0xe1], [0x0f, 0x00, 0xd8], [0x63, 0xc1]]) {
      const m = v86([raw(...bytes)], VM | IOPL3 | 2);
      m.cpu.run(10);
      expect(frame(m, false)).toMatchObject({ vector: 6, eip: 0 });
    }
  });
});

describe("the block cache across modes", () => {
  test("a block built in real mode behaves as vm86 code when the same bytes run in vm86 mode", () => {
    const m = new TestMachine();
    m.real(0);
    m.cpu.loadSegReal(CS, SEG);
    m.code(BASE, [raw(0xfa), raw(0xf4)], false); // cli; hlt
    expect(m.cpu.run(10)).toBe(Stop.HALT);
    expect(m.cpu.icount).toBe(2); // real mode: CLI runs
    // Protected mode without dropping the cached block, then IRETD into vm86 mode at SEG:0.
    const c = m.cpu;
    const cache = (c as unknown as { blocks: Map<number, unknown> }).blocks;
    const blocks = cache.size;
    const v = v86([]);
    m.write(0, v.mem.ram.subarray(0, 0x20000)); // GDT, TSS, IDT, handlers, stacks, CODE
    c.cr0 = 0x60000011; c.gdtBase = v.cpu.gdtBase; c.gdtLimit = v.cpu.gdtLimit; c.idtBase = v.cpu.idtBase; c.idtLimit = v.cpu.idtLimit;
    c.trSel = v.cpu.trSel; c.trBase = v.cpu.trBase; c.trLimit = v.cpu.trLimit; c.trAr = v.cpu.trAr;
    m.loadSeg(CS, KCODE); m.loadSeg(SS, KDATA);
    c.modeChanged();
    c.eip = CODE; c.regs[ESP] = v.cpu.regs[ESP]!; c.halted = false;
    expect(cache.size).toBe(blocks);
    c.run(10);
    expect(frame(m, true)).toMatchObject({ vector: 13, err: 0, eip: 0, cs: SEG }); // CLI: IOPL 0
    expect(cache.size).toBe(blocks + 2); // the IRETD's block and the handler's: SEG:0's was reused
  });
});
