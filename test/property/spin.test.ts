/**
 * Polling loops whose passes the translator skips (jit.ts, emitRegion "spin"): skipping must
 * be invisible. A small guest prints a message through a polled UART (LSR.THRE), optionally
 * under PIT interrupts, polls the receiver buffer for a non-zero byte while scripted input
 * (zero bytes first) arrives, and waits for the transmitter to drain. It runs twice, with the
 * block cache and translator (spin skipping on) and in single-step mode (no translation), to
 * the same stop points; the complete machine state must be equal at every stop. It may also
 * wait for timer ticks by polling a counter in RAM, and for a key by polling the i8042 status
 * port.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Machine } from "../../lib/machine/machine.ts";
import { setMultibootEntryState } from "../../lib/boards/pc-boot.ts";
import { fullState } from "./harness.ts";
import { runs } from "./guest.ts";

const BASE = 0x100000, MSG = 0x180000, OUT = 0x5000, IDT = 0x2000, HANDLER = 0x3000;

interface Spec {
  ips: number;
  divisor: number;
  fifo: boolean;
  /** The THRE poll loop: plain, with PAUSE, or counting passes in EBX (LEA: the flags do not see it), never a fixed point. */
  loop: "plain" | "pause" | "count";
  msgLen: number;
  /** PIT channel 0 divisor, or 0 for no timer interrupts. */
  pit: number;
  rbrPoll: boolean;
  /** Then wait for a key: poll the i8042 status port (stable reads) until OBF, read port 0x60. */
  kbWait: boolean;
  /** With the timer on, first wait for 3 ticks by polling the handler's counter in RAM. */
  tickWait: boolean;
  /** Serial input: zero bytes, then 0x41, at these icounts. */
  input: number[];
  threshold: number;
  slices: number[];
  maxInsns: number;
}

/** Assemble with rel8 labels: items are byte arrays or ["jcc", opcode, label] / ["label", name]. */
type Item = number[] | ["label", string] | ["j", number, string];
function assemble(base: number, items: Item[]): number[] {
  const labels = new Map<string, number>();
  const layout = (final: boolean): number[] => {
    const out: number[] = [];
    for (const it of items) {
      if (it[0] === "label") { labels.set(it[1] as string, base + out.length); continue; }
      if (it[0] === "j") {
        const [, op, l] = it as ["j", number, string];
        const rel = final ? labels.get(l)! - (base + out.length + 2) : 0;
        if (final && (rel < -128 || rel > 127)) throw new Error(`rel8 out of range to ${l}`);
        out.push(op, rel & 0xff);
        continue;
      }
      out.push(...(it as number[]));
    }
    return out;
  };
  layout(false);
  return layout(true);
}

const movDx = (v: number): number[] => [0x66, 0xba, v & 0xff, v >> 8];
const outDx = (port: number, v: number): number[] => [...movDx(port), 0xb0, v, 0xee];
const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];

