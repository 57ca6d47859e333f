/**
 * The i686 model (model.ts): CPUID, MSRs, SYSENTER/SYSEXIT, RDPMC, CR4 (TSD, PGE, PCE, DE),
 * global pages, CR0.WP, and the legacy model rrx-i586 keeping its old answers. Expected values
 * come from the Intel SDM (instruction pages and Vol. 3), not from the code.
 */
import { describe, expect, test } from "bun:test";
import { Stop, EAX, EBX, ECX, EDX, ESP, EBP, EDI } from "./cpu.ts";
import { CS, DS, SS } from "./decode.ts";
import { MODEL_I586, MODEL_I686, family } from "./model.ts";
import { TestMachine, CODE, DATA, STACK3, KDATA, UDATA, descriptor, compareRuns } from "../../../test/cpu/machine.ts";
import type { Insn } from "../../../test/support/x86-encoder.ts";
import { StateReader, StateWriter } from "../../machine/snapshot.ts";

const raw = (...bytes: number[]): Insn => ({ op: "raw", bytes });
const HLT: Insn = { op: "hlt" };
const RDMSR = raw(0x0f, 0x32), WRMSR = raw(0x0f, 0x30), RDTSC = raw(0x0f, 0x31), RDPMC = raw(0x0f, 0x33);
const SYSENTER = raw(0x0f, 0x34), SYSEXIT = raw(0x0f, 0x35), CPUID = raw(0x0f, 0xa2);

function ring(cpl: 0 | 3, insns: Insn[], model = MODEL_I686): TestMachine {
  const m = new TestMachine(8 << 20, model);
  m.flat(cpl);
  m.code(CODE, insns);
  return m;
}
/** Run until HLT: the vector of the exception taken, or null if the code's own HLT was reached. */
function vector(m: TestMachine, n = 100): number | null {
  const s = m.cpu.run(n);
  expect(s).toBe(Stop.HALT);
  return m.exception()?.vector ?? null;
}
const str = (s: string) => [0, 4, 8].map((o) => s.charCodeAt(o) | (s.charCodeAt(o + 1) << 8) | (s.charCodeAt(o + 2) << 16) | ((s.charCodeAt(o + 3) << 24) >>> 0));

function cpuid(model: typeof MODEL_I686, leaf: number): number[] {
  const m = ring(0, [CPUID, HLT], model);
  m.cpu.regs[EAX] = leaf;
  m.cpu.regs[ECX] = 0;
  m.cpu.run(10);
  return [EAX, EBX, ECX, EDX].map((r) => m.cpu.regs[r]!);
}

describe("CPUID", () => {
  test("i686: GenuineIntel, max leaf 2, family 6 model 1 stepping 9, the implemented features", () => {
    const [g, i, n] = str("GenuineIntel");
    expect(cpuid(MODEL_I686, 0)).toEqual([2, g, n, i]); // EBX "Genu", EDX "ineI", ECX "ntel"
    const [a, b, c, d] = cpuid(MODEL_I686, 1);
    expect([(a! >> 8) & 0xf, (a! >> 4) & 0xf, a! & 0xf]).toEqual([6, 1, 9]);
    expect([b, c]).toEqual([0, 0]);
    // DE PSE TSC MSR MCE CX8 SEP PGE MCA CMOV: bits 2 3 4 5 7 8 11 13 14 15.
    expect(d! & ~1).toBe((1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 7) | (1 << 8) | (1 << 11) | (1 << 13) | (1 << 14) | (1 << 15));
    // Nothing rrx does not implement: VME PAE APIC MTRR PAT PSE36 MMX FXSR.
    for (const bit of [1, 6, 9, 12, 16, 17, 23, 24]) expect((d! >>> bit) & 1).toBe(0);
    // SDM (CPUID, SEP): SEP is not supported when family 6, model < 3 and stepping < 3.
    expect(!((a! >> 8 & 0xf) === 6 && ((a! >> 4) & 0xf) < 3 && (a! & 0xf) < 3)).toBe(true);
    expect(family(MODEL_I686)).toBe(6);
  });

  test("i686: leaf 2 null descriptors, the brand string, and the last basic leaf past the end", () => {
    expect(cpuid(MODEL_I686, 2)).toEqual([1, 0, 0, 0]);
    expect(cpuid(MODEL_I686, 0x80000000)[0]).toBe(0x80000004);
    expect(cpuid(MODEL_I686, 0x80000001)).toEqual([0, 0, 0, 0]);
    const bytes: number[] = [];
    for (let l = 0x80000002; l <= 0x80000004; l++) for (const v of cpuid(MODEL_I686, l)) for (let k = 0; k < 4; k++) bytes.push((v >>> (8 * k)) & 0xff);
    const brand = String.fromCharCode(...bytes);
    expect(brand.replace(/\0+$/, "")).toBe(MODEL_I686.brand!);
    expect(brand.length).toBe(48);
    expect(brand.endsWith("\0")).toBe(true);
    // SDM: "If a value entered for CPUID.EAX is higher than the maximum input value for basic or
    // extended function for that processor then the data for the highest basic information leaf
    // is returned."
    expect(cpuid(MODEL_I686, 3)).toEqual([1, 0, 0, 0]);
    expect(cpuid(MODEL_I686, 0x40000000)).toEqual([1, 0, 0, 0]);
    expect(cpuid(MODEL_I686, 0x80000008)).toEqual([1, 0, 0, 0]);
  });

  test("rrx-i586 answers as every old log saw it", () => {
    const [g, i, n] = str("GenuineIntel");
    expect(cpuid(MODEL_I586, 0)).toEqual([1, g, n, i]);
    expect(cpuid(MODEL_I586, 1)).toEqual([0x543, 0, 0, (1 << 2) | (1 << 3) | (1 << 4) | (1 << 8) | (1 << 15)]);
    expect(cpuid(MODEL_I586, 2)).toEqual([0, 0, 0, 0]);
    expect(cpuid(MODEL_I586, 0x80000000)).toEqual([0, 0, 0, 0]);
  });
});

