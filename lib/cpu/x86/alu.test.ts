/**
 * Instruction families: results and every defined flag for edge cases, in 32-bit protected
 * mode and 16-bit real mode; encoder and disassembler round trip. (Breadth comes from the
 * native differential test in test/difftest.)
 */
import { describe, expect, test } from "bun:test";
import { EAX, ECX, EDX, EBX } from "./cpu.ts";
import { TestMachine, CODE } from "../../../test/cpu/machine.ts";
import { encode, type Insn } from "../../../test/support/x86-encoder.ts";
import { disasm } from "./disasm.ts";

const CF = 1, PF = 4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;
const ARITH = CF | PF | AF | ZF | SF | OF;

function run(insns: Insn[], regs: Partial<Record<"eax" | "ecx" | "edx" | "ebx", number>>, flags = 0, real = false) {
  const m = new TestMachine(2 << 20);
  if (real) m.real(0x7c00); else m.flat(0);
  const n = m.code(real ? 0x7c00 : CODE, insns, !real);
  const c = m.cpu;
  if (regs.eax !== undefined) c.regs[EAX] = regs.eax;
  if (regs.ecx !== undefined) c.regs[ECX] = regs.ecx;
  if (regs.edx !== undefined) c.regs[EDX] = regs.edx;
  if (regs.ebx !== undefined) c.regs[EBX] = regs.ebx;
  c.setFlags(flags | 2);
  c.run(insns.length);
  expect(c.eip).toBe((real ? 0x7c00 : CODE) + n);
  return { eax: c.regs[EAX]!, ecx: c.regs[ECX]!, edx: c.regs[EDX]!, ebx: c.regs[EBX]!, f: c.getFlags() & ARITH };
}
const r = { eax: "eax" as const, ebx: "ebx" as const, ecx: "ecx" as const, ax: "ax" as const, al: "al" as const, bl: "bl" as const, cl: "cl" as const };

describe("arithmetic and logic", () => {
  test.each([
    ["add", 0x7fffffff, 1, 0x80000000, OF | SF | AF | PF],
    ["add", 0xffffffff, 1, 0, CF | ZF | AF | PF],
    ["sub", 0, 1, 0xffffffff, CF | SF | AF | PF],
    ["sub", 0x80000000, 1, 0x7fffffff, OF | AF | PF],
    ["cmp", 5, 5, 5, ZF | PF],
    ["and", 0xf0f0f0f0, 0x0ff00ff0, 0x00f000f0, PF],
    ["xor", 0x80000000, 0, 0x80000000, SF | PF],
  ] as const)("%s %d, %d", (op, a, b, res, fl) => {
    const o = run([{ op, dst: { reg: r.eax }, src: { reg: r.ebx } }], { eax: a, ebx: b });
    expect(o.eax >>> 0).toBe(res);
    expect(o.f & (op === "and" || op === "xor" ? ARITH & ~AF : ARITH)).toBe(fl);
  });

  test("ADC/SBB use CF; INC/DEC keep CF; NEG sets CF unless zero", () => {
    expect(run([{ op: "adc", dst: { reg: r.eax }, src: { reg: r.ebx } }], { eax: 0xffffffff, ebx: 0 }, CF)).toMatchObject({ eax: 0, f: CF | ZF | AF | PF });
    expect(run([{ op: "sbb", dst: { reg: r.eax }, src: { reg: r.ebx } }], { eax: 0, ebx: 0xffffffff }, CF)).toMatchObject({ eax: 0, f: CF | ZF | AF | PF });
    expect(run([{ op: "inc", dst: { reg: r.eax } }], { eax: 0x7fffffff }, CF).f).toBe(CF | OF | SF | AF | PF);
    expect(run([{ op: "dec", dst: { reg: r.eax } }], { eax: 1 }, 0).f).toBe(ZF | PF);
    expect(run([{ op: "neg", dst: { reg: r.eax } }], { eax: 0 }, CF).f & CF).toBe(0);
    expect(run([{ op: "neg", dst: { reg: r.eax } }], { eax: 0x80000000 }).f & (CF | OF)).toBe(CF | OF);
  });

  test("8- and 16-bit forms leave the rest of the register alone; AH/BH addressing", () => {
    expect(run([{ op: "add", dst: { reg: r.al }, src: { reg: "ah" } }], { eax: 0x12348081 }).eax).toBe(0x12348001);
    expect(run([{ op: "sub", dst: { reg: r.ax }, src: { imm: 1 } }], { eax: 0xabcd0000 }).eax >>> 0).toBe(0xabcdffff);
    expect(run([{ op: "mov", dst: { reg: "bh" }, src: { reg: r.al } }], { eax: 0x5a, ebx: 0x11111111 }).ebx).toBe(0x11115a11);
  });
});

