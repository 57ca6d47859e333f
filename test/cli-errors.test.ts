/**
 * The CLI's exit-status convention and its refusals, as a script sees them (no terminal):
 * 2 for usage and input errors with a one-line message, 3 for a divergence, 4 for a truncated
 * log that verified, 70 only for bugs; recording never destroys a file it should not.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { readLog } from "../lib/replay/log/reader.ts";
import { parseScript, ScriptError } from "../lib/machine/script.ts";
import { FIX } from "./helpers.ts";

const ROOT = join(import.meta.dir, "..");
const BUN = process.execPath;
const RRX = join(ROOT, "cmd/rrx.ts");
const HELLO = join(FIX, "hello.elf");

function rrx(args: string[], cwd = FIX) {
  const r = Bun.spawnSync([BUN, RRX, ...args], { cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, RRX_DEBUG: "" } });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

/** A usage/input error: exit 2, one line on stderr naming the problem, no stack trace. */
function expectUsage(r: { code: number; err: string }, what: string | RegExp): void {
  expect(r.err).not.toContain("internal error");
  expect(r.err.trim().split("\n")).toHaveLength(1);
  if (typeof what === "string") expect(r.err).toContain(what);
  else expect(r.err).toMatch(what);
  expect(r.code).toBe(2);
}

let dir = "";
let good = ""; // a finished recording of hello.elf
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rrx-cli-errors-"));
  good = join(dir, "good.rrx");
  const r = rrx(["run", HELLO, "--record", good, "--serial", "none"]);
  expect(r.code).toBe(1); // hello exits with status 0: (0 << 1) | 1
});

describe("--record never destroys a file (item 6)", () => {
  test("onto the kernel, by its path, a hard link or a symlink: refused, kernel intact", () => {
    const k = join(dir, "k.elf");
    copyFileSync(HELLO, k);
    const before = readFileSync(k);
    linkSync(k, join(dir, "hard.elf"));
    symlinkSync(k, join(dir, "soft.elf"));
    for (const target of [k, join(dir, "hard.elf"), join(dir, "soft.elf")]) {
      expectUsage(rrx(["run", k, "--record", target, "--force"]), "is the kernel of this run");
    }
    expect(readFileSync(k).equals(before)).toBe(true);
  });

  test("onto a module, the ROM or the input script: refused", () => {
    const mod = join(dir, "mod.bin"), script = join(dir, "in.txt"), rom = join(dir, "rom.bin");
    writeFileSync(mod, "module");
    writeFileSync(script, 'at 1ms serial "x"\n');
    copyFileSync(join(FIX, "rom.bin"), rom);
    expectUsage(rrx(["run", HELLO, "--module", mod, "--record", mod]), "is the module of this run");
    expectUsage(rrx(["run", HELLO, "--input", script, "--record", script]), "is the input script of this run");
    expectUsage(rrx(["run", "--bios", rom, "--record", rom]), "is the ROM of this run");
    expect(readFileSync(mod, "utf8")).toBe("module");
    expect(readFileSync(script, "utf8")).toBe('at 1ms serial "x"\n');
  });

  test("an existing file that is not a recording is never overwritten, even with --force", () => {
    const f = join(dir, "notes.txt");
    writeFileSync(f, "precious");
    expectUsage(rrx(["run", HELLO, "--record", f]), "is not an rrx recording");
    expectUsage(rrx(["run", HELLO, "--record", f, "--force"]), "is not an rrx recording");
    expect(readFileSync(f, "utf8")).toBe("precious");
  });

  test("an existing recording needs --force", () => {
    const f = join(dir, "again.rrx");
    copyFileSync(good, f);
    const before = readFileSync(f);
    expectUsage(rrx(["run", HELLO, "--record", f, "--serial", "none"]), "give --force to overwrite it");
    expect(readFileSync(f).equals(before)).toBe(true);
    const r = rrx(["run", HELLO, "--record", f, "--serial", "none", "--force"]);
    expect(r.code).toBe(1);
    expect(readLog(new Uint8Array(readFileSync(f))).trailer?.reason).toBe("exit");
  });

  test("rrx gdb --record: the same refusals", () => {
    const f = join(dir, "gdbnotes.txt");
    writeFileSync(f, "precious");
    expectUsage(rrx(["gdb", good, "--no-launch", "--record", f]), "is not an rrx recording");
    expectUsage(rrx(["gdb", "--live", HELLO, "--no-launch", "--record", HELLO]), /kernel of this run|file being debugged/);
    expect(readFileSync(f, "utf8")).toBe("precious");
  });
});

