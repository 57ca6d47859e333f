/**
 * System segments of the random guests (guest.ts): virtual-8086 mode and hardware task switches.
 *
 * Memory and descriptors (written by buildGuest):
 *   GDT 0x18 TSS_MAIN (the main program's task; LTR at setup), 0x20 TSS_T (the random tasks),
 *   0x28 TSS_UD (the #UD handler task), 0x30 TSS_V86 (vm86 entered by a task switch). TSS_MAIN
 *   and TSS_V86 carry an I/O permission bitmap for ports 0..0x3ff (ports above are denied: past
 *   the TSS limit), which each vm86 segment rewrites before entering vm86 mode.
 *   IDT: vector 6 (#UD) is a task gate to TSS_UD (every #UD of the random code, in the main task
 *   or in a random task, is a task switch: the handler task skips the faulting instruction in the
 *   interrupted task's TSS and IRETs back along the back link); vector 0x41 is a task gate to
 *   TSS_T; vectors 3, 4 and 0x40 are DPL-3 interrupt gates (reachable from vm86 mode).
 *   IVT at linear 0: every vector points at a real-mode stub (0x8000:0000, `add ax,0x101; iret`).
 *   Real-mode code at V86_CODE (CS=0x8000), data DS=ES=0x7000, stack SS=0x9000.
 *
 * A vm86 segment enters virtual-8086 mode by IRETD (from the main task: the monitor comes back
 * with the saved ring-0 ESP), by JMP to TSS_V86 (the monitor JMPs back to TSS_MAIN) or by CALL
 * to TSS_V86 (the monitor sets NT and IRETs: a task return), at IOPL 0 or 3, and runs a random
 * real-mode sequence: arithmetic, memory and string traffic in its 64 KiB segments (offsets past
 * 0xFFFF fault), 32-bit operand/address-size prefixes, FS/GS loads and reads, port I/O allowed or
 * denied by the bitmap, CLI/STI/PUSHF/POPF (IOPL-sensitive), INT n, INT3, INTO, BOUND, DIV (#DE),
 * then HLT. The #GP handler is the monitor: HLT leaves vm86 mode, INT n is reflected through the
 * IVT (pushing FLAGS/CS/IP on the real-mode stack), IRET is emulated (IOPL 0), anything else is
 * skipped with the per-byte length table of the real-mode code (VLEN). IRQs arrive in vm86 mode
 * too: every handler loads DS/ES itself (a vm86 interrupt leaves them null).
 *
 * A task segment switches to TSS_T by JMP FAR, CALL FAR or INT 0x41 (task gate), with random
 * GPRs and IF written into the TSS first; the task runs random code (its own stack in the
 * sandbox) and goes back by IRET when NT=1 (CALL, task gate) or JMP FAR TSS_MAIN otherwise.
 * Task switches set CR0.TS: the #NM handler executes CLTS and retries (lazy x87 switching).
 */
import fc from "fast-check";
import { arbItem, buildProgram, encode, type Insn, type Item, type Mem, type ProgramOptions } from "../support/x86-encoder.ts";
import {
  CODE, DATA, EXC, GDT, LEN_TABLE, STATE,
  I, asm, farCall, farJmp, imm, le32, mem, movMemImm32, r, raw, type AsmItem,
} from "./guest-asm.ts";