describe("RDMSR/WRMSR", () => {
  const rd = (n: number, cpl: 0 | 3 = 0, model = MODEL_I686) => {
    const m = ring(cpl, [RDMSR, HLT], model);
    m.cpu.regs[ECX] = n;
    const v = vector(m);
    return { v, lo: m.cpu.regs[EAX]!, hi: m.cpu.regs[EDX]!, m };
  };

  test("#UD without the MSR feature (rrx-i586), #GP(0) at CPL 3 or for an MSR that does not exist", () => {
    expect(rd(0x10, 0, MODEL_I586).v).toBe(6);
    expect(rd(0x10, 3).v).toBe(13);
    expect(rd(0x10, 3).m.exception()!.err).toBe(0);
    for (const n of [0x1b /* APIC base: no APIC */, 0x17, 0x79, 0x1a0, 0x200, 0xc0000080, 0x11]) {
      const r = rd(n);
      expect(r.v).toBe(13);
      expect(r.m.exception()!.err).toBe(0);
    }
    const m = ring(0, [WRMSR, HLT]);
    m.cpu.regs[ECX] = 0x1b;
    expect(vector(m)).toBe(13);
  });

  test("SYSENTER_CS/ESP/EIP read back what was written; BIOS_SIGN_ID gives the revision in EDX", () => {
    const m = ring(0, [WRMSR, { op: "inc", dst: { reg: "ecx" } }, { op: "mov", dst: { reg: "eax" }, src: { imm: 0xc0001000 } }, WRMSR,
      { op: "inc", dst: { reg: "ecx" } }, { op: "mov", dst: { reg: "eax" }, src: { imm: 0xc0100000 } }, WRMSR,
      { op: "mov", dst: { reg: "ecx" }, src: { imm: 0x174 } }, RDMSR, { op: "mov", dst: { reg: "esi" }, src: { reg: "eax" } },
      { op: "mov", dst: { reg: "ecx" }, src: { imm: 0x175 } }, RDMSR, { op: "mov", dst: { reg: "edi" }, src: { reg: "eax" } },
      { op: "mov", dst: { reg: "ecx" }, src: { imm: 0x176 } }, RDMSR, HLT]);
    m.cpu.regs[ECX] = 0x174; m.cpu.regs[EAX] = 0x60; m.cpu.regs[EDX] = 0;
    expect(vector(m)).toBeNull();
    expect([m.cpu.regs[6], m.cpu.regs[7], m.cpu.regs[EAX], m.cpu.regs[EDX]]).toEqual([0x60, 0xc0001000, 0xc0100000, 0]);
    expect([m.cpu.sysenterCs, m.cpu.sysenterEsp, m.cpu.sysenterEip]).toEqual([0x60, 0xc0001000, 0xc0100000]);
    const r = rd(0x8b);
    expect(r.v).toBeNull();
    expect([r.lo, r.hi]).toEqual([0, 0]);
  });

  test("machine check: MCG_CAP reports 5 banks and MCG_CTL; CTLs read back; STATUS reads 0 and takes only 0; ADDR/MISC #GP", () => {
    const acc = (n: number, write: boolean, eax = 0, edx = 0) => {
      const m = ring(0, [write ? WRMSR : RDMSR, HLT]);
      m.cpu.regs[ECX] = n; m.cpu.regs[EAX] = eax; m.cpu.regs[EDX] = edx;
      return { v: vector(m), lo: m.cpu.regs[EAX]!, hi: m.cpu.regs[EDX]!, m };
    };
    const cap = acc(0x179, false);
    expect([cap.v, cap.lo, cap.hi]).toEqual([null, 0x105, 0]);
    expect(acc(0x179, true).v).toBe(13);
    for (const n of [0x17a, 0x401, 0x405, 0x411]) {
      const r = acc(n, false, 0x55, 0x66);
      expect([r.v, r.lo, r.hi]).toEqual([null, 0, 0]);
      expect(acc(n, true).v).toBeNull();
      expect(acc(n, true, 1).v).toBe(13);
      expect(acc(n, true, 0, 0x80000000).v).toBe(13);
    }
    for (const n of [0x402, 0x403, 0x412, 0x413, 0x414 /* no bank 5 */]) expect(acc(n, false).v).toBe(13);
    // MCG_CTL and MC0..4_CTL keep 64 bits each, in the snapshot.
    const m = ring(0, [WRMSR, { op: "mov", dst: { reg: "ecx" }, src: { imm: 0x410 } }, WRMSR, HLT]);
    m.cpu.regs[ECX] = 0x17b; m.cpu.regs[EAX] = 0xffffffff; m.cpu.regs[EDX] = 0x12345678;
    expect(vector(m)).toBeNull();
    const st = m.state();
    const r = ring(0, [RDMSR, { op: "mov", dst: { reg: "esi" }, src: { reg: "edx" } }, { op: "mov", dst: { reg: "ecx" }, src: { imm: 0x410 } }, RDMSR, HLT]);
    r.cpu.restore(new StateReader(st));
    r.cpu.eip = CODE; r.cpu.halted = false; r.cpu.regs[ECX] = 0x17b;
    expect(vector(r)).toBeNull();
    expect([r.cpu.regs[6], r.cpu.regs[EAX], r.cpu.regs[EDX]]).toEqual([0x12345678, 0xffffffff, 0x12345678]);
    // rrx-i586: no MSRs at all.
    expect(rd(0x179, 0, MODEL_I586).v).toBe(6);
  });

  test("TSC: RDMSR reads what RDTSC does; WRMSR writes the low 32 bits and clears the high ones (P6)", () => {
    const m = ring(0, [RDMSR, { op: "mov", dst: { reg: "esi" }, src: { reg: "eax" } }, { op: "mov", dst: { reg: "edi" }, src: { reg: "edx" } }, HLT]);
    m.tsc = 0x123456789a;
    m.cpu.regs[ECX] = 0x10;
    expect(vector(m)).toBeNull();
    expect([m.cpu.regs[6], m.cpu.regs[7]]).toEqual([0x3456789a, 0x12]);
    // WRMSR TSC <- EDX:EAX = 7:0x100 at bus time 1000; 50 units later RDTSC gives 0x150, EDX 0.
    const w = ring(0, [WRMSR, HLT, RDTSC, HLT]);
    w.tsc = 1000;
    w.cpu.regs[ECX] = 0x10; w.cpu.regs[EAX] = 0x100; w.cpu.regs[EDX] = 7;
    expect(vector(w)).toBeNull();
    w.tsc = 1050;
    w.cpu.halted = false;
    expect(vector(w)).toBeNull();
    expect([w.cpu.regs[EAX], w.cpu.regs[EDX]]).toEqual([0x100 + 50, 0]);
    // A value below the bus count: the offset is negative and the counter goes on from it.
    w.cpu.eip = CODE; w.cpu.halted = false;
    w.cpu.regs[EAX] = 0x10; w.cpu.regs[EDX] = 0xffffffff;
    vector(w);
    w.tsc = 1300; w.cpu.halted = false;
    vector(w);
    expect([w.cpu.regs[EAX], w.cpu.regs[EDX]]).toEqual([0x10 + 250, 0]);
  });

  test("the MSRs are in the snapshot of MSR models only: rrx-i586's bytes are unchanged", () => {
    const a = ring(0, [HLT]), b = ring(0, [HLT], MODEL_I586);
    expect(a.state().length).toBe(b.state().length + 20 + 40 + 48 + 101); // MSRs, P6 counters, MCA; then the x87 (x87.test.ts)
    a.cpu.sysenterCs = 0x60; a.cpu.sysenterEsp = 0x1234; a.cpu.sysenterEip = 0x5678; a.cpu.tscOffset = -5n;
    const bytes = a.state();
    const c = new TestMachine(8 << 20, MODEL_I686);
    c.cpu.restore(new StateReader(bytes));
    expect([c.cpu.sysenterCs, c.cpu.sysenterEsp, c.cpu.sysenterEip, c.cpu.tscOffset]).toEqual([0x60, 0x1234, 0x5678, -5n]);
    expect(Buffer.compare(c.state(), bytes)).toBe(0);
  });
});