describe("shifts and rotates", () => {
  test("SHL/SHR/SAR by 1 and by CL; count 0 leaves flags; counts masked to 5 bits", () => {
    expect(run([{ op: "shl", dst: { reg: r.eax } }], { eax: 0x80000001 })).toMatchObject({ eax: 2, f: CF | OF });
    expect(run([{ op: "shr", dst: { reg: r.eax }, src: { reg: r.cl } }], { eax: 0x80000000, ecx: 31 })).toMatchObject({ eax: 1 });
    expect(run([{ op: "sar", dst: { reg: r.eax }, src: { reg: r.cl } }], { eax: 0x80000000, ecx: 31 }).eax >>> 0).toBe(0xffffffff);
    expect(run([{ op: "shl", dst: { reg: r.eax }, src: { reg: r.cl } }], { eax: 1, ecx: 32 }, CF | ZF)).toMatchObject({ eax: 1, f: CF | ZF });
    expect(run([{ op: "shr", dst: { reg: r.al }, src: { reg: r.cl } }], { eax: 0xff, ecx: 9 }).eax).toBe(0);
  });

  test("ROL/ROR/RCL/RCR", () => {
    expect(run([{ op: "rol", dst: { reg: r.al }, src: { imm: 1 } }], { eax: 0x81 })).toMatchObject({ eax: 0x03 });
    expect(run([{ op: "ror", dst: { reg: r.eax }, src: { imm: 4 } }], { eax: 0x1234567f }).eax >>> 0).toBe(0xf1234567);
    expect(run([{ op: "rcl", dst: { reg: r.al }, src: { imm: 1 } }], { eax: 0x80 }, CF)).toMatchObject({ eax: 0x01, f: CF | OF });
    expect(run([{ op: "rcr", dst: { reg: r.al }, src: { imm: 1 } }], { eax: 0x01 }, 0).eax).toBe(0);
    expect(run([{ op: "rcl", dst: { reg: r.al }, src: { reg: r.cl } }], { eax: 0x55, ecx: 9 }, CF).eax).toBe(0x55); // 9-bit rotation by 9
  });

  test("SHLD/SHRD", () => {
    expect(run([{ op: "shld", dst: { reg: r.eax }, src: { reg: r.ebx }, src2: { imm: 8 } }], { eax: 0x11223344, ebx: 0xaabbccdd }).eax >>> 0).toBe(0x223344aa);
    expect(run([{ op: "shrd", dst: { reg: r.ax }, src: { reg: "bx" }, src2: { reg: r.cl } }], { eax: 0x1234, ebx: 0xabcd, ecx: 4 }).eax).toBe(0xd123);
  });
});