// ---- layout ----
export const TSS_MAIN = 0x7000, TSS_T = 0x7200, TSS_UD = 0x7400, TSS_V86 = 0x7600;
export const SEL_MAIN = 0x18, SEL_T = 0x20, SEL_UD = 0x28, SEL_V86 = 0x30;
export const GDT_ENTRIES = 7;
const IOMAP = 0x68, IOMAP_BYTES = 0x80; // ports 0..0x3ff, then the 0xFF terminator byte
export const TSS_IO_LIMIT = IOMAP + IOMAP_BYTES;
const STACK0_MAIN = 0x9000, STACK0_V86 = 0xa000, STACK_UD = 0xb000;
export const T_STACK_TOP = DATA + 0xc000;
/** Monitor variables. */
export const SYS = STATE + 0x600;
const VM_SAVED_ESP = SYS, VM_MODE = SYS + 4;
/** Counters: INT 0x40 calls, vm86 exits (HLT), INT n reflected and IRETs emulated by the monitor, task bodies run. */
export const SOFT_CNT = SYS + 8, VM_EXITS = SYS + 12, VM_REFLECT = SYS + 16, VM_IRET = SYS + 20, T_RUNS = SYS + 24;
const V86_SNAP = SYS + 0x20; // the vm86 GPRs at each exit (pushad order)
/** Per-byte instruction lengths of the real-mode code (index: linear address - V86_CODE). */
export const VLEN = 0x50000;
export const V86_CODE = 0x80000, V86_CS = V86_CODE >> 4, V86_DS = 0x7000, V86_SS = 0x9000;
export const SOFT_VEC = 0x40, TASK_VEC = 0x41;
const V86_STUB = [0x05, 0x01, 0x01, 0xcf]; // add ax, 0x101; iret

// ---- spec ----
/** One real-mode operation (pure data; see v86Insns). */
export interface VOp { o: number; a: number; b: number; v: number }
export type Vm86Seg = {
  k: "vm86";
  /** 0: IRETD from the main task; 1: JMP FAR to TSS_V86; 2: CALL FAR to TSS_V86. */
  via: number;
  iopl: number;
  /** Bit i set: port V86_PORTS[i] allowed in the I/O bitmap. */
  allow: number;
  flags: number;
  regs: number[];
  fs: number;
  gs: number;
  ops: VOp[];
};
export type TaskSeg = {
  k: "task";
  /** 0: JMP FAR; 1: CALL FAR; 2: INT 0x41 through the task gate. */
  how: number;
  iflag: boolean;
  regs: number[];
  items: Item[];
};
export type SysSeg = Vm86Seg | TaskSeg;

export const V86_PORTS = [0x21, 0x61, 0x64, 0x71, 0x80, 0x81, 0x3f8, 0x3fd, 0x3fe];
const IN_PORTS = [0x21, 0x61, 0x64, 0x71, 0x80, 0x3fd, 0x3fd, 0x3fe, 0x4f0];
const OUT_PORTS = [0x80, 0x80, 0x3f8, 0x4f0];
const INT_VECS = [3, 4, 0x10, 0x13, 0x21, SOFT_VEC, SOFT_VEC, -1];

// ---- real-mode code ----
const R16 = ["ax", "cx", "dx", "bx", "si", "di", "bp"];
const R8 = ["al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"];
const R32 = ["eax", "ecx", "edx", "ebx", "esi", "edi", "ebp"];
const ALU = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"];
const SHIFTS = ["rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar"];
const MISC = ["cbw", "cwd", "lahf", "sahf", "clc", "stc", "cmc", "cld", "std", "daa", "das", "aaa", "aas", "nop", "xlat"];

function m16(a: number, v: number): Mem {
  const forms: Mem[] = [
    { base: "bx", index: "si" }, { base: "bx", index: "di" }, { base: "bp", index: "si" }, { base: "bp", index: "di" },
    { base: "si" }, { base: "di" }, { base: "bp" }, { base: "bx" },
  ];
  return { ...forms[a % 8]!, disp: ((v & 0xffff) << 16) >> 16 };
}

