/**
 * The host-input boundary: the one place where anything from outside enters the machine.
 *
 * Three modes share this loop:
 *  - live:   host input (scripted events, terminal bytes) is injected at the current icount;
 *  - record: the same, and every injected event is handed to the recorder with its icount;
 *  - replay: events come from a log and are injected at exactly their recorded icount
 *            (see runReplay); the host is ignored.
 *
 * Host time is read only here (through host.ts), for realtime pacing and flush cadence; any
 * effect host time has on the guest (an idle skip while waiting for input) becomes an event.
 */
import type { InputEvent, Machine, RunStop } from "./machine.ts";
import type { ScriptEvent } from "./script.ts";
import { hostClockMs } from "./host.ts";

/** Receives every injected event (the recorder), and is polled for periodic work. */
export interface EventObserver {
  onEvent(icount: number, ev: InputEvent): void;
  /** Hash records are taken at multiples of this icount (0 = never). */
  hashInterval: number;
  onHashPoint(icount: number): void;
  /** Called at least every few host milliseconds while running (flush cadence). */
  onTick(icount: number, hostMs: number): void;
}

/**
 * Host input arrives here asynchronously: bytes typed at a terminal or read from a pipe, and
 * requests to stop (Ctrl-A x, a signal). The live loop looks at it at least every
 * YIELD_MS of host time, however busy the guest is.
 */
export class HostQueue {
  readonly events: InputEvent[] = [];
  /** No more input will come (end of a piped stdin, or no input source at all). */
  closed = false;
  quit = false;
  /** Why the run was asked to stop: "quit" (Ctrl-A x) or a signal name. */
  quitReason = "quit";
  private waiter: (() => void) | null = null;
  push(ev: InputEvent): void { this.events.push(ev); this.wake(); }
  close(): void { this.closed = true; this.wake(); }
  requestQuit(reason = "quit"): void {
    if (!this.quit) this.quitReason = reason;
    this.quit = true;
    this.wake();
  }
  wake(): void { const w = this.waiter; this.waiter = null; w?.(); }
  wait(ms: number): Promise<void> {
    return new Promise((res) => {
      const t = setTimeout(() => { this.waiter = null; res(); }, ms);
      this.waiter = () => { clearTimeout(t); res(); };
    });
  }
}

export interface LiveOptions {
  maxInsns?: number;
  script?: ScriptEvent[];
  host?: HostQueue;
  /** Pace virtual time to the host clock. */
  realtime?: boolean;
  observer?: EventObserver;
  /** Called between slices (screen refresh, progress). */
  onSlice?: (m: Machine) => void;
}

export type EndReason =
  | { kind: "exit"; status: number }
  | { kind: "halted" }
  | { kind: "idle" }
  | { kind: "limit" }
  | { kind: "shutdown" }
  | { kind: "stuck" }
  /** Stopped by the host: Ctrl-A x (reason "quit") or a signal (reason = its name). */
  | { kind: "quit"; reason: string };

/** Instructions per slice between looks at the host. */
const SLICE = 1_000_000;
/** The loop lets the host's event loop run (input, signals) at least this often (host ms). */
const YIELD_MS = 10;
/** When serial bytes wait for FIFO room, look again after this many instructions. */
const SERIAL_RETRY = 10_000;

export async function runLive(m: Machine, opts: LiveOptions = {}): Promise<EndReason> {
  const obs = opts.observer;
  // Virtual time that a halted CPU was carried forward at its current icount (through device
  // deadlines that did not wake it) passed inside runUntil. A replay arrives at the same icount
  // and injects the logged events there at once, so that time must be in the log as an idle
  // skip before any host event that follows it, and before the run ends.
  let syncedIcount = -1, syncedNow = -1;
  const inject = (ev: InputEvent) => {
    obs?.onEvent(m.cpu.icount, ev);
    m.inject(ev);
    if (ev.kind === "idle") { syncedIcount = m.cpu.icount; syncedNow = m.now(); }
  };
  const syncIdle = () => {
    const ns = m.now() - m.arrivalNs();
    if (ns > 0 && !(syncedIcount === m.cpu.icount && syncedNow === m.now())) inject({ kind: "idle", ns });
  };
  const deliver = (ev: InputEvent) => {
    if (ev.kind !== "idle") syncIdle();
    inject(ev);
  };
  const end = await liveLoop(m, opts, deliver);
  syncIdle();
  return end;
}

