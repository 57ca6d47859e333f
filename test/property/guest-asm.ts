/**
 * The random guests' tiny assembler (labels over test/support/x86-encoder.ts) and memory map,
 * shared by guest.ts (the guest) and guest-sys.ts (its vm86 and task-switch segments).
 */
import { encode, type Insn } from "../support/x86-encoder.ts";

// ---- layout ----
export const MEM_BYTES = 4 << 20;
export const GDT = 0x1000, GDTR = 0x1100, IDTR = 0x1108, IDT = 0x2000, HANDLERS = 0x3000;
/** Guest-visible results: exception counts, IRQ counters/accumulators, rings, I/O results. */
export const STATE = 0x6000;
export const EXC = STATE; // 32 dwords: count per exception vector
export const PIT_CNT = STATE + 0x100, PIT_ACC = STATE + 0x104, RX_CNT = STATE + 0x108, RX_ACC = STATE + 0x10c;
export const KB_CNT = STATE + 0x110, MS_CNT = STATE + 0x114, KB_STAT = STATE + 0x118, IIR_LAST = STATE + 0x11c;
export const RX_RING = STATE + 0x200, KB_RING = STATE + 0x300, MS_RING = STATE + 0x400, IO_SLOTS = STATE + 0x500;
/** Per-byte instruction lengths of the main program (index: address - CODE). */
export const LEN_TABLE = 0x40000;
export const CODE = 0x100000;
export const DATA = 0x200000, DATA_SIZE = 0x10000, STACK_TOP = DATA + 0x8000;
export const VGA_TEXT = 0xb8000;

// ---- a tiny assembler with labels ----
export type AsmItem =
  | Insn
  | { label: string }
  | { jmpTo: string; op: string; cc?: string }
  | { farJmpNext: number }
  /** An instruction that needs a label's address; `make` must give the same length for any address. */
  | { withLabel: string; make: (addr: number) => Insn };

function isLabel(a: AsmItem): a is { label: string } { return "label" in a; }
function isJmp(a: AsmItem): a is { jmpTo: string; op: string } { return "jmpTo" in a; }
function isFar(a: AsmItem): a is { farJmpNext: number } { return "farJmpNext" in a; }
function isWith(a: AsmItem): a is { withLabel: string; make: (addr: number) => Insn } { return "withLabel" in a; }

/** Assemble with labels; branches to labels use the near (rel32) form except loop/jecxz. Returns bytes and the start offset of each item. */
export function asm(base: number, items: AsmItem[]): { bytes: Uint8Array; starts: number[]; lens: number[] } {
  const enc = (a: AsmItem, addr: number, labels: Map<string, number> | null): Uint8Array => {
    if (isLabel(a)) return new Uint8Array(0);
    if (isFar(a)) {
      const t = (addr + 7) >>> 0;
      return Uint8Array.of(0xea, t & 0xff, (t >>> 8) & 0xff, (t >>> 16) & 0xff, t >>> 24, a.farJmpNext & 0xff, a.farJmpNext >> 8);
    }
    if (isWith(a)) {
      const target = labels ? labels.get(a.withLabel) : 0;
      if (target === undefined) throw new Error(`asm: no label ${a.withLabel}`);
      return encode(a.make(target));
    }
    if (isJmp(a)) {
      const short = a.op === "loop" || a.op === "jecxz";
      const probe = encode({ op: a.op, rel: 0, alt: !short });
      const target = labels ? labels.get(a.jmpTo) : addr;
      if (target === undefined) throw new Error(`asm: no label ${a.jmpTo}`);
      const rel = target - (addr + probe.length);
      if (short && (rel < -128 || rel > 127)) throw new Error(`asm: ${a.op} to ${a.jmpTo} out of range`);
      return encode({ op: a.op, rel, alt: !short });
    }
    return encode(a);
  };
  const labels = new Map<string, number>();
  let addr = base;
  const lens: number[] = [];
  for (const a of items) {
    if (isLabel(a)) labels.set(a.label, addr);
    const n = enc(a, addr, null).length;
    lens.push(n);
    addr += n;
  }
  const out: number[] = [];
  const starts: number[] = [];
  addr = base;
  for (const a of items) {
    starts.push(addr - base);
    const b = enc(a, addr, labels);
    if (b.length !== lens[starts.length - 1]) throw new Error("asm: an item changed length between passes");
    out.push(...b);
    addr += b.length;
  }
  return { bytes: Uint8Array.from(out), starts, lens };
}

export const r = (reg: string) => ({ reg }) as { reg: never };
export const imm = (v: number) => ({ imm: v });
export const mem = (disp: number) => ({ mem: { disp } });
export const I = (op: string, dst?: unknown, src?: unknown, extra: Partial<Insn> = {}): Insn => ({ op, dst: dst as never, src: src as never, ...extra });
export const le16 = (v: number) => [v & 0xff, (v >>> 8) & 0xff];
export const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
export const raw = (...bytes: number[]): Insn => ({ op: "raw", bytes });
/** JMP FAR / CALL FAR sel:off (ptr16:32). */
export const farJmp = (sel: number, off = 0): Insn => raw(0xea, ...le32(off), ...le16(sel));
export const farCall = (sel: number, off = 0): Insn => raw(0x9a, ...le32(off), ...le16(sel));
/** mov dword [addr], imm32 (always the imm32 form: fixed length). */
export const movMemImm32 = (addr: number, v: number): Insn => raw(0xc7, 0x05, ...le32(addr), ...le32(v >>> 0));

export const outImm = (port: number, v: number): Insn[] => [I("mov", r("al"), imm(v & 0xff)), I("out", imm(port), r("al"))];
export const outDx = (port: number, v: number): Insn[] => [I("mov", r("dx"), imm(port)), I("mov", r("al"), imm(v & 0xff)), I("out", r("dx"), r("al"))];