function program(s: Spec): number[] {
  const pollBody: Item[] = s.loop === "pause" ? [[0xf3, 0x90], [0xec]] : s.loop === "count" ? [[0xec], [0x8d, 0x5b, 0x01]] : [[0xec]];
  return assemble(BASE, [
    outDx(0x3fb, 0x80), outDx(0x3f8, s.divisor & 0xff), outDx(0x3f9, s.divisor >> 8), outDx(0x3fb, 0x03),
    outDx(0x3fa, s.fifo ? 0x07 : 0x00), outDx(0x3f9, 0x00),
    ...(s.pit ? [
      [0xb0, 0x34, 0xe6, 0x43, 0xb0, s.pit & 0xff, 0xe6, 0x40, 0xb0, s.pit >> 8, 0xe6, 0x40], // PIT ch0 mode 2
      [0xb0, 0xfe, 0xe6, 0x21, 0xfb], // unmask IRQ0, STI
    ] as Item[] : []),
    // mov eax, [OUT]; add eax, 3; tick: cmp [OUT], eax; jb tick (the IRQ0 handler counts in [OUT])
    ...(s.pit && s.tickWait ? [[0xa1, ...u32(OUT), 0x83, 0xc0, 0x03], ["label", "tick"], [0x39, 0x05, ...u32(OUT)], ["j", 0x72, "tick"]] as Item[] : []),
    [0xbe, ...u32(MSG)], [0xb9, ...u32(s.msgLen)], [0x31, 0xdb], // mov esi, msg; mov ecx, len; xor ebx, ebx
    ["label", "next"], movDx(0x3fd),
    ["label", "poll"], ...pollBody, [0xa8, 0x20], ["j", 0x74, "poll"], // in al, dx; test al, 0x20; jz poll
    movDx(0x3f8), [0xac, 0xee, 0x49], ["j", 0x75, "next"], // lodsb; out dx, al; dec ecx; jnz next
    ...(s.rbrPoll ? [movDx(0x3f8), ["label", "rbr"], [0xec, 0x84, 0xc0], ["j", 0x74, "rbr"], [0xa2, ...u32(OUT + 4)]] as Item[] : []),
    ...(s.kbWait ? [["label", "kb"], [0xe4, 0x64, 0xa8, 0x01], ["j", 0x74, "kb"], [0xe4, 0x60, 0xa2, ...u32(OUT + 12)]] as Item[] : []),
    movDx(0x3fd), ["label", "temt"], [0xec, 0xa8, 0x40], ["j", 0x74, "temt"], // wait for TEMT
    [0x89, 0x1d, ...u32(OUT + 8)], // mov [OUT+8], ebx
    [0xb0, 0x00, 0xe6, 0xf4, 0xfa, 0xf4], // debug exit 0; CLI; HLT
  ]);
}

function machine(s: Spec, reference: boolean): Machine {
  // Version 1 of the PC board: its UART sends at the line rate, so THRE polling loops wait.
  const m = new Machine({ memBytes: 2 << 20, ips: s.ips, bootEpochSeconds: 0, boardVersion: 1 });
  m.ram.set(program(s), BASE);
  for (let k = 0; k < s.msgLen; k++) m.ram[MSG + k] = 0x41 + (k % 26);
  // IRQ0 (vector 8 in the BIOS PIC state): inc dword [OUT]; EOI; IRET.
  m.ram.set([0x50, 0xff, 0x05, ...u32(OUT), 0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf], HANDLER);
  const dv = new DataView(m.ram.buffer);
  dv.setUint32(0x1008, 0x0000ffff, true); dv.setUint32(0x100c, 0x00cf9a00, true);
  dv.setUint32(0x1010, 0x0000ffff, true); dv.setUint32(0x1014, 0x00cf9200, true);
  dv.setUint32(IDT + 8 * 8, (0x08 << 16) | (HANDLER & 0xffff), true);
  dv.setUint32(IDT + 8 * 8 + 4, (HANDLER & 0xffff0000) | 0x8e00, true);
  m.mem.markAllDirty();
  setMultibootEntryState(m.cpu, BASE, 0);
  m.cpu.gdtBase = 0x1000; m.cpu.gdtLimit = 0x17;
  m.cpu.idtBase = IDT; m.cpu.idtLimit = 0x7ff;
  m.cpu.regs[4] = 0x80000;
  if (reference) m.cpu.singleStep = true;
  else m.cpu.jitThreshold = s.threshold;
  return m;
}

/** Run to the same stop points in both modes: (icount, state) after each runUntil. */
function trace(s: Spec, reference: boolean): { stops: [number, string][]; serial: string; skipped: number } {
  const m = machine(s, reference);
  let serial = "";
  m.onOutput = (ch, b) => { if (ch === "com1") serial += Buffer.from(b).toString("latin1"); };
  const input = [...s.input].sort((a, b) => a - b);
  const stops: [number, string][] = [];
  let si = 0, ii = 0;
  for (let guard = 0; guard < 100_000; guard++) {
    while (ii < input.length && input[ii]! <= m.cpu.icount) {
      m.inject({ kind: "serial", port: 0, byte: ii === input.length - 1 ? 0x41 : 0 });
      if (s.kbWait && ii === input.length - 1) m.inject({ kind: "key", bytes: [0x1c] });
      ii++;
    }
    let limit = Math.min(s.maxInsns, m.cpu.icount + s.slices[si++ % s.slices.length]!);
    if (ii < input.length) limit = Math.min(limit, Math.max(input[ii]!, m.cpu.icount + 1));
    const r = m.runUntil(limit);
    stops.push([m.cpu.icount, fullState(m)]);
    if (r.kind !== "limit" || m.cpu.icount >= s.maxInsns) break;
  }
  m.flushOutput();
  return { stops, serial, skipped: m.cpu.spinSkipped };
}

