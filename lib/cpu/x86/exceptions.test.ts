/**
 * Exceptions, error codes, privilege transitions, paging, I/O permission, double and triple
 * fault, real-mode interrupts.
 */
import { describe, expect, test } from "bun:test";
import { Stop, EAX, EBX, ECX, ESP } from "./cpu.ts";
import { CS, DS, SS } from "./decode.ts";
import { TestMachine, CODE, DATA, STACK0, STACK3, HANDLERS, KCODE, KDATA, UCODE, UDATA, GDT, TSS, descriptor } from "../../../test/cpu/machine.ts";
import type { Insn } from "../../../test/support/x86-encoder.ts";

const raw = (...bytes: number[]): Insn => ({ op: "raw", bytes });

function ring(cpl: 0 | 3, insns: Insn[]): TestMachine {
  const m = new TestMachine();
  m.flat(cpl);
  m.code(CODE, insns);
  return m;
}

describe("faults: #DE #UD #GP #NP #SS #TS", () => {
  test("#DE: DIV by zero faults on the DIV, which does not retire", () => {
    const m = ring(0, [{ op: "mov", dst: { reg: "eax" }, src: { imm: 1 } }, { op: "xor", dst: { reg: "edx" }, src: { reg: "edx" } }, { op: "xor", dst: { reg: "ecx" }, src: { reg: "ecx" } }, { op: "div", dst: { reg: "ecx" } }]);
    expect(m.cpu.run(100)).toBe(Stop.HALT);
    const e = m.exception()!;
    expect(e.vector).toBe(0);
    expect(e.eip).toBe(CODE + 5 + 2 + 2);
    expect(e.err).toBeUndefined();
    expect(m.cpu.icount).toBe(3 + 1); // three instructions and the handler's HLT
  });

  test("#DE: quotient overflow (DIV and IDIV INT_MIN/-1) and AAM 0", () => {
    for (const prog of [
      [{ op: "mov", dst: { reg: "edx" }, src: { imm: 5 } }, { op: "mov", dst: { reg: "ecx" }, src: { imm: 5 } }, { op: "div", dst: { reg: "ecx" } }],
      [{ op: "mov", dst: { reg: "eax" }, src: { imm: 0x80000000 } }, { op: "cdq" }, { op: "mov", dst: { reg: "ecx" }, src: { imm: 0xffffffff } }, { op: "idiv", dst: { reg: "ecx" } }],
      [{ op: "mov", dst: { reg: "ax" }, src: { imm: 0x8000 } }, { op: "mov", dst: { reg: "cx" }, src: { imm: 0xffff } }, { op: "cwd" }, { op: "idiv", dst: { reg: "cx" } }],
      [{ op: "aam", src: { imm: 0 } }],
    ] as Insn[][]) {
      const m = ring(0, prog);
      m.cpu.run(100);
      expect(m.exception()?.vector).toBe(0);
    }
  });

  test("#UD: LOCK on a register destination, on a non-lockable instruction, UD2; LOCK on memory RMW is fine", () => {
    for (const bytes of [[0xf0, 0x01, 0xd8], [0xf0, 0x89, 0x05, 0, 0, 2, 0], [0xf0, 0x3b, 0x05, 0, 0, 2, 0], [0xf0, 0x90], [0x0f, 0x0b], [0xf0, 0x80, 0x3d, 0, 0, 2, 0, 1]]) {
      const m = ring(0, [raw(...bytes)]);
      expect(m.cpu.run(10)).toBe(Stop.HALT);
      expect(m.exception()?.vector).toBe(6);
      expect(m.exception()?.eip).toBe(CODE);
    }
    const m = ring(0, [raw(0xf0, 0x01, 0x05, 0, 0, 2, 0), { op: "hlt" }]); // lock add [0x20000], eax
    m.cpu.regs[EAX] = 5;
    m.cpu.run(10);
    expect(m.exception()).toBeNull();
    expect(m.r32(DATA)).toBe(5);
  });

  test("#GP with selector error codes on segment loads; #NP; #SS", () => {
    const load = (sel: number, sreg: "ds" | "ss" = "ds") => {
      const m = ring(0, [{ op: "mov", dst: { reg: "eax" }, src: { imm: sel } }, { op: "mov", dst: { reg: sreg }, src: { reg: "ax" } }]);
      m.gdt(0x30, [0, 0]); // empty (system type 0)
      m.gdt(0x38, descriptor(0, 0xfffff, 0x12 | 0x00, 0xc)); // data, not present
      m.gdt(0x40, descriptor(0, 0xfffff, 0x9a & ~0x02, 0xc)); // execute-only code
      m.gdt(0x48, descriptor(0, 0xfffff, 0xf2, 0xc)); // DPL 3 data
      m.cpu.run(10);
      return m.exception();
    };
    expect(load(0x30)).toMatchObject({ vector: 13, err: 0x30 });
    expect(load(0x1000)).toMatchObject({ vector: 13, err: 0x1000 }); // beyond the GDT limit
    expect(load(0x38)).toMatchObject({ vector: 11, err: 0x38 });
    expect(load(0x40)).toMatchObject({ vector: 13, err: 0x40 });
    expect(load(0x3b)).toMatchObject({ vector: 13, err: 0x38 }); // RPL > DPL is checked before presence; RPL not in the code
    expect(load(0x04)).toMatchObject({ vector: 13, err: 0x04 }); // LDT selector with no LDT
    expect(load(0x48, "ss")).toMatchObject({ vector: 13, err: 0x48 }); // SS DPL != CPL
    expect(load(0x00, "ss")).toMatchObject({ vector: 13, err: 0 });
    // Not-present stack segment: #SS(sel)
    const m = ring(0, [{ op: "mov", dst: { reg: "eax" }, src: { imm: 0x50 } }, { op: "mov", dst: { reg: "ss" }, src: { reg: "ax" } }]);
    m.gdt(0x50, descriptor(0, 0xfffff, 0x12, 0xc));
    m.cpu.run(10);
    expect(m.exception()).toMatchObject({ vector: 12, err: 0x50 });
    // Null DS is fine to load but faults on use: #GP(0)
    const n = ring(0, [{ op: "xor", dst: { reg: "eax" }, src: { reg: "eax" } }, { op: "mov", dst: { reg: "ds" }, src: { reg: "ax" } }, { op: "mov", dst: { reg: "ebx" }, src: { mem: { disp: DATA } } }]);
    n.cpu.run(10);
    expect(n.exception()).toMatchObject({ vector: 13, err: 0, eip: CODE + 2 + 2 });
  });

  test("#SS(0) on a stack limit violation, #GP(0) on a data segment limit violation", () => {
    const m = ring(0, [{ op: "push", dst: { reg: "eax" } }]);
    m.gdt(0x50, descriptor(0, 0x0fff, 0x92, 0x4)); // byte-granular 4 KiB stack
    m.loadSeg(SS, 0x50);
    m.cpu.modeChanged();
    m.cpu.regs[ESP] = 0x2000; // above the limit
    m.cpu.run(10);
    // The fault itself is delivered on the same (broken) stack: it becomes #DF, then shutdown.
    expect([8, 12, null]).toContain(m.exception()?.vector ?? null);
    const d = ring(0, [{ op: "mov", dst: { reg: "eax" }, src: { mem: { disp: 0xffe } } }]);
    d.gdt(0x50, descriptor(0, 0x0fff, 0x92, 0x4));
    d.loadSeg(DS, 0x50);
    d.cpu.modeChanged();
    d.cpu.run(10);
    expect(d.exception()).toMatchObject({ vector: 13, err: 0 });
  });

  test("#TS: an interrupt from ring 3 with an invalid ring-0 stack in the TSS", () => {
    const m = ring(3, [{ op: "int", src: { imm: 0x80 } }]);
    m.w32(TSS + 8, KCODE); // SS0 = a code segment
    // #TS is delivered through a conforming ring-0 code segment (no stack switch).
    m.gdt(0x30, descriptor(0, 0xfffff, 0x9e, 0xc));
    m.gate(10, HANDLERS + 10 * 16, 0xe, 0, 0x30);
    m.cpu.setBreakpoints([HANDLERS + 10 * 16]);
    expect(m.cpu.run(10)).toBe(Stop.BREAKPOINT);
    // Conforming handler: same privilege, frame on the ring-3 stack: err, eip, cs, eflags.
    const sp = m.cpu.regs[ESP]!;
    expect(sp).toBe(STACK3 - 16);
    expect(m.r32(sp)).toBe(KCODE); // error code: the bad SS0 selector
    expect(m.r32(sp + 4)).toBe(CODE); // INT n faulting in delivery: reported at the INT
    expect(m.cpu.cpl).toBe(3);
    expect(m.cpu.icount).toBe(0);
  });
});

