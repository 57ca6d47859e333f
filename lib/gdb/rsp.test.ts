import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  OutQueue,
  RspParser,
  binStrToBytes,
  bytesToBinStr,
  checksum,
  encodePacket,
  escapeBinary,
  fromHex,
  hexToText,
  parseHexNum,
  parseU32le,
  rleDecode,
  rleEncode,
  textToHex,
  toHex,
  u32leHex,
  unescapeBinary,
  type RspEvent,
} from "./rsp.ts";

const RUNS = Number(process.env.RRX_PROPERTY_RUNS ?? 300);

/** Arbitrary byte string (chars 0..255). */
const byteString = (maxLength = 300) =>
  fc.uint8Array({ maxLength }).map((b) => bytesToBinStr(b));

/** Full decode path of a framed packet: parser + binary unescape. */
function decodeOne(framed: string): string | null {
  const evs = new RspParser().feed(binStrToBytes(framed));
  if (evs.length !== 1 || evs[0].type !== "packet") return null;
  return unescapeBinary(evs[0].data);
}

describe("hex helpers", () => {
  test("toHex / fromHex", () => {
    expect(toHex(new Uint8Array([0, 1, 0xab, 0xff]))).toBe("0001abff");
    expect(Array.from(fromHex("0001ABff")!)).toEqual([0, 1, 0xab, 0xff]);
    expect(fromHex("abc")).toBeNull();
    expect(fromHex("zz")).toBeNull();
  });
  test("parseHexNum", () => {
    expect(parseHexNum("8048000")).toBe(0x8048000);
    expect(parseHexNum("ffffffff")).toBe(0xffffffff);
    expect(parseHexNum("")).toBeNull();
    expect(parseHexNum("12g")).toBeNull();
    expect(parseHexNum("1".repeat(20))).toBeNull();
  });
  test("u32leHex / parseU32le are little-endian", () => {
    expect(u32leHex(0x12345678)).toBe("78563412");
    expect(u32leHex(-1)).toBe("ffffffff");
    expect(parseU32le("78563412")).toBe(0x12345678);
    expect(parseU32le("ff")).toBe(0xff);
    expect(parseU32le("0011223344")).toBeNull();
  });
  test("text hex round trip (utf-8)", () => {
    expect(hexToText(textToHex("when\n✓"))).toBe("when\n✓");
    expect(textToHex("hi")).toBe("6869");
  });
  test("property: u32 round trip", () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), (v) => parseU32le(u32leHex(v)) === v), { numRuns: RUNS });
  });
});

