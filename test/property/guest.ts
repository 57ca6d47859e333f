/**
 * A random guest workload for the determinism properties, built in-process (no toolchain).
 *
 * The image is flat 32-bit protected mode entered through setMultibootEntryState. The guest
 * loads its own GDT and IDT (written into RAM here), reloads every segment register, remaps
 * the PIC to 0x20/0x28, programs the PIT to a random rate, enables UART RX interrupts (COM1,
 * optionally with FIFOs), keyboard interrupts and the PS/2 mouse, then executes STI and a
 * main program: random segments that are either random valid i386 code (test/support/x86-encoder.ts items:
 * arithmetic, memory traffic, loops, calls, self-modifying writes) confined to a sandbox, or
 * port I/O to the devices (THR writes, PIT latches, PIC OCW3 reads, RTC reads, VGA text and
 * CRTC cursor writes, i8042 status reads, RDTSC, tight spin loops, STI;HLT waits, CLI'd
 * spins), x87 code, or system segments (guest-sys.ts): random real-mode code in virtual-8086
 * mode under a #GP monitor, and hardware task switches (JMP/CALL to a TSS, INT through a task
 * gate, IRET along the back link). It ends with a debug exit (out 0xF4), CLI;HLT, or a HLT loop.
 *
 * Interrupt handlers (assembled with the encoder) load DS/ES (an interrupt from vm86 mode
 * leaves them null), read their device ports and store and accumulate what they read into
 * RAM: IRQ0 latches and reads PIT counter 0, IRQ4 drains the UART RX FIFO into a ring,
 * IRQ1/IRQ12 read the i8042 into rings. Exception handlers count the vector and skip the
 * faulting instruction using a per-byte instruction-length table of the main code (or of the
 * real-mode code, for a fault in vm86 mode); #UD goes through a task gate to a handler task
 * that does the same in the interrupted task's TSS; #NM (CR0.TS after a task switch) clears
 * TS and retries. An unexpected exception exits with status (0x100+vector)<<1|1.
 *
 * Scripted input (serial bytes, keys, mouse moves) arrives at random virtual times, many of
 * them while the main program is in a tight loop.
 *
 * Everything is plain data (GuestSpec) so fast-check can shrink it; buildGuest() is
 * deterministic; describeGuest() prints the disassembly for a failure report.
 */
import fc from "fast-check";
import { assemble, arbItem, buildProgram, type Insn, type Item, type ProgramOptions } from "../support/x86-encoder.ts";
import { disasm } from "../../lib/cpu/x86/disasm.ts";
import { Machine, type InputEvent } from "../../lib/machine/machine.ts";
import { setMultibootEntryState } from "../../lib/boards/pc-boot.ts";
import type { ScriptEvent } from "../../lib/machine/script.ts";
import { descriptor } from "../cpu/machine.ts";
import {
  CODE, DATA, DATA_SIZE, EXC, GDT, GDTR, HANDLERS, IDT, IDTR, IIR_LAST, IO_SLOTS, KB_CNT, KB_RING, KB_STAT, LEN_TABLE,
  MEM_BYTES, MS_CNT, MS_RING, PIT_ACC, PIT_CNT, RX_ACC, RX_CNT, RX_RING, STACK_TOP, STATE, VGA_TEXT,
  I, asm, imm, le32, mem, outDx, outImm, r, raw, type AsmItem,
} from "./guest-asm.ts";
import {
  GDT_ENTRIES, LTR_MAIN, RESTORE_SEGS, SAVE_SEGS, SEL_T, SEL_UD, SOFT_VEC, SysImage, TASK_VEC,
  skipFault, softHandler, sysDescriptors, sysDuration, sysImage, sysSegArb, taskMain, udTask, vm86Main, type SysSeg,
} from "./guest-sys.ts";

export {
  CODE, DATA, DATA_SIZE, EXC, GDT, GDTR, HANDLERS, IDT, IDTR, IIR_LAST, IO_SLOTS, KB_CNT, KB_RING, KB_STAT, LEN_TABLE,
  MEM_BYTES, MS_CNT, MS_RING, PIT_ACC, PIT_CNT, RX_ACC, RX_CNT, RX_RING, STACK_TOP, STATE, VGA_TEXT, asm,
};
export const BOOT_EPOCH = 1_700_000_000;