describe("multiply, divide, BCD", () => {
  test("MUL/IMUL set CF=OF on overflow; DIV/IDIV results and remainders", () => {
    expect(run([{ op: "mul", dst: { reg: r.ebx } }], { eax: 0x80000000, ebx: 4 })).toMatchObject({ eax: 0, edx: 2 });
    expect(run([{ op: "mul", dst: { reg: r.ebx } }], { eax: 0x80000000, ebx: 4 }).f & (CF | OF)).toBe(CF | OF);
    expect(run([{ op: "imul", dst: { reg: r.ebx } }], { eax: 0xffffffff, ebx: 0xffffffff }).f & (CF | OF)).toBe(0);
    expect(run([{ op: "imul", dst: { reg: r.eax }, src: { reg: r.ebx }, src2: { imm: -3 } }], { ebx: 5 }).eax | 0).toBe(-15);
    expect(run([{ op: "div", dst: { reg: r.ebx } }], { eax: 0, edx: 1, ebx: 2 })).toMatchObject({ eax: 0x80000000, edx: 0 });
    expect(run([{ op: "idiv", dst: { reg: r.ebx } }], { eax: 0xfffffff9, edx: 0xffffffff, ebx: 2 })).toMatchObject({ eax: 0xfffffffd, edx: 0xffffffff });
    expect(run([{ op: "idiv", dst: { reg: r.bl } }], { eax: 0xff81, ebx: 0xfe })).toMatchObject({ eax: 0xff3f }); // -127 / -2 = 63 rem -1
  });

  test("DAA/DAS/AAA/AAS/AAM/AAD", () => {
    expect(run([{ op: "add", dst: { reg: r.al }, src: { imm: 0x38 } }, { op: "daa" }], { eax: 0x49 }).eax & 0xff).toBe(0x87);
    expect(run([{ op: "sub", dst: { reg: r.al }, src: { imm: 0x38 } }, { op: "das" }], { eax: 0x42 }).eax & 0xff).toBe(0x04);
    expect(run([{ op: "add", dst: { reg: r.al }, src: { imm: 8 } }, { op: "aaa" }], { eax: 0x0109 }).eax & 0xffff).toBe(0x0207);
    expect(run([{ op: "aam", src: { imm: 10 } }], { eax: 63 }).eax & 0xffff).toBe(0x0603);
    expect(run([{ op: "aad", src: { imm: 10 } }], { eax: 0x0603 }).eax & 0xffff).toBe(63);
  });
});

describe("bits, exchange, conditionals", () => {
  test("BT/BTS/BTR/BTC, BSF/BSR, BSWAP", () => {
    expect(run([{ op: "bts", dst: { reg: r.eax }, src: { imm: 35 } }], { eax: 0 })).toMatchObject({ eax: 8, f: 0 });
    expect(run([{ op: "btr", dst: { reg: r.eax }, src: { reg: r.ebx } }], { eax: 0xffffffff, ebx: 31 })).toMatchObject({ eax: 0x7fffffff, f: CF });
    expect(run([{ op: "bsf", dst: { reg: r.ebx }, src: { reg: r.eax } }], { eax: 0x80, ebx: 99 })).toMatchObject({ ebx: 7 });
    expect(run([{ op: "bsr", dst: { reg: r.ebx }, src: { reg: r.eax } }], { eax: 0, ebx: 99 })).toMatchObject({ ebx: 99, f: ZF });
    expect(run([{ op: "bswap", dst: { reg: r.eax } }], { eax: 0x11223344 }).eax).toBe(0x44332211);
  });

  test("XCHG/XADD/CMPXCHG; SETcc/CMOVcc; MOVZX/MOVSX; CBW/CWD; LAHF/SAHF", () => {
    expect(run([{ op: "xadd", dst: { reg: r.eax }, src: { reg: r.ebx } }], { eax: 2, ebx: 3 })).toMatchObject({ eax: 5, ebx: 2 });
    expect(run([{ op: "cmpxchg", dst: { reg: r.ebx }, src: { reg: r.ecx } }], { eax: 7, ebx: 7, ecx: 9 })).toMatchObject({ ebx: 9, f: ZF | PF });
    expect(run([{ op: "cmpxchg", dst: { reg: r.ebx }, src: { reg: r.ecx } }], { eax: 6, ebx: 7, ecx: 9 })).toMatchObject({ eax: 7, ebx: 7 });
    expect(run([{ op: "cmp", dst: { reg: r.eax }, src: { reg: r.ebx } }, { op: "setl", dst: { reg: r.cl } }], { eax: 0xffffffff, ebx: 1, ecx: 0 }).ecx).toBe(1);
    expect(run([{ op: "cmp", dst: { reg: r.eax }, src: { reg: r.ebx } }, { op: "cmova", dst: { reg: r.ecx }, src: { reg: r.eax } }], { eax: 0xffffffff, ebx: 1, ecx: 0 }).ecx >>> 0).toBe(0xffffffff);
    expect(run([{ op: "movsx", dst: { reg: r.eax }, src: { reg: r.bl } }], { ebx: 0x80 }).eax >>> 0).toBe(0xffffff80);
    expect(run([{ op: "movzx", dst: { reg: r.eax }, src: { reg: "bx" } }], { ebx: 0xffff8000 }).eax).toBe(0x8000);
    expect(run([{ op: "cwd" }], { eax: 0x8000, edx: 0x12340000 }).edx >>> 0).toBe(0x1234ffff);
    expect(run([{ op: "cwde" }], { eax: 0x8000 }).eax >>> 0).toBe(0xffff8000);
    expect(run([{ op: "stc" }, { op: "lahf" }], { eax: 0 }).eax & 0xff00).toBe(0x0300);
    expect(run([{ op: "sahf" }], { eax: 0xd500 }).f).toBe(SF | ZF | AF | PF | CF);
  });
});

