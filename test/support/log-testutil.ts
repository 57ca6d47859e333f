/**
 * Test helpers for the log format (used by *.test.ts only): fast-check arbitraries for
 * events and hash records, a sample log, and a CRC fixer that lets fuzzing reach the
 * payload decoders behind the CRC checks.
 */
import fc from "fast-check";
import { crc32 } from "../../lib/replay/log/crc32.ts";
import {
  CHUNK_HEADER_BYTES, EventKind, imageInfo, LogError,
  type EventKindCode, type HashRecord, type LogHeader, type PayloadMap,
} from "../../lib/replay/log/format.ts";
import { bytesToHex } from "../../lib/replay/hash.ts";
import { LogWriter, MemorySink } from "../../lib/replay/log/writer.ts";
import { readLog, type ParsedLog, type ReadOptions } from "../../lib/replay/log/reader.ts";

export const RUNS = Number(process.env.RRX_PROPERTY_RUNS ?? 100);

export function sampleHeader(host: Record<string, unknown> = {}, images: { role: string; name: string; data: Uint8Array }[] = []): LogHeader {
  return {
    compared: {
      memoryBytes: 16 << 20,
      devices: ["pic", "pit", "uart0", "i8042", "vga"],
      ips: 100_000_000,
      args: ["--mem", "16M", "--append", "console=ttyS0"],
      images: images.map((i) => imageInfo(i.role, i.name, i.data)),
      bootDate: 1_700_000_000,
    },
    host: { rrxVersion: "0.1.0", hostname: "test-host", platform: "linux-x64", startTime: 1_700_000_000_123, ...host },
  };
}

const hexHash = (w: number) => fc.uint8Array({ minLength: w, maxLength: w }).map(bytesToHex);
const deviceName = fc.oneof(
  fc.constantFrom("pit", "pic", "uart0", "i8042", "vga", "__proto__", "constructor", "toString", "π-dev"),
  fc.string({ minLength: 1, maxLength: 12 }),
);

export const hashRecordArb: fc.Arbitrary<HashRecord> = fc.constantFrom(8, 16).chain((w) =>
  fc.record({
    cpu: hexHash(w),
    ram: hexHash(w),
    screen: hexHash(w),
    devices: fc.uniqueArray(fc.tuple(deviceName, hexHash(w)), { maxLength: 5, selector: (t) => t[0] })
      .map((es) => Object.fromEntries(es) as Record<string, string>),
    pages: fc.option(fc.array(hexHash(w), { maxLength: 6 }), { nil: undefined }),
  }).map((r) => {
    const out: HashRecord = { cpu: r.cpu, ram: r.ram, screen: r.screen, devices: r.devices };
    if (r.pages !== undefined) out.pages = r.pages;
    return out;
  }),
);

export type AnyEvent = { [K in EventKindCode]: { kind: K; payload: PayloadMap[K] } }[EventKindCode];

export const eventArb: fc.Arbitrary<AnyEvent> = fc.oneof(
  fc.record({ port: fc.integer({ min: 0, max: 255 }), byte: fc.integer({ min: 0, max: 255 }) })
    .map((payload) => ({ kind: EventKind.SERIAL_RX, payload })),
  fc.uint8Array({ maxLength: 8 }).map((bytes) => ({ kind: EventKind.KEY, payload: { bytes } })),
  fc.record({ dx: fc.integer({ min: -32768, max: 32767 }), dy: fc.integer({ min: -32768, max: 32767 }), buttons: fc.integer({ min: 0, max: 255 }) })
    .map((payload) => ({ kind: EventKind.MOUSE, payload })),
  fc.oneof(fc.nat(), fc.maxSafeNat()).map((ns) => ({ kind: EventKind.IDLE_SKIP, payload: { ns } })),
  hashRecordArb.map((payload) => ({ kind: EventKind.HASH, payload })),
  fc.constant({ kind: EventKind.CHECKPOINT_HINT, payload: {} }),
  fc.constant({ kind: EventKind.INPUT_END, payload: {} }),
  fc.record({ name: fc.string({ minLength: 1, maxLength: 10 }), data: fc.uint8Array({ maxLength: 40 }) })
    .map((payload) => ({ kind: EventKind.HOST_DATA, payload })),
  fc.record({ code: fc.integer({ min: 0x41, max: 0x7f }), raw: fc.uint8Array({ maxLength: 20 }) })
    .map((payload) => ({ kind: EventKind.UNKNOWN, payload })),
) as fc.Arbitrary<AnyEvent>;

/** A writer action: an event `delta` icounts after the previous one, or a chunk flush. */
export type Action =
  | { t: "ev"; delta: number; ev: AnyEvent }
  | { t: "flush"; advance: number | null };

