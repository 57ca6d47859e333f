import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "./crc32.ts";
import { CHUNK_HEADER_BYTES, EventKind, FORMAT_VERSION, LogError, MAGIC, imageInfo } from "./format.ts";
import { readLog, type ParsedLog } from "./reader.ts";
import { FileSink, LogWriter, MemorySink } from "./writer.ts";
import { actionsArb, buildLog, fixCrcs, outcome, RUNS, sampleHeader, sampleLog } from "../../../test/support/log-testutil.ts";

const isLog = (x: ParsedLog | LogError): x is ParsedLog => !(x instanceof LogError);

function expectError(bytes: Uint8Array, re: RegExp): LogError {
  const r = outcome(bytes);
  if (isLog(r)) throw new Error(`expected LogError matching ${re}, got a log`);
  expect(r.message).toMatch(re);
  return r;
}

describe("log round trip", () => {
  test("sample log decodes completely", () => {
    const log = readLog(sampleLog());
    expect(log.truncated).toBeNull();
    expect(log.trailer).toMatchObject({ finalIcount: 2000, reason: "debug-exit", status: 1, eventCount: 10 });
    expect(log.trailer!.hashes!.devices).toEqual({ pic: "2222222222222222", pit: "1111111111111111" });
    expect(log.events.map((e) => e.icount)).toEqual([100, 100, 500, 1200, 1300, 1300, 1301, 1400, 1500, 1600]);
    expect(log.images.map((i) => [i.role, i.name, i.data.length])).toEqual([["kernel", "hello.elf", 7]]);
    expect(log.hashes.map((h) => h.icount)).toEqual([500, 1400]);
    expect(log.hashes[1]!.record.pages).toEqual(["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"]);
    expect(log.chunks.map((c) => [String.fromCharCode(c.kind), c.startIcount, c.endIcount, c.events]))
      .toEqual([["I", 0, 0, 0], ["E", 0, 1000, 3], ["E", 1000, 1400, 5], ["E", 1400, 1600, 2], ["T", 1600, 2000, 0]]);
    expect(log.endIcount).toBe(2000);
  });

  test("property: random event streams round trip", () => {
    fc.assert(fc.property(actionsArb, fc.boolean(), fc.constantFrom(undefined, 16, 200), (actions, finish, maxChunk) => {
      const b = buildLog(actions, sampleHeader(), finish, maxChunk);
      const log = readLog(b.bytes);
      expect(log.events).toEqual(b.events as never);
      expect(log.events.length).toBe(b.events.length);
      if (finish) {
        expect(log.truncated).toBeNull();
        expect(log.trailer).toEqual({ finalIcount: b.finalIcount, reason: "exit", status: -3, eventCount: b.events.length });
      } else {
        expect(log.trailer).toBeNull();
        expect(log.truncated!.atOffset).toBe(b.bytes.length);
      }
      const total = [...log.stats.values()].reduce((n, s) => n + s.count, 0);
      expect(total).toBe(b.events.length);
      // Every chunk decodes on its own: chunk payload bytes add up.
      const chunkBytes = log.chunks.reduce((n, c) => n + c.size, 0);
      expect(log.headerBytes + chunkBytes).toBe(b.bytes.length);
    }), { numRuns: RUNS });
  });

  test("determinism: same calls give identical bytes; only the host section differs", () => {
    fc.assert(fc.property(actionsArb, (actions) => {
      const a = buildLog(actions, sampleHeader({ hostname: "alpha", startTime: 1 })).bytes;
      const a2 = buildLog(actions, sampleHeader({ hostname: "alpha", startTime: 1 })).bytes;
      const b = buildLog(actions, sampleHeader({ hostname: "a-much-longer-host-name", startTime: 99999, pid: 4242 })).bytes;
      expect(Buffer.compare(a, a2)).toBe(0);
      const la = readLog(a), lb = readLog(b);
      expect(la.comparedJson).toBe(lb.comparedJson);
      expect(la.hostJson).not.toBe(lb.hostJson);
      // Bytes before the host section and after the header are identical.
      const cEnd = 16 + new DataView(a.buffer).getUint32(12, true);
      expect(Buffer.compare(a.subarray(0, cEnd), b.subarray(0, cEnd))).toBe(0);
      expect(Buffer.compare(a.subarray(la.headerBytes), b.subarray(lb.headerBytes))).toBe(0);
    }), { numRuns: Math.max(10, RUNS / 4) });
  });

  test("compared section is canonical: key order of the input does not matter", () => {
    const h1 = sampleHeader();
    const h2 = { compared: Object.fromEntries(Object.entries(h1.compared).reverse()) as typeof h1.compared, host: h1.host };
    const w = (h: typeof h1) => { const s = new MemorySink(); new LogWriter(s, h).finish({ finalIcount: 0, reason: "x", status: 0 }); return s.bytes(); };
    expect(Buffer.compare(w(h1), w(h2))).toBe(0);
  });
});

