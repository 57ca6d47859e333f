/**
 * The x87 as the CPU runs it (x87.ts): CPUID, #NM from CR0.EM/TS/MP, #MF with CR0.NE, FERR#
 * and IGNNE# without it, memory operands (faults before any FPU change), FIP/FDP/FOP,
 * FCOMI/FCMOV/FNSTSW AX, the snapshot and the debugger's view. Expected values come from the
 * Intel SDM (vol. 1 ch. 8, vol. 3 2.5 and 6.15, the instruction pages), not from the code.
 */
import { describe, expect, test } from "bun:test";
import { Stop, EAX } from "./cpu.ts";
import { CS, DS } from "./decode.ts";
import { MODEL_I586, MODEL_I686 } from "./model.ts";
import { TestMachine, CODE, DATA, KCODE, KDATA } from "../../../test/cpu/machine.ts";
import type { Insn } from "../../../test/support/x86-encoder.ts";
import { CF, PF, ZF } from "./flags.ts";
import { JIT_THRESHOLD, JIT_X87_THRESHOLD } from "./jit.ts";

const raw = (...bytes: number[]): Insn => ({ op: "raw", bytes });
const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const HLT: Insn = { op: "hlt" };
const FNINIT = raw(0xdb, 0xe3), FNCLEX = raw(0xdb, 0xe2), FWAIT = raw(0x9b);
const FLD1 = raw(0xd9, 0xe8), FLDZ = raw(0xd9, 0xee), FADDP = raw(0xde, 0xc1);
/** FDIVP ST(1), ST(0): ST(1) / ST(0), pop. */
const FDIVP = raw(0xde, 0xf9);
const FNSTSW_AX = raw(0xdf, 0xe0), FCOMI_1 = raw(0xdb, 0xf1);
const FISTP_M32 = (a: number) => raw(0xdb, 0x1d, ...le32(a));
const FSTP_M32 = (a: number) => raw(0xd9, 0x1d, ...le32(a));
const FLD_M32 = (a: number) => raw(0xd9, 0x05, ...le32(a));
const FLDCW = (a: number) => raw(0xd9, 0x2d, ...le32(a));
const FNSTENV = (a: number) => raw(0xd9, 0x35, ...le32(a));
/** FCMOVB ST(0), ST(1) (DA C0+i). */
const FCMOVB_1 = raw(0xda, 0xc1);

const CR0_MP = 2, CR0_EM = 4, CR0_TS = 8, CR0_NE = 0x20;

function machine(insns: Insn[], model = MODEL_I686, cr0Bits = CR0_MP | CR0_NE): TestMachine {
  const m = new TestMachine(8 << 20, model);
  m.flat(0);
  m.cpu.cr0 = (m.cpu.cr0 | cr0Bits) >>> 0;
  m.code(CODE, insns);
  return m;
}
/** Run to a HLT: the vector taken, or null if the code's own HLT was reached. */
function vector(m: TestMachine, n = 200): number | null {
  expect(m.cpu.run(n)).toBe(Stop.HALT);
  return m.exception()?.vector ?? null;
}
/** The CODE offset of instruction k (by encoded lengths). */
function offsetOf(insns: Insn[], k: number): number {
  let off = 0;
  for (let j = 0; j < k; j++) off += (insns[j] as { bytes?: number[] }).bytes?.length ?? 1;
  return CODE + off;
}

describe("CPUID and models", () => {
  test("i686 reports the FPU (leaf 1 EDX bit 0); the legacy rrx-i586 does not", () => {
    for (const [model, bit] of [[MODEL_I686, 1], [MODEL_I586, 0]] as const) {
      const m = machine([raw(0x0f, 0xa2), HLT], model);
      m.cpu.regs[EAX] = 1;
      m.cpu.run(10);
      expect(m.cpu.regs[2]! & 1).toBe(bit);
    }
  });

  test("a model without an FPU: ESC is #UD, or #NM with CR0.EM", () => {
    expect(vector(machine([FNINIT, HLT], MODEL_I586))).toBe(6);
    expect(vector(machine([FNINIT, HLT], MODEL_I586, CR0_EM))).toBe(7);
  });
});

