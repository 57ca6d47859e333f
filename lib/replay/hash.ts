/**
 * Deterministic state hashing.
 *
 * Hash function: xxHash64 (Bun.hash.xxHash64, the reference algorithm by Yann Collet),
 * rendered as 16 lowercase hex digits of the 64-bit value (most significant first).
 * xxHash64 is fully specified and endian-independent, so a hash is the same on every
 * machine and every run; hash.test.ts pins the published test vectors.
 *
 * Distinct seeds separate the domains (page hash vs. group hash vs. root), so a page
 * can never collide "structurally" with a node of the tree.
 */
import { saveToBytes, type Stateful } from "../machine/snapshot.ts";

/** Width in bytes of a hash produced here (xxHash64). Log records may also carry 16. */
export const HASH_BYTES = 8;
export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;
/** Pages per group node: RAM root = H(len, H(group0), H(group1), ...). */
export const PAGES_PER_GROUP = 64;

const SEED_BYTES = 0n;
const SEED_PAGE = 0x7272785f70616765n; // "rrx_page"
const SEED_GROUP = 0x7272785f67727570n; // "rrx_grup"
const SEED_ROOT = 0x7272785f726f6f74n; // "rrx_root"
const SEED_COMBINE = 0x7272785f636f6d62n; // "rrx_comb"

function xx(b: Uint8Array, seed: bigint): bigint {
  return BigInt.asUintN(64, BigInt(Bun.hash.xxHash64(b, seed)));
}

export function hex64(v: bigint): string {
  return v.toString(16).padStart(16, "0");
}

/** xxHash64 of the bytes (seed 0), as 16 hex digits. */
export function hashBytes(b: Uint8Array): string {
  return hex64(xx(b, SEED_BYTES));
}

/** xxHash64 as a bigint (seed 0 unless given). */
export function hashBytes64(b: Uint8Array, seed: bigint = SEED_BYTES): bigint {
  return xx(b, seed);
}

/** Hash of a component's serialised state (its save() bytes): the snapshot and the hash agree. */
export function hashStateful(s: Stateful): string {
  return hashBytes(saveToBytes(s));
}

/** Lowercase hex of bytes. */
export function bytesToHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i]! < 16 ? "0" : "") + b[i]!.toString(16);
  return s;
}

/** Parse hex (even length, [0-9a-fA-F]); returns null if it is not valid hex. */
export function hexToBytes(h: string): Uint8Array | null {
  if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) return null;
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Combine an ordered list of hex hashes into one (e.g. a whole-machine hash). */
export function combineHashes(hashes: readonly string[]): string {
  const parts = hashes.map((h) => {
    const b = hexToBytes(h);
    if (!b) throw new TypeError(`not a hex hash: ${JSON.stringify(h)}`);
    return b;
  });
  const buf = new Uint8Array(parts.reduce((n, b) => n + 1 + b.length, 0));
  let o = 0;
  for (const b of parts) { buf[o++] = b.length; buf.set(b, o); o += b.length; }
  return hex64(xx(buf, SEED_COMBINE));
}

/**
 * Incremental RAM hasher.
 *
 * `dirty` has one byte per 4 KiB page (page i = ram[i*4096, (i+1)*4096)); the memory write
 * path (and DMA, and image loading) sets dirty[i] = 1. update() rehashes exactly the dirty
 * pages, clears their bytes, rehashes the groups of 64 pages that contain them, and the root
 * over the group hashes (N/64 * 8 bytes: 4 KiB for 128 MiB of RAM). So a root costs
 * O(dirty pages + RAM/256 KiB) instead of O(RAM).
 *
 * A write that does not set its dirty byte is invisible until reset(); that is the contract
 * with the memory subsystem, and the verifier's full rehash (fullRoot()) catches violations.
 */
export class RamHasher {
  readonly pageCount: number;
  readonly groupCount: number;
  /** Per-page xxHash64, 8 bytes each, little-endian. */
  private pageBuf: Uint8Array;
  private pageView: DataView;
  /** Per-group xxHash64 over the group's page hashes, 8 bytes each, little-endian. */
  private groupBuf: Uint8Array;
  private groupView: DataView;
  private groupDirty: Uint8Array;
  private rootValue: bigint = 0n;
  private rootStale = true;
  /** Pages rehashed since construction (statistics, tests). */
  pagesHashed = 0;

