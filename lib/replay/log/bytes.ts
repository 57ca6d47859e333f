/**
 * Byte-level helpers for the log format: a growable little-endian writer and a
 * bounds-checked reader. The reader throws only DecodeError (never RangeError, never a
 * huge allocation: every length is checked against the bytes actually present first).
 */
import { decodeUvarint, VarintError, writeUvarint, zigzagDecode, zigzagEncode, MAX_UVARINT } from "./varint.ts";

export class DecodeError extends Error {
  constructor(message: string, readonly pos: number) {
    super(message);
    this.name = "DecodeError";
  }
}

const utf8enc = new TextEncoder();
const utf8dec = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function utf8(s: string): Uint8Array { return utf8enc.encode(s); }

/** Decode strict UTF-8; returns null on invalid input instead of throwing. */
export function fromUtf8(b: Uint8Array): string | null {
  try {
    return utf8dec.decode(b);
  } catch {
    return null;
  }
}

export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(Math.max(16, initial));
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.pos));
    this.buf = nb;
    this.view = new DataView(nb.buffer);
  }

  get length(): number { return this.pos; }

  u8(v: number): this { this.ensure(1); this.buf[this.pos++] = v & 0xff; return this; }
  u16(v: number): this { this.ensure(2); this.view.setUint16(this.pos, v & 0xffff, true); this.pos += 2; return this; }
  i16(v: number): this { this.ensure(2); this.view.setInt16(this.pos, v, true); this.pos += 2; return this; }
  u32(v: number): this { this.ensure(4); this.view.setUint32(this.pos, v >>> 0, true); this.pos += 4; return this; }
  /** Unsigned 64-bit as two u32 (low first); the value must be an integer <= 2^53-1. */
  u64(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > MAX_UVARINT) throw new RangeError(`u64 out of range: ${v}`);
    this.u32(v % 0x100000000);
    return this.u32(Math.floor(v / 0x100000000));
  }
  uvarint(v: number): this { this.ensure(8); this.pos = writeUvarint(this.buf, this.pos, v); return this; }
  svarint(v: number): this { return this.uvarint(zigzagEncode(v)); }
  raw(b: Uint8Array): this { this.ensure(b.length); this.buf.set(b, this.pos); this.pos += b.length; return this; }
  /** uvarint length + bytes. */
  lpBytes(b: Uint8Array): this { return this.uvarint(b.length).raw(b); }
  /** uvarint length + UTF-8. */
  str(s: string): this { return this.lpBytes(utf8(s)); }
  /** Overwrite a u32 already written at `at`. */
  patchU32(at: number, v: number): void { this.view.setUint32(at, v >>> 0, true); }

  /** A view of the bytes written so far (valid until the next write). */
  bytes(): Uint8Array { return this.buf.subarray(0, this.pos); }
  /** A copy of the bytes written so far. */
  finish(): Uint8Array { return this.buf.slice(0, this.pos); }
  clear(): void { this.pos = 0; }
}

export class ByteReader {
  private view: DataView;
  pos: number;

  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
  }

  get remaining(): number { return this.end - this.pos; }
  get done(): boolean { return this.pos >= this.end; }

  fail(msg: string): never { throw new DecodeError(msg, this.pos); }

  private need(n: number, what: string): void {
    if (n > this.end - this.pos) this.fail(`${what} needs ${n} bytes, ${this.end - this.pos} left`);
  }

  u8(): number { this.need(1, "u8"); return this.buf[this.pos++]!; }
  u16(): number { this.need(2, "u16"); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  i16(): number { this.need(2, "i16"); const v = this.view.getInt16(this.pos, true); this.pos += 2; return v; }
  u32(): number { this.need(4, "u32"); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  /** Two u32 (low first); fails if the value exceeds 2^53-1. */
  u64(): number {
    this.need(8, "u64");
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    if (hi > 0x1fffff) this.fail(`u64 value exceeds 2^53-1`);
    this.pos += 8;
    return hi * 0x100000000 + lo;
  }
  uvarint(): number {
    try {
      const d = decodeUvarint(this.buf, this.pos, this.end);
      this.pos += d.length;
      return d.value;
    } catch (e) {
      if (e instanceof VarintError) this.fail(e.message);
      throw e;
    }
  }
  svarint(): number { return zigzagDecode(this.uvarint()); }
  /** n bytes, copied. */
  raw(n: number): Uint8Array { this.need(n, "field"); const b = this.buf.slice(this.pos, this.pos + n); this.pos += n; return b; }
  /** n bytes, aliased (no copy). */
  rawView(n: number): Uint8Array { this.need(n, "field"); const b = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return b; }
  lpBytes(max: number, what = "bytes"): Uint8Array {
    const n = this.uvarint();
    if (n > max) this.fail(`${what} length ${n} exceeds limit ${max}`);
    return this.raw(n);
  }
  str(max: number, what = "string"): string {
    const n = this.uvarint();
    if (n > max) this.fail(`${what} length ${n} exceeds limit ${max}`);
    const s = fromUtf8(this.rawView(n));
    if (s === null) this.fail(`${what} is not valid UTF-8`);
    return s;
  }
  /** A reader over the next n bytes; this reader skips past them. */
  sub(n: number): ByteReader {
    this.need(n, "sub-record");
    const r = new ByteReader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }
}