export const actionsArb: fc.Arbitrary<Action[]> = fc.array(
  fc.oneof(
    { weight: 6, arbitrary: fc.record({ t: fc.constant("ev" as const), delta: fc.oneof(fc.constant(0), fc.nat(300), fc.nat(1e12)), ev: eventArb }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant("flush" as const), advance: fc.option(fc.nat(1000), { nil: null }) }) },
  ),
  { maxLength: 60 },
);

export interface Built { bytes: Uint8Array; events: { icount: number; kind: number; payload: unknown }[]; finalIcount: number }

/** Drive a LogWriter with actions; returns the bytes and the expected event list. */
export function buildLog(actions: Action[], header = sampleHeader(), finish = true, maxChunkBytes?: number): Built {
  const sink = new MemorySink();
  const w = new LogWriter(sink, header, { maxChunkBytes });
  let ic = 0;
  const events: Built["events"] = [];
  for (const a of actions) {
    if (a.t === "ev") {
      ic += a.delta;
      w.event(ic, a.ev.kind, a.ev.payload as never);
      events.push({ icount: ic, kind: a.ev.kind, payload: a.ev.payload });
    } else if (a.advance === null) w.flushChunk();
    else { ic += a.advance; w.flushChunk(ic); }
  }
  if (finish) w.finish({ finalIcount: ic + 5, reason: "exit", status: -3 });
  else w.flushChunk();
  return { bytes: sink.bytes(), events, finalIcount: ic + 5 };
}

/** A small but complete log touching every kind and chunk type. */
export function sampleLog(): Uint8Array {
  const img = new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]);
  const header = sampleHeader({}, [{ role: "kernel", name: "hello.elf", data: img }]);
  const sink = new MemorySink();
  const w = new LogWriter(sink, header, { pack: [{ role: "kernel", name: "hello.elf", data: img }] });
  const rec: HashRecord = { cpu: "00112233445566aa", ram: "0123456789abcdef", screen: "fedcba9876543210", devices: { pit: "1111111111111111", pic: "2222222222222222" } };
  w.event(100, EventKind.SERIAL_RX, { port: 0, byte: 0x41 });
  w.event(100, EventKind.KEY, { bytes: new Uint8Array([0x1c]) });
  w.hash(500, rec);
  w.flushChunk(1000);
  w.event(1200, EventKind.MOUSE, { dx: -3, dy: 7, buttons: 1 });
  w.event(1300, EventKind.IDLE_SKIP, { ns: 123456789 });
  w.event(1300, EventKind.HOST_DATA, { name: "virtio", data: new Uint8Array([1, 2, 3]) });
  w.event(1301, EventKind.UNKNOWN, { code: 0x70, raw: new Uint8Array([9, 9]) });
  w.hash(1400, { ...rec, pages: ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"] });
  w.flushChunk();
  w.event(1500, EventKind.CHECKPOINT_HINT, {});
  w.event(1600, EventKind.INPUT_END, {});
  w.finish({ finalIcount: 2000, reason: "debug-exit", status: 1, hashes: rec });
  return sink.bytes();
}

/** Parse; the only acceptable failure is a LogError. Anything else is rethrown. */
export function outcome(bytes: Uint8Array, opts?: ReadOptions): ParsedLog | LogError {
  try {
    return readLog(bytes, opts);
  } catch (e) {
    if (e instanceof LogError) {
      if (e.message.includes("\n") || e.message.length === 0) throw new Error(`LogError message not one line: ${JSON.stringify(e.message)}`);
      return e;
    }
    throw new Error(`readLog threw a non-LogError on ${bytes.length} bytes [${bytesToHex(bytes.subarray(0, 64))}...]: ${e}`);
  }
}

/**
 * Recompute the header CRC and every chunk CRC it can find by following the declared
 * lengths, so that corrupted bytes reach the decoders behind the CRC checks.
 */
export function fixCrcs(input: Uint8Array): Uint8Array {
  const b = input.slice();
  const dv = new DataView(b.buffer);
  if (b.length < 20) return b;
  const cLen = dv.getUint32(12, true);
  if (16 + cLen + 4 > b.length) return b;
  const hLen = dv.getUint32(16 + cLen, true);
  const crcOff = 16 + cLen + 4 + hLen;
  if (crcOff + 4 > b.length) return b;
  dv.setUint32(crcOff, crc32(b, 0, crcOff), true);
  let off = crcOff + 4;
  while (off + CHUNK_HEADER_BYTES <= b.length) {
    const pLen = dv.getUint32(off + 4, true);
    const end = off + CHUNK_HEADER_BYTES + pLen;
    if (end + 4 > b.length) break;
    dv.setUint32(end, crc32(b, off, end), true);
    off = end + 4;
  }
  return b;
}
