/**
 * Incremental checkpoints of a replaying machine, under a memory budget.
 *
 * A checkpoint is the machine's device/CPU state (Machine.saveState bytes) plus the RAM pages
 * that were written since the checkpoint the machine last started from (its *base*: the one
 * last taken or restored). The first checkpoint stores every page. RAM contents at checkpoint C
 * are, for every page, the version stored by the latest checkpoint at or before C that stores
 * that page: writes between two consecutive checkpoints are always stored by the later one
 * (a checkpoint inserted between A and B stores a subset of what B stores; deleting X moves
 * the pages that X's successor lacks into the successor), so the rule survives insertion and
 * thinning in any order.
 *
 * Pages live in a slab of 1 MiB chunks allocated on demand up to the budget and recycled
 * through a free list; all-zero pages take no space. Restoring copies only the pages that can
 * differ from what the machine holds now: the pages written since the base, plus the pages
 * stored by checkpoints between the base and the target. Restoring drops the CPU's block
 * cache and TLBs (no stale translation can run) and marks the pages it rewrote dirty for every
 * other dirty tracker (the state hasher), so hashes stay exact.
 *
 * Density: `thin(pos)` keeps checkpoints dense near the current position and exponentially
 * sparser further away (a checkpoint is kept only if it is at least max(minGap, d/K) away from
 * the previous one kept, d = its distance from pos), like rr; when over budget K is lowered
 * until the store fits. Pinned checkpoints (the first one, the base, user checkpoints) are
 * never dropped.
 */
import type { Machine } from "../machine/machine.ts";
import { StateReader, StateWriter } from "../machine/snapshot.ts";
import { PAGE_SHIFT, PAGE_SIZE } from "../machine/ram.ts";

const CHUNK_PAGES = 256; // 1 MiB
/** Slot number for an all-zero page (no storage). */
const ZERO = -1;
/** Fixed bookkeeping per checkpoint counted against the budget (maps, arrays, objects). */
const CKPT_OVERHEAD = 512;
/** Bookkeeping per stored page version. */
const PAGE_OVERHEAD = 16;

export class Checkpoint {
  /** Pages whose versions this checkpoint holds (page numbers). */
  pages: number[] = [];
  constructor(
    readonly id: number,
    readonly icount: number,
    /** Caller data that must come back on restore (the replay engine: next event index). */
    readonly meta: number,
    readonly state: Uint8Array,
    /** Taken by the user (monitor checkpoint): never thinned. */
    public user: boolean,
  ) {}
}

export interface CheckpointStoreOptions {
  /** Memory budget in bytes for page data and states (default 512 MiB). */
  memBudget?: number;
  /** Density: about K checkpoints per doubling of distance from the current position (default 12). */
  density?: number;
  /** Never keep two thinnable checkpoints closer than this many instructions (default 64). */
  minGap?: number;
}

export interface CheckpointStats {
  count: number;
  /** Stored page versions (zero pages excluded). */
  pages: number;
  /** Bytes of page data in use. */
  pageBytes: number;
  /** Bytes of chunk memory allocated (in use + free slots). */
  allocatedBytes: number;
  stateBytes: number;
  /** Everything counted against the budget. */
  usedBytes: number;
  budget: number;
}

export class CheckpointStore {
  readonly budget: number;
  density: number;
  readonly minGap: number;
  /** Sorted by icount, no two with the same icount. */
  private list: Checkpoint[] = [];
  private nextId = 1;
  private readonly tracker: Uint8Array;
  private base: Checkpoint | null = null;
  private readonly npages: number;
  /** Per page: icounts of its stored versions (ascending) and the matching slots. */
  private readonly verIcount: number[][];
  private readonly verSlot: number[][];
  private readonly chunks: Uint8Array[] = [];
  private freeSlots: number[] = [];
  private slotsInUse = 0;
  private stateBytes = 0;
  private versions = 0;
  private readonly ram32: Uint32Array;
  /** The tracker as 32-bit words (4 pages at a time) when aligned, for fast scans. */
  private readonly tracker32: Uint32Array | null;
  /** Scratch for restore: page list and an epoch mark per page (no allocation per restore). */
  private readonly todoList: Int32Array;
  private readonly mark: Uint32Array;
  private markEpoch = 0;

