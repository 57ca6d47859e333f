/**
 * Debian's i386 kernel (fetched by fixtures/linux/fetch.sh) boots to the busybox shell under
 * `rrx run --record` with an input script (fixtures/linux/shell.txt) that types commands, and
 * the run ends by itself when `poweroff -f` halts the kernel. The transcript holds each
 * command's expected output (fixtures/linux/shell.expected). Then `rrx replay --verify`
 * checks every hash record and the transcript, and a second, plain replay in a fresh process
 * gives the same transcript again.
 *
 * The console runs at 115200 baud, as the README's example does: on version 1 of the PC board,
 * whose UART sends at the line rate, console=ttyS0's default 9600 makes a character take longer
 * than the 8250 driver's 10000-poll wait (port reads cost rrx about 1 ns of virtual time, an ISA
 * bus about 1 us), and the driver drops characters of the first lines. New recordings run on
 * version 2, which sends at once.
 *
 * A stock gdb then debugs that recording backwards (the symbol addresses come from the session's
 * own `grep /proc/kallsyms`, so no System.map is needed): a breakpoint on the uname system call,
 * reverse-stepi back across the user/kernel boundary, a watchpoint on jiffies (the low word of jiffies_64, found through do_timer) with
 * reverse-continue to its last write, and reverse-continue to an earlier hit of a breakpoint
 * in the timer interrupt. At every stop the state hash (`monitor hash`) equals that of a fresh
 * replay to the same instruction count.
 *
 * Skipped, saying so, when the guest has not been fetched (and the gdb part without gdb).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { openLog, machineFromLog, startMachine, replayToEnd } from "../../lib/replay/replayer.ts";
import { MachineHasher } from "../../lib/replay/session.ts";
import { hashBytes } from "../../lib/replay/hash.ts";
import { engineFromLog } from "../../lib/replay/engine.ts";
import { RrxTarget } from "../../lib/gdb/rrx-target.ts";
import { GdbServer } from "../../lib/gdb/server.ts";

const ROOT = resolve(import.meta.dir, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const RRX = join(ROOT, "cmd/rrx.ts");
export const LINUX_DIR = process.env.RRX_LINUX_DIR ?? join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "rrx/linux");
const KERNEL = join(LINUX_DIR, "vmlinuz");
const INITRD = join(LINUX_DIR, "initramfs.cpio.gz");
const HAVE = existsSync(KERNEL) && existsSync(INITRD);
if (!HAVE) console.warn(`test/linux/boot.test.ts: SKIPPED: no Linux guest in ${LINUX_DIR} (run fixtures/linux/fetch.sh)`);

/** The kernel command line of the tests and the README. */
export const APPEND = "console=ttyS0,115200 cryptomgr.notests noisapnp";
export const SHELL_SCRIPT = join(ROOT, "fixtures/linux/shell.txt");

