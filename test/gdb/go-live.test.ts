/**
 * Go live and re-record with the real gdb (batch mode) and the real CLI: `rrx gdb rec.rrx
 * --live-at N --input SCRIPT --record new.rrx`, and `monitor live` with --record; the new log
 * replays with `rrx replay --verify` to the same transcript; `rrx log info` shows the snapshot;
 * bad uses get one-line errors. Skipped when gdb is not installed.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openLog, verifyLog, type OpenedLog } from "../../lib/replay/replayer.ts";
import { engineFromLog } from "../../lib/replay/engine.ts";
import { RrxTarget } from "../../lib/gdb/rrx-target.ts";
import { GdbServer } from "../../lib/gdb/server.ts";
import { LiveInput } from "../../lib/replay/live.ts";
import { Recorder } from "../../lib/replay/recorder.ts";
import { FileSink } from "../../lib/replay/log/writer.ts";
import { imagesOf } from "../../lib/replay/session.ts";
import { readLogFile } from "../../lib/replay/log/reader.ts";
import { parseScript } from "../../lib/machine/script.ts";
import { BUN, DBG_ELF, recordDbg, RRX } from "./record.ts";

const GDB = Bun.which("gdb");
if (!GDB) console.warn("test/gdb/go-live.test.ts: SKIPPED: gdb is not installed (apt-get install gdb)");

let dir = "";
let log = "";
let script = "";
let opened: OpenedLog;
let server: GdbServer | null = null;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rrx-golive-gdb-"));
  log = recordDbg(dir);
  opened = openLog(log);
  script = join(dir, "live.input.txt");
  writeFileSync(script, '# live input, relative to going live\nat 1ms serial "xyz"\n');
});
afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });
afterEach(async () => { await server?.stop(); server = null; });

/** `rrx ARGS` (stdout and stderr apart). */
async function rrx(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([BUN, RRX, ...args], { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const killer = setTimeout(() => p.kill(), 90_000);
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  const code = await p.exited;
  clearTimeout(killer);
  return { code, out, err };
}

describe.skipIf(!GDB)("go live and re-record under gdb", () => {
  test("rrx gdb --live-at N --input --record: continue to the guest's exit; the new log replays with --verify, same transcript", async () => {
    const rec = join(dir, "cli-live.rrx");
    const g = await rrx(["gdb", log, "--port", "0", "--live-at", "5000", "--input", script, "--record", rec, "--",
      "-nx", "-batch", "-ex", "break bump", "-ex", "continue", "-ex", "monitor when", "-ex", "set var counter = 5",
      "-ex", "delete", "-ex", "continue"]);
    const all = g.out + g.err;
    expect(all).toContain("Breakpoint 1, bump (k=0) at dbg.c:15");
    expect(all).toMatch(/Current instruction: \d+ \(live\)/);
    expect(all).toContain("exited with code 01");
    expect(g.err).toContain("rrx: live at instruction 5000, recording to");
    expect(g.err).toContain("dbg e2730 363\n"); // the live guest's console: 'x'+'y'+'z'
    expect(g.err).toMatch(/rrx: recorded 4 events to .*cli-live\.rrx \(instructions 5000\.\.\d+, exit\)/);
    // a write while recording would not be in the log: refused
    expect(all).toMatch(/Cannot access memory at address/);
    expect(g.err.match(/rrx: recorded/g)!.length).toBe(1);

    const v = await rrx(["replay", rec, "--verify"]);
    expect(v.err).toContain("rrx: verified:");
    expect(v.code).toBe(0);
    expect(v.out).toBe("dbg e2730 363\n");
    const plain = await rrx(["replay", rec]);
    expect(plain.out).toBe("dbg e2730 363\n");
    expect(plain.code).toBe(1); // the guest's exit status, as recorded

    const info = await rrx(["log", "info", rec]);
    expect(info.code).toBe(0);
    expect(info.out).toContain("rrx log v4");
    expect(info.out).toContain("starts from a snapshot at icount 5000");
    expect(info.out).toContain("recorded live from: ");

    // The recording starts at 5000: gdb on it begins there.
    const g2 = await rrx(["gdb", rec, "--port", "0", "--", "-nx", "-batch", "-ex", "monitor when", "-ex", "reverse-stepi", "-ex", "kill"]);
    expect(g2.out + g2.err).toMatch(/Current instruction: 5000 \(recording 5000\.\.\d+\)/);
    expect(g2.out + g2.err).toContain("No more reverse-execution history.");
  }, 120_000);

  test("monitor live with a recording (RrxTarget over the real gdb): break, go live, continue to exit; the log verifies", async () => {
    const rec = join(dir, "monitor-live.rrx");
    const engine = engineFromLog(opened);
    let serial = "";
    const target = new RrxTarget(engine, {
      liveInput: (m) => {
        m.onOutput = (ch, b) => { if (ch === "com1") serial += Buffer.from(b).toString("latin1"); };
        const { snapshot: _s, ...compared } = opened.log.header.compared;
        const recorder = Recorder.startFrom(m, new FileSink(rec), { compared, host: {} }, {
          hashInterval: 50_000, pack: imagesOf(opened.cfg).map((x) => ({ role: x.info.role, name: x.info.name, data: x.data })),
        });
        return new LiveInput(m, { script: parseScript('at 1ms serial "xyz"\n'), recorder, recordPath: rec });
      },
    });
    server = new GdbServer(target, { port: 0 });
    const { port } = await server.start();
    const args = [GDB!, "-nx", "-batch", DBG_ELF, "-ex", `target remote 127.0.0.1:${port}`,
      "-ex", "break bump", "-ex", "continue", "-ex", "continue", "-ex", "monitor live", "-ex", "monitor live", "-ex", "continue",
      "-ex", "p k", "-ex", "delete", "-ex", "continue"];
    const proc = Bun.spawn(["sh", "-c", 'exec "$0" "$@" 2>&1', ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const out = await new Response(proc.stdout).text();
    await proc.exited;
    expect(out).toContain("Breakpoint 1, bump (k=1) at dbg.c:15");
    const at = Number(/Live at instruction (\d+): recording to /.exec(out)![1]);
    expect(at).toBeGreaterThan(0);
    expect(out).toContain("Already live.");
    expect(out).toContain("Breakpoint 1, bump (k=2) at dbg.c:15");
    expect(out).toContain("exited with code 01");
    expect(serial).toBe("dbg e2730 363\n");

    const log2 = readLogFile(rec);
    expect(log2.startIcount).toBe(at);
    expect(log2.hashes.length).toBeGreaterThan(3);
    const o = openLog(rec);
    let replayed = "";
    const r = verifyLog(o, (ch, b) => { if (ch === "com1") replayed += Buffer.from(b).toString("latin1"); });
    r.machine!.flushOutput();
    expect(r.ok).toBe(true);
    expect(r.icount).toBe(engine.icount);
    expect(replayed).toBe(serial);
  }, 120_000);

  test("bad uses: one-line errors", async () => {
    const v2 = join(dir, "cli-live.rrx");
    expect(existsSync(v2)).toBe(true);
    const cases: [string[], RegExp][] = [
      [["gdb", v2, "--live-at", "10"], /--live-at: the recording starts at instruction 5000 \(from a snapshot\)/],
      [["gdb", log, "--record", log], /--record: .* is the file being debugged/],
      [["gdb", log, "--input", join(dir, "nope.txt")], /nope\.txt: no such (input script )?file/],
      [["gdb", log, "--input", log], /expected 'at TIME/],
      [["replay", v2, "--until", "100"], /starts at instruction 5000 \(from a snapshot\); cannot stop at 100/],
    ];
    for (const [args, re] of cases) {
      const p = await rrx(args);
      expect(p.code).not.toBe(0);
      expect(p.err.trim().split("\n").length).toBe(1);
      expect(p.err).toStartWith("rrx: error:");
      expect(p.err).toMatch(re);
    }
    // a log cut inside its snapshot chunk: nothing to replay, in one line
    const bytes = await Bun.file(v2).bytes();
    const snap = readLogFile(v2).chunks.find((c) => c.kind === 0x53)!;
    const cut = join(dir, "cut.rrx");
    writeFileSync(cut, bytes.subarray(0, snap.offset + 40));
    for (const args of [["replay", cut, "--verify"], ["gdb", cut, "--no-launch"]]) {
      const p = await rrx(args);
      expect(p.code).not.toBe(0);
      expect(p.err.trim().split("\n").length).toBe(1);
      expect(p.err).toMatch(/ends before its snapshot chunk .*nothing to replay/);
    }
    const info = await rrx(["log", "info", cut]);
    expect(info.out).toMatch(/TRUNCATED: .*SNAPSHOT chunk/);
  }, 120_000);
});
