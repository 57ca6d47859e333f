/**
 * Go live and re-record (engine level): replay test/gdb/kernel/dbg.elf's recording to N, go
 * live with scripted input and a recording, run to the guest's exit; the new log (format v2,
 * starting from a SNAPSHOT chunk) replays on its own with --verify semantics to the same final
 * state and transcript. Plus the v2 format's errors: old readers, truncation, bit flips,
 * garbage snapshots.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { machineFromLog, openLog, replayToEnd, verifyLog, type OpenedLog } from "./replayer.ts";
import { engineFromLog } from "./engine.ts";
import { LiveInput } from "./live.ts";
import { Recorder } from "./recorder.ts";
import { MemorySink } from "./log/writer.ts";
import { readLog } from "./log/reader.ts";
import { diffLogs, formatLogInfo, logInfo } from "./log/info.ts";
import { buildMachine, imagesOf, MachineHasher } from "./session.ts";
import { ByteReader, ChunkKind, DecodeError, LogError, decodeSnapshotPayload, encodeSnapshotPayload } from "./log/format.ts";
import { applyState } from "./start-state.ts";
import { diffHashes, type HashRecord } from "./hash.ts";
import { fixCrcs, outcome } from "../../test/support/log-testutil.ts";
import { runReplay } from "../machine/driver.ts";
import { parseScript } from "../machine/script.ts";
import { BUN, DBG_ELF, elfSymbols, KERNEL_DIR, RRX, RUNS } from "../../test/gdb/record.ts";
import { readFileSync } from "node:fs";

let dir = "";
let src: OpenedLog;
const BUMP = elfSymbols(new Uint8Array(readFileSync(DBG_ELF))).get("bump")!;
const SCRIPT = parseScript('at 1ms serial "xyz"\n');
const HASH_INTERVAL = 100_000;
const LIVE_AT = 5000;

interface LiveRun { bytes: Uint8Array; serial: string; final: HashRecord; icount: number; status: number }

/** Replay the source to `at`, go live with SCRIPT and a recording, run to the guest's exit. */
async function goLiveAndRecord(from: OpenedLog, at: number, bpHits = 0, script = SCRIPT, stopAfterBps = false): Promise<LiveRun> {
  const e = engineFromLog(from);
  await e.seek(at);
  expect(e.icount).toBe(at);
  const sink = new MemorySink();
  let serial = "";
  e.goLive((m) => {
    m.onOutput = (ch, b) => { if (ch === "com1") serial += Buffer.from(b).toString("latin1"); };
    const { snapshot: _s, ...compared } = from.log.header.compared;
    const recorder = Recorder.startFrom(m, sink, { compared, host: { hostname: "test" } }, {
      hashInterval: HASH_INTERVAL, pack: imagesOf(from.cfg).map((x) => ({ role: x.info.role, name: x.info.name, data: x.data })),
    });
    return new LiveInput(m, { script, recorder, recordPath: "memory" });
  });
  if (bpHits) {
    e.setBreakpoints([BUMP]);
    for (let i = 0; i < bpHits; i++) {
      expect((await e.continueForward()).kind).toBe("breakpoint");
      for (let k = 0; k < 7; k++) expect((await e.stepForward()).kind).toBe("step");
      expect((await e.continueForward()).kind).toBe("breakpoint"); // the next bump
    }
    if (stopAfterBps) {
      // The session ends here (gdb detaches) in the middle of the run.
      const msg = e.liveInput!.finish("detach", 0, e.isCanonical);
      expect(msg).toContain("recorded");
      return { bytes: sink.bytes(), serial, final: new MachineHasher(e.m).record(), icount: e.icount, status: 0 };
    }
    e.setBreakpoints([]);
  }
  const r = await e.continueForward();
  expect(r.kind).toBe("exited");
  expect(e.liveInput!.recording).toBe(false); // the exit finished the recording
  return { bytes: sink.bytes(), serial, final: new MachineHasher(e.m).record(), icount: e.icount, status: r.kind === "exited" ? r.status : -1 };
}

