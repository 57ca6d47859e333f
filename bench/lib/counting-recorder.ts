/** A Recorder that attributes log bytes to what caused them (input events, idle skips, hashes). */
import { Recorder } from "../../lib/replay/recorder.ts";
import type { InputEvent } from "../../lib/machine/machine.ts";

export interface ByteTally { count: number; bytes: number }

export class CountingRecorder extends Recorder {
  readonly tally: Record<string, ByteTally> = {};
  /** Guest-visible input bytes: serial bytes and scancode bytes (mouse: 3 per packet). */
  inputBytes = 0;
  /** Bytes the header took (written when the LogWriter was made). */
  readonly headerBytes = this.writer.bytesWritten;

  private measure(what: string, f: () => void): void {
    const p0 = this.writer.pendingBytes, w0 = this.writer.bytesWritten;
    f();
    const p1 = this.writer.pendingBytes, w1 = this.writer.bytesWritten;
    // A chunk closed by size inside f() moves bytes from pending to written: count both sides.
    const bytes = w1 === w0 ? p1 - p0 : (w1 - w0) - p0 + p1;
    const t = (this.tally[what] ??= { count: 0, bytes: 0 });
    t.count++;
    t.bytes += bytes;
  }

  override onEvent(icount: number, ev: InputEvent): void {
    if (ev.kind === "serial") this.inputBytes += 1;
    else if (ev.kind === "key") this.inputBytes += ev.bytes.length;
    else if (ev.kind === "mouse") this.inputBytes += 3;
    this.measure(ev.kind, () => super.onEvent(icount, ev));
  }

  override onHashPoint(icount: number): void {
    this.measure("hash", () => super.onHashPoint(icount));
  }

  /** Bytes of the trailer (final hashes), set by finish(). */
  trailerBytes = 0;

  override finish(reason: string, status: number): void {
    const before = this.writer.bytesWritten + this.writer.pendingBytes;
    super.finish(reason, status);
    this.trailerBytes = this.writer.bytesWritten - before;
  }

  bytesOf(...kinds: string[]): number {
    return kinds.reduce((s, k) => s + (this.tally[k]?.bytes ?? 0), 0);
  }
  countOf(...kinds: string[]): number {
    return kinds.reduce((s, k) => s + (this.tally[k]?.count ?? 0), 0);
  }
}
