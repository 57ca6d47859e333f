#!/usr/bin/env bun
/**
 * rrx: deterministic record/replay and reverse debugging for whole machines.
 */
import { cac } from "cac";
import kleur from "kleur";
import { existsSync, readFileSync, openSync, writeSync, closeSync } from "node:fs";
import { hostname, platform } from "node:os";
import { isBzImage } from "../lib/boot/linux.ts";
import { buildMachine, comparedSection, imagesOf, screenHash, type MachineConfig } from "../lib/replay/session.ts";
import { runLive, HostQueue, type EndReason } from "../lib/machine/driver.ts";
import { parseScript, textToSet2 } from "../lib/machine/script.ts";
import { hostEpochSeconds } from "../lib/machine/host.ts";
import { Recorder, DEFAULT_HASH_INTERVAL } from "../lib/replay/recorder.ts";
import { LogWriter, FileSink } from "../lib/replay/log/writer.ts";
import { LogError, MAGIC, ELF_MAGIC, EventKind } from "../lib/replay/log/format.ts";
import { openLog, verifyLog, replayToEnd, finalIcountOf } from "../lib/replay/replayer.ts";
import { readLog } from "../lib/replay/log/reader.ts";
import { logInfo, formatLogInfo, filterEvents, formatEvent, eventToJson, resolveKind } from "../lib/replay/log/info.ts";
import type { Machine } from "../lib/machine/machine.ts";
import { registerGdb } from "./gdb.ts";
import { UsageError, isUserError, readInput, checkInput, checkRecordTarget, checkOutputFiles, parseMemSize, parseDate, EXIT_TRUNCATED } from "./common.ts";

export const VERSION = "0.1.0";

const EVENT_KIND_NAMES = Object.keys(EventKind).filter((k) => k !== "UNKNOWN");

if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== "") kleur.enabled = false;
if (!process.stderr.isTTY) kleur.enabled = false;

function fail(msg: string, code = 2): never {
  process.stderr.write(`${kleur.red("rrx: error:")} ${msg}\n`);
  process.exit(code);
}

const readImage = readInput;

