/**
 * The reverse-execution engine over a recording.
 *
 * Positions are instruction counts. The *canonical* state at icount N is the state a fresh
 * replay reaches with `runReplay(m, events, {until: N})`: N instructions retired, device
 * deadlines due at N fired, and the logged events at N injected. Every checkpoint is a
 * canonical state, `seek(N)` lands on one, and a single step forward from a canonical state
 * lands on the next one. A breakpoint or watchpoint stop may leave a non-canonical state at the
 * same icount (e.g. an interrupt delivered just before a breakpoint in its handler); stepping
 * from there still goes to the canonical neighbours.
 *
 * Going backwards = restoring the nearest checkpoint at or before the target and replaying
 * forward. While doing so the engine takes checkpoints at geometrically spaced distances
 * before the target (T - G, T - 2G, T - 4G, ...), so runs of reverse steps find one within a
 * few hundred instructions: that is the cache of recent single-step states. Far from the
 * current position the store thins them out (see checkpoints.ts).
 *
 * reverse-continue replays the segment between the nearest checkpoint before the current
 * position and the position, with breakpoints and watchpoints armed, keeping the last hit;
 * if there is none it moves one checkpoint further back, and so on, down to the start of the
 * log ("begin"). Forward execution stops at the end of the log ("end"); neither ends the
 * session. Long runs yield to the event loop and honour an AbortSignal.
 *
 * `goLive()` stops consuming the log: from then on the machine runs on without logged input,
 * reverse execution is off and writes are allowed. With a LiveInput (live.ts) it takes scripted
 * host input and may record it to a new log that starts from a snapshot of this point.
 */
import type { Machine, RunStop } from "../machine/machine.ts";
import type { ReplayEvent } from "../machine/driver.ts";
import type { Watchpoint } from "../cpu/contract.ts";
import { machineFromLog, type OpenedLog } from "./replayer.ts";
import type { LiveInput } from "./live.ts";
import { CheckpointStore, type Checkpoint, type CheckpointStoreOptions } from "./checkpoints.ts";

export type EngineStop =
  /** Reached the requested position / finished a step. */
  | { kind: "step" }
  | { kind: "breakpoint"; addr: number }
  | { kind: "watch"; type: 2 | 3 | 4; addr: number }
  /** Start (reverse) or end (forward) of the recording. */
  | { kind: "begin" }
  | { kind: "end" }
  /** Live only: the guest powered off / shut down / halted for good. */
  | { kind: "exited"; status: number }
  | { kind: "interrupted" };

export interface EngineOptions extends CheckpointStoreOptions {
  /** Instructions between automatic checkpoints while running forward before any reverse command (default 2^20). */
  sparseInterval?: number;
  /** The same after the first reverse command (default 2^18). */
  denseInterval?: number;
  /** Closest step-cache checkpoint before a reverse target (default 128). */
  stepGap?: number;
  /** Instructions between yields to the event loop (default 1<<19). */
  yieldEvery?: number;
}

interface Hit {
  /** The stop state is the canonical state of `at` (otherwise: run into the breakpoint again from there). */
  canonical: boolean;
  /** Position of the stop in reverse: bp = icount of the stop; watch = icount before the accessing instruction. */
  at: number;
  /** Ordering key (2*at for a breakpoint, 2*at+1 for a watchpoint: undoing the write comes first in reverse). */
  key: number;
  stop: EngineStop;
}

/** Minimum distance between two checkpoints taken at breakpoint hits by a reverse search. */
const HIT_GAP = 1 << 16;

/**
 * Yield to the event loop (a gdb ^C, the next packet). setImmediate, not setTimeout(0): in Bun
 * the latter sleeps about 1 ms, which at one yield per 2^19 instructions cost 10-15% of a replay.
 */
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * A disarmed run (seek) leaves breakpoints in the CPU and passes their hits (changing the CPU's
 * breakpoint set drops every translated block, twice per seek); after this many hits in one run
 * it takes them out for the rest of the run after all.
 */
const PASS_HITS = 256;