describe("real mode (16-bit code)", () => {
  test("16-bit ALU, 0x66 32-bit operand, string ops with 16-bit addressing", () => {
    expect(run([{ op: "add", dst: { reg: r.ax }, src: { reg: "bx" } }], { eax: 0x7fff, ebx: 1 }, 0, true)).toMatchObject({ eax: 0x8000, f: OF | SF | AF | PF });
    expect(run([{ op: "add", dst: { reg: r.eax }, src: { imm: 0x10000 } }], { eax: 0xffff }, 0, true).eax).toBe(0x1ffff);
    const m = new TestMachine(2 << 20);
    m.real(0x7c00);
    m.code(0x7c00, [{ op: "mov", dst: { reg: "si" }, src: { imm: 0x600 } }, { op: "mov", dst: { reg: "di" }, src: { imm: 0x700 } }, { op: "mov", dst: { reg: "cx" }, src: { imm: 3 } }, { op: "movs", size: 16, rep: "rep" }], false);
    m.write(0x600, [1, 2, 3, 4, 5, 6]);
    m.cpu.run(6);
    expect(Array.from(m.mem.ram.subarray(0x700, 0x706))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(m.cpu.regs[6]! & 0xffff).toBe(0x606);
  });
});

describe("encoder and disassembler", () => {
  test.each([
    [{ op: "add", dst: { reg: "eax" }, src: { mem: { base: "ebx", disp: 8 } } }, "03 43 08", "add eax, dword ptr [ebx+0x8]"],
    [{ op: "mov", dst: { mem: { base: "esp", index: "ecx", scale: 4, disp: -4 } }, src: { reg: "dx" } }, "66 89 54 8c fc", "mov word ptr [esp+ecx*4-0x4], dx"],
    [{ op: "sub", dst: { mem: { disp: 0x1000 } }, src: { imm: 5 }, size: 32 }, "83 2d 00 10 00 00 05", "sub dword ptr [0x1000], 0x5"],
    [{ op: "lea", dst: { reg: "esi" }, src: { mem: { base: "ebp", index: "eax", scale: 8 } } }, "8d 74 c5 00", "lea esi, [ebp+eax*8]"],
    [{ op: "shl", dst: { reg: "cl" }, src: { reg: "cl" } }, "d2 e1", "shl cl, cl"],
    [{ op: "movs", size: 32, rep: "rep" }, "f3 a5", "rep movsd"],
    [{ op: "cmpxchg", dst: { mem: { base: "edi" } }, src: { reg: "ecx" }, lock: true }, "f0 0f b1 0f", "lock cmpxchg dword ptr [edi], ecx"],
    [{ op: "jne", rel: -2 }, "75 fe", "jne 0x0"],
    [{ op: "imul", dst: { reg: "eax" }, src: { reg: "ebx" }, src2: { imm: 1000 } }, "69 c3 e8 03 00 00", "imul eax, ebx, 0x3e8"],
  ] as [Insn, string, string][])("%o", (insn, bytes, text) => {
    const b = encode(insn);
    expect(Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ")).toBe(bytes);
    expect(disasm(b, true)[0]!.slice(34).trim()).toBe(text);
  });

  test("16-bit addressing in 16-bit code", () => {
    const b = encode({ op: "mov", dst: { reg: "ax" }, src: { mem: { base: "bp", index: "si", disp: 4 } } }, false);
    expect(Array.from(b)).toEqual([0x8b, 0x42, 0x04]);
    expect(disasm(b, false)[0]).toContain("mov ax, word ptr [bp+si+0x4]");
  });
});