// ---- spec ----
export type IoSeg =
  | { k: "thr"; byte: number }
  | { k: "pit"; slot: number; readback: boolean }
  | { k: "ocw3"; slot: number; isr: boolean }
  | { k: "rtc"; reg: number; slot: number }
  | { k: "vga"; pos: number; val: number }
  | { k: "cursor"; pos: number }
  | { k: "kbstat"; slot: number }
  | { k: "rdtsc"; slot: number }
  | { k: "spin"; n: number }
  | { k: "wait" }
  | { k: "clispin"; n: number }
  | { k: "x87"; cw: number; ops: { f: number; a: number }[] };
export type Segment = IoSeg | SysSeg | { k: "code"; items: Item[] };
export type Ending = { k: "exit"; status: number } | { k: "clihlt" } | { k: "hltloop" };

export interface ScriptItem {
  /** When, in thousandths of the program's estimated duration (see estimateDuration). */
  at: number;
  ev: InputEvent;
}

export interface GuestSpec {
  ips: number;
  pitDivisor: number;
  fifo: boolean;
  mouse: boolean;
  unguardedDiv: boolean;
  segments: Segment[];
  ending: Ending;
  script: ScriptItem[];
  hashInterval: number;
}

export interface Guest {
  spec: GuestSpec;
  /** Regions to write into RAM. */
  image: { addr: number; bytes: Uint8Array }[];
  /** The main program (setup + segments + ending) at CODE. */
  main: Uint8Array;
  /** Offset in `main` where the random segments start. */
  bodyStart: number;
  script: ScriptEvent[];
  /** Instruction budget of a run (the HLT-loop ending runs until it). */
  maxInsns: number;
  /** Estimated duration of the main program in instruction times. */
  estimate: number;
}

// ---- handlers ----
const TRAPS = new Set([1, 3, 4]);
const HAS_ERR = new Set([8, 10, 11, 12, 13, 14, 17]);
const HANDLER_SLOT = 64;

function exceptionHandler(v: number, codeLen: number): AsmItem[] {
  const out: AsmItem[] = [...SAVE_SEGS, I("pusha", undefined, undefined, { size: 32 }), I("inc", mem(EXC + 4 * v), undefined, { size: 32 })];
  const tail: AsmItem[] = [{ label: "out" }, I("popa", undefined, undefined, { size: 32 }), ...RESTORE_SEGS, ...(HAS_ERR.has(v) ? [I("add", r("esp"), imm(4))] : []), I("iret")];
  if (TRAPS.has(v)) return [...out, ...tail];
  // #NM after a task switch (CR0.TS): clear TS and retry the x87 instruction.
  if (v === 7) return [...out, raw(0x0f, 0x06), ...tail];
  const F = 8 + 32 + (HAS_ERR.has(v) ? 4 : 0);
  return [...out, ...skipFault(F, codeLen, v === 13), ...tail,
    { label: "bad" }, I("mov", r("eax"), imm(0x100 + v)), I("out", imm(0xf4), r("eax")), I("cli"), I("hlt")];
}

function ringStore(cnt: number, ring: number): Insn[] {
  return [
    I("mov", r("ebx"), mem(cnt)), I("and", r("ebx"), imm(0xff)),
    I("mov", { mem: { base: "ebx", disp: ring } }, r("al")),
    I("inc", mem(cnt), undefined, { size: 32 }),
  ];
}