describe("double fault and triple fault", () => {
  test("#GP whose gate is not present: #NP during delivery becomes #DF (error code 0)", () => {
    const m = ring(0, [{ op: "mov", dst: { reg: "eax" }, src: { imm: 0x30 } }, { op: "mov", dst: { reg: "ds" }, src: { reg: "ax" } }]);
    m.gate(13, HANDLERS + 13 * 16, 0xe, 0, KCODE, false);
    m.cpu.run(10);
    expect(m.exception()).toMatchObject({ vector: 8, err: 0 });
  });

  test("a fault while delivering #DF shuts down (Stop.SHUTDOWN)", () => {
    const m = ring(0, [{ op: "mov", dst: { reg: "eax" }, src: { imm: 0x30 } }, { op: "mov", dst: { reg: "ds" }, src: { reg: "ax" } }, { op: "nop" }]);
    m.gate(13, 0, 0xe, 0, KCODE, false);
    m.gate(8, 0, 0xe, 0, KCODE, false);
    expect(m.cpu.run(10)).toBe(Stop.SHUTDOWN);
    expect(m.cpu.icount).toBe(1);
  });

  test("#PF during #PF delivery (stack unmapped) is #DF; benign after contributory is not", () => {
    const m = ring(0, [{ op: "mov", dst: { reg: "eax" }, src: { mem: { disp: 0x700000 } } }]);
    m.paging();
    m.w32(m.pte(0x700000), 0); // unmapped data
    // Stack page unmapped too: delivering #PF faults again.
    m.w32(m.pte(STACK0 - 4), 0);
    // #DF must be deliverable: give it its own stack via a conforming trick is not possible at
    // CPL 0, so map a second stack and point ESP0 there... the same-privilege delivery uses
    // the current ESP, which is unmapped: #DF delivery faults too and the CPU shuts down.
    expect(m.cpu.run(10)).toBe(Stop.SHUTDOWN);
  });
});

