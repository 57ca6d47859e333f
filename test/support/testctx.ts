/**
 * A fake DeviceContext for device unit tests: virtual time is set by the test, and IRQ
 * edges, output bytes, resets, exits and A20 changes are recorded.
 */
import type { DeviceContext } from "../../lib/machine/device.ts";
import { StateReader, StateWriter, type Stateful } from "../../lib/machine/snapshot.ts";

export interface IrqEvent { t: number; irq: number; level: boolean }

export class TestCtx implements DeviceContext {
  t = 0;
  irqEvents: IrqEvent[] = [];
  /** Current level of every IRQ line as last driven by the device. */
  irqLevels: boolean[] = new Array(16).fill(false);
  outputs: Record<string, number[]> = {};
  resets = 0;
  exits: number[] = [];
  a20 = false;
  a20Writes: boolean[] = [];
  deadlineChanges = 0;

  now(): number { return this.t; }
  setIrq(irq: number, level: boolean): void {
    this.irqEvents.push({ t: this.t, irq, level });
    this.irqLevels[irq] = level;
  }
  deadlinesChanged(): void { this.deadlineChanges++; }
  requestReset(): void { this.resets++; }
  requestExit(status: number): void { this.exits.push(status); }
  output(channel: string, bytes: Uint8Array): void {
    (this.outputs[channel] ??= []).push(...bytes);
  }
  setA20(enabled: boolean): void { this.a20 = enabled; this.a20Writes.push(enabled); }
  getA20(): boolean { return this.a20; }

  /** Number of rising edges seen on `irq`. */
  rises(irq: number): number {
    let n = 0;
    let lvl = false;
    for (const e of this.irqEvents) {
      if (e.irq !== irq) continue;
      if (e.level && !lvl) n++;
      lvl = e.level;
    }
    return n;
  }
  clearEvents(): void { this.irqEvents = []; }
}

/** Something with deadlines: advance virtual time to `t`, firing deadlines in order as the machine would. */
export interface Timed { nextDeadline(): number; onDeadline(): void }

export function advance(ctx: TestCtx, dev: Timed, t: number): void {
  for (let guard = 0; guard < 1_000_000; guard++) {
    const d = dev.nextDeadline();
    if (d > t) break;
    if (d > ctx.t) ctx.t = d;
    dev.onDeadline();
  }
  ctx.t = t;
}

export function saveBytes(s: Stateful): Uint8Array {
  const w = new StateWriter();
  s.save(w);
  return w.finish();
}

export function restoreBytes(s: Stateful, b: Uint8Array): void {
  const r = new StateReader(b);
  s.restore(r);
  if (!r.done) throw new Error(`trailing state bytes: ${b.length - r.pos}`);
}
