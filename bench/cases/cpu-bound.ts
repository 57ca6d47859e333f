/**
 * cpu-bound fixture: plain run, record, replay and replay --verify, each from machine
 * construction to the guest's exit, each in its own process after a short JIT warm-up.
 *
 * Rounds: the preset's (1 / 5 / 20), lowered when a probe run says one run would take longer
 * than the preset's budget per run, so the suite's length follows the core's speed.
 */
import { join } from "node:path";
import { statSync } from "node:fs";
import type { BenchCase } from "../lib/types.ts";
import { fixtureConfig, runPlain, runRecord, runReplayLog, runVerifyLog, warmup, type OutputLine, type Timed } from "../lib/rrx.ts";

/** Instructions per round, roughly (the exact count is read off the guest's output). */
const ROUND = 75e6;

type PlainOut = Timed & { perRound: number | null; lines: OutputLine[]; spinSkipped: number };

export default {
  name: "cpu-bound",
  title: "cpu-bound fixture: plain / record / replay MIPS",
  order: 10,
  subs: {
    async plain(a: { append: string; noSpinSkip?: boolean }): Promise<PlainOut> {
      await warmup();
      const lines: OutputLine[] = [];
      const { m, ...r } = await runPlain(fixtureConfig("cpu-bound", a.append), { lines, tweak: (mm) => { mm.cpu.noSpinSkip = !!a.noSpinSkip; } });
      const spinSkipped = m.cpu.spinSkipped;
      // Instructions per round from the guest's own output: from the end of its "rounds:" line
      // to the end of its "round 0:" line (one round of work plus its report line).
      const hdr = lines.find((l) => l.text.startsWith("rounds:"));
      const r0 = lines.find((l) => l.text.startsWith("round 0:"));
      return { ...r, perRound: hdr && r0 ? r0.end - hdr.end : null, lines, spinSkipped };
    },
    async record(a: { append: string; path: string }): Promise<Timed & { bytes: number }> {
      await warmup();
      const { m: _m, recorder: _r, ...r } = await runRecord(fixtureConfig("cpu-bound", a.append), { path: a.path });
      return { ...r, bytes: statSync(a.path).size };
    },
    async replay(a: { path: string }): Promise<Timed> {
      await warmup();
      return runReplayLog(a.path);
    },
    async verify(a: { path: string }): Promise<Timed & { hashesChecked: number }> {
      await warmup();
      return runVerifyLog(a.path);
    },
  },
  async run(ctx) {
    // Probe: how fast is the core today?
    await warmup();
    const probe = await runPlain(fixtureConfig("cpu-bound"), { maxInsns: 20_000_000 });
    const budget = ctx.scale(4, 10, 25);
    const presetRounds = ctx.scale(1, 5, 20);
    const rounds = Math.max(1, Math.min(presetRounds, Math.floor((budget * probe.mips * 1e6) / ROUND)));
    const verify = ctx.preset !== "quick";
    const append = `rounds=${rounds}`;
    ctx.log(`probe ${probe.mips.toFixed(1)} MIPS: ${append} (preset ${presetRounds}, ${budget} s budget per run)`);

    const plain = await ctx.sub<PlainOut>("plain", { append });
    ctx.log(`plain: ${plain.icount} insns in ${plain.seconds.toFixed(2)} s = ${plain.mips.toFixed(1)} MIPS (${plain.end})`);
    const noSkip = await ctx.sub<PlainOut>("plain", { append, noSpinSkip: true });
    ctx.log(`plain, no spin skipping: ${noSkip.mips.toFixed(1)} MIPS; with it ${(100 * plain.spinSkipped / plain.icount).toFixed(1)}% of the instructions were skipped polling passes`);
    const path = join(ctx.tmp, "cpu-bound.rrx");
    const rec = await ctx.sub<Timed & { bytes: number }>("record", { append, path });
    ctx.log(`record: ${rec.mips.toFixed(1)} MIPS, log ${rec.bytes} bytes`);
    const rep = await ctx.sub<Timed>("replay", { path });
    ctx.log(`replay: ${rep.mips.toFixed(1)} MIPS`);
    const ver = verify ? await ctx.sub<Timed & { hashesChecked: number }>("verify", { path }) : null;
    if (ver) ctx.log(`replay --verify: ${ver.mips.toFixed(1)} MIPS, ${ver.hashesChecked} hashes`);

    for (const [what, n] of [["plain without spin skipping", noSkip.icount], ["record", rec.icount], ["replay", rep.icount], ["verify", ver?.icount ?? plain.icount]] as const) {
      if (n !== plain.icount) throw new Error(`${what} ran ${n} instructions, plain ${plain.icount}`);
    }
    if (plain.end !== "exit 1") throw new Error(`cpu-bound ended with ${plain.end}`);
    return {
      status: "ok",
      metrics: [
        { key: "instructions", label: `instructions (${append})`, value: plain.icount, unit: "" },
        { key: "perRound", label: "instructions per round (from guest output)", value: plain.perRound, unit: "" },
        { key: "plain.mips", label: "plain run", value: plain.mips, unit: "MIPS", note: `${plain.seconds.toFixed(2)} s` },
        { key: "plainNoSkip.mips", label: "plain run, polling passes not skipped", value: noSkip.mips, unit: "MIPS", note: `${noSkip.seconds.toFixed(2)} s` },
        { key: "spinSkipped.share", label: "instructions retired as skipped polling passes", value: (100 * plain.spinSkipped) / plain.icount, unit: "%" },
        { key: "record.mips", label: "record (--record, file sink)", value: rec.mips, unit: "MIPS", note: `${rec.seconds.toFixed(2)} s` },
        { key: "replay.mips", label: "replay", value: rep.mips, unit: "MIPS", note: `${rep.seconds.toFixed(2)} s` },
        { key: "verify.mips", label: "replay --verify", value: ver?.mips ?? null, unit: "MIPS", note: ver ? `${ver.seconds.toFixed(2)} s, ${ver.hashesChecked} hashes` : "not in --quick" },
        { key: "log.bytes", label: "log size", value: rec.bytes, unit: "B" },
        { key: "plain_over_noskip", label: "plain / plain without spin skipping (speed)", value: plain.mips / noSkip.mips, unit: "x", ratio: true },
        { key: "record_over_plain", label: "record / plain (speed)", value: rec.mips / plain.mips, unit: "x", ratio: true },
        { key: "replay_over_record", label: "replay / record (speed)", value: rep.mips / rec.mips, unit: "x", ratio: true },
        { key: "replay_over_plain", label: "replay / plain (speed)", value: rep.mips / plain.mips, unit: "x", ratio: true },
        { key: "verify_over_replay", label: "replay --verify / replay (speed)", value: ver ? ver.mips / rep.mips : null, unit: "x", ratio: true },
      ],
      notes: [
        "each run in its own process after a 3M-instruction warm-up; times include machine construction",
        "(and log parsing for replay); hash records every 2^24 instructions",
      ],
      raw: { rounds, presetRounds, probeMips: probe.mips, plain, plainNoSkip: noSkip, record: rec, replay: rep, verify: ver },
    };
  },
} satisfies BenchCase;
