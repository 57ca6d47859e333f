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
/**
 * Bytes after guest RAM, in the same buffer, for the CPU's own arrays (registers, segment
 * cache, TLBs: `stateArray`). Translated WebAssembly code then reads guest RAM (at offset 0)
 * and the CPU state it needs from one memory. Untouched pages cost no host memory.
 */
export const STATE_AREA_BYTES = 20 << 20;
const WASM_PAGE = 65536;

type TypedArrayOf<T> = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; new (length: number): T; readonly BYTES_PER_ELEMENT: number };

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

  /**
   * The WebAssembly memory that holds RAM and the state area, or null when the engine could
   * not provide one (the same layout then sits in an ordinary ArrayBuffer).
   */
  readonly wasmMemory: WebAssembly.Memory | null;
  private stateNext: number;
  private readonly stateEnd: number;

  constructor(bytes: number, stateBytes = STATE_AREA_BYTES) {
    if (bytes % PAGE_SIZE !== 0) throw new Error("RAM size must be a multiple of 4 KiB");
    const total = Math.ceil((bytes + stateBytes) / WASM_PAGE) * WASM_PAGE;
    let memory: WebAssembly.Memory | null = null;
    try {
      memory = new WebAssembly.Memory({ initial: total / WASM_PAGE, maximum: total / WASM_PAGE });
    } catch {
      memory = null;
    }
    this.wasmMemory = memory;
    const buf = memory !== null ? memory.buffer : new ArrayBuffer(total);
    this.ram = new Uint8Array(buf, 0, bytes);
    this.stateNext = bytes;
    this.stateEnd = total;
    this.pages = bytes >>> PAGE_SHIFT;
    this.readonly = new Uint8Array(this.pages);
    this.code = new Uint32Array(this.pages);
    this.watched = new Uint8Array(this.pages);
  }

  /**
   * `n` elements of the state area as a typed array (aligned to 4 KiB when that large, else to
   * 8 bytes), zeroed; a separate array when the area is used up (translated code then stays
   * JavaScript: the CPU checks that its arrays share the RAM's buffer).
   */
  stateArray<T>(type: TypedArrayOf<T>, n: number): T {
    const size = n * type.BYTES_PER_ELEMENT;
    const align = size >= PAGE_SIZE ? PAGE_SIZE : 8;
    const at = Math.ceil(this.stateNext / align) * align;
    if (at + size > this.stateEnd) return new type(n);
    this.stateNext = at + size;
    return new type(this.ram.buffer, at, n);
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
