/**
 * `rrx gdb`: debug a recording (forwards and backwards) with the system gdb.
 *
 *   rrx gdb rec.rrx [--port N] [--no-launch] [--live-at N] [--input SCRIPT] [--record NEW.rrx]
 *                   [--checkpoint-mem MiB] [-- GDB ARGS...]
 *   rrx gdb --live kernel.elf [--append ARGS] [-m MiB] [--input SCRIPT] [--record NEW.rrx] [-- GDB ARGS...]
 *
 * Going live (`--live-at N` or `monitor live`) with `--record NEW.rrx` records the live part to a
 * new log that starts from a snapshot of the machine at that point; `--input SCRIPT` is the live
 * part's host input (times relative to going live), since gdb owns the terminal.
 *
 * For a Linux bzImage, gdb gets an ELF symbol file made from System.map (next to the kernel, or
 * --symbols FILE) instead of the kernel.
 *
 * The stub listens on 127.0.0.1; gdb is started with the kernel ELF from the recording for
 * symbols (written to a temporary file when it was packed into the log) and connected.
 */
import type { CAC } from "cac";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { hostname, platform } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { isBzImage } from "../lib/boot/linux.ts";
import { parseSystemMap, SymbolMapError, symbolElf } from "../lib/gdb/symbols.ts";
import { openLog } from "../lib/replay/replayer.ts";
import { engineFromLog, ReplayEngine } from "../lib/replay/engine.ts";
import { buildMachine, comparedSection, imagesOf, type MachineConfig } from "../lib/replay/session.ts";
import { LiveInput } from "../lib/replay/live.ts";
import { DEFAULT_HASH_INTERVAL, Recorder } from "../lib/replay/recorder.ts";
import { FileSink } from "../lib/replay/log/writer.ts";
import { parseScript, ScriptError, type ScriptEvent } from "../lib/machine/script.ts";
import type { Machine } from "../lib/machine/machine.ts";
import type { ComparedSection } from "../lib/replay/log/format.ts";
import { RrxTarget } from "../lib/gdb/rrx-target.ts";
import { DEFAULT_GDB_PORT, GdbServer } from "../lib/gdb/server.ts";
import { gdbArgs } from "../lib/gdb/launch.ts";
import { sha256Hex, MAGIC } from "../lib/replay/log/format.ts";
import { hostEpochSeconds } from "../lib/machine/host.ts";
import { UsageError, checkInput, checkRecordTarget, isUserError, parseMemSize, readInput } from "./common.ts";

export class GdbUsageError extends UsageError {}

/** Exit statuses for `rrx gdb` stopped by a signal (128 + the signal number, as `rrx run`). */
const SIGNAL_STATUS: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

function int(v: unknown, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const s = String(v);
  const n = Number(s);
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(n) || n < min || n > max) throw new GdbUsageError(`${flag}: expected an integer between ${min} and ${max}, got '${s}'`);
  return n;
}

export interface GdbCommandOptions {
  port?: unknown;
  launch?: unknown; // cac: --no-launch sets launch=false
  liveAt?: unknown;
  live?: unknown;
  checkpointMem?: unknown;
  gdb?: unknown;
  append?: unknown;
  m?: unknown;
  force?: unknown;
  record?: unknown;
  input?: unknown;
  symbols?: unknown;
  "--"?: string[];
}

/**
 * Symbols for a Linux bzImage (which has none): `--symbols FILE` (a System.map, or an ELF such as
 * a vmlinux, used as it is), else a System.map next to the kernel. A System.map is turned into
 * an ELF symbol file in a temporary directory.
 */