function startsWith(b: Uint8Array, magic: Uint8Array): boolean {
  if (b.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (b[i] !== magic[i]) return false;
  return true;
}

function parseSize(v: unknown, dflt: number): number {
  return v === undefined ? dflt * 1024 * 1024 : parseMemSize(v);
}

function parseRtc(v: unknown): number {
  return v === undefined ? hostEpochSeconds() : parseDate(v, "--rtc");
}

/**
 * The smallest --hash-interval (2^16). A state hash of a 32 MiB guest takes about 1.4 ms, the
 * time of some 700,000 instructions: at this interval recording and verifying run about ten
 * times slower than at the default 2^24 (at 1, a million times slower).
 */
export const MIN_HASH_INTERVAL = 1 << 16;

function parseCount(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === "string" && v.trim() === "" ? NaN : Number(v);
  // Instruction counts are below 2^53, as the log holds them.
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${flag}: expected a non-negative integer below 2^53, got '${v}'`);
  return n;
}

type OutSpec = { kind: "stdio" } | { kind: "file"; path: string } | { kind: "none" };
function parseOut(v: unknown, flag: string, dflt: OutSpec): OutSpec {
  if (v === undefined) return dflt;
  const s = String(v);
  if (s === "stdio") return { kind: "stdio" };
  if (s === "none") return { kind: "none" };
  if (s.startsWith("file:") && s.length > 5) return { kind: "file", path: s.slice(5) };
  throw new UsageError(`${flag}: expected stdio, none or file:PATH, got '${s}'`);
}

/** Errors that mean the reader of our stdout is gone (a pipe's reader exited, a closed terminal). */
const OUTPUT_GONE = new Set(["EPIPE", "EIO", "ECONNRESET"]);

/**
 * A writer for guest output. On stdout, `onGone` is called once when the reader goes away
 * (`rrx run ... | head`, a closed terminal); output is dropped from then on.
 */
function makeWriter(spec: OutSpec, onGone?: () => void): (b: Uint8Array) => void {
  if (spec.kind === "none") return () => {};
  if (spec.kind === "stdio") {
    let gone = false;
    return (b) => {
      if (gone) return;
      try {
        writeSync(1, b);
      } catch (e) {
        if (!OUTPUT_GONE.has((e as NodeJS.ErrnoException).code ?? "")) throw e;
        gone = true;
        onGone?.();
      }
    };
  }
  const fd = openSync(spec.path, "w");
  process.on("exit", () => closeSync(fd));
  return (b) => { writeSync(fd, b); };
}

/** The files guest output goes to (`file:PATH` back ends), with the option that names each. */
function outputFiles(opts: Record<string, unknown>): { path: string; flag: string }[] {
  const out: { path: string; flag: string }[] = [];
  for (const [k, flag] of [["serial", "--serial"], ["serial2", "--serial2"], ["debugcon", "--debugcon"]] as const) {
    const spec = parseOut(opts[k], flag, { kind: "none" });
    if (spec.kind === "file") out.push({ path: spec.path, flag });
  }
  return out;
}

function asArray(v: unknown): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v.map(String) : [String(v)];
}

function wireOutput(m: Machine, opts: Record<string, unknown>, onGone?: () => void, pane?: SerialPane): void {
  // With --display text on a terminal, stdio output goes to the serial pane under the screen.
  const to = (spec: OutSpec) => (pane && spec.kind === "stdio" ? (b: Uint8Array) => pane.write(b) : makeWriter(spec, onGone));
  const com1 = to(parseOut(opts.serial, "--serial", { kind: "stdio" }));
  const com2 = to(parseOut(opts.serial2, "--serial2", { kind: "none" }));
  const e9 = to(parseOut(opts.debugcon, "--debugcon", { kind: "stdio" }));
  m.onOutput = (ch, bytes) => {
    if (ch === "com1") com1(bytes);
    else if (ch === "com2") com2(bytes);
    else if (ch === "e9") e9(bytes);
  };
}

/**
 * Guest output kept apart from the VGA screen of `--display text` on a terminal (as QEMU's
 * curses display keeps the serial console on its own): its last lines are drawn under the
 * screen, and all of it is written to stdout when the display closes.
 */
class SerialPane {
  private chunks: Uint8Array[] = [];
  private size = 0;
  /** Output kept for stdout at the end (older output beyond this is dropped, and said so). */
  static readonly KEEP = 4 << 20;
  private dropped = 0;
  write(b: Uint8Array): void {
    this.chunks.push(b.slice());
    this.size += b.length;
    while (this.size > SerialPane.KEEP && this.chunks.length > 1) { const c = this.chunks.shift()!; this.size -= c.length; this.dropped += c.length; }
  }
  text(): string { return Buffer.concat(this.chunks).toString("latin1"); }
  /** The last `n` lines, each cut to `w` columns, control characters dropped. */
  lastLines(n: number, w: number): string[] {
    const tail = Buffer.concat(this.chunks.slice(-16)).toString("latin1").replace(/\r\n?/g, "\n");
    return tail.split("\n").slice(-n).map((l) => l.replace(/[\x00-\x1f\x7f]/g, "").slice(0, w));
  }
  /** Write everything kept to `fd`, once (later calls write nothing). */
  flushTo(fd: number): void {
    if (this.dropped) process.stderr.write(`rrx: (the first ${this.dropped} bytes of serial output are not shown)\n`);
    const all = Buffer.concat(this.chunks);
    this.chunks = []; this.size = 0; this.dropped = 0;
    try { writeSync(fd, all); } catch { /* the reader went away */ }
  }
}

const ALT_SCREEN_ON = "\x1b[?1049h\x1b[?25l\x1b[2J", ALT_SCREEN_OFF = "\x1b[?25h\x1b[?1049l";
const PANE_LINES = 6;

function makeDisplay(opts: Record<string, unknown>, pane?: SerialPane): { onSlice: (m: Machine) => void; close: () => void } | undefined {
  const mode = opts.display ?? "none";
  if (mode === "none") return undefined;
  if (mode !== "text") throw new UsageError(`--display: expected none or text, got '${mode}'`);
  // (The first slice always draws: performance.now() counts from the process's start, which
  // may be less than the 40 ms between frames, and a short guest may end within that slice.)
  let last = -Infinity;
  const colour = kleur.enabled;
  // On a terminal: the alternate screen (the shell's screen comes back at the end), restored
  // however rrx exits.
  const alt = Boolean(process.stderr.isTTY);
  let open = false;
  const close = () => { if (open) { open = false; process.stderr.write(ALT_SCREEN_OFF); } };
  if (alt) { process.stderr.write(ALT_SCREEN_ON); open = true; process.on("exit", close); }
  return {
    onSlice: (m) => {
      const now = performance.now();
      if (now - last < 40) return;
      last = now;
      let frame = "\x1b[H" + (m.display?.renderAnsi(colour) ?? "");
      if (pane) {
        frame += "\r\n\x1b[K" + kleur.dim("-- serial " + "-".repeat(70));
        for (const l of pane.lastLines(PANE_LINES, 80)) frame += "\r\n\x1b[K" + l;
      }
      process.stderr.write(frame);
    },
    close,
  };
}

/** The run arguments that affect the guest (recording-only and host-only options dropped). */
function guestArgs(argv: string[]): string[] {
  const drop = new Set(["--record", "--hash-interval", "--serial", "--serial2", "--debugcon", "--display", "--input"]);
  const flags = new Set(["--pack", "--verbose", "--screen", "--realtime", "--no-realtime", "--force"]);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const key = a.includes("=") ? a.slice(0, a.indexOf("=")) : a;
    if (drop.has(key)) { if (!a.includes("=")) i++; continue; }
    if (flags.has(key)) continue;
    out.push(a);
  }
  return out;
}

function endMessage(end: EndReason): { code: number; text: string } {
  switch (end.kind) {
    case "exit": return { code: end.status, text: `guest exited with status ${end.status}` };
    case "halted": return { code: 0, text: "guest halted with interrupts disabled" };
    case "idle": return { code: 0, text: "guest idle with no pending input" };
    case "limit": return { code: 0, text: "instruction limit reached" };
    case "shutdown": return { code: 0, text: "guest shut down (triple fault or reset)" };
    case "stuck": return { code: 0, text: "guest hung: exceptions are delivered over and over and no instruction retires" };
    case "quit": {
      const sig = SIGNAL_STATUS[end.reason];
      if (end.reason === "SIGPIPE") return { code: sig!, text: "stopped: the reader of stdout went away" };
      return sig !== undefined ? { code: sig, text: `stopped by ${end.reason}` } : { code: 0, text: "quit" };
    }
  }
}

/** Exit statuses for a run stopped by a signal (128 + the signal number, as shells report). */
const SIGNAL_STATUS: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGPIPE: 141, SIGTERM: 143 };
/** The signals a run catches (SIGPIPE is not a signal here: it is a write error on stdout). */
const CAUGHT_SIGNALS = ["SIGHUP", "SIGINT", "SIGTERM"];

/** The Ctrl-A escapes of a terminal session (QEMU's mux keys). */
export const ESCAPE_HELP = [
  "C-a h    print this help",
  "C-a x    quit (a recording is saved)",
  "C-a C-a  send C-a to the guest",
].join("\r\n");

/**
 * Feed stdin to the guest. A terminal is put in raw mode: keys go to COM1 (or to the PS/2
 * keyboard with --display text), Ctrl-A starts an escape. A pipe or a file is read as it comes
 * and its bytes go to COM1; its end is not the end of the run (the guest goes on until it
 * ends, or until it waits for input that can no longer come).
 */
function attachStdin(host: HostQueue, rawTty: boolean, keysToKeyboard: boolean): void {
  const toGuest = (b: number) => {
    if (keysToKeyboard) {
      const codes = textToSet2(b === 0x7f ? 0x08 : b);
      if (codes) host.push({ kind: "key", bytes: codes });
    } else host.push({ kind: "serial", port: 0, byte: b });
  };
  let ctrlA = false;
  const onData = rawTty
    ? (buf: Buffer) => {
      for (const b of buf) {
        if (ctrlA) {
          ctrlA = false;
          if (b === 0x78) { host.requestQuit(); continue; }
          if (b === 0x68) { process.stderr.write(`\r\n${ESCAPE_HELP}\r\n`); continue; }
          if (b !== 1) continue;
        } else if (b === 1) { ctrlA = true; continue; }
        toGuest(b);
      }
    }
    : (buf: Buffer) => { for (const b of buf) toGuest(b); };
  if (rawTty) process.stdin.setRawMode(true);
  process.stdin.on("data", onData);
  process.stdin.on("end", () => host.close());
  process.stdin.on("error", () => host.close());
  process.stdin.resume();
}

/**
 * SIGINT, SIGTERM and SIGHUP stop the run at the next look at the host (well under a second),
 * and the recording is finished as usual. A second signal while that is under way exits at once,
 * with the log persisted up to there.
 */
function catchSignals(host: HostQueue, recorder: () => Recorder | undefined): void {
  let caught = 0;
  for (const sig of CAUGHT_SIGNALS) {
    process.on(sig as NodeJS.Signals, () => {
      if (caught++ === 0) { host.requestQuit(sig); return; }
      recorder()?.flush();
      process.exit(SIGNAL_STATUS[sig]);
    });
  }
}

async function cmdRun(kernelPath: string | undefined, opts: Record<string, unknown>): Promise<number> {
  if (opts.display !== undefined && opts.display !== "none" && opts.display !== "text") throw new UsageError(`--display: expected none or text, got '${String(opts.display)}'`);
  let kernel = null;
  if (kernelPath !== undefined) {
    const data = readImage(kernelPath, "kernel");
    if (startsWith(data, MAGIC)) throw new UsageError(`${kernelPath} is an rrx recording; use \`rrx replay ${kernelPath}\``);
    kernel = { name: kernelPath, data };
  }
  const bios = opts.bios !== undefined ? { name: String(opts.bios), data: readImage(String(opts.bios), "ROM") } : null;
  if (!kernel && !bios) throw new UsageError("give a kernel ELF (rrx run kernel.elf) or a ROM (--bios rom.bin)");
  const modules = asArray(opts.module).map((spec) => {
    const [file, ...rest] = spec.split(",");
    return { name: file!, data: readImage(file!, "module"), cmdline: rest.length ? rest.join(",") : file! };
  });
  const append = opts.append !== undefined ? String(opts.append) : "";
  // A Linux bzImage takes --initrd, and its command line is --append alone.
  const linux = kernel !== null && isBzImage(kernel.data);
  const initrd = opts.initrd !== undefined ? { name: String(opts.initrd), data: readImage(String(opts.initrd), "initrd") } : null;
  const ips = opts.ips !== undefined ? Number(opts.ips) : 1e9;
  if (!Number.isFinite(ips) || ips < 1e3 || ips > 1e12) throw new UsageError(`--ips: expected a rate between 1e3 and 1e12`);
  const cfg: MachineConfig = {
    kernel, bios, modules, initrd,
    cmdline: linux ? append : kernel ? (append ? `${kernel.name} ${append}` : kernel.name) : "",
    memBytes: parseSize(opts.m, 32), ips, bootDate: parseRtc(opts.rtc),
  };
  if (opts.boardVersion !== undefined) {
    const v = String(opts.boardVersion);
    if (!/^[1-9][0-9]{0,5}$/.test(v)) throw new UsageError(`--board-version: expected a version number, got ${JSON.stringify(v)}`);
    cfg.boardVersion = Number(v);
  }
  const m = buildMachine(cfg);
  const script = opts.input !== undefined ? parseScript(new TextDecoder().decode(readInput(String(opts.input), "input script")), String(opts.input)) : [];
  const maxInsns = parseCount(opts.maxInsns, "--max-insns");
  const inputs = [
    ...(kernelPath !== undefined ? [{ path: kernelPath, role: "kernel" }] : []),
    ...(opts.bios !== undefined ? [{ path: String(opts.bios), role: "ROM" }] : []),
    ...modules.map((x) => ({ path: x.name, role: "module" })),
    ...(opts.input !== undefined ? [{ path: String(opts.input), role: "input script" }] : []),
  ];
  if (opts.record === undefined) {
    for (const [k, flag] of [["pack", "--pack"], ["hashInterval", "--hash-interval"], ["force", "--force"]] as const) {
      if (opts[k] !== undefined) throw new UsageError(`${flag} applies to a recording: give --record FILE`);
    }
  } else {
    checkRecordTarget(String(opts.record), inputs, Boolean(opts.force));
  }
  checkOutputFiles(outputFiles(opts), [...inputs, ...(opts.record !== undefined ? [{ path: String(opts.record), role: "recording (--record)" }] : [])]);
  const hashInterval = opts.hashInterval !== undefined ? parseCount(opts.hashInterval, "--hash-interval")! : DEFAULT_HASH_INTERVAL;
  if (hashInterval < MIN_HASH_INTERVAL) throw new UsageError(`--hash-interval: at least ${MIN_HASH_INTERVAL} instructions (a state hash costs about as much as 700,000 instructions), got ${hashInterval}`);
  const realtime = opts.realtime !== undefined ? Boolean(opts.realtime) : Boolean(process.stdin.isTTY && process.stdout.isTTY);

  // Host input: a terminal (raw mode, Ctrl-A escapes) or a pipe/file on stdin (its bytes go to
  // COM1 as they come, as with QEMU's -serial stdio), and the signals that stop the run.
  const host = new HostQueue();
  const keysToKeyboard = opts.display === "text";
  const stdinFeeds = opts.serial !== "none" || keysToKeyboard;
  const rawTty = Boolean(process.stdin.isTTY) && stdinFeeds;
  if (stdinFeeds) attachStdin(host, rawTty, keysToKeyboard);
  else host.close();
  catchSignals(host, () => recorder);
  // When the reader of stdout goes away, stop as a process killed by SIGPIPE would, but with
  // the recording finished.
  const pane = opts.display === "text" && process.stdout.isTTY && process.stderr.isTTY ? new SerialPane() : undefined;
  wireOutput(m, opts, () => host.requestQuit("SIGPIPE"), pane);
  const display = makeDisplay(opts, pane);
  // However rrx ends, the serial output kept apart reaches stdout after the screen is restored.
  if (pane) process.on("exit", () => { display?.close(); pane.flushTo(1); });

  let recorder: Recorder | undefined;
  if (opts.record !== undefined) {
    const path = String(opts.record);
    recordingTo = path;
    const compared = { ...comparedSection(cfg, guestArgs(process.argv.slice(3))), hashInterval };
    const images = imagesOf(cfg);
    const writer = new LogWriter(new FileSink(path), {
      compared,
      host: { rrxVersion: VERSION, hostname: hostname(), platform: platform(), startTime: Date.now(), cwd: process.cwd() },
    }, { pack: opts.pack ? images.map((x) => ({ role: x.info.role, name: x.info.name, data: x.data })) : undefined });
    recorder = new Recorder(m, writer, hashInterval);
  }

  let end: EndReason;
  try {
    end = await runLive(m, { maxInsns, script, host, realtime, observer: recorder, onSlice: display?.onSlice });
  } catch (e) {
    recorder?.flush();
    throw e;
  } finally {
    if (rawTty) { process.stdin.setRawMode(false); }
    process.stdin.pause();
  }
  m.flushOutput();
  const msg = endMessage(end);
  const bySignal = end.kind === "quit" && SIGNAL_STATUS[end.reason] !== undefined;
  recorder?.finish(bySignal ? `signal:${(end as { reason: string }).reason}` : end.kind, end.kind === "exit" ? end.status : 0);
  if (display) {
    display.close();
    if (pane) pane.flushTo(1);
    else process.stderr.write("\n");
  }
  if (bySignal) {
    const where = recorder ? `; recording saved to ${String(opts.record)}` : "";
    process.stderr.write(`rrx: ${msg.text} at icount ${m.cpu.icount}${where}\n`);
  } else if (opts.verbose || recorder) process.stderr.write(kleur.dim(`rrx: ${msg.text} after ${m.cpu.icount} instructions\n`));
  if (opts.screen) process.stdout.write((m.display?.screenText() ?? "") + "\n");
  return msg.code;
}

