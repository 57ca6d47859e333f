/**
 * Files rrx must not destroy or misread (issue 13, items 6 and 9, and the `-m -5` finding):
 * guest output files (`--serial file:PATH` and the like are truncated when opened) may not be
 * the kernel or the log of the run; `--record` onto a device is refused as a usage error; a
 * negative number after any option that takes a value is that option's value, reported by the
 * option's own check; `--rtc` takes ISO 8601 dates only.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { FIX } from "./helpers.ts";

const ROOT = join(import.meta.dir, "..");
const RRX = join(ROOT, "cmd/rrx.ts");
const RTC = ["--rtc", "2026-01-01T00:00:00Z"];
let dir = "", kernel = "", log = "";

function rrx(args: string[]): { code: number; err: string; out: string } {
  const r = Bun.spawnSync([process.execPath, RRX, ...args], { cwd: dir, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, err: r.stderr.toString(), out: r.stdout.toString() };
}

function expectUsage(r: { code: number; err: string }, text: string): void {
  expect(r.err).toContain(text);
  expect(r.err.trim().split("\n")).toHaveLength(1);
  expect(r.err).not.toContain("internal error");
  expect(r.code).toBe(2);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rrx-safety-"));
  kernel = join(dir, "hello.elf");
  copyFileSync(join(FIX, "hello.elf"), kernel);
  log = join(dir, "h.rrx");
  const r = rrx(["run", kernel, "--record", log, "--max-insns", "10000", "--serial", "none", ...RTC]);
  expect(r.code).toBe(0);
});

describe("guest output files never overwrite the run's own files", () => {
  test("--serial file:KERNEL is refused and the kernel is intact", () => {
    const before = readFileSync(kernel);
    expectUsage(rrx(["run", kernel, "--serial", "file:hello.elf", ...RTC]), "--serial: file:hello.elf is the kernel of this run");
    expect(readFileSync(kernel).equals(before)).toBe(true);
  });

  test("an output file that is the --record log (another spelling of its path) is refused, no log made", () => {
    const rec = join(dir, "new.rrx");
    expectUsage(rrx(["run", kernel, "--record", rec, "--debugcon", `file:${join(dir, ".", "new.rrx")}`, ...RTC]), "is the recording (--record) of this run");
    expect(existsSync(rec)).toBe(false);
  });

  test("replay --serial file:LOG is refused and the log is intact", () => {
    const before = readFileSync(log);
    expectUsage(rrx(["replay", log, "--serial", "file:h.rrx"]), "--serial: file:h.rrx is the log of this run");
    expect(readFileSync(log).equals(before)).toBe(true);
    expect(rrx(["replay", log, "--verify", "--serial", "none"]).code).toBe(0);
  });

  test("--record onto a device: a usage error (was an internal error, exit 70)", () => {
    expectUsage(rrx(["run", kernel, "--record", "/dev/null", ...RTC]), "--record: /dev/null is not a regular file");
  });
});

describe("a negative number after an option is its value", () => {
  test("each option's own check reports it (not 'Unknown option -1')", () => {
    expectUsage(rrx(["run", kernel, "-m", "-5"]), "-m: expected a RAM size from 1M to 3072M");
    expectUsage(rrx(["run", kernel, "--max-insns", "-1"]), "--max-insns: expected a non-negative integer below 2^53, got '-1'");
    expectUsage(rrx(["run", kernel, "--rtc", "-5"]), "--rtc: expected a date like");
    expectUsage(rrx(["replay", log, "--until", "-3"]), "--until: expected a non-negative integer below 2^53, got '-3'");
    expectUsage(rrx(["gdb", log, "--no-launch", "--live-at", "-3"]), "--live-at: expected an integer");
  });
});

describe("--rtc takes ISO 8601 dates only", () => {
  test("'5' is refused (Date.parse reads it as May 2001); ISO forms are accepted", () => {
    expectUsage(rrx(["run", kernel, "--rtc", "5"]), "--rtc: expected a date like 2026-01-01T00:00:00Z, got '5'");
    expectUsage(rrx(["run", kernel, "--rtc", "Jan 1 2026"]), "--rtc: expected a date like");
    for (const d of ["2024-02-29", "2024-02-29T12:00:00Z", "2024-02-29T12:00:00+02:00"]) {
      expect(rrx(["run", kernel, "--rtc", d, "--max-insns", "1000", "--serial", "none"]).code).toBe(0);
    }
  });
});

describe("option values are taken as typed", () => {
  test("--append 0x10 reaches the kernel as 0x10 (cac made it 16)", () => {
    const r = rrx(["run", kernel, "--append", "0x10", "--append=1e3", ...RTC]);
    expect(r.out).toContain(`cmdline: "${kernel} 0x10,1e3"`);
  });

  test("log events --kind 0x01 (the documented code form) is SERIAL_RX", () => {
    const script = join(dir, "in.txt");
    writeFileSync(script, 'at 5us serial "ab"\n'); // hello.elf runs about 14.5 us
    const rec = join(dir, "in.rrx");
    expect(rrx(["run", kernel, "--input", script, "--record", rec, "--serial", "none", ...RTC]).err).not.toContain("error");
    const byName = rrx(["log", "events", rec, "--kind", "SERIAL_RX"]);
    expect(byName.code).toBe(0);
    expect(byName.out.trim().split("\n")).toHaveLength(2);
    const byCode = rrx(["log", "events", rec, "--kind", "0x01"]);
    expect(byCode.err).toBe("");
    expect(byCode.out).toBe(byName.out);
    expectUsage(rrx(["log", "events", rec, "--kind", "0x999"]), "unknown event kind '0x999'");
  });
});

describe("instruction counts are below 2^53", () => {
  test("--max-insns and --until beyond 2^53, or empty, are refused", () => {
    expectUsage(rrx(["run", kernel, "--max-insns", "99999999999999999999"]), "--max-insns: expected a non-negative integer below 2^53");
    expectUsage(rrx(["run", kernel, "--max-insns", ""]), "--max-insns: expected a non-negative integer below 2^53, got ''");
    expectUsage(rrx(["replay", log, "--until", "9007199254740992"]), "--until: expected a non-negative integer below 2^53");
    expect(rrx(["replay", log, "--until", "5000", "--serial", "none"]).code).toBe(0);
  });
});

describe("replay --until stays inside the recording", () => {
  test("an --until past the log's end is refused (the replay ran on past it, with no input)", () => {
    // the log was recorded with --max-insns 10000; hello.elf runs on to about 14,500 instructions
    expectUsage(rrx(["replay", log, "--until", "10001"]), "--until: the recording ends at instruction 10000, got 10001");
    expectUsage(rrx(["replay", log, "--verify", "--until", "20000"]), "--until: the recording ends at instruction 10000");
    expect(rrx(["replay", log, "--until", "10000", "--serial", "none"]).code).toBe(0);
  });
});

describe("script values a recording cannot hold", () => {
  test("mouse dx 99999: refused when the script is read (was an internal error and a log without a trailer)", () => {
    const script = join(dir, "mouse.txt");
    writeFileSync(script, "at 1ms mouse 99999 0 0\n");
    const rec = join(dir, "mouse.rrx");
    expectUsage(rrx(["run", kernel, "--input", script, "--record", rec, "--serial", "none", ...RTC]), "mouse.txt:1: mouse dx and dy must be in -32768..32767");
    expect(existsSync(rec)).toBe(false);
  });
});
