/**
 * Host input for a replay engine that has gone live (`monitor live`, `rrx gdb --live-at N`),
 * and the optional recording of it (`rrx gdb --record FILE`).
 *
 * Under gdb the terminal belongs to gdb, so the live part takes its input from a script
 * (lib/machine/script.ts) whose times are virtual time **since the moment the machine went
 * live**. Input is applied the way the driver's live loop (driver.ts runLive) applies it, so
 * that the recording replays: only at a state where a run ended at its instruction limit or
 * idle (never right after a breakpoint or watchpoint stop: the next event then waits for the
 * next instruction boundary), serial bytes wait for FIFO room, a halted guest skips ahead to
 * the next scripted time with a logged IDLE_SKIP, and hash records are taken at multiples of
 * the recorder's hash interval.
 */
import type { InputEvent, Machine, RunStop } from "../machine/machine.ts";
import type { ScriptEvent } from "../machine/script.ts";
import { hostClockMs } from "../machine/host.ts";
import type { Recorder } from "./recorder.ts";

/** When serial bytes wait for FIFO room, look again after this many instructions (as runLive). */
const SERIAL_RETRY = 10_000;

export interface LiveInputOptions {
  /** Scripted input; times are relative to when the machine went live. */
  script?: ScriptEvent[];
  /** Record every event applied (Recorder.startFrom at the go-live point). */
  recorder?: Recorder;
  /** Where the recording goes (for messages). */
  recordPath?: string;
}

export class LiveInput {
  private readonly script: { atNs: number; events: InputEvent[] }[];
  private si = 0;
  private readonly pendingSerial: InputEvent[] = [];
  /** The machine is at a state where input may be applied (the last run ended at a limit or idle). */
  private boundary = true;
  private lastTickMs = -Infinity;
  private lastHashAt = -1;
  readonly recorder: Recorder | null;
  readonly recordPath: string | null;
  /** Events applied so far. */
  delivered = 0;
  /** Set when the recording has been finished: one line saying what was recorded. */
  summary: string | null = null;

  constructor(readonly m: Machine, opts: LiveInputOptions = {}) {
    const base = m.now();
    this.script = (opts.script ?? []).map((s) => ({ atNs: s.atNs + base, events: s.events }));
    this.recorder = opts.recorder ?? null;
    this.recordPath = opts.recordPath ?? null;
    m.hostDeadlineNs = this.nextScriptNs();
  }

  get recording(): boolean {
    return this.recorder !== null && !this.recorder.finished;
  }

  /** Scripted input not yet applied (including serial bytes waiting for room). */
  get pending(): number {
    return this.script.length - this.si + this.pendingSerial.length;
  }

  private nextScriptNs(): number {
    return this.si < this.script.length ? this.script[this.si]!.atNs : Infinity;
  }

  private deliver(ev: InputEvent): void {
    if (this.recording) this.recorder!.onEvent(this.m.cpu.icount, ev);
    this.m.inject(ev);
    this.delivered++;
  }

  /** Apply the input due now (only at a boundary state). Call before each run. */
  pump(): void {
    const m = this.m;
    if (this.boundary) {
      while (this.si < this.script.length && this.script[this.si]!.atNs <= m.now()) {
        for (const ev of this.script[this.si++]!.events) {
          if (ev.kind === "serial") this.pendingSerial.push(ev);
          else this.deliver(ev);
        }
      }
      while (this.pendingSerial.length && m.serialReady((this.pendingSerial[0] as { port: number }).port)) this.deliver(this.pendingSerial.shift()!);
    }
    m.hostDeadlineNs = this.nextScriptNs();
  }

  /** The instruction limit of the next run, given the caller's. */
  limit(lim: number): number {
    const m = this.m, ic = m.cpu.icount;
    if (this.pendingSerial.length) lim = Math.min(lim, ic + SERIAL_RETRY);
    const next = this.nextScriptNs();
    if (next !== Infinity) lim = Math.min(lim, Math.max(m.icountAt(next), ic + 1));
    const hi = this.recording ? this.recorder!.hashInterval : 0;
    if (hi > 0) lim = Math.min(lim, (Math.floor(ic / hi) + 1) * hi);
    m.hostDeadlineNs = next;
    return lim;
  }

  /** After each run: note whether input may be applied now; hash records; flush cadence. */
  afterRun(r: RunStop): void {
    const m = this.m, ic = m.cpu.icount;
    this.boundary = r.kind === "limit" || r.kind === "idle";
    if (!this.recording) return;
    const rec = this.recorder!;
    if (r.kind === "limit" && rec.hashInterval > 0 && ic > 0 && ic % rec.hashInterval === 0 && ic !== this.lastHashAt) {
      rec.onHashPoint(ic);
      this.lastHashAt = ic;
    }
    const now = hostClockMs();
    if (now - this.lastTickMs >= 20) { rec.onTick(ic, now); this.lastTickMs = now; }
  }

  /**
   * The guest is halted with nothing due before the next scripted time: skip virtual time to it
   * (a logged IDLE_SKIP, as runLive does). False when no scripted input is left.
   */
  onIdle(): boolean {
    if (this.si >= this.script.length) return false;
    const m = this.m, at = this.script[this.si]!.atNs;
    if (at > m.now()) this.deliver({ kind: "idle", ns: at - m.arrivalNs() });
    return true;
  }

  /**
   * End the recording (guest exit, end of the session). `canonical`: the machine is in the
   * canonical state of its icount (else the trailer carries no final hashes). Returns a one-line
   * summary, or null when nothing was being recorded.
   */
  finish(reason: string, status: number, canonical = true): string | null {
    if (!this.recording) return null;
    const m = this.m;
    if (!this.boundary && canonical) m.runUntil(m.cpu.icount); // fire what is due here, execute nothing
    this.recorder!.finish(reason, status, canonical);
    return this.summary = `recorded ${this.recorder!.writer.eventCount} events to ${this.recordPath ?? "the log"} (instructions ${this.recorder!.writer.header.compared.snapshot ? (this.recorder!.writer.header.compared.snapshot as { icount: number }).icount : 0}..${m.cpu.icount}, ${reason})`;
  }
}
