/**
 * Binary state serialisation shared by the CPU, every device and the machine.
 *
 * One encoding drives both snapshots (checkpoints) and state hashing: a component's
 * hash is the hash of the bytes its save() writes, so anything in the snapshot is in
 * the hash and vice versa. Everything is little-endian and fixed-layout; numbers that
 * may exceed 32 bits (icounts, virtual times) are written as float64, which is exact
 * for integers below 2^53.
 */
export class StateWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
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

  u8(v: number): this { this.ensure(1); this.buf[this.pos++] = v & 0xff; return this; }
  bool(v: boolean): this { return this.u8(v ? 1 : 0); }
  u16(v: number): this { this.ensure(2); this.view.setUint16(this.pos, v & 0xffff, true); this.pos += 2; return this; }
  u32(v: number): this { this.ensure(4); this.view.setUint32(this.pos, v >>> 0, true); this.pos += 4; return this; }
  i32(v: number): this { this.ensure(4); this.view.setInt32(this.pos, v | 0, true); this.pos += 4; return this; }
  f64(v: number): this { this.ensure(8); this.view.setFloat64(this.pos, v, true); this.pos += 8; return this; }
  /** Length-prefixed bytes. */
  bytes(b: Uint8Array): this { this.u32(b.length); this.raw(b); return this; }
  /** Bytes without a length prefix (the reader must know the size). */
  raw(b: Uint8Array): this { this.ensure(b.length); this.buf.set(b, this.pos); this.pos += b.length; return this; }
  str(s: string): this { return this.bytes(new TextEncoder().encode(s)); }
  u32s(a: ArrayLike<number>): this { this.u32(a.length); for (let i = 0; i < a.length; i++) this.u32(a[i]!); return this; }
  u8s(a: ArrayLike<number>): this { this.u32(a.length); for (let i = 0; i < a.length; i++) this.u8(a[i]!); return this; }

  get length(): number { return this.pos; }
  finish(): Uint8Array { return this.buf.slice(0, this.pos); }
}

export class StateError extends Error {}

export class StateReader {
  private view: DataView;
  pos = 0;
  constructor(private buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new StateError(`state truncated at byte ${this.pos} (need ${n} more)`);
  }
  u8(): number { this.need(1); return this.buf[this.pos++]!; }
  bool(): boolean { return this.u8() !== 0; }
  u16(): number { this.need(2); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  u32(): number { this.need(4); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  i32(): number { this.need(4); const v = this.view.getInt32(this.pos, true); this.pos += 4; return v; }
  f64(): number { this.need(8); const v = this.view.getFloat64(this.pos, true); this.pos += 8; return v; }
  bytes(): Uint8Array { const n = this.u32(); return this.raw(n); }
  raw(n: number): Uint8Array { this.need(n); const b = this.buf.slice(this.pos, this.pos + n); this.pos += n; return b; }
  str(): string { return new TextDecoder().decode(this.bytes()); }
  u32s(): number[] { const n = this.u32(); const a: number[] = []; for (let i = 0; i < n; i++) a.push(this.u32()); return a; }
  u8s(): number[] { const n = this.u32(); const a: number[] = []; for (let i = 0; i < n; i++) a.push(this.u8()); return a; }
  get done(): boolean { return this.pos >= this.buf.length; }
}

/** Anything whose complete guest-visible state can be saved, restored and hashed. */
export interface Stateful {
  save(w: StateWriter): void;
  restore(r: StateReader): void;
}

export function saveToBytes(s: Stateful): Uint8Array {
  const w = new StateWriter();
  s.save(w);
  return w.finish();
}

export function restoreFromBytes(s: Stateful, b: Uint8Array): void {
  const r = new StateReader(b);
  s.restore(r);
  if (!r.done) throw new StateError(`state has ${b.length - r.pos} trailing bytes`);
}
