/**
 * reverse-continue from the end of a cpu-bound recording (bench/lib/reverse.ts) to the last hit
 * of a breakpoint, for breakpoints whose last hit lies at increasing distances from the end:
 *   rt_vga_putc  the last character printed (near the end)
 *   put_both     the last line of output (about 1.5e6 back)
 *   rt_printf    the last printf ("total: ...", a few 10^6 back: printing is a polled-UART loop)
 *   memset       the sieve's memset of the last round (about 2.7e7 back)
 *   rt_printf x3 three reverse-continues in a row: the last round's printf, then the one of the
 *                round before (a round is about 7.5e7 instructions)
 * Each starts from the end (goto end, untimed) with only that breakpoint set; the time is from
 * request to the stop (the state at the hit restored). The rate is distance / time, to put next
 * to forward replay's MIPS: over the whole recording (the replay to the end with `continue`),
 * and over the same instructions (after the memset and rt_printf x3 cases, `continue` from the
 * hit to the end with no breakpoint). The end of the recording (sieve, memset, polled-UART
 * printing) replays at well under the recording's average speed, so only the second ratio
 * says how the backward scan compares with forward replay.
 */
import type { BenchCase, Metric } from "../lib/types.ts";
import { engineAtEnd, sym, timed } from "../lib/reverse.ts";

export default {
  name: "reverse-continue",
  title: "reverse-continue from the end to the last breakpoint hit",
  order: 61,
  async run(ctx) {
    const { e, toEndS } = await engineAtEnd(ctx);
    const end = e.end, span = end - e.begin;
    const replayMips = span / toEndS / 1e6;
    const metrics: Metric[] = [];
    const raw: Record<string, unknown> = { span, toEndS };
    const cases: [string, string, number][] = [["putc", "rt_vga_putc", 1], ["put_both", "put_both", 1], ["printf", "rt_printf", 1], ["memset", "memset", 1], ["printf3", "rt_printf", 3]];
    let farRate = 0, sameRate = 0;
    for (const [key, name, times] of cases) {
      await e.seek(end);
      e.setBreakpoints([sym(name)]);
      const t = await timed(async () => {
        let r = null;
        for (let i = 0; i < times; i++) r = await e.continueBackward();
        return r!;
      });
      e.setBreakpoints([]);
      if (t.v.kind !== "breakpoint") throw new Error(`reverse-continue to ${name}: ${t.v.kind} at ${e.icount}`);
      const dist = end - e.icount;
      const label = times > 1 ? `${name} x${times}` : name;
      metrics.push({ key: `${key}.ms`, label: `rc to ${label} (${dist.toExponential(1)} back)`, value: t.ms, unit: "ms" });
      raw[key] = { dist, ms: t.ms };
      if (key === "printf3") farRate = dist / t.ms / 1e3;
      if (key === "memset" || key === "printf3") {
        // Forward replay of the same instructions: from the hit to the end, no breakpoints.
        const f = await timed(() => e.continueForward());
        if (f.v.kind !== "end" || e.icount !== end) throw new Error(`continue from the ${name} hit: ${f.v.kind} at ${e.icount}`);
        metrics.push({ key: `${key}.fwd_ms`, label: `  forward replay of the same ${dist.toExponential(1)}`, value: f.ms, unit: "ms" });
        (raw[key] as Record<string, number>).fwdMs = f.ms;
        if (key === "printf3") sameRate = dist / f.ms / 1e3;
      }
    }
    metrics.push(
      { key: "far.mips", label: "reverse-continue rate, rt_printf x3", value: farRate, unit: "MIPS" },
      { key: "replay.mips", label: "forward replay to the end (continue)", value: replayMips, unit: "MIPS" },
      { key: "reverse_over_replay", label: "reverse-continue / forward replay (speed)", value: farRate / replayMips, unit: "x", ratio: true },
      { key: "same.mips", label: "forward replay of the same instructions", value: sameRate, unit: "MIPS" },
      { key: "reverse_over_same", label: "reverse-continue / forward replay, same instructions (speed)", value: farRate / sameRate, unit: "x", ratio: true },
    );
    return {
      status: "ok", metrics, raw,
      notes: [`recording: ${span} instructions; engine: ${e.stats.restores} restores, ${e.stats.replayed} instructions replayed`,
        "goal (gdb issue): reverse-continue from the end to the last breakpoint hit <= 0.5 s"],
    };
  },
} satisfies BenchCase;
