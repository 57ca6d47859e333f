/**
 * Test helper: record test/gdb/kernel/dbg.elf (debug info, a global counter, PIT and serial
 * interrupts, three logged serial bytes) with the real CLI, packed, into `dir`.
 *
 * It records on version 1 of the PC board, whose UART sends each character in its character
 * time: the kernel's last line then takes about 1 M instructions of polling, and the tests of
 * seeks, reverse execution and going live use that stretch (on version 2 the run ends 32 K
 * instructions in). It also keeps a version-1 board under the reverse debugger's tests.
 */
import { join, resolve } from "node:path";
import { existsSync } from "node:fs";

export const ROOT = resolve(import.meta.dir, "../..");
export const KERNEL_DIR = join(ROOT, "test/gdb/kernel");
export const DBG_ELF = join(KERNEL_DIR, "dbg.elf");
export const BUN = join(ROOT, "node_modules/.bin/bun");
export const RRX = join(ROOT, "cmd/rrx.ts");
export const RUNS = Number(process.env.RRX_PROPERTY_RUNS ?? 100);

/** Record dbg.elf; returns the log path. */
export function recordDbg(dir: string, name = "dbg.rrx"): string {
  const out = join(dir, name);
  const p = Bun.spawnSync([BUN, RRX, "run", "dbg.elf", "--input", "dbg.input.txt", "--record", out, "--pack",
    "--serial", "none", "--rtc", "2026-01-01T00:00:00Z", "--no-realtime", "--board-version", "1"], { cwd: KERNEL_DIR, stdout: "pipe", stderr: "pipe" });
  if (!existsSync(out)) throw new Error(`recording failed: ${p.stderr.toString()}`);
  return out;
}

/** Symbol values from an ELF32's .symtab (for tests). */
export { elfSymbols } from "../../lib/boot/elf.ts";
