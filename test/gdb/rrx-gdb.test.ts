/**
 * `rrx gdb` against the real gdb (batch mode) on a recording of test/gdb/kernel/dbg.elf (built
 * with -O0 -g: line information for next/finish). Skipped when gdb is not installed.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openLog, type OpenedLog } from "../../lib/replay/replayer.ts";
import { engineFromLog } from "../../lib/replay/engine.ts";
import { RrxTarget } from "../../lib/gdb/rrx-target.ts";
import { GdbServer } from "../../lib/gdb/server.ts";
import { BUN, DBG_ELF, recordDbg, RRX } from "./record.ts";

const GDB = Bun.which("gdb");
if (!GDB) console.warn("test/gdb/rrx-gdb.test.ts: SKIPPED: gdb is not installed (apt-get install gdb)");

let dir = "";
let log = "";
let opened: OpenedLog;
let server: GdbServer | null = null;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rrx-gdb-real-"));
  log = recordDbg(dir);
  opened = openLog(log);
});
afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });
afterEach(async () => { await server?.stop(); server = null; });

async function runGdb(cmds: string[]): Promise<{ out: string; target: RrxTarget }> {
  const target = new RrxTarget(engineFromLog(opened));
  server = new GdbServer(target, { port: 0 });
  const { port } = await server.start();
  // The kernel's debug info names its sources under /rrx/test/gdb/kernel (a stable prefix, not
  // this machine's path): map it to the checkout.
  const args = [GDB!, "-nx", "-batch", "-ex", `set substitute-path /rrx ${join(import.meta.dir, "..", "..")}`, DBG_ELF, "-ex", `target remote 127.0.0.1:${port}`];
  for (const c of cmds) args.push("-ex", c);
  args.push("-ex", "kill");
  // one stream for gdb's stdout and stderr, so markers and messages keep their order
  const proc = Bun.spawn(["sh", "-c", 'exec "$0" "$@" 2>&1', ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const killer = setTimeout(() => proc.kill(), 60_000);
  const out = await new Response(proc.stdout).text();
  await proc.exited;
  clearTimeout(killer);
  return { out, target };
}

/** The text between two `echo` markers. */
function between(out: string, a: string, b: string): string {
  const i = out.indexOf(a + "\n"), j = out.indexOf(b + "\n");
  expect(i).toBeGreaterThanOrEqual(0);
  expect(j).toBeGreaterThan(i);
  return out.slice(i + a.length + 1, j);
}

