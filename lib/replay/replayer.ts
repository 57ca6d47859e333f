/**
 * Opening a log for replay and verifying it: every hash record and the trailer are checked;
 * the first mismatch names the icount window and the differing components, then the window
 * is replayed again from its last good state in both block-cache and single-step mode with
 * per-instruction comparison to find the first instruction where execution itself differs.
 */
import { readFileSync, existsSync } from "node:fs";
import { dirname, join, basename } from "node:path";
import type { Machine, InputEvent } from "../machine/machine.ts";
import { runReplay, type ReplayEnd, type ReplayEvent } from "../machine/driver.ts";
import { EventKind, LogError, sha256Hex, type ImageInfo, type LogEvent } from "./log/format.ts";
import { readLog, type ParsedLog } from "./log/reader.ts";
import { diffHashes, formatHashDiff, type HashRecord } from "./hash.ts";
import { buildMachine, configFromCompared, MachineHasher, type MachineConfig } from "./session.ts";
import { RollingSnapshot, Snapshot } from "./checkpoint.ts";
import { applyState } from "./start-state.ts";

export interface OpenedLog {
  log: ParsedLog;
  cfg: MachineConfig;
  events: ReplayEvent[];
  hashInterval: number;
}

export interface OpenOptions {
  /** Replay even if an image's hash differs from the header. */
  force?: boolean;
  /** Where to look for images that are not packed (default: the log's directory, then cwd). */
  searchDirs?: string[];
}

export function openLog(path: string, opts: OpenOptions = {}): OpenedLog {
  if (!existsSync(path)) throw new LogError(`${path}: no such file`);
  const bytes = new Uint8Array(readFileSync(path));
  const log = readLog(bytes);
  if (log.header.compared.snapshot !== undefined && log.version >= 2 && !log.snapshot) {
    throw new LogError(`${path}: the log ends before its snapshot chunk (${log.truncated?.reason ?? "no snapshot"}); nothing to replay`);
  }
  const recCwd = typeof log.header.host.cwd === "string" ? [log.header.host.cwd] : [];
  const dirs = opts.searchDirs ?? [".", dirname(path), ...recCwd];
  const find = (info: ImageInfo): Uint8Array => {
    const packed = log.images.find((p) => p.role === info.role && p.name === info.name);
    if (packed) return packed.data;
    const cands = [info.name, ...dirs.map((d) => join(d, info.name)), ...dirs.map((d) => join(d, basename(info.name)))];
    for (const c of cands) {
      if (!existsSync(c)) continue;
      const data = new Uint8Array(readFileSync(c));
      if (sha256Hex(data) !== info.sha256 && !opts.force) {
        throw new LogError(`${c}: image differs from the one recorded (sha256 ${info.sha256.slice(0, 16)}...); use --force to replay anyway`);
      }
      return data;
    }
    throw new LogError(`${info.name}: ${info.role} image not found (record with --pack to embed images)`);
  };
  const cfg = configFromCompared(log.header.compared, find);
  const hi = log.header.compared.hashInterval;
  return { log, cfg, events: inputEvents(log.events), hashInterval: typeof hi === "number" ? hi : 0 };
}

/** Machines already put in the log's start state (replayToEnd must not do it twice). */
const started = new WeakSet<Machine>();

/**
 * A machine in the log's start state: booted from the header's configuration, then, for a log
 * that starts from a snapshot (v2), restored from it (icount = the snapshot's icount).
 */
export function machineFromLog(opened: OpenedLog): Machine {
  const m = buildMachine(opened.cfg);
  startMachine(m, opened);
  return m;
}

/** Put a machine freshly built from `opened.cfg` into the log's start state. */
export function startMachine(m: Machine, opened: OpenedLog): void {
  if (started.has(m)) return;
  if (opened.log.snapshot) applyState(m, opened.log.snapshot);
  started.add(m);
}

/** The host-input events of a log, as machine events. */
export function inputEvents(events: readonly LogEvent[]): ReplayEvent[] {
  const out: ReplayEvent[] = [];
  for (const e of events) {
    let ev: InputEvent | null = null;
    switch (e.kind) {
      case EventKind.SERIAL_RX: ev = { kind: "serial", port: e.payload.port, byte: e.payload.byte }; break;
      case EventKind.KEY: ev = { kind: "key", bytes: Array.from(e.payload.bytes) }; break;
      case EventKind.MOUSE: ev = { kind: "mouse", dx: e.payload.dx, dy: e.payload.dy, buttons: e.payload.buttons }; break;
      case EventKind.IDLE_SKIP: ev = { kind: "idle", ns: e.payload.ns }; break;
      default: break;
    }
    if (ev) out.push({ icount: e.icount, ev });
  }
  return out;
}