  constructor(readonly ram: Uint8Array, readonly dirty: Uint8Array) {
    this.pageCount = Math.ceil(ram.length / PAGE_SIZE);
    if (dirty.length < this.pageCount) {
      throw new RangeError(`dirty bitmap has ${dirty.length} bytes, RAM has ${this.pageCount} pages`);
    }
    this.groupCount = Math.ceil(this.pageCount / PAGES_PER_GROUP);
    this.pageBuf = new Uint8Array(this.pageCount * 8);
    this.pageView = new DataView(this.pageBuf.buffer);
    this.groupBuf = new Uint8Array(this.groupCount * 8);
    this.groupView = new DataView(this.groupBuf.buffer);
    this.groupDirty = new Uint8Array(this.groupCount);
    this.reset();
  }

  /** Rehash every page (after a checkpoint restore or anything that bypassed `dirty`). */
  reset(): void {
    for (let p = 0; p < this.pageCount; p++) this.hashPage(p);
    this.dirty.fill(0, 0, this.pageCount);
    this.groupDirty.fill(1);
    this.rootStale = true;
  }

  private hashPage(p: number): void {
    const start = p * PAGE_SIZE;
    const end = Math.min(start + PAGE_SIZE, this.ram.length);
    this.pageView.setBigUint64(p * 8, xx(this.ram.subarray(start, end), SEED_PAGE), true);
    this.pagesHashed++;
  }

  /** Consume the dirty bitmap: rehash dirty pages. Returns the number of pages rehashed. */
  update(): number {
    const dirty = this.dirty;
    let n = 0;
    for (let p = 0; p < this.pageCount; p++) {
      if (dirty[p] === 0) continue;
      dirty[p] = 0;
      this.hashPage(p);
      this.groupDirty[p >>> 6] = 1; // PAGES_PER_GROUP = 64
      n++;
    }
    if (n > 0) this.rootStale = true;
    return n;
  }

  private refreshRoot(): void {
    if (!this.rootStale) return;
    for (let g = 0; g < this.groupCount; g++) {
      if (this.groupDirty[g] === 0) continue;
      this.groupDirty[g] = 0;
      const s = g * PAGES_PER_GROUP * 8;
      const e = Math.min(s + PAGES_PER_GROUP * 8, this.pageBuf.length);
      this.groupView.setBigUint64(g * 8, xx(this.pageBuf.subarray(s, e), SEED_GROUP), true);
    }
    const buf = new Uint8Array(8 + this.groupBuf.length);
    new DataView(buf.buffer).setFloat64(0, this.ram.length, true);
    buf.set(this.groupBuf, 8);
    this.rootValue = xx(buf, SEED_ROOT);
    this.rootStale = false;
  }

  /** RAM root hash (consumes the dirty bitmap first). */
  root(): string {
    this.update();
    this.refreshRoot();
    return hex64(this.rootValue);
  }

  /** Hash of one page (consumes the dirty bitmap first). */
  pageHash(page: number): string {
    this.update();
    if (!(page >= 0 && page < this.pageCount)) throw new RangeError(`no page ${page}`);
    return hex64(this.pageView.getBigUint64(page * 8, true));
  }

  /** Every page's hash, index = page number (address = index * 4096). */
  pageHashes(): string[] {
    this.update();
    const out = new Array<string>(this.pageCount);
    for (let p = 0; p < this.pageCount; p++) out[p] = hex64(this.pageView.getBigUint64(p * 8, true));
    return out;
  }

  /** The root a from-scratch rehash would give, without touching this hasher's state. */
  fullRoot(): string {
    return fullRamRoot(this.ram);
  }
}

/** RAM root of `ram` computed from scratch (same definition as RamHasher.root()). */
export function fullRamRoot(ram: Uint8Array): string {
  return new RamHasher(ram, new Uint8Array(Math.ceil(ram.length / PAGE_SIZE))).root();
}

/**
 * One state-hash record (the payload of a HASH event and of the trailer's final hashes).
 * Hashes are lowercase hex strings of 8 or 16 bytes; all hashes in one record have the
 * same width. `pages` (optional) holds per-page RAM hashes so a verifier can name pages.
 */
export interface HashRecord {
  cpu: string;
  ram: string;
  screen: string;
  devices: Record<string, string>;
  pages?: string[];
}

