/**
 * Guest physical RAM with per-page (4 KiB) attributes and dirty tracking.
 *
 * Several consumers track dirtiness independently (the state hasher, the checkpointer), each
 * with its own byte-per-page map. The CPU's write fast path is allowed only on a page that is
 * already dirty in every map, holds no translated code, is not ROM and is not watched; any
 * other write goes through `slowWrite`, which marks the page dirty everywhere and reports code
 * and watchpoint hits. When a consumer clears its map the CPU is told to drop the write fast
 * path (its write TLB) so that the next write to each page is seen again.
 */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

export class PhysMem {
  readonly ram: Uint8Array;
  readonly pages: number;
  /** 1 = read-only (ROM) page: guest writes are ignored. */
  readonly readonly: Uint8Array;
  /** Number of cached code blocks that start in (or reach into) each page. */
  readonly code: Uint32Array;
  /** 1 = a debugger watchpoint covers part of this page. */
  readonly watched: Uint8Array;
  private readonly trackers: Uint8Array[] = [];
  /** Called when fast-write eligibility of some pages may have been revoked. */
  onRevokeFastWrite: () => void = () => {};

  constructor(bytes: number) {
    if (bytes % PAGE_SIZE !== 0) throw new Error("RAM size must be a multiple of 4 KiB");
    this.ram = new Uint8Array(bytes);
    this.pages = bytes >>> PAGE_SHIFT;
    this.readonly = new Uint8Array(this.pages);
    this.code = new Uint32Array(this.pages);
    this.watched = new Uint8Array(this.pages);
  }

  /** A new dirty map; every page starts dirty so that a new consumer sees everything once. */
  addDirtyTracker(): Uint8Array {
    const d = new Uint8Array(this.pages).fill(1);
    this.trackers.push(d);
    return d;
  }

  /** Mark every page clean in one tracker's map (e.g. after hashing or checkpointing). */
  clearTracker(d: Uint8Array): void {
    d.fill(0);
    this.onRevokeFastWrite();
  }

  /** Mark a page dirty in every tracker (used by the write slow path and by host writes). */
  markDirty(page: number): void {
    const t = this.trackers;
    for (let i = 0; i < t.length; i++) t[i]![page] = 1;
  }

  markAllDirty(): void {
    for (const t of this.trackers) t.fill(1);
  }

  /** True if a write to this page may bypass the slow path. */
  fastWritable(page: number): boolean {
    if (this.readonly[page] || this.code[page] || this.watched[page]) return false;
    const t = this.trackers;
    for (let i = 0; i < t.length; i++) if (!t[i]![page]) return false;
    return true;
  }

  /** Write bytes from the host side (loaders, checkpoint restore, gdb): marks pages dirty. */
  hostWrite(addr: number, data: Uint8Array): void {
    this.ram.set(data, addr);
    const first = addr >>> PAGE_SHIFT, last = (addr + data.length - 1) >>> PAGE_SHIFT;
    for (let p = first; p <= last && data.length > 0; p++) this.markDirty(p);
  }
}