describe("SYSENTER/SYSEXIT", () => {
  const SYS_CS = 0x40; // 0x40 ring-0 code, 0x48 ring-0 stack, 0x50 ring-3 code, 0x58 ring-3 stack
  const setup = (cpl: 0 | 3, insns: Insn[], model = MODEL_I686) => {
    const m = ring(cpl, insns, model);
    m.cpu.sysenterCs = SYS_CS; m.cpu.sysenterEsp = 0x7ff0; m.cpu.sysenterEip = 0x30000;
    m.write(0x30000, [0xf4]);
    return m;
  };

  test("SYSENTER from ring 3: flat ring-0 CS/SS from SYSENTER_CS, ESP/EIP from the MSRs, IF cleared", () => {
    const m = setup(3, [SYSENTER]);
    m.cpu.setFlags(0x202);
    m.cpu.run(1);
    const c = m.cpu;
    expect([c.sel[CS], c.sel[SS], c.cpl, c.eip, c.regs[ESP]]).toEqual([SYS_CS, SYS_CS + 8, 0, 0x30000, 0x7ff0]);
    expect([c.segBase[CS], c.segLimit[CS], c.segAr[CS], c.segBase[SS], c.segLimit[SS], c.segAr[SS]]).toEqual([0, 0xffffffff, 0xc09b, 0, 0xffffffff, 0xc093]);
    expect(c.getFlags() & 0x200).toBe(0);
    expect(c.code32 && c.stack32).toBe(true);
    expect(c.sel[DS]).toBe(UDATA); // data segments untouched
  });

  test("SYSEXIT to ring 3: CS = SYSENTER_CS+16|3, SS = +24|3, EIP = EDX, ESP = ECX", () => {
    const m = setup(0, [SYSEXIT]);
    m.cpu.regs[EDX] = 0x31000; m.cpu.regs[ECX] = 0x9000;
    m.cpu.run(1);
    const c = m.cpu;
    expect([c.sel[CS], c.sel[SS], c.cpl, c.eip, c.regs[ESP]]).toEqual([SYS_CS + 16 + 3, SYS_CS + 24 + 3, 3, 0x31000, 0x9000]);
    expect([c.segLimit[CS], c.segAr[CS], c.segAr[SS]]).toEqual([0xffffffff, 0xc0fb, 0xc0f3]);
  });

  test("a SYSENTER/SYSEXIT loop runs the same in single-step, interpreted and translated blocks", () => {
    const mk = (mode: "step" | "interp" | "jit") => {
      // Ring 3: loop { inc esi; mov edx, back; mov ecx, esp; sysenter; back: dec ebx; jnz loop }; hlt (#GP).
      const m = setup(3, [
        { op: "inc", dst: { reg: "esi" } }, { op: "mov", dst: { reg: "edx" }, src: { imm: CODE + 1 + 5 + 2 + 2 } },
        { op: "mov", dst: { reg: "ecx" }, src: { reg: "esp" } }, SYSENTER,
        { op: "dec", dst: { reg: "ebx" } }, raw(0x75, 0xf1), HLT,
      ]);
      // Ring 0 at SYSENTER_EIP: inc edi; sysexit.
      m.write(0x30000, [0x47, 0x0f, 0x35]);
      m.cpu.regs[EBX] = 300;
      if (mode === "step") m.cpu.singleStep = true;
      m.cpu.jitThreshold = mode === "jit" ? 1 : 1 << 30;
      return m;
    };
    const step = mk("step");
    expect(vector(step, 10_000)).toBe(13); // the final HLT at CPL 3
    expect([step.cpu.regs[6], step.cpu.regs[7], step.cpu.regs[EBX]]).toEqual([300, 300, 0]);
    for (const mode of ["interp", "jit"] as const) {
      compareRuns(mk("step"), mk(mode), [1, 7, 13, 100, 1000], 40, () => mode);
    }
  });

  test("#GP(0) with SYSENTER_CS null, SYSEXIT at CPL 3, either in real mode; #UD without SEP", () => {
    const m = setup(3, [SYSENTER]);
    m.cpu.sysenterCs = 3;
    expect(vector(m)).toBe(13);
    expect(m.exception()!.err).toBe(0);
    expect(vector(setup(3, [SYSEXIT]))).toBe(13);
    const z = setup(0, [SYSEXIT]);
    z.cpu.sysenterCs = 0;
    expect(vector(z)).toBe(13);
    expect(vector(setup(3, [SYSENTER], MODEL_I586))).toBe(6);
    const r = new TestMachine(8 << 20, MODEL_I686);
    r.real(0x7c00);
    r.code(0x7c00, [SYSENTER], false);
    r.cpu.sysenterCs = SYS_CS;
    r.cpu.run(10);
    expect(r.cpu.eip).toBe(0x500 + 13 + 1);
  });
});

