/**
 * A full disk while recording (issue 13 item 9), without root or a tmpfs: a file-size limit
 * (`ulimit -f`, with SIGXFSZ ignored so write(2) fails with EFBIG instead of killing the
 * process) makes the log's writes fail part-way, the way ENOSPC does. rrx must say so in one
 * line, exit 2, and leave a log that replays and verifies as truncated (exit 4). A FileSink
 * test injects ENOSPC part-way through a chunk and checks the file is cut back to whole chunks.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { FileSink, LogWriter } from "../lib/replay/log/writer.ts";
import { readLog } from "../lib/replay/log/reader.ts";
import { EventKind } from "../lib/replay/log/format.ts";
import { sampleHeader } from "./support/log-testutil.ts";
import { FIX } from "./helpers.ts";

const ROOT = join(import.meta.dir, "..");
const BUN = process.execPath;
const RRX = join(ROOT, "cmd/rrx.ts");

function sh(s: string): string { return `'${s.replace(/'/g, `'\\''`)}'`; }

describe("a full disk while recording", () => {
  test("rrx run: one-line message, exit 2; the log verifies as truncated (exit 4)", () => {
    const dir = mkdtempSync(join(tmpdir(), "rrx-full-"));
    try {
      const log = join(dir, "r.rrx");
      // 16 KiB of file: the header, the image records and a few chunks fit, the run does not.
      const cmd = `trap '' XFSZ; ulimit -f 16; exec ${sh(BUN)} ${sh(RRX)} run ${sh(join(FIX, "cpu-bound.elf"))} --record ${sh(log)} --hash-interval 1048576 --serial none`;
      const r = Bun.spawnSync(["sh", "-c", cmd], { stdout: "pipe", stderr: "pipe" });
      const err = r.stderr.toString();
      expect(err).not.toContain("internal error");
      expect(err.trim().split("\n")).toHaveLength(1);
      expect(err).toContain("EFBIG");
      expect(err).toContain("usable up to its last flush");
      expect(r.exitCode).toBe(2);
      const v = Bun.spawnSync([BUN, RRX, "replay", log, "--verify", "--serial", "none"], { stdout: "pipe", stderr: "pipe" });
      expect(v.stderr.toString()).toContain("verified");
      expect(v.stderr.toString()).toContain("truncated");
      expect(v.exitCode).toBe(4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  test("FileSink: ENOSPC part-way through a chunk leaves the log cut at its last whole chunk", () => {
    const dir = mkdtempSync(join(tmpdir(), "rrx-full-"));
    try {
      const path = join(dir, "r.rrx");
      const sink = new FileSink(path);
      const w = new LogWriter(sink, sampleHeader());
      for (let i = 1; i <= 20; i++) { w.event(i * 10, EventKind.SERIAL_RX, { port: 0, byte: i }); if (i % 10 === 0) w.flushChunk(i * 10 + 5); }
      // From now on the disk takes half of each write, then fails.
      const s = sink as unknown as { put(b: Uint8Array, at: number): void };
      const put = s.put.bind(sink);
      s.put = (b, at) => {
        put(b.subarray(0, b.length >> 1), at);
        throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      };
      for (let i = 21; i <= 30; i++) w.event(i * 10, EventKind.SERIAL_RX, { port: 0, byte: i });
      expect(() => w.flushChunk(305)).toThrow(/ENOSPC/);
      const bytes = new Uint8Array(readFileSync(path));
      const log = readLog(bytes);
      expect(log.trailer).toBeNull();
      // No half-written chunk after the last whole one: the file ends where the log does.
      expect(log.truncated?.atOffset).toBe(bytes.length);
      expect(log.events.map((e) => e.icount)).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * 10));
      expect(log.truncated).toMatchObject({ atIcount: 205 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