function linuxSymbolsForGdb(kernelName: string, symbols: string | undefined, log: (s: string) => void): { path?: string; cleanup: () => void } {
  const none = { cleanup: () => {} };
  const path = symbols ?? join(dirname(kernelName), "System.map");
  if (!existsSync(path)) {
    if (symbols !== undefined) throw new GdbUsageError(`--symbols: ${symbols}: no such file`);
    log(`rrx: no symbols for the Linux kernel ${kernelName} (no System.map next to it; give --symbols FILE)`);
    return none;
  }
  const data = new Uint8Array(readFileSync(path));
  if (data.length >= 4 && data[0] === 0x7f && data[1] === 0x45 && data[2] === 0x4c && data[3] === 0x46) return { path, cleanup: () => {} };
  let elf: Uint8Array;
  try {
    elf = symbolElf(parseSystemMap(new TextDecoder().decode(data), path));
  } catch (e) {
    if (e instanceof SymbolMapError) throw new GdbUsageError(e.message);
    throw e;
  }
  const dir = mkdtempSync(join(tmpdir(), "rrx-gdb-"));
  const out = join(dir, `${basename(kernelName) || "kernel"}.syms.elf`);
  writeFileSync(out, elf);
  return { path: out, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Write the kernel ELF where gdb can read it: the original file if it is unchanged, else a temp copy. */
function kernelForGdb(cfg: MachineConfig, symbols: string | undefined, log: (s: string) => void): { path?: string; cleanup: () => void } {
  const k = cfg.kernel;
  if (!k) return { cleanup: () => {} };
  if (isBzImage(k.data)) return linuxSymbolsForGdb(k.name, symbols, log);
  if (symbols !== undefined) {
    if (!existsSync(symbols)) throw new GdbUsageError(`--symbols: ${symbols}: no such file`);
    return { path: symbols, cleanup: () => {} };
  }
  if (existsSync(k.name)) {
    const d = new Uint8Array(readFileSync(k.name));
    if (sha256Hex(d) === sha256Hex(k.data)) return { path: k.name, cleanup: () => {} };
  }
  const dir = mkdtempSync(join(tmpdir(), "rrx-gdb-"));
  const path = join(dir, basename(k.name) || "kernel.elf");
  writeFileSync(path, k.data);
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function cmdGdb(file: string | undefined, opts: GdbCommandOptions): Promise<number> {
  const port = int(opts.port, "--port", 0, 65535) ?? DEFAULT_GDB_PORT;
  const noLaunch = opts.launch === false;
  const liveAt = int(opts.liveAt, "--live-at", 0, Number.MAX_SAFE_INTEGER);
  const memMiB = int(opts.checkpointMem, "--checkpoint-mem", 16, 1 << 20);
  const extra = (opts["--"] ?? []).map(String);
  if (file === undefined) throw new GdbUsageError("give a recording (rrx gdb rec.rrx) or --live kernel.elf");
  checkInput(file, opts.live ? "kernel" : "log");
  const head = readFileSync(file).subarray(0, MAGIC.length);
  const isLog = head.length === MAGIC.length && head.every((b, i) => b === MAGIC[i]);

  const recordPath = opts.record !== undefined ? String(opts.record) : undefined;
  if (recordPath !== undefined && resolve(recordPath) === resolve(file)) throw new GdbUsageError(`--record: ${recordPath} is the file being debugged; record to a new file`);
  if (recordPath !== undefined) {
    checkRecordTarget(recordPath, [
      { path: file, role: opts.live ? "kernel" : "recording" },
      ...(opts.input !== undefined ? [{ path: String(opts.input), role: "input script" }] : []),
    ], Boolean(opts.force));
  }
  let script: ScriptEvent[] | undefined;
  if (opts.input !== undefined) {
    const path = String(opts.input);
    try {
      script = parseScript(new TextDecoder().decode(readInput(path, "input script")), path);
    } catch (e) {
      if (e instanceof ScriptError) throw new GdbUsageError(e.message);
      throw e;
    }
  }

  let engine: ReplayEngine;
  let cfg: MachineConfig;
  /** The compared section a recording of the live part starts from (the machine's configuration). */
  let baseCompared: ComparedSection;
  // Default checkpoint budget: twice the guest's RAM (the goal for peak checkpoint memory).
  const ckOpts = (guestBytes: number) => ({ memBudget: memMiB !== undefined ? memMiB * 1024 * 1024 : Math.max(64 << 20, 2 * guestBytes) });
  const log = (s: string) => process.stderr.write(s + "\n");
  // Scripted input and the recording of the live part, made when the machine goes live.
  let live: LiveInput | null = null;
  const makeLiveInput = (m: Machine): LiveInput | null => {
    // Live, the guest's console goes to stderr (as with --live).
    m.onOutput = (ch, b) => { if (ch === "com1" || ch === "e9") process.stderr.write(b); };
    if (!script && recordPath === undefined) return null;
    let recorder: Recorder | undefined;
    if (recordPath !== undefined) {
      const { snapshot: _old, ...compared } = baseCompared;
      const hi = typeof compared.hashInterval === "number" && compared.hashInterval > 0 ? compared.hashInterval : DEFAULT_HASH_INTERVAL;
      const host = {
        hostname: hostname(), platform: platform(), startTime: Date.now(), cwd: process.cwd(),
        liveFrom: { log: opts.live ? null : file, kernel: opts.live ? file : null, icount: m.cpu.icount },
      };
      recorder = Recorder.startFrom(m, new FileSink(recordPath), { compared: { ...compared, hashInterval: hi }, host }, {
        hashInterval: hi, pack: imagesOf(cfg).map((x) => ({ role: x.info.role, name: x.info.name, data: x.data })),
      });
    }
    live = new LiveInput(m, { script, recorder, recordPath });
    return live;
  };
  if (opts.live) {
    if (isLog) throw new GdbUsageError(`${file} is a recording; drop --live to replay it`);
    const append = opts.append !== undefined ? String(opts.append) : "";
    const memBytes = opts.m !== undefined ? parseMemSize(opts.m) : 32 << 20;
    cfg = {
      kernel: { name: file, data: new Uint8Array(readFileSync(file)) }, bios: null, modules: [],
      cmdline: append ? `${file} ${append}` : file, memBytes, ips: 1e9, bootDate: hostEpochSeconds(),
    };
    const m = buildMachine(cfg);
    m.onOutput = (ch, b) => { if (ch === "com1" || ch === "e9") process.stderr.write(b); };
    engine = new ReplayEngine(m, [], 0, ckOpts(cfg.memBytes));
    baseCompared = comparedSection(cfg, opts.append !== undefined ? ["--append", String(opts.append)] : []);
    engine.goLive(makeLiveInput);
  } else {
    if (!isLog) throw new GdbUsageError(`${file} is not an rrx recording (for a kernel: rrx gdb --live ${file})`);
    if (opts.append !== undefined || opts.m !== undefined) throw new GdbUsageError("--append and -m apply to --live only (a recording has its own)");
    const opened = openLog(file, { force: Boolean(opts.force) });
    const trunc = opened.log.truncated;
    if (trunc) log(`rrx: warning: ${file} ends at icount ${trunc.atIcount} (truncated); debugging up to there`);
    cfg = opened.cfg;
    baseCompared = opened.log.header.compared;
    engine = engineFromLog(opened, ckOpts(cfg.memBytes));
    if (liveAt !== undefined) {
      if (liveAt > engine.end) throw new GdbUsageError(`--live-at: the recording ends at instruction ${engine.end}`);
      if (liveAt < engine.begin) throw new GdbUsageError(`--live-at: the recording starts at instruction ${engine.begin} (from a snapshot)`);
      await engine.seek(liveAt);
      engine.goLive(makeLiveInput);
      if (live) log(`rrx: live at instruction ${engine.icount}${recordPath !== undefined ? `, recording to ${recordPath}` : ""}`);
    }
  }

  const target = new RrxTarget(engine, { log, liveInput: makeLiveInput });
  const endRecording = (why: string) => {
    target.finishLive(why);
    if (recordPath !== undefined && !live) log(`rrx: --record: the machine never went live (monitor live), nothing recorded`);
  };
  const onSignal = (sig: string) => { endRecording(`signal:${sig}`); process.exit(SIGNAL_STATUS[sig] ?? 130); };
  const onTerm = () => onSignal("SIGTERM"), onHup = () => onSignal("SIGHUP");
  process.on("SIGTERM", onTerm);
  process.on("SIGHUP", onHup);
  const server = new GdbServer(target, { port, log });
  let started: { host: string; port: number };
  try {
    started = await server.start();
  } catch (e) {
    throw new GdbUsageError(`--port ${port}: cannot listen (${e instanceof Error ? e.message : String(e)})`);
  }
  const where = `${started.host}:${started.port}`;
  const elf = kernelForGdb(cfg, opts.symbols !== undefined ? String(opts.symbols) : undefined, log);
  try {
    if (noLaunch) {
      log(`rrx: gdb stub listening on ${where}; in gdb: ${elf.path ? `file ${elf.path}, then ` : ""}target remote ${where}`);
      // Ctrl-C quits (a live recording is finished first).
      const onInt = () => onSignal("SIGINT");
      process.on("SIGINT", onInt);
      try {
        // A dropped connection keeps the machine, its position and its checkpoints: gdb can
        // connect again (as with QEMU's gdbstub). Detach and kill end the session.
        for (;;) {
          const why = await server.nextSessionEnd();
          if (why !== "disconnect") {
            log(`rrx: gdb session ended (${why}) at instruction ${engine.icount}`);
            return 0;
          }
          log(`rrx: gdb connection dropped at instruction ${engine.icount}; still listening: target remote ${where} to go on, Ctrl-C to quit`);
        }
      } finally {
        process.off("SIGINT", onInt);
      }
    }
    const argv = [...gdbArgs({ gdb: opts.gdb !== undefined ? String(opts.gdb) : undefined, elf: elf.path, host: started.host, port: started.port }), ...extra];
    if (!Bun.which(argv[0]!)) throw new GdbUsageError(`${argv[0]}: gdb not found (apt-get install gdb), or use --no-launch`);
    const ignore = () => {};
    process.on("SIGINT", ignore); // ^C belongs to gdb, which turns it into an RSP interrupt
    try {
      const proc = Bun.spawn(argv, { stdin: "inherit", stdout: "inherit", stderr: "inherit" });
      return await proc.exited; // gdb's own status
    } finally {
      process.off("SIGINT", ignore);
    }
  } finally {
    await server.stop();
    elf.cleanup();
    endRecording("detach");
    process.off("SIGTERM", onTerm);
    process.off("SIGHUP", onHup);
  }
}

/** Register `rrx gdb` on the CLI. */
export function registerGdb(cli: CAC): void {
  const cmd = cli.command("gdb [file]", "Debug a recording with gdb, forwards and backwards (--live kernel.elf: a live machine)")
    .option("--port <n>", `TCP port for the gdb stub on 127.0.0.1 (default ${DEFAULT_GDB_PORT}; 0 = any free port)`)
    .option("--no-launch", "Only listen and print the `target remote` line to use (default: start gdb)")
    .option("--live-at <icount>", "Replay up to this instruction, then continue live (no reverse)")
    .option("--record <file>", "When the machine goes live (--live-at, monitor live): record the live part to a new log that starts from a snapshot of that point")
    .option("--input <script>", "Scripted host input for the live part (times relative to going live; gdb owns the terminal)")
    .option("--live", "FILE is a kernel ELF: debug a live machine (no reverse; --record records it)")
    .option("--append <cmdline>", "With --live: kernel command line after the kernel name")
    .option("-m <MiB>", "With --live: guest RAM in MiB (default 32)")
    .option("--checkpoint-mem <MiB>", "Memory budget for reverse-execution checkpoints (default: twice the guest RAM, at least 64)")
    .option("--gdb <path>", "gdb executable (default gdb)")
    .option("--symbols <file>", "Symbols for gdb: a System.map (for a Linux bzImage; default: System.map next to the kernel) or an ELF")
    .option("--force", "Replay even if an image differs from the recorded one; with --record, overwrite an existing recording")
    .example("rrx gdb rec.rrx -- -ex 'break kmain' -ex continue")
    .action(async (file: string | undefined, opts: GdbCommandOptions) => {
      let code: number;
      try {
        code = await cmdGdb(file, opts);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        // 2 for usage and input errors (as every rrx command), 70 for a bug in rrx
        code = isUserError(e) ? 2 : 70;
        process.stderr.write(`rrx: ${code === 2 ? "error" : "internal error"}: ${msg}\n`);
        if (process.env.RRX_DEBUG) console.error(e);
      }
      process.exit(code);
    });
  // cac shows "(default: true)" for a --no-X option; the default (launching gdb) is in its text.
  for (const o of cmd.options) if (o.negated) o.config.default = undefined;
}
