/**
 * reverse-stepi latency at depths of 10^3, 10^6 and 10^9 instructions back from the end of a
 * cpu-bound recording (bench/lib/reverse.ts; --quick: 1.5e8 instructions, the deepest depth is
 * then the start of the recording plus 1000).
 *
 * The engine first replays to the end with `continue` (as a gdb session that ran to the end).
 * For each depth D: `monitor goto end-D` (timed, reported separately), then K reverse single
 * steps (ReplayEngine.stepBack, what gdb's `bs` packet runs), each timed from request to
 * registers available. Median and p99 are over all K steps, the first one included (it is the
 * only one that may pay for a replay from a far checkpoint). Then K forward steps at the same
 * place for scale.
 */
import type { BenchCase, Metric } from "../lib/types.ts";
import { engineAtEnd, pct, timed } from "../lib/reverse.ts";
import { median } from "../lib/rrx.ts";

const DEPTHS: [string, number][] = [["d1e3", 1e3], ["d1e6", 1e6], ["d1e9", 1e9]];

export default {
  name: "reverse-stepi",
  title: "reverse-stepi latency at depth (cpu-bound recording)",
  order: 60,
  async run(ctx) {
    const K = ctx.scale(100, 300, 1000);
    const { e, toEndS } = await engineAtEnd(ctx);
    const end = e.end, span = end - e.begin;
    const metrics: Metric[] = [];
    const notes: string[] = [`recording: ${span} instructions; replay to the end ${toEndS.toFixed(1)} s (${(span / toEndS / 1e6).toFixed(1)} MIPS); ${K} reverse steps per depth`];
    const raw: Record<string, unknown> = { span, toEndS };
    const fwd: number[] = [];
    let allMedian = 0;
    for (const [key, d0] of DEPTHS) {
      const depth = Math.min(d0, span - 1000);
      const target = end - depth;
      const g = await timed(() => e.seek(target));
      if (e.icount !== target) throw new Error(`goto ${target}: at ${e.icount} (${g.v.kind})`);
      const lat: number[] = [];
      for (let i = 0; i < K; i++) {
        const s = await timed(() => e.stepBack());
        if (s.v.kind !== "step") throw new Error(`reverse-stepi at ${e.icount}: ${s.v.kind}`);
        lat.push(s.ms);
      }
      if (e.icount !== target - K) throw new Error(`after ${K} reverse steps: at ${e.icount}, expected ${target - K}`);
      for (let i = 0; i < K; i++) {
        const s = await timed(() => e.stepForward());
        fwd.push(s.ms);
      }
      const med = median(lat);
      allMedian = Math.max(allMedian, med);
      const dl = depth === d0 ? `10^${Math.log10(d0)}` : `${depth.toExponential(1)}(start)`;
      metrics.push(
        { key: `${key}.goto.ms`, label: `goto end-${dl}`, value: g.ms, unit: "ms" },
        { key: `${key}.median.ms`, label: `rev-stepi @end-${dl}, median`, value: med, unit: "ms", digits: 3 },
        { key: `${key}.p99.ms`, label: `rev-stepi @end-${dl}, p99`, value: pct(lat, 0.99), unit: "ms" },
        { key: `${key}.max.ms`, label: `rev-stepi @end-${dl}, worst`, note: `first ${lat[0]!.toFixed(1)} ms`, value: Math.max(...lat), unit: "ms" },
      );
      raw[key] = { depth, gotoMs: g.ms, lat };
    }
    const fmed = median(fwd);
    metrics.push(
      { key: "stepi.ms", label: "forward stepi, median (for scale)", value: fmed, unit: "ms", digits: 3 },
      { key: "reverse_over_forward", label: "reverse-stepi / forward stepi (latency, worst depth's median)", value: allMedian / fmed, unit: "x", ratio: true },
    );
    const st = e.store.stats();
    notes.push(`engine: ${e.stats.restores} restores, ${e.stats.replayed} instructions replayed, ${st.count} checkpoints, ${(st.usedBytes / 2 ** 20).toFixed(1)} MiB`);
    notes.push("goals (gdb issue): median <= 20 ms, p99 <= 100 ms at every depth");
    return { status: "ok", metrics, notes, raw };
  },
} satisfies BenchCase;
