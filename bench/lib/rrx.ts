/**
 * In-process drivers for the bench: build a machine from a fixture the way `rrx run` does,
 * and run it plain, recording, replaying or verifying, timing each with the host clock.
 */
import { readFileSync } from "node:fs";
import { hostname, platform } from "node:os";
import { buildMachine, comparedSection, type MachineConfig } from "../../lib/replay/session.ts";
import { runLive, type EndReason } from "../../lib/machine/driver.ts";
import { parseScript, type ScriptEvent } from "../../lib/machine/script.ts";
import { Recorder, DEFAULT_HASH_INTERVAL } from "../../lib/replay/recorder.ts";
import { LogWriter, FileSink, MemorySink, type LogSink } from "../../lib/replay/log/writer.ts";
import { openLog, verifyLog, replayToEnd } from "../../lib/replay/replayer.ts";
import type { Machine } from "../../lib/machine/machine.ts";

/** A fixed RTC date, so every run of the bench boots the same machine. */
export const BOOT_DATE = Date.UTC(2026, 0, 1) / 1000;

export function fixtureConfig(name: string, append = ""): MachineConfig {
  const path = `fixtures/${name}.elf`;
  return {
    kernel: { name: path, data: new Uint8Array(readFileSync(path)) },
    bios: null,
    modules: [],
    cmdline: append ? `${path} ${append}` : path,
    memBytes: 32 << 20,
    ips: 1e9,
    bootDate: BOOT_DATE,
  };
}

export function loadScript(path: string): ScriptEvent[] {
  return parseScript(readFileSync(path, "utf8"), path);
}

export interface OutputLine {
  text: string;
  /** icount when the line's first byte left the UART. */
  start: number;
  /** icount when its newline left the UART. */
  end: number;
}

/** Collect COM1 output as lines stamped with the icount at which they appeared. */
export function captureLines(m: Machine, lines: OutputLine[] = []): OutputLine[] {
  let cur = "";
  let start = -1;
  m.onOutput = (ch, bytes) => {
    if (ch !== "com1" && ch !== "e9") return;
    for (const b of bytes) {
      if (start < 0) start = m.cpu.icount;
      if (b === 10) { lines.push({ text: cur, start, end: m.cpu.icount }); cur = ""; start = -1; }
      else cur += String.fromCharCode(b);
    }
  };
  return lines;
}

export interface Timed {
  seconds: number;
  icount: number;
  mips: number;
  end: string;
}

function timed(icount: number, seconds: number, end: string): Timed {
  return { seconds, icount, mips: icount / seconds / 1e6, end };
}

export function endName(e: EndReason | { kind: string; status?: number }): string {
  return e.kind === "exit" ? `exit ${(e as { status: number }).status}` : e.kind;
}

/** Build and run a fixture with no recorder. Machine construction is included in the time. */
export async function runPlain(cfg: MachineConfig, opts: { maxInsns?: number; script?: ScriptEvent[]; lines?: OutputLine[]; tweak?: (m: Machine) => void } = {}): Promise<Timed & { m: Machine }> {
  const t0 = performance.now();
  const m = buildMachine(cfg);
  opts.tweak?.(m);
  if (opts.lines) captureLines(m, opts.lines);
  const end = await runLive(m, { maxInsns: opts.maxInsns, script: opts.script });
  m.flushOutput();
  const dt = (performance.now() - t0) / 1000;
  return { ...timed(m.cpu.icount, dt, endName(end)), m };
}

export interface RecordResult extends Timed {
  m: Machine;
  recorder: Recorder;
  bytes: number;
}

/** Record a fixture as `rrx run --record` does (a FileSink when `path` is given, else memory). */
export async function runRecord(cfg: MachineConfig, opts: {
  path?: string; sink?: LogSink; maxInsns?: number; script?: ScriptEvent[]; realtime?: boolean;
  hashInterval?: number; makeRecorder?: (m: Machine, w: LogWriter, hi: number) => Recorder;
  /** Called with the machine before it runs (e.g. to watch its output). */
  onMachine?: (m: Machine) => void;
} = {}): Promise<RecordResult> {
  const t0 = performance.now();
  const m = buildMachine(cfg);
  opts.onMachine?.(m);
  const hashInterval = opts.hashInterval ?? DEFAULT_HASH_INTERVAL;
  const sink = opts.sink ?? (opts.path ? new FileSink(opts.path) : new MemorySink());
  const writer = new LogWriter(sink, {
    compared: { ...comparedSection(cfg, [cfg.kernel!.name]), hashInterval },
    host: { rrxVersion: "bench", hostname: hostname(), platform: platform(), startTime: Date.now(), cwd: process.cwd() },
  });
  const recorder = opts.makeRecorder ? opts.makeRecorder(m, writer, hashInterval) : new Recorder(m, writer, hashInterval);
  const end = await runLive(m, { maxInsns: opts.maxInsns, script: opts.script, observer: recorder, realtime: opts.realtime });
  m.flushOutput();
  recorder.finish(end.kind, end.kind === "exit" ? end.status : 0);
  sink.close();
  const dt = (performance.now() - t0) / 1000;
  return { ...timed(m.cpu.icount, dt, endName(end)), m, recorder, bytes: writer.bytesWritten };
}

/** `rrx replay`: open the log, rebuild the machine, replay to the end. */
export function runReplayLog(path: string): Timed {
  const t0 = performance.now();
  const opened = openLog(path);
  const m = buildMachine(opened.cfg);
  const end = replayToEnd(m, opened);
  m.flushOutput();
  const dt = (performance.now() - t0) / 1000;
  if (end.kind === "diverged") throw new Error(`replay diverged: ${end.detail}`);
  return timed(m.cpu.icount, dt, endName(end));
}

/** `rrx replay --verify`: every hash record and the trailer checked. */
export function runVerifyLog(path: string): Timed & { hashesChecked: number } {
  const t0 = performance.now();
  const opened = openLog(path);
  const r = verifyLog(opened);
  const dt = (performance.now() - t0) / 1000;
  if (!r.ok) throw new Error(`verify failed: ${r.mismatch?.components.join(", ")} in [${r.mismatch?.windowStart}, ${r.mismatch?.windowEnd}]`);
  return { ...timed(r.icount, dt, endName(r.end)), hashesChecked: r.hashesChecked };
}

/** Run a few million instructions of a fixture so the JIT has compiled the core before timing. */
export async function warmup(name = "cpu-bound", insns = 3_000_000): Promise<void> {
  await runPlain(fixtureConfig(name), { maxInsns: insns });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}
