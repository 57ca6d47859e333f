/**
 * The x87 differential test in CI: random x87 instruction sequences from random FPU states on
 * the host's x87 (fpu-harness.c, built with gcc -m32) and in lib/cpu/x86/fpu, compared bit for
 * bit after every instruction. Skipped when the host cannot build or run 32-bit x86 code.
 * RRX_FPU_CASES (default 5000) and RRX_FPU_SEED choose the run; `bun test/difftest/fpu-difftest.ts`
 * runs it standalone with a per-instruction report.
 */
import { describe, expect, test } from "bun:test";
import { buildFpuHarness, fpuDifftest } from "./fpu-difftest.ts";

const h = buildFpuHarness();
const reason = typeof h === "string" ? h : null;
if (reason) console.log(`x87 difftest skipped: ${reason}`);

describe("x87 differential test (host x87 oracle)", () => {
  test.skipIf(reason !== null)("random x87 sequences agree with the host bit for bit", () => {
    if (typeof h === "string") return;
    try {
      const n = Number(process.env.RRX_FPU_CASES ?? 5000);
      const s = fpuDifftest(h, n, Number(process.env.RRX_FPU_SEED ?? 20261203));
      for (const d of s.divergences.slice(0, 5)) console.log(d.text);
      expect(s.cases).toBe(n);
      // every instruction of the table ran
      expect(s.perOp.size).toBeGreaterThan(120);
      expect(s.divergences.length).toBe(0);
    } finally {
      h.dispose();
    }
  }, 300_000);
});
