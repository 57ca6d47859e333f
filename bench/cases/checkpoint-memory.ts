/**
 * Checkpoint memory. PLACEHOLDER for the reverse-debugging team's checkpoint store; meanwhile
 * it measures the baseline, a full Snapshot (lib/replay/checkpoint.ts: the whole RAM copied plus
 * the device and CPU state), on cpu-bound after the banner: bytes, take and restore time.
 *
 * Intended measurement once checkpoints are incremental: replay cpu-bound with the store's
 * default policy, then report the checkpoints kept, their total bytes (RAM pages + state),
 * bytes per checkpoint and per 10^9 instructions, and the ratio to full snapshots. Replace
 * the pending metrics with values, return status "ok", keep the keys.
 */
import type { BenchCase, Metric } from "../lib/types.ts";
import { fixtureConfig, median } from "../lib/rrx.ts";
import { buildMachine } from "../../lib/replay/session.ts";
import { runLive } from "../../lib/machine/driver.ts";
import { Snapshot } from "../../lib/replay/checkpoint.ts";

export default {
  name: "checkpoint-memory",
  title: "checkpoint memory (baseline: full snapshots)",
  order: 62,
  async run(ctx) {
    const m = buildMachine(fixtureConfig("cpu-bound"));
    await runLive(m, { maxInsns: 6_000_000 });
    const takes: number[] = [], restores: number[] = [];
    let snap: Snapshot | null = null;
    for (let i = 0; i < ctx.scale(3, 5, 9); i++) {
      let t0 = performance.now();
      snap = Snapshot.take(m);
      takes.push(performance.now() - t0);
      t0 = performance.now();
      snap.restore(m);
      restores.push(performance.now() - t0);
    }
    const bytes = snap!.ram.length + snap!.state.length;
    const todo = (key: string, label: string, unit: string, ratio = false): Metric => ({ key, label, unit, value: null, ratio });
    return {
      status: "pending",
      metrics: [
        { key: "full.bytes", label: "full snapshot (32 MiB guest)", value: bytes, unit: "B", note: `state ${snap!.state.length} B` },
        { key: "full.take.ms", label: "full snapshot take, median", value: median(takes), unit: "ms" },
        { key: "full.restore.ms", label: "full snapshot restore, median", value: median(restores), unit: "ms" },
        todo("store.count", "checkpoints kept over a cpu-bound replay", ""),
        todo("store.bytes", "checkpoint store, total", "B"),
        todo("store.perCheckpoint", "bytes per checkpoint", "B"),
        todo("store.perGinsn", "store bytes per 10^9 instructions", "B"),
        todo("store_over_full", "per-checkpoint bytes / full snapshot", "x", true),
      ],
      notes: ["the store figures are for the reverse-debugging team to fill in (bench/cases/checkpoint-memory.ts)"],
    };
  },
} satisfies BenchCase;