describe("paging", () => {
  const mk = (insns: Insn[], cpl: 0 | 3 = 0) => { const m = ring(cpl, insns); m.paging(); return m; };

  test("#PF error codes and CR2: not present read/write, user on supervisor, write to read-only", () => {
    const cases: { insns: Insn[]; setup: (m: TestMachine) => void; err: number; cpl?: 0 | 3; cr2: number }[] = [
      { insns: [{ op: "mov", dst: { reg: "eax" }, src: { mem: { disp: 0x500004 } } }], setup: (m) => m.w32(m.pte(0x500000), 0), err: 0, cr2: 0x500004 },
      { insns: [{ op: "mov", dst: { mem: { disp: 0x500ffe } }, src: { reg: "eax" } }], setup: (m) => m.w32(m.pte(0x501000), 0), err: 2, cr2: 0x501000 },
      { insns: [{ op: "mov", dst: { reg: "eax" }, src: { mem: { disp: DATA } } }], setup: (m) => m.w32(m.pte(DATA), DATA | 3), err: 5, cpl: 3, cr2: DATA },
      { insns: [{ op: "mov", dst: { mem: { disp: DATA } }, src: { reg: "eax" } }], setup: (m) => m.w32(m.pte(DATA), DATA | 5), err: 7, cpl: 3, cr2: DATA },
      { insns: [{ op: "mov", dst: { mem: { disp: DATA } }, src: { reg: "eax" } }], setup: (m) => { m.w32(m.pte(DATA), DATA | 5); m.cpu.cr0 |= 0x10000; }, err: 3, cr2: DATA },
      { insns: [{ op: "mov", dst: { mem: { disp: 0x500000 } }, src: { reg: "eax" } }], setup: (m) => m.w32(m.pde(0x500000), m.r32(m.pde(0x500000)) & ~4), err: 7, cpl: 3, cr2: 0x500000 },
    ];
    for (const c of cases) {
      const m = mk(c.insns, c.cpl ?? 0);
      c.setup(m);
      m.cpu.flushTlb();
      m.cpu.run(10);
      expect(m.exception()).toMatchObject({ vector: 14, err: c.err, eip: CODE });
      expect(m.cpu.cr2).toBe(c.cr2);
    }
  });

  test("a read-modify-write whose store faults leaves EFLAGS as before it (the frame's EFLAGS), interpreted or translated", () => {
    // SDM Vol. 3 6.5: a fault reports the state before the faulting instruction. Each form
    // reads DATA (read-only under CR0.WP) and faults on its write; the flags come from the
    // CMP before it (1 - 2: CF SF AF PF set, ZF OF clear).
    const forms: Insn[] = [
      { op: "add", dst: { mem: { disp: DATA } }, src: { reg: "eax" } },
      { op: "adc", dst: { mem: { disp: DATA } }, src: { imm: 1 }, size: 32 },
      { op: "sub", dst: { mem: { disp: DATA } }, src: { reg: "eax" }, size: 8 } as Insn,
      { op: "inc", dst: { mem: { disp: DATA } }, size: 32 },
      { op: "dec", dst: { mem: { disp: DATA } }, size: 16 },
      { op: "neg", dst: { mem: { disp: DATA } }, size: 32 },
      { op: "shl", dst: { mem: { disp: DATA } }, src: { imm: 3 }, size: 32 },
      { op: "xadd", dst: { mem: { disp: DATA } }, src: { reg: "eax" } },
    ];
    for (const f of forms) {
      for (const jitThreshold of [1, 1000]) {
        const m = mk([{ op: "cmp", dst: { reg: "edx" }, src: { reg: "esi" } }, f, { op: "hlt" }]);
        m.w32(m.pte(DATA), DATA | 5); m.cpu.cr0 |= 0x10000; m.cpu.flushTlb();
        m.w32(DATA, 0x7fffffff);
        m.cpu.regs[EAX] = 1; m.cpu.regs[2] = 1; m.cpu.regs[6] = 2;
        m.cpu.jitThreshold = jitThreshold;
        m.cpu.run(10);
        expect({ f: f.op, jitThreshold, e: m.exception() }).toMatchObject({ f: f.op, jitThreshold, e: { vector: 14, err: 3, eip: CODE + 2 } });
        expect({ f: f.op, jitThreshold, flags: m.exception()!.eflags & 0x8d5 }).toEqual({ f: f.op, jitThreshold, flags: 0x095 });
        expect(m.r32(DATA)).toBe(0x7fffffff);
      }
    }
  });

  test("CR0.WP clear: ring 0 writes read-only pages", () => {
    const m = mk([{ op: "mov", dst: { mem: { disp: DATA } }, src: { reg: "eax" } }, { op: "hlt" }]);
    m.w32(m.pte(DATA), DATA | 5);
    m.cpu.regs[EAX] = 0xabcd;
    m.cpu.run(10);
    expect(m.exception()).toBeNull();
    expect(m.r32(DATA)).toBe(0xabcd);
  });

  test("instruction fetch from a not-present page: #PF with CR2 = the page", () => {
    const m = mk([{ op: "jmp", rel: 0x300000 - CODE - 5, alt: true }]);
    m.w32(m.pte(0x300000), 0);
    m.cpu.run(10);
    expect(m.exception()).toMatchObject({ vector: 14, err: 0, eip: 0x300000 });
    expect(m.cpu.cr2).toBe(0x300000);
  });

  test("accessed and dirty bits in PDE and PTE", () => {
    const m = mk([{ op: "mov", dst: { reg: "eax" }, src: { mem: { disp: 0x400010 } } }, { op: "mov", dst: { mem: { disp: 0x401010 } }, src: { reg: "eax" } }, { op: "hlt" }]);
    m.w32(m.pde(0x400000), m.r32(m.pde(0x400000)) & ~0x60);
    m.w32(m.pte(0x400000), m.r32(m.pte(0x400000)) & ~0x60);
    m.w32(m.pte(0x401000), m.r32(m.pte(0x401000)) & ~0x60);
    m.cpu.flushTlb();
    m.cpu.run(10);
    expect(m.r32(m.pde(0x400000)) & 0x20).toBe(0x20);
    expect(m.r32(m.pte(0x400000)) & 0x60).toBe(0x20); // read: A only
    expect(m.r32(m.pte(0x401000)) & 0x60).toBe(0x60); // write: A and D
  });

  test("4 MiB PSE pages: translation, dirty bit in the PDE, #PF error code on a read-only 4M page", () => {
    const m = mk([{ op: "mov", dst: { mem: { disp: 0xc00123 } }, src: { reg: "eax" } }, { op: "hlt" }]);
    m.cpu.writeCr(4, 0x10);
    m.w32(0x100000 + 3 * 4, 0x400000 | 0x83); // lin 12M -> phys 4M, PS, RW, P
    m.cpu.regs[EAX] = 0x5a5a5a5a;
    m.cpu.run(10);
    expect(m.r32(0x400123)).toBe(0x5a5a5a5a);
    expect(m.r32(0x100000 + 12) & 0x60).toBe(0x60);
    const r = mk([{ op: "mov", dst: { mem: { disp: 0xc00123 } }, src: { reg: "eax" } }], 3);
    r.cpu.writeCr(4, 0x10);
    r.w32(0x100000 + 3 * 4, 0x400000 | 0x85); // user, read-only
    r.cpu.run(10);
    expect(r.exception()).toMatchObject({ vector: 14, err: 7 });
    expect(r.cpu.cr2).toBe(0xc00123);
  });

  test("INVLPG and a CR3 write make a changed PTE visible", () => {
    const m = mk([
      { op: "mov", dst: { reg: "eax" }, src: { mem: { disp: 0x500000 } } },
      { op: "mov", dst: { mem: { disp: m0pte(0x500000) } }, src: { imm: 0x600007 }, size: 32 },
      raw(0x0f, 0x01, 0x3d, 0x00, 0x00, 0x50, 0x00), // invlpg [0x500000]
      { op: "mov", dst: { reg: "ebx" }, src: { mem: { disp: 0x500000 } } },
      { op: "mov", dst: { mem: { disp: m0pte(0x500000) } }, src: { imm: 0x700007 }, size: 32 },
      raw(0x0f, 0x20, 0xd9, 0x0f, 0x22, 0xd9), // mov ecx, cr3 ; mov cr3, ecx
      { op: "mov", dst: { reg: "edx" }, src: { mem: { disp: 0x500000 } } },
      { op: "hlt" },
    ]);
    m.w32(0x500000, 0x55); m.w32(0x600000, 0x66); m.w32(0x700000, 0x77);
    m.cpu.run(20);
    expect(m.exception()).toBeNull();
    expect([m.cpu.regs[EAX], m.cpu.regs[EBX], m.cpu.regs[2]]).toEqual([0x55, 0x66, 0x77]);
  });
});
function m0pte(lin: number): number { return 0x101000 + (lin >>> 12) * 4; }

