/**
 * The recorder: an EventObserver for the driver that writes every injected host event with its
 * icount, hash records every `hashInterval` instructions, and a trailer with the final hashes.
 * Chunks end at hash records (deterministic). The chunk being built is persisted as the
 * file's provisional tail at least every 100 ms of host time (the driver's ticks), at exit and
 * on signals, so an interrupted recording keeps everything up to its last flush while two
 * recordings of the same run stay byte-identical.
 */
import type { EventObserver } from "../machine/driver.ts";
import type { InputEvent, Machine } from "../machine/machine.ts";
import { EventKind } from "./format.ts";
import { LogWriter } from "./log-writer.ts";
import { MachineHasher } from "./session.ts";

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

  finish(reason: string, status: number): void {
    if (this.finished) return;
    this.finished = true;
    this.writer.finish({ finalIcount: this.m.cpu.icount, reason, status, hashes: this.hasher.record() });
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
