import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Crc32, crc32, crc32Update } from "./crc32.ts";
import { RUNS } from "../../../test/support/log-testutil.ts";

const ascii = (s: string) => new TextEncoder().encode(s);

describe("crc32", () => {
  test("known vectors (IEEE / zlib)", () => {
    expect(crc32(new Uint8Array())).toBe(0);
    expect(crc32(ascii("123456789"))).toBe(0xcbf43926);
    expect(crc32(ascii("The quick brown fox jumps over the lazy dog"))).toBe(0x414fa339);
    expect(crc32(new Uint8Array(32))).toBe(0x190a55ad);
  });

  test("incremental equals one-shot", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), (b, cut) => {
      const k = b.length ? cut % (b.length + 1) : 0;
      expect(crc32Update(crc32(b.subarray(0, k)), b.subarray(k))).toBe(crc32(b));
      expect(new Crc32().update(b, 0, k).update(b, k).digest()).toBe(crc32(b));
      expect(crc32(b, k)).toBe(crc32(b.subarray(k)));
    }), { numRuns: RUNS });
  });

  test("detects every single-bit flip", () => {
    const b = ascii("rrx chunk payload");
    const c = crc32(b);
    for (let i = 0; i < b.length * 8; i++) {
      const x = b.slice();
      x[i >> 3]! ^= 1 << (i & 7);
      expect(crc32(x)).not.toBe(c);
    }
  });
});