describe("truncated logs (item 7)", () => {
  const cut = () => {
    const f = join(dir, "cut.rrx");
    const b = readFileSync(good);
    writeFileSync(f, b.subarray(0, b.length - 40)); // the trailer is gone
    return f;
  };

  test("replay --verify of a truncated log: exit 4 (verified, but truncated), said on stderr", () => {
    const r = rrx(["replay", cut(), "--verify", "--serial", "none"]);
    expect(r.err).toContain("truncated");
    expect(r.err).toContain("verified");
    expect(r.code).toBe(4);
    expect(rrx(["replay", good, "--verify", "--serial", "none"]).code).toBe(0);
  });

  test("rrx gdb warns about a truncated log; SIGTERM and SIGHUP end it with 143 and 129", async () => {
    for (const [sig, code] of [["SIGTERM", 143], ["SIGHUP", 129]] as const) {
      const p = Bun.spawn([BUN, RRX, "gdb", cut(), "--no-launch", "--port", "0"], { cwd: FIX, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      let err = "";
      const reader = (async () => { for await (const c of p.stderr) err += Buffer.from(c).toString(); })();
      for (let i = 0; i < 3000 && !err.includes("listening"); i++) await Bun.sleep(10);
      expect(err).toContain("truncated");
      p.kill(sig);
      expect(await p.exited).toBe(code);
      await reader;
    }
  }, 60_000);
});

describe("script times (item 8)", () => {
  test("a time at or beyond 2^53 ns is rejected when the script is parsed", () => {
    expect(() => parseScript('at 10000000s serial "x"\n', "s")).toThrow(ScriptError);
    expect(() => parseScript('at 9007199254740992ns serial "x"\n', "s")).toThrow(/2\^53/);
    expect(() => parseScript('at 1e400s serial "x"\n', "s")).toThrow(ScriptError);
    expect(parseScript('at 9007199254740991ns serial "x"\n', "s")[0]!.atNs).toBe(9007199254740991);
  });

  test("rrx run: one-line error, exit 2, and no half-written log", () => {
    const s = join(dir, "late.txt"), log = join(dir, "late.rrx");
    writeFileSync(s, 'at 1ms serial "a"\nat 10000000s serial "b"\n');
    expectUsage(rrx(["run", join(FIX, "interrupts.elf"), "--input", s, "--record", log]), `${s}:2: time 10000000s`);
    expect(() => statSync(log)).toThrow();
  });
});

describe("user mistakes are exit 2, not internal errors (item 9)", () => {
  test("a directory given as any file", () => {
    const d = join(dir, "adir");
    mkdirSync(d, { recursive: true });
    expectUsage(rrx(["run", d]), "is a directory");
    expectUsage(rrx(["run", HELLO, "--input", d]), "is a directory");
    expectUsage(rrx(["run", HELLO, "--module", d]), "is a directory");
    expectUsage(rrx(["run", "--bios", d]), "is a directory");
    expectUsage(rrx(["run", HELLO, "--record", d]), "is a directory");
    expectUsage(rrx(["replay", d]), "is a directory");
    expectUsage(rrx(["log", "info", d]), "is a directory");
    expectUsage(rrx(["gdb", d, "--no-launch"]), "is a directory");
  });

  test("-m with no value, -m -5, log events --kind BOGUS", () => {
    expectUsage(rrx(["run", HELLO, "-m"]), "-m");
    expectUsage(rrx(["gdb", "--live", HELLO, "-m"]), "-m");
    expectUsage(rrx(["run", HELLO, "-m", "-5"]), "-m: expected a RAM size from 1M to 3072M");
    const r = rrx(["log", "events", good, "--kind", "BOGUS"]);
    expectUsage(r, "unknown event kind 'BOGUS'");
    expect(r.err).toContain("SERIAL_RX");
  });

  test("rrx gdb uses 2 for its usage errors too", () => {
    expectUsage(rrx(["gdb", join(dir, "missing.rrx")]), "no such");
    expectUsage(rrx(["gdb", HELLO, "--no-launch"]), "not an rrx recording");
  });
});

/** An 8 KiB tmpfs (needs root and mount); null when that is not possible here. */
function tinyTmpfs(): string | null {
  if (process.getuid?.() !== 0) return null;
  const mnt = mkdtempSync(join(tmpdir(), "rrx-full-"));
  const r = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", mnt], { stderr: "pipe" });
  if (r.exitCode !== 0) { rmSync(mnt, { recursive: true }); return null; }
  return mnt;
}

describe("a full disk while recording (item 9)", () => {
  const mnt = tinyTmpfs();
  test.skipIf(mnt === null)("exit 2, the message says the log is usable, and it verifies as truncated", () => {
    try {
      const log = join(mnt!, "r.rrx");
      const r = rrx(["run", join(FIX, "cpu-bound.elf"), "--record", log, "--hash-interval", String(1 << 20), "--serial", "none"]);
      expectUsage(r, "ENOSPC");
      expect(r.err).toContain("usable up to its last flush");
      const v = rrx(["replay", log, "--verify", "--serial", "none"]);
      expect(v.err).toContain("truncated");
      expect(v.code).toBe(4);
    } finally {
      Bun.spawnSync(["umount", mnt!]);
      rmSync(mnt!, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("--hash-interval is bounded (item 10)", () => {
  test("below 2^16: refused; 2^16: accepted", () => {
    expectUsage(rrx(["run", HELLO, "--record", join(dir, "h1.rrx"), "--hash-interval", "1"]), "--hash-interval: at least 65536");
    expectUsage(rrx(["run", HELLO, "--record", join(dir, "h1.rrx"), "--hash-interval", "65535"]), "--hash-interval: at least 65536");
    expect(rrx(["run", HELLO, "--record", join(dir, "h2.rrx"), "--hash-interval", String(1 << 16), "--serial", "none"]).code).toBe(1);
  });
});

describe("CLI polish", () => {
  test("-m takes QEMU's suffixes", () => {
    for (const [arg, mib] of [["64", 64], ["48M", 48], ["0.0625G", 64], ["16m", 16]] as const) {
      const log = join(dir, `m${arg}.rrx`);
      expect(rrx(["run", HELLO, "-m", arg, "--max-insns", "1000", "--record", log]).code).toBe(0);
      expect(readLog(new Uint8Array(readFileSync(log))).header.compared.memoryBytes).toBe(mib * 1024 * 1024);
    }
    for (const bad of ["0", "4G", "3073", "12X", "1.5M5"]) expectUsage(rrx(["run", HELLO, "-m", bad]), "-m: expected a RAM size from 1M to 3072M");
  });

  test("impossible --rtc dates are refused; real ones accepted", () => {
    expectUsage(rrx(["run", HELLO, "--rtc", "2024-02-30"]), "no such date");
    expectUsage(rrx(["run", HELLO, "--rtc", "2023-02-29T00:00:00Z"]), "no such date");
    expectUsage(rrx(["run", HELLO, "--rtc", "2024-04-31T00:00:00Z"]), "no such date");
    expectUsage(rrx(["run", HELLO, "--rtc", "2024-01-01T24:00:00Z"]), "no such time");
    expect(rrx(["run", HELLO, "--rtc", "2024-02-29T12:00:00Z", "--max-insns", "1000"]).code).toBe(0);
  });

  test("options that need another are refused alone", () => {
    expectUsage(rrx(["run", HELLO, "--pack"]), "--pack applies to a recording");
    expectUsage(rrx(["run", HELLO, "--hash-interval", String(1 << 24)]), "--hash-interval applies to a recording");
    expectUsage(rrx(["replay", good, "--display", "bogus"]), "--display: expected none or text");
  });

  test("replay --verify --until N verifies up to N", () => {
    const r = rrx(["replay", good, "--verify", "--until", "10000", "--serial", "none"]);
    expect(r.err).toContain("up to --until 10000");
    expect(r.err).toContain("10000 instructions replayed");
    expect(r.code).toBe(0);
  });

  test("help and version texts", () => {
    expect(rrx(["gdb", "--help"]).out).not.toContain("(default: true)");
    const log = rrx(["log", "--help"]).out;
    for (const w of ["info", "events", "SERIAL_RX", "IDLE_SKIP"]) expect(log).toContain(w);
    expect(rrx(["run", "--help"]).out).toContain("--no-realtime");
    expect(rrx(["-v"]).out).toContain(`bun ${Bun.version}`);
  });
});

describe("the npm bin entry (what npx rrx runs), with no bun on PATH", () => {
  // package.json's bin entry, executed as npm's bin link does (through its #! line)
  const LAUNCHER = join(ROOT, JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).bin.rrx);
  const NODE = Bun.which("node", { PATH: "/usr/bin:/bin" }); // the launcher needs node (npm has it)
  // no bun on PATH, and a working directory outside the checkout
  const env = { ...process.env, PATH: "/usr/bin:/bin" };

  test.skipIf(!NODE)("runs rrx with the bun from npm, from anywhere, and passes the exit status on", () => {
    const outside = mkdtempSync(join(tmpdir(), "rrx-outside-"));
    const v = Bun.spawnSync([LAUNCHER, "-v"], { cwd: outside, env, stdout: "pipe", stderr: "pipe" });
    expect(v.stdout.toString()).toContain("rrx 0.1.0");
    expect(v.exitCode).toBe(0);
    const r = Bun.spawnSync([LAUNCHER, "run", HELLO, "--serial", "none"], { cwd: outside, env, stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(1); // hello's debug-exit status
    const bad = Bun.spawnSync([LAUNCHER, "run", join(outside, "missing.elf")], { cwd: outside, env, stdout: "pipe", stderr: "pipe" });
    expect(bad.stderr.toString()).toContain("no such kernel file");
    expect(bad.exitCode).toBe(2);
  });

  test.skipIf(!NODE)("SIGTERM and SIGINT sent to the launcher stop rrx as they would rrx itself", async () => {
    for (const [sig, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
      const p = Bun.spawn([LAUNCHER, "run", join(FIX, "poll.elf")], { env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      let out = "";
      const reader = (async () => { for await (const c of p.stdout) out += Buffer.from(c).toString(); })();
      for (let i = 0; i < 3000 && !out.includes("waiting"); i++) await Bun.sleep(10);
      p.kill(sig);
      expect(await p.exited).toBe(code);
      await reader;
      expect(await new Response(p.stderr).text()).toContain(`stopped by ${sig}`);
    }
  }, 60_000);
});

const HAVE_SCRIPT = Bun.spawnSync(["sh", "-c", "command -v script"], { stdout: "pipe" }).exitCode === 0;

describe.skipIf(!HAVE_SCRIPT)("--display text on a terminal", () => {
  test("draws in the alternate screen and keeps serial output apart, printing it after", async () => {
    // util-linux script gives rrx a pseudo-terminal on stdin, stdout and stderr
    const p = Bun.spawn(["script", "-qfec", `${BUN} ${RRX} run hello.elf --display text`, "/dev/null"], { cwd: FIX, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    const out = Buffer.from(await new Response(p.stdout).arrayBuffer()).toString("latin1");
    expect(await p.exited).toBe(1);
    const on = out.indexOf("\x1b[?1049h"), off = out.lastIndexOf("\x1b[?1049l");
    expect(on).toBeGreaterThanOrEqual(0);
    expect(off).toBeGreaterThan(on);
    const inside = out.slice(on, off), after = out.slice(off);
    // the guest's serial output, as it is, only after the screen is restored ...
    expect(after).toContain('Hello from rrx\r\ncmdline: "hello.elf"\r\nmemory: 32 MiB\r\nbye');
    expect(inside).not.toContain('cmdline: "hello.elf"\r\nmemory');
    // ... and while the screen is drawn, in its own pane under it
    expect(inside).toContain("-- serial --");
  }, 60_000);
});