/** The real-mode instructions of one operation (16-bit code). */
export function v86Insns(op: VOp): Insn[] {
  const { a, b, v } = op;
  const r16 = (n: number) => r(R16[n % R16.length]!);
  const r8 = (n: number) => r(R8[n % 8]!);
  const r32 = (n: number) => r(R32[n % R32.length]!);
  const M = () => ({ mem: m16(a >> 3, v >> 4) }) as { mem: Mem };
  switch (op.o % 22) {
    case 0: return [I(ALU[a % 8]!, r16(b), imm(v & 0xffff))];
    case 1: return [I(ALU[a % 8]!, r8(b), r8(v))];
    case 2: return [v & 1 ? I(ALU[a % 8]!, M(), r16(b)) : I(ALU[a % 8]!, r16(b), M())];
    case 3: return [I("mov", r16(b), imm(v & 0xffff))];
    case 4: return [v & 1 ? I("mov", M(), r16(b)) : I("mov", r8(b), M())];
    case 5: return [I(ALU[a % 8]!, r32(b), v & 2 ? r32(v >>> 2) : imm(v >>> 0))];
    case 6: {
      const how = v % 3;
      const dst = a & 0x40 ? M() : r16(b);
      const size = { size: 16 as const };
      return how === 0 ? [I(SHIFTS[a % 8]!, dst, undefined, size)] : how === 1 ? [I(SHIFTS[a % 8]!, dst, imm((v >> 2) & 31), size)] : [I(SHIFTS[a % 8]!, dst, r("cl"), size)];
    }
    case 7: return [I(["inc", "dec", "neg", "not"][a % 4]!, a & 4 ? M() : r16(b), undefined, { size: a & 8 ? 8 : 16 })];
    case 8: {
      const opn = ["mul", "imul", "div", "idiv"][a % 4]!;
      return [I("mov", r("ax"), imm(v & 0xffff)), I(opn, a & 4 ? r8(b) : r16(b))];
    }
    case 9: {
      const s = ["movs", "stos", "lods", "cmps", "scas"][a % 5]!;
      const rep = (["rep", undefined, "repe", "repne"] as const)[b % 4];
      const cmp = s === "cmps" || s === "scas";
      return [I("mov", r("cx"), imm(v & 7)), I("mov", r("si"), imm((v >> 3) & 0xffff)), I("mov", r("di"), imm((v >> 9) & 0xffff)),
        I(s, undefined, undefined, { size: ([8, 16, 32] as const)[(v >>> 25) % 3], rep: !rep ? undefined : cmp ? (rep === "rep" ? "repe" : rep) : "rep" })];
    }
    case 10: return [I(a & 1 ? "cli" : "sti")];
    case 11: return a & 1 ? [I("pushf", undefined, undefined, { size: 32 }), I("popf", undefined, undefined, { size: 32 })] : [I("pushf"), I("popf")];
    case 12: {
      const vec = INT_VECS[a % INT_VECS.length]!;
      return [I("int", imm(vec < 0 ? v & 0xff : vec))];
    }
    case 13: return a & 1 ? [I("int3")] : [I(v & 1 ? "stc" : "clc"), I("mov", r("al"), imm(0x7f)), I("add", r("al"), imm(v & 3)), I("into")];
    case 14: {
      const p = IN_PORTS[a % IN_PORTS.length]!;
      const acc = r(v & 1 ? "ax" : "al");
      return p < 0x100 && b & 1 ? [I("in", acc, imm(p))] : [I("mov", r("dx"), imm(p)), I("in", acc, r("dx"))];
    }
    case 15: {
      const p = OUT_PORTS[a % OUT_PORTS.length]!;
      const acc = r(v & 1 && p === 0x80 ? "ax" : "al");
      return [I("mov", r("ax"), imm(0x4100 | (0x41 + (v >> 1) % 26))), ...(p < 0x100 && b & 1 ? [I("out", imm(p), acc)] : [I("mov", r("dx"), imm(p)), I("out", r("dx"), acc)])];
    }
    case 16: return [v & 1 ? I("push", r16(a)) : I("push", imm(v & 0xffff), undefined, { size: 16, alt: true }), I("add", r16(b), imm(1)), I("pop", r16(b))];
    case 17: {
      const sreg = a & 1 ? "fs" : "gs";
      return b & 1 ? [I("mov", r("ax"), imm(v & 0xffff)), I("mov", r(sreg), r("ax"))] : [I("mov", r16(b >> 1), { mem: { ...m16(a >> 1, v), seg: sreg } })];
    }
    case 18: return [I(MISC[a % MISC.length]!)];
    case 19: return [I("lea", r16(b), M()), I("xchg", r16(a), r16(v))];
    case 20: return [I("bound", r16(b), M())];
    default: {
      // 0x67: a 32-bit address; past 0xFFFF it faults (#GP, or #SS for the stack segment)
      const d = (v >>> 0) % 0x10100;
      return [a & 1 ? I("mov", r16(b), mem(d)) : I("mov", mem(d), r8(b))];
    }
  }
}