describe.skipIf(!GDB)("rrx gdb with the real gdb", () => {
  test("break on a C function, continue, backtrace", async () => {
    const { out } = await runGdb(["break bump", "continue", "bt", "continue", "p k", "p counter"]);
    expect(out).toContain("Breakpoint 1, bump (k=0) at dbg.c:15");
    expect(out).toMatch(/#1 .* in compute \(n=8\) at dbg\.c:24/);
    expect(out).toMatch(/#2 .* in kmain \(.*\) at dbg\.c:\d+/);
    expect(out).toContain("Breakpoint 1, bump (k=1) at dbg.c:15");
    expect(out).toContain("$1 = 1");
    expect(out).toContain("$2 = 0");
  }, 60_000);

  test("stepi x N then reverse-stepi x N restores the registers exactly", async () => {
    const { out } = await runGdb([
      "break compute", "continue",
      "echo R0\\n", "info registers", "echo R1\\n",
      "stepi 200", "echo S\\n", "info registers", "echo S1\\n",
      "reverse-stepi 200", "echo R2\\n", "info registers", "echo R3\\n",
      "stepi 200", "echo S2\\n", "info registers", "echo S3\\n",
    ]);
    const before = between(out, "R0", "R1"), back = between(out, "R2", "R3");
    expect(before).toMatch(/eip\s+0x/);
    expect(back).toBe(before);
    expect(between(out, "S2", "S3")).toBe(between(out, "S", "S1"));
    expect(between(out, "S", "S1")).not.toBe(before);
  }, 60_000);

  test("reverse-continue reaches the previous hit of a breakpoint", async () => {
    const { out } = await runGdb([
      "break bump", "continue", "continue", "continue", "echo RC\\n", "reverse-continue", "p k", "reverse-continue", "p k",
      "monitor when",
    ]);
    const rc = out.slice(out.indexOf("RC\n"));
    expect(rc).toContain("Breakpoint 1, bump (k=1) at dbg.c:15");
    expect(rc).toContain("$1 = 1");
    expect(rc).toContain("Breakpoint 1, bump (k=0) at dbg.c:15");
    expect(rc).toContain("$2 = 0");
  }, 60_000);

  test("a reverse watchpoint finds the instruction that last wrote a global, with the old value", async () => {
    const { out } = await runGdb([
      "break bump", "continue", "continue", "continue", "continue", "p counter", "delete",
      "watch counter", "echo RW\\n", "reverse-continue", "p counter", "p k", "x/i $pc", "echo FW\\n", "stepi", "p counter",
    ]);
    expect(out).toContain("$1 = 3");
    const rw = between(out, "RW", "FW");
    expect(rw).toContain("Hardware watchpoint 2: counter");
    expect(rw).toMatch(/Old value = 3\s+New value = 1/);
    expect(rw).toContain("bump (k=2) at dbg.c:17");
    expect(rw).toContain("$2 = 1"); // memory holds the value before the write
    expect(rw).toContain("$3 = 2");
    expect(rw).toMatch(/=> 0x[0-9a-f]+ <bump\+\d+>:\s+mov\s+%eax,0x[0-9a-f]+/);
    const fw = out.slice(out.indexOf("FW\n"));
    expect(fw).toMatch(/Old value = 1\s+New value = 3/);
    expect(fw).toContain("$4 = 3");
  }, 60_000);

  test("reverse-next and reverse-finish in C code", async () => {
    const { out } = await runGdb([
      "break compute", "continue", "next", "next", "next", "next",
      "echo RN\\n", "reverse-next", "reverse-next", "echo ST\\n", "step", "echo RF\\n", "reverse-finish", "bt 1", "echo END\\n",
    ]);
    const rn = between(out, "RN", "ST");
    expect(rn).toMatch(/^23\t.*for \(u32 i = 0; i < n; i\+\+\)/m);
    expect(rn).toMatch(/^24\t.*s \+= bump\(i\);/m);
    expect(between(out, "ST", "RF")).toContain("bump (k=0) at dbg.c:15");
    const rf = between(out, "RF", "END");
    expect(rf).toMatch(/^0x[0-9a-f]+ in compute \(n=8\) at dbg\.c:24/m); // at the call instruction
    expect(rf).toMatch(/#0\s+0x[0-9a-f]+ in compute \(n=8\) at dbg\.c:24/);
  }, 60_000);

  test("reverse from the end of the log; replaylog boundaries at both ends", async () => {
    const { out } = await runGdb([
      "echo B\\n", "reverse-stepi", "p $pc", "echo E\\n", "continue", "monitor when", "echo R\\n",
      "break bump", "reverse-continue", "p k", "p counter", "reverse-stepi", "info registers eip", "echo X\\n",
    ]);
    const b = between(out, "B", "E");
    expect(b).toContain("No more reverse-execution history.");
    expect(b).toContain("0x100010 <_start>");
    const e = between(out, "E", "R");
    expect(e).toContain("No more reverse-execution history.");
    const end = opened.log.trailer!.finalIcount;
    expect(e).toContain(`Current instruction: ${end}`);
    const r = between(out, "R", "X");
    expect(r).toContain("Breakpoint 1, bump (k=30) at dbg.c:15"); // the last call: compute(31)
    expect(r).toMatch(/eip\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <bump\+3>/); // one instruction back, inside the prologue
  }, 60_000);

  test("monitor commands: when, goto, checkpoint(s), hash, screen, help; writes refused while replaying", async () => {
    const { out } = await runGdb([
      "monitor when", "monitor goto 20000", "flushregs", "monitor when", "monitor hash", "monitor checkpoint", "monitor checkpoints",
      "monitor goto 5", "monitor goto 20000", "monitor hash", "monitor screen", "monitor help",
      "set var $eax = 1", "set var counter = 5", "monitor goto 999999999", "monitor bogus",
      "monitor live", "set var counter = 5", "p counter", "reverse-stepi",
    ]);
    expect(out).toContain("Current instruction: 0 (recording 0..");
    expect(out).toContain("Now at instruction 20000");
    expect(out).toContain("Current instruction: 20000");
    const hashes = [...out.matchAll(/state ([0-9a-f]+) at instruction 20000/g)].map((m) => m[1]);
    expect(hashes.length).toBe(2);
    expect(hashes[0]).toBe(hashes[1]);
    expect(out).toMatch(/Checkpoint \d+ at instruction 20000/);
    expect(out).toMatch(/\*\s+\d+\s+icount 20000/);
    expect(out).toContain("goto N");
    expect(out).toMatch(/goto: expected an instruction count/);
    expect(out).toMatch(/unknown monitor command 'bogus'/);
    expect(out).toContain("Live at instruction 20000");
    expect(out).toContain("$1 = 5");
    // gdb asked for a reverse step from a live target: refused
    expect(out.slice(out.indexOf("$1 = 5"))).toMatch(/Remote failure reply: E01|does not support/);
    expect(out).toContain("Could not write register \"eax\"");
  }, 60_000);
});

describe.skipIf(!GDB)("the rrx gdb command", () => {
  test("launches gdb with the packed kernel's symbols, extra args after --", async () => {
    const p = Bun.spawn([BUN, RRX, "gdb", log, "--port", "0", "--", "-nx", "-batch", "-ex", "break bump", "-ex", "continue", "-ex", "monitor when", "-ex", "kill"],
      { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
    expect(await p.exited).toBe(0);
    expect(out + err).toContain("Breakpoint 1, bump (k=0) at dbg.c:15");
    expect(out + err).toMatch(/Current instruction: \d+ \(recording/);
  }, 60_000);

  test("--live kernel.elf: forward debugging of a live machine, writes allowed", async () => {
    const p = Bun.spawn(["sh", "-c", 'exec "$0" "$@" 2>&1', BUN, RRX, "gdb", "--live", DBG_ELF, "--port", "0", "--", "-nx", "-batch",
      "-ex", "break bump", "-ex", "continue", "-ex", "set var counter = 100", "-ex", "delete", "-ex", "continue"],
    { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const out = await new Response(p.stdout).text();
    await p.exited;
    expect(out).toContain("Breakpoint 1, bump (k=0) at dbg.c:15");
    expect(out).toContain("exited with code 01");
    expect(out).toMatch(/dbg [0-9a-f]+ 0\n/); // the guest's own line: no serial input when live
  }, 60_000);

  test("bad input gets a one-line error", async () => {
    for (const args of [["gdb", join(dir, "nope.rrx")], ["gdb", DBG_ELF], ["gdb", log, "--port", "x"], ["gdb", log, "--live-at", "99999999999"]]) {
      const p = Bun.spawnSync([BUN, RRX, ...args], { cwd: dir, stdout: "pipe", stderr: "pipe" });
      const err = p.stderr.toString();
      expect(p.exitCode).toBe(2);
      expect(err.trim().split("\n").length).toBe(1);
      expect(err).toStartWith("rrx: error:");
    }
  }, 60_000);

  test("--no-launch prints the target remote line; --live-at goes live", async () => {
    const p = Bun.spawn([BUN, RRX, "gdb", log, "--no-launch", "--port", "0", "--live-at", "20000"], { cwd: dir, stdout: "pipe", stderr: "pipe" });
    const reader = p.stderr.getReader();
    let text = "";
    while (!/target remote (\S+)/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const addr = /target remote (\S+)/.exec(text)![1]!;
    const g = Bun.spawnSync([GDB!, "-nx", "-batch", DBG_ELF, "-ex", `target remote ${addr}`, "-ex", "monitor when", "-ex", "reverse-stepi", "-ex", "kill"], { stdout: "pipe", stderr: "pipe" });
    const out = g.stdout.toString() + g.stderr.toString();
    expect(out).toContain("Current instruction: 20000 (live)");
    expect(out).toMatch(/Target remote does not support this command/);
    expect(await p.exited).toBe(0);
  }, 60_000);
});
