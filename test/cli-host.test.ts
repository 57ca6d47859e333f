/**
 * `rrx run` as users drive it: from a terminal (a PTY made by util-linux `script`), with stdout
 * redirected, with stdin piped from a script, and stopped by signals. Every recording made these
 * ways must verify, typed input must reach a guest that runs flat out, and a signal must stop
 * the run promptly with the log saved and the shell's status for that signal.
 *
 * Guests: poll.elf polls the COM1 line status register with no interrupts and no HLT (never
 * idle), interrupts.elf halts with its timer masked while it waits for serial bytes.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { readLog } from "../lib/replay/log/reader.ts";
import { EventKind } from "../lib/replay/log/format.ts";
import { FIX } from "./helpers.ts";

const ROOT = join(import.meta.dir, "..");
const BUN = process.execPath;
const RRX = join(ROOT, "cmd/rrx.ts");
const HAVE_SCRIPT = Bun.spawnSync(["sh", "-c", "command -v script"], { stdout: "pipe" }).exitCode === 0;

function tmp(): string { return mkdtempSync(join(tmpdir(), "rrx-cli-host-")); }

function sh(s: string): string { return `'${s.replace(/'/g, `'\\''`)}'`; }

/** rrx under a pseudo-terminal: `shellCmd` runs in sh with the PTY as its terminal. */
function inPty(shellCmd: string) {
  const p = Bun.spawn(["script", "-qfec", shellCmd, "/dev/null"], { stdin: "pipe", stdout: "pipe", stderr: "pipe", cwd: ROOT });
  let out = "";
  const reader = (async () => { for await (const c of p.stdout) out += Buffer.from(c).toString("latin1"); })();
  return {
    proc: p,
    out: () => out,
    type(s: string) { p.stdin.write(s); p.stdin.flush(); },
    async waitFor(what: string | RegExp, ms = 30_000): Promise<void> {
      const t0 = Date.now();
      const seen = () => (typeof what === "string" ? out.includes(what) : what.test(out));
      while (!seen()) {
        if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}; output so far: ${JSON.stringify(out)}`);
        await Bun.sleep(10);
      }
    },
    async exit(): Promise<number> { const rc = await p.exited; await reader; return rc; },
  };
}

function verify(log: string): { code: number; err: string } {
  const r = Bun.spawnSync([BUN, RRX, "replay", log, "--verify", "--serial", "none"], { cwd: FIX, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, err: r.stderr.toString() };
}

describe.skipIf(!HAVE_SCRIPT)("on a terminal", () => {
  test("typed bytes reach a guest that polls flat out (realtime mode), and Ctrl-A x quits", async () => {
    const dir = tmp();
    const log = join(dir, "t.rrx");
    const t = inPty(`${BUN} ${RRX} run ${join(FIX, "poll.elf")} --record ${log}`);
    await t.waitFor("waiting for 4 bytes");
    t.type("a");
    await t.waitFor("got 61");
    t.type("\x01h");
    await t.waitFor("C-a x");
    t.type("\x01x");
    expect(await t.exit()).toBe(0);
    expect(t.out()).toContain("quit after");
    const v = verify(log);
    expect(v.err).toContain("verified");
    expect(v.code).toBe(0);
  }, 60_000);

  test("stdout redirected: typed input is recorded so that the recording verifies", async () => {
    const dir = tmp();
    const log = join(dir, "x.rrx"), out = join(dir, "out.txt");
    const t = inPty(`${BUN} ${RRX} run ${join(FIX, "interrupts.elf")} --record ${log} > ${out}`);
    await waitForFile(out, "echoing serial until 'q'");
    t.type("hello");
    await waitForFile(out, "hello");
    t.type("q");
    expect(await t.exit()).toBe(1); // the guest's exit status 0, as (0 << 1) | 1
    expect(readFileSync(out, "utf8")).toContain("got 'q'");
    const v = verify(log);
    expect(v.err).toContain("verified");
    expect(v.code).toBe(0);
  }, 60_000);

  test("Ctrl-A x while the guest waits for input: the recording verifies", async () => {
    const dir = tmp();
    const log = join(dir, "q.rrx");
    const t = inPty(`${BUN} ${RRX} run ${join(FIX, "interrupts.elf")} --record ${log}`);
    await t.waitFor("echoing serial until 'q'");
    await Bun.sleep(300); // let it sit idle
    t.type("\x01x");
    expect(await t.exit()).toBe(0);
    const v = verify(log);
    expect(v.err).toContain("verified");
    expect(v.code).toBe(0);
  }, 60_000);
});

/** Wait until a file contains a string (the guest's output redirected to it). */
async function waitForFile(path: string, what: string, ms = 30_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    let s = "";
    try { s = readFileSync(path, "latin1"); } catch { /* not yet */ }
    if (s.includes(what)) return;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what} in ${path}: ${JSON.stringify(s)}`);
    await Bun.sleep(10);
  }
}