/** Real-mode bytes of a segment's sequence (ending with HLT) and its per-byte lengths. */
function v86Blob(ops: VOp[]): { bytes: number[]; lens: number[] } {
  const bytes: number[] = [], lens: number[] = [];
  const put = (b: Uint8Array) => { lens[bytes.length] = b.length; bytes.push(...b); };
  for (const o of ops) for (const i of v86Insns(o)) put(encode(i, false));
  put(Uint8Array.of(0xf4));
  return { bytes, lens };
}

/** Guest-wide state the system segments build: the real-mode code region and its length table. */
export class SysImage {
  v86: number[] = [...V86_STUB];
  vlen: number[] = [3, 0, 0, 1];
  /** Place a blob at a 16-byte boundary; returns its IP (CS = V86_CS). */
  place(b: { bytes: number[]; lens: number[] }): number {
    while (this.v86.length % 16) this.v86.push(0x90);
    const ip = this.v86.length;
    b.lens.forEach((n, i) => { if (n !== undefined) this.vlen[ip + i] = n; });
    this.v86.push(...b.bytes);
    if (this.v86.length > 0x10000) throw new Error("vm86 code too large");
    return ip;
  }
}

/** Port bits in an I/O bitmap at `bm` (1 = denied). */
function bitmapWrites(bm: number, allow: number): Insn[] {
  return V86_PORTS.map((p, i) => {
    const at = bm + (p >> 3), bit = 1 << (p & 7);
    return (allow >> i) & 1 ? I("and", mem(at), imm(~bit & 0xff), { size: 8 }) : I("or", mem(at), imm(bit), { size: 8 });
  });
}

/** Main-program code of a vm86 segment. */
export function vm86Main(s: Vm86Seg, idx: number, sys: SysImage): AsmItem[] {
  const ip = sys.place(v86Blob(s.ops));
  const L = (x: string) => `${x}${idx}`;
  const via = s.via % 3;
  const eflags = (0x20202 | ((s.iopl & 3) << 12) | (s.flags & 0x0cd5)) >>> 0;
  const reg = (i: number) => (s.regs[i] ?? 0) >>> 0;
  const sp = 0xfff0 - ((reg(4) & 0x3f) << 1);
  const out: AsmItem[] = [...bitmapWrites((via ? TSS_V86 : TSS_MAIN) + IOMAP, s.allow), I("mov", mem(VM_MODE), imm(via), { size: 32 })];
  if (via === 0) {
    const push = (v: number) => raw(0x68, ...le32(v));
    out.push(
      I("pushf", undefined, undefined, { size: 32 }),
      { jmpTo: L("enter"), op: "call" },
      I("popf", undefined, undefined, { size: 32 }),
      { jmpTo: L("after"), op: "jmp" },
      { label: L("enter") },
      I("mov", mem(VM_SAVED_ESP), r("esp")),
      push(s.gs & 0xffff), push(s.fs & 0xffff), push(V86_DS), push(V86_DS), push(V86_SS), push(sp), push(eflags), push(V86_CS), push(ip),
      ...[0, 1, 2, 3, 5, 6, 7].map((i) => I("mov", r(["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"][i]!), imm(reg(i)))),
      I("iret", undefined, undefined, { size: 32 }),
      { label: L("after") },
    );
    return out;
  }
  const t = TSS_V86;
  out.push(
    movMemImm32(t + 0x20, ip), movMemImm32(t + 0x24, eflags),
    ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => movMemImm32(t + 0x28 + 4 * i, i === 4 ? sp : reg(i))),
    movMemImm32(t + 0x48, V86_DS), movMemImm32(t + 0x4c, V86_CS), movMemImm32(t + 0x50, V86_SS),
    movMemImm32(t + 0x54, V86_DS), movMemImm32(t + 0x58, s.fs & 0xffff), movMemImm32(t + 0x5c, s.gs & 0xffff),
    via === 1 ? farJmp(SEL_V86) : farCall(SEL_V86),
  );
  return out;
}

