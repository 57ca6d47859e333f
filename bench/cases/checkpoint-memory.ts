/**
 * Checkpoint memory of the reverse engine, against guest RAM and against full snapshots.
 *
 * Baseline: a full Snapshot (lib/replay/checkpoint.ts: the whole RAM copied plus the device
 * and CPU state) of cpu-bound after the banner: bytes, take and restore time.
 *
 * Store: the cpu-bound recording of the preset (bench/lib/reverse.ts) replayed to the end with
 * `continue` under the store's default policy, then a session's worth of reverse commands: goto
 * 10^3, 10^6, 10^9 back from the end (clamped to the start) with 100 reverse steps at each, and
 * reverse-continue from the end to the last rt_printf. The store's bytes (page data + states +
 * bookkeeping, what the budget counts) and its allocated slab (the process's real footprint:
 * chunks are recycled, never freed) are sampled after every command; the peak is reported
 * against the 32 MiB of guest RAM (goal: <= 2x).
 */
import type { BenchCase } from "../lib/types.ts";
import { fixtureConfig, median } from "../lib/rrx.ts";
import { engineAtEnd, sym } from "../lib/reverse.ts";
import { buildMachine } from "../../lib/replay/session.ts";
import { runLive } from "../../lib/machine/driver.ts";
import { Snapshot } from "../../lib/replay/checkpoint.ts";

export default {
  name: "checkpoint-memory",
  title: "checkpoint memory: store vs guest RAM and full snapshots",
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
    const fullBytes = snap!.ram.length + snap!.state.length;
    const ramBytes = m.ram.length;

    const { e } = await engineAtEnd(ctx);
    const span = e.end - e.begin;
    const afterForward = e.store.stats();
    let peakUsed = afterForward.usedBytes, peakAlloc = afterForward.allocatedBytes, peakCount = afterForward.count;
    const sample = () => {
      const s = e.store.stats();
      peakUsed = Math.max(peakUsed, s.usedBytes);
      peakAlloc = Math.max(peakAlloc, s.allocatedBytes);
      peakCount = Math.max(peakCount, s.count);
    };
    for (const d of [1e3, 1e6, 1e9]) {
      await e.seek(e.end - Math.min(d, span - 1000));
      sample();
      for (let i = 0; i < 100; i++) await e.stepBack();
      sample();
    }
    await e.seek(e.end);
    e.setBreakpoints([sym("rt_printf")]);
    await e.continueBackward();
    e.setBreakpoints([]);
    sample();
    const st = e.store.stats();
    return {
      status: "ok",
      metrics: [
        { key: "full.bytes", label: "full snapshot (32 MiB guest)", value: fullBytes, unit: "B", note: `state ${snap!.state.length} B` },
        { key: "full.take.ms", label: "full snapshot take, median", value: median(takes), unit: "ms" },
        { key: "full.restore.ms", label: "full snapshot restore, median", value: median(restores), unit: "ms" },
        { key: "forward.count", label: "checkpoints after replay to the end", value: afterForward.count, unit: "" },
        { key: "forward.bytes", label: "store after replay to the end", value: afterForward.usedBytes, unit: "B" },
        { key: "store.count", label: "checkpoints after the reverse commands", value: st.count, unit: "", note: `peak ${peakCount}` },
        { key: "store.bytes", label: "store after the reverse commands", value: st.usedBytes, unit: "B" },
        { key: "store.perCheckpoint", label: "bytes per checkpoint", value: Math.round(st.usedBytes / st.count), unit: "B" },
        { key: "store.perGinsn", label: "store bytes per 10^9 instructions", value: Math.round(st.usedBytes / span * 1e9), unit: "B" },
        { key: "peak.bytes", label: "peak store (budgeted bytes)", value: peakUsed, unit: "B" },
        { key: "peak.alloc", label: "peak slab allocated + states", value: peakAlloc + st.stateBytes, unit: "B" },
        { key: "peak_over_ram", label: "peak checkpoint memory / guest RAM", value: (Math.max(peakUsed, peakAlloc + st.stateBytes)) / ramBytes, unit: "x", ratio: true },
        { key: "store_over_full", label: "per-checkpoint bytes / full snapshot", value: st.usedBytes / st.count / fullBytes, unit: "x", ratio: true },
      ],
      notes: [`recording: ${span} instructions; budget ${(st.budget / 2 ** 20).toFixed(0)} MiB; goal (gdb issue): peak <= 2x guest RAM`],
    };
  },
} satisfies BenchCase;