describe("privilege transitions", () => {
  test("interrupt gate from ring 3: TSS stack switch, frame, IF cleared; IRET back to ring 3", () => {
    const m = ring(3, [{ op: "int", src: { imm: 0x80 } }, { op: "nop" }]);
    m.cpu.setFlags(0x202);
    m.cpu.run(10);
    const c = m.cpu;
    expect(c.cpl).toBe(0);
    expect(c.sel[CS]).toBe(KCODE);
    expect(c.sel[SS]).toBe(KDATA);
    expect(c.regs[ESP]).toBe(STACK0 - 20);
    expect(m.exception()).toMatchObject({ vector: 0x80, eip: CODE + 2, cs: UCODE, esp: STACK3, ss: UDATA });
    expect(m.exception()!.eflags & 0x200).toBe(0x200);
    expect(c.getFlags() & 0x200).toBe(0);
    // IRET from the handler (replace the HLT's successor with IRET): resume at the stub's next byte.
    m.w8(c.eip, 0xcf);
    c.halted = false;
    c.run(1);
    expect(c.cpl).toBe(3);
    expect(c.eip).toBe(CODE + 2);
    expect(c.regs[ESP]).toBe(STACK3);
    expect(c.sel[SS]).toBe(UDATA);
    expect(c.getFlags() & 0x200).toBe(0x200);
  });

  test("IRET to ring 3 nulls data segment registers that ring 3 may not use", () => {
    const m = ring(0, [
      { op: "push", dst: { imm: UDATA } }, { op: "push", dst: { imm: STACK3 } }, { op: "push", dst: { imm: 0x202 }, alt: true },
      { op: "push", dst: { imm: UCODE } }, { op: "push", dst: { imm: CODE + 0x100 }, alt: true }, { op: "iret" },
    ]);
    m.w8(CODE + 0x100, 0x90);
    m.cpu.run(6);
    expect(m.cpu.cpl).toBe(3);
    expect(m.cpu.eip).toBe(CODE + 0x100);
    expect(m.cpu.sel[DS]).toBe(0); // DS was the DPL-0 data segment
    expect(m.cpu.regs[ESP]).toBe(STACK3);
  });

  test("call gate from ring 3 with a parameter, far RET 4 to the outer ring", () => {
    const m = ring(3, [{ op: "push", dst: { imm: 0x1234 }, alt: true }, raw(0x9a, 0, 0, 0, 0, 0x3b, 0), { op: "nop" }]);
    const target = CODE + 0x200;
    // 32-bit call gate DPL 3 -> KCODE:target, 1 dword parameter
    m.gdt(0x38, [((KCODE << 16) | (target & 0xffff)) >>> 0, ((target & 0xffff0000) | 0xec00 | 1) >>> 0]);
    m.write(target, [0xca, 0x04, 0x00]); // retf 4
    m.cpu.run(2);
    const c = m.cpu;
    expect(c.cpl).toBe(0);
    expect(c.eip).toBe(target);
    expect(c.regs[ESP]).toBe(STACK0 - 20);
    expect([m.r32(STACK0 - 20), m.r32(STACK0 - 16), m.r32(STACK0 - 12), m.r32(STACK0 - 8), m.r32(STACK0 - 4)]).toEqual([CODE + 12, UCODE, 0x1234, STACK3 - 4, UDATA]);
    c.run(1);
    expect(c.cpl).toBe(3);
    expect(c.eip).toBe(CODE + 12);
    expect(c.sel[CS]).toBe(UCODE);
    expect(c.regs[ESP]).toBe(STACK3); // the parameter is released
  });

  test("INT n through a DPL 0 gate from ring 3: #GP(vector*8+2)", () => {
    const m = ring(3, [{ op: "int", src: { imm: 0x30 } }]);
    m.cpu.run(10);
    expect(m.exception()).toMatchObject({ vector: 13, err: 0x30 * 8 + 2, eip: CODE });
  });

  test("privileged instructions at ring 3: HLT, CLI, MOV CR0, LGDT are #GP(0)", () => {
    for (const bytes of [[0xf4], [0xfa], [0x0f, 0x20, 0xc0], [0x0f, 0x01, 0x15, 0, 0, 2, 0]]) {
      const m = ring(3, [raw(...bytes)]);
      m.cpu.run(10);
      expect(m.exception()).toMatchObject({ vector: 13, err: 0, eip: CODE });
    }
  });
});