/** Main-program code of a task segment placed at address `at` (the task body follows its prefix). */
export function taskMain(s: TaskSeg, idx: number, at: number, sandbox: (codeBase: number, stackTop: number) => ProgramOptions): AsmItem[] {
  const L = (x: string) => `${x}${idx}`;
  const how = s.how % 3;
  const reg = (i: number) => (s.regs[i] ?? 0) >>> 0;
  const prefix = (body: number): AsmItem[] => [
    movMemImm32(TSS_T + 0x20, body), movMemImm32(TSS_T + 0x24, s.iflag ? 0x202 : 0x2),
    ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => movMemImm32(TSS_T + 0x28 + 4 * i, i === 4 ? T_STACK_TOP : reg(i))),
    how === 0 ? farJmp(SEL_T) : how === 1 ? farCall(SEL_T) : I("int", imm(TASK_VEC)),
    { jmpTo: L("after"), op: "jmp" },
  ];
  const plen = asm(at, [...prefix(0), { label: L("after") }]).bytes.length;
  const body = at + plen;
  const p = buildProgram(s.items, sandbox(body, T_STACK_TOP));
  const bodyItems: AsmItem[] = p.offsets.map((o, i) => raw(...p.code.subarray(o, i + 1 < p.offsets.length ? p.offsets[i + 1]! : p.code.length)));
  return [
    ...prefix(body),
    { label: L("body") },
    ...bodyItems,
    I("inc", mem(T_RUNS), undefined, { size: 32 }),
    // Back: IRET when entered nested (NT=1), else JMP to the main task.
    I("pushf", undefined, undefined, { size: 32 }), I("pop", r("eax")), I("test", r("eax"), imm(0x4000)),
    { jmpTo: L("jmp"), op: "je" },
    I("iret", undefined, undefined, { size: 32 }),
    { label: L("jmp") },
    farJmp(SEL_MAIN),
    { label: L("after") },
  ];
}

// ---- handlers ----
/** Load DS/ES for a handler that may interrupt vm86 mode (which leaves them null). */
export const SAVE_SEGS: Insn[] = [I("push", r("ds")), I("push", r("es")), I("push", r("eax")), I("mov", r("eax"), imm(0x10)), I("mov", r("ds"), r("ax")), I("mov", r("es"), r("ax")), I("pop", r("eax"))];
export const RESTORE_SEGS: Insn[] = [I("pop", r("es")), I("pop", r("ds"))];

/**
 * The skip of a faulting instruction, for a handler whose frame (EIP) is at [esp+F] after
 * PUSH DS, PUSH ES, PUSHAD: protected-mode code through LEN_TABLE, vm86 code through VLEN.
 * For #GP (monitor = true), vm86 HLT / INT n / IRET are handled as described above.
 */
