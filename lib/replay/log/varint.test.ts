import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  decodeSvarint, decodeUvarint, encodeSvarint, encodeUvarint, MAX_UVARINT, MAX_ZIGZAG, MIN_ZIGZAG,
  uvarintLength, VarintError, zigzagDecode, zigzagEncode,
} from "./varint.ts";
import { RUNS } from "../../../test/support/log-testutil.ts";

describe("varint", () => {
  test("known encodings", () => {
    expect([...encodeUvarint(0)]).toEqual([0]);
    expect([...encodeUvarint(127)]).toEqual([0x7f]);
    expect([...encodeUvarint(128)]).toEqual([0x80, 0x01]);
    expect([...encodeUvarint(300)]).toEqual([0xac, 0x02]);
    expect([...encodeUvarint(2 ** 32)]).toEqual([0x80, 0x80, 0x80, 0x80, 0x10]);
    expect(encodeUvarint(MAX_UVARINT).length).toBe(8);
    expect([...encodeUvarint(MAX_UVARINT)]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect([0, -1, 1, -2, 2].map(zigzagEncode)).toEqual([0, 1, 2, 3, 4]);
  });

  test("unsigned round trip, length", () => {
    fc.assert(fc.property(fc.oneof(fc.nat(), fc.maxSafeNat(), fc.constantFrom(0, 127, 128, 2 ** 31, 2 ** 32, MAX_UVARINT)), (n) => {
      const e = encodeUvarint(n);
      expect(e.length).toBe(uvarintLength(n));
      expect(decodeUvarint(e)).toEqual({ value: n, length: e.length });
    }), { numRuns: RUNS * 5 });
  });

  test("signed round trip", () => {
    fc.assert(fc.property(fc.integer({ min: MIN_ZIGZAG, max: MAX_ZIGZAG }), (n) => {
      expect(decodeSvarint(encodeSvarint(n)).value).toBe(n);
      expect(zigzagDecode(zigzagEncode(n))).toBe(n);
    }), { numRuns: RUNS * 5 });
  });

  test("rejects out of range on encode", () => {
    for (const n of [-1, 0.5, MAX_UVARINT + 1, NaN, Infinity]) expect(() => encodeUvarint(n)).toThrow(VarintError);
    expect(() => zigzagEncode(MAX_ZIGZAG + 1)).toThrow(VarintError);
  });

  test("strict decode: truncated, overlong, non-canonical, overflow", () => {
    expect(() => decodeUvarint(new Uint8Array([0x80]))).toThrow(/truncated/);
    expect(() => decodeUvarint(new Uint8Array([0x80, 0x00]))).toThrow(/non-canonical/);
    expect(() => decodeUvarint(new Uint8Array(9).fill(0x80))).toThrow(/longer/);
    expect(() => decodeUvarint(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10]))).toThrow(/exceeds/);
    expect(() => decodeUvarint(new Uint8Array([0x05]), 0, 0)).toThrow(/truncated/);
  });

  test("any bytes decode to a value or a VarintError", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 12 }), (b) => {
      try {
        const d = decodeUvarint(b);
        expect(d.value).toBeLessThanOrEqual(MAX_UVARINT);
        expect([...encodeUvarint(d.value)]).toEqual([...b.subarray(0, d.length)]); // unique encoding
      } catch (e) {
        expect(e).toBeInstanceOf(VarintError);
      }
    }), { numRuns: RUNS * 10 });
  });
});
