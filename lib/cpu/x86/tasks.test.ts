/**
 * Hardware task switching, with expected values from the Intel SDM vol. 3 ("Task Management":
 * 7.3 task switching steps, 7.4 task linking, table 7-1 exception conditions; the JMP, CALL,
 * INT n, IRET and LTR pages of vol. 2): what is saved in the old TSS and loaded from the new
 * one, the busy bits, the link field and NT, CR0.TS, CR3, the LDT, error codes and in which
 * task each fault is delivered, and the T bit.
 */
import { describe, expect, test } from "bun:test";
import { Stop, EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI } from "./cpu.ts";
import { CS, DS, SS } from "./decode.ts";
import { TestMachine, CODE, DATA, HANDLERS, KCODE, KDATA, GDT, IDT, TSS, TSS_SEL, descriptor } from "../../../test/cpu/machine.ts";
import type { Insn } from "../../../test/support/x86-encoder.ts";

const raw = (...bytes: number[]): Insn => ({ op: "raw", bytes });
const jmpFar = (sel: number) => raw(0xea, 0, 0, 0, 0, sel & 0xff, sel >> 8);
const callFar = (sel: number) => raw(0x9a, 0, 0, 0, 0, sel & 0xff, sel >> 8);

/** Selectors and addresses of the test's second task. */
const B = 0x30, GATE_B = 0x38, T16 = 0x40, LDT_SEL = 0x48, BTSS = 0x6000, T16TSS = 0x6800, BCODE = 0x50000, BSTACK = 0x58000;
const OLD_TSS_LIMIT = 0x67 + 0x2000 / 8 + 1;
const BREGS = [0xa0a0a0a0, 0xc1c1c1c1, 0xd2d2d2d2, 0xb3b3b3b3, BSTACK, 0xb5b5b5b5, 0x5e5e5e5e, 0xd7d7d7d7];

/**
 * Ring 0 flat machine whose current task is TSS_SEL (busy) and a second 32-bit task B (TSS at
 * BTSS, available) that starts at BCODE with `bcode`.
 */
function machine(code: Insn[], bcode: Insn[] = [{ op: "hlt" }]): TestMachine {
  const m = new TestMachine();
  m.flat(0);
  m.gdt(TSS_SEL, descriptor(TSS, OLD_TSS_LIMIT, 0x8b, 0));
  m.gdt(B, descriptor(BTSS, 0x67, 0x89, 0));
  m.gdt(GATE_B, [B << 16, 0x8500]);
  m.code(CODE, code);
  m.code(BCODE, bcode);
  const t = BTSS;
  m.w32(t + 0x20, BCODE); m.w32(t + 0x24, 0x2 | 0x80 | 0x4); // EIP; EFLAGS: SF PF
  BREGS.forEach((v, k) => m.w32(t + 0x28 + 4 * k, v));
  for (let s = 0; s < 6; s++) m.w16(t + 0x48 + 4 * s, s === CS ? KCODE : KDATA);
  m.cpu.regs[EAX] = 0x11111111; m.cpu.regs[EBX] = 0x22222222;
  return m;
}
const busy = (m: TestMachine, sel: number) => (m.r8(GDT + (sel & ~7) + 5) >> 1) & 1;