function irqHandlers(): { vec: number; code: AsmItem[] }[] {
  const eoi = (slave: boolean): Insn[] => [...(slave ? outImm(0xa0, 0x20) : []), ...outImm(0x20, 0x20)];
  const pit: AsmItem[] = [
    I("push", r("eax")), I("push", r("ebx")),
    I("inc", mem(PIT_CNT), undefined, { size: 32 }),
    ...outImm(0x43, 0x00), // latch counter 0
    I("in", r("al"), imm(0x40)), I("mov", r("bl"), r("al")), I("in", r("al"), imm(0x40)), I("mov", r("bh"), r("al")),
    I("movzx", r("ebx"), r("bx")), I("add", mem(PIT_ACC), r("ebx")),
    I("in", r("al"), imm(0x61)), I("movzx", r("ebx"), r("al")), I("add", mem(PIT_ACC), r("ebx")),
    ...eoi(false), I("pop", r("ebx")), I("pop", r("eax")), I("iret"),
  ];
  const uart: AsmItem[] = [
    I("push", r("eax")), I("push", r("edx")), I("push", r("ebx")),
    { label: "more" },
    I("mov", r("dx"), imm(0x3fd)), I("in", r("al"), r("dx")), I("test", r("al"), imm(1)), { jmpTo: "done", op: "je" },
    I("mov", r("dx"), imm(0x3f8)), I("in", r("al"), r("dx")),
    ...ringStore(RX_CNT, RX_RING),
    I("movzx", r("ebx"), r("al")), I("add", mem(RX_ACC), r("ebx")),
    { jmpTo: "more", op: "jmp" },
    { label: "done" },
    I("mov", r("dx"), imm(0x3fa)), I("in", r("al"), r("dx")), I("mov", mem(IIR_LAST), r("al")),
    ...eoi(false), I("pop", r("ebx")), I("pop", r("edx")), I("pop", r("eax")), I("iret"),
  ];
  const kbd = (slave: boolean, cnt: number, ring: number): AsmItem[] => [
    I("push", r("eax")), I("push", r("ebx")),
    I("in", r("al"), imm(0x64)), I("mov", mem(KB_STAT), r("al")),
    I("in", r("al"), imm(0x60)), ...ringStore(cnt, ring),
    ...eoi(slave), I("pop", r("ebx")), I("pop", r("eax")), I("iret"),
  ];
  const spurious = (slave: boolean): AsmItem[] => [I("push", r("eax")), ...eoi(slave), I("pop", r("eax")), I("iret")];
  const out: { vec: number; code: AsmItem[] }[] = [];
  for (let irq = 0; irq < 16; irq++) {
    const vec = 0x20 + irq;
    const code = irq === 0 ? pit : irq === 4 ? uart : irq === 1 ? kbd(false, KB_CNT, KB_RING) : irq === 12 ? kbd(true, MS_CNT, MS_RING) : spurious(irq >= 8);
    // Every handler loads DS/ES: an interrupt from vm86 mode leaves them null.
    out.push({ vec, code: [...SAVE_SEGS, ...code.slice(0, -1), ...RESTORE_SEGS, code[code.length - 1]!] });
  }
  return out;
}

// ---- main program ----
function setup(spec: GuestSpec): Insn[] {
  const gdtr = [0x0f, 0x01, 0x15, GDTR & 0xff, (GDTR >> 8) & 0xff, (GDTR >> 16) & 0xff, GDTR >>> 24];
  const idtr = [0x0f, 0x01, 0x1d, IDTR & 0xff, (IDTR >> 8) & 0xff, (IDTR >> 16) & 0xff, IDTR >>> 24];
  const d = spec.pitDivisor;
  return [
    { op: "raw", bytes: gdtr }, { op: "raw", bytes: idtr },
    { op: "farjmp" } as Insn, // placeholder, replaced in buildMain
    I("mov", r("ax"), imm(0x10)),
    ...(["ds", "es", "ss", "fs", "gs"].map((s) => I("mov", r(s), r("ax")))),
    I("mov", r("esp"), imm(STACK_TOP)),
    ...LTR_MAIN,
    // PIC: ICW1..ICW4, master at 0x20, slave at 0x28; unmask IRQ0, 1, 2, 4 and 12.
    ...outImm(0x20, 0x11), ...outImm(0xa0, 0x11), ...outImm(0x21, 0x20), ...outImm(0xa1, 0x28),
    ...outImm(0x21, 0x04), ...outImm(0xa1, 0x02), ...outImm(0x21, 0x01), ...outImm(0xa1, 0x01),
    ...outImm(0x21, 0xe8), ...outImm(0xa1, 0xef),
    // PIT counter 0, lo/hi, mode 2, random divisor.
    ...outImm(0x43, 0x34), ...outImm(0x40, d & 0xff), ...outImm(0x40, d >> 8),
    // UART: 8N1, FIFO (trigger 1 or 8) or none, MCR DTR|RTS|OUT2, IER = RX data available.
    ...outDx(0x3fb, 0x03), ...outDx(0x3fa, spec.fifo ? 0x87 : 0x00), ...outDx(0x3fc, 0x0b), ...outDx(0x3f9, 0x01),
    // i8042: command byte = translate | sys | aux IRQ | kbd IRQ; mouse on and reporting.
    ...outImm(0x64, 0x60), ...outImm(0x60, 0x47),
    ...(spec.mouse ? [...outImm(0x64, 0xa8), ...outImm(0x64, 0xd4), ...outImm(0x60, 0xf4)] : []),
    I("sti"),
  ];
}