describe("CR4, RDTSC, RDPMC, WBINVD/INVD, MOV DR4/DR5", () => {
  const movCr4 = (v: number, model = MODEL_I686) => {
    const m = ring(0, [{ op: "mov", dst: { reg: "eax" }, src: { imm: v } }, raw(0x0f, 0x22, 0xe0), HLT], model);
    return vector(m);
  };
  test("CR4 takes the bits of reported features only (#GP(0) for PAE, VME, OSFXSR on i686)", () => {
    for (const b of [0x4, 0x8, 0x10, 0x40, 0x80, 0x100]) expect(movCr4(b)).toBeNull();
    for (const b of [0x1, 0x2, 0x20, 0x200, 0x400, 0x800]) expect(movCr4(b)).toBe(13);
    // rrx-i586 accepts what it always did.
    for (const b of [0x1, 0x80, 0x200]) expect(movCr4(b, MODEL_I586)).toBeNull();
    expect(movCr4(0x100, MODEL_I586)).toBe(13);
  });

  test("CR4.TSD: RDTSC is #GP(0) at CPL 3, allowed at CPL 0", () => {
    const m = ring(3, [RDTSC, HLT]);
    m.cpu.cr4 = 4;
    expect(vector(m)).toBe(13);
    const k = ring(0, [RDTSC, HLT]);
    k.cpu.cr4 = 4; k.tsc = 77;
    expect(vector(k)).toBeNull();
    expect(k.cpu.regs[EAX]).toBe(77);
    const u = ring(3, [RDTSC, HLT]);
    u.tsc = 5;
    expect(vector(u)).toBe(13); // the HLT at CPL 3
    expect(u.cpu.regs[EAX]).toBe(5);
  });

  test("RDPMC: #GP(0) at CPL 3 without CR4.PCE, for ECX > 1; reads PerfCtr0/1 at CPL 0 or with PCE; #UD on rrx-i586", () => {
    for (const [cpl, cr4, ecx, v] of [[3, 0, 0, 13], [3, 0x100, 0, null], [0, 0, 1, null], [0, 0, 2, 13], [3, 0x100, 0x40000000, 13]] as const) {
      const m = ring(cpl, [RDPMC, HLT]);
      m.cpu.cr4 = cr4; m.cpu.regs[ECX] = ecx; m.cpu.regs[EAX] = 0x55; m.cpu.regs[EDX] = 0x66;
      if (v === null) {
        expect(vector(m)).toBe(cpl === 3 ? 13 : null); // the HLT at CPL 3
        expect([m.cpu.regs[EAX], m.cpu.regs[EDX]]).toEqual([0, 0]); // an unused counter reads 0
      } else {
        expect(vector(m)).toBe(13);
        expect(m.exception()!.err).toBe(0);
        expect(m.exception()!.eip).toBe(CODE);
      }
    }
    expect(vector(ring(0, [RDPMC], MODEL_I586))).toBe(6);
  });

  const NOP: Insn = { op: "raw", bytes: [0x90] };
  const setEcx = (v: number): Insn => ({ op: "mov", dst: { reg: "ecx" }, src: { imm: v } });
  const setEax = (v: number): Insn => ({ op: "mov", dst: { reg: "eax" }, src: { imm: v } });
  /** PerfEvtSel0 <- sel, n NOPs, RDMSR PerfCtr0 (value in ESI) and RDPMC 1 (value in EDI). */
  const pmuProg = (sel: number, sel1: number, n: number): Insn[] => [
    setEcx(0x187), setEax(sel1), WRMSR, setEcx(0x186), setEax(sel), WRMSR,
    ...Array<Insn>(n).fill(NOP),
    setEcx(0xc1), RDMSR, { op: "mov", dst: { reg: "esi" }, src: { reg: "eax" } },
    setEcx(1), RDPMC, { op: "mov", dst: { reg: "edi" }, src: { reg: "eax" } }, HLT];

  test("P6 counters: event C0h in both rings counts the instructions retired, in every execution mode", () => {
    const EN = 1 << 22, USR_OS = 3 << 16;
    for (const mode of ["step", "interp", "jit"] as const) {
      for (const n of [0, 1, 7, 100]) {
        const m = ring(0, pmuProg(EN | USR_OS | 0xc0, USR_OS | 0xc0, n));
        m.cpu.regs[EDX] = 0;
        if (mode === "step") m.cpu.singleStep = true;
        m.cpu.jitThreshold = mode === "jit" ? 1 : 1 << 30;
        expect(vector(m, 1000)).toBeNull();
        // counter 0: the n NOPs and `mov ecx` after the enabling WRMSR; counter 1 (enabled by
        // PerfEvtSel0's EN) also the three instructions up to its RDPMC.
        expect([m.cpu.regs[6], m.cpu.regs[7]]).toEqual([n + 1, n + 4]);
      }
    }
  });

  test("P6 counters: no count without EN, with one ring only, or for other events; writes sign-extend bit 31 to 40 bits", () => {
    const EN = 1 << 22, USR_OS = 3 << 16;
    for (const sel of [USR_OS | 0xc0, EN | (1 << 16) | 0xc0, EN | (1 << 17) | 0xc0, EN | USR_OS | 0x79, EN | USR_OS | (1 << 23) | 0xc0]) {
      const m = ring(0, pmuProg(sel, 0, 5));
      m.cpu.regs[EDX] = 0;
      expect(vector(m, 1000)).toBeNull();
      expect([m.cpu.regs[6], m.cpu.regs[7]]).toEqual([0, 0]);
    }
    // Linux's check: read PerfCtr0, flip the low 16 bits, write, read back the same.
    const w = ring(0, [setEcx(0xc1), setEax(0x8000ffff), WRMSR, RDMSR, { op: "mov", dst: { reg: "esi" }, src: { reg: "edx" } },
      setEax(0x1234), WRMSR, RDMSR, HLT]);
    w.cpu.regs[EDX] = 0x5;
    expect(vector(w)).toBeNull();
    expect([w.cpu.regs[6], w.cpu.regs[EAX], w.cpu.regs[EDX]]).toEqual([0xff, 0x1234, 0]);
    // rrx-i586 has no counters: #GP(0).
    const r = ring(0, [RDMSR, HLT], MODEL_I586);
    r.cpu.regs[ECX] = 0xc1;
    expect(vector(r)).toBe(6); // no MSRs at all on rrx-i586: #UD
  });

  test("P6 counters survive save/restore mid-count", () => {
    const EN = 1 << 22, USR_OS = 3 << 16;
    const prog = pmuProg(EN | USR_OS | 0xc0, 0, 50);
    const a = ring(0, prog);
    a.cpu.regs[EDX] = 0;
    a.cpu.run(30); // mid-NOPs
    const w = new StateWriter(); a.cpu.save(w);
    const b = ring(0, prog);
    b.cpu.restore(new StateReader(w.finish()));
    expect(vector(b, 1000)).toBeNull();
    expect(b.cpu.regs[6]).toBe(51);
  });

  test("WBINVD and INVD: no-ops at CPL 0, #GP(0) at CPL 3", () => {
    for (const op of [0x08, 0x09]) {
      const m = ring(0, [raw(0x0f, op), HLT]);
      expect(vector(m)).toBeNull();
      expect(m.cpu.icount).toBe(2);
      expect(vector(ring(3, [raw(0x0f, op)]))).toBe(13);
    }
  });

  test("MOV to/from DR4/DR5 alias DR6/DR7 unless CR4.DE, then #UD", () => {
    const m = ring(0, [raw(0x0f, 0x21, 0xe0), HLT]); // mov eax, dr4
    m.cpu.dr[6] = 0xffff0ff1;
    expect(vector(m)).toBeNull();
    expect(m.cpu.regs[EAX]).toBe(0xffff0ff1);
    const d = ring(0, [raw(0x0f, 0x23, 0xe8), HLT]); // mov dr5, eax
    d.cpu.cr4 = 8;
    expect(vector(d)).toBe(6);
  });
});

