/**
 * Log bytes per 10^9 instructions of an idle guest with a 100 Hz timer: the interrupts fixture
 * with `noinput ticks=N` halts between PIT ticks. Timer wake-ups are deterministic deadline
 * skips and write nothing, so the log grows only by chunk framing (a chunk per 100 ms of host
 * time), hash records (every 2^24 executed instructions) and the trailer. With 1 instruction =
 * 1 ns (the default --ips), 10^9 instruction-equivalents are one virtual second.
 *
 * Two recordings: as fast as possible (virtual time runs ahead of the host), and, except in
 * --quick, paced to the host clock (--realtime), which is what a real idle recording does.
 */
import type { BenchCase } from "../lib/types.ts";
import { fixtureConfig, runRecord } from "../lib/rrx.ts";
import { CountingRecorder } from "../lib/counting-recorder.ts";

async function idleRecord(ticks: number, realtime: boolean) {
  let rec!: CountingRecorder;
  const r = await runRecord(fixtureConfig("interrupts", `noinput ticks=${ticks}`), {
    realtime,
    makeRecorder: (m, w, hi) => (rec = new CountingRecorder(m, w, hi)),
  });
  if (r.end !== "exit 1") throw new Error(`interrupts noinput ended with ${r.end}`);
  const vs = r.m.now() / 1e9;
  const variable = r.bytes - rec.headerBytes - rec.trailerBytes;
  return {
    vs, icount: r.icount, wall: r.seconds, total: r.bytes, header: rec.headerBytes, trailer: rec.trailerBytes,
    variable, perVs: variable / vs, events: rec.countOf("serial", "key", "mouse", "idle"), hashes: rec.countOf("hash"),
    tally: rec.tally,
  };
}

export default {
  name: "log-idle",
  title: "log bytes per 10^9 instructions, idle guest with a 100 Hz timer",
  order: 31,
  async run(ctx) {
    const ticks = ctx.scale(2000, 6000, 12000);
    ctx.log(`noinput ticks=${ticks} (${ticks / 100} virtual s), as fast as possible`);
    const fast = await idleRecord(ticks, false);
    const rtTicks = ctx.scale(0, 150, 300);
    let rt: Awaited<ReturnType<typeof idleRecord>> | null = null;
    if (rtTicks) {
      ctx.log(`noinput ticks=${rtTicks}, --realtime (${rtTicks / 100} s of host time)`);
      rt = await idleRecord(rtTicks, true);
    }
    return {
      status: "ok",
      metrics: [
        { key: "virtual.s", label: "virtual time recorded (fast)", value: fast.vs, unit: "s", note: `${fast.icount.toLocaleString("en-US")} instructions executed` },
        { key: "events", label: "events logged (input + idle skips)", value: fast.events, unit: "", note: `${fast.hashes} hash records` },
        { key: "perGinsn.fast", label: "log bytes per 10^9 insn-equiv. (fast)", value: fast.perVs, unit: "B", note: "less header and trailer" },
        { key: "perGinsn.realtime", label: "log bytes per 10^9 insn-equiv. (--realtime)", value: rt?.perVs ?? null, unit: "B", note: rt ? `${rt.vs.toFixed(2)} s recorded` : "not in --quick" },
        { key: "fixed.bytes", label: "fixed cost: header + trailer", value: fast.header + fast.trailer, unit: "B" },
      ],
      notes: [`executed ${(fast.icount / fast.vs / 1e6).toFixed(2)} M instructions per virtual second (the rest is halted)`],
      raw: { fast, realtime: rt },
    };
  },
} satisfies BenchCase;
