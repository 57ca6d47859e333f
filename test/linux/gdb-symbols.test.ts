/**
 * `rrx gdb` on a recording of a Linux bzImage: gdb gets an ELF symbol file made from the
 * System.map next to the kernel (or --symbols), so breakpoints by name work. The kernel is a
 * synthetic bzImage (a setup header and a few instructions at 1 MiB); gdb is the real one.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { TINY_MAP as MAP, tinyBzImage } from "./tiny.ts";

const ROOT = resolve(import.meta.dir, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const RRX = join(ROOT, "cmd/rrx.ts");
const GDB = Bun.which("gdb");
if (!GDB) console.warn("test/linux/gdb-symbols.test.ts: SKIPPED: gdb is not installed (apt-get install gdb)");

let dir = "";
let rec = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rrx-linux-gdb-"));
  mkdirSync(join(dir, "boot"));
  writeFileSync(join(dir, "boot/vmlinuz"), tinyBzImage());
  writeFileSync(join(dir, "boot/System.map"), MAP);
  writeFileSync(join(dir, "other.map"), "00100002 t other_name\n00100008 T other_end\n");
  rec = join(dir, "rec.rrx");
  const p = Bun.spawnSync([BUN, RRX, "run", "boot/vmlinuz", "--append", "console=ttyS0", "--record", rec,
    "--serial", "none", "--rtc", "2026-01-01T00:00:00Z", "--no-realtime"], { cwd: dir, stdout: "pipe", stderr: "pipe" });
  if (!existsSync(rec)) throw new Error(`recording failed: ${p.stderr.toString()}`);
});
afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

function gdb(extra: string[], cmds: string[]): { out: string; code: number } {
  const args = [BUN, RRX, "gdb", "rec.rrx", "--port", "0", ...extra, "--", "-nx", "-batch"];
  for (const c of cmds) args.push("-ex", c);
  args.push("-ex", "kill");
  const p = Bun.spawnSync(["sh", "-c", 'exec "$0" "$@" 2>&1', ...args], { cwd: dir, stdout: "pipe", timeout: 60_000 });
  return { out: p.stdout.toString(), code: p.exitCode ?? -1 };
}

describe.skipIf(!GDB)("rrx gdb on a bzImage recording", () => {
  test("System.map next to the kernel: break by name, names in x/i", () => {
    const { out } = gdb([], ["break do_exit", "continue", "x/i $pc", "p/x $eax", "info symbol 0x100003"]);
    expect(out).toContain("Breakpoint 1 at 0x100008");
    expect(out).toMatch(/0x100008 <do_exit>:\s+mov\s+\$0x0,%al/);
    expect(out).toContain("0x64"); // the loop ran to 100
    expect(out).toContain("spin + 1 in section");
  });
  test("--symbols names another System.map; a missing file is a one-line error", () => {
    const { out } = gdb(["--symbols", "other.map"], ["info symbol 0x100003"]);
    expect(out).toContain("other_name + 1 in section");
    const bad = gdb(["--symbols", "nope.map"], []);
    expect(bad.code).toBe(2);
    expect(bad.out).toContain("rrx: error: --symbols: nope.map: no such file");
  });
});
