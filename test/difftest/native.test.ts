/**
 * CI run of the native differential test: ~2000 random programs single-stepped on the host
 * CPU (gcc -m32 harness) and in rrx, compared after every instruction. Skipped when the host
 * cannot build or run 32-bit x86 code.
 */
import { describe, expect, test } from "bun:test";
import { buildHarness } from "./native.ts";
import { difftest } from "./difftest.ts";

const h = buildHarness();
const reason = typeof h === "string" ? h : null;
if (reason) console.log(`difftest skipped: ${reason}`);

describe("native differential test (host CPU oracle)", () => {
  test.skipIf(reason !== null)("2000 random programs agree with the host CPU after every instruction", () => {
    if (typeof h === "string") return;
    try {
      const seed = Number(process.env.RRX_DIFFTEST_SEED ?? 20240601);
      const n = Number(process.env.RRX_DIFFTEST_CASES ?? 2000);
      const s = difftest(h, n, seed);
      for (const d of s.divergences.slice(0, 3)) console.log(d.text);
      expect(s.cases).toBe(n);
      expect(s.faults).toBeGreaterThan(0); // #DE cases are exercised too
      expect(s.divergences.length).toBe(0);
      // Whole blocks, every block translated by the JIT: end states compared.
      const w = difftest(h, Math.ceil(n / 2), seed + 1, { trace: false });
      for (const d of w.divergences.slice(0, 3)) console.log(d.text);
      expect(w.divergences.length).toBe(0);
    } finally {
      h.dispose();
    }
  }, 120_000);
});
