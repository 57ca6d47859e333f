/**
 * Block cache against the pure single-step reference (cpu.singleStep = true: every block is one
 * instruction) on the cpu-bound fixture. Each mode runs in its own process, boots the fixture
 * in that mode and runs past the banner (whose printing is a polled-UART loop, not compute;
 * this doubles as the JIT warm-up). Then it is timed for at least MIN instructions and about
 * the preset's time budget, whichever is longer. The CPU state after exactly MIN instructions
 * must agree between the modes.
 */
import type { BenchCase } from "../lib/types.ts";
import { fixtureConfig } from "../lib/rrx.ts";
import { buildMachine } from "../../lib/replay/session.ts";
import { runLive } from "../../lib/machine/driver.ts";
import { Snapshot } from "../../lib/replay/checkpoint.ts";
import { hashBytes } from "../../lib/replay/hash.ts";

/** icount just after cpu-bound has printed its "rounds:" line: the compute loop starts here. */
const START = 5_200_000;
const MIN = 2_000_000;
const SLICE = 1_000_000;

interface Run { mips: number; seconds: number; insns: number; blocks: number; cpu: string }

export default {
  name: "blockcache-cpu-bound",
  title: "block cache vs single-step, cpu-bound fixture",
  order: 20,
  subs: {
    async run(a: { singleStep: boolean; budgetS: number }): Promise<Run> {
      const m = buildMachine(fixtureConfig("cpu-bound", "rounds=100"));
      m.cpu.singleStep = a.singleStep;
      m.cpu.flushBlocks();
      await runLive(m, { maxInsns: START });
      const t0 = performance.now();
      await runLive(m, { maxInsns: START + MIN });
      const cpu = hashBytes(Snapshot.cpuBytes(m));
      while ((performance.now() - t0) / 1000 < a.budgetS) {
        const r = await runLive(m, { maxInsns: m.cpu.icount + SLICE });
        if (r.kind !== "limit") break;
      }
      const seconds = (performance.now() - t0) / 1000;
      const insns = m.cpu.icount - START;
      return { mips: insns / seconds / 1e6, seconds, insns, blocks: m.cpu.blocksBuilt, cpu };
    },
  },
  async run(ctx) {
    const budgetS = ctx.scale(1, 2.5, 6);
    const reps = ctx.scale(1, 2, 3);
    const blks: Run[] = [], sss: Run[] = [];
    for (let i = 0; i < reps; i++) {
      blks.push(await ctx.sub<Run>("run", { singleStep: false, budgetS }));
      ctx.log(`block cache: ${blks[i]!.mips.toFixed(1)} MIPS (${blks[i]!.insns} instructions from icount ${START})`);
      sss.push(await ctx.sub<Run>("run", { singleStep: true, budgetS }));
      ctx.log(`single-step: ${sss[i]!.mips.toFixed(1)} MIPS (${sss[i]!.insns} instructions)`);
    }
    if (blks.concat(sss).some((r) => r.cpu !== blks[0]!.cpu)) {
      throw new Error(`block cache and single-step disagree at icount ${START + MIN}`);
    }
    const blk = best(blks), ss = best(sss);
    return {
      status: "ok",
      metrics: [
        { key: "block.mips", label: "block cache", value: blk.mips, unit: "MIPS", note: `${blk.insns.toLocaleString("en-US")} insns, ${blk.blocks} blocks built` },
        { key: "single.mips", label: "single-step (cpu.singleStep = true)", value: ss.mips, unit: "MIPS", note: `${ss.insns.toLocaleString("en-US")} insns, ${ss.blocks} one-insn blocks` },
        { key: "speedup", label: "block cache / single-step (speed)", value: blk.mips / ss.mips, unit: "x", ratio: true },
      ],
      notes: [
        `each mode in its own process, timed from icount ${START} (after the banner) for ~${budgetS} s;`,
        `CPU state compared at icount ${START + MIN}; best of ${reps} alternating run(s) per mode`,
      ],
      raw: { block: blks, single: sss },
    };
  },
} satisfies BenchCase;

function best(rs: Run[]): Run {
  return rs.reduce((a, b) => (b.mips > a.mips ? b : a));
}