describe("#NM (SDM vol. 3 table 2-2)", () => {
  test("CR0.EM or CR0.TS: every ESC instruction, waiting or not, raises #NM", () => {
    for (const bits of [CR0_EM, CR0_TS, CR0_EM | CR0_TS, CR0_MP | CR0_TS]) {
      for (const insn of [FLD1, FNINIT, FNSTSW_AX]) {
        const m = machine([insn, HLT], MODEL_I686, bits);
        expect(vector(m)).toBe(7);
        expect(m.exception()!.eip).toBe(CODE); // a fault: at the instruction
      }
    }
  });

  test("WAIT raises #NM only with both MP and TS", () => {
    expect(vector(machine([FWAIT, HLT], MODEL_I686, CR0_MP | CR0_TS))).toBe(7);
    expect(vector(machine([FWAIT, HLT], MODEL_I686, CR0_TS))).toBe(null);
    expect(vector(machine([FWAIT, HLT], MODEL_I686, CR0_EM))).toBe(null);
    expect(vector(machine([FWAIT, HLT], MODEL_I686, CR0_EM | CR0_MP))).toBe(null);
  });
});

describe("arithmetic through the CPU", () => {
  test("1 + 1 stored as an integer; FNSTSW AX; the stack is empty again", () => {
    const m = machine([FNINIT, FLD1, FLD1, FADDP, FISTP_M32(DATA), FNSTSW_AX, HLT]);
    m.cpu.regs[EAX] = 0xdead0000;
    expect(vector(m)).toBe(null);
    expect(m.r32(DATA)).toBe(2);
    expect(m.cpu.regs[EAX]).toBe(0xdead0000); // FSW 0: TOP 0, no flags; EAX's upper half kept
    expect(m.cpu.fpu!.ftw).toBe(0xffff);
  });

  test("FCOMI sets ZF, PF, CF as the SDM's table; FCMOVB moves on CF", () => {
    // ST0 = 0, ST1 = 1: ST0 < ST1 gives CF=1 ZF=0 PF=0.
    const m = machine([FNINIT, FLD1, FLDZ, FCOMI_1, HLT]);
    m.cpu.setFlags(0x2 | ZF | PF);
    expect(vector(m)).toBe(null);
    const f = m.cpu.getFlags();
    expect([f & ZF, f & PF, f & CF]).toEqual([0, 0, CF]);
    // FCMOVB with CF=1 copies ST1 (1.0) into ST0.
    const m2 = machine([FNINIT, FLD1, FLDZ, raw(0xf9) /* STC */, FCMOVB_1, FISTP_M32(DATA), HLT]);
    expect(vector(m2)).toBe(null);
    expect(m2.r32(DATA)).toBe(1);
  });
});

