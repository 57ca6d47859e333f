/**
 * A second ISA through every layer above the CPU contract: the toy32 CPU and toy board
 * (test/support/toy/) are recorded with the Recorder (timer interrupts on virtual-time
 * deadlines, a scripted serial byte through the same input path as the PC's UARTs), verified
 * like `replay --verify` (and a tampered log diverges), debugged backwards with the reverse
 * engine, and served by the gdb stub with the toy's own target description. Expected values
 * come from the program's semantics below, never from the code under test.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { registerBoard, unregisterBoard } from "../lib/boards/registry.ts";
import { buildMachine, comparedSection, imagesOf, MachineHasher, type MachineConfig } from "../lib/replay/session.ts";
import { runLive, runReplay } from "../lib/machine/driver.ts";
import { parseScript } from "../lib/machine/script.ts";
import { Recorder } from "../lib/replay/recorder.ts";
import { LogWriter, MemorySink } from "../lib/replay/log/writer.ts";
import { readLog } from "../lib/replay/log/reader.ts";
import { EventKind } from "../lib/replay/log/format.ts";
import { openLog, verifyLog, type OpenedLog } from "../lib/replay/replayer.ts";
import { engineFromLog } from "../lib/replay/engine.ts";
import { RrxTarget } from "../lib/gdb/rrx-target.ts";
import { GdbSession } from "../lib/gdb/session.ts";
import { archOf, gdbArgs } from "../lib/gdb/launch.ts";
import { RspParser, encodePacket, u32leHex } from "../lib/gdb/rsp.ts";
import { fixCrcs } from "./support/log-testutil.ts";
import { toyBoard } from "./support/toy/board.ts";
import { HANDLER, type ToyCpu } from "./support/toy/cpu.ts";
import { assemble, I, type Item } from "./support/toy/asm.ts";
import { freshHash, sameHash } from "./support/replay-check.ts";

const SUM = 0x400, TICKS = 0x404, LASTRX = 0x408;
const RX_BYTE = 0xa7;
const EXIT = 7;

/**
 * Boot: r7 = 0 (the base register of every data access). The interrupt handler counts timer
 * ticks at TICKS and echoes a received byte, keeping it at LASTRX. Main prints "Hi\n", starts
 * the timer (every 300 ns), sums 100 + 99 + ... + 1 into r2 storing each partial sum at SUM,
 * sleeps until the 8th tick, then until a byte arrives, and powers off with status 7.
 */
const PROGRAM: Item[] = [
  I.li(7, 0), I.bz(7, "main"), I.halt(), I.halt(),
  "handler", // = HANDLER
  I.in(5, 0x11), I.bz(5, "rx"), I.out(5, 0x11), I.ld(6, 7, TICKS), I.addi(6, 1), I.st(6, 7, TICKS),
  "rx",
  I.in(5, 0x21), I.bz(5, "done"), I.in(5, 0x20), I.out(5, 0x20), I.st(5, 7, LASTRX),
  "done",
  I.iret(),
  "main",
  I.li(1, 72), I.out(1, 0x20), I.li(1, 105), I.out(1, 0x20), I.li(1, 10), I.out(1, 0x20),
  I.li(1, 300), I.out(1, 0x10), I.ei(1),
  I.li(2, 0), I.li(3, 100),
  "loop",
  I.add(2, 3), I.addi(3, -1), "store", I.st(2, 7, SUM), I.bnz(3, "loop"),
  "wait",
  I.wfi(), I.ld(4, 7, TICKS), I.addi(4, -8), I.bnz(4, "wait"),
  "wait2",
  I.ld(4, 7, LASTRX), I.bnz(4, "fin"), I.wfi(), I.bz(7, "wait2"),
  "fin",
  I.li(1, EXIT), I.out(1, 0x30),
];
const { code, labels } = assemble(PROGRAM);
const L = (name: string) => labels.get(name)!;