describe("task switch by JMP, CALL and IRET", () => {
  test("JMP to a TSS: old state saved, busy bits moved, new state loaded, no link, CR0.TS set", () => {
    const m = machine([jmpFar(B)]);
    expect(m.cpu.run(10)).toBe(Stop.HALT);
    const c = m.cpu;
    expect(c.trSel).toBe(B);
    expect(c.eip).toBe(BCODE + 1);
    expect(c.icount).toBe(2); // the JMP and B's HLT
    BREGS.forEach((v, k) => expect(c.regs[k]).toBe(v));
    expect(c.getFlags()).toBe(0x86);
    expect(c.cr0 & 8).toBe(8);
    // The old TSS holds the EIP after the JMP, EFLAGS and the registers.
    expect(m.r32(TSS + 0x20)).toBe(CODE + 7);
    expect(m.r32(TSS + 0x24)).toBe(0x2);
    expect(m.r32(TSS + 0x28 + 4 * EAX)).toBe(0x11111111);
    expect(m.r32(TSS + 0x28 + 4 * EBX)).toBe(0x22222222);
    expect(m.r16(TSS + 0x48 + 4 * CS)).toBe(KCODE);
    expect(busy(m, TSS_SEL)).toBe(0);
    expect(busy(m, B)).toBe(1);
    expect(m.r16(BTSS)).toBe(0); // JMP writes no link
    expect(c.trAr & 0x0f).toBe(0x0b);
  });

  test("CALL through a task gate links and nests; IRET with NT=1 returns and clears B's busy bit", () => {
    const m = machine([callFar(GATE_B), { op: "hlt" }], [{ op: "iret" }]);
    expect(m.cpu.run(10)).toBe(Stop.HALT);
    const c = m.cpu;
    expect(c.icount).toBe(3);
    expect(c.trSel).toBe(TSS_SEL);
    expect(c.eip).toBe(CODE + 8); // after the CALL's HLT
    expect(m.r16(BTSS)).toBe(TSS_SEL); // back link
    // B ran with NT=1; the IRET saved B's EFLAGS with NT cleared and left B available.
    expect(m.r32(BTSS + 0x24) & 0x4000).toBe(0);
    expect(m.r32(BTSS + 0x20)).toBe(BCODE + 1);
    expect(busy(m, B)).toBe(0);
    expect(busy(m, TSS_SEL)).toBe(1); // a CALL leaves the caller busy
    expect(c.regs[EAX]).toBe(0x11111111); // reloaded from the old TSS
  });

  test("CALL sets NT in the new task; the new task sees its caller busy", () => {
    const m = machine([callFar(B)]);
    m.cpu.run(10);
    expect(m.cpu.trSel).toBe(B);
    expect(m.cpu.getFlags() & 0x4000).toBe(0x4000);
    expect(busy(m, TSS_SEL)).toBe(1);
    expect(busy(m, B)).toBe(1);
  });

  test("IRET with NT=1 whose link names an available TSS: #TS(link) in the old task, at the IRET", () => {
    const m = machine([{ op: "iret" }]);
    m.w16(TSS, B);
    m.cpu.setFlags(0x4002);
    m.cpu.run(10);
    expect(m.exception()).toMatchObject({ vector: 10, err: B, eip: CODE });
    expect(m.cpu.trSel).toBe(TSS_SEL);
    expect(m.cpu.icount).toBe(1); // the handler's HLT only
  });
});

describe("faults before the commit point: old task, at the instruction, nothing changed", () => {
  const fault = (setup: (m: TestMachine) => void, insn = jmpFar(B)) => {
    const m = machine([insn]);
    setup(m);
    m.cpu.run(10);
    expect(m.cpu.trSel).toBe(TSS_SEL);
    expect(m.cpu.icount).toBe(1); // the handler's HLT only
    expect(busy(m, TSS_SEL)).toBe(1);
    return m.exception();
  };
  test("busy TSS: #GP(selector) for JMP and CALL", () => {
    expect(fault((m) => m.gdt(B, descriptor(BTSS, 0x67, 0x8b, 0)))).toMatchObject({ vector: 13, err: B, eip: CODE });
    expect(fault((m) => m.gdt(B, descriptor(BTSS, 0x67, 0x8b, 0)), callFar(B))).toMatchObject({ vector: 13, err: B });
  });
  test("not present: #NP(selector); DPL < CPL: #GP(selector); limit < 0x67: #TS(selector)", () => {
    expect(fault((m) => m.gdt(B, descriptor(BTSS, 0x67, 0x09, 0)))).toMatchObject({ vector: 11, err: B });
    expect(fault((m) => m.gdt(B, descriptor(BTSS, 0x66, 0x89, 0)))).toMatchObject({ vector: 10, err: B });
    const m = machine([jmpFar(B | 3)]); // RPL 3 > DPL 0
    m.cpu.run(10);
    expect(m.exception()).toMatchObject({ vector: 13, err: B });
  });
  test("task gate: not present #NP(gate); names a busy TSS #GP(TSS selector)", () => {
    expect(fault((m) => m.gdt(GATE_B, [B << 16, 0x0500]), jmpFar(GATE_B))).toMatchObject({ vector: 11, err: GATE_B });
    expect(fault((m) => m.gdt(B, descriptor(BTSS, 0x67, 0x8b, 0)), jmpFar(GATE_B))).toMatchObject({ vector: 13, err: B });
  });
});