describe("pending exceptions (SDM vol. 1 8.7, vol. 3 2.5)", () => {
  const CW_UNMASK_ZE = 0x037b;
  const divByZero = (tail: Insn[]) => [FNINIT, FLDCW(DATA + 0x40), FLD1, FLDZ, FDIVP, ...tail];

  test("CR0.NE: the next waiting instruction faults with #MF; non-waiting ones do not", () => {
    const insns = divByZero([FNSTSW_AX, FWAIT, HLT]);
    const m = machine(insns);
    m.w16(DATA + 0x40, CW_UNMASK_ZE);
    expect(vector(m)).toBe(16);
    expect(m.exception()!.eip).toBe(offsetOf(insns, 6)); // at the FWAIT
    expect(m.cpu.regs[EAX]! & 0x84).toBe(0x84); // FNSTSW saw ES and ZE
    // A waiting ESC instruction faults the same way, before it runs.
    const insns2 = divByZero([FLD1, HLT]);
    const m2 = machine(insns2);
    m2.w16(DATA + 0x40, CW_UNMASK_ZE);
    expect(vector(m2)).toBe(16);
    expect(m2.exception()!.eip).toBe(offsetOf(insns2, 5));
    // An unmasked ZE leaves the operands and TOP alone (SDM vol. 1 4.9.2): FDIVP did not pop, so
    // TOP is still 6 (FLD1, FLDZ); the faulting FLD1 did not push.
    expect(m2.cpu.fpu!.top).toBe(6);
  });

  test("FNCLEX clears the pending error: the waiting instruction after it runs", () => {
    const m = machine(divByZero([FNCLEX, FWAIT, HLT]));
    m.w16(DATA + 0x40, CW_UNMASK_ZE);
    expect(vector(m)).toBe(null);
  });

  test("CR0.NE clear: FERR# to the board, the CPU waits at the instruction; IGNNE# lets it go on", () => {
    const insns = divByZero([FWAIT, FLD1, HLT]);
    const m = machine(insns, MODEL_I686, CR0_MP);
    m.w16(DATA + 0x40, CW_UNMASK_ZE);
    let ferr = 0;
    m.cpu.bus.fpuError = () => { ferr++; };
    const before = m.cpu.icount;
    expect(m.cpu.run(200)).toBe(Stop.HALT);
    expect(ferr).toBe(1);
    expect(m.cpu.eip).toBe(offsetOf(insns, 5)); // waiting at the FWAIT, which did not retire
    expect(m.cpu.icount - before).toBe(5);
    expect(m.cpu.halted).toBe(true);
    // Without IGNNE# it stays there.
    expect(m.cpu.run(200)).toBe(Stop.HALT);
    expect(m.cpu.eip).toBe(offsetOf(insns, 5));
    // The guest's IRQ 13 handler writes port F0h: IGNNE# while the error is pending.
    m.cpu.fpuErrorAck();
    m.cpu.halted = false;
    expect(m.cpu.run(200)).toBe(Stop.HALT);
    expect(m.exception()).toBe(null);
    expect(m.cpu.eip).toBe(offsetOf(insns, 8)); // past the HLT at the end
    expect(ferr).toBe(1);
    expect(m.cpu.fpu!.top).toBe(5); // FLD1 ran (TOP 6 after the unpopped FDIVP, see above)
    // IGNNE# drops once ES is clear.
    expect(m.cpu.ignne).toBe(true);
    const m2 = machine([FNCLEX, FWAIT, HLT]);
    m2.cpu.ignne = true;
    m2.cpu.run(10);
    expect(m2.cpu.ignne).toBe(false);
  });

  test("the waiting CPU takes an interrupt with the x87 instruction as its return address", () => {
    const insns = divByZero([FWAIT, HLT]);
    const m = machine(insns, MODEL_I686, CR0_MP);
    m.w16(DATA + 0x40, CW_UNMASK_ZE);
    m.cpu.bus.fpuError = () => { m.cpu.intrLine = true; };
    m.intVector = 0x75; // IRQ 13 behind the slave PIC's usual base
    m.cpu.setFlags(0x202);
    expect(m.cpu.run(200)).toBe(Stop.HALT);
    const e = m.exception()!;
    expect(e.vector).toBe(0x75);
    expect(e.eip).toBe(offsetOf(insns, 5));
  });
});

describe("memory operands", () => {
  test("a store that page-faults changes nothing in the FPU", () => {
    const insns = [FNINIT, FLD1, FSTP_M32(DATA), HLT];
    const m = machine(insns);
    m.paging();
    m.w32(m.pte(DATA), DATA | 5); // present, user, read-only
    m.cpu.cr0 |= 0x10000; // WP: ring 0 honours read-only pages
    expect(vector(m)).toBe(14);
    expect(m.exception()!.eip).toBe(offsetOf(insns, 2));
    expect(m.cpu.cr2).toBe(DATA);
    expect(m.cpu.fpu!.top).toBe(7); // ST0 still holds 1.0
    expect(m.cpu.fpu!.stSe(0)).toBe(0x3fff);
  });

  test("FLD m32 reads across a page boundary", () => {
    const a = DATA + 0xffe;
    const m = machine([FNINIT, FLD_M32(a), FISTP_M32(DATA), HLT]);
    m.w16(a, 0x0000); m.w16(a + 2, 0x4040); // 3.0f
    expect(vector(m)).toBe(null);
    expect(m.r32(DATA)).toBe(3);
  });

  test("FNSTENV stores FIP/FCS/FOP and FDP/FDS of the last non-control instruction (32-bit protected-mode layout)", () => {
    const insns = [FNINIT, FLD_M32(DATA + 8), FLDCW(DATA + 0x40), FNSTENV(DATA + 0x100), HLT];
    const m = machine(insns);
    m.w32(DATA + 8, 0x3f800000);
    m.w16(DATA + 0x40, 0x037f);
    expect(vector(m)).toBe(null);
    const env = DATA + 0x100;
    expect(m.r32(env) & 0xffff).toBe(0x037f); // FCW
    expect(m.r32(env + 12)).toBe(offsetOf(insns, 1)); // FIP: the FLD (FLDCW is a control instruction)
    expect(m.r32(env + 16) & 0xffff).toBe(KCODE); // FCS
    expect((m.r32(env + 16) >>> 16) & 0x7ff).toBe(((0xd9 & 7) << 8) | 0x05); // FOP
    expect(m.r32(env + 20)).toBe(DATA + 8); // FDP
    expect(m.r32(env + 24) & 0xffff).toBe(KDATA); // FDS
    expect(m.cpu.sel[CS]).toBe(KCODE);
    expect(m.cpu.sel[DS]).toBe(KDATA);
  });
});

