/**
 * A minimal WebAssembly binary writer (jit-wasm.ts): one module with an imported memory, imported
 * functions (and optionally an imported function table) and defined functions, i32/i64/f64
 * values only.
 */
export const I32 = 0x7f, I64 = 0x7e, F64 = 0x7c, EXTERNREF = 0x6f, VOID = 0x40;

export const OP = {
  unreachable: 0x00, nop: 0x01, block: 0x02, loop: 0x03, if: 0x04, else: 0x05, end: 0x0b,
  br: 0x0c, br_if: 0x0d, br_table: 0x0e, return: 0x0f, call: 0x10, call_indirect: 0x11, drop: 0x1a, select: 0x1b,
  local_get: 0x20, local_set: 0x21, local_tee: 0x22,
  i32_load: 0x28, i32_load8_u: 0x2d, i32_load16_u: 0x2f, i32_store: 0x36, i32_store8: 0x3a, i32_store16: 0x3b,
  i32_const: 0x41, i64_const: 0x42,
  i32_eqz: 0x45, i32_eq: 0x46, i32_ne: 0x47, i32_lt_s: 0x48, i32_lt_u: 0x49, i32_gt_s: 0x4a, i32_gt_u: 0x4b,
  i32_le_s: 0x4c, i32_le_u: 0x4d, i32_ge_s: 0x4e, i32_ge_u: 0x4f,
  i64_eq: 0x51, i64_ne: 0x52, i64_lt_s: 0x53, i64_gt_s: 0x55, i64_le_s: 0x57, i64_ge_s: 0x59,
  i32_add: 0x6a, i32_sub: 0x6b, i32_mul: 0x6c, i32_div_s: 0x6d, i32_and: 0x71, i32_or: 0x72, i32_xor: 0x73,
  i32_shl: 0x74, i32_shr_s: 0x75, i32_shr_u: 0x76,
  i64_mul: 0x7e, i64_shr_u: 0x88, i32_wrap_i64: 0xa7, i64_extend_i32_s: 0xac, i64_extend_i32_u: 0xad,
  f64_convert_i32_s: 0xb7, f64_convert_i32_u: 0xb8,
} as const;

/** A growable byte buffer with LEB128 writers: `a` holds the bytes, the first `n` are used. */
export class Buf {
  a: Uint8Array<ArrayBuffer>;
  n = 0;
  constructor(cap = 256) { this.a = new Uint8Array(cap); }
  /** Room for k more bytes. */
  private room(k: number): void {
    if (this.n + k <= this.a.length) return;
    const a = new Uint8Array(Math.max(this.a.length * 2, this.n + k));
    a.set(this.a.subarray(0, this.n));
    this.a = a;
  }
  byte(x: number): this { if (this.n === this.a.length) this.room(1); this.a[this.n++] = x; return this; }
  u32(x: number): this {
    this.room(5);
    const a = this.a;
    x >>>= 0;
    do { let y = x & 127; x >>>= 7; if (x !== 0) y |= 128; a[this.n++] = y; } while (x !== 0);
    return this;
  }
  s32(x: number): this {
    this.room(5);
    const a = this.a;
    x |= 0;
    for (;;) {
      const y = x & 127; x >>= 7;
      if ((x === 0 && (y & 64) === 0) || (x === -1 && (y & 64) !== 0)) { a[this.n++] = y; return this; }
      a[this.n++] = y | 128;
    }
  }
  s64(x: bigint): this {
    for (;;) {
      const y = Number(x & 127n); x >>= 7n;
      if ((x === 0n && (y & 64) === 0) || (x === -1n && (y & 64) !== 0)) return this.byte(y);
      this.byte(y | 128);
    }
  }
  str(s: string): this { const e = utf8.encode(s); this.u32(e.length); return this.bytes(e); }
  bytes(x: ArrayLike<number>): this {
    const k = x.length;
    this.room(k);
    if (x instanceof Uint8Array) this.a.set(x, this.n);
    else for (let j = 0; j < k; j++) this.a[this.n + j] = x[j]!;
    this.n += k;
    return this;
  }
  vec(x: number[]): this { this.u32(x.length); return this.bytes(x); }
  /** Inserts one byte at offset `at`, moving the bytes after it up. */
  insert(at: number, x: number): this {
    this.room(1);
    this.a.copyWithin(at + 1, at, this.n);
    this.a[at] = x;
    this.n++;
    return this;
  }
  /** The bytes written so far (a view: valid until the next write). */
  view(): Uint8Array { return this.a.subarray(0, this.n); }
}
const utf8 = new TextEncoder();

export interface FuncType { params: number[]; results: number[] }
export interface Func { type: number; locals: number[]; code: ArrayLike<number>; export?: string }

function section(out: Buf, id: number, body: Buf): void {
  if (body.n === 0) return;
  out.byte(id).u32(body.n).bytes(body.view());
}

/**
 * A module: memory imported as env.mem (pages minimum), function imports env.<name>, and with
 * `table` > 0 a function table imported as env.tbl (that many entries at least).
 */
export function buildModule(types: FuncType[], imports: { name: string; type: number }[], memPages: number, funcs: Func[], table = 0): Uint8Array<ArrayBuffer> {
  const out = new Buf().bytes([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
  const t = new Buf().u32(types.length);
  for (const ft of types) { t.byte(0x60).vec(ft.params).vec(ft.results); }
  section(out, 1, t);
  const im = new Buf().u32(imports.length + 1 + (table > 0 ? 1 : 0));
  im.str("env").str("mem").byte(2).byte(0).u32(memPages);
  if (table > 0) im.str("env").str("tbl").byte(1).byte(0x70).byte(0).u32(table); // funcref, minimum only
  for (const x of imports) im.str("env").str(x.name).byte(0).u32(x.type);
  section(out, 2, im);
  const fs = new Buf().u32(funcs.length);
  for (const f of funcs) fs.u32(f.type);
  section(out, 3, fs);
  const ex = funcs.map((f, j) => [f, j] as const).filter(([f]) => f.export);
  const e = new Buf().u32(ex.length);
  for (const [f, j] of ex) e.str(f.export!).byte(0).u32(imports.length + j);
  section(out, 7, e);
  const c = new Buf().u32(funcs.length);
  for (const f of funcs) {
    const body = new Buf();
    // locals, run-length grouped
    const groups: [number, number][] = [];
    for (const l of f.locals) { const g = groups[groups.length - 1]; if (g && g[1] === l) g[0]++; else groups.push([1, l]); }
    body.u32(groups.length);
    for (const [n, ty] of groups) body.u32(n).byte(ty);
    body.bytes(f.code).byte(OP.end);
    c.u32(body.n).bytes(body.view());
  }
  section(out, 10, c);
  return out.a.slice(0, out.n);
}
