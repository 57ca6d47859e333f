/**
 * reverse-next, as gdb drives it (bench/lib/reverse.ts's cpu-bound recording), near the end:
 *   loop body   gdb's reverse-next over source lines that stay in one range sends one `bs`
 *               (ReplayEngine.stepBack) per instruction: a burst of N reverse steps (N = 1000,
 *               a loop body of that many instructions, e.g. `for (k..8)` inside crc32_init or a
 *               few iterations of the xorshift loop), timed as a whole, starting 10^6 back from
 *               the end after a `goto` (untimed)
 *   over a call standing after `call memset` in the sieve of the last round: one `bs` lands
 *               on memset's `ret`; gdb then sets a breakpoint at memset's entry, sends `bc`,
 *               removes it and sends one more `bs` (to the call). memset clears 1 MiB.
 */
import type { BenchCase } from "../lib/types.ts";
import { engineAtEnd, sym, timed } from "../lib/reverse.ts";

export default {
  name: "reverse-next",
  title: "reverse-next: a burst of reverse steps, and over a call",
  order: 63,
  async run(ctx) {
    const N = 1000;
    const { e } = await engineAtEnd(ctx);
    const end = e.end;
    await e.seek(end - 1_000_000);
    const burst = await timed(async () => {
      for (let i = 0; i < N; i++) {
        const r = await e.stepBack();
        if (r.kind !== "step") throw new Error(`reverse-stepi: ${r.kind}`);
      }
    });
    // Get to just after the last memset call returned.
    const memset = sym("memset");
    await e.seek(end);
    e.setBreakpoints([memset]);
    let r = await e.continueBackward();
    if (r.kind !== "breakpoint") throw new Error(`reverse-continue to memset: ${r.kind}`);
    const m = e.m, sp = m.cpu.debugXlate(m.cpu.regs[4]! >>> 0);
    const ret = new DataView(m.ram.buffer, m.ram.byteOffset).getUint32(sp, true);
    e.setBreakpoints([ret]);
    r = await e.continueForward();
    if (r.kind !== "breakpoint") throw new Error(`continue to memset's return: ${r.kind}`);
    e.setBreakpoints([]);
    const from = e.icount;
    const over = await timed(async () => {
      let s = await e.stepBack(); // into memset's ret
      e.setBreakpoints([memset]);
      s = await e.continueBackward();
      e.setBreakpoints([]);
      if (s.kind !== "breakpoint") throw new Error(`reverse-continue to memset's entry: ${s.kind}`);
      s = await e.stepBack(); // the call
      return s;
    });
    const back = from - e.icount;
    return {
      status: "ok",
      metrics: [
        { key: "burst1000.ms", label: `${N} reverse steps in a row (loop body)`, value: burst.ms, unit: "ms" },
        { key: "burst.per.ms", label: "per reverse step in the burst", value: burst.ms / N, unit: "ms", digits: 3 },
        { key: "call.ms", label: `reverse-next over memset (${back.toExponential(1)} insns)`, value: over.ms, unit: "ms" },
      ],
      notes: ["goal (gdb issue): reverse-next over a loop body <= 0.5 s"],
      raw: { burstMs: burst.ms, callMs: over.ms, callInsns: back },
    };
  },
} satisfies BenchCase;