export function skipFault(F: number, codeLen: number, monitor: boolean): AsmItem[] {
  const E = (d: number) => ({ mem: { base: "esp", disp: F + d } }) as { mem: Mem };
  const out: AsmItem[] = [
    I("test", E(8), imm(0x20000), { size: 32 }), { jmpTo: "vm", op: "jne" },
    I("mov", r("eax"), E(0)), I("sub", r("eax"), imm(CODE)), I("cmp", r("eax"), imm(codeLen)), { jmpTo: "bad", op: "jae" },
    I("movzx", r("ecx"), { mem: { base: "eax", disp: LEN_TABLE } }, { size: 8 }),
    I("test", r("ecx"), r("ecx")), { jmpTo: "bad", op: "je" },
    I("add", E(0), r("ecx")), { jmpTo: "out", op: "jmp" },
    { label: "vm" },
    I("movzx", r("eax"), E(4), { size: 16 }), I("shl", r("eax"), imm(4)), I("movzx", r("ecx"), E(0), { size: 16 }), I("add", r("eax"), r("ecx")),
    I("sub", r("eax"), imm(V86_CODE)), I("cmp", r("eax"), imm(0x10000)), { jmpTo: "bad", op: "jae" },
  ];
  if (monitor) {
    out.push(
      I("movzx", r("ecx"), { mem: { base: "eax", disp: V86_CODE } }, { size: 8 }),
      I("cmp", r("ecx"), imm(0xf4)), { jmpTo: "exit", op: "je" },
      I("cmp", r("ecx"), imm(0xcd)), { jmpTo: "int", op: "je" },
      I("cmp", r("ecx"), imm(0xcf)), { jmpTo: "iret", op: "je" },
    );
  }
  out.push(
    I("movzx", r("ecx"), { mem: { base: "eax", disp: VLEN } }, { size: 8 }),
    I("test", r("ecx"), r("ecx")), { jmpTo: "bad", op: "je" },
    I("add", E(0), r("ecx")), { jmpTo: "out", op: "jmp" },
  );
  if (!monitor) return out;
  // SS:SP of the real-mode stack as a linear address in EDX (new SP in ECX first).
  const stackAt = (delta: number): Insn[] => [
    I("movzx", r("edx"), E(16), { size: 16 }), I("shl", r("edx"), imm(4)),
    I("movzx", r("ecx"), E(12), { size: 16 }), I("add", r("ecx"), imm(delta & 0xffff)), I("and", r("ecx"), imm(0xffff)),
    I("mov", E(12), r("cx")),
  ];
  out.push(
    // INT n: push FLAGS, CS, IP+2 on the real-mode stack; CS:IP from the IVT.
    { label: "int" },
    I("inc", mem(VM_REFLECT), undefined, { size: 32 }),
    I("movzx", r("ebx"), { mem: { base: "eax", disp: V86_CODE + 1 } }, { size: 8 }),
    ...stackAt(-6), I("add", r("edx"), r("ecx")),
    I("mov", r("ecx"), E(0)), I("add", r("ecx"), imm(2)), I("mov", { mem: { base: "edx" } }, r("cx")),
    I("mov", r("ecx"), E(4)), I("mov", { mem: { base: "edx", disp: 2 } }, r("cx")),
    I("mov", r("ecx"), E(8)), I("mov", { mem: { base: "edx", disp: 4 } }, r("cx")),
    I("movzx", r("ecx"), { mem: { index: "ebx", scale: 4, disp: 0 } }, { size: 16 }), I("mov", E(0), r("ecx")),
    I("movzx", r("ecx"), { mem: { index: "ebx", scale: 4, disp: 2 } }, { size: 16 }), I("mov", E(4), r("ecx")),
    { jmpTo: "out", op: "jmp" },
    // IRET at IOPL < 3: pop IP, CS, FLAGS (the arithmetic flags and DF; IF and IOPL stay).
    { label: "iret" },
    I("inc", mem(VM_IRET), undefined, { size: 32 }),
    I("movzx", r("edx"), E(16), { size: 16 }), I("shl", r("edx"), imm(4)), I("movzx", r("ecx"), E(12), { size: 16 }), I("add", r("edx"), r("ecx")),
    I("add", r("ecx"), imm(6)), I("mov", E(12), r("cx")),
    I("movzx", r("ecx"), { mem: { base: "edx" } }, { size: 16 }), I("mov", E(0), r("ecx")),
    I("movzx", r("ecx"), { mem: { base: "edx", disp: 2 } }, { size: 16 }), I("mov", E(4), r("ecx")),
    I("movzx", r("ecx"), { mem: { base: "edx", disp: 4 } }, { size: 16 }), I("and", r("ecx"), imm(0x0cd5)),
    I("mov", r("ebx"), E(8)), I("and", r("ebx"), imm(~0x0cd5 >>> 0)), I("or", r("ebx"), r("ecx")), I("mov", E(8), r("ebx")),
    { jmpTo: "out", op: "jmp" },
    // HLT: leave vm86 mode the way it was entered.
    { label: "exit" },
    I("inc", mem(VM_EXITS), undefined, { size: 32 }),
    I("cld"), I("mov", r("esi"), r("esp")), I("mov", r("edi"), imm(V86_SNAP)), I("mov", r("ecx"), imm(8)), I("movs", undefined, undefined, { size: 32, rep: "rep" }),
    I("mov", r("eax"), mem(VM_MODE)),
    I("cmp", r("eax"), imm(1)), { jmpTo: "exitjmp", op: "je" },
    I("cmp", r("eax"), imm(2)), { jmpTo: "exitcall", op: "je" },
    I("mov", r("eax"), imm(0x10)), I("mov", r("fs"), r("ax")), I("mov", r("gs"), r("ax")),
    I("mov", r("esp"), mem(VM_SAVED_ESP)), I("ret"),
    { label: "exitjmp" },
    farJmp(SEL_MAIN),
    { label: "exitcall" },
    I("pushf", undefined, undefined, { size: 32 }), I("or", { mem: { base: "esp" } }, imm(0x4000), { size: 32 }), I("popf", undefined, undefined, { size: 32 }),
    I("iret", undefined, undefined, { size: 32 }),
  );
  return out;
}

