/**
 * Execution with breakpoints set on hot code against the same execution without: `continue`
 * over the rounds=2 cpu-bound recording (bench/lib/reverse.ts, 1.5e8 instructions at every
 * preset) from icount 6e6 (after the banner) to the end. With breakpoints: on memset,
 * rt_printf, vformat (each hit a few times: every stop is continued, as gdb's `continue` does)
 * and rt_fail (never hit), all in the page of the hot loops or next to it. Two fresh engines,
 * best of 2 alternating runs each (--quick: 1), the same checkpoints taken on the way.
 */
import type { BenchCase } from "../lib/types.ts";
import { engineAtStart, sym, timed } from "../lib/reverse.ts";

const FROM = 6_000_000;

export default {
  name: "breakpoint-overhead",
  title: "continue with breakpoints on hot code vs without",
  order: 64,
  async run(ctx) {
    const reps = ctx.scale(1, 2, 3);
    const bps = [sym("memset"), sym("rt_printf"), sym("vformat"), sym("rt_fail")];
    const best = { without: Infinity, with: Infinity };
    let hits = 0, insns = 0;
    for (let rep = 0; rep < reps; rep++) {
      for (const mode of rep % 2 ? ["with", "without"] as const : ["without", "with"] as const) {
        const { e } = await engineAtStart(ctx, {}, 2);
        await e.seek(FROM);
        if (mode === "with") e.setBreakpoints(bps);
        let n = 0;
        const t = await timed(async () => {
          for (;;) {
            const r = await e.continueForward();
            if (r.kind === "breakpoint") { n++; continue; }
            if (r.kind !== "end") throw new Error(`continue: ${r.kind} at ${e.icount}`);
            return;
          }
        });
        if (e.icount !== e.end) throw new Error(`continue stopped at ${e.icount}, end ${e.end}`);
        insns = e.end - FROM;
        if (mode === "with") hits = n;
        best[mode] = Math.min(best[mode], t.ms);
      }
    }
    return {
      status: "ok",
      metrics: [
        { key: "without.mips", label: "continue, no breakpoints", value: insns / best.without / 1e3, unit: "MIPS" },
        { key: "with.mips", label: `continue, ${bps.length} breakpoints (${hits} stops)`, value: insns / best.with / 1e3, unit: "MIPS" },
        { key: "with_over_without", label: "time with / without breakpoints", value: best.with / best.without, unit: "x", ratio: true },
      ],
      notes: [`${insns} instructions; goal (gdb issue): <= 1.1x`],
    };
  },
} satisfies BenchCase;
