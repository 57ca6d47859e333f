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
    m.cpu.flushTlb();
  }

  static cpuBytes(m: Machine): Uint8Array {
    const w = new StateWriter(512);
    m.cpu.save(w);
    return w.finish();
  }
}