describe("paging: global pages, CR0.WP, 4 MiB pages", () => {
  const X = 0x200000, Y = 0x201000; // two identity-mapped pages holding 0x11111111 / 0x22222222
  const remapTest = (global: boolean, pge: boolean, flush: Insn[]) => {
    const m = ring(0, [
      { op: "mov", dst: { reg: "eax" }, src: { mem: { disp: X } } },
      // Point X's PTE at Y's frame, without INVLPG.
      { op: "mov", dst: { mem: { disp: 0 } }, src: { imm: Y | 3 | (global ? 0x100 : 0) }, size: 32 },
      ...flush,
      { op: "mov", dst: { reg: "ebx" }, src: { mem: { disp: X } } },
      HLT,
    ]);
    m.paging();
    m.w32(X, 0x11111111); m.w32(Y, 0x22222222);
    m.w32(m.pte(X), X | 3 | (global ? 0x100 : 0));
    // The PTE store's address: patch the disp of the second instruction (after the 6-byte load).
    m.w32(CODE + 6 + 2, m.pte(X));
    m.cpu.cr4 = pge ? 0x80 : 0;
    m.cpu.flushBlocks();
    expect(vector(m)).toBeNull();
    expect(m.cpu.regs[EAX]).toBe(0x11111111);
    return m.cpu.regs[EBX];
  };
  const reloadCr3: Insn[] = [raw(0x0f, 0x20, 0xd9), raw(0x0f, 0x22, 0xd9)]; // mov ecx, cr3; mov cr3, ecx

  test("with CR4.PGE a global page's translation survives a CR3 write; a non-global one does not", () => {
    expect(remapTest(true, true, reloadCr3)).toBe(0x11111111);
    expect(remapTest(false, true, reloadCr3)).toBe(0x22222222);
    // Without CR4.PGE the G bit means nothing.
    expect(remapTest(true, false, reloadCr3)).toBe(0x22222222);
  });

  test("INVLPG and a CR4 write (toggling PGE) flush global translations", () => {
    expect(remapTest(true, true, [raw(0x0f, 0x01, 0x3d, ...[X & 0xff, (X >>> 8) & 0xff, (X >>> 16) & 0xff, X >>> 24])])).toBe(0x22222222);
    const toggle: Insn[] = [raw(0x0f, 0x20, 0xe1), { op: "and", dst: { reg: "ecx" }, src: { imm: ~0x80 } }, raw(0x0f, 0x22, 0xe1), { op: "or", dst: { reg: "ecx" }, src: { imm: 0x80 } }, raw(0x0f, 0x22, 0xe1)];
    expect(remapTest(true, true, toggle)).toBe(0x22222222);
  });

  test("a CR3 write drops the translations of more pages than the TLBs' lists of used pages hold", () => {
    // 40 page tables from 32 MiB up map 40960 linear pages onto one frame F1 (0x11111111); a
    // loop reads each once (more pages than tlbUsed and archUsed record, 32768). Then the first
    // page's PTE moves to F2 (0x22222222) and CR3 is written again: the read must see F2.
    const le = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
    const m = new TestMachine(8 << 20);
    m.flat(0, CODE);
    m.paging();
    const LIN = 0x2000000, PT = 0x200000, F1 = 0x300000, F2 = 0x301000, TABLES = 40;
    for (let k = 0; k < TABLES; k++) {
      m.w32(0x100000 + ((LIN >>> 22) + k) * 4, (PT + k * 0x1000) | 3);
      for (let j = 0; j < 1024; j++) m.w32(PT + k * 0x1000 + j * 4, F1 | 3);
    }
    m.w32(F1, 0x11111111); m.w32(F2, 0x22222222);
    // mov esi, LIN ; mov ecx, pages ; l: mov eax, [esi] ; add esi, 4096 ; dec ecx ; jnz l ; hlt
    m.write(CODE, [0xbe, ...le(LIN), 0xb9, ...le(TABLES * 1024), 0x8b, 0x06, 0x81, 0xc6, ...le(4096), 0x49, 0x75, 0xf5, 0xf4]);
    // mov eax, [LIN] ; hlt
    m.write(CODE + 0x100, [0xa1, ...le(LIN), 0xf4]);
    m.cpu.flushBlocks();
    expect(m.cpu.run(1e6)).toBe(Stop.HALT);
    expect(m.cpu.regs[EAX]).toBe(0x11111111);
    m.w32(PT, F2 | 3);
    m.cpu.writeCr(3, m.cpu.cr3);
    m.cpu.halted = false;
    m.cpu.eip = CODE + 0x100;
    expect(m.cpu.run(100)).toBe(Stop.HALT);
    expect(m.cpu.regs[EAX]).toBe(0x22222222);
  });

  test("rrx-i586 flushes everything on a CR3 write, as before", () => {
    const m = ring(0, [
      { op: "mov", dst: { reg: "eax" }, src: { mem: { disp: X } } },
      { op: "mov", dst: { mem: { disp: 0 } }, src: { imm: Y | 0x103 }, size: 32 },
      ...reloadCr3,
      { op: "mov", dst: { reg: "ebx" }, src: { mem: { disp: X } } },
      HLT,
    ], MODEL_I586);
    m.paging();
    m.w32(X, 0x11111111); m.w32(Y, 0x22222222);
    m.w32(m.pte(X), X | 0x103);
    m.w32(CODE + 6 + 2, m.pte(X));
    m.cpu.cr4 = 0x80;
    m.cpu.flushBlocks();
    expect(vector(m)).toBeNull();
    expect(m.cpu.regs[EBX]).toBe(0x22222222);
  });

  test("CR0.WP: a supervisor write to a read-only page succeeds with WP=0 and is #PF(P|W) with WP=1", () => {
    for (const wp of [false, true]) {
      const m = ring(0, [{ op: "mov", dst: { mem: { disp: DATA } }, src: { imm: 0x55 }, size: 32 }, HLT]);
      m.paging();
      m.w32(m.pte(DATA), DATA | 5); // user, read-only
      if (!wp) m.cpu.writeCr(0, m.cpu.cr0 & ~0x10000); else m.cpu.writeCr(0, m.cpu.cr0 | 0x10000);
      const v = vector(m);
      if (!wp) { expect(v).toBeNull(); expect(m.r32(DATA)).toBe(0x55); }
      else { expect(v).toBe(14); expect(m.exception()!.err).toBe(3); expect(m.cpu.cr2).toBe(DATA); expect(m.r32(DATA)).toBe(0); }
    }
  });

  test("CR4.PSE: a PDE with PS maps 4 MiB; without CR4.PSE the PS bit is ignored", () => {
    for (const pse of [true, false]) {
      const L = 0x00c01234; // in the 4 MiB region 0x00c00000, mapped to 0x00400000
      const m = ring(0, [{ op: "mov", dst: { reg: "eax" }, src: { mem: { disp: L } } }, HLT]);
      m.paging();
      m.w32(m.pde(L), 0x00400000 | 0x83);
      m.w32(0x00401234, 0xabcdef01);
      // Without PSE the PDE is a page-table pointer: table at 0x400000, entry 1 (0x...01234 >> 12 & 0x3ff).
      m.w32(0x00400000 + 1 * 4, 0x00500000 | 3);
      m.w32(0x00500234, 0x13572468);
      m.cpu.cr4 = pse ? 0x10 : 0;
      m.cpu.flushBlocks();
      expect(vector(m)).toBeNull();
      expect(m.cpu.regs[EAX]).toBe(pse ? 0xabcdef01 : 0x13572468);
    }
  });
});