function ioInsns(s: IoSeg, idx: number): AsmItem[] {
  const slot = (n: number) => IO_SLOTS + (n & 63) * 4;
  const L = (x: string) => `${x}${idx}`;
  switch (s.k) {
    case "thr": return [
      I("mov", r("dx"), imm(0x3fd)), { label: L("poll") }, I("in", r("al"), r("dx")), I("test", r("al"), imm(0x20)), { jmpTo: L("poll"), op: "je" },
      I("mov", r("dx"), imm(0x3f8)), I("mov", r("al"), imm(s.byte)), I("out", r("dx"), r("al")),
    ];
    case "pit": return [
      ...outImm(0x43, s.readback ? 0xc2 : 0x00),
      ...(s.readback ? [I("in", r("al"), imm(0x40)), I("mov", { mem: { disp: slot(s.slot + 1) } }, r("al"))] : []),
      I("in", r("al"), imm(0x40)), I("mov", r("ah"), r("al")), I("in", r("al"), imm(0x40)), I("mov", mem(slot(s.slot)), r("ax")),
    ];
    case "ocw3": return [...outImm(0x20, s.isr ? 0x0b : 0x0a), I("in", r("al"), imm(0x20)), I("mov", mem(slot(s.slot)), r("al")), I("in", r("al"), imm(0x21)), I("mov", mem(slot(s.slot) + 1), r("al"))];
    case "rtc": return [...outImm(0x70, s.reg), I("in", r("al"), imm(0x71)), I("mov", mem(slot(s.slot)), r("al"))];
    case "vga": return [I("mov", mem(VGA_TEXT + 2 * (s.pos % 2000)), imm(s.val & 0xffff), { size: 16 })];
    case "cursor": {
      const p = s.pos % 2000;
      return [...outDx(0x3d4, 0x0e), ...outDx(0x3d5, p >> 8), ...outDx(0x3d4, 0x0f), ...outDx(0x3d5, p & 0xff)];
    }
    case "kbstat": return [I("in", r("al"), imm(0x64)), I("mov", mem(slot(s.slot)), r("al"))];
    case "rdtsc": return [I("rdtsc"), I("mov", mem(slot(s.slot)), r("eax")), I("mov", mem(slot(s.slot + 1)), r("edx"))];
    case "spin": return [I("mov", r("ecx"), imm(s.n + 1)), { label: L("spin") }, I("add", r("eax"), r("ecx")), { jmpTo: L("spin"), op: "loop" }];
    case "wait": return [I("sti"), I("hlt")];
    case "clispin": return [I("cli"), I("mov", r("ecx"), imm(s.n + 1)), { label: L("spin") }, { jmpTo: L("spin"), op: "loop" }, I("sti")];
    case "x87": {
      // Exceptions stay masked (an unmasked one would wait on FERR#/IRQ 13, which the guest does
      // not handle); precision and rounding control are random. Memory operands are in the data
      // sandbox, whose random contents make good special operands.
      const cwAt = slot(idx);
      const out: AsmItem[] = [I("mov", mem(cwAt), imm((s.cw | 0x3f) & 0x1f7f), { size: 16 }), raw(0xd9, 0x2d, ...le32(cwAt))];
      for (const o of s.ops) {
        const bytes = X87_FORMS[o.f % X87_FORMS.length]!(DATA + (o.a % (DATA_SIZE - 108)));
        out.push(raw(...bytes));
        if (bytes[0] === 0xdf && bytes[1] === 0xe0) out.push(I("mov", mem(slot(idx + 1)), r("ax"), { size: 16 }));
        if (bytes[0] === 0xdb && bytes[1] === 0xe3) out.push(raw(0xd9, 0x2d, ...le32(cwAt))); // FNINIT: masks again anyway; reload RC/PC
      }
      return out;
    }
  }
}