export interface VerifyResult {
  ok: boolean;
  end: ReplayEnd;
  icount: number;
  hashesChecked: number;
  /** On mismatch. */
  mismatch?: {
    windowStart: number;
    windowEnd: number;
    components: string[];
    text: string;
    /** First instruction count where block-cache and single-step replays differ, if any. */
    firstInsn?: number;
  };
  truncated?: { atIcount: number };
  machine?: Machine;
}

export function verifyLog(opened: OpenedLog, onOutput?: (ch: string, b: Uint8Array) => void, onSlice?: (m: Machine) => void, until?: number): VerifyResult {
  const { log, cfg, events } = opened;
  const m = machineFromLog(opened);
  if (onOutput) m.onOutput = onOutput;
  const hasher = new MachineHasher(m);
  const expected = new Map<number, HashRecord>();
  for (const h of log.hashes) expected.set(h.icount, h.record);
  let checked = 0;
  // The last point whose hashes matched, for narrowing a mismatch down (pages copied as written).
  const lastGood = new RollingSnapshot(m);
  let mismatch: VerifyResult["mismatch"];
  const interval = opened.hashInterval;
  const compare = (icount: number): boolean => {
    const exp = expected.get(icount);
    if (!exp) return true;
    const got = hasher.record(!!exp.pages);
    const d = diffHashes(exp, got);
    checked++;
    if (d.equal) { lastGood.update(); return true; }
    mismatch = {
      windowStart: lastGood.icount, windowEnd: icount, components: d.components,
      text: formatHashDiff(d),
    };
    return false;
  };
  const last = log.trailer ? log.trailer.finalIcount : log.endIcount;
  // --until: verify the hash records up to that instruction only (the trailer's final state
  // is checked when the replay reaches the end).
  const stopAt = until !== undefined && until < last ? until : last;
  if (stopAt < log.startIcount) throw new LogError(`this log starts at instruction ${log.startIcount} (from a snapshot); cannot stop at ${stopAt}`);
  const end = runReplay(m, events, { hashInterval: interval, onHashPoint: compare, until: stopAt, onSlice });
  if (!mismatch && log.trailer?.hashes && stopAt === last) {
    if (m.cpu.icount !== log.trailer.finalIcount) {
      mismatch = { windowStart: lastGood.icount, windowEnd: m.cpu.icount, components: ["icount"], text: `replay ended at icount ${m.cpu.icount}, recording at ${log.trailer.finalIcount}` };
    } else {
      const got = hasher.record();
      const d = diffHashes(log.trailer.hashes, got);
      checked++;
      if (!d.equal) mismatch = { windowStart: lastGood.icount, windowEnd: m.cpu.icount, components: d.components, text: formatHashDiff(d) };
    }
  }
  if (mismatch) {
    mismatch.firstInsn = narrow(cfg, lastGood.snapshot(), events, mismatch.windowEnd);
  }
  return {
    ok: !mismatch, end, icount: m.cpu.icount, hashesChecked: checked, mismatch,
    truncated: log.truncated ? { atIcount: log.truncated.atIcount } : undefined, machine: m,
  };
}

/**
 * Replay [start, end) from a snapshot twice, with the block cache and in single-step mode,
 * comparing CPU state after every instruction. Returns the first icount where they differ.
 */
function narrow(cfg: MachineConfig, from: Snapshot, events: ReplayEvent[], end: number): number | undefined {
  const a = buildMachine(cfg), b = buildMachine(cfg);
  from.restore(a); from.restore(b);
  b.cpu.singleStep = true;
  b.cpu.flushBlocks();
  const limit = Math.min(end, from.icount + 5_000_000);
  while (a.cpu.icount < limit) {
    const t = a.cpu.icount + 1;
    runReplay(a, events, { until: t });
    runReplay(b, events, { until: t });
    const sa = Snapshot.cpuBytes(a), sb = Snapshot.cpuBytes(b);
    if (a.cpu.icount !== b.cpu.icount || !equalBytes(sa, sb)) return t;
    if (a.cpu.icount !== t) break;
  }
  return undefined;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Replay a machine built from `opened.cfg` to `until` (default: the end of the log). A log that
 * starts from a snapshot restores it first, unless the machine was started already.
 */
export function replayToEnd(m: Machine, opened: OpenedLog, until?: number, onSlice?: (m: Machine) => void): ReplayEnd {
  const u = until ?? finalIcountOf(opened);
  const start = opened.log.startIcount;
  if (u < start) throw new LogError(`this log starts at instruction ${start} (from a snapshot); cannot stop at ${u}`);
  if (!started.has(m) && m.cpu.icount === 0) startMachine(m, opened);
  return runReplay(m, opened.events, { until: u, onSlice });
}

export function finalIcountOf(opened: OpenedLog): number {
  return opened.log.trailer ? opened.log.trailer.finalIcount : opened.log.endIcount;
}