const cfg: MachineConfig = {
  board: "toy",
  kernel: { name: "toy.bin", data: code },
  bios: null, modules: [], cmdline: "", memBytes: 64 << 10, ips: 1e9, bootDate: 0,
};

let dir = "";
let logPath = "";
let logBytes: Uint8Array = new Uint8Array();
let serial = "";
let recordedEnd: { kind: string; status?: number } = { kind: "" };
let opened: OpenedLog;

beforeAll(async () => {
  registerBoard(toyBoard);
  dir = mkdtempSync(join(tmpdir(), "rrx-toy-"));
  const m = buildMachine(cfg);
  m.onOutput = (ch, b) => { if (ch === "serial") serial += Buffer.from(b).toString("latin1"); };
  const sink = new MemorySink();
  const hashInterval = 128;
  const images = imagesOf(cfg);
  const w = new LogWriter(sink, { compared: { ...comparedSection(cfg, []), hashInterval }, host: {} }, {
    pack: images.map((x) => ({ role: x.info.role, name: x.info.name, data: x.data })),
  });
  const rec = new Recorder(m, w, hashInterval);
  const script = parseScript(`at 20us serial "\\x${RX_BYTE.toString(16)}"\n`);
  const end = await runLive(m, { script, observer: rec, maxInsns: 1e6 });
  m.flushOutput();
  rec.finish(end.kind, end.kind === "exit" ? end.status : 0);
  recordedEnd = end;
  logBytes = sink.bytes();
  logPath = join(dir, "toy.rrx");
  writeFileSync(logPath, logBytes);
  opened = openLog(logPath);
});
afterAll(() => {
  unregisterBoard("toy");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const fresh = (n: number) => freshHash(opened, n);
const same = sameHash;
const word = (ram: Uint8Array, a: number) => new DataView(ram.buffer, ram.byteOffset).getUint32(a, true);

describe("toy32 on the toy board", () => {
  test("the program's layout is what the handler address says", () => {
    expect(L("handler")).toBe(HANDLER);
  });

  test("run(n) retires exactly n; the first timer interrupt arrives at its icount (stopOnDelivery)", () => {
    const m = buildMachine(cfg);
    const cpu = m.cpu as ToyCpu;
    cpu.run(5); // li r7, bz (taken), then main's li, out, li
    expect(cpu.icount).toBe(5);
    expect(cpu.pc).toBe(L("main") + 12);
    // The timer is started by the 10th instruction, at icount 9: due at 9 + 300 ns = icount 309
    // (1 instruction = 1 ns). Main's 9th instruction enables interrupts; the loop starts at
    // icount 13 and runs 4 instructions a pass, so 74 passes are done when the interrupt comes.
    cpu.stopOnDelivery = true;
    expect(m.runUntil(10_000)).toEqual({ kind: "delivered" });
    expect(cpu.icount).toBe(309);
    expect(cpu.pc).toBe(HANDLER);
    expect(cpu.epc).toBe(L("loop"));
    expect(cpu.r[3]).toBe(100 - 74);
    expect(cpu.r[2]).toBe(5050 - (26 * 27) / 2); // 100 + 99 + ... + 27
    expect(cpu.ie).toBe(false);
  });

  test("recording: timer interrupts, a logged serial byte, the program's output and exit", () => {
    expect(recordedEnd).toEqual({ kind: "exit", status: EXIT });
    expect(serial).toBe("Hi\n" + String.fromCharCode(RX_BYTE));
    const log = readLog(logBytes);
    expect(log.header.compared.board).toBe("toy");
    expect(log.header.compared.isa).toBe("toy32");
    expect(log.header.compared.devices).toEqual(["timer", "serial", "power"]);
    const rx = log.events.filter((e) => e.kind === EventKind.SERIAL_RX);
    expect(rx.map((e) => (e.payload as { byte: number }).byte)).toEqual([RX_BYTE]);
    expect(log.hashes.length).toBeGreaterThan(3);
  });

  test("replay --verify: every hash matches, and the final state is the program's", () => {
    const r = verifyLog(opened);
    expect(r.ok).toBe(true);
    expect(r.hashesChecked).toBeGreaterThanOrEqual(readLog(logBytes).hashes.length);
    const m = r.machine ?? (() => { const x = buildMachine(opened.cfg); runReplay(x, opened.events, { until: r.icount }); return x; })();
    expect(word(m.ram, SUM)).toBe(5050);
    expect(word(m.ram, TICKS)).toBeGreaterThanOrEqual(8);
    expect(word(m.ram, LASTRX)).toBe(RX_BYTE);
  });

  test("a log whose serial byte was changed diverges", () => {
    const orig = readLog(logBytes);
    let tampered: Uint8Array | null = null;
    for (let i = 0; i < logBytes.length && !tampered; i++) {
      if (logBytes[i] !== RX_BYTE) continue;
      const b = logBytes.slice();
      b[i] = RX_BYTE + 1;
      const t = fixCrcs(b);
      try {
        const l = readLog(t);
        const rx = l.events.filter((e) => e.kind === EventKind.SERIAL_RX);
        if (rx.length === 1 && (rx[0]!.payload as { byte: number }).byte === RX_BYTE + 1 && JSON.stringify(l.hashes) === JSON.stringify(orig.hashes)) tampered = t;
      } catch { /* not the event's byte */ }
    }
    expect(tampered).not.toBeNull();
    const p = join(dir, "tampered.rrx");
    writeFileSync(p, tampered!);
    const r = verifyLog(openLog(p));
    expect(r.ok).toBe(false);
    expect(r.mismatch!.components).toContain("ram"); // LASTRX holds the other byte
  });

  test("reverse engine: reverse-stepi, reverse-continue to a breakpoint and to a watchpoint", async () => {
    const e = engineFromLog(opened);
    const cpu = () => e.m.cpu as ToyCpu;
    const end = opened.log.trailer!.finalIcount;
    await e.seek(end);
    expect(e.icount).toBe(end);
    const h = new MachineHasher(e.m);

    // reverse-stepi: one instruction back is the state a fresh replay has there.
    expect(await e.stepBack()).toEqual({ kind: "step" });
    expect(e.icount).toBe(end - 1);
    expect(same(h.record(), fresh(end - 1))).toBe(true);

    // A breakpoint at the loop's store: the last time it runs is the 100th iteration.
    e.setBreakpoints([L("store")]);
    expect(await e.continueBackward()).toEqual({ kind: "breakpoint", addr: L("store") });
    expect(cpu().pc).toBe(L("store"));
    expect(cpu().r[2]).toBe(5050);
    expect(cpu().r[3]).toBe(0);
    expect(word(e.m.ram, SUM)).toBe(5049); // the store has not run
    expect(e.isCanonical).toBe(true);
    expect(same(h.record(), fresh(e.icount))).toBe(true);
    const at100 = e.icount;
    // One more reverse-continue: the 99th iteration, 4 instructions earlier.
    expect(await e.continueBackward()).toEqual({ kind: "breakpoint", addr: L("store") });
    expect(cpu().r[2]).toBe(5049);
    expect(cpu().r[3]).toBe(1);
    expect(e.icount).toBeLessThanOrEqual(at100 - 4);
    e.setBreakpoints([]);

    // A write watchpoint on SUM, from the end: the state before the last store.
    await e.seek(end);
    expect(e.icount).toBe(end);
    e.setWatchpoints([{ type: 2, addr: SUM, len: 4 }]);
    expect(await e.continueBackward()).toEqual({ kind: "watch", type: 2, addr: SUM });
    expect(e.icount).toBe(at100);
    expect(cpu().pc).toBe(L("store"));
    expect(word(e.m.ram, SUM)).toBe(5049);
    expect(same(h.record(), fresh(e.icount))).toBe(true);
    // Forward again: the store re-does the write.
    e.setWatchpoints([]);
    expect(await e.stepForward()).toEqual({ kind: "step" });
    expect(word(e.m.ram, SUM)).toBe(5050);
    expect(same(h.record(), fresh(at100 + 1))).toBe(true);

    // A breakpoint at the handler, backwards from the end: the last interrupt entered it.
    e.setBreakpoints([HANDLER]);
    await e.seek(end);
    expect(e.icount).toBe(end);
    expect(await e.continueBackward()).toEqual({ kind: "breakpoint", addr: HANDLER });
    expect(cpu().pc).toBe(HANDLER);
    expect(cpu().ie).toBe(false);
    expect([L("wait2"), L("wait2") + 4, L("wait2") + 8, L("wait2") + 12, L("fin")]).toContain(cpu().epc);
  });

  test("without the toy board registered, its log is refused with a one-line error", () => {
    unregisterBoard("toy");
    try {
      expect(() => openLog(logPath)).toThrow(/^the log needs a "toy" board with a "toy32" CPU; this rrx has: pc \(i386\)$/);
    } finally {
      registerBoard(toyBoard);
    }
  });

  describe("gdb stub", () => {
    let session: GdbSession;
    let target: RrxTarget;
    const replies: string[] = [];
    const parser = new RspParser();
    async function cmd(p: string): Promise<string> {
      session.receive(encodePacket(p));
      for (let i = 0; i < 2000 && replies.length === 0; i++) await new Promise((r) => setTimeout(r, 1));
      expect(replies.length).toBeGreaterThan(0);
      return replies.shift()!;
    }
    const regs = (g: string) => Array.from({ length: g.length / 8 }, (_, i) => Buffer.from(g.slice(8 * i, 8 * i + 8), "hex").readUInt32LE(0));

    beforeAll(async () => {
      target = new RrxTarget(engineFromLog(opened));
      session = new GdbSession(target, (bytes) => {
        for (const ev of parser.feed(bytes)) if (ev.type === "packet") { replies.push(ev.data); session.receive("+"); }
      });
      expect(await cmd("QStartNoAckMode")).toBe("OK");
    });
    afterAll(() => session.close());

    test("serves the toy target description and reads toy registers", async () => {
      const xml = await cmd("qXfer:features:read:target.xml:0,ffff");
      expect(xml).toContain("<architecture>toy32</architecture>");
      expect(xml).toContain('<reg name="epc"');
      const g = regs(await cmd("g"));
      expect(g).toEqual(Array(11).fill(0)); // r0..r7, pc, epc, ie at reset
      expect(gdbArgs({ arch: archOf(target), port: 1 })).toContain("set architecture toy32");
    });

    test("stepping follows the program; a breakpoint and memory reads see its state", async () => {
      expect(await cmd("s")).toMatch(/^T05/);
      expect(regs(await cmd("g"))[8]).toBe(4); // li r7, 0 retired
      expect(await cmd("s")).toMatch(/^T05/);
      expect(regs(await cmd("g"))[8]).toBe(L("main")); // bz r7 taken
      expect(await cmd(`Z0,${L("store").toString(16)},4`)).toBe("OK");
      expect(await cmd("c")).toMatch(/^T05/);
      let g = regs(await cmd("g"));
      expect([g[8], g[2], g[3]]).toEqual([L("store"), 100, 99]);
      expect(await cmd("c")).toMatch(/^T05/);
      g = regs(await cmd("g"));
      expect([g[8], g[2], g[3]]).toEqual([L("store"), 199, 98]);
      expect(await cmd(`m${SUM.toString(16)},4`)).toBe(u32leHex(100));
      expect(await cmd("bs")).toMatch(/^T05/); // reverse-stepi: back before the ADDI
      g = regs(await cmd("g"));
      expect([g[8], g[3]]).toEqual([L("store") - 4, 99]);
    });
  });
});