function save(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

function verifyFile(path: string): { r: ReturnType<typeof verifyLog>; serial: string; opened: OpenedLog } {
  const opened = openLog(path, { searchDirs: [] });
  let serial = "";
  const r = verifyLog(opened, (ch, b) => { if (ch === "com1") serial += Buffer.from(b).toString("latin1"); });
  r.machine!.flushOutput();
  return { r, serial, opened };
}

let live: LiveRun;
let newLog = "";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "rrx-golive-test-"));
  const out = join(dir, "src.rrx");
  const p = Bun.spawnSync([BUN, RRX, "run", "dbg.elf", "--input", "dbg.input.txt", "--record", out, "--pack", "--hash-interval", String(HASH_INTERVAL),
    "--serial", "none", "--rtc", "2026-01-01T00:00:00Z", "--no-realtime", "--board-version", "1"], { cwd: KERNEL_DIR, stdout: "pipe", stderr: "pipe" });
  if (!existsSync(out)) throw new Error(`recording failed: ${p.stderr.toString()}`);
  src = openLog(out);
  live = await goLiveAndRecord(src, LIVE_AT);
  newLog = save("live.rrx", live.bytes);
}, 60_000);
afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

describe("go live and re-record", () => {
  test("the new log is v4 (v2's snapshot start, the CPU model, the board version), starts at N, and holds the scripted input", () => {
    const log = readLog(live.bytes);
    expect(log.version).toBe(4);
    expect(log.header.compared.cpu).toBe("i686");
    expect(log.header.compared.boardVersion).toBe(1); // the source log's (see test/gdb/record.ts for why 1)
    expect(log.startIcount).toBe(LIVE_AT);
    expect(log.snapshot!.icount).toBe(LIVE_AT);
    expect(log.chunks.map((c) => c.kind).slice(0, 2)).toEqual([ChunkKind.IMAGE, ChunkKind.SNAPSHOT]);
    expect(log.chunks[2]!.startIcount).toBe(LIVE_AT);
    expect(log.header.compared.snapshot).toMatchObject({ icount: LIVE_AT });
    expect(log.events.filter((e) => e.kind === 0x01).length).toBe(3);
    expect(log.events.every((e) => e.icount >= LIVE_AT)).toBe(true);
    expect(log.hashes.length).toBeGreaterThan(3);
    expect(log.trailer).toMatchObject({ reason: "exit", status: 1, finalIcount: live.icount });
    const text = formatLogInfo(logInfo(log));
    expect(text).toContain("rrx log v4");
    expect(text).toContain("machine: pc board version 1, i386 CPU i686, 33554432 bytes RAM");
    expect(text).toContain(`starts from a snapshot at icount ${LIVE_AT}`);
    expect(text).toMatch(/chunks: \d+ \(1 IMAGE, 1 SNAPSHOT, \d+ EVENTS, 1 TRAILER\)/);
  });

  test("it replays on its own with verification: same final state, same transcript", () => {
    expect(live.serial).toBe("dbg e2730 363\n"); // 'x'+'y'+'z' = 363: the live input, not the recording's "abc"
    const { r, serial } = verifyFile(newLog);
    expect(r.ok).toBe(true);
    expect(r.hashesChecked).toBeGreaterThan(3);
    expect(r.icount).toBe(live.icount);
    expect(r.end).toEqual({ kind: "exit", status: 1 });
    expect(serial).toBe(live.serial);
    expect(diffHashes(new MachineHasher(r.machine!).record(), live.final).equal).toBe(true);
  });

  test("replayToEnd on a machine built from the header starts from the snapshot", () => {
    const opened = openLog(newLog);
    const m = buildMachine(opened.cfg);
    expect(replayToEnd(m, opened)).toEqual({ kind: "exit", status: 1 });
    expect(diffHashes(new MachineHasher(m).record(), live.final).equal).toBe(true);
    expect(() => replayToEnd(buildMachine(opened.cfg), opened, 100)).toThrow(/starts at instruction 5000 \(from a snapshot\); cannot stop at 100/);
  });

  test("going live twice at the same point with the same input gives the same log (but the host section)", async () => {
    const again = await goLiveAndRecord(src, LIVE_AT);
    const a = readLog(live.bytes), b = readLog(again.bytes);
    expect(diffLogs(a, b)).toEqual([]);
    expect(a.comparedJson).toBe(b.comparedJson);
    expect(Buffer.from(again.bytes.subarray(b.headerBytes)).equals(Buffer.from(live.bytes.subarray(a.headerBytes)))).toBe(true);
  }, 60_000);

  test("breakpoint stops and single steps while live and recording do not break the replay", async () => {
    const run = await goLiveAndRecord(src, 2000, 3);
    expect(run.serial).toBe("dbg e2730 363\n");
    const { r, serial } = verifyFile(save("bp.rrx", run.bytes));
    expect(r.ok).toBe(true);
    expect(r.icount).toBe(run.icount);
    expect(serial).toBe(run.serial);
  }, 60_000);

  test("dense input between breakpoint stops and steps; the session ending at a breakpoint", async () => {
    const lines = Array.from({ length: 40 }, (_, i) => `at ${i * 2}us serial "\\x${(0x41 + (i % 26)).toString(16)}"`);
    lines.push("at 90us key 1c f0 1c", "at 95us mouse 1 -1 0");
    const dense = parseScript(lines.join("\n"));
    for (const stop of [false, true]) {
      const run = await goLiveAndRecord(src, 18_500, 12, dense, stop);
      const log = readLog(run.bytes);
      expect(log.events.filter((e) => e.kind === 0x01).length).toBeGreaterThan(stop ? 0 : 39);
      const { r } = verifyFile(save(`dense-${stop}.rrx`, run.bytes));
      expect(r.ok).toBe(true);
      expect(r.icount).toBe(run.icount);
      if (!stop) expect(diffHashes(new MachineHasher(r.machine!).record(), run.final).equal).toBe(true);
      else expect(log.trailer).toMatchObject({ reason: "detach", finalIcount: run.icount });
    }
  }, 60_000);

  test("a live recording of a log that itself starts from a snapshot", async () => {
    const opened = openLog(newLog);
    const run = await goLiveAndRecord(opened, 30_000);
    const log = readLog(run.bytes);
    expect(log.startIcount).toBe(30_000);
    const { r } = verifyFile(save("live2.rrx", run.bytes));
    expect(r.ok).toBe(true);
  }, 60_000);

  test("the engine over a v2 log begins at the snapshot; seek equals a fresh replay", async () => {
    const opened = openLog(newLog);
    const e = engineFromLog(opened, { sparseInterval: 4096 });
    expect(e.begin).toBe(LIVE_AT);
    expect((await e.stepBack()).kind).toBe("begin");
    e.setBreakpoints([BUMP]);
    expect((await e.continueForward()).kind).toBe("breakpoint");
    expect((await e.continueBackward()).kind).toBe("begin");
    expect(e.icount).toBe(LIVE_AT);
    e.setBreakpoints([]);
    for (const t of [LIVE_AT, 7000, 19_000, 25_000, 12_345]) {
      await e.seek(t);
      const m = machineFromLog(opened);
      runReplay(m, opened.events, { until: t });
      expect(diffHashes(new MachineHasher(e.m).record(), new MachineHasher(m).record()).equal).toBe(true);
    }
  }, 60_000);
});

