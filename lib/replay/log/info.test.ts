import { describe, expect, test } from "bun:test";
import { EventKind } from "./format.ts";
import { diffLogs, eventsJsonLines, eventToJson, filterEvents, formatEvent, formatEvents, formatLogInfo, logInfo, resolveKind } from "./info.ts";
import { readLog } from "./reader.ts";
import { LogWriter, MemorySink } from "./writer.ts";
import { buildLog, sampleHeader, sampleLog } from "../../../test/support/log-testutil.ts";

describe("rrx log info", () => {
  const log = readLog(sampleLog());

  test("summary: header, counts and bytes per kind, icount span", () => {
    const i = logInfo(log);
    expect(i.events).toBe(10);
    expect(i.firstEventIcount).toBe(100);
    expect(i.lastEventIcount).toBe(1600);
    expect(i.endIcount).toBe(2000);
    expect(i.packed).toBe(true);
    expect(i.images[0]).toMatchObject({ role: "kernel", name: "hello.elf", packed: true });
    expect(i.chunksByKind).toEqual({ IMAGE: 1, EVENTS: 3, TRAILER: 1 });
    expect(i.kinds.find((k) => k.kind === "SERIAL_RX")).toEqual({ kind: "SERIAL_RX", code: 1, count: 1, bytes: 4 });
    expect(i.kinds.find((k) => k.kind === "HASH")!.count).toBe(2);
    expect(i.kinds.find((k) => k.code === 0x70)!.kind).toBe("KIND_0x70");
    expect(i.idleNs).toBe(123456789);
    const text = formatLogInfo(i);
    expect(text).toContain("rrx log v1, 859 bytes");
    expect(text).toContain("end: icount 2000, debug-exit status 1, 10 events");
    expect(text).not.toContain("TRUNCATED");
  });

  test("truncated log says how far it is complete", () => {
    const b = sampleLog();
    const cut = readLog(b.subarray(0, log.chunks[2]!.offset + 5));
    expect(formatLogInfo(logInfo(cut))).toContain("TRUNCATED: complete up to icount 1000");
  });

  test("events: one line each, JSON lines, filters", () => {
    const lines = formatEvents(log);
    expect(lines.length).toBe(10);
    expect(lines[0]).toBe("           100 SERIAL_RX        port=0 byte=0x41 'A'");
    expect(lines[9]).toBe("          1600 INPUT_END");
    const json = eventsJsonLines(log).map((l) => JSON.parse(l));
    expect(json[1]).toEqual({ icount: 100, kind: "KEY", code: 2, payload: { bytes: "1c" } });
    expect(json[6]).toEqual({ icount: 1301, kind: "KIND_0x70", code: 0x70, payload: { code: 0x70, raw: "0909" } });
    expect(filterEvents(log, { kinds: ["hash"] }).map((e) => e.icount)).toEqual([500, 1400]);
    expect(filterEvents(log, { kinds: ["0x70"] }).length).toBe(1);
    expect(filterEvents(log, { fromIcount: 1300, toIcount: 1400 }).length).toBe(4);
    expect(filterEvents(log, { limit: 2 }).length).toBe(2);
    expect(() => resolveKind("bogus")).toThrow(/unknown event kind "bogus" \(kinds: SERIAL_RX/);
    expect(resolveKind("idle_skip")).toBe(EventKind.IDLE_SKIP);
    for (const e of log.events) {
      expect(formatEvent(e)).not.toContain("\n");
      expect(() => JSON.stringify(eventToJson(e))).not.toThrow();
    }
  });
});

describe("diffLogs", () => {
  test("ignores host section and chunking", () => {
    const actions = [
      { t: "ev" as const, delta: 10, ev: { kind: EventKind.SERIAL_RX, payload: { port: 0, byte: 1 } } },
      { t: "flush" as const, advance: 5 },
      { t: "ev" as const, delta: 10, ev: { kind: EventKind.KEY, payload: { bytes: new Uint8Array([1]) } } },
    ];
    const a = readLog(buildLog(actions, sampleHeader({ hostname: "a" })).bytes);
    const b = readLog(buildLog([actions[0]!, actions[2]!].map((x, i) => (i === 1 ? { ...x, delta: 15 } : x)), sampleHeader({ hostname: "b" })).bytes);
    expect(diffLogs(a, b)).toEqual([]);
  });

  test("names the first differing event, hash components and header keys", () => {
    const rec = { cpu: "0000000000000001", ram: "0000000000000002", screen: "0000000000000003", devices: { pit: "0000000000000004" } };
    const mk = (ram: string, mem: number) => {
      const h = sampleHeader();
      h.compared.memoryBytes = mem;
      const s = new MemorySink();
      const w = new LogWriter(s, h);
      w.event(5, EventKind.SERIAL_RX, { port: 0, byte: 1 });
      w.hash(100, { ...rec, ram });
      w.finish({ finalIcount: 200, reason: "exit", status: 0 });
      return readLog(s.bytes());
    };
    expect(diffLogs(mk("0000000000000002", 1), mk("00000000000000ff", 2))).toEqual([
      "header: memoryBytes differs",
      "event 1 at icount 100: hash mismatch: ram differ",
    ]);
  });
});