/** What hashComponents() accepts: raw state bytes, or an already computed hash. */
export type HashSource = Uint8Array | string | Stateful;

export interface ComponentSources {
  cpu: HashSource;
  ram: RamHasher | string;
  screen: HashSource;
  devices: Record<string, HashSource> | Iterable<{ name: string } & Stateful>;
  /** Include per-page RAM hashes (needs ram to be a RamHasher). */
  withPages?: boolean;
}

function hashSource(s: HashSource): string {
  if (typeof s === "string") return s;
  if (s instanceof Uint8Array) return hashBytes(s);
  return hashStateful(s);
}

/** Build a HASH record from the machine's components. Device order does not matter. */
export function hashComponents(src: ComponentSources): HashRecord {
  const devices: Record<string, string> = {};
  const put = (name: string, h: string) =>
    Object.defineProperty(devices, name, { value: h, enumerable: true, writable: true, configurable: true });
  if (Symbol.iterator in (src.devices as object)) {
    for (const d of src.devices as Iterable<{ name: string } & Stateful>) put(d.name, hashStateful(d));
  } else {
    for (const [name, s] of Object.entries(src.devices as Record<string, HashSource>)) put(name, hashSource(s));
  }
  const rec: HashRecord = {
    cpu: hashSource(src.cpu),
    ram: typeof src.ram === "string" ? src.ram : src.ram.root(),
    screen: hashSource(src.screen),
    devices,
  };
  if (src.withPages) {
    if (typeof src.ram === "string") throw new TypeError("withPages needs a RamHasher");
    rec.pages = src.ram.pageHashes();
  }
  return rec;
}

export interface HashDiff {
  /** Components that differ: "cpu", "ram", "screen", "device:<name>". */
  components: string[];
  /** Devices present in only one record. */
  onlyInA: string[];
  onlyInB: string[];
  /** Differing RAM pages by physical address (only when both records carry pages). */
  pages: number[];
  /** true if the records are identical in everything they both carry. */
  equal: boolean;
}

/** Compare two hash records, naming the differing components and RAM pages. */
export function diffHashes(a: HashRecord, b: HashRecord): HashDiff {
  const components: string[] = [];
  if (a.cpu !== b.cpu) components.push("cpu");
  if (a.ram !== b.ram) components.push("ram");
  if (a.screen !== b.screen) components.push("screen");
  const onlyInA: string[] = [];
  const onlyInB: string[] = [];
  const names = [...new Set([...Object.keys(a.devices), ...Object.keys(b.devices)])].sort();
  for (const n of names) {
    const ha = Object.hasOwn(a.devices, n) ? a.devices[n] : undefined;
    const hb = Object.hasOwn(b.devices, n) ? b.devices[n] : undefined;
    if (ha === undefined) onlyInB.push(n);
    else if (hb === undefined) onlyInA.push(n);
    else if (ha !== hb) components.push(`device:${n}`);
  }
  const pages: number[] = [];
  if (a.pages && b.pages) {
    const n = Math.max(a.pages.length, b.pages.length);
    for (let p = 0; p < n; p++) if (a.pages[p] !== b.pages[p]) pages.push(p * PAGE_SIZE);
  }
  return {
    components, onlyInA, onlyInB, pages,
    equal: components.length === 0 && onlyInA.length === 0 && onlyInB.length === 0 && pages.length === 0,
  };
}

/** One line describing a diff, e.g. "cpu, device:pit differ; RAM pages 0x1000, 0x5000". */
export function formatHashDiff(d: HashDiff, maxPages = 16): string {
  if (d.equal) return "hashes match";
  const parts: string[] = [];
  if (d.components.length) parts.push(`${d.components.join(", ")} differ`);
  if (d.onlyInA.length) parts.push(`only in first: ${d.onlyInA.join(", ")}`);
  if (d.onlyInB.length) parts.push(`only in second: ${d.onlyInB.join(", ")}`);
  if (d.pages.length) {
    const shown = d.pages.slice(0, maxPages).map((a) => "0x" + a.toString(16).padStart(8, "0"));
    const more = d.pages.length > maxPages ? ` (+${d.pages.length - maxPages} more)` : "";
    parts.push(`RAM pages ${shown.join(", ")}${more}`);
  }
  return parts.join("; ");
}
