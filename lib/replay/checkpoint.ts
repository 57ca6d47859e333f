/**
 * Checkpoints: the complete machine (CPU, every device, RAM) at one icount.
 *
 * `Snapshot` is a full copy. Restoring one gives the same state hash, and drops the block
 * cache so no stale translation survives.
 */
import type { Machine } from "../machine/machine.ts";
import { StateReader, StateWriter } from "../machine/snapshot.ts";

export class Snapshot {
  private constructor(readonly icount: number, readonly state: Uint8Array, readonly ram: Uint8Array) {}

  static take(m: Machine): Snapshot {
    const w = new StateWriter(4096);
    m.saveState(w);
    const ram = new Uint8Array(m.ram.length);
    ram.set(m.ram);
    return new Snapshot(m.cpu.icount, w.finish(), ram);
  }

  restore(m: Machine): void {
    m.ram.set(this.ram);
    m.mem.markAllDirty();
    m.restoreState(new StateReader(this.state));
    m.cpu.flushBlocks();
  }

  /** A snapshot over existing bytes (not copied: the caller must not change them). */
  static of(icount: number, state: Uint8Array, ram: Uint8Array): Snapshot {
    return new Snapshot(icount, state, ram);
  }

  static cpuBytes(m: Machine): Uint8Array {
    const w = new StateWriter(512);
    m.cpu.save(w);
    return w.finish();
  }
}

/**
 * One snapshot of a running machine kept current cheaply: `update()` copies only the RAM pages
 * written since the previous update (a dirty tracker of its own) into a buffer allocated once,
 * and saves the CPU and device state. For a replay that wants "the last good point" at every
 * hash record (verify) without copying all of RAM each time.
 */
export class RollingSnapshot {
  private readonly ram: Uint8Array;
  private readonly dirty: Uint8Array;
  private state: Uint8Array = new Uint8Array(0);
  icount = 0;

  constructor(private readonly m: Machine) {
    this.ram = new Uint8Array(m.ram.length);
    this.dirty = m.mem.addDirtyTracker();
    this.update();
  }

  update(): void {
    const d = this.dirty, src = this.m.ram, dst = this.ram, n = d.length;
    for (let p = 0; p < n; p++) {
      if (d[p] === 0) continue;
      let q = p + 1;
      while (q < n && d[q] !== 0) q++;
      dst.set(src.subarray(p << 12, q << 12), p << 12);
      p = q;
    }
    this.m.mem.clearTracker(d); // (also takes the pages out of the write TLB)
    const w = new StateWriter(4096);
    this.m.saveState(w);
    this.state = w.finish();
    this.icount = this.m.cpu.icount;
  }

  /** The state at the last update as a Snapshot (sharing this object's RAM buffer). */
  snapshot(): Snapshot {
    return Snapshot.of(this.icount, this.state, this.ram);
  }
}