/** The #UD handler task: skip the faulting instruction in the back-linked task's TSS, IRET. */
export function udTask(codeLen: number): AsmItem[] {
  return [
    { label: "top" },
    I("inc", mem(EXC + 4 * 6), undefined, { size: 32 }),
    I("movzx", r("eax"), mem(TSS_UD), { size: 16 }), I("and", r("eax"), imm(0xfff8)),
    I("movzx", r("ebx"), { mem: { base: "eax", disp: GDT + 2 } }, { size: 16 }),
    I("mov", r("eax"), { mem: { base: "ebx", disp: 0x20 } }),
    I("sub", r("eax"), imm(CODE)), I("cmp", r("eax"), imm(codeLen)), { jmpTo: "bad", op: "jae" },
    I("movzx", r("ecx"), { mem: { base: "eax", disp: LEN_TABLE } }, { size: 8 }),
    I("test", r("ecx"), r("ecx")), { jmpTo: "bad", op: "je" },
    I("add", { mem: { base: "ebx", disp: 0x20 } }, r("ecx")),
    I("iret", undefined, undefined, { size: 32 }),
    { jmpTo: "top", op: "jmp" },
    { label: "bad" }, I("mov", r("eax"), imm(0x106)), I("out", imm(0xf4), r("eax")), I("cli"), I("hlt"),
  ];
}

/** INT 0x40 (DPL 3): count, return (to vm86 mode when called from there). */
export function softHandler(): AsmItem[] {
  return [...SAVE_SEGS, I("inc", mem(SOFT_CNT), undefined, { size: 32 }), ...RESTORE_SEGS, I("iret")];
}

