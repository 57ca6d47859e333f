/**
 * Host input through the same path the CLI uses: a HostQueue that receives bytes (typed or
 * piped) and quit requests (Ctrl-A x, signals) at arbitrary moments of the live loop. Whatever
 * the moments, and in both pacing modes, the recording must verify: every hash record, the
 * trailer (final state) and the serial transcript.
 *
 * The guest is the interrupts fixture: it halts with its timer masked while it waits for serial
 * bytes, so virtual time is carried forward at one icount (the case the live loop must log).
 *
 * RRX_PROPERTY_RUNS=N runs N cases (default: modest, for CI).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { HostQueue, runLive } from "../../lib/machine/driver.ts";
import { buildMachine, comparedSection, type MachineConfig } from "../../lib/replay/session.ts";
import { Recorder } from "../../lib/replay/recorder.ts";
import { LogWriter, MemorySink } from "../../lib/replay/log/writer.ts";
import { openLog, verifyLog } from "../../lib/replay/replayer.ts";
import { FIX, RTC } from "../helpers.ts";

const RUNS = Number(process.env.RRX_PROPERTY_RUNS ?? 12);
const HASH_INTERVAL = 1 << 20;

interface Plan {
  realtime: boolean;
  /** At the n-th pass of the live loop, push these bytes (one pass may get several). */
  pushes: { pass: number; text: string }[];
  /** Quit at this pass (undefined: type 'q' at the end and let the guest exit). */
  quitAt: number | undefined;
}

const planArb: fc.Arbitrary<Plan> = fc.record({
  realtime: fc.boolean(),
  pushes: fc.array(fc.record({ pass: fc.integer({ min: 0, max: 60 }), text: fc.stringMatching(/^[a-p]{1,6}$/) }), { maxLength: 5 }),
  quitAt: fc.option(fc.integer({ min: 0, max: 80 }), { nil: undefined }),
});

function config(): MachineConfig {
  return {
    kernel: { name: "interrupts.elf", data: new Uint8Array(readFileSync(join(FIX, "interrupts.elf"))) },
    bios: null, modules: [], cmdline: "interrupts.elf", memBytes: 32 << 20, ips: 1e9, bootDate: RTC,
  };
}

async function recordPlan(plan: Plan, dir: string): Promise<{ path: string; serial: string; end: string }> {
  const cfg = config();
  const m = buildMachine(cfg);
  let serial = "";
  m.onOutput = (ch, b) => { if (ch === "com1") serial += Buffer.from(b).toString("latin1"); };
  const sink = new MemorySink();
  const w = new LogWriter(sink, { compared: { ...comparedSection(cfg, []), hashInterval: HASH_INTERVAL }, host: { startTime: 1 } }, {});
  const rec = new Recorder(m, w, HASH_INTERVAL);
  const host = new HostQueue();
  const pushes = [...plan.pushes].sort((a, b) => a.pass - b.pass);
  const lastPass = Math.max(plan.quitAt ?? 0, ...pushes.map((p) => p.pass)) + 1;
  let pass = 0;
  const onSlice = () => {
    for (const p of pushes) if (p.pass === pass) for (const c of p.text) host.push({ kind: "serial", port: 0, byte: c.charCodeAt(0) });
    if (plan.quitAt !== undefined && pass === plan.quitAt) host.requestQuit();
    if (plan.quitAt === undefined && pass === lastPass) host.push({ kind: "serial", port: 0, byte: 0x71 });
    // A 'q' typed before the guest listens is lost: quit anyway, later.
    if (plan.quitAt === undefined && pass === lastPass + 100) host.requestQuit();
    pass++;
  };
  const end = await runLive(m, { host, realtime: plan.realtime, observer: rec, onSlice, maxInsns: 3e8 });
  m.flushOutput();
  rec.finish(end.kind, end.kind === "exit" ? end.status : 0);
  const path = join(dir, "h.rrx");
  writeFileSync(path, sink.bytes());
  return { path, serial, end: end.kind };
}

describe("host input through the HostQueue", () => {
  test("typed bytes and quit requests at any moment of the live loop: the recording verifies", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rrx-hostq-"));
    // Cases found before the fix: bytes typed while the guest waits (its timer masked, time
    // carried forward at one icount), and a quit while it waits.
    const examples: [Plan][] = [
      [{ realtime: false, pushes: [{ pass: 20, text: "hello" }], quitAt: undefined }],
      [{ realtime: false, pushes: [], quitAt: 30 }],
      [{ realtime: true, pushes: [{ pass: 5, text: "ab" }], quitAt: 40 }],
    ];
    await fc.assert(fc.asyncProperty(planArb, async (plan) => {
      const r = await recordPlan(plan, dir);
      const v = verifyLog(openLog(r.path, { searchDirs: [FIX] }));
      if (!v.ok) throw new Error(`end ${r.end}: divergence ${v.mismatch!.windowStart}..${v.mismatch!.windowEnd}: ${v.mismatch!.components.join(", ")}`);
      let replayed = "";
      const v2 = verifyLog(openLog(r.path, { searchDirs: [FIX] }), (ch, b) => { if (ch === "com1") replayed += Buffer.from(b).toString("latin1"); });
      v2.machine!.flushOutput();
      expect(v2.ok).toBe(true);
      expect(replayed).toBe(r.serial);
    }), { numRuns: RUNS, examples });
  }, Math.max(600_000, RUNS * 5_000)); // a live loop per case: the soak (2000 runs) needs more than CI
});
