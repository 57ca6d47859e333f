/**
 * Debian's i386 kernel (fetched by fixtures/linux/fetch.sh) under `rrx run --record` and
 * `rrx replay --verify`. Until the CPU has an x87 FPU, the kernel gets as far as its FPU check
 * (in arch_cpu_finalize_init, after the console is up) and refuses to go on: "x86/fpu: Giving
 * up, no FPU found and no math emulation present", then halts with interrupts on. (The
 * "requires the following features" refusal is in the real-mode setup code, which the 32-bit
 * boot protocol skips.) The run stops at a fixed instruction count just after that message
 * (measured: its last byte is written at about 2.439 G instructions, 2.35 G of them the XZ
 * decompressor); when the FPU lands, this test becomes the boot-to-shell test.
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

const REFUSAL = "x86/fpu: Giving up, no FPU found and no math emulation present";
const MAX_INSNS = "2450000000";

const dir = mkdtempSync(join(tmpdir(), "rrx-linux-boot-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function rrx(args: string[]) {
  const p = Bun.spawnSync([BUN, RRX, ...args], { cwd: dir, stdout: "pipe", stderr: "pipe", timeout: 900_000 });
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

describe.skipIf(!HAVE)("Debian's i386 kernel", () => {
  test("boots to its missing-FPU refusal, recorded and replayed with --verify", () => {
    const rec = join(dir, "linux.rrx");
    const run = rrx(["run", KERNEL, "--initrd", INITRD, "-m", "64", "--append", "console=ttyS0,115200 quiet",
      "--rtc", "2026-01-01T00:00:00Z", "--max-insns", MAX_INSNS, "--no-realtime", "--serial", "file:run.txt",
      "--record", rec]);
    expect(run.stderr).toContain(`instruction limit reached after ${MAX_INSNS} instructions`);
    expect(run.code).toBe(0);
    const out = readFileSync(join(dir, "run.txt"), "latin1");
    expect(out).toContain(REFUSAL);
    // No character lost: every line is a whole printk line with its timestamp.
    const lines = out.split("\r\n").filter((l) => l !== "");
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) expect(l).toMatch(/^\[ {4}\d\.\d{6}\] \S/);
    // The log names the kernel and the initrd by hash.
    const info = rrx(["log", "info", rec]);
    expect(info.stdout).toMatch(/kernel/);
    expect(info.stdout).toMatch(/initrd/);
    const rep = rrx(["replay", rec, "--verify", "--serial", "file:replay.txt"]);
    expect(rep.stderr).toContain("rrx: verified:");
    expect(rep.code).toBe(0);
    expect(readFileSync(join(dir, "replay.txt"), "latin1")).toBe(out);
  }, 900_000);
});