const GDB = Bun.which("gdb");
const dir = mkdtempSync(join(tmpdir(), "rrx-linux-boot-"));
const REC = join(dir, "linux.rrx");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function rrx(args: string[]) {
  const p = Bun.spawnSync([BUN, RRX, ...args], { cwd: dir, stdout: "pipe", stderr: "pipe", timeout: 900_000 });
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

/** The transcript as lines: CR removed, and the shell's cursor-position queries (ESC [6n). */
export function transcriptLines(out: string): string[] {
  return out.replaceAll("\x1b[6n", "").replaceAll("\r", "").split("\n");
}

/** Check that `lines` holds every expected line (exact, or a regex after ~) in order. */
export function expectInOrder(lines: string[], expectedFile: string): void {
  const want = readFileSync(expectedFile, "utf8").split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  const find = (w: string, at: number): number => {
    const rx = w.startsWith("~") ? new RegExp(w.slice(1)) : null;
    const k = lines.findIndex((l, i) => i >= at && (rx ? rx.test(l) : l === w));
    if (k < 0) throw new Error(`transcript lacks ${JSON.stringify(w)} after line ${at}:\n${lines.slice(Math.max(0, at - 5), at + 40).join("\n")}`);
    return k;
  };
  let at = 0;
  for (let j = 0; j < want.length; j++) {
    // A run of lines starting with & may match in any order (e.g. names in `ls` columns).
    if (want[j]!.startsWith("&")) {
      let end = at;
      for (; j < want.length && want[j]!.startsWith("&"); j++) end = Math.max(end, find(want[j]!.slice(1), at) + 1);
      j--;
      at = end;
      continue;
    }
    at = find(want[j]!, at) + 1;
  }
}

describe.skipIf(!HAVE)("Debian's i386 kernel", () => {
  test("boots to the busybox shell, runs the scripted commands, powers off; replay --verify and a second replay match", () => {
    const rec = REC;
    const run = rrx(["run", KERNEL, "--initrd", INITRD, "-m", "64", "--append", APPEND, "--rtc", "2026-01-01T00:00:00Z",
      "--no-realtime", "--input", SHELL_SCRIPT, "--serial", "file:run.txt", "--record", rec]);
    // The kernel halts with interrupts off after "reboot: System halted": the run ends there.
    expect(run.stderr).toMatch(/guest halted with interrupts disabled after \d+ instructions/);
    expect(run.code).toBe(0);
    const out = readFileSync(join(dir, "run.txt"), "latin1");
    expectInOrder(transcriptLines(out), join(ROOT, "fixtures/linux/shell.expected"));
    // Kernel messages come whole: every line before the shell is a printk line with its time.
    const boot = out.slice(0, out.indexOf("rrx: busybox initramfs up")).split("\r\n").filter((l) => l !== "");
    expect(boot.length).toBeGreaterThan(100);
    for (const l of boot) expect(l).toMatch(/^\[ *\d+\.\d{6}\] /);
    // The console no longer holds interrupts off for whole ticks (board version 2 sends at
    // once), so the clocksource watchdog keeps the TSC (docs/LINUX.md).
    expect(out).not.toMatch(/Marking clocksource .* as unstable/);
    expect(out).toMatch(/clocksource: Switched to clocksource tsc\r?\n/);
    // The log names the kernel and the initrd by hash, and the board version.
    const info = rrx(["log", "info", rec]);
    expect(info.stdout).toMatch(/kernel/);
    expect(info.stdout).toMatch(/initrd/);
    expect(info.stdout).toMatch(/machine: pc board version 2,/);

    const ver = rrx(["replay", rec, "--verify", "--serial", "file:verify.txt"]);
    expect(ver.stderr).toMatch(/rrx: verified: \d{2,} hash records/);
    expect(ver.code).toBe(0);
    expect(readFileSync(join(dir, "verify.txt"), "latin1")).toBe(out);
    const again = rrx(["replay", rec, "--serial", "file:again.txt"]);
    expect(again.code).toBe(0);
    expect(readFileSync(join(dir, "again.txt"), "latin1")).toBe(out);
  }, 900_000);

  test("commands piped into stdin before the kernel is up wait for the shell, and the recording verifies", () => {
    // The bytes are read at once, seconds of virtual time before the kernel opens the serial
    // port: the host holds them until the guest raises RTS (hardware flow control), so none
    // is lost in a FIFO the 8250 driver clears, and the waiting run (its slices shortened to
    // look for room) boots the kernel as a run without input does.
    const rec = join(dir, "piped.rrx");
    const p = Bun.spawnSync([BUN, RRX, "run", KERNEL, "--initrd", INITRD, "-m", "64", "--append", `${APPEND} quiet`,
      "--rtc", "2026-01-01T00:00:00Z", "--max-insns", "6000000000", "--record", rec], {
      cwd: dir, stdin: new TextEncoder().encode("uname -r\recho $((6*7))\rpoweroff -f\r"), stdout: "pipe", stderr: "pipe", timeout: 900_000,
    });
    const lines = transcriptLines(p.stdout.toString());
    expect(p.stderr.toString()).toMatch(/guest halted with interrupts disabled after \d+ instructions/);
    expect(p.exitCode).toBe(0);
    const at = lines.indexOf("/ # uname -r");
    expect(at).toBeGreaterThan(0);
    expect(lines[at + 1]).toMatch(/^\d+\.\d+\.\d+-\d+-686$/);
    expect(lines.slice(at + 2, at + 5)).toEqual(["/ # echo $((6*7))", "42", "/ # poweroff -f"]);
    const ver = rrx(["replay", rec, "--verify", "--serial", "none"]);
    expect(ver.stderr).toMatch(/rrx: verified: \d{2,} hash records/);
    expect(ver.code).toBe(0);
  }, 900_000);

  test.skipIf(!GDB)("gdb debugs the recorded kernel backwards; every stop equals a fresh replay to its icount", async () => {
    expect(existsSync(REC)).toBe(true);
    const out = readFileSync(join(dir, "run.txt"), "latin1");
    const sym = (name: string): number => {
      const m = new RegExp(`^([0-9a-f]{8}) [TtDdBb] ${name}\\r?$`, "m").exec(out);
      if (!m) throw new Error(`no ${name} in the session's kallsyms output`);
      return parseInt(m[1]!, 16);
    };
    const newuname = sym("__ia32_sys_newuname"), doTimer = sym("do_timer"), timer = sym("timer_interrupt");
    const hex = (n: number) => `0x${n.toString(16)}`;
    const opened = openLog(REC, { searchDirs: [LINUX_DIR] });
    const server = new GdbServer(new RrxTarget(engineFromLog(opened)), { port: 0 });
    const { port } = await server.start();
    const script = join(dir, "cmds.gdb");
    await Bun.write(script, [
      `target remote 127.0.0.1:${port}`,
      `break *${hex(newuname)}`, "continue", "echo STOP uname\\n", "monitor hash",
      // back across the system call entry into user mode
      "delete", "set $n = 0", `while $pc >= 0xc0000000 && $n < 5000`, "reverse-stepi", "set $n = $n + 1", "end",
      "echo STOP user\\n", "p/x $pc", "p/x $cs", "p $n", "monitor hash",
      // jiffies: Debian's kallsyms has no data symbols, so take jiffies_64's address from
      // do_timer's "add [jiffies_64], eax" (01 05 disp32); its low word is jiffies.
      `set $p = ${hex(doTimer)}`, `while *(unsigned short *)$p != 0x0501 && $p < ${hex(doTimer + 32)}`, "set $p = $p + 1", "end",
      'eval "watch *(unsigned int *)0x%x", *(unsigned int *)($p + 2)', "reverse-continue", "echo STOP jiffies\\n", "p/x $pc", "monitor hash",
      "delete", `break *${hex(timer)}`, "reverse-continue", "reverse-continue", "echo STOP timer\\n", "p/x $pc", "monitor hash",
      "kill",
    ].join("\n") + "\n");
    const proc = Bun.spawn(["sh", "-c", 'exec "$0" "$@" 2>&1', GDB!, "-nx", "-batch", "-x", script], { stdout: "pipe", stdin: "ignore" });
    const killer = setTimeout(() => proc.kill(), 600_000);
    const gdbOut = await new Response(proc.stdout).text();
    await proc.exited;
    clearTimeout(killer);
    await server.stop();

    const stops = [...gdbOut.matchAll(/STOP (\w+)\n[^]*?state ([0-9a-f]+) at instruction (\d+)/g)].map((m) => ({ what: m[1]!, hash: m[2]!, icount: Number(m[3]) }));
    if (stops.map((x) => x.what).join(" ") !== "uname user jiffies timer") throw new Error(`gdb session:\n${gdbOut}`);
    // The uname stop is the kernel function; the reverse steps end in user mode (CPL 3).
    const user = /STOP user\n\$\d+ = (0x[0-9a-f]+)\n\$\d+ = (0x[0-9a-f]+)\n\$\d+ = (\d+)\n/.exec(gdbOut);
    if (!user) throw new Error(`gdb session:\n${gdbOut}`);
    expect(Number(user[1]!)).toBeLessThan(0xc0000000);
    expect(Number(user[2]!) & 3).toBe(3); // CS of ring 3
    expect(Number(user[3]!)).toBeGreaterThan(10); // the entry path, stepped back one instruction at a time
    // The watchpoint stops at the tick's increment: the two values differ by one.
    const w = /Hardware watchpoint \d+: \*\(unsigned int \*\)0x[0-9a-f]+\n\nOld value = (\d+)\nNew value = (\d+)/.exec(gdbOut);
    if (!w) throw new Error(`gdb session:\n${gdbOut}`);
    expect(Math.abs(Number(w[1]) - Number(w[2]))).toBe(1);
    expect(stops[1]!.icount).toBeLessThan(stops[0]!.icount);
    expect(stops[2]!.icount).toBeLessThan(stops[1]!.icount);
    expect(stops[3]!.icount).toBeLessThan(stops[2]!.icount);
    expect(gdbOut).toMatch(new RegExp(`STOP timer\\n\\$\\d+ = ${hex(timer)}\\n`));

    // A fresh replay to each stop's icount reaches the same state.
    const fresh = openLog(REC, { searchDirs: [LINUX_DIR] });
    const m = machineFromLog(fresh);
    startMachine(m, fresh);
    for (const st of [...stops].sort((a, b) => a.icount - b.icount)) {
      replayToEnd(m, fresh, st.icount);
      expect(m.cpu.icount).toBe(st.icount);
      const h = new MachineHasher(m).record();
      expect({ what: st.what, hash: hashBytes(new TextEncoder().encode(JSON.stringify(h))) }).toEqual({ what: st.what, hash: st.hash });
    }
  }, 900_000);
});
