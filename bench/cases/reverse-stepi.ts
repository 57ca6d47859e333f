/**
 * PLACEHOLDER for the reverse-debugging team: reverse-stepi latency.
 *
 * Intended measurement: record cpu-bound (or load a recording), replay forward to some icount
 * T deep into the run (e.g. 50M), then time K successive reverse single steps (gdb `bs`), each
 * from "request" to "registers available", starting cold (no checkpoint near T) and warm (after
 * the first). Report the median and the worst step, and the first step separately (it pays for
 * restoring a checkpoint and replaying forward to T-1).
 *
 * To fill in: replace `run` with the measurement and return status "ok"; keep the metric keys
 * so results.json stays comparable across commits. Use ctx.sub() for anything that must not
 * share a JIT with another timed run, ctx.scale() for sizes.
 */
import { pending, type BenchCase } from "../lib/types.ts";

export default {
  name: "reverse-stepi",
  title: "reverse-stepi latency",
  order: 60,
  run: () => pending("to be filled in by the reverse-debugging team (see the comment in bench/cases/reverse-stepi.ts)", [
    { key: "first.ms", label: "first reverse-stepi at icount T (cold)", unit: "ms" },
    { key: "median.ms", label: "reverse-stepi, median of K after the first", unit: "ms" },
    { key: "max.ms", label: "reverse-stepi, worst of K", unit: "ms" },
    { key: "stepi.ms", label: "forward stepi, median (for scale)", unit: "ms" },
    { key: "reverse_over_forward", label: "reverse-stepi / forward stepi (latency)", unit: "x", ratio: true },
  ]),
} satisfies BenchCase;