describe("undocumented and newer encodings", () => {
  test("SALC: AL = CF ? 0xFF : 0, flags unchanged", () => {
    for (const cf of [0, 1]) {
      const m = ring(0, [raw(0xd6), HLT]);
      m.cpu.regs[EAX] = 0x12345678;
      m.cpu.setFlags(0x2 | cf);
      expect(vector(m)).toBeNull();
      expect(m.cpu.regs[EAX]).toBe(cf ? 0x123456ff : 0x12345600);
      expect(m.cpu.getFlags() & 0x8d5).toBe(cf);
    }
  });

  test("AAM and AAD with any immediate: AAM n: AH = AL / n, AL = AL mod n; AAD n: AL = AL + AH * n, AH = 0", () => {
    const run = (bytes: number[], ax: number) => { const m = ring(0, [raw(...bytes), HLT]); m.cpu.regs[EAX] = ax; vector(m); return m.cpu.regs[EAX]! & 0xffff; };
    expect(run([0xd4, 0x10], 0x0035)).toBe(0x0305);
    expect(run([0xd4, 0x07], 0x00ff)).toBe(0x2403); // 255 = 36 * 7 + 3
    expect(run([0xd5, 0x10], 0x0305)).toBe(0x0035);
    expect(run([0xd5, 0x07], 0x2403)).toBe(0x00ff);
    expect(run([0xd5, 0x00], 0x7f05)).toBe(0x0005);
  });

  test("AAD sets OF, AF, CF as the byte addition AL + AH * imm8 (Intel); AAM clears them", () => {
    const run = (bytes: number[], ax: number, model = MODEL_I686) => {
      const m = ring(0, [raw(...bytes), HLT], model);
      m.cpu.regs[EAX] = ax; m.cpu.setFlags(0x2 | 0x8d5);
      vector(m);
      return [m.cpu.regs[EAX]! & 0xffff, m.cpu.getFlags() & 0x8d5];
    };
    // 0x7f + 0x01 (AH 1 * 1): 0x80, OF (two positives give a negative), AF (0xf + 1), SF; no CF.
    expect(run([0xd5, 0x01], 0x017f)).toEqual([0x0080, 0x800 | 0x10 | 0x80]);
    // 0xff + 0x01: 0x00 with CF, AF, ZF, PF; no OF.
    expect(run([0xd5, 0x01], 0x01ff)).toEqual([0x0000, 0x1 | 0x10 | 0x40 | 0x4]);
    expect(run([0xd5, 0x01], 0x01ff, MODEL_I586)).toEqual([0x0000, 0x40 | 0x4]);
    expect(run([0xd4, 0x0a], 0x00ff)).toEqual([0x1905, 0x4]); // AAM: SZP of AL = 5, the rest clear
  });

  test("F3 0F BC/BD (TZCNT/LZCNT on BMI CPUs) run as BSF/BSR here: the F3 prefix is ignored", () => {
    const run = (op: number, src: number) => {
      const m = ring(0, [raw(0xf3, 0x0f, op, 0xc1), HLT]); // eax <- ecx
      m.cpu.regs[ECX] = src; m.cpu.regs[EAX] = 0xdead;
      vector(m);
      return [m.cpu.regs[EAX], (m.cpu.getFlags() >> 6) & 1];
    };
    expect(run(0xbc, 0x10)).toEqual([4, 0]); // TZCNT would agree here...
    expect(run(0xbd, 0x10)).toEqual([4, 0]); // ...LZCNT would give 27
    expect(run(0xbc, 0)).toEqual([0xdead, 1]); // TZCNT: 32 and CF; BSF: ZF, destination kept
  });
});