export class ReplayEngine {
  readonly store: CheckpointStore;
  /** Index of the next logged event not yet injected. */
  private ei = 0;
  /** First and last positions of the recording. */
  readonly begin: number;
  readonly end: number;
  /** Live: no more log, no reverse. */
  live = false;
  /** Live: scripted host input and the recording of the live part, if any. */
  liveInput: LiveInput | null = null;
  /** Set after the first reverse command (denser checkpoints). */
  reversed = false;
  private breakpoints = new Set<number>();
  private watchpoints: Watchpoint[] = [];
  private readonly sparseInterval: number;
  private readonly denseInterval: number;
  private readonly stepGap: number;
  private readonly yieldEvery: number;
  /** The current state is the canonical state of the current icount. */
  private canonical = true;
  /** Guest power-off seen while live. */
  private exitedStatus: number | null = null;
  /** icount of the last interrupt/exception delivery (see constructor). */
  private lastRaiseAt = -1;
  /** Statistics. */
  readonly stats = { restores: 0, replayed: 0, taken: 0 };

  constructor(readonly m: Machine, readonly events: readonly ReplayEvent[], endIcount: number, opts: EngineOptions = {}) {
    // Regular checkpoints are cheap (the pages written since the last one, a few KiB of state)
    // and the store thins them with distance: dense ones near where execution stopped keep the
    // first segment of a reverse-continue and the replay of a nearby goto short.
    this.sparseInterval = opts.sparseInterval ?? 1 << 20;
    this.denseInterval = opts.denseInterval ?? 1 << 18;
    this.stepGap = opts.stepGap ?? 128;
    this.yieldEvery = opts.yieldEvery ?? 1 << 19;
    this.m.hostDeadlineNs = Infinity;
    this.begin = m.cpu.icount;
    this.end = endIcount;
    this.store = new CheckpointStore(m, opts);
    // A breakpoint stop at icount N is the canonical state of N unless an interrupt or a fault
    // was delivered at N just before it (a breakpoint on a handler's first instruction). Watch
    // deliveries to tell (a retired INT n delivers at N-1, so it does not count).
    const cpu = m.cpu;
    cpu.onDeliver = () => { this.lastRaiseAt = cpu.icount; };
    this.injectDue();
    this.store.take(this.ei);
  }

  get icount(): number {
    return this.m.cpu.icount;
  }

  get isCanonical(): boolean {
    return this.canonical;
  }

  setBreakpoints(addrs: Iterable<number>): void {
    this.breakpoints = new Set(Array.from(addrs, (a) => a >>> 0));
    this.m.cpu.setBreakpoints(this.breakpoints);
  }

  setWatchpoints(list: Watchpoint[]): void {
    this.watchpoints = list.map((w) => ({ ...w }));
    this.m.cpu.setWatchpoints(this.watchpoints);
  }

  private injectDue(): void {
    const ev = this.events, m = this.m;
    if (this.live) return;
    while (this.ei < ev.length && ev[this.ei]!.icount < m.cpu.icount) this.ei++; // never happens on a canonical path
    while (this.ei < ev.length && ev[this.ei]!.icount === m.cpu.icount) m.inject(ev[this.ei++]!.ev);
  }

  private restore(c: Checkpoint): void {
    this.store.restore(c);
    this.ei = c.meta;
    this.canonical = true;
    this.exitedStatus = null;
    this.stats.restores++;
  }

  private takeCheckpoint(user = false): Checkpoint {
    const c = this.store.take(this.ei, user);
    this.stats.taken++;
    this.store.thin(this.m.cpu.icount);
    return c;
  }