describe("after the commit point: the new task's fault", () => {
  test("a bad LDT selector in the new TSS: #TS(LDT selector) in the new task (B's EIP saved), the JMP retired", () => {
    // As the SDM requires for this case, #TS is a task gate (to task C, which halts).
    const C = 0x60, CTSS = 0x6400, CSTACK = 0x5c000;
    const m = machine([jmpFar(B)]);
    m.w16(BTSS + 0x60, KDATA); // not an LDT descriptor
    m.gdt(C, descriptor(CTSS, 0x67, 0x89, 0));
    m.w32(CTSS + 0x20, HANDLERS); m.w32(CTSS + 0x24, 2); m.w32(CTSS + 0x28 + 4 * ESP, CSTACK);
    for (let s = 0; s < 6; s++) m.w16(CTSS + 0x48 + 4 * s, s === CS ? KCODE : KDATA);
    m.w32(IDT + 10 * 8, C << 16); m.w32(IDT + 10 * 8 + 4, 0x8500);
    expect(m.cpu.run(10)).toBe(Stop.HALT);
    expect(m.cpu.trSel).toBe(C);
    expect(m.r16(CTSS)).toBe(B); // the faulting task is B
    expect(m.r32(CSTACK - 4)).toBe(KDATA); // error code: the LDT selector
    expect(m.r32(BTSS + 0x20)).toBe(BCODE); // B's EIP was already loaded
    expect(busy(m, TSS_SEL)).toBe(0);
    expect(busy(m, B)).toBe(1);
    expect(busy(m, C)).toBe(1);
    expect(m.cpu.icount).toBe(2); // the JMP and C's HLT
  });

  test("a not-present data segment in the new TSS: #NP(selector) in the new task", () => {
    const m = machine([jmpFar(B)]);
    m.gdt(0x50, descriptor(0, 0xfffff, 0x12, 0xc));
    m.w16(BTSS + 0x48 + 4 * DS, 0x50);
    m.cpu.run(10);
    expect(m.exception()).toMatchObject({ vector: 11, err: 0x50, eip: BCODE });
    expect(m.cpu.trSel).toBe(B);
  });

  test("an LDT from the new TSS is loaded, and an LDT selector then reaches it", () => {
    const LDT = 0x7000;
    const m = machine([jmpFar(B)], [{ op: "mov", dst: { reg: "eax" }, src: { imm: 0x0c } }, { op: "mov", dst: { reg: "ds" }, src: { reg: "ax" } }, { op: "mov", dst: { reg: "ebx" }, src: { mem: { disp: 4 } } }, { op: "hlt" }]);
    m.gdt(LDT_SEL, descriptor(LDT, 0x0f, 0x82, 0));
    m.w32(LDT + 8, descriptor(DATA, 0xff, 0x92, 0x4)[0]); m.w32(LDT + 12, descriptor(DATA, 0xff, 0x92, 0x4)[1]);
    m.w32(DATA + 4, 0x1da7a001);
    m.w16(BTSS + 0x60, LDT_SEL);
    expect(m.cpu.run(10)).toBe(Stop.HALT);
    expect(m.cpu.ldtSel).toBe(LDT_SEL);
    expect(m.cpu.ldtBase).toBe(LDT);
    expect(m.cpu.regs[EBX]).toBe(0x1da7a001);
  });

  test("the T bit: #DB with DR6.BT=1 in the new task before its first instruction", () => {
    const m = machine([jmpFar(B)]);
    m.w16(BTSS + 0x64, 1);
    m.cpu.run(10);
    expect(m.exception()).toMatchObject({ vector: 1, eip: BCODE });
    expect(m.cpu.dr[6]! & 0x8000).toBe(0x8000);
    expect(m.cpu.dr[6]! & 0x4000).toBe(0);
    expect(m.cpu.trSel).toBe(B);
  });

  test("CR3 comes from the new TSS with paging on, and the TLB does not keep the old mapping", () => {
    const m = machine([{ op: "mov", dst: { reg: "ecx" }, src: { mem: { disp: DATA } } }, jmpFar(B)], [{ op: "mov", dst: { reg: "edx" }, src: { mem: { disp: DATA } } }, { op: "hlt" }]);
    m.paging();
    // A second page directory: the same tables but DATA's page mapped to DATA + 0x1000.
    const pd2 = 0x180000, pt2 = 0x181000;
    for (let i = 0; i < 1024; i++) { m.w32(pd2 + i * 4, m.r32(0x100000 + i * 4)); m.w32(pt2 + i * 4, m.r32(0x101000 + i * 4)); }
    m.w32(pd2, pt2 | 7);
    m.w32(pt2 + (DATA >>> 12) * 4, (DATA + 0x1000) | 7);
    m.w32(DATA, 0xaaaaaaaa); m.w32(DATA + 0x1000, 0xbbbbbbbb);
    m.w32(BTSS + 0x1c, pd2);
    expect(m.cpu.run(10)).toBe(Stop.HALT);
    expect(m.r32(TSS + 0x28 + 4 * ECX)).toBe(0xaaaaaaaa); // read before the switch, saved by it
    expect(m.cpu.cr3).toBe(pd2);
    expect(m.cpu.regs[EDX]).toBe(0xbbbbbbbb);
  });
});