  constructor(private readonly m: Machine, opts: CheckpointStoreOptions = {}) {
    this.budget = opts.memBudget ?? 512 * 1024 * 1024;
    this.density = opts.density ?? 12;
    this.minGap = opts.minGap ?? 64;
    this.npages = m.mem.pages;
    this.tracker = m.mem.addDirtyTracker();
    const t = this.tracker;
    this.tracker32 = t.byteOffset % 4 === 0 && t.length % 4 === 0 ? new Uint32Array(t.buffer, t.byteOffset, t.length >>> 2) : null;
    this.todoList = new Int32Array(this.npages);
    this.mark = new Uint32Array(this.npages);
    this.verIcount = Array.from({ length: this.npages }, () => []);
    this.verSlot = Array.from({ length: this.npages }, () => []);
    const r = m.ram;
    this.ram32 = new Uint32Array(r.buffer, r.byteOffset, r.length >>> 2);
  }

  get checkpoints(): readonly Checkpoint[] {
    return this.list;
  }

  get baseCheckpoint(): Checkpoint | null {
    return this.base;
  }

  /** The latest checkpoint at or before `icount` (null if none). */
  atOrBefore(icount: number): Checkpoint | null {
    const i = this.indexAtOrBefore(icount);
    return i >= 0 ? this.list[i]! : null;
  }

  /** The earliest checkpoint strictly after `icount`. */
  after(icount: number): Checkpoint | null {
    const i = this.indexAtOrBefore(icount) + 1;
    return i < this.list.length ? this.list[i]! : null;
  }

  byId(id: number): Checkpoint | null {
    return this.list.find((c) => c.id === id) ?? null;
  }

  /** Distance (instructions) from icount to the nearest checkpoint. */
  nearestDistance(icount: number): number {
    const i = this.indexAtOrBefore(icount);
    let d = Infinity;
    if (i >= 0) d = icount - this.list[i]!.icount;
    if (i + 1 < this.list.length) d = Math.min(d, this.list[i + 1]!.icount - icount);
    return d;
  }

  private indexAtOrBefore(icount: number): number {
    let lo = 0, hi = this.list.length - 1, ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.list[mid]!.icount <= icount) { ans = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return ans;
  }

  /**
   * Checkpoint the machine as it is now. If one exists at this icount already it is returned
   * (the machine must then be in that same state; the replay engine only takes checkpoints at
   * canonical positions). `meta` comes back with the checkpoint.
   */
  take(meta: number, user = false): Checkpoint {
    const icount = this.m.cpu.icount;
    const i = this.indexAtOrBefore(icount);
    if (i >= 0 && this.list[i]!.icount === icount) {
      const c = this.list[i]!;
      if (user) c.user = true;
      return c;
    }
    const w = new StateWriter(8192);
    this.m.saveState(w);
    const c = new Checkpoint(this.nextId++, icount, meta, w.finish(), user);
    this.stateBytes += c.state.length;
    const full = this.list.length === 0 || this.base === null;
    if (full) for (let p = 0; p < this.npages; p++) this.storePage(c, p);
    else {
      const list = this.todoList, n = this.dirtyPages(list, 0, 0);
      for (let k = 0; k < n; k++) this.storePage(c, list[k]!);
    }
    this.list.splice(i + 1, 0, c);
    this.setBase(c);
    return c;
  }

  /**
   * Append the pages written since the base to `out` from index `n`; returns the new length.
   * With `ep` > 0 also marks them with that epoch.
   */
  private dirtyPages(out: Int32Array, n: number, ep: number): number {
    const t = this.tracker, t32 = this.tracker32, mark = this.mark;
    if (t32 !== null) {
      for (let w = 0; w < t32.length; w++) {
        if (t32[w] === 0) continue;
        for (let p = w << 2, e = p + 4; p < e; p++) if (t[p]) { out[n++] = p; if (ep) mark[p] = ep; }
      }
    } else {
      for (let p = 0; p < this.npages; p++) if (t[p]) { out[n++] = p; if (ep) mark[p] = ep; }
    }
    return n;
  }