/** x87 instruction forms for the x87 segments: each gives its bytes for a memory operand address. */
const X87_FORMS: ((a: number) => number[])[] = (() => {
  const f: ((a: number) => number[])[] = [];
  const m = (op: number, reg: number) => f.push((a) => [op, 0x05 | (reg << 3), ...le32(a)]);
  const rr = (op: number, modrm: number) => f.push(() => [op, modrm]);
  // loads and stores of every format
  for (const [op, reg] of [[0xd9, 0], [0xdd, 0], [0xdb, 5], [0xdb, 0], [0xdf, 0], [0xdf, 5], [0xdf, 4],
    [0xd9, 3], [0xdd, 3], [0xdb, 7], [0xdb, 3], [0xdf, 3], [0xdf, 7], [0xdf, 6], [0xdd, 2], [0xd9, 2], [0xdb, 2]] as const) m(op, reg);
  // arithmetic and compares with memory operands: m32real, m64real, m32int, m16int
  for (const op of [0xd8, 0xdc, 0xda, 0xde]) for (let reg = 0; reg < 8; reg++) m(op, reg);
  // register arithmetic (D8, DC, DE), FLD/FXCH/FSTP/FFREE ST(i), FCOMI/FUCOMI, FCMOVcc
  for (const op of [0xd8, 0xdc, 0xde]) for (let mr = 0xc0; mr <= 0xff; mr += 3) if (!(op === 0xde && mr >= 0xd8 && mr <= 0xdf && mr !== 0xd9)) rr(op, mr);
  for (let i = 0; i < 8; i += 3) { rr(0xd9, 0xc0 + i); rr(0xd9, 0xc8 + i); rr(0xdd, 0xd8 + i); rr(0xdd, 0xc0 + i); rr(0xdb, 0xe8 + i); rr(0xdb, 0xf0 + i); rr(0xdf, 0xe8 + i); }
  for (let mr = 0xc1; mr <= 0xdf; mr += 4) { rr(0xda, mr); rr(0xdb, mr); }
  // D9 E0..FF: FCHS FABS FTST FXAM, the constants, and the transcendental/other group
  for (const mr of [0xe0, 0xe1, 0xe4, 0xe5, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5,
    0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff]) rr(0xd9, mr);
  rr(0xdf, 0xe0); rr(0xdb, 0xe2); rr(0xdb, 0xe3); rr(0x9b, 0x90); // FNSTSW AX, FNCLEX, FNINIT, FWAIT; NOP
  // FNSTENV, and FNSAVE followed by FRSTOR of the same image
  m(0xd9, 6);
  f.push((a) => [0xdd, 0x35, ...le32(a), 0xdd, 0x25, ...le32(a)]);
  return f;
})();

function sandbox(codeBase: number, spec: GuestSpec): ProgramOptions {
  return { codeBase, dataBase: DATA, dataSize: DATA_SIZE, stackTop: STACK_TOP, selfModify: true, unguardedDiv: spec.unguardedDiv };
}