/** A progress bar on stderr for long replays (only on a terminal, at most 10 updates a second). */
function makeProgress(total: number, t0: number): { tick: (m: Machine) => void; done: () => void } | undefined {
  if (!process.stderr.isTTY || total < 200_000_000) return undefined;
  let last = 0, shown = false;
  return {
    tick: (m) => {
      const now = performance.now();
      if (now - last < 100) return;
      last = now;
      const f = Math.min(1, m.cpu.icount / total);
      const w = 30, fill = Math.round(f * w);
      const mips = m.cpu.icount / ((now - t0) * 1000);
      process.stderr.write(`\r[${"#".repeat(fill)}${"-".repeat(w - fill)}] ${(f * 100).toFixed(0)}% ${m.cpu.icount} insns ${mips.toFixed(0)} MIPS`);
      shown = true;
    },
    done: () => { if (shown) process.stderr.write("\r\x1b[K"); },
  };
}

function cmdReplay(path: string, opts: Record<string, unknown>): number {
  checkInput(path, "log");
  if (opts.display !== undefined && opts.display !== "text" && opts.display !== "none") throw new UsageError(`--display: expected none or text, got '${String(opts.display)}'`);
  const until = parseCount(opts.until, "--until");
  const head = readFileSync(path).subarray(0, 8);
  if (startsWith(head, ELF_MAGIC)) throw new UsageError(`${path} is an ELF kernel; use \`rrx run ${path}\``);
  const opened = openLog(path, { force: Boolean(opts.force) });
  const trunc = opened.log.truncated;
  if (trunc) process.stderr.write(kleur.yellow(`rrx: log ends at icount ${trunc.atIcount} (truncated)\n`));
  checkOutputFiles(outputFiles(opts), [{ path, role: "log" }]);
  // Past its end a log holds no input: running on would not be a replay of the recording.
  if (until !== undefined && until > finalIcountOf(opened)) {
    throw new UsageError(`--until: the recording ends at instruction ${finalIcountOf(opened)}${trunc ? " (truncated)" : ""}, got ${until}`);
  }
  const out = makeWriter(parseOut(opts.serial, "--serial", { kind: "stdio" }));
  const t0 = performance.now();
  const progress = makeProgress(finalIcountOf(opened), t0);
  if (opts.verify) {
    const r = verifyLog(opened, (ch, b) => { if (ch === "com1" || ch === "e9") out(b); }, progress?.tick, until);
    progress?.done();
    r.machine?.flushOutput();
    const dt = (performance.now() - t0) / 1000;
    if (r.ok) {
      const upTo = until !== undefined && until < finalIcountOf(opened) ? ` up to --until ${until}` : "";
      process.stderr.write(kleur.green(`rrx: verified${upTo}: ${r.hashesChecked} hash records, ${r.icount} instructions replayed in ${dt.toFixed(2)} s (${(r.icount / dt / 1e6).toFixed(1)} MIPS)\n`));
      if (trunc && !upTo) {
        process.stderr.write(kleur.yellow(`rrx: the log is truncated: verified up to icount ${r.icount} only, the end of the run is missing (exit ${EXIT_TRUNCATED})\n`));
        return EXIT_TRUNCATED;
      }
      return 0;
    }
    const mm = r.mismatch!;
    process.stderr.write(kleur.red(`rrx: divergence between icount ${mm.windowStart} and ${mm.windowEnd}: ${mm.components.join(", ")}\n`));
    process.stderr.write(mm.text + "\n");
    if (mm.firstInsn !== undefined) process.stderr.write(`rrx: first differing instruction: icount ${mm.firstInsn} (block cache vs single-step)\n`);
    else process.stderr.write(`rrx: block-cache and single-step replays agree inside the window; the log or the images do not match this build\n`);
    return 3;
  }
  const m = buildMachine(opened.cfg);
  m.onOutput = (ch, b) => { if (ch === "com1" || ch === "e9") out(b); };
  const end = replayToEnd(m, opened, until, progress?.tick);
  progress?.done();
  m.flushOutput();
  if (opts.display === "text" || opts.screen) process.stdout.write((m.display?.screenText() ?? "") + "\n");
  const dt = (performance.now() - t0) / 1000;
  if (opts.verbose) process.stderr.write(kleur.dim(`rrx: replayed ${m.cpu.icount} instructions in ${dt.toFixed(2)} s (${end.kind}); screen ${screenHash(m)}\n`));
  if (end.kind === "diverged") { process.stderr.write(kleur.red(`rrx: ${end.detail}\n`)); return 3; }
  return end.kind === "exit" ? end.status : 0;
}