describe("state", () => {
  test("the snapshot holds the x87; a model without one saves what it always did", () => {
    const m = machine([FNINIT, FLD1, HLT]);
    const s0 = m.state();
    m.cpu.run(10);
    const s1 = m.state();
    expect(s1).not.toEqual(s0);
    const m2 = machine([HLT]);
    m2.cpu.restore(new (require("../../machine/snapshot.ts").StateReader)(s1));
    expect(m2.state()).toEqual(s1);
    expect(m2.cpu.fpu!.stSe(0)).toBe(0x3fff);
    const legacy = machine([HLT], MODEL_I586).state().length;
    // i686 adds the MSR block (20 bytes), the P6 counters (40), the MCA (48) and the x87 (100 bytes + IGNNE#).
    expect(s1.length).toBe(legacy + 20 + 40 + 48 + 101);
  });

  test("the debugger sees st0..st7 and the control words (gdb i386 registers 16..31)", () => {
    const m = machine([FNINIT, FLD1, HLT]);
    m.cpu.run(10);
    const x = m.cpu.debug.readExtraRegisters()!;
    // st0 = 1.0: significand 8000000000000000h, sign+exponent 3FFFh, little-endian.
    expect(Array.from(x.subarray(0, 10))).toEqual([0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]);
    const dv = new DataView(x.buffer);
    expect(dv.getUint32(80, true)).toBe(0x037f); // fctrl
    expect(dv.getUint32(84, true)).toBe(7 << 11); // fstat: TOP = 7
    expect(dv.getUint32(88, true)).toBe(0x3fff); // ftag: R7 valid, the rest empty
    expect(machine([HLT], MODEL_I586).cpu.debug.readExtraRegisters()).toBe(null);
  });
});

