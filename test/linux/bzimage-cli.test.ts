/**
 * `rrx run` with a Linux bzImage: --initrd and --append, the images in the log by hash and in
 * --pack logs, replay rebuilding the same machine elsewhere, and one-line errors (exit 2).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { tinyBzImage } from "./tiny.ts";

const ROOT = resolve(import.meta.dir, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const RRX = join(ROOT, "cmd/rrx.ts");
const dir = mkdtempSync(join(tmpdir(), "rrx-bzimage-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, "a"));
mkdirSync(join(dir, "b"));
writeFileSync(join(dir, "a/bzImage"), tinyBzImage());
writeFileSync(join(dir, "a/initrd"), new Uint8Array(50_000).fill(7));
writeFileSync(join(dir, "a/bigrd"), new Uint8Array(1_500_000));
writeFileSync(join(dir, "a/k64"), tinyBzImage({ xloadflags: 1 }));

function rrx(cwd: string, args: string[]) {
  const p = Bun.spawnSync([BUN, RRX, ...args], { cwd: join(dir, cwd), stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

describe("rrx run with a bzImage", () => {
  test("record --pack; the log lists kernel and initrd by hash; replay elsewhere verifies", () => {
    const r = rrx("a", ["run", "bzImage", "--initrd", "initrd", "--append", "console=ttyS0", "--record", "../b/rec.rrx", "--pack", "--serial", "none", "--no-realtime"]);
    expect(r.code).toBe(1); // the tiny kernel writes 0 to port 0xF4: (0 << 1) | 1
    const info = rrx("b", ["log", "info", "rec.rrx"]);
    expect(info.stdout).toMatch(/image kernel bzImage: 3072 bytes sha256 [0-9a-f]{64} \[packed\]/);
    expect(info.stdout).toMatch(/image initrd initrd: 50000 bytes sha256 [0-9a-f]{64} \[packed\]/);
    const v = rrx("b", ["replay", "rec.rrx", "--verify"]);
    expect(v.stderr).toContain("rrx: verified:");
    expect(v.code).toBe(0);
  });
  test("one-line errors with exit 2", () => {
    const cases: [string[], RegExp][] = [
      [["run", "k64"], /k64: a 64-bit \(x86_64\) kernel/],
      [["run", "bzImage", "--initrd", "bigrd", "-m", "2"], /initrd \(1500000 bytes\) does not fit in RAM/],
      [["run", "bzImage", "--initrd", "nope"], /nope: no such initrd file/],
      [["run", "bzImage", "--module", "initrd"], /--module is for Multiboot kernels/],
      [["run", "initrd", "--initrd", "initrd"], /--initrd is for Linux kernels/],
    ];
    for (const [args, re] of cases) {
      const r = rrx("a", args);
      expect(r.stderr).toMatch(re);
      expect(r.stderr.trim().split("\n").length).toBe(1);
      expect(r.code).toBe(2);
    }
  });
});