  /**
   * Run forward from a canonical state to `limit` or the first stop. With `armed` false
   * breakpoints and watchpoints are disarmed in the CPU for the run. `spots`: ascending
   * positions where a checkpoint should be taken on the way (if the density rule wants one).
   */
  private async runForward(
    limit: number,
    o: { armed: boolean; ignoreBpAt?: number; spots?: number[]; signal?: AbortSignal; regular?: boolean },
  ): Promise<EngineStop> {
    const m = this.m, cpu = m.cpu;
    // Disarmed: watchpoints out of the CPU (cheap: a TLB flush); breakpoints stay in and their
    // hits are passed, unless there are many (see PASS_HITS).
    const unwatch = !o.armed && this.watchpoints.length > 0;
    if (unwatch) cpu.setWatchpoints([]);
    let passed = 0, bpsOut = false;
    try {
      let spotI = 0;
      const spots = o.spots ?? [];
      let sinceYield = 0;
      let ignore = o.ignoreBpAt ?? -1;
      const interval = this.reversed ? this.denseInterval : this.sparseInterval;
      for (;;) {
        if (this.canonical) {
          this.injectDue();
          while (spotI < spots.length && spots[spotI]! < cpu.icount) spotI++;
          if (this.live) this.liveInput?.pump();
          if (!this.live && ((spotI < spots.length && spots[spotI] === cpu.icount) || (o.regular && cpu.icount % interval === 0 && cpu.icount > this.begin))) {
            if (this.store.nearestDistance(cpu.icount) > 0) this.takeCheckpoint();
          }
        }
        if (cpu.icount >= limit) return { kind: "step" };
        if (!this.live && cpu.icount >= this.end) return { kind: "end" };
        if (o.signal?.aborted) return { kind: "interrupted" };
        if (sinceYield >= this.yieldEvery) {
          sinceYield = 0;
          await tick();
          if (o.signal?.aborted) return { kind: "interrupted" };
        }
        let lim = Math.min(limit, cpu.icount + this.yieldEvery);
        if (!this.live) {
          lim = Math.min(lim, this.end);
          if (this.ei < this.events.length) lim = Math.min(lim, this.events[this.ei]!.icount);
          if (spotI < spots.length) lim = Math.min(lim, spots[spotI]!);
          if (o.regular) lim = Math.min(lim, (Math.floor(cpu.icount / interval) + 1) * interval);
        }
        if (this.live && this.liveInput) lim = this.liveInput.limit(lim);
        if (lim <= cpu.icount) lim = cpu.icount + 1; // cannot happen on a canonical path; be safe
        const before = cpu.icount;
        this.lastRaiseAt = -1;
        m.ignoreBpOnce = ignore;
        ignore = -1;
        const r: RunStop = m.runUntil(lim);
        if (this.live) this.liveInput?.afterRun(r);
        sinceYield += cpu.icount - before;
        this.stats.replayed += cpu.icount - before;
        this.canonical = r.kind === "limit";
        switch (r.kind) {
          case "limit": break;
          case "breakpoint":
            this.canonical = this.lastRaiseAt !== cpu.icount;
            if (!o.armed) {
              // Resume past it, as a continue does (the same execution as without the breakpoint).
              ignore = r.addr;
              if (++passed >= PASS_HITS && !bpsOut) { cpu.setBreakpoints([]); bpsOut = true; }
              break;
            }
            return { kind: "breakpoint", addr: r.addr };
          case "watch": this.normalize(); return { kind: "watch", type: r.type, addr: r.addr };
          case "delivered":
            this.canonical = false;
            return { kind: "step" };
          case "stuck":
            // Exceptions with nothing retiring: the guest can make no further progress.
            this.canonical = true;
            return { kind: "end" };
          case "exit":
            this.canonical = true;
            if (!this.live) return { kind: "end" };
            m.flushOutput();
            this.exitedStatus = r.status;
            this.liveInput?.finish("exit", r.status);
            return { kind: "exited", status: r.status };
          case "halted": case "shutdown":
            this.canonical = true;
            if (!this.live) return { kind: "end" };
            m.flushOutput();
            this.exitedStatus = 0;
            this.liveInput?.finish(r.kind, 0);
            return { kind: "exited", status: 0 };
          case "idle":
            this.canonical = true;
            if (!this.live) {
              // Idle with no event due: the recording ended here (or the log and this build disagree).
              return { kind: "end" };
            }
            // Live: skip ahead to the next scripted input, if any.
            if (this.liveInput?.onIdle()) break;
            // Live with nothing to wake the guest: wait for ^C.
            for (;;) {
              if (o.signal?.aborted) return { kind: "interrupted" };
              await new Promise((res) => setTimeout(res, 20));
            }
        }
      }
    } finally {
      if (bpsOut) cpu.setBreakpoints(this.breakpoints);
      if (unwatch) cpu.setWatchpoints(this.watchpoints);
    }
  }

  /** After a watch stop: fire what is due at this icount and inject its events (= canonical). */
  private normalize(): void {
    const m = this.m;
    const r = m.runUntil(m.cpu.icount); // fires due deadlines, executes nothing
    if (r.kind === "limit") {
      this.canonical = true;
      this.injectDue();
    }
  }