describe("framing", () => {
  test("checksum and encodePacket", () => {
    expect(checksum("OK")).toBe(0x9a);
    expect(encodePacket("OK")).toBe("$OK#9a");
    expect(encodePacket("")).toBe("$#00");
    expect(encodePacket("E01")).toBe("$E01#a6");
  });
  test("escaping of # $ } *", () => {
    expect(escapeBinary("a#b$c}d*e")).toBe("a}\x03b}\x04c}]d}\x0ae");
    expect(unescapeBinary("a}\x03b}\x04c}]d}\x0ae")).toBe("a#b$c}d*e");
    const framed = encodePacket("x}y");
    expect(framed).toBe("$x}]y#" + checksum("x}]y").toString(16).padStart(2, "0"));
  });
  test("run-length decoding (gdb's example: 0* = 0000)", () => {
    expect(rleDecode("0* ")).toBe("0000");
    expect(rleDecode("X*\"")).toBe("X".repeat(6));
    expect(rleDecode("ab")).toBe("ab");
    expect(rleDecode("*!")).toBe(""); // nothing to repeat
    expect(rleDecode("a*")).toBe("a"); // truncated count
  });
  test("property: encode → parse → unescape is the identity for any bytes", () => {
    fc.assert(
      fc.property(byteString(), (payload) => decodeOne(encodePacket(payload)) === payload),
      { numRuns: RUNS },
    );
  });
  test("property: RLE-compressed packets decode to the original", () => {
    fc.assert(
      fc.property(
        // payloads with long runs, so compression actually happens
        fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 120 })), { maxLength: 20 }),
        (runs) => {
          const payload = runs.map(([c, n]) => String.fromCharCode(c).repeat(n)).join("");
          const body = rleEncode(escapeBinary(payload));
          const cs = checksum(body).toString(16).padStart(2, "0");
          return decodeOne("$" + body + "#" + cs) === payload;
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe("streaming parser", () => {
  test("acks, interrupt, packets, garbage in one chunk", () => {
    const p = new RspParser();
    const evs = p.feed("+-\x03junk$m1000,4#" + checksum("m1000,4").toString(16) + "+");
    expect(evs.map((e) => e.type)).toEqual(["ack", "nak", "interrupt", "garbage", "packet", "ack"]);
    expect(evs[4]).toEqual({ type: "packet", data: "m1000,4" });
  });
  test("a packet split across chunks at every position", () => {
    const framed = encodePacket("qSupported:multiprocess+;swbreak+");
    for (let i = 0; i <= framed.length; i++) {
      const p = new RspParser();
      const evs = [...p.feed(framed.slice(0, i)), ...p.feed(framed.slice(i))];
      expect(evs).toEqual([{ type: "packet", data: "qSupported:multiprocess+;swbreak+" }]);
    }
  });
  test("bad checksum and non-hex checksum are reported, parser resyncs", () => {
    const p = new RspParser();
    const evs = p.feed("$g#00$g#zz$g#67");
    expect(evs).toEqual([
      { type: "bad-checksum", data: "g" },
      { type: "bad-checksum", data: "g" },
      { type: "packet", data: "g" },
    ]);
  });
  test("'$' inside a packet restarts it", () => {
    const evs = new RspParser().feed("$m10$g#67");
    expect(evs).toEqual([{ type: "garbage", bytes: "$m10" }, { type: "packet", data: "g" }]);
  });
  test("overlong packet is dropped whole as one event, parser resyncs", () => {
    const p = new RspParser(16);
    const evs = p.feed("$" + "a".repeat(40) + "#00$g#67");
    expect(evs).toEqual([{ type: "oversized", bytes: 41 }, { type: "packet", data: "g" }]);
  });
  test("a 1 MiB packet fed in 4 KiB chunks gives one event, not one per chunk", () => {
    const p = new RspParser(1024);
    const big = "$" + "b".repeat(1 << 20) + "#00";
    const evs: RspEvent[] = [];
    for (let i = 0; i < big.length; i += 4096) evs.push(...p.feed(big.slice(i, i + 4096)));
    evs.push(...p.feed("$g#67"));
    expect(evs).toEqual([{ type: "oversized", bytes: (1 << 20) + 1 }, { type: "packet", data: "g" }]);
  });
  test("property: random byte streams never throw, events account for the input", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (chunks) => {
        const p = new RspParser(128);
        const evs: RspEvent[] = [];
        for (const c of chunks) evs.push(...p.feed(c));
        for (const e of evs) {
          if (e.type === "packet") {
            // a successfully parsed packet must re-verify: no '#' in data unless escaped-data semantics
            expect(typeof e.data).toBe("string");
          }
        }
        return true;
      }),
      { numRuns: RUNS },
    );
  });
  test("property: valid packets interleaved with noise are all recovered", () => {
    // noise made of bytes that cannot start or end a packet
    const noise = fc.uint8Array({ maxLength: 10 }).map((b) =>
      bytesToBinStr(b.filter((x) => x !== 0x24 && x !== 0x23 && x !== 0x2b && x !== 0x2d && x !== 0x03)),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(noise, byteString(40)), { maxLength: 8 }), fc.integer({ min: 1, max: 7 }), (items, chunk) => {
        const stream = items.map(([n, pl]) => n + encodePacket(pl)).join("");
        const p = new RspParser();
        const evs: RspEvent[] = [];
        for (let i = 0; i < stream.length; i += chunk) evs.push(...p.feed(stream.slice(i, i + chunk)));
        const got = evs.filter((e) => e.type === "packet").map((e) => unescapeBinary((e as { data: string }).data));
        expect(got).toEqual(items.map(([, pl]) => pl));
      }),
      { numRuns: RUNS },
    );
  });
});

describe("OutQueue backpressure", () => {
  test("partial writes are completed on flush, in order", () => {
    const sink: number[] = [];
    let budget = 3;
    const q = new OutQueue((d) => {
      const n = Math.min(budget, d.length);
      budget -= n;
      sink.push(...d.subarray(0, n));
      return n;
    });
    q.send("hello");
    q.send(" world");
    expect(bytesToBinStr(new Uint8Array(sink))).toBe("hel");
    expect(q.pending).toBe(8);
    budget = 4;
    q.flush();
    expect(bytesToBinStr(new Uint8Array(sink))).toBe("hello w");
    budget = 100;
    q.flush();
    expect(bytesToBinStr(new Uint8Array(sink))).toBe("hello world");
    expect(q.pending).toBe(0);
  });
  test("property: any write-acceptance pattern delivers every byte once, in order", () => {
    fc.assert(
      fc.property(fc.array(byteString(50), { maxLength: 10 }), fc.array(fc.nat(20), { minLength: 1, maxLength: 30 }), (msgs, pattern) => {
        const sink: number[] = [];
        let k = 0;
        const q = new OutQueue((d) => {
          const n = Math.min(pattern[k++ % pattern.length], d.length);
          sink.push(...d.subarray(0, n));
          return n;
        });
        for (const m of msgs) q.send(m);
        for (let i = 0; i < 10000 && q.pending > 0; i++) {
          if (pattern.every((x) => x === 0)) break;
          q.flush();
        }
        const expected = msgs.join("");
        if (pattern.every((x) => x === 0)) return sink.length === 0;
        return bytesToBinStr(new Uint8Array(sink)) === expected;
      }),
      { numRuns: RUNS },
    );
  });
});