function cmdLog(action: string, path: string, opts: Record<string, unknown>): number {
  if (action !== "info" && action !== "events") throw new UsageError(`log: unknown action '${action}' (info or events)`);
  const kinds = opts.kind !== undefined ? asArray(opts.kind).map((k) => {
    try {
      return resolveKind(k);
    } catch {
      throw new UsageError(`--kind: unknown event kind '${k}' (${EVENT_KIND_NAMES.join(", ")}, or a code like 0x41)`);
    }
  }) : undefined;
  const log = readLog(readInput(path, "log"));
  if (action === "info") {
    process.stdout.write(formatLogInfo(logInfo(log)) + "\n");
    return 0;
  }
  if (action === "events") {
    for (const e of filterEvents(log, { kinds })) {
      process.stdout.write((opts.json ? JSON.stringify(eventToJson(e)) : formatEvent(e)) + "\n");
    }
    return 0;
  }
  throw new UsageError(`log: unknown action '${action}' (info or events)`);
}

/** The options that take a value, by flag as written (`-m`, `--max-insns`), with their cac name. */
function valuedOptions(cli: ReturnType<typeof cac>): Map<string, string> {
  const valued = new Map<string, string>();
  for (const c of [cli.globalCommand, ...cli.commands]) {
    for (const o of c.options) {
      if (!o.required) continue;
      for (const f of o.rawName.split(/[\s,]+/)) if (f.startsWith("-")) valued.set(f, o.name);
    }
  }
  return valued;
}