describe("interrupts and exceptions through task gates", () => {
  test("#GP through a task gate: the error code is on the new task's stack, NT=1, link, old EIP at the fault", () => {
    const m = machine([{ op: "mov", dst: { reg: "eax" }, src: { imm: B } }, { op: "mov", dst: { reg: "ds" }, src: { reg: "ax" } }]);
    m.w32(IDT + 13 * 8, B << 16); m.w32(IDT + 13 * 8 + 4, 0x8500);
    expect(m.cpu.run(10)).toBe(Stop.HALT);
    const c = m.cpu;
    expect(c.trSel).toBe(B);
    expect(c.regs[ESP]).toBe(BSTACK - 4);
    expect(m.r32(BSTACK - 4)).toBe(B); // #GP(selector)
    expect(c.getFlags() & 0x4000).toBe(0x4000);
    expect(m.r16(BTSS)).toBe(TSS_SEL);
    expect(m.r32(TSS + 0x20)).toBe(CODE + 5); // the faulting MOV
    expect(c.icount).toBe(2); // the first MOV and B's HLT
  });

  test("INT n through a task gate saves the next EIP; a hardware interrupt wakes a HLT into the task", () => {
    const m = machine([{ op: "int", src: { imm: 0x41 } }]);
    m.w32(IDT + 0x41 * 8, B << 16); m.w32(IDT + 0x41 * 8 + 4, 0x8500);
    m.cpu.run(10);
    expect(m.cpu.trSel).toBe(B);
    expect(m.r32(TSS + 0x20)).toBe(CODE + 2);
    expect(m.cpu.regs[ESP]).toBe(BSTACK); // no error code

    const h = machine([{ op: "sti" }, { op: "hlt" }, { op: "hlt" }]);
    h.w32(IDT + 0x20 * 8, B << 16); h.w32(IDT + 0x20 * 8 + 4, 0x8500);
    expect(h.cpu.run(10)).toBe(Stop.HALT);
    h.cpu.intrLine = true;
    h.cpu.run(10);
    expect(h.cpu.trSel).toBe(B);
    expect(h.r32(TSS + 0x20)).toBe(CODE + 2); // after the first HLT
    expect(h.r32(TSS + 0x24) & 0x200).toBe(0x200);
  });

  test("a double fault through a task gate pushes error code 0", () => {
    // INT 0x42 -> gate not present -> #NP, whose gate is not present -> #DF (task gate).
    const m = machine([{ op: "int", src: { imm: 0x42 } }]);
    m.gate(0x42, HANDLERS, 0xe, 0, KCODE, false);
    m.gate(11, HANDLERS, 0xe, 0, KCODE, false);
    m.w32(IDT + 8 * 8, B << 16); m.w32(IDT + 8 * 8 + 4, 0x8500);
    m.cpu.run(10);
    expect(m.cpu.trSel).toBe(B);
    expect(m.r32(m.cpu.regs[ESP]!)).toBe(0);
    expect(m.cpu.regs[ESP]).toBe(BSTACK - 4);
  });
});