/** Lay out the main program: returns bytes, per-byte instruction lengths, and where the body starts. */
function buildMain(spec: GuestSpec): { bytes: Uint8Array; lens: Uint8Array; bodyStart: number; sys: SysImage } {
  const sys = new SysImage();
  const parts: number[] = [];
  const lens: number[] = [];
  const put = (bytes: Uint8Array, starts: number[], ilens: number[]) => {
    const at = parts.length;
    for (let i = 0; i < starts.length; i++) if (ilens[i]! > 0) lens[at + starts[i]!] = ilens[i]!;
    parts.push(...bytes);
  };
  const putAsm = (items: AsmItem[]) => {
    const a = asm(CODE + parts.length, items);
    put(a.bytes, a.starts, a.lens);
  };
  const st = setup(spec).map((i): AsmItem => (i.op === "farjmp" ? { farJmpNext: 0x08 } : i));
  putAsm(st);
  const bodyStart = parts.length;
  spec.segments.forEach((s, idx) => {
    if (s.k === "vm86") { putAsm(vm86Main(s, idx, sys)); return; }
    if (s.k === "task") { putAsm(taskMain(s, idx, CODE + parts.length, (base, top) => ({ ...sandbox(base, spec), stackTop: top }))); return; }
    if (s.k !== "code") { putAsm(ioInsns(s, idx)); return; }
    putAsm([I("mov", r("esp"), imm(STACK_TOP))]);
    const p = buildProgram(s.items, sandbox(CODE + parts.length, spec));
    put(p.code, p.offsets, p.offsets.map((o, i) => (i + 1 < p.offsets.length ? p.offsets[i + 1]! : p.code.length) - o));
    // Leave no undefined flag behind for the next segment.
    if (p.undefFlags) putAsm([I("cmp", r("eax"), r("ecx"))]);
  });
  const e = spec.ending;
  if (e.k === "exit") putAsm([I("mov", r("eax"), imm(e.status & 0xff)), I("out", imm(0xf4), r("eax")), I("cli"), I("hlt")]);
  else if (e.k === "clihlt") putAsm([I("cli"), I("hlt")]);
  else putAsm([{ label: "idle" }, I("hlt"), { jmpTo: "idle", op: "jmp" }]);
  const lt = new Uint8Array(parts.length);
  lens.forEach((v, i) => { if (v !== undefined) lt[i] = v; });
  if (parts.length > 0x10000) throw new Error("main program too large for its length table");
  return { bytes: Uint8Array.from(parts), lens: lt, bodyStart, sys };
}

export function buildGuest(spec: GuestSpec): Guest {
  const main = buildMain(spec);
  const image: Guest["image"] = [];
  // GDT: null, flat ring-0 code 0x08, flat ring-0 data 0x10, then the TSSes (guest-sys.ts).
  const gdt = new Uint8Array(GDT_ENTRIES * 8);
  const gv = new DataView(gdt.buffer);
  [[0, 0], descriptor(0, 0xfffff, 0x9a, 0xc), descriptor(0, 0xfffff, 0x92, 0xc), ...sysDescriptors(descriptor)].forEach(([lo, hi], i) => { gv.setUint32(i * 8, lo!, true); gv.setUint32(i * 8 + 4, hi!, true); });
  image.push({ addr: GDT, bytes: gdt });
  const dtr = new Uint8Array(14);
  const dv = new DataView(dtr.buffer);
  dv.setUint16(0, GDT_ENTRIES * 8 - 1, true); dv.setUint32(2, GDT, true);
  dv.setUint16(8, 256 * 8 - 1, true); dv.setUint32(10, IDT, true);
  image.push({ addr: GDTR, bytes: dtr });
  // Handlers: exceptions 0..31, IRQs 0x20..0x2f, one "unexpected vector" handler for the rest.
  const handlerAt = new Array<number>(256);
  const code: number[] = [];
  const place = (items: AsmItem[]): number => {
    const at = HANDLERS + code.length;
    const a = asm(at, items);
    code.push(...a.bytes);
    while (code.length % 16) code.push(0x90);
    return at;
  };
  for (let v = 0; v < 32; v++) handlerAt[v] = place(exceptionHandler(v, main.bytes.length));
  for (const h of irqHandlers()) handlerAt[h.vec] = place(h.code);
  handlerAt[SOFT_VEC] = place(softHandler());
  const udEip = place(udTask(main.bytes.length));
  const unexpected = place([I("mov", r("eax"), imm(0x3ff)), I("out", imm(0xf4), r("eax")), I("cli"), I("hlt")]);
  const idt = new Uint8Array(256 * 8);
  const iv = new DataView(idt.buffer);
  for (let v = 0; v < 256; v++) {
    const off = handlerAt[v] ?? unexpected;
    iv.setUint32(v * 8, ((0x08 << 16) | (off & 0xffff)) >>> 0, true);
    // Vectors 3, 4 (INT3, INTO) and SOFT_VEC can be raised from vm86 mode: DPL 3.
    const dpl3 = v === 3 || v === 4 || v === SOFT_VEC;
    iv.setUint32(v * 8 + 4, ((off & 0xffff0000) | (dpl3 ? 0xee00 : 0x8e00)) >>> 0, true);
  }
  // Task gates: #UD to the handler task, TASK_VEC to the random tasks' TSS.
  for (const [v, sel] of [[6, SEL_UD], [TASK_VEC, SEL_T]] as const) {
    iv.setUint32(v * 8, (sel << 16) >>> 0, true);
    iv.setUint32(v * 8 + 4, 0x8500, true);
  }
  image.push(...sysImage(main.sys, udEip));
  image.push({ addr: IDT, bytes: idt });
  if (code.length > STATE - HANDLERS) throw new Error("handlers too large");
  image.push({ addr: HANDLERS, bytes: Uint8Array.from(code) });
  image.push({ addr: LEN_TABLE, bytes: main.lens });
  image.push({ addr: CODE, bytes: main.bytes });
  const nsPer = 1e9 / spec.ips;
  const estimate = estimateDuration(spec);
  const script: ScriptEvent[] = [];
  for (const s of [...spec.script].sort((a, b) => a.at - b.at)) {
    const atNs = Math.floor(((s.at * estimate) / 1000) * nsPer);
    const last = script[script.length - 1];
    if (last && last.atNs === atNs) last.events.push(s.ev);
    else script.push({ atNs, events: [s.ev], line: script.length + 1 });
  }
  return { spec, image, main: main.bytes, bodyStart: main.bodyStart, script, estimate, maxInsns: Math.ceil(estimate * 1.5) + 20_000 };
}