async function liveLoop(m: Machine, opts: LiveOptions, deliver: (ev: InputEvent) => void): Promise<EndReason> {
  const maxIcount = opts.maxInsns !== undefined ? opts.maxInsns : Infinity;
  const script = opts.script ?? [];
  let si = 0;
  const pendingSerial: InputEvent[] = [];
  const obs = opts.observer;
  const host = opts.host;
  let lastTick = hostClockMs();
  let lastYield = lastTick;
  const wallStart = lastTick;
  const vStart = m.now();
  let lastHashAt = -1;

  const takeReady = (evs: InputEvent[]) => {
    for (const ev of evs) {
      if (ev.kind === "serial") pendingSerial.push(ev);
      else deliver(ev);
    }
  };
  const pumpSerial = () => {
    while (pendingSerial.length && m.serialReady((pendingSerial[0] as { port: number }).port)) deliver(pendingSerial.shift()!);
  };
  const quit = (): EndReason => ({ kind: "quit", reason: host!.quitReason });

  for (;;) {
    // Script events due now.
    while (si < script.length && script[si]!.atNs <= m.now()) takeReady(script[si++]!.events);
    if (host && host.events.length) takeReady(host.events.splice(0));
    if (host?.quit) return quit();
    pumpSerial();
    const now = hostClockMs();
    if (obs && now - lastTick >= 20) { obs.onTick(m.cpu.icount, now); lastTick = now; }
    opts.onSlice?.(m);

    // How far to run.
    let limit = Math.min(maxIcount, m.cpu.icount + (pendingSerial.length ? SERIAL_RETRY : SLICE));
    const nextScript = si < script.length ? script[si]!.atNs : Infinity;
    if (nextScript !== Infinity) limit = Math.min(limit, Math.max(m.icountAt(nextScript), m.cpu.icount + 1));
    if (obs && obs.hashInterval > 0) {
      const nh = (Math.floor(m.cpu.icount / obs.hashInterval) + 1) * obs.hashInterval;
      limit = Math.min(limit, nh);
    }
    let hostDeadline = nextScript;
    if (opts.realtime) hostDeadline = Math.min(hostDeadline, vStart + (now - wallStart) * 1e6);
    m.hostDeadlineNs = hostDeadline;

    if (m.cpu.icount >= maxIcount) return { kind: "limit" };
    const r: RunStop = m.runUntil(limit);
    // A hash record when the run arrives at a multiple of the interval, once: as the replay
    // (runReplay) takes them. Not again while halted there (an idle skip or input at the same
    // icount), nor when the run stopped there for another reason.
    if (obs && obs.hashInterval > 0 && r.kind === "limit" && m.cpu.icount % obs.hashInterval === 0 && m.cpu.icount > 0 && m.cpu.icount !== lastHashAt) {
      lastHashAt = m.cpu.icount;
      obs.onHashPoint(m.cpu.icount);
    }

    switch (r.kind) {
      case "exit": return { kind: "exit", status: r.status };
      case "halted": return { kind: "halted" };
      case "shutdown": return { kind: "shutdown" };
      case "stuck": return { kind: "stuck" };
      case "breakpoint": case "watch": case "delivered": return { kind: "limit" };
      case "limit": break;
      case "idle": {
        // Halted, waiting for something from the host side.
        if (si < script.length && (!opts.realtime || script[si]!.atNs <= hostDeadline)) {
          if (script[si]!.atNs > m.now()) deliver({ kind: "idle", ns: script[si]!.atNs - m.arrivalNs() });
          break;
        }
        if (opts.realtime) {
          // Wait on the host clock until the next deadline or input, whichever is first.
          const dl = Math.min(m.nextDeadline(), nextScript);
          const waitMs = dl === Infinity ? 50 : Math.max(0, (dl - vStart) / 1e6 - (hostClockMs() - wallStart));
          if (host && !host.events.length && !host.quit && waitMs > 0) await host.wait(Math.min(waitMs, 50));
          else if (!host && waitMs > 0) await sleep(Math.min(waitMs, 50));
          lastYield = hostClockMs();
          const vNow = vStart + (lastYield - wallStart) * 1e6;
          if (host && host.events.length && vNow > m.now()) deliver({ kind: "idle", ns: Math.floor(vNow - m.arrivalNs()) });
          if (m.nextDeadline() === Infinity && (!host || host.closed) && si >= script.length && !pendingSerial.length) return { kind: "idle" };
          break;
        }
        if (host && !host.closed) {
          // Nothing will happen until the host sends something: wait for it.
          if (!host.events.length && !host.quit) await host.wait(100);
          lastYield = hostClockMs();
          break;
        }
        // No more host input (and bytes still waiting for FIFO room stay there: nothing makes
        // room while halted).
        return { kind: "idle" };
      }
    }
    if (opts.realtime) {
      // Virtual time ahead of the host clock: wait.
      const aheadMs = (m.now() - vStart) / 1e6 - (hostClockMs() - wallStart);
      if (aheadMs > 2) {
        if (host) await host.wait(Math.min(aheadMs, 50)); else await sleep(Math.min(aheadMs, 50));
        lastYield = hostClockMs();
      }
    }
    // However busy the guest, let the host's input and signal handlers run now and then.
    const t = hostClockMs();
    if (t - lastYield >= YIELD_MS) {
      await yieldToHost();
      lastYield = hostClockMs();
    }
  }
}