describe("16-bit TSS", () => {
  test("CALL to a 16-bit TSS loads IP, FLAGS, the 16-bit registers and the link; IRET saves them back", () => {
    const m = machine([callFar(T16), { op: "hlt" }]);
    m.gdt(T16, descriptor(T16TSS, 0x2b, 0x81, 0));
    m.gdt(0x50, descriptor(BCODE, 0xffff, 0x9a, 0)); // 16-bit code
    m.gdt(0x58, descriptor(BSTACK - 0x1000, 0xffff, 0x92, 0)); // 16-bit data
    m.w16(T16TSS + 0x0e, 0); m.w16(T16TSS + 0x10, 0x0002);
    for (let k = 0; k < 8; k++) m.w16(T16TSS + 0x12 + 2 * k, 0x1610 + k);
    m.w16(T16TSS + 0x22, 0x58); m.w16(T16TSS + 0x24, 0x50); m.w16(T16TSS + 0x26, 0x58); m.w16(T16TSS + 0x28, 0x58);
    m.code(BCODE, [{ op: "mov", dst: { reg: "ax" }, src: { imm: 0x4242 } }, { op: "iret" }], false);
    const c = m.cpu;
    c.run(1);
    expect(c.trSel).toBe(T16);
    expect(c.code32).toBe(false);
    expect(m.r16(T16TSS)).toBe(TSS_SEL);
    for (const r of [EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI]) expect(c.regs[r]! & 0xffff).toBe(0x1610 + r);
    expect(c.getFlags() & 0xffff).toBe(0x4002);
    expect(c.sel[SS]).toBe(0x58);
    c.run(10);
    expect(c.trSel).toBe(TSS_SEL);
    expect(c.eip).toBe(CODE + 8);
    expect(m.r16(T16TSS + 0x12)).toBe(0x4242); // AX saved in the 16-bit TSS
    expect(m.r16(T16TSS + 0x0e)).toBe(4); // IP after the IRET
    expect(m.r16(T16TSS + 0x10) & 0x4000).toBe(0); // NT cleared in the saved FLAGS
    expect(busy(m, T16)).toBe(0);
  });
});

describe("LTR, STR, LAR, LSL, VERR, VERW on system descriptors", () => {
  test("LTR marks the TSS busy; LTR of a busy TSS, a data segment or a task gate: #GP(selector)", () => {
    const ltr = (sel: number) => {
      const m = machine([{ op: "mov", dst: { reg: "eax" }, src: { imm: sel } }, raw(0x0f, 0x00, 0xd8), raw(0x0f, 0x00, 0xc9), { op: "hlt" }]); // ltr ax; str cx
      m.cpu.run(10);
      return m;
    };
    const ok = ltr(B);
    expect(ok.exception()).toBeNull();
    expect(ok.cpu.trSel).toBe(B);
    expect(busy(ok, B)).toBe(1);
    expect(ok.cpu.regs[ECX]! & 0xffff).toBe(B);
    for (const sel of [TSS_SEL, KDATA, GATE_B]) expect(ltr(sel).exception()).toMatchObject({ vector: 13, err: sel });
  });

  test("LAR reads the rights of TSS, LDT and task-gate descriptors; LSL their limit (not a gate's); VERR/VERW fail", () => {
    const check = (sel: number) => {
      const m = machine([
        { op: "mov", dst: { reg: "ecx" }, src: { imm: sel } },
        raw(0x0f, 0x02, 0xc1), raw(0x0f, 0x94, 0xc3), // lar eax, ecx; sete bl
        raw(0x0f, 0x03, 0xd1), raw(0x0f, 0x94, 0xc7), // lsl edx, ecx; sete bh
        raw(0x0f, 0x00, 0xe1), raw(0x0f, 0x94, 0xc5), // verr cx; sete ch
        { op: "hlt" },
      ]);
      m.gdt(LDT_SEL, descriptor(0x7000, 0x0f, 0x82, 0));
      m.cpu.regs[EAX] = 0; m.cpu.regs[EDX] = 0; m.cpu.regs[EBX] = 0;
      m.cpu.run(20);
      const c = m.cpu;
      return { lar: c.regs[EBX]! & 1 ? c.regs[EAX] : -1, lsl: (c.regs[EBX]! >> 8) & 1 ? c.regs[EDX] : -1, verr: (c.regs[ECX]! >> 8) & 1 };
    };
    expect(check(TSS_SEL)).toEqual({ lar: 0x8b00, lsl: OLD_TSS_LIMIT, verr: 0 });
    expect(check(B)).toEqual({ lar: 0x8900, lsl: 0x67, verr: 0 });
    expect(check(GATE_B)).toEqual({ lar: 0x8500, lsl: -1, verr: 0 });
    expect(check(LDT_SEL)).toEqual({ lar: 0x8200, lsl: 0x0f, verr: 0 });
  });
});