  private storePage(c: Checkpoint, p: number): void {
    const slot = this.isZeroPage(p) ? ZERO : this.allocSlot();
    if (slot !== ZERO) this.slotData(slot).set(this.m.ram.subarray(p << PAGE_SHIFT, (p + 1) << PAGE_SHIFT));
    const vi = this.verIcount[p]!, vs = this.verSlot[p]!;
    // insert keeping ascending icount
    let k = vi.length;
    while (k > 0 && vi[k - 1]! > c.icount) k--;
    vi.splice(k, 0, c.icount);
    vs.splice(k, 0, slot);
    c.pages.push(p);
    this.versions++;
  }

  private isZeroPage(p: number): boolean {
    const a = this.ram32;
    const s = (p << PAGE_SHIFT) >>> 2, e = s + (PAGE_SIZE >>> 2);
    for (let i = s; i < e; i++) if (a[i] !== 0) return false;
    return true;
  }

  private allocSlot(): number {
    const f = this.freeSlots.pop();
    this.slotsInUse++;
    if (f !== undefined) return f;
    const n = this.chunks.length;
    this.chunks.push(new Uint8Array(CHUNK_PAGES * PAGE_SIZE));
    for (let k = CHUNK_PAGES - 1; k >= 1; k--) this.freeSlots.push(n * CHUNK_PAGES + k);
    return n * CHUNK_PAGES;
  }

  private freeSlot(slot: number): void {
    if (slot === ZERO) return;
    this.freeSlots.push(slot);
    this.slotsInUse--;
  }

  private slotData(slot: number): Uint8Array {
    const ch = this.chunks[Math.floor(slot / CHUNK_PAGES)]!;
    const o = (slot % CHUNK_PAGES) * PAGE_SIZE;
    return ch.subarray(o, o + PAGE_SIZE);
  }

  private setBase(c: Checkpoint): void {
    this.base = c;
    this.m.mem.clearTracker(this.tracker);
  }

  /** Put the machine in the state of checkpoint `c`. */
  restore(c: Checkpoint): void {
    if (!this.list.includes(c)) throw new Error(`checkpoint ${c.id} was dropped`);
    const m = this.m;
    const ram = m.ram;
    // The pages that can differ: written since the base, or stored between the base and c.
    const todo = this.todoList;
    let n = 0;
    if (this.base === null) for (let p = 0; p < this.npages; p++) todo[n++] = p;
    else {
      if (++this.markEpoch === 0xffffffff) { this.mark.fill(0); this.markEpoch = 1; }
      const ep = this.markEpoch, mark = this.mark;
      n = this.dirtyPages(todo, 0, ep);
      const lo = Math.min(this.base.icount, c.icount), hi = Math.max(this.base.icount, c.icount);
      for (let i = this.indexAtOrBefore(lo) + 1; i < this.list.length && this.list[i]!.icount <= hi; i++) {
        for (const p of this.list[i]!.pages) if (mark[p] !== ep) { mark[p] = ep; todo[n++] = p; }
      }
    }
    for (let k = 0; k < n; k++) {
      const p = todo[k]!;
      const slot = this.versionAt(p, c.icount);
      const o = p << PAGE_SHIFT;
      if (slot === ZERO) ram.fill(0, o, o + PAGE_SIZE);
      else ram.set(this.slotData(slot), o);
      m.mem.markDirty(p);
      m.cpu.invalidatePage(p);
    }
    // Translated code on pages that were not rewritten is still exact: keep it.
    m.restoreState(new StateReader(c.state), true);
    this.setBase(c);
  }