/** Descriptors, TSSes and the IVT for buildGuest. `udEip` is the #UD task's entry. */
export function sysImage(sys: SysImage, udEip: number): { addr: number; bytes: Uint8Array }[] {
  const tss = (esp0: number, eip: number, esp: number): Uint8Array => {
    const b = new Uint8Array(TSS_IO_LIMIT + 1);
    const v = new DataView(b.buffer);
    v.setUint32(0x04, esp0, true); v.setUint32(0x08, 0x10, true);
    v.setUint32(0x20, eip, true); v.setUint32(0x24, 0x2, true); v.setUint32(0x38, esp, true);
    [0x48, 0x50, 0x54, 0x58, 0x5c].forEach((o) => v.setUint32(o, 0x10, true));
    v.setUint32(0x4c, 0x08, true);
    v.setUint16(0x66, IOMAP, true);
    b.fill(0xff, IOMAP); // every port denied until a segment allows some
    return b;
  };
  const ivt = new Uint8Array(1024);
  for (let i = 0; i < 256; i++) { ivt[i * 4 + 2] = V86_CS & 0xff; ivt[i * 4 + 3] = V86_CS >> 8; }
  const vlen = new Uint8Array(sys.v86.length);
  sys.vlen.forEach((n, i) => { if (n !== undefined) vlen[i] = n; });
  return [
    { addr: 0, bytes: ivt },
    { addr: TSS_MAIN, bytes: tss(STACK0_MAIN, 0, 0) },
    { addr: TSS_T, bytes: tss(0, 0, T_STACK_TOP) },
    { addr: TSS_UD, bytes: tss(0, udEip, STACK_UD) },
    { addr: TSS_V86, bytes: tss(STACK0_V86, 0, 0) },
    { addr: V86_CODE, bytes: Uint8Array.from(sys.v86) },
    { addr: VLEN, bytes: vlen },
  ];
}

/** GDT entries 3.. (TSS descriptors, available 32-bit TSS type 9). */
export function sysDescriptors(descriptor: (base: number, limit: number, access: number, flags: number) => [number, number]): [number, number][] {
  return [TSS_MAIN, TSS_T, TSS_UD, TSS_V86].map((b) => descriptor(b, TSS_IO_LIMIT, 0x89, 0));
}

/** LTR TSS_MAIN (part of the guest's setup). */
export const LTR_MAIN: Insn[] = [I("mov", r("eax"), imm(SEL_MAIN)), raw(0x0f, 0x00, 0xd8)];

// ---- arbitraries ----
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const vopArb: fc.Arbitrary<VOp> = fc.record({ o: fc.nat({ max: 21 }), a: fc.nat({ max: 255 }), b: fc.nat({ max: 255 }), v: u32 });
export const sysSegArb: fc.Arbitrary<SysSeg> = fc.oneof(
  { weight: 3, arbitrary: fc.record({
    k: fc.constant("vm86" as const), via: fc.nat({ max: 2 }), iopl: fc.constantFrom(0, 0, 3), allow: fc.nat({ max: 0x1ff }), flags: fc.nat({ max: 0xffff }),
    regs: fc.array(u32, { minLength: 8, maxLength: 8 }), fs: fc.nat({ max: 0xffff }), gs: fc.nat({ max: 0xffff }),
    ops: fc.array(vopArb, { minLength: 1, maxLength: 24 }),
  }) },
  { weight: 2, arbitrary: fc.record({
    k: fc.constant("task" as const), how: fc.nat({ max: 2 }), iflag: fc.boolean(), regs: fc.array(u32, { minLength: 8, maxLength: 8 }),
    items: fc.array(arbItem({ selfModify: true, branches: true }), { minLength: 0, maxLength: 10, size: "medium" }),
  }) },
);

/** Estimated instruction count of a system segment. */
export function sysDuration(s: SysSeg): number {
  return s.k === "vm86" ? 60 + 12 * s.ops.length : 40 + 6 * s.items.length;
}

