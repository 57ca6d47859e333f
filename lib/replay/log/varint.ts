/**
 * LEB128 unsigned varints for integers 0 .. 2^53-1 (Number.MAX_SAFE_INTEGER), plus
 * zigzag mapping for signed integers -(2^52) .. 2^52-1.
 *
 * Encoding: 7 bits per byte, least significant group first, high bit set on every byte
 * except the last. At most 8 bytes (8*7 = 56 >= 53). Decoding is strict: it rejects
 * encodings that run past the buffer, exceed 2^53-1, or are not minimal (a final 0x00
 * byte after a continuation), so every value has exactly one encoding.
 */

export const MAX_UVARINT = Number.MAX_SAFE_INTEGER; // 2^53 - 1
export const MAX_UVARINT_BYTES = 8;
/** Zigzag range: |n| must fit so that the zigzag value is <= 2^53 - 1. */
export const MIN_ZIGZAG = -(2 ** 52);
export const MAX_ZIGZAG = 2 ** 52 - 1;

export class VarintError extends RangeError {
  constructor(message: string, readonly kind: "truncated" | "overflow" | "noncanonical" | "range") {
    super(message);
    this.name = "VarintError";
  }
}

function checkUnsigned(n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > MAX_UVARINT) {
    throw new VarintError(`uvarint value out of range: ${n}`, "range");
  }
}

/** Bytes needed to encode n. */
export function uvarintLength(n: number): number {
  checkUnsigned(n);
  let len = 1;
  while (n >= 0x80) { n = Math.floor(n / 128); len++; }
  return len;
}

/** Write n at out[pos...]; returns the position after it. `out` must have room (<= 8 bytes). */
export function writeUvarint(out: Uint8Array, pos: number, n: number): number {
  checkUnsigned(n);
  while (n >= 0x80) {
    out[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  return pos;
}

export function encodeUvarint(n: number): Uint8Array {
  const out = new Uint8Array(uvarintLength(n));
  writeUvarint(out, 0, n);
  return out;
}

export interface Decoded { value: number; length: number }

/**
 * Decode a uvarint at buf[pos], not reading at or beyond `end`. Throws VarintError
 * (never anything else) on truncation, overflow past 2^53-1 or a non-minimal encoding.
 */
export function decodeUvarint(buf: Uint8Array, pos = 0, end = buf.length): Decoded {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < MAX_UVARINT_BYTES; i++) {
    if (pos + i >= end) throw new VarintError(`varint truncated at byte ${pos + i}`, "truncated");
    const b = buf[pos + i]!;
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      if (b === 0 && i > 0) throw new VarintError(`non-canonical varint at byte ${pos}`, "noncanonical");
      if (value > MAX_UVARINT) throw new VarintError(`varint at byte ${pos} exceeds 2^53-1`, "overflow");
      return { value, length: i + 1 };
    }
    mul *= 128;
  }
  throw new VarintError(`varint at byte ${pos} longer than ${MAX_UVARINT_BYTES} bytes`, "overflow");
}

/** Zigzag: 0,-1,1,-2,2,... -> 0,1,2,3,4,... */
export function zigzagEncode(n: number): number {
  if (!Number.isInteger(n) || n < MIN_ZIGZAG || n > MAX_ZIGZAG) {
    throw new VarintError(`zigzag value out of range: ${n}`, "range");
  }
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

export function zigzagDecode(z: number): number {
  // z <= 2^53-1, so the arithmetic below is exact.
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

export function encodeSvarint(n: number): Uint8Array {
  return encodeUvarint(zigzagEncode(n));
}

export function decodeSvarint(buf: Uint8Array, pos = 0, end = buf.length): Decoded {
  const d = decodeUvarint(buf, pos, end);
  return { value: zigzagDecode(d.value), length: d.length };
}