/** The live log with compared-section keys renamed (same length: unknown extra keys). */
function withoutKeys(bytes: Uint8Array, ...names: string[]): Uint8Array {
  const b = bytes.slice();
  for (const name of names) {
    const key = new TextEncoder().encode(`"${name}":`);
    const at = b.findIndex((_, i) => key.every((k, j) => b[i + j] === k));
    expect(at).toBeGreaterThan(0);
    b[at + name.length] = 0x58; // its last letter becomes X
  }
  return b;
}

describe("v2 to v4 logs: what cannot read them says so in one line", () => {
  test("a reader that knows only v1, v2 or v3 rejects a v4 log with a clear error", () => {
    for (const maxVersion of [1, 2, 3]) {
      const e = outcome(live.bytes, { maxVersion });
      expect(e).toBeInstanceOf(LogError);
      expect((e as LogError).message).toMatch(/^log format version 4 is not supported \(this rrx reads versions? [123, ]+; upgrade rrx\); version 4 logs name their board version$/);
    }
    // a v3 log (the board-version key renamed) gives v3's own hint to a v1/v2 reader
    const v3 = withoutKeys(live.bytes, "boardVersion");
    v3[8] = 3;
    for (const maxVersion of [1, 2]) {
      expect((outcome(fixCrcs(v3), { maxVersion }) as LogError).message).toMatch(/^log format version 3 is not supported .*; version 3 logs name their CPU model$/);
    }
    // and v1 logs (the golden logs, recorded before CPU models) still read with it
    expect(outcome(readFileSync(join(import.meta.dir, "../../golden/hello-v1.rrx")), { maxVersion: 1 })).not.toBeInstanceOf(LogError);
  });

  test("a log before v3 cannot name a CPU model", () => {
    const b = live.bytes.slice();
    b[8] = 2;
    const e = outcome(fixCrcs(b));
    expect((e as LogError).message).toBe("header: a version 2 log cannot name a CPU model (cpu needs version 3)");
  });

  test("a log before v4 cannot name a board version", () => {
    const b = live.bytes.slice();
    b[8] = 3;
    const e = outcome(fixCrcs(b));
    expect((e as LogError).message).toBe("header: a version 3 log cannot name a board version (boardVersion needs version 4)");
  });

  test("a SNAPSHOT chunk in a v1 log is an unknown chunk kind (v1 rules unchanged)", () => {
    const b = withoutKeys(live.bytes, "cpu", "boardVersion");
    b[8] = 1;
    const e = outcome(fixCrcs(b));
    expect(e).toBeInstanceOf(LogError);
    expect((e as LogError).message).toMatch(/unknown chunk kind 0x53/);
  });

  test("a snapshot the header does not announce, or the other way round, is an error", () => {
    const log = readLog(live.bytes);
    const snap = log.chunks.find((c) => c.kind === ChunkKind.SNAPSHOT)!;
    // drop the SNAPSHOT chunk: the events chunk comes first
    const cut = new Uint8Array(live.bytes.length - snap.size);
    cut.set(live.bytes.subarray(0, snap.offset));
    cut.set(live.bytes.subarray(snap.offset + snap.size), snap.offset);
    expect((outcome(cut) as LogError).message).toMatch(/EVENTS chunk before the SNAPSHOT chunk the header announces/);
  });

  test("rrx replay of a log whose snapshot does not fit this build: one line", () => {
    const m = buildMachine(src.cfg);
    const bad = decodeSnapshotPayload(new ByteReader(encodeSnapshotPayload(new Uint8Array([1, 2, 3]), m.ram), 0), 0, m.ram.length);
    let err: unknown;
    try { applyState(m, bad); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(LogError);
    expect((err as LogError).message).toMatch(/^the log's snapshot does not fit this rrx build's machine state \([^\n]*\)$/);
  });
});

describe("v2 logs: truncation and bit flips in the snapshot chunk", () => {
  test("cut anywhere inside the snapshot chunk: truncated, and openLog says there is nothing to replay", () => {
    const log = readLog(live.bytes);
    const snap = log.chunks.find((c) => c.kind === ChunkKind.SNAPSHOT)!;
    const cuts = new Set<number>([snap.offset, snap.offset + 1, snap.offset + 27, snap.offset + 28, snap.offset + snap.size - 1]);
    for (let i = 0; i < 60; i++) cuts.add(snap.offset + Math.floor((snap.size * i) / 60));
    for (const at of cuts) {
      const o = outcome(live.bytes.subarray(0, at));
      if (o instanceof LogError) throw new Error(`cut at ${at}: ${o.message}`);
      expect(o.snapshot).toBeNull();
      expect(o.truncated).not.toBeNull();
    }
    const p = save("cut.rrx", live.bytes.subarray(0, snap.offset + 100));
    expect(() => openLog(p)).toThrow(/ends before its snapshot chunk .*; nothing to replay$/);
    // cut after the snapshot: replayable up to where it is complete
    const t = log.chunks[log.chunks.length - 1]!;
    const v = verifyFile(save("cut2.rrx", live.bytes.subarray(0, t.offset + 3)));
    expect(v.r.ok).toBe(true);
    expect(v.r.truncated).toBeDefined();
  });

  test("every sampled bit flip in the snapshot chunk gives a one-line LogError (CRC, or behind a fixed CRC: SHA-256/decoder)", () => {
    const log = readLog(live.bytes);
    const snap = log.chunks.find((c) => c.kind === ChunkKind.SNAPSHOT)!;
    fc.assert(fc.property(fc.integer({ min: 0, max: snap.size - 1 }), fc.integer({ min: 0, max: 7 }), fc.boolean(), (off, bit, fix) => {
      const b = live.bytes.slice();
      b[snap.offset + off]! ^= 1 << bit;
      const o = outcome(fix ? fixCrcs(b) : b);
      if (fix && off >= snap.size - 4) return !(o instanceof LogError); // the CRC itself, recomputed: the original log
      // a flipped length can make the file look cut short: then there is no snapshot to use
      if (!(o instanceof LogError)) return o.snapshot === null && o.truncated !== null;
      return o.message.length > 0;
    }), { numRuns: Math.max(50, RUNS * 3) });
  });

  test("the snapshot decoder and restore are total: DecodeError or LogError only, never a crash", () => {
    const m = buildMachine(src.cfg);
    const good = encodeSnapshotPayload(new Uint8Array(64).fill(7), m.ram);
    fc.assert(fc.property(fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => { const b = good.slice(); b[i]! ^= x; return b; }),
      fc.nat(good.length).map((n) => good.subarray(0, n)),
    ), (bytes) => {
      try {
        const s = decodeSnapshotPayload(new ByteReader(bytes, 0), 0, m.ram.length);
        try { applyState(m, s); } catch (e) { if (!(e instanceof LogError)) throw e; }
        return true;
      } catch (e) {
        return e instanceof DecodeError;
      }
    }), { numRuns: Math.max(50, RUNS * 2) });
  });

  test("the encoding is canonical: only non-zero pages, in order; it round-trips", () => {
    const ram = new Uint8Array(5 * 4096 + 100); // partial last page
    ram[4096 * 2 + 5] = 9;
    ram[ram.length - 1] = 1;
    const state = new Uint8Array([1, 2, 3]);
    const p = encodeSnapshotPayload(state, ram);
    const s = decodeSnapshotPayload(new ByteReader(p, 0), 77, ram.length);
    expect(s.pages.map((x) => x.index)).toEqual([2, 5]);
    expect(s.pages[1]!.data.length).toBe(100);
    expect(Array.from(s.state)).toEqual([1, 2, 3]);
    expect(p.length).toBeLessThan(4096 + 100 + 32);
    expect(() => decodeSnapshotPayload(new ByteReader(p, 0), 0, ram.length + 4096)).toThrow(/header says memoryBytes/);
  });
});