describe("in translated code (jit-insn.ts and jit-x87.ts call x87.ts with the address from its locals)", () => {
  const FLD_M64 = (a: number) => raw(0xdd, 0x05, ...le32(a));
  const FSTP_M64 = (a: number) => raw(0xdd, 0x1d, ...le32(a));
  const FMUL_M64 = (a: number) => raw(0xdc, 0x0d, ...le32(a));
  const FSQRT = raw(0xd9, 0xfa), FXCH_1 = raw(0xd9, 0xc9), FMULP = raw(0xde, 0xc9);
  /** Run translated (every block compiled on its first execution) or interpreted. */
  function run(insns: Insn[], jit: boolean, prep: (m: TestMachine) => void, cr0Bits = CR0_MP | CR0_NE) {
    const m = machine(insns, MODEL_I686, cr0Bits);
    let direct = 0;
    if (jit) {
      m.cpu.jitThreshold = 1;
      const x87 = m.cpu.x87.bind(m.cpu);
      m.cpu.x87 = (...a: Parameters<typeof x87>) => { direct++; x87(...a); };
      // The forms jit-x87.ts calls without escOp's dispatch.
      const fast: Record<string, (...a: unknown[]) => unknown> = {};
      for (const [k, fn] of Object.entries(m.cpu.x87j)) fast[k] = (...a: unknown[]) => { direct++; return (fn as (...a: unknown[]) => unknown)(...a); };
      (m.cpu as unknown as { x87j: typeof fast }).x87j = fast;
    } else m.cpu.noJit = true;
    prep(m);
    const v = vector(m, 2000);
    if (jit) expect(direct).toBeGreaterThan(0);        // the translated code's direct calls ran
    const f = m.cpu.fpu!;
    return {
      m, v, eip: m.exception()?.eip ?? m.cpu.eip,
      fpu: [f.top, f.empty, f.sw, f.cw, f.fip, f.fop, f.fdp, f.fds, f.fcs, Array.from(f.rse), Array.from(f.rhi), Array.from(f.rlo)],
    };
  }

  test("a double loop (FLD/FMUL/FSQRT/FXCH/FMULP/FSTP m64) computes and records what the interpreter does", () => {
    // ECX counts 3 passes of a block with no other exit: x = sqrt(x * 2.25) * x, stored each pass.
    const body = [FLD_M64(DATA), FMUL_M64(DATA + 8), FSQRT, FLD_M64(DATA), FXCH_1, FMULP, FSTP_M64(DATA), raw(0x49), raw(0x75, 0)];
    const loopLen = body.reduce((n, x) => n + (x as { bytes: number[] }).bytes.length, 0);
    (body[body.length - 1] as { bytes: number[] }).bytes[1] = (-loopLen) & 0xff;       // JNZ to the top
    const insns = [FNINIT, raw(0xb9, ...le32(3)), ...body, HLT];
    const prep = (m: TestMachine) => {
      const dv = new DataView(new ArrayBuffer(16));
      dv.setFloat64(0, 1.75, true); dv.setFloat64(8, 2.25, true);
      for (let k = 0; k < 16; k += 4) m.w32(DATA + k, dv.getUint32(k, true));
    };
    const a = run(insns, true, prep), b = run(insns, false, prep);
    expect(a.v).toBe(null);
    expect(a.m.cpu.fpu!.top).toBe(0);                 // balanced: every pass leaves the stack empty
    expect(a.fpu).toEqual(b.fpu);
    expect([a.m.r32(DATA), a.m.r32(DATA + 4)]).toEqual([b.m.r32(DATA), b.m.r32(DATA + 4)]);
    expect(a.m.cpu.icount).toBe(b.m.cpu.icount);
    // FIP: the last non-control instruction, the FSTP m64 (offset 6 of the body), FDP its operand.
    expect(a.m.cpu.fpu!.fip).toBe(offsetOf(insns, 8));
    expect(a.m.cpu.fpu!.fdp).toBe(DATA);
  });

  test("#MF at the next waiting instruction, and #NM, at the same EIP and icount as interpreted", () => {
    const insns = [FNINIT, FLDCW(DATA + 0x40), FLD1, FLDZ, FDIVP, FLD_M64(DATA), HLT];
    const prep = (m: TestMachine) => { m.w16(DATA + 0x40, 0x037b); };
    const a = run(insns, true, prep), b = run(insns, false, prep);
    expect(a.v).toBe(16);
    expect(a.eip).toBe(offsetOf(insns, 5));
    expect(a.fpu).toEqual(b.fpu);
    expect(a.m.cpu.icount).toBe(b.m.cpu.icount);
    const c = run([FLD1, HLT], true, () => {}, CR0_MP | CR0_TS);
    expect(c.v).toBe(7);
    expect(c.eip).toBe(CODE);
  });

  test("FSTP m64 ; FLD m64 of one operand (one call translated) runs as interpreted: fast, declined with #MF, over its own code", () => {
    // x = x * 1.1 rounded to double through DATA+16 (the pair), 5 passes.
    const body = [FLD_M64(DATA), FMUL_M64(DATA + 8), FSTP_M64(DATA + 16), FLD_M64(DATA + 16), FSTP_M64(DATA), raw(0x49), raw(0x75, 0)];
    const len = body.reduce((n, x) => n + (x as { bytes: number[] }).bytes.length, 0);
    (body[body.length - 1] as { bytes: number[] }).bytes[1] = (-len) & 0xff;
    const prep = (cw: number) => (m: TestMachine) => {
      const dv = new DataView(new ArrayBuffer(16));
      dv.setFloat64(0, 1.75, true); dv.setFloat64(8, 1.1, true);
      for (let k = 0; k < 16; k += 4) m.w32(DATA + k, dv.getUint32(k, true));
      m.w16(DATA + 0x40, cw);
    };
    for (const cw of [0x037f, 0x0b7f, 0x035f]) {                    // to nearest; round up (declines); PE unmasked (#MF at the FLD)
      const insns = [FNINIT, FLDCW(DATA + 0x40), raw(0xb9, ...le32(5)), ...body, HLT];
      const a = run(insns, true, prep(cw)), b = run(insns, false, prep(cw));
      expect(a.v).toBe(cw === 0x035f ? 16 : null);
      expect([a.v, a.eip, a.fpu, a.m.cpu.icount]).toEqual([b.v, b.eip, b.fpu, b.m.cpu.icount]);
      expect([a.m.r32(DATA), a.m.r32(DATA + 4), a.m.r32(DATA + 16), a.m.r32(DATA + 20)]).toEqual([b.m.r32(DATA), b.m.r32(DATA + 4), b.m.r32(DATA + 16), b.m.r32(DATA + 20)]);
      if (cw === 0x035f) expect(a.eip).toBe(offsetOf(insns, 6));     // the FLD of the pair
    }
    // The FSTP writes eight NOPs (a double's bytes) over the FLD after it and two NOPs: the
    // translated code must run the new bytes, as the interpreter does (the stack ends empty).
    const insns = [FNINIT, FLD_M64(DATA), FSTP_M64(0), FLD_M64(0), raw(0x90), raw(0x90), HLT];
    const at = offsetOf(insns, 3);
    (insns[2] as { bytes: number[] }).bytes.splice(2, 4, ...le32(at));
    (insns[3] as { bytes: number[] }).bytes.splice(2, 4, ...le32(at));
    const nops = (m: TestMachine) => { m.w32(DATA, 0x90909090); m.w32(DATA + 4, 0x90909090); };
    const a = run(insns, true, nops), b = run(insns, false, nops);
    expect(b.m.cpu.fpu!.empty).toBe(0xff);
    expect([a.v, a.eip, a.fpu, a.m.cpu.icount]).toEqual([b.v, b.eip, b.fpu, b.m.cpu.icount]);
  });

  test("a block with x87 instructions is translated after JIT_X87_THRESHOLD executions, others after JIT_THRESHOLD", () => {
    // ECX counts n passes of a block: FLD1 ; FSTP ST0 (or two NOPs) ; DEC ECX ; JNZ to the top.
    const loop = (x87: boolean, n: number) => {
      const body = [...(x87 ? [FLD1, raw(0xdd, 0xd8)] : [raw(0x90), raw(0x90)]), raw(0x49), raw(0x75, 0)];
      const len = body.reduce((k, x) => k + (x as { bytes: number[] }).bytes.length, 0);
      (body[body.length - 1] as { bytes: number[] }).bytes[1] = (-len) & 0xff;
      const m = machine([FNINIT, raw(0xb9, ...le32(n)), ...body, HLT]);
      expect(m.cpu.jitThreshold).toBe(JIT_THRESHOLD);
      expect(vector(m, 100_000)).toBe(null);
      return m.cpu.translated;
    };
    expect(JIT_X87_THRESHOLD).toBeLessThan(JIT_THRESHOLD / 2);
    expect(loop(true, JIT_X87_THRESHOLD + 10)).toBe(1);
    expect(loop(false, JIT_X87_THRESHOLD + 10)).toBe(0);
    expect(loop(true, JIT_X87_THRESHOLD - 10)).toBe(0);
    expect(loop(false, JIT_THRESHOLD + 10)).toBe(1);
  });

  test("a double store that page-faults changes nothing in the FPU", () => {
    const insns = [FNINIT, FLD1, FSTP_M64(DATA), HLT];
    const prep = (m: TestMachine) => {
      m.paging();
      m.w32(m.pte(DATA), DATA | 5);
      m.cpu.cr0 |= 0x10000;
    };
    const a = run(insns, true, prep), b = run(insns, false, prep);
    expect(a.v).toBe(14);
    expect(a.eip).toBe(offsetOf(insns, 2));
    expect(a.m.cpu.fpu!.top).toBe(7);
    expect(a.fpu).toEqual(b.fpu);
  });
});