/** Rough duration of the main program in instruction times (virtual time x ips). */
export function estimateDuration(spec: GuestSpec): number {
  const pitPeriod = (spec.pitDivisor / 1_193_182) * spec.ips;
  const charTime = 86.8e-6 * spec.ips;
  let t = 80;
  for (const s of spec.segments) {
    switch (s.k) {
      case "code": t += 6 * s.items.length; break;
      case "spin": t += 2 * s.n + 2; break;
      case "clispin": t += s.n + 4; break;
      case "x87": t += 2 * s.ops.length + 4; break;
      case "vm86": case "task": t += sysDuration(s); break;
      case "thr": t += charTime / 8 + 8; break;
      case "wait": t += pitPeriod / 2; break;
      default: t += 8;
    }
  }
  return Math.ceil(t);
}

/** Load the image and set the entry state (also what a reset does). */
export function loadGuest(m: Machine, g: Guest): void {
  m.ram.fill(0);
  for (const p of g.image) m.ram.set(p.bytes, p.addr);
  m.mem.markAllDirty();
  m.cpu.flushBlocks();
  const icount = m.cpu.icount;
  setMultibootEntryState(m.cpu, CODE, 0);
  m.cpu.icount = icount;
}

export function newMachine(g: Guest, tweak?: (m: Machine) => void): Machine {
  const m = new Machine({ memBytes: MEM_BYTES, ips: g.spec.ips, bootEpochSeconds: BOOT_EPOCH });
  tweak?.(m);
  loadGuest(m, g);
  m.onReset = () => loadGuest(m, g);
  return m;
}

/** What to print when a property fails: the spec's knobs, the script and the disassembly. */
export function describeGuest(g: Guest): string {
  const s = g.spec;
  const lines = [
    `guest: ips=${s.ips} pitDivisor=${s.pitDivisor} fifo=${s.fifo} mouse=${s.mouse} unguardedDiv=${s.unguardedDiv} hashInterval=${s.hashInterval} maxInsns=${g.maxInsns} estimate=${g.estimate} ending=${JSON.stringify(s.ending)}`,
    `script (${g.script.length}): ${g.script.map((e) => `@${e.atNs}ns ${e.events.map((x) => JSON.stringify(x)).join(" ")}`).join("; ")}`,
    `segments: ${JSON.stringify(s.segments.map((x) => (x.k === "code" ? `code[${x.items.length}]` : x.k === "task" ? { ...x, items: `code[${x.items.length}]` } : x)))}`,
    `main program body (setup of ${g.bodyStart} bytes at 0x${CODE.toString(16)} omitted):`,
  ];
  let text: string[];
  try { text = disasm(g.main.subarray(g.bodyStart), true, CODE + g.bodyStart); } catch (e) { text = [`(disasm failed: ${e})`]; }
  return [...lines, ...text].join("\n");
}

