/**
 * Block cache against the pure single-step reference (cpu.singleStep = true: every block is one
 * instruction) on the cpu-bound fixture. Each mode runs in its own process, boots the fixture
 * in that mode, runs past the banner (whose printing is a polled-UART loop, not compute; this
 * doubles as the JIT warm-up), then times the next N instructions. The CPU state at the end
 * must agree.
 */
import type { BenchCase } from "../lib/types.ts";
import { fixtureConfig } from "../lib/rrx.ts";
import { buildMachine } from "../../lib/replay/session.ts";
import { runLive } from "../../lib/machine/driver.ts";
import { Snapshot } from "../../lib/replay/checkpoint.ts";
import { hashBytes } from "../../lib/replay/hash.ts";

/** icount just after cpu-bound has printed its "rounds:" line: the compute loop starts here. */
const START = 5_200_000;

interface Run { mips: number; seconds: number; blocks: number; icount: number; cpu: string }

export default {
  name: "blockcache-cpu-bound",
  title: "block cache vs single-step, cpu-bound fixture",
  order: 20,
  subs: {
    async run(a: { singleStep: boolean; n: number }): Promise<Run> {
      const m = buildMachine(fixtureConfig("cpu-bound"));
      m.cpu.singleStep = a.singleStep;
      m.cpu.flushBlocks();
      await runLive(m, { maxInsns: START });
      const t0 = performance.now();
      await runLive(m, { maxInsns: START + a.n });
      const seconds = (performance.now() - t0) / 1000;
      return { mips: (m.cpu.icount - START) / seconds / 1e6, seconds, blocks: m.cpu.blocksBuilt, icount: m.cpu.icount, cpu: hashBytes(Snapshot.cpuBytes(m)) };
    },
  },
  async run(ctx) {
    const n = ctx.scale(3_000_000, 8_000_000, 25_000_000);
    const reps = ctx.scale(1, 2, 3);
    const blks: Run[] = [], sss: Run[] = [];
    for (let i = 0; i < reps; i++) {
      blks.push(await ctx.sub<Run>("run", { singleStep: false, n }));
      ctx.log(`block cache: ${blks[i]!.mips.toFixed(1)} MIPS (${n} instructions from icount ${START})`);
      sss.push(await ctx.sub<Run>("run", { singleStep: true, n }));
      ctx.log(`single-step: ${sss[i]!.mips.toFixed(1)} MIPS`);
    }
    const blk = best(blks), ss = best(sss);
    if (blk.icount !== ss.icount || blk.cpu !== ss.cpu) {
      throw new Error(`block cache and single-step disagree at icount ${blk.icount}/${ss.icount}`);
    }
    return {
      status: "ok",
      metrics: [
        { key: "instructions", label: "instructions timed (each mode)", value: n, unit: "" },
        { key: "block.mips", label: "block cache", value: blk.mips, unit: "MIPS", note: `${blk.blocks} blocks built in all` },
        { key: "single.mips", label: "single-step (cpu.singleStep = true)", value: ss.mips, unit: "MIPS", note: `${ss.blocks} one-instruction blocks` },
        { key: "speedup", label: "block cache / single-step (speed)", value: blk.mips / ss.mips, unit: "x", ratio: true },
      ],
      notes: [
        `each mode in its own process, timed from icount ${START} (after the banner) for ${n} instructions;`,
        `final CPU state compared; best of ${reps} alternating run(s) per mode`,
      ],
      raw: { block: blks, single: sss },
    };
  },
} satisfies BenchCase;

function best(rs: Run[]): Run {
  return rs.reduce((a, b) => (b.mips > a.mips ? b : a));
}
