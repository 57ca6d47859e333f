/**
 * Board versions: a recording names the version of the board it ran on (log v4, the header's
 * `boardVersion`), and a replay builds that version. The PC's version 2 sends serial characters
 * as the guest writes them; version 1 in their character time. Logs from before versions
 * (v1-v3) replay on version 1.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { openLog, verifyLog } from "../lib/replay/replayer.ts";
import { configFromCompared } from "../lib/replay/session.ts";
import { readLog } from "../lib/replay/log/reader.ts";
import { FIX } from "./helpers.ts";

const ROOT = join(import.meta.dir, "..");
const RRX = join(ROOT, "cmd/rrx.ts");
const dir = mkdtempSync(join(tmpdir(), "rrx-boardver-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function rrx(...args: string[]) {
  const p = Bun.spawnSync([process.execPath, RRX, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

/** Record hello.elf on a board version (none: the default); the log and its transcript. */
function recordHello(version?: number) {
  const log = join(dir, `hello-${version ?? "default"}.rrx`);
  const serial = join(dir, `hello-${version ?? "default"}.txt`);
  const extra = version === undefined ? [] : ["--board-version", String(version)];
  const r = rrx("run", join(FIX, "hello.elf"), "--record", log, "--serial", `file:${serial}`, "--debugcon", "none",
    "--rtc", "2026-01-01T00:00:00Z", "--no-realtime", "--hash-interval", "65536", ...extra);
  expect(r.err).toMatch(/guest exited with status \d+ after \d+ instructions/);
  return { path: log, log: readLog(new Uint8Array(readFileSync(log))), serial: readFileSync(serial, "latin1") };
}

describe("board versions", () => {
  const v1 = recordHello(1), v2 = recordHello(2), dflt = recordHello();

  test("new recordings are v4 logs of the newest PC board; the header names the version", () => {
    expect(dflt.log.version).toBe(4);
    expect(dflt.log.header.compared.boardVersion).toBe(2);
    expect(v1.log.header.compared.boardVersion).toBe(1);
    expect(dflt.log.comparedJson).toBe(v2.log.comparedJson.replace(',"--board-version","2"', ""));
  });

  test("version 2 sends the same serial bytes without waiting for the line", () => {
    expect(v2.serial.length).toBeGreaterThan(20);
    expect(v2.serial).toBe(v1.serial);
    // hello.elf waits for THRE before each byte: at 115200 baud that is ~8.7 K instructions a
    // character on version 1, and none on version 2.
    const n1 = v1.log.trailer!.finalIcount, n2 = v2.log.trailer!.finalIcount;
    expect(n1 - n2).toBeGreaterThan(8000 * (v2.serial.length - 1));
  });

  test("each replays on its own version with every hash verified", () => {
    for (const r of [v1, v2]) {
      const v = verifyLog(openLog(r.path));
      expect(v.ok).toBe(true);
      expect(v.hashesChecked).toBeGreaterThan(0);
    }
  });

  test("the version is what the replay builds: the other one diverges", () => {
    for (const [r, other] of [[v1, 2], [v2, 1]] as const) {
      const o = openLog(r.path);
      o.cfg.boardVersion = other;
      expect(verifyLog(o).ok).toBe(false);
    }
  });

  test("a header without the key (logs before v4) means version 1", () => {
    const c = { ...v2.log.header.compared };
    delete c.boardVersion;
    const cfg = configFromCompared(c, () => readFileSync(join(FIX, "hello.elf")));
    expect(cfg.boardVersion).toBe(1);
    expect(() => configFromCompared({ ...c, boardVersion: 7 }, () => new Uint8Array())).toThrow(/^the pc board has no version 7 \(this rrx has 1, 2; upgrade rrx\)$/);
  });

  test("rrx run --board-version: an unknown or malformed version is a one-line error, exit 2", () => {
    for (const [v, msg] of [["9", "the pc board has no version 9 (this rrx has 1, 2; upgrade rrx)"], ["x", '--board-version: expected a version number, got "x"'], ["0", '--board-version: expected a version number, got "0"']]) {
      const r = rrx("run", join(FIX, "hello.elf"), "--board-version", v!, "--no-realtime", "--serial", "none");
      expect(r.code).toBe(2);
      expect(r.err.trim()).toBe(`rrx: error: ${msg}`);
    }
  });

  test("--force (overwrite the log) is not a guest argument: the compared section is the same", () => {
    const path = join(dir, "force.rrx");
    const args = ["run", join(FIX, "hello.elf"), "--record", path, "--serial", "none", "--rtc", "2026-01-01T00:00:00Z", "--no-realtime"];
    rrx(...args);
    const first = readLog(new Uint8Array(readFileSync(path))).comparedJson;
    rrx(...args, "--force");
    expect(readLog(new Uint8Array(readFileSync(path))).comparedJson).toBe(first);
  });

  test("rrx log info names the version", () => {
    expect(rrx("log", "info", v1.path).out).toContain("machine: pc board version 1,");
    expect(rrx("log", "info", dflt.path).out).toContain("machine: pc board version 2,");
  });
});
