/**
 * PLACEHOLDER for the reverse-debugging team: reverse-continue.
 *
 * Intended measurement: from the end of a cpu-bound recording (or icount T), reverse-continue to
 * a breakpoint (or watchpoint) hit D instructions earlier, for a few distances D (10^4, 10^6,
 * 10^8): wall time, and the equivalent rate D / time in MIPS so it can be put next to forward
 * replay MIPS (the cpu-bound case's replay.mips, available as ctx.metric("cpu-bound",
 * "replay.mips") because this case runs after it).
 *
 * To fill in: replace `run` with the measurement and return status "ok"; keep the metric keys.
 */
import { pending, type BenchCase } from "../lib/types.ts";

export default {
  name: "reverse-continue",
  title: "reverse-continue to a breakpoint",
  order: 61,
  run: () => pending("to be filled in by the reverse-debugging team (see the comment in bench/cases/reverse-continue.ts)", [
    { key: "d1e4.ms", label: "reverse-continue, breakpoint 10^4 insns back", unit: "ms" },
    { key: "d1e6.ms", label: "reverse-continue, breakpoint 10^6 insns back", unit: "ms" },
    { key: "d1e8.s", label: "reverse-continue, breakpoint 10^8 insns back", unit: "s" },
    { key: "d1e8.mips", label: "reverse-continue rate over 10^8 insns", unit: "MIPS" },
    { key: "reverse_over_replay", label: "reverse-continue / forward replay (speed)", unit: "x", ratio: true },
  ]),
} satisfies BenchCase;