// ---- arbitraries ----
const slotArb = fc.nat({ max: 63 });
export const ioSegArb: fc.Arbitrary<IoSeg> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant("thr" as const), byte: fc.integer({ min: 0x20, max: 0x7e }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("pit" as const), slot: slotArb, readback: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("ocw3" as const), slot: slotArb, isr: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("rtc" as const), reg: fc.oneof(fc.nat({ max: 0x0d }), fc.nat({ max: 0xff })), slot: slotArb }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("vga" as const), pos: fc.nat({ max: 1999 }), val: fc.nat({ max: 0xffff }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("cursor" as const), pos: fc.nat({ max: 1999 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("kbstat" as const), slot: slotArb }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("rdtsc" as const), slot: slotArb }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("spin" as const), n: fc.nat({ max: 5000 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("wait" as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("clispin" as const), n: fc.nat({ max: 500 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("x87" as const), cw: fc.nat({ max: 0xffff }),
    ops: fc.array(fc.record({ f: fc.nat({ max: 1000 }), a: fc.nat({ max: DATA_SIZE }) }), { minLength: 1, maxLength: 24 }) }) },
);

const codeSegArb: fc.Arbitrary<Segment> = fc.record({
  k: fc.constant("code" as const),
  items: fc.array(arbItem({ selfModify: true, branches: true }), { minLength: 1, maxLength: 16, size: "medium" }),
});

const SET2 = [0x1c, 0x32, 0x21, 0x23, 0x24, 0x2b, 0x34, 0x5a, 0x29, 0x16, 0x1e, 0x12, 0x76, 0x66];
export const inputArb: fc.Arbitrary<InputEvent> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("serial" as const), port: fc.constantFrom(0, 0, 0, 1), byte: fc.nat({ max: 255 }) }) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...SET2), fc.boolean()).map(([c, brk]): InputEvent => ({ kind: "key", bytes: brk ? [0xf0, c] : [c] })) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("mouse" as const), dx: fc.integer({ min: -300, max: 300 }), dy: fc.integer({ min: -300, max: 300 }), buttons: fc.nat({ max: 7 }) }) },
);

export interface GuestArbOptions {
  maxSegments?: number;
  /** Weight of the vm86 and task-switch segments (code 3, device I/O 2). Default 1. */
  sysWeight?: number;
  maxEvents?: number;
}

export function guestArb(o: GuestArbOptions = {}): fc.Arbitrary<GuestSpec> {
  return fc.record({
    ips: fc.constantFrom(10_000_000, 50_000_000, 100_000_000),
    divRaw: fc.integer({ min: 16, max: 4000 }),
    fifo: fc.boolean(),
    mouse: fc.boolean(),
    unguardedDiv: fc.boolean(),
    segments: fc.array(fc.oneof({ weight: 3, arbitrary: codeSegArb }, { weight: 2, arbitrary: ioSegArb }, { weight: o.sysWeight ?? 1, arbitrary: sysSegArb }), { minLength: 1, maxLength: o.maxSegments ?? 24, size: "medium" }),
    ending: fc.oneof(
      { weight: 3, arbitrary: fc.record({ k: fc.constant("exit" as const), status: fc.nat({ max: 255 }) }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant("clihlt" as const) }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant("hltloop" as const) }) },
    ),
    script: fc.array(fc.record({ at: fc.nat({ max: 1200 }), ev: inputArb }), { maxLength: o.maxEvents ?? 12 }),
    hashInterval: fc.constantFrom(997, 4096, 10_000),
  }).map(({ divRaw, ...s }) => {
    // A PIT period of at least ~150 instructions: the main program always makes progress.
    const minDiv = Math.ceil((150 * 1_193_182) / s.ips);
    return { ...s, pitDivisor: Math.min(0xffff, Math.max(divRaw, minDiv)) };
  });
}

export const RUNS_ENV = process.env.RRX_PROPERTY_RUNS ? Number(process.env.RRX_PROPERTY_RUNS) : undefined;
/** Default run counts are modest; RRX_PROPERTY_RUNS=N runs N. */
export const runs = (dflt: number): number => RUNS_ENV ?? dflt;

export { assemble };