describe("I/O permission", () => {
  test("IN/OUT at ring 3: allowed by IOPL, else by the TSS bitmap, else #GP(0)", () => {
    const prog: Insn[] = [{ op: "out", dst: { imm: 0x61 }, src: { reg: "al" } }, { op: "in", dst: { reg: "ax" }, src: { reg: "dx" } }, { op: "nop" }];
    const m = ring(3, prog);
    m.cpu.regs[2] = 0x60;
    m.w8(TSS + 0x68 + (0x60 >> 3), 1 << (0x60 & 7));
    m.cpu.run(10);
    expect(m.io.map((x) => x.port)).toEqual([0x61]);
    expect(m.exception()).toMatchObject({ vector: 13, err: 0, eip: CODE + 2 });
    // 16-bit access at 0x5f covers 0x60 too
    const w = ring(3, [{ op: "in", dst: { reg: "ax" }, src: { reg: "dx" } }]);
    w.cpu.regs[2] = 0x5f;
    w.w8(TSS + 0x68 + (0x60 >> 3), 1);
    w.cpu.run(10);
    expect(w.exception()?.vector).toBe(13);
    // IOPL 3: the bitmap is not consulted
    const p = ring(3, prog);
    p.cpu.regs[2] = 0x60;
    p.w8(TSS + 0x68 + (0x60 >> 3), 1);
    p.cpu.setFlags(0x3002);
    p.cpu.run(3);
    expect(p.io.map((x) => [x.dir, x.port, x.size])).toEqual([["out", 0x61, 1], ["in", 0x60, 2]]);
    expect(p.cpu.regs[EAX]! & 0xffff).toBe(0x5678);
  });

  test("REP OUTSB checks every port access; real mode needs no check", () => {
    const m = new TestMachine();
    m.real(0x7c00);
    m.code(0x7c00, [{ op: "mov", dst: { reg: "dx" }, src: { imm: 0x3f8 } }, { op: "mov", dst: { reg: "si" }, src: { imm: 0x600 } }, { op: "mov", dst: { reg: "cx" }, src: { imm: 3 } }, { op: "outs", size: 8, rep: "rep" }, { op: "hlt" }], false);
    m.write(0x600, [0x41, 0x42, 0x43]);
    expect(m.cpu.run(100)).toBe(Stop.HALT);
    expect(m.io.map((x) => x.value)).toEqual([0x41, 0x42, 0x43]);
    expect(m.cpu.icount).toBe(3 + 3 + 1);
  });
});

