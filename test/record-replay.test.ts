/**
 * Record and replay end to end: scripted input at odd times, replay with verification, two
 * recordings byte-identical apart from the header's host section, and a recording killed with
 * SIGKILL still replays up to its last flush.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, mkdtempSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { buildMachine, comparedSection, type MachineConfig } from "../lib/replay/session.ts";
import { runLive } from "../lib/machine/driver.ts";
import { parseScript } from "../lib/machine/script.ts";
import { Recorder } from "../lib/replay/recorder.ts";
import { LogWriter, MemorySink } from "../lib/replay/log/writer.ts";
import { readLog } from "../lib/replay/log/reader.ts";
import { inputEvents, openLog, verifyLog } from "../lib/replay/replayer.ts";
import { runReplay } from "../lib/machine/driver.ts";
import { EventKind } from "../lib/replay/log/format.ts";
import { FIX, RTC } from "./helpers.ts";

const ROOT = join(import.meta.dir, "..");

function cfgFor(elf: string, append = ""): MachineConfig {
  return {
    kernel: { name: elf, data: new Uint8Array(readFileSync(join(FIX, elf))) },
    bios: null, modules: [], cmdline: append ? `${elf} ${append}` : elf, memBytes: 32 << 20, ips: 1e9, bootDate: RTC,
  };
}

async function record(cfg: MachineConfig, scriptFile: string | null, host: Record<string, unknown>, hashInterval = 1 << 18) {
  const m = buildMachine(cfg);
  let serial = "";
  m.onOutput = (ch, b) => { if (ch === "com1") serial += Buffer.from(b).toString("latin1"); };
  const sink = new MemorySink();
  const w = new LogWriter(sink, { compared: { ...comparedSection(cfg, []), hashInterval }, host }, {});
  const rec = new Recorder(m, w, hashInterval);
  const script = scriptFile ? parseScript(readFileSync(join(FIX, scriptFile), "utf8")) : [];
  const end = await runLive(m, { script, observer: rec, maxInsns: 5e8 });
  m.flushOutput();
  rec.finish(end.kind, end.kind === "exit" ? end.status : 0);
  return { bytes: sink.bytes(), serial, screen: m.display!.screenText(), end, icount: m.cpu.icount };
}

describe("record and replay", () => {
  test("interrupts fixture with keys, mouse moves and serial bytes: replay is bit-identical", async () => {
    const cfg = cfgFor("interrupts.elf");
    // A hash record every 4096 instructions: the run is about 35 K instructions (its serial
    // output goes out at once).
    const r = await record(cfg, "input/interrupts-mixed.txt", { startTime: 1 }, 1 << 12);
    expect(r.end.kind).toBe("exit");
    expect(r.serial).toContain("odd icounts and more!");
    const log = readLog(r.bytes);
    const kinds = new Set(log.events.map((e) => e.kind));
    for (const k of [EventKind.SERIAL_RX, EventKind.KEY, EventKind.MOUSE, EventKind.IDLE_SKIP, EventKind.HASH]) expect(kinds.has(k)).toBe(true);
    // Events really land at odd icounts, some while the guest runs (not halted at a round number).
    expect(log.events.filter((e) => e.kind !== EventKind.HASH && e.icount % 1000 !== 0).length).toBeGreaterThan(5);
    // Replay: every hash record, the trailer, the transcript and the screen.
    const m = buildMachine(cfg);
    let serial = "";
    m.onOutput = (ch, b) => { if (ch === "com1") serial += Buffer.from(b).toString("latin1"); };
    const hashes = new Map(log.hashes.map((h) => [h.icount, h.record]));
    const { MachineHasher } = await import("../lib/replay/session.ts");
    const hasher = new MachineHasher(m);
    let checked = 0;
    const end = runReplay(m, inputEvents(log.events), {
      hashInterval: 1 << 12, until: log.trailer!.finalIcount,
      onHashPoint: (ic) => { const exp = hashes.get(ic); if (exp) { expect(hasher.record()).toEqual(exp); checked++; } },
    });
    m.flushOutput();
    expect(end).toEqual(r.end);
    expect(checked).toBe(log.hashes.length);
    expect(m.cpu.icount).toBe(r.icount);
    expect(hasher.record()).toEqual(log.trailer!.hashes!);
    expect(serial).toBe(r.serial);
    expect(m.display!.screenText()).toBe(r.screen);
  }, 120_000);

  test("two recordings with the same script are byte-identical after the header", async () => {
    const cfg = cfgFor("interrupts.elf");
    const a = await record(cfg, "input/interrupts-mixed.txt", { startTime: 1, hostname: "a" });
    const b = await record(cfg, "input/interrupts-mixed.txt", { startTime: 2, hostname: "bb" });
    const la = readLog(a.bytes), lb = readLog(b.bytes);
    expect(la.comparedJson).toBe(lb.comparedJson);
    expect(la.hostJson).not.toBe(lb.hostJson);
    expect(Buffer.compare(a.bytes.subarray(la.headerBytes), b.bytes.subarray(lb.headerBytes))).toBe(0);
  }, 120_000);

  test("a recording killed with SIGKILL replays up to its last flush", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rrx-kill-"));
    const path = join(dir, "k.rrx");
    const proc = Bun.spawn([process.execPath, join(ROOT, "cmd/rrx.ts"), "run", join(FIX, "cpu-bound.elf"), "--append", "rounds=50",
      "--record", path, "--hash-interval", String(1 << 22), "--serial", "none"], { stdout: "ignore", stderr: "ignore" });
    // Wait until something beyond the header has been flushed, then kill -9.
    for (let i = 0; i < 200 && (!existsSync(path) || statSync(path).size < 40_000); i++) await Bun.sleep(50);
    await Bun.sleep(400);
    proc.kill(9);
    await proc.exited;
    const log = readLog(new Uint8Array(readFileSync(path)));
    expect(log.trailer).toBeNull();
    expect(log.endIcount).toBeGreaterThan(0);
    const opened = openLog(path);
    const r = verifyLog(opened);
    expect(r.ok).toBe(true);
    expect(r.icount).toBe(log.endIcount);
    expect(r.hashesChecked).toBe(log.hashes.length);
    // The CLI says where the log ends.
    const cli = Bun.spawnSync([process.execPath, join(ROOT, "cmd/rrx.ts"), "replay", path, "--serial", "none"], { stderr: "pipe" });
    expect(cli.exitCode).toBe(0);
    expect(cli.stderr.toString()).toMatch(/log ends at icount \d+ \(truncated\)/);
  }, 120_000);
});