const specArb: fc.Arbitrary<Spec> = fc.record({
  ips: fc.constantFrom(5_000_000, 20_000_000, 50_000_000),
  divisor: fc.integer({ min: 1, max: 12 }),
  fifo: fc.boolean(),
  loop: fc.constantFrom("plain" as const, "pause" as const, "count" as const),
  msgLen: fc.integer({ min: 1, max: 12 }),
  pit: fc.oneof(fc.constant(0), fc.integer({ min: 200, max: 20_000 })),
  rbrPoll: fc.boolean(),
  kbWait: fc.boolean(),
  tickWait: fc.boolean(),
  // Often a burst: zero bytes queued in the receive FIFO, which the RBR poll loop pops (a
  // read that changes the device; its passes must never be skipped).
  input: fc.oneof(
    fc.array(fc.integer({ min: 100, max: 60_000 }), { minLength: 1, maxLength: 8 }),
    fc.tuple(fc.integer({ min: 100, max: 20_000 }), fc.integer({ min: 1, max: 12 })).map(([at, n]) => new Array<number>(n).fill(at)),
  ),
  threshold: fc.constantFrom(1, 2, 3, 50, 500),
  slices: fc.array(fc.integer({ min: 1, max: 40_000 }), { minLength: 1, maxLength: 8 }).filter((a) => a.reduce((x, y) => x + y, 0) >= 500 * a.length),
  maxInsns: fc.integer({ min: 1000, max: 150_000 }),
});

describe("polling loops skipped by the translator", () => {
  test("block cache + translator with spin skipping equals single-step at every stop point", () => {
    let skipped = 0;
    fc.assert(fc.property(specArb, (s) => {
      const a = trace(s, false), b = trace(s, true);
      expect(b.skipped).toBe(0);
      const n = Math.min(a.stops.length, b.stops.length);
      for (let i = 0; i < n; i++) {
        if (a.stops[i]![0] !== b.stops[i]![0] || a.stops[i]![1] !== b.stops[i]![1]) {
          throw new Error(`stop ${i}: translated ${a.stops[i]!.join(" ")} vs single-step ${b.stops[i]!.join(" ")}`);
        }
      }
      expect(a.stops.length).toBe(b.stops.length);
      expect(a.serial).toBe(b.serial);
      skipped += a.skipped;
    }), { numRuns: runs(40) });
    // The property is only worth something if passes were actually skipped.
    expect(skipped).toBeGreaterThan(0);
  }, 600_000);

  test("a print loop at 115200 baud retires most of its polling passes without running them", () => {
    const s: Spec = { ips: 1e9, divisor: 1, fifo: false, loop: "plain", msgLen: 8, pit: 0, rbrPoll: false, kbWait: false, tickWait: false, input: [], threshold: 500, slices: [1e9], maxInsns: 5e6 };
    const on = machine(s, false), off = machine(s, false);
    off.cpu.noSpinSkip = true;
    const ron = on.runUntil(s.maxInsns), roff = off.runUntil(s.maxInsns);
    expect(ron).toEqual({ kind: "exit", status: 1 }); // isa-debug-exit: (0 << 1) | 1
    expect(roff).toEqual(ron);
    expect(on.cpu.icount).toBe(off.cpu.icount);
    expect(fullState(on)).toBe(fullState(off));
    expect(off.cpu.spinSkipped).toBe(0);
    // 8 characters of ~86,800 instructions each, nearly all of them polling.
    expect(on.cpu.icount).toBeGreaterThan(8 * 80_000);
    expect(on.cpu.spinSkipped / on.cpu.icount).toBeGreaterThan(0.9);
  });
});