describe("signals", () => {
  for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
    test(`${sig} stops a busy guest with no terminal, saves the recording and exits ${code}`, async () => {
      const dir = tmp();
      const log = join(dir, "s.rrx");
      const p = Bun.spawn([BUN, RRX, "run", join(FIX, "poll.elf"), "--record", log], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      let out = "";
      const reader = (async () => { for await (const c of p.stdout) out += Buffer.from(c).toString("latin1"); })();
      for (let i = 0; i < 3000 && !out.includes("waiting"); i++) await Bun.sleep(10);
      expect(out).toContain("waiting");
      p.kill(sig);
      expect(await p.exited).toBe(code);
      await reader;
      const err = await new Response(p.stderr).text();
      expect(err).toContain(`stopped by ${sig}`);
      expect(err).toContain(`recording saved to ${log}`);
      const parsed = readLog(new Uint8Array(readFileSync(log)));
      expect(parsed.trailer?.reason).toBe(`signal:${sig}`);
      const v = verify(log);
      expect(v.code).toBe(0);
    }, 60_000);
  }

  test("SIGTERM stops a run that is not recording just as well", async () => {
    const p = Bun.spawn([BUN, RRX, "run", join(FIX, "poll.elf")], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    let out = "";
    const reader = (async () => { for await (const c of p.stdout) out += Buffer.from(c).toString("latin1"); })();
    for (let i = 0; i < 3000 && !out.includes("waiting"); i++) await Bun.sleep(10);
    p.kill("SIGTERM");
    expect(await p.exited).toBe(143);
    await reader;
    expect(await new Response(p.stderr).text()).toContain("stopped by SIGTERM");
  }, 60_000);
});

describe("piped stdin", () => {
  test("bytes piped to stdin go to COM1 and are recorded like typed ones", () => {
    const dir = tmp();
    const log = join(dir, "p.rrx");
    const r = Bun.spawnSync(["sh", "-c", `printf abcd | ${sh(BUN)} ${sh(RRX)} run ${sh(join(FIX, "poll.elf"))} --record ${sh(log)}`], { stdout: "pipe", stderr: "pipe" });
    expect(r.stdout.toString()).toBe("poll: waiting for 4 bytes\ngot 61\ngot 62\ngot 63\ngot 64\npoll: done\n");
    expect(r.exitCode).toBe(1);
    const rx = readLog(new Uint8Array(readFileSync(log))).events.filter((e) => e.kind === EventKind.SERIAL_RX);
    expect(rx.map((e) => (e.payload as { byte: number }).byte)).toEqual([0x61, 0x62, 0x63, 0x64]);
    expect(verify(log).code).toBe(0);
  }, 60_000);

  test("the end of piped input is not the end of the run", async () => {
    // Two bytes, then EOF: the guest goes on polling for the other two until it is stopped.
    const p = Bun.spawn([BUN, RRX, "run", join(FIX, "poll.elf")], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    p.stdin.write("ab");
    p.stdin.end();
    let out = "";
    const reader = (async () => { for await (const c of p.stdout) out += Buffer.from(c).toString("latin1"); })();
    for (let i = 0; i < 3000 && !out.includes("got 62"); i++) await Bun.sleep(10);
    await Bun.sleep(300);
    expect(p.exitCode).toBeNull();
    p.kill("SIGINT");
    expect(await p.exited).toBe(130);
    await reader;
    expect(out).toBe("poll: waiting for 4 bytes\ngot 61\ngot 62\n");
  }, 60_000);

  test("stdout piped to a reader that exits (| head): the run stops with 141 and the recording verifies", () => {
    const dir = tmp();
    const log = join(dir, "h.rrx");
    const r = Bun.spawnSync(["sh", "-c", `${sh(BUN)} ${sh(RRX)} run ${sh(join(FIX, "cpu-bound.elf"))} --append rounds=1000000 --record ${sh(log)} | head -2`], { stdout: "pipe", stderr: "pipe", cwd: dir });
    expect(r.stdout.toString().split("\n").slice(0, 2)).toEqual(["cpu-bound: crc32 + xorshift32 + sieve over 1 MiB", "rounds: 1000000"]);
    expect(r.stderr.toString()).toContain("the reader of stdout went away");
    expect(r.stderr.toString()).not.toContain("internal error");
    expect(readLog(new Uint8Array(readFileSync(log))).trailer?.reason).toBe("signal:SIGPIPE");
    expect(verify(log).code).toBe(0);
  }, 60_000);

  test("a guest that waits for input after the pipe ends stops as idle (exit 0)", () => {
    const dir = tmp();
    const log = join(dir, "i.rrx");
    const r = Bun.spawnSync(["sh", "-c", `printf hello | ${sh(BUN)} ${sh(RRX)} run ${sh(join(FIX, "interrupts.elf"))} --rtc 2024-02-29T12:34:56Z --record ${sh(log)}`], { stdout: "pipe", stderr: "pipe" });
    expect(r.stderr.toString()).toContain("guest idle with no pending input");
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toContain("echoing serial until 'q'\nhello");
    expect(verify(log).code).toBe(0);
  }, 60_000);
});