  private versionAt(p: number, icount: number): number {
    const vi = this.verIcount[p]!;
    let lo = 0, hi = vi.length - 1, ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (vi[mid]! <= icount) { ans = mid; lo = mid + 1; } else hi = mid - 1;
    }
    if (ans < 0) throw new Error(`checkpoint store: no version of page ${p} at icount ${icount}`);
    return this.verSlot[p]![ans]!;
  }

  /** The machine's RAM no longer descends from any checkpoint (it went live and diverged). */
  detach(): void {
    this.base = null;
  }

  /** Drop a checkpoint (not the first one, not the base). */
  drop(c: Checkpoint): boolean {
    const i = this.list.indexOf(c);
    if (i <= 0 || c === this.base) return false;
    const succ = i + 1 < this.list.length ? this.list[i + 1]! : null;
    for (const p of c.pages) {
      const vi = this.verIcount[p]!, vs = this.verSlot[p]!;
      const k = vi.indexOf(c.icount);
      if (k < 0) continue;
      if (succ && !(k + 1 < vi.length && vi[k + 1] === succ.icount)) {
        vi[k] = succ.icount; // the successor inherits this version
        succ.pages.push(p);
      } else {
        this.freeSlot(vs[k]!);
        vi.splice(k, 1);
        vs.splice(k, 1);
        this.versions--;
      }
    }
    this.stateBytes -= c.state.length;
    this.list.splice(i, 1);
    return true;
  }

  usedBytes(): number {
    return this.slotsInUse * PAGE_SIZE + this.stateBytes + this.list.length * CKPT_OVERHEAD + this.versions * PAGE_OVERHEAD;
  }

  stats(): CheckpointStats {
    return {
      count: this.list.length,
      pages: this.slotsInUse,
      pageBytes: this.slotsInUse * PAGE_SIZE,
      allocatedBytes: this.chunks.length * CHUNK_PAGES * PAGE_SIZE,
      stateBytes: this.stateBytes,
      usedBytes: this.usedBytes(),
      budget: this.budget,
    };
  }

  /**
   * Thin around position `pos`: keep checkpoints at least max(minGap, d/K) apart, d = distance
   * from pos, going outwards in both directions; lower K while over budget.
   */
  thin(pos: number): void {
    this.thinWith(pos, this.density);
    let k = this.density;
    while (this.usedBytes() > this.budget && k > 1) {
      k = Math.max(1, Math.floor(k / 2));
      this.thinWith(pos, k);
    }
    if (this.usedBytes() > this.budget) {
      // Last resort: everything but the pinned ones and the nearest on each side.
      const keep = new Set<Checkpoint>([this.atOrBefore(pos)!, this.after(pos)!].filter(Boolean));
      for (const c of this.list.slice()) if (!keep.has(c) && !this.pinned(c)) this.drop(c);
    }
  }

  private pinned(c: Checkpoint): boolean {
    return c === this.list[0] || c === this.base || c.user;
  }

  private thinWith(pos: number, k: number): void {
    const i0 = this.indexAtOrBefore(pos);
    const list = this.list;
    const doomed: Checkpoint[] = [];
    // A checkpoint goes only if the hole its removal leaves (from the last one kept, nearer
    // pos, to its other neighbour) is at most twice the wanted gap at its distance d,
    // max(minGap, d/k): kept ones end up between one and two gaps apart. (Comparing only with
    // the last one kept dropped every checkpoint of an evenly spaced series as it crossed
    // distance k*spacing, one per step as pos advanced, so none survived beyond it.)
    let last = pos;
    for (let i = i0; i >= 0; i--) {
      const c = list[i]!;
      const gap = Math.max(this.minGap, (pos - c.icount) / k);
      if (this.pinned(c) || i === i0 || i === 0 || last - list[i - 1]!.icount > 2 * gap) last = c.icount;
      else doomed.push(c);
    }
    last = pos;
    for (let i = i0 + 1; i < list.length; i++) {
      const c = list[i]!;
      const gap = Math.max(this.minGap, (c.icount - pos) / k);
      if (this.pinned(c) || i === i0 + 1 || i === list.length - 1 || list[i + 1]!.icount - last > 2 * gap) last = c.icount;
      else doomed.push(c);
    }
    for (const c of doomed) this.drop(c);
  }

  /** Would a checkpoint at `icount` be kept by the density rule around `pos`? */
  wanted(icount: number, pos: number): boolean {
    const d = Math.abs(pos - icount);
    return this.nearestDistance(icount) >= Math.max(this.minGap, d / this.density);
  }
}