/**
 * `-m -5`, `--max-insns -1`: a negative number after an option that takes a value is that
 * value (cac would take it for an option of its own); it is passed as `--opt=-5`, so the
 * option's own check reports it.
 */
function negativeValues(valued: Map<string, string>, argv: string[]): string[] {
  const out = argv.slice(0, 2);
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") { out.push(...argv.slice(i)); break; }
    if (valued.has(a) && i + 1 < argv.length && /^-\.?\d/.test(argv[i + 1]!)) { out.push(`${a}=${argv[++i]}`); continue; }
    out.push(a);
  }
  return out;
}

/**
 * Option values as typed. cac turns anything that looks like a number into one
 * (`--kind 0x48` became 72, `--append 0x10` the command line "16"); every value is text here,
 * and each option checks its own.
 */
function rawOptionValues(valued: Map<string, string>, argv: string[], options: Record<string, unknown>): void {
  const raw = new Map<string, string[]>();
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") break;
    const eq = a.indexOf("=");
    const flag = eq > 0 && a.startsWith("-") ? a.slice(0, eq) : a;
    const name = valued.get(flag);
    if (name === undefined) continue;
    let v: string;
    if (eq > 0 && a.startsWith("-")) v = a.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith("-")) v = argv[++i]!;
    else continue;
    raw.set(name, [...(raw.get(name) ?? []), v]);
  }
  for (const [name, vs] of raw) if (name in options) options[name] = vs.length === 1 ? vs[0] : vs;
}