/** Let pending I/O callbacks (stdin, signals) run, without waiting for a timer. */
function yieldToHost(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface ReplayEvent {
  icount: number;
  ev: InputEvent;
}

export interface ReplayOptions {
  until?: number;
  hashInterval?: number;
  onHashPoint?: (icount: number) => boolean | void;
  /** Called between slices with the current icount (progress). */
  onSlice?: (m: Machine) => void;
}

export type ReplayEnd = EndReason | { kind: "stopped"; at: number } | { kind: "diverged"; detail: string };

/**
 * Replay logged events into a machine booted the same way: each event is injected at exactly
 * its recorded icount. `onHashPoint` may return false to stop (a verifier that found a
 * mismatch). The run ends when the guest ends, at `until`, or when the log is exhausted and
 * the guest is idle.
 */
export function runReplay(m: Machine, events: ReplayEvent[], opts: ReplayOptions = {}): ReplayEnd {
  let ei = 0;
  // Skip events before the start (a replay that resumes from a checkpoint).
  while (ei < events.length && events[ei]!.icount < m.cpu.icount) ei++;
  const until = opts.until ?? Infinity;
  const hi = opts.hashInterval ?? 0;
  m.hostDeadlineNs = Infinity;
  for (;;) {
    while (ei < events.length && events[ei]!.icount === m.cpu.icount) m.inject(events[ei++]!.ev);
    if (m.cpu.icount >= until) return { kind: "stopped", at: m.cpu.icount };
    let limit = Math.min(until, ei < events.length ? events[ei]!.icount : Infinity, m.cpu.icount + SLICE * 10);
    if (hi > 0) limit = Math.min(limit, (Math.floor(m.cpu.icount / hi) + 1) * hi);
    const r = m.runUntil(limit);
    if (hi > 0 && m.cpu.icount % hi === 0 && m.cpu.icount > 0 && r.kind === "limit") {
      if (opts.onHashPoint?.(m.cpu.icount) === false) return { kind: "stopped", at: m.cpu.icount };
    }
    opts.onSlice?.(m);
    switch (r.kind) {
      case "exit": return { kind: "exit", status: r.status };
      case "halted": return { kind: "halted" };
      case "shutdown": return { kind: "shutdown" };
      case "stuck": return { kind: "stuck" };
      case "breakpoint": case "watch": case "delivered": return { kind: "stopped", at: m.cpu.icount };
      case "idle":
        if (ei < events.length) {
          if (events[ei]!.icount > m.cpu.icount) {
            return { kind: "diverged", detail: `guest idle at icount ${m.cpu.icount} but the next event is at ${events[ei]!.icount}` };
          }
          break;
        }
        return { kind: "idle" };
      case "limit": break;
    }
  }
}