describe("known defects, fixed", () => {
  const SEG16 = 0x30; // a 16-bit (B=0) flat data segment for stacks
  const ring0With16BitStack = (insns: Insn[]) => {
    const m = ring(0, insns);
    m.gdt(SEG16, descriptor(0, 0xfffff, 0x92, 0x8));
    m.loadSeg(SS, SEG16);
    m.cpu.modeChanged();
    return m;
  };

  test("POP SS (32-bit operand) from a 16-bit stack into a 32-bit one: SP moves by the old size before SS loads", () => {
    const m = ring0With16BitStack([{ op: "pop", dst: { reg: "ss" } }, HLT]);
    m.cpu.regs[ESP] = 0x0002fffc;
    m.w32(0xfffc, KDATA);
    expect(vector(m)).toBeNull();
    expect(m.cpu.sel[SS]).toBe(KDATA);
    expect(m.cpu.regs[ESP]).toBe(0x00020000); // 0xFFFC + 4 wraps in SP; ESP's high half stays
  });

  test("POP DS from a 16-bit stack keeps ESP's high half; a faulting POP Sreg changes no register", () => {
    const m = ring0With16BitStack([{ op: "pop", dst: { reg: "ds" } }, HLT]);
    m.cpu.regs[ESP] = 0x0005fffc;
    m.w32(0xfffc, KDATA);
    expect(vector(m)).toBeNull();
    expect(m.cpu.regs[ESP]).toBe(0x00050000);
    const f = ring0With16BitStack([{ op: "pop", dst: { reg: "ds" } }, HLT]);
    f.cpu.regs[ESP] = 0x0005fffc;
    f.w32(0xfffc, 0x1000); // beyond the GDT limit: #GP(0x1000)
    expect(vector(f)).toBe(13);
    const sp = f.cpu.regs[ESP]! & 0xffff; // the frame is on the 16-bit stack: error code, EIP, CS, EFLAGS
    expect([f.r32(sp), f.r32(sp + 4)]).toEqual([0x1000, CODE]);
    expect(f.cpu.regs[ESP]! >>> 16).toBe(5);
    expect(sp).toBe(0xfffc - 16); // pushed below the unchanged SP
  });

  test("ENTER with a 32-bit operand and nesting on a 16-bit stack: FrameTemp = ESP, pushed and loaded into EBP", () => {
    const m = ring0With16BitStack([raw(0xc8, 0x08, 0x00, 0x01), HLT]); // enter 8, 1
    m.cpu.regs[ESP] = 0x00020000; m.cpu.regs[EBP] = 0x11112222;
    expect(vector(m)).toBeNull();
    expect(m.r32(0xfffc)).toBe(0x11112222); // old EBP, at SP = 0 - 4
    expect(m.r32(0xfff8)).toBe(0x0002fffc); // FrameTemp (32 bits) as the one display entry
    expect(m.cpu.regs[EBP]).toBe(0x0002fffc);
    expect(m.cpu.regs[ESP]).toBe(0x0002fff0); // SP - 8 - 8, high half kept
  });

  test("ENTER with a 16-bit operand sets BP only (SDM: BP <- FrameTemp[15:0])", () => {
    const m = ring(0, [raw(0x66, 0xc8, 0x10, 0x00, 0x00), HLT]);
    m.cpu.regs[ESP] = 0x00081230; m.cpu.regs[EBP] = 0xabcd1234;
    expect(vector(m)).toBeNull();
    expect(m.cpu.regs[EBP]).toBe(0xabcd122e);
    expect(m.cpu.regs[ESP]).toBe(0x0008121e);
  });

  test("ENTER in ring 3 whose final stack pointer is on a supervisor page: #PF(U|W|P), nothing changed", () => {
    const m = ring(3, [raw(0xc8, 0x00, 0x20, 0x00), HLT]); // enter 0x2000, 0
    m.paging();
    const final = STACK3 - 4 - 0x2000;
    m.w32(m.pte(final), (final & ~0xfff) | 3); // supervisor, writable
    m.cpu.regs[EBP] = 0x12345678;
    expect(vector(m)).toBe(14);
    const e = m.exception()!;
    expect(e.err).toBe(7);
    expect(m.cpu.cr2).toBe(final);
    expect([e.eip, e.esp]).toEqual([CODE, STACK3]);
    expect(m.cpu.regs[EBP]).toBe(0x12345678);
  });

  test("PUSHA in real mode with SP below 16 wraps within the segment; SP = 7 straddles 0xFFFF: #GP", () => {
    const m = new TestMachine();
    m.real(0x7c00);
    m.code(0x7c00, [{ op: "pusha", size: 16 }, HLT], false);
    m.cpu.loadSegReal(SS, 0x2000);
    m.cpu.regs[ESP] = 8;
    m.cpu.regs[EAX] = 0xaaaa; m.cpu.regs[EDI] = 0x7777;
    m.cpu.run(10);
    expect(m.cpu.eip).toBe(0x7c00 + 2); // its own HLT: no exception
    expect(m.cpu.regs[ESP]).toBe(0xfff8);
    expect(m.r16(0x20000 + 6)).toBe(0xaaaa); // AX at SP-2
    expect(m.r16(0x20000 + 0xfffe)).toBe(8); // SP (as before PUSHA) after the wrap
    expect(m.r16(0x20000 + 0xfff8)).toBe(0x7777); // DI last
    const g = new TestMachine();
    g.real(0x7c00);
    g.code(0x7c00, [{ op: "pusha", size: 16 }, HLT], false);
    g.cpu.regs[ESP] = 7;
    g.cpu.run(10);
    expect(g.cpu.eip).toBe(0x500 + 13 + 1);
  });

  test("BOUND with its operand at offset 0xFFFE: the upper bound is read at offset 0 (16-bit wrap)", () => {
    for (const [ax, br] of [[7, false], [11, true]] as const) {
      const m = new TestMachine();
      m.real(0x7c00);
      m.code(0x7c00, [{ op: "mov", dst: { reg: "bx" }, src: { imm: 0x1000 } }, { op: "mov", dst: { reg: "ds" }, src: { reg: "bx" } }, raw(0x62, 0x06, 0xfe, 0xff), HLT], false);
      m.w16(0x1fffe, 5); m.w16(0x10000, 10);
      m.cpu.regs[EAX] = ax;
      m.cpu.run(10);
      expect(m.cpu.eip).toBe(br ? 0x500 + 5 + 1 : 0x7c00 + 3 + 2 + 4 + 1);
    }
  });

  test("CMPXCHG8B: a read-only second half faults before the first is written; failure writes back (#PF)", () => {
    const A = DATA + 0xffc; // halves in two pages
    const mk = (eq: boolean) => {
      const m = ring(0, [raw(0x0f, 0xc7, 0x0d, ...[A & 0xff, (A >>> 8) & 0xff, (A >>> 16) & 0xff, A >>> 24]), HLT]);
      m.paging();
      m.cpu.writeCr(0, m.cpu.cr0 | 0x10000);
      m.w32(m.pte(A + 4), ((A + 4) & ~0xfff) | 1); // read-only
      m.w32(A, 0x11111111); m.w32(A + 4, 0x22222222);
      m.cpu.regs[EAX] = eq ? 0x11111111 : 0; m.cpu.regs[EDX] = 0x22222222;
      m.cpu.regs[EBX] = 0x33333333; m.cpu.regs[ECX] = 0x44444444;
      return m;
    };
    for (const eq of [true, false]) {
      const m = mk(eq);
      expect(vector(m)).toBe(14);
      expect(m.exception()!.err).toBe(3);
      expect(m.cpu.cr2).toBe(A + 4);
      expect([m.r32(A), m.r32(A + 4)]).toEqual([0x11111111, 0x22222222]);
      expect(m.cpu.regs[EAX]).toBe(eq ? 0x11111111 : 0);
    }
  });

  test("RCL/RCR OF for counts > 1 as Intel hardware (a one-bit rotate of the operand); RCL/RCR by 9 on a byte change no flag", () => {
    // [bytes, AL, CF in, expected AL, CF, OF]: OF = the count-1 rule on the original operand.
    const cases: [number[], number, number, number, number, number][] = [
      [[0xc0, 0xd0, 0x02], 0xc0, 0, 0x01, 1, 0], // rcl al,2: OF = b7 ^ b6 = 0 (the count-1 rule on the result would give 1)
      [[0xc0, 0xd0, 0x02], 0x40, 0, 0x00, 1, 1],
      [[0xc0, 0xd8, 0x02], 0x01, 1, 0xc0, 0, 1], // rcr al,2: OF = b7 ^ CF in = 1
      [[0xd2, 0xd0], 0xc0, 0, 0x01, 1, 0], // rcl al,cl (CL = 2): the same
    ];
    for (const [bytes, al, cf, r, cfo, of] of cases) {
      const m = ring(0, [raw(...bytes), HLT]);
      m.cpu.regs[EAX] = al; m.cpu.regs[ECX] = 2; m.cpu.setFlags(0x2 | cf);
      vector(m);
      expect([m.cpu.regs[EAX]! & 0xff, m.cpu.getFlags() & 1, (m.cpu.getFlags() >> 11) & 1]).toEqual([r, cfo, of]);
    }
    for (const op of [0xd0, 0xd8]) { // rcl/rcr al, 9: rotation by 9 through CF is the identity
      const m = ring(0, [raw(0xc0, op, 0x09), HLT]);
      m.cpu.regs[EAX] = 0x80; m.cpu.setFlags(0x2 | 0x800);
      vector(m);
      expect([m.cpu.regs[EAX]! & 0xff, m.cpu.getFlags() & 0x801]).toEqual([0x80, 0x800]);
    }
    // rrx-i586 keeps rrx's old answer (the count-1 rule applied to the result).
    const l = ring(0, [raw(0xc0, 0xd0, 0x02), HLT], MODEL_I586);
    l.cpu.regs[EAX] = 0xc0; l.cpu.setFlags(0x2);
    vector(l);
    expect((l.cpu.getFlags() >> 11) & 1).toBe(1);
  });
});