export function main(argv: string[]): void {
  // A reader that went away must not crash us on a later message (writes to it are dropped).
  for (const s of [process.stdout, process.stderr]) s.on("error", () => {});
  const rest = argv.slice(2);
  if (rest.length === 1 && (rest[0] === "-v" || rest[0] === "--version")) {
    process.stdout.write(`rrx ${VERSION} (bun ${Bun.version}, ${platform()}-${process.arch})\n`);
    process.exit(0);
  }
  const cli = cac("rrx");
  cli.command("run [kernel]", "Boot a Multiboot kernel, a Linux bzImage (or a ROM) and run it live")
    .option("-m <MiB>", "Guest RAM in MiB (default 32)")
    .option("--serial <spec>", "COM1 back end: stdio, file:PATH or none (default stdio)")
    .option("--serial2 <spec>", "COM2 back end: stdio, file:PATH or none (default none)")
    .option("--debugcon <spec>", "Port 0xE9 console: stdio, file:PATH or none (default stdio)")
    .option("--input <script>", "Scripted input: serial bytes, keys and mouse moves at virtual times")
    .option("--display <mode>", "none or text (draw the VGA text screen in the terminal)")
    .option("--append <cmdline>", "Kernel command line (Multiboot: after the kernel name; Linux: all of it)")
    .option("--module <file[,cmdline]>", "Multiboot module (repeatable)")
    .option("--initrd <file>", "Initial ramdisk for a Linux kernel (bzImage)")
    .option("--max-insns <n>", "Stop after exactly n instructions")
    .option("--bios <rom>", "Map a ROM at 0xF0000 (and below 4 GiB) and start at F000:FFF0")
    .option("--record <file>", "Record every non-deterministic input to a log")
    .option("--pack", "With --record: store the images in the log")
    .option("--hash-interval <n>", `With --record: instructions between state-hash records (default 2^24, at least ${MIN_HASH_INTERVAL})`)
    .option("--ips <rate>", "Instructions per virtual second (default 1e9: 1 instruction = 1 ns)")
    .option("--rtc <date>", "RTC start date, e.g. 2026-01-01T00:00:00Z (default: the host clock)")
    .option("--board-version <n>", "Board version (default: the newest; `rrx info` on a log shows its). PC 2: serial characters go out as written, as on QEMU; PC 1: in their character time at the line rate")
    .option("--realtime", "Pace virtual time to the host clock (default when stdin and stdout are a terminal); --no-realtime: never")
    .option("--force", "With --record: overwrite an existing recording")
    .option("--screen", "Print the final text screen")
    .option("--verbose", "Say why the run ended")
    .action(async (kernel: string | undefined, opts: Record<string, unknown>) => {
      process.exitCode = await cmdRun(kernel, opts);
      process.exit(process.exitCode);
    });
  cli.command("replay <log>", "Replay a recording without host input")
    .option("--verify", "Check every state hash; exit 3 naming the first divergence")
    .option("--until <icount>", "Stop at this instruction count (at most the recording's end)")
    .option("--serial <spec>", "Where replayed COM1 output goes: stdio, file:PATH or none")
    .option("--display <mode>", "text: print the screen at the end")
    .option("--screen", "Print the final text screen")
    .option("--force", "Replay even if an image differs from the recorded one")
    .option("--verbose", "Print instructions replayed and speed")
    .action((log: string, opts: Record<string, unknown>) => { process.exit(cmdReplay(log, opts)); });
  cli.command("log <action> <file>", "Inspect a recording: `log info FILE`, `log events FILE [--kind K] [--json]`")
    .usage("log info FILE | log events FILE [--kind KIND]... [--json]\n\n"
      + "Actions:\n  info    header, images, chunks, trailer and event counts\n  events  one line per event (icount, kind, payload)\n\n"
      + `Kinds (for --kind): ${EVENT_KIND_NAMES.join(", ")}, or a numeric code like 0x41`)
    .option("--kind <kind>", "Only events of this kind (repeatable; see the list above)")
    .option("--json", "One JSON object per line")
    .action((action: string, file: string, opts: Record<string, unknown>) => { process.exit(cmdLog(action, file, opts)); });
  registerGdb(cli);
  cli.help();
  cli.version(VERSION);
  try {
    const valued = valuedOptions(cli);
    const args = negativeValues(valued, argv);
    cli.parse(args, { run: false });
    rawOptionValues(valued, args, cli.options as Record<string, unknown>);
    if (!cli.matchedCommand && !cli.options.help && !cli.options.version) {
      if (cli.args.length) throw new UsageError(`unknown command '${cli.args[0]}' (see rrx --help)`);
      cli.outputHelp();
      process.exit(0);
    }
    const p = cli.runMatchedCommand();
    if (p && typeof (p as Promise<unknown>).catch === "function") (p as Promise<unknown>).catch(handleError);
  } catch (e) {
    handleError(e);
  }
}

/** The log `rrx run --record` writes, for the message when writing it fails. */
let recordingTo: string | undefined;
/** Errors writing a file that mean the disk (or a quota or file-size limit) is full. */
const DISK_FULL: Record<string, string> = {
  ENOSPC: "the disk is full",
  EDQUOT: "the disk quota is used up",
  EFBIG: "the file-size limit is reached",
};

function handleError(e: unknown): never {
  if (isUserError(e)) fail((e as Error).message);
  const code = e instanceof Error ? (e as NodeJS.ErrnoException).code : undefined;
  if (recordingTo !== undefined && code !== undefined && (DISK_FULL[code] !== undefined || code === "EIO")) {
    fail(`writing the recording ${recordingTo} failed (${code}${DISK_FULL[code] !== undefined ? `: ${DISK_FULL[code]}` : ""}); `
      + `the log is usable up to its last flush: \`rrx replay ${recordingTo}\` replays it as a truncated log`);
  }
  if (code && (e as NodeJS.ErrnoException).path) fail((e as Error).message);
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`${kleur.red("rrx: internal error:")} ${msg}\n`);
  if (process.env.RRX_DEBUG) console.error(e);
  process.exit(70);
}

if (import.meta.main) main(process.argv);