describe("real mode", () => {
  test("INT n pushes FLAGS, CS, IP and clears IF/TF; IRET returns", () => {
    const m = new TestMachine();
    m.real(0x7c00);
    m.code(0x7c00, [{ op: "sti" }, { op: "int", src: { imm: 0x21 } }, { op: "nop" }], false);
    m.cpu.run(2);
    expect(m.cpu.eip).toBe(0x500 + 0x21);
    expect(m.cpu.regs[ESP]).toBe(0x7000 - 6);
    expect([m.r16(0x7000 - 6), m.r16(0x7000 - 4), m.r16(0x7000 - 2) & 0x200]).toEqual([0x7c03, 0, 0x200]);
    expect(m.cpu.getFlags() & 0x200).toBe(0);
    m.w8(0x521, 0xcf); // iret
    m.cpu.run(1);
    expect(m.cpu.eip).toBe(0x7c03);
    expect(m.cpu.getFlags() & 0x200).toBe(0x200);
  });

  test("#DE in real mode returns to the faulting DIV; 16-bit addressing and segment bases", () => {
    const m = new TestMachine();
    m.real(0x7c00);
    m.code(0x7c00, [
      { op: "mov", dst: { reg: "ax" }, src: { imm: 0x1000 } }, { op: "mov", dst: { reg: "ds" }, src: { reg: "ax" } },
      { op: "mov", dst: { reg: "bx" }, src: { imm: 0x10 } }, { op: "mov", dst: { reg: "si" }, src: { imm: 0x4 } },
      { op: "mov", dst: { mem: { base: "bx", index: "si", disp: 2 } }, src: { imm: 0xbeef }, size: 16 },
      { op: "xor", dst: { reg: "cl" }, src: { reg: "cl" } }, { op: "div", dst: { reg: "cl" } },
    ], false);
    m.cpu.run(100);
    expect(m.r16(0x10000 + 0x16)).toBe(0xbeef);
    expect(m.cpu.eip).toBe(0x500 + 1); // past the HLT stub of vector 0
    expect(m.r16(0x7000 - 6)).toBe(0x7c00 + 3 + 2 + 3 + 3 + 5 + 2);
  });
});

void ECX; void GDT; void EBX;
