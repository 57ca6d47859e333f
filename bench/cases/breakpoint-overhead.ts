/**
 * Execution with breakpoints set on hot code against the same execution without: `continue`
 * over the rounds=2 cpu-bound recording (bench/lib/reverse.ts, 1.5e8 instructions at every
 * preset) from icount 6e6 (after the banner) to the end. With breakpoints: on memset,
 * rt_printf, vformat (each hit a few times: every stop is continued, as gdb's `continue` does)
 * and rt_fail (never hit), all in the page of the hot loops or next to it. A fresh engine per
 * run, 1 / 4 / 6 runs of each mode alternating (with first in every other pair), the same
 * checkpoints taken on the way. Both modes set their breakpoint list (empty: none) after the
 * seek, so both start from an empty block cache: the cache the seek leaves behind came from a
 * different history and ran this stretch up to 1.3x slower or faster, which swamped the
 * breakpoints' own cost. Reported: best with / best without, and the median of the per-pair
 * ratios (each pair ran back to back, so it shares the host's load).
 */
import type { BenchCase } from "../lib/types.ts";
import { engineAtStart, sym, timed } from "../lib/reverse.ts";

const FROM = 6_000_000;

export default {
  name: "breakpoint-overhead",
  title: "continue with breakpoints on hot code vs without",
  order: 64,
  async run(ctx) {
    const reps = ctx.scale(1, 4, 6);
    const bps = [sym("memset"), sym("rt_printf"), sym("vformat"), sym("rt_fail")];
    const best = { without: Infinity, with: Infinity };
    const pairs: number[] = [];
    const times: { without: number[]; with: number[] } = { without: [], with: [] };
    let hits = 0, insns = 0;
    for (let rep = 0; rep < reps; rep++) {
      const ms = { without: 0, with: 0 };
      for (const mode of rep % 2 ? ["with", "without"] as const : ["without", "with"] as const) {
        const { e } = await engineAtStart(ctx, {}, 2);
        await e.seek(FROM);
        e.setBreakpoints(mode === "with" ? bps : []); // drops the block cache in both modes
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
        times[mode].push(t.ms);
        ms[mode] = t.ms;
      }
      pairs.push(ms.with / ms.without);
    }
    const median = (xs: number[]): number => {
      const s = [...xs].sort((a, b) => a - b), h = s.length >> 1;
      return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
    };
    return {
      status: "ok",
      metrics: [
        { key: "without.mips", label: "continue, no breakpoints", value: insns / best.without / 1e3, unit: "MIPS" },
        { key: "with.mips", label: `continue, ${bps.length} breakpoints (${hits} stops)`, value: insns / best.with / 1e3, unit: "MIPS" },
        { key: "with_over_without", label: "time with / without breakpoints (best of each)", value: best.with / best.without, unit: "x", ratio: true },
        { key: "with_over_without_median", label: `time with / without, median of ${reps} back-to-back pairs`, value: median(pairs), unit: "x", ratio: true },
      ],
      raw: { times, pairs },
      notes: [`${insns} instructions; pairs: ${pairs.map((x) => x.toFixed(3)).join(" ")}; goal (gdb issue): <= 1.1x`],
    };
  },
} satisfies BenchCase;
