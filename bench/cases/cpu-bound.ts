/**
 * cpu-bound fixture: plain run, record, replay and replay --verify, each from machine
 * construction to the guest's exit, in this one process after a short JIT warm-up.
 */
import { join } from "node:path";
import { statSync } from "node:fs";
import type { BenchCase } from "../lib/types.ts";
import { fixtureConfig, runPlain, runRecord, runReplayLog, runVerifyLog, warmup, type OutputLine } from "../lib/rrx.ts";

export default {
  name: "cpu-bound",
  title: "cpu-bound fixture: plain / record / replay MIPS",
  order: 10,
  async run(ctx) {
    const rounds = ctx.scale(1, 1, 3);
    const verify = ctx.preset !== "quick";
    const append = `rounds=${rounds}`;
    const cfg = () => fixtureConfig("cpu-bound", append);
    await warmup();

    ctx.log(`plain, ${append}`);
    const lines: OutputLine[] = [];
    const plain = await runPlain(cfg(), { lines });
    ctx.log(`plain: ${plain.icount} insns in ${plain.seconds.toFixed(2)} s = ${plain.mips.toFixed(1)} MIPS (${plain.end})`);
    // Instructions per round from the guest's own output: from the end of the "rounds:" line to
    // the end of the "round 0:" line (one round of work plus its report line).
    const hdr = lines.find((l) => l.text.startsWith("rounds:"));
    const r0 = lines.find((l) => l.text.startsWith("round 0:"));
    const perRound = hdr && r0 ? r0.end - hdr.end : null;

    const log = join(ctx.tmp, "cpu-bound.rrx");
    ctx.log("record");
    const rec = await runRecord(cfg(), { path: log });
    ctx.log(`record: ${rec.mips.toFixed(1)} MIPS, log ${statSync(log).size} bytes`);
    ctx.log("replay");
    const rep = runReplayLog(log);
    ctx.log(`replay: ${rep.mips.toFixed(1)} MIPS`);
    const ver = verify ? runVerifyLog(log) : null;
    if (ver) ctx.log(`replay --verify: ${ver.mips.toFixed(1)} MIPS, ${ver.hashesChecked} hashes`);

    for (const [what, n] of [["record", rec.icount], ["replay", rep.icount], ["verify", ver?.icount ?? plain.icount]] as const) {
      if (n !== plain.icount) throw new Error(`${what} ran ${n} instructions, plain ${plain.icount}`);
    }
    return {
      status: "ok",
      metrics: [
        { key: "instructions", label: `instructions (${append})`, value: plain.icount, unit: "" },
        { key: "perRound", label: "instructions per round (from guest output)", value: perRound, unit: "" },
        { key: "plain.mips", label: "plain run", value: plain.mips, unit: "MIPS" },
        { key: "record.mips", label: "record (--record, file sink)", value: rec.mips, unit: "MIPS" },
        { key: "replay.mips", label: "replay", value: rep.mips, unit: "MIPS" },
        { key: "verify.mips", label: "replay --verify", value: ver?.mips ?? null, unit: "MIPS", note: ver ? `${ver.hashesChecked} hashes` : "not in --quick" },
        { key: "plain.s", label: "plain run wall time", value: plain.seconds, unit: "s" },
        { key: "log.bytes", label: "log size", value: statSync(log).size, unit: "B" },
        { key: "record_over_plain", label: "record / plain (speed)", value: rec.mips / plain.mips, unit: "x", ratio: true },
        { key: "replay_over_record", label: "replay / record (speed)", value: rep.mips / rec.mips, unit: "x", ratio: true },
        { key: "replay_over_plain", label: "replay / plain (speed)", value: rep.mips / plain.mips, unit: "x", ratio: true },
        { key: "verify_over_replay", label: "replay --verify / replay (speed)", value: ver ? ver.mips / rep.mips : null, unit: "x", ratio: true },
      ],
      notes: [`times include machine construction (and log parsing for replay); hash records every 2^24 instructions`],
      raw: { rounds, plain: strip(plain), record: strip(rec), replay: rep, verify: ver, lines },
    };
  },
} satisfies BenchCase;

function strip<T extends { m?: unknown; recorder?: unknown }>(x: T): Omit<T, "m" | "recorder"> {
  const { m: _m, recorder: _r, ...rest } = x;
  return rest;
}
