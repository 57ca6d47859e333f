/**
 * Test helper: record test/gdb/kernel/dbg.elf (debug info, a global counter, PIT and serial
 * interrupts, three logged serial bytes) with the real CLI, packed, into `dir`.
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
    "--serial", "none", "--rtc", "2026-01-01T00:00:00Z", "--no-realtime"], { cwd: KERNEL_DIR, stdout: "pipe", stderr: "pipe" });
  if (!existsSync(out)) throw new Error(`recording failed: ${p.stderr.toString()}`);
  return out;
}

/** Symbol values from an ELF32's .symtab (for tests). */
export function elfSymbols(image: Uint8Array): Map<string, number> {
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const shoff = dv.getUint32(0x20, true), shentsize = dv.getUint16(0x2e, true), shnum = dv.getUint16(0x30, true);
  const out = new Map<string, number>();
  for (let i = 0; i < shnum; i++) {
    const sh = shoff + i * shentsize;
    if (dv.getUint32(sh + 4, true) !== 2) continue; // SHT_SYMTAB
    const off = dv.getUint32(sh + 16, true), size = dv.getUint32(sh + 20, true), link = dv.getUint32(sh + 24, true);
    const strOff = dv.getUint32(shoff + link * shentsize + 16, true);
    for (let s = off; s < off + size; s += 16) {
      let n = strOff + dv.getUint32(s, true), name = "";
      while (image[n]) name += String.fromCharCode(image[n++]!);
      if (name) out.set(name, dv.getUint32(s + 4, true));
    }
  }
  return out;
}