describe("writer", () => {
  test("chunk is handed to the sink whole and flushed; nothing before flushChunk", () => {
    const s = new MemorySink();
    const w = new LogWriter(s, sampleHeader());
    const afterHeader = s.length;
    w.event(5, EventKind.SERIAL_RX, { port: 0, byte: 1 });
    expect(s.length).toBe(afterHeader);
    expect(w.pendingBytes).toBeGreaterThan(0);
    const f = s.flushes;
    w.flushChunk();
    expect(s.flushes).toBe(f + 1);
    expect(s.length).toBeGreaterThan(afterHeader);
    w.flushChunk(); // nothing pending, no progress: writes nothing
    expect(s.flushes).toBe(f + 1);
    w.flushChunk(10); // progress only: an empty chunk recording icount 10
    const log = readLog(s.bytes());
    expect(log.truncated).toMatchObject({ atIcount: 10 });
  });

  test("rejects misuse without corrupting the chunk", () => {
    const s = new MemorySink();
    const w = new LogWriter(s, sampleHeader());
    w.event(5, EventKind.SERIAL_RX, { port: 0, byte: 1 });
    expect(() => w.event(4, EventKind.SERIAL_RX, { port: 0, byte: 1 })).toThrow(/backwards/);
    expect(() => w.event(6, EventKind.SERIAL_RX, { port: 0, byte: 256 })).toThrow(/byte/);
    expect(() => w.hash(6, { cpu: "xyz", ram: "", screen: "", devices: {} })).toThrow(/hex/);
    expect(() => w.hash(6, { cpu: "0011223344556677", ram: "00112233445566", screen: "0011223344556677", devices: {} })).toThrow(/hex/);
    expect(() => w.event(6, EventKind.UNKNOWN, { code: 0x40, raw: new Uint8Array() })).toThrow(/unassigned/);
    expect(() => w.event(6, 0x99 as never, {} as never)).toThrow(/unknown event kind/);
    w.event(7, EventKind.INPUT_END, {});
    w.finish({ finalIcount: 7, reason: "exit", status: 0 });
    expect(() => w.event(8, EventKind.INPUT_END, {})).toThrow(/finished/);
    expect(s.closed).toBe(true);
    expect(readLog(s.bytes()).events.map((e) => e.kind)).toEqual([EventKind.SERIAL_RX, EventKind.INPUT_END]);
  });

  test("--pack: images must match the header", () => {
    const img = new Uint8Array([1, 2, 3]);
    const header = sampleHeader({}, [{ role: "kernel", name: "k", data: img }]);
    expect(() => new LogWriter(new MemorySink(), header, { pack: [{ role: "kernel", name: "k", data: new Uint8Array([1, 2, 4]) }] })).toThrow(/not listed/);
    expect(imageInfo("kernel", "k", img).sha256).toBe("039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81");
  });

  test("FileSink: kill -9 loses only the chunk being built", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rrx-log-"));
    try {
      const path = join(dir, "crash.rrxlog");
      const script = join(dir, "crash.ts");
      const lib = import.meta.dir;
      writeFileSync(script, `
        import { FileSink, LogWriter } from ${JSON.stringify(join(lib, "writer.ts"))};
        import { EventKind } from ${JSON.stringify(join(lib, "format.ts"))};
        import { sampleHeader } from ${JSON.stringify(join(lib, "../../../test/support/log-testutil.ts"))};
        const w = new LogWriter(new FileSink(${JSON.stringify(path)}), sampleHeader());
        for (let i = 1; i <= 30; i++) { w.event(i * 10, EventKind.SERIAL_RX, { port: 0, byte: i }); if (i % 10 === 0) w.flushChunk(i * 10 + 5); }
        w.event(400, EventKind.SERIAL_RX, { port: 0, byte: 99 }); // never flushed
        process.kill(process.pid, "SIGKILL");
      `);
      const p = Bun.spawn([process.execPath, script], { stdout: "ignore", stderr: "pipe" });
      const code = await p.exited;
      expect(p.signalCode ?? code).toBe("SIGKILL");
      const log = readLog(new Uint8Array(readFileSync(path)));
      expect(log.trailer).toBeNull();
      expect(log.events.length).toBe(30);
      expect(log.truncated).toMatchObject({ atIcount: 305 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("reader errors", () => {
  test("bad magic, ELF, empty, unknown version", () => {
    expectError(new Uint8Array(), /^not an rrx log/);
    expectError(new TextEncoder().encode("hello world, not a log"), /^not an rrx log \(bad magic\)$/);
    expectError(new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1, 0]), /ELF kernel.*`rrx run`/);
    expectError(MAGIC.subarray(0, 5), /truncated inside its header/);
    const b = sampleLog();
    b[8] = 5;
    const e = expectError(b, /version 5 is not supported \(this rrx reads versions 1, 2, 3, 4; upgrade rrx\)/);
    expect(e.offset).toBe(8);
    expect(FORMAT_VERSION).toBe(1);
  });

  test("bad header CRC; bad chunk CRC names offset and icount", () => {
    const good = sampleLog();
    const h = readLog(good);
    const b1 = good.slice(); b1[20] ^= 1;
    expectError(b1, /^header CRC mismatch/);
    const chunk = h.chunks[2]!; // second events chunk
    const b2 = good.slice(); b2[chunk.offset + CHUNK_HEADER_BYTES + 1] ^= 0x40;
    const e = expectError(b2, new RegExp(`^chunk at offset ${chunk.offset} \\(icount ${chunk.startIcount}\\): CRC mismatch`));
    expect(e.offset).toBe(chunk.offset);
    expect(e.icount).toBe(chunk.startIcount);
    // Salvage mode keeps everything before the bad chunk.
    const s = readLog(b2, { salvage: true });
    expect(s.truncated).toMatchObject({ atIcount: chunk.startIcount, atOffset: chunk.offset });
    expect(s.events.length).toBe(3);
  });

  test("bad lengths and trailing garbage", () => {
    const good = sampleLog();
    const h = readLog(good);
    const b = good.slice();
    new DataView(b.buffer).setUint32(h.chunks[1]!.offset + 4, 0xfffffff0, true);
    expectError(b, /payload length 4294967280 exceeds the limit/);
    const c = good.slice();
    new DataView(c.buffer).setUint32(12, 0x7fffffff, true);
    expectError(c, /compared section length 2147483647 exceeds/);
    const d = new Uint8Array(good.length + 3); d.set(good);
    expectError(d, /3 unexpected bytes after the trailer/);
  });

  test("semantic errors behind a valid CRC", () => {
    const good = sampleLog();
    const h = readLog(good);
    const ev = h.chunks[1]!;
    const patch = (f: (dv: DataView, b: Uint8Array) => void) => { const b = good.slice(); f(new DataView(b.buffer), b); return fixCrcs(b); };
    expectError(patch((dv) => dv.setUint32(ev.offset + 24, 4, true)), /declares 4 events but holds 3/);
    expectError(patch((dv) => dv.setUint32(ev.offset + 24, 2, true)), /bytes after the chunk's 2 events/);
    expectError(patch((dv) => dv.setUint32(ev.offset + 8, 7, true)), /starts at icount 7 but the previous chunk ended at 0/);
    expectError(patch((_, b) => { b[ev.offset] = 0x5a; }), /unknown chunk kind 0x5a/);
    expectError(patch((_, b) => { b[ev.offset + CHUNK_HEADER_BYTES + 1] = 0x3f; }), /unknown event kind 0x3f/);
    expectError(patch((dv) => dv.setUint32(ev.offset + 16, 50, true)), /beyond the chunk's end icount 50/);
    const t = h.chunks[h.chunks.length - 1]!;
    // Trailer event count: the reason "debug-exit" (1+10 bytes), status, then eventCount.
    expectError(patch((_, b) => { b[t.offset + CHUNK_HEADER_BYTES + 12] = 8; }), /trailer says 8 events but the log holds 10/);
    // Compared section must stay valid JSON of the right shape.
    expectError(patch((_, b) => { b[16] = 0x5b; }), /compared section/);
  });
});

describe("reader totality (every byte string gives a ParsedLog or a LogError)", () => {
  const good = sampleLog();
  const full = readLog(good);
  const boundaries = new Map(full.chunks.map((c) => [c.offset, c.startIcount]));

  test("truncation at every byte offset", () => {
    for (let n = 0; n <= good.length; n++) {
      const r = outcome(good.subarray(0, n));
      if (n < full.headerBytes) {
        expect(isLog(r)).toBe(false);
        continue;
      }
      if (!isLog(r)) throw new Error(`prefix of ${n} bytes failed: ${r.message}`);
      if (n === good.length) { expect(r.truncated).toBeNull(); continue; }
      expect(r.truncated).not.toBeNull();
      expect(r.trailer).toBeNull();
      // Replay up to the last complete chunk: every complete chunk's events are there.
      const last = [...boundaries.keys()].filter((o) => o <= n).pop()!;
      expect(r.truncated!.atOffset).toBe(last);
      expect(r.truncated!.atIcount).toBe(boundaries.get(last)!);
      expect(r.events).toEqual(full.events.slice(0, r.events.length));
    }
  });

  test("every single-bit flip (CRC caught, and with CRCs recomputed)", () => {
    let logs = 0, errors = 0;
    for (let i = 0; i < good.length * 8; i++) {
      const b = good.slice();
      b[i >> 3]! ^= 1 << (i & 7);
      for (const x of [b, fixCrcs(b)]) {
        for (const salvage of [false, true]) {
          const r = outcome(x, { salvage });
          if (isLog(r)) logs++; else errors++;
        }
      }
    }
    expect(logs + errors).toBe(good.length * 8 * 4);
    expect(errors).toBeGreaterThan(0);
  });

  test("property: random corruption, splices and garbage", () => {
    const mutation = fc.record({
      flips: fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 6 }),
      cut: fc.option(fc.nat(), { nil: null }),
      insert: fc.option(fc.tuple(fc.nat(), fc.uint8Array({ maxLength: 16 })), { nil: null }),
      fix: fc.boolean(),
      salvage: fc.boolean(),
    });
    fc.assert(fc.property(mutation, ({ flips, cut, insert, fix, salvage }) => {
      let b: Uint8Array = good.slice();
      for (const [pos, v] of flips) b[pos % b.length] = v;
      if (insert) {
        const at = insert[0] % (b.length + 1);
        b = new Uint8Array([...b.subarray(0, at), ...insert[1], ...b.subarray(at)]);
      }
      if (cut !== null) b = b.subarray(0, cut % (b.length + 1));
      if (fix) b = fixCrcs(b);
      outcome(b, { salvage });
    }), { numRuns: RUNS * 20 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (tail, salvage) => {
      // A valid header followed by garbage chunks with valid CRCs.
      outcome(fixCrcs(new Uint8Array([...good.subarray(0, full.headerBytes), ...tail])), { salvage });
      outcome(tail);
    }), { numRuns: RUNS * 20 });
  });

  test("property: corrupting random generated logs", () => {
    fc.assert(fc.property(actionsArb, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }), (actions, flips) => {
      const b = buildLog(actions).bytes;
      for (const [pos, v] of flips) b[pos % b.length] = v;
      outcome(fixCrcs(b));
      outcome(b);
    }), { numRuns: RUNS * 2 });
  });

  test("huge declared lengths do not allocate: a 4 GiB event body claim", () => {
    const s = new MemorySink();
    const w = new LogWriter(s, sampleHeader());
    w.event(1, EventKind.HOST_DATA, { name: "n", data: new Uint8Array(3) });
    w.finish({ finalIcount: 1, reason: "exit", status: 0 });
    const b = s.bytes();
    const log = readLog(b);
    const off = log.chunks[0]!.offset + CHUNK_HEADER_BYTES;
    // delta(1) kind(0x40) len(varint) ...: replace the body length with 2^40.
    const patched = new Uint8Array([...b.subarray(0, off + 2), 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, ...b.subarray(off + 3)]);
    new DataView(patched.buffer).setUint32(log.chunks[0]!.offset + 4, log.chunks[0]!.size - 32 + 5, true);
    expectError(fixCrcs(patched), /runs past the chunk/);
  });
});

describe("lib/replay stays deterministic", () => {
  test("no host clocks or randomness in non-test sources", () => {
    const dir = join(import.meta.dir, "..");
    for (const f of readdirSync(dir, { recursive: true }) as string[]) {
      if (!f.endsWith(".ts") || f.endsWith(".test.ts")) continue;
      const src = readFileSync(join(dir, f), "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
      expect({ f, hit: /\bDate\b|performance\.now|Math\.random|hrtime/.test(src) }).toEqual({ f, hit: false });
    }
  });
});

// The header CRC is the IEEE CRC of everything before it.
test("header layout matches docs/LOG-FORMAT.md", () => {
  const b = sampleLog();
  const dv = new DataView(b.buffer);
  expect([...b.subarray(0, 8)]).toEqual([...MAGIC]);
  expect(dv.getUint16(8, true)).toBe(1);
  expect(dv.getUint16(10, true)).toBe(1); // PACKED
  const c = dv.getUint32(12, true);
  const hl = dv.getUint32(16 + c, true);
  const crcAt = 20 + c + hl;
  expect(dv.getUint32(crcAt, true)).toBe(crc32(b, 0, crcAt));
  expect(String.fromCharCode(b[crcAt + 4]!)).toBe("I");
});

test("the worked example in docs/LOG-FORMAT.md is byte-exact", () => {
  const s = new MemorySink();
  const w = new LogWriter(s, { compared: { memoryBytes: 1048576, devices: ["uart0"], ips: 1e8, args: [], images: [], bootDate: 0 }, host: { hostname: "h" } });
  w.event(300, EventKind.SERIAL_RX, { port: 0, byte: 0x41 });
  w.event(300, EventKind.IDLE_SKIP, { ns: 1000 });
  w.hash(400, { cpu: "0123456789abcdef", ram: "1111111111111111", screen: "2222222222222222", devices: { uart0: "3333333333333333" } });
  w.flushChunk(500);
  w.finish({ finalIcount: 600, reason: "exit", status: 0 });
  const b = s.bytes();
  const hex = (o: number, n: number) => Buffer.from(b.subarray(o, o + n)).toString("hex");
  expect(b.length).toBe(0x102);
  expect(hex(0x82, 4)).toBe("56ecfa9e");
  expect(hex(0xa2, 20)).toBe("ac0201004100" + "04e807" + "6405010801057561727430");
  expect(hex(0xd6, 4)).toBe("eb4418d5");
  expect(hex(0xf6, 12)).toBe("04657869740003006d25d84c");
});