  /** Move to the canonical state at `target` (clamped to the recording), taking step-cache checkpoints on the way back. */
  async seek(target: number, signal?: AbortSignal): Promise<EngineStop> {
    if (this.live) throw new Error("not replaying (live)");
    target = Math.max(this.begin, Math.min(this.end, Math.floor(target)));
    const cur = this.m.cpu.icount;
    if (!(target === cur && this.canonical)) {
      const c = this.store.atOrBefore(target)!;
      const backwards = target < cur || (target === cur && !this.canonical);
      // Restore if going back, or if a checkpoint is closer to the target than we are.
      if (backwards || c.icount > cur) this.restore(c);
      const spots = backwards ? this.stepSpots(this.m.cpu.icount, target) : undefined;
      const r = await this.runForward(target, { armed: false, spots, signal, regular: !backwards });
      if (r.kind === "interrupted") return r;
    }
    if (this.m.cpu.icount !== target) return { kind: "end" };
    return target === this.begin ? { kind: "begin" } : target === this.end ? { kind: "end" } : { kind: "step" };
  }

  /** Checkpoint positions before a reverse target: T - G, T - 2G, T - 4G, ... (after `from`). */
  private stepSpots(from: number, target: number): number[] {
    const out: number[] = [];
    for (let g = this.stepGap; target - g > from; g *= 2) {
      const s = target - g;
      if (this.store.wanted(s, target)) out.push(s);
    }
    return out.reverse();
  }

  /** One instruction forward (or to the first watchpoint hit by it). */
  async stepForward(signal?: AbortSignal): Promise<EngineStop> {
    if (this.exitedStatus !== null) return { kind: "exited", status: this.exitedStatus };
    if (!this.live && this.m.cpu.icount >= this.end) return { kind: "end" };
    const pc = this.linearPc();
    const target = this.m.cpu.icount + 1;
    // A step that takes an interrupt (or faults) stops at the handler's first instruction, with
    // nothing retired: a non-canonical state at the same icount, like a breakpoint there.
    this.m.cpu.stopOnDelivery = true;
    let r: EngineStop;
    try {
      r = await this.runForward(target, { armed: true, ignoreBpAt: pc, signal });
    } finally {
      this.m.cpu.stopOnDelivery = false;
    }
    if (r.kind === "breakpoint") return { kind: "step" }; // an interrupt took us to a breakpoint in its handler
    return r;
  }

  /** Un-execute the previous instruction. Reports a watchpoint if that instruction hit one. */
  async stepBack(signal?: AbortSignal): Promise<EngineStop> {
    if (this.live) throw new Error("not replaying (live)");
    this.reversed = true;
    const cur = this.m.cpu.icount;
    if (cur <= this.begin) {
      if (!this.canonical) await this.seek(this.begin, signal);
      return { kind: "begin" };
    }
    // From a non-canonical stop (just after an interrupt or fault was delivered at this icount)
    // the previous state is the canonical one at the same icount, before the delivery.
    const target = this.canonical ? cur - 1 : cur;
    const r = await this.seek(target, signal);
    if (r.kind === "interrupted") return r;
    if (this.watchpoints.length) {
      // Did the instruction we just un-executed touch a watched range? Run it again and see.
      const c = this.takeCheckpoint();
      const f = await this.runForward(target + 1, { armed: true, ignoreBpAt: this.linearPc() });
      this.restore(c);
      if (f.kind === "watch") return f;
    }
    return target === this.begin ? { kind: "begin" } : { kind: "step" };
  }

  /** Continue forward until a breakpoint, a watchpoint, the end of the log or an abort. */
  async continueForward(signal?: AbortSignal): Promise<EngineStop> {
    if (this.exitedStatus !== null) return { kind: "exited", status: this.exitedStatus };
    if (!this.live && this.m.cpu.icount >= this.end) return { kind: "end" };
    return this.runForward(Infinity, { armed: true, ignoreBpAt: this.linearPc(), signal, regular: true });
  }

