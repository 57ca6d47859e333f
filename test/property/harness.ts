/**
 * Record / replay / state helpers shared by the determinism properties.
 */
import { runLive, runReplay, type EndReason, type ReplayEnd, type ReplayEvent } from "../../lib/machine/driver.ts";
import type { Machine } from "../../lib/machine/machine.ts";
import { StateWriter } from "../../lib/machine/snapshot.ts";
import { Recorder } from "../../lib/replay/recorder.ts";
import { LogWriter, MemorySink } from "../../lib/replay/log/writer.ts";
import { readLog, type ParsedLog } from "../../lib/replay/log/reader.ts";
import { inputEvents } from "../../lib/replay/replayer.ts";
import { DEVICE_LIST, screenBytes } from "../../lib/replay/session.ts";
import { imageInfo } from "../../lib/replay/log/format.ts";
import { hashBytes } from "../../lib/replay/hash.ts";
import { BOOT_EPOCH, MEM_BYTES, describeGuest, newMachine, type Guest } from "./guest.ts";

export interface Recording {
  bytes: Uint8Array;
  log: ParsedLog;
  events: ReplayEvent[];
  serial: string;
  end: EndReason;
  icount: number;
  final: string;
}

export function serialTap(m: Machine): { text: () => string } {
  let s = "";
  m.onOutput = (ch, b) => { if (ch === "com1") s += Buffer.from(b).toString("latin1"); };
  return { text: () => s };
}

/** Everything observable, as one string: machine/CPU/device state, RAM, screen. */
export function fullState(m: Machine): string {
  const w = new StateWriter(4096);
  m.saveState(w);
  return `${hashBytes(w.finish())}:${hashBytes(m.ram)}:${hashBytes(screenBytes(m))}`;
}

export async function record(g: Guest, host: Record<string, unknown> = { startTime: 1 }, tweak?: (m: Machine) => void): Promise<Recording> {
  const m = newMachine(g, tweak);
  const tap = serialTap(m);
  const sink = new MemorySink();
  const hi = g.spec.hashInterval;
  const compared = {
    memoryBytes: MEM_BYTES, devices: DEVICE_LIST, ips: g.spec.ips, args: [],
    images: [imageInfo("kernel", "guest.bin", g.main)], bootDate: BOOT_EPOCH, hashInterval: hi,
  };
  const w = new LogWriter(sink, { compared, host }, {});
  const rec = new Recorder(m, w, hi);
  const end = await runLive(m, { script: g.script, observer: rec, maxInsns: g.maxInsns });
  m.flushOutput();
  rec.finish(end.kind, end.kind === "exit" ? end.status : 0);
  const bytes = sink.bytes();
  const log = readLog(bytes);
  return { bytes, log, events: inputEvents(log.events), serial: tap.text(), end, icount: m.cpu.icount, final: fullState(m) };
}

export function finalIcount(r: Recording): number {
  return r.log.trailer!.finalIcount;
}

/**
 * Where a replay of the recording stops: a recording cut at an instruction limit is replayed
 * to that icount, one that ended by itself (exit, halt, idle) to its own end. (They differ
 * when the guest halts at the icount of the last input event: the replay then injects the
 * event and runs once more to see the halt, one more stop point.)
 */
export function replayUntil(r: Recording): number {
  return r.end.kind === "limit" ? finalIcount(r) : Infinity;
}

export interface ReplayRun {
  m: Machine;
  end: ReplayEnd;
  serial: string;
  /** (icount, fullState) after every runUntil slice: every stop point of the replay loop. */
  slices: [number, string][];
}

/** Replay a recording into a fresh machine; `each` sees every stop point. */
export function replay(g: Guest, r: Recording, o: { tweak?: (m: Machine) => void; until?: number; slices?: boolean; onHashPoint?: (m: Machine, icount: number) => void } = {}): ReplayRun {
  const m = newMachine(g, o.tweak);
  const tap = serialTap(m);
  const slices: [number, string][] = [];
  const end = runReplay(m, r.events, {
    // A recording that ended by itself (exit, halt, idle) is replayed to its own end.
    hashInterval: g.spec.hashInterval, until: o.until ?? replayUntil(r),
    onHashPoint: o.onHashPoint ? (ic) => { o.onHashPoint!(m, ic); } : undefined,
    onSlice: o.slices ? (mm) => { slices.push([mm.cpu.icount, fullState(mm)]); } : undefined,
  });
  m.flushOutput();
  return { m, end, serial: tap.text(), slices };
}

/** Run `body`; on failure (throw or false) rethrow with the guest's disassembly and knobs. */
export async function withGuest(g: Guest, body: () => Promise<boolean | void> | boolean | void): Promise<boolean> {
  let err: unknown = null;
  try {
    const ok = await body();
    if (ok === false) err = new Error("property returned false");
  } catch (e) { err = e; }
  if (err === null) return true;
  const msg = err instanceof Error ? err.message : String(err);
  throw new Error(`${msg}\n${describeGuest(g)}`);
}

export function expectEq<T>(a: T, b: T, what: string): void {
  const sa = JSON.stringify(a), sb = JSON.stringify(b);
  if (sa !== sb) throw new Error(`${what} differ:\n  ${sa.slice(0, 600)}\n  ${sb.slice(0, 600)}`);
}

/** First differing index of two slice lists, as a message. */
export function expectSameSlices(a: [number, string][], b: [number, string][], what: string): void {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i]![0] !== b[i]![0] || a[i]![1] !== b[i]![1]) {
      throw new Error(`${what}: first difference at stop point ${i}: icount ${a[i]![0]} state ${a[i]![1]} vs icount ${b[i]![0]} state ${b[i]![1]}`);
    }
  }
  if (a.length !== b.length) throw new Error(`${what}: ${a.length} vs ${b.length} stop points`);
}
