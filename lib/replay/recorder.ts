/**
 * The recorder: an EventObserver for the driver that writes every injected host event with its
 * icount, hash records every `hashInterval` instructions, and a trailer with the final hashes.
 * Chunks end at hash records (deterministic). The chunk being built is persisted as the
 * file's provisional tail at least every 100 ms of host time (the driver's ticks), at exit and
 * on signals, so an interrupted recording keeps everything up to its last flush while two
 * recordings of the same run stay byte-identical.
 *
 * `Recorder.startFrom` records from a machine that is already running (go live under `rrx gdb`):
 * the log (format v2) starts with a SNAPSHOT chunk holding the machine's complete state, and
 * its icounts continue from there, so it replays on its own.
 */
import type { EventObserver } from "../machine/driver.ts";
import type { InputEvent, Machine } from "../machine/machine.ts";
import { EventKind, type LogHeader, type PackedImage } from "./log/format.ts";
import { LogWriter, type LogSink } from "./log/writer.ts";
import { MachineHasher } from "./session.ts";
import { applyState, captureState, decodeCaptured } from "./start-state.ts";

export interface StartFromOptions {
  /** Images to pack (all of header.compared.images), so the log needs nothing else. */
  pack?: PackedImage[];
  hashInterval?: number;
  maxChunkBytes?: number;
}

export const DEFAULT_HASH_INTERVAL = 1 << 24;

export class Recorder implements EventObserver {
  private lastFlushMs = -Infinity;
  readonly hasher: MachineHasher;
  finished = false;

  constructor(private readonly m: Machine, readonly writer: LogWriter, readonly hashInterval = DEFAULT_HASH_INTERVAL) {
    this.hasher = new MachineHasher(m);
  }

  onEvent(icount: number, ev: InputEvent): void {
    logInputEvent(this.writer, icount, ev);
  }

  /** A hash record ends its chunk: chunk boundaries depend only on the guest's run. */
  onHashPoint(icount: number): void {
    this.writer.hash(icount, this.hasher.record());
    this.writer.flushChunk(icount);
  }

  /** Every 100 ms of host time the chunk being built is persisted as the file's tail. */
  onTick(icount: number, hostMs: number): void {
    if (hostMs - this.lastFlushMs >= 100) {
      this.writer.persist(icount);
      this.lastFlushMs = hostMs;
    }
  }

  /** Persist what we have (signals, crashes): the log stays replayable up to here. */
  flush(): void {
    if (!this.finished) this.writer.persist(this.m.cpu.icount);
  }

  /**
   * Write the trailer. `withHashes` false leaves the final state unhashed: for a stop that is
   * not the canonical state of its icount (a breakpoint after an interrupt delivery), which a
   * replay to that icount would not reproduce.
   */
  finish(reason: string, status: number, withHashes = true): void {
    if (this.finished) return;
    this.finished = true;
    this.writer.finish({ finalIcount: this.m.cpu.icount, reason, status, hashes: withHashes ? this.hasher.record() : undefined });
  }

  /**
   * Record from `m` as it is now. The log starts with a snapshot of the whole machine at its
   * current icount N (compared section key `snapshot`), and the machine is then restored from
   * that very snapshot, so the live run and any replay of the log start from identical state.
   * `header.compared` describes the machine's configuration (as for a fresh recording).
   */
  static startFrom(m: Machine, sink: LogSink, header: LogHeader, opts: StartFromOptions = {}): Recorder {
    const cap = captureState(m);
    applyState(m, decodeCaptured(cap, m.ram.length));
    const compared = { ...header.compared, snapshot: cap.info };
    const writer = new LogWriter(sink, { compared, host: header.host }, {
      pack: opts.pack, maxChunkBytes: opts.maxChunkBytes, snapshot: { icount: cap.icount, payload: cap.payload },
    });
    return new Recorder(m, writer, opts.hashInterval ?? DEFAULT_HASH_INTERVAL);
  }
}

export function logInputEvent(w: LogWriter, icount: number, ev: InputEvent): void {
  switch (ev.kind) {
    case "serial": w.event(icount, EventKind.SERIAL_RX, { port: ev.port, byte: ev.byte }); break;
    case "key": w.event(icount, EventKind.KEY, { bytes: Uint8Array.from(ev.bytes) }); break;
    case "mouse": w.event(icount, EventKind.MOUSE, { dx: ev.dx, dy: ev.dy, buttons: ev.buttons }); break;
    case "idle": w.event(icount, EventKind.IDLE_SKIP, { ns: ev.ns }); break;
  }
}