  /**
   * Continue backwards: the last breakpoint or watchpoint stop before the current position, or
   * the start of the log. Watchpoint stops are reported at the accessing instruction, before it.
   */
  async continueBackward(signal?: AbortSignal): Promise<EngineStop> {
    if (this.live) throw new Error("not replaying (live)");
    this.reversed = true;
    const start = this.m.cpu.icount;
    let segEnd = start;
    const armed = this.breakpoints.size > 0 || this.watchpoints.length > 0;
    while (armed && segEnd > this.begin) {
      const c = this.store.atOrBefore(segEnd - 1)!;
      const hit = await this.lastHitIn(c, segEnd, signal);
      if (hit === "interrupted") {
        // Leave the machine somewhere sensible: where the search had got to.
        await this.seek(c.icount);
        return { kind: "interrupted" };
      }
      if (hit) return this.reproduce(hit, signal);
      segEnd = c.icount;
    }
    const r = await this.seek(this.begin, signal);
    return r.kind === "interrupted" ? r : { kind: "begin" };
  }

  /** Replay [c, end) armed, return the last stop strictly before `end` (reverse order). */
  private async lastHitIn(c: Checkpoint, end: number, signal?: AbortSignal): Promise<Hit | null | "interrupted"> {
    this.restore(c);
    let last: Hit | null = null;
    let ignore = -1;
    for (;;) {
      // No step-cache checkpoints here: only the segment with the hit needs them, and
      // reproduce() takes them on its way to the hit.
      const r = await this.runForward(end, { armed: true, ignoreBpAt: ignore, signal });
      ignore = -1;
      if (r.kind === "interrupted") return "interrupted";
      if (r.kind === "breakpoint") {
        const at = this.m.cpu.icount;
        if (at < end) {
          last = { at, key: 2 * at, stop: r, canonical: this.canonical };
          // Checkpoint hits (at most one per HIT_GAP instructions), so that reproducing the
          // last one replays a short stretch instead of the whole segment again.
          if (this.canonical && this.store.nearestDistance(at) >= HIT_GAP) this.takeCheckpoint();
        }
        ignore = r.addr;
        continue;
      }
      if (r.kind === "watch") {
        const at = Math.max(this.m.cpu.icount - 1, c.icount);
        if (at < end && (!last || 2 * at + 1 >= last.key)) last = { at, key: 2 * at + 1, stop: r, canonical: true };
        continue;
      }
      return last; // step (reached end), or the end of the log
    }
  }

  /** Put the machine in the state of a reverse stop found by lastHitIn. */
  private async reproduce(hit: Hit, signal?: AbortSignal): Promise<EngineStop> {
    const r = await this.seek(hit.at, signal);
    if (r.kind === "interrupted") return r;
    if (!hit.canonical) {
      // The stop came after an interrupt/fault delivery at this icount: run into it again.
      const c = this.takeCheckpoint();
      const f = await this.runForward(hit.at + 1, { armed: true });
      if (!(f.kind === "breakpoint" && this.m.cpu.icount === hit.at)) this.restore(c);
    }
    return hit.stop;
  }

  /** Take a user checkpoint at the current position (must be canonical). */
  userCheckpoint(): Checkpoint {
    if (this.live) throw new Error("not replaying (live)");
    if (!this.canonical) throw new Error("the machine is between two canonical states here (after an interrupt delivery); step first");
    return this.takeCheckpoint(true);
  }

  /**
   * Stop consuming the log: the machine continues live from here, without logged input.
   * `input` (called once, after the checkpoints are dropped) supplies scripted host input and
   * the recording of the live part (see live.ts).
   */
  goLive(input?: (m: Machine) => LiveInput | null): void {
    if (this.live) return;
    this.live = true;
    this.store.detach();
    this.m.hostDeadlineNs = Infinity;
    this.liveInput = input?.(this.m) ?? null;
  }

  /** Linear address of the next instruction. */
  linearPc(): number {
    return this.m.cpu.debug.pcAddress();
  }
}

/** An engine over an opened log, at the start of the recording. */
export function engineFromLog(opened: OpenedLog, opts: EngineOptions = {}): ReplayEngine {
  const m = machineFromLog(opened); // a log that starts from a snapshot begins at its icount
  const end = opened.log.trailer ? opened.log.trailer.finalIcount : opened.log.endIcount;
  return new ReplayEngine(m, opened.events, end, opts);
}
