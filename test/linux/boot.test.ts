/**
 * Debian's i386 kernel (fetched by fixtures/linux/fetch.sh) boots to the busybox shell under
 * `rrx run --record` with an input script (fixtures/linux/shell.txt) that types commands, and
 * the run ends by itself when `poweroff -f` halts the kernel. The transcript holds each
 * command's expected output (fixtures/linux/shell.expected). Then `rrx replay --verify`
 * checks every hash record and the transcript, and a second, plain replay in a fresh process
 * gives the same transcript again.
 *
 * The console runs at 115200 baud: at console=ttyS0's default 9600 a character takes longer than
 * the 8250 driver's 10000-poll wait (port reads cost rrx about 1 ns of virtual time, an ISA bus
 * about 1 us), and the driver drops characters of the first lines.
 *
 * Skipped, saying so, when the guest has not been fetched.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";

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

const dir = mkdtempSync(join(tmpdir(), "rrx-linux-boot-"));
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
  let at = 0;
  for (const w of want) {
    const rx = w.startsWith("~") ? new RegExp(w.slice(1)) : null;
    const k = lines.findIndex((l, i) => i >= at && (rx ? rx.test(l) : l === w));
    if (k < 0) throw new Error(`transcript lacks ${JSON.stringify(w)} after line ${at}:\n${lines.slice(Math.max(0, at - 5), at + 40).join("\n")}`);
    at = k + 1;
  }
}

describe.skipIf(!HAVE)("Debian's i386 kernel", () => {
  test("boots to the busybox shell, runs the scripted commands, powers off; replay --verify and a second replay match", () => {
    const rec = join(dir, "linux.rrx");
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
    // The log names the kernel and the initrd by hash.
    const info = rrx(["log", "info", rec]);
    expect(info.stdout).toMatch(/kernel/);
    expect(info.stdout).toMatch(/initrd/);

    const ver = rrx(["replay", rec, "--verify", "--serial", "file:verify.txt"]);
    expect(ver.stderr).toMatch(/rrx: verified: \d{2,} hash records/);
    expect(ver.code).toBe(0);
    expect(readFileSync(join(dir, "verify.txt"), "latin1")).toBe(out);
    const again = rrx(["replay", rec, "--serial", "file:again.txt"]);
    expect(again.code).toBe(0);
    expect(readFileSync(join(dir, "again.txt"), "latin1")).toBe(out);
  }, 900_000);
});
