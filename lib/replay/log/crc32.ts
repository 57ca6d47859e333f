/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, init 0xFFFFFFFF, final xor
 * 0xFFFFFFFF): the same CRC as zlib, PNG and gzip. Table driven (slice-by-1).
 *
 *   crc32(bytes)                         one shot
 *   crc32Update(crc32Update(0, a), b)    incremental: equals crc32(a ++ b)
 */

const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * Continue a CRC over more bytes. `crc` is a previous *finished* CRC value (0 to start),
 * so calls chain: crc32Update(crc32Update(0, a), b) === crc32(concat(a, b)).
 */
export function crc32Update(crc: number, bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = ~crc >>> 0;
  for (let i = start; i < end; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC-32 of bytes[start, end). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  return crc32Update(0, bytes, start, end);
}

/** Incremental CRC-32 object, for callers that prefer one. */
export class Crc32 {
  private c = 0;
  update(bytes: Uint8Array, start = 0, end = bytes.length): this {
    this.c = crc32Update(this.c, bytes, start, end);
    return this;
  }
  digest(): number { return this.c; }
  reset(): void { this.c = 0; }
}
