/**
 * Determinism properties over random guest workloads (guest.ts): random i386 code with
 * devices, interrupt handlers and scripted input at random virtual times.
 *
 *  1. record, then replay: every hash record, the trailer, the final state and the serial
 *     transcript are identical;
 *  2. block cache + translator (jitThreshold = 1) equals single-step execution at every stop
 *     point of the replay loop (and both equal the recording);
 *  3. a checkpoint restored into the same machine after running further, and into a fresh
 *     machine, then run N instructions, equals running straight to P + N;
 *  4. reverse-stepping k then forward k gives back the same state; reverse k equals a fresh
 *     replay to icount - k (ReplayEngine);
 *  5. replaying one log twice in one process (and again in the same machine from a start
 *     snapshot) gives identical results;
 *  6. two recordings of the same program and script have byte-identical event streams.
 *
 * RRX_PROPERTY_RUNS=N runs N cases per property (default: modest, for CI).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { runReplay } from "../../lib/machine/driver.ts";
import { MachineHasher } from "../../lib/replay/session.ts";
import { Snapshot } from "../../lib/replay/checkpoint.ts";
import { ReplayEngine } from "../../lib/replay/engine.ts";
import { diffHashes } from "../../lib/replay/hash.ts";
import { buildGuest, guestArb, newMachine, runs } from "./guest.ts";
import { expectEq, expectSameSlices, finalIcount, fullState, record, replay, replayUntil, withGuest } from "./harness.ts";

const T = 300_000;
/** Timing-dependent failures (host time leaking into a log) shrink slowly: report what was found before the test timeout. */
const SHRINK_LIMIT = { interruptAfterTimeLimit: 240_000 };

describe("determinism (random guests)", () => {
  test("1. record then replay: every hash point, the end state and the serial transcript are identical", async () => {
    await fc.assert(fc.asyncProperty(guestArb(), async (spec) => {
      const g = buildGuest(spec);
      return withGuest(g, async () => {
        const r = await record(g);
        const expected = new Map(r.log.hashes.map((h) => [h.icount, h.record]));
        let checked = 0;
        let hasher: MachineHasher | null = null;
        const rp = replay(g, r, {
          onHashPoint: (m, ic) => {
            hasher ??= new MachineHasher(m);
            const exp = expected.get(ic);
            if (!exp) return;
            const d = diffHashes(hasher.record(), exp);
            if (!d.equal) throw new Error(`hash point ${ic}: ${JSON.stringify(d.components)}`);
            checked++;
          },
        });
        expectEq(checked, r.log.hashes.length, "hash points checked vs recorded");
        expectEq(rp.m.cpu.icount, r.icount, "final icount");
        expectEq(rp.end.kind === "stopped" ? "limit" : rp.end.kind, r.end.kind, "end kind");
        if (r.end.kind === "exit") expectEq(rp.end, r.end, "exit");
        const h = new MachineHasher(rp.m).record();
        const d = diffHashes(h, r.log.trailer!.hashes!);
        if (!d.equal) throw new Error(`trailer hashes differ: ${JSON.stringify(d.components)}`);
        expectEq(fullState(rp.m), r.final, "final full state");
        expectEq(rp.serial, r.serial, "serial transcript");
      });
    }), { numRuns: runs(25), includeErrorInReport: true, ...SHRINK_LIMIT });
  }, T);

  test("2. block cache + translator (jitThreshold=1) equals single-step at every stop point", async () => {
    await fc.assert(fc.asyncProperty(guestArb(), async (spec) => {
      const g = buildGuest(spec);
      return withGuest(g, async () => {
        const r = await record(g);
        const jit = replay(g, r, { slices: true, tweak: (m) => { m.cpu.jitThreshold = 1; } });
        const step = replay(g, r, { slices: true, tweak: (m) => { m.cpu.singleStep = true; } });
        const interp = replay(g, r, { slices: true, tweak: (m) => { m.cpu.noJit = true; } });
        expectSameSlices(jit.slices, step.slices, "jitThreshold=1 vs singleStep");
        expectSameSlices(interp.slices, step.slices, "block interpreter (noJit) vs singleStep");
        expectEq(jit.serial, step.serial, "serial transcript");
        expectEq(fullState(step.m), r.final, "single-step final state vs recording");
      });
    }), { numRuns: runs(20), includeErrorInReport: true, ...SHRINK_LIMIT });
  }, T);

  test("3. checkpoint restored (same machine after running on, fresh machine) then N instructions = straight run", async () => {
    await fc.assert(fc.asyncProperty(guestArb(), fc.double({ min: 0, max: 1, noNaN: true }), fc.nat(), fc.nat({ max: 3000 }), fc.integer({ min: 1, max: 20_000 }), fc.integer({ min: 0, max: 20_000 }),
      async (spec, pf, pick, before, n0, further) => {
        const g = buildGuest(spec);
        return withGuest(g, async () => {
          const r = await record(g);
          const F = finalIcount(r);
          // Half the time the checkpoint falls shortly before a logged input event.
          const evs = r.events.filter((e) => e.icount <= F);
          const P = evs.length && pick % 2 === 0 ? Math.max(0, evs[(pick >> 1) % evs.length]!.icount - before - 1) : Math.floor(pf * F);
          const N = Math.min(n0, F - P);
          const after = r.events.filter((e) => e.icount > P);
          // Straight run to P + N.
          const direct = replay(g, r, { until: P + N });
          const want = fullState(direct.m);
          // Stop at P, snapshot, continue to P + N.
          const a = newMachine(g);
          runReplay(a, r.events, { until: P });
          const snap = Snapshot.take(a);
          runReplay(a, after, { until: P + N });
          expectEq(fullState(a), want, `stopped at ${P} then continued to ${P + N}`);
          // Run further, restore into the same machine, run N.
          runReplay(a, after, { until: Math.min(F, P + N + further) });
          snap.restore(a);
          runReplay(a, after, { until: P + N });
          expectEq(fullState(a), want, `restored at ${P} into the same machine, ran to ${P + N}`);
          // Restore into a fresh machine, run N.
          const b = newMachine(g);
          snap.restore(b);
          expectEq(b.cpu.icount, P, "icount after restore");
          runReplay(b, after, { until: P + N });
          expectEq(fullState(b), want, `restored at ${P} into a fresh machine, ran to ${P + N}`);
        });
      }), { numRuns: runs(20), includeErrorInReport: true, ...SHRINK_LIMIT });
  }, T);

  test("4. reverse k then forward k is the identity; reverse k equals a fresh replay to icount - k", async () => {
    await fc.assert(fc.asyncProperty(guestArb(), fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 40 }), fc.nat(), fc.nat({ max: 40 }),
      async (spec, xf, k0, pick, past) => {
        const g = buildGuest(spec);
        return withGuest(g, async () => {
          const r = await record(g);
          const F = finalIcount(r);
          // Half the time X is just past a logged input event, so the reverse steps cross it.
          const evs = r.events.filter((e) => e.icount > 0 && e.icount < F);
          const X = evs.length && pick % 2 === 0
            ? Math.min(F, evs[(pick >> 1) % evs.length]!.icount + Math.min(past, k0 - 1))
            : Math.max(1, Math.floor(xf * F));
          const k = Math.min(k0, X);
          const e = new ReplayEngine(newMachine(g), r.events, F, { sparseInterval: 2048, denseInterval: 1024, stepGap: 16 });
          await e.seek(X);
          expectEq(e.icount, X, "seek");
          const atX = fullState(e.m);
          expectEq(atX, fullState(replay(g, r, { until: X }).m), `seek(${X}) vs fresh replay`);
          for (let i = 0; i < k; i++) {
            const s = await e.stepBack();
            if (s.kind !== "step" && s.kind !== "begin") throw new Error(`stepBack ${i}: ${s.kind}`);
          }
          expectEq(e.icount, X - k, "icount after reverse steps");
          expectEq(fullState(e.m), fullState(replay(g, r, { until: X - k }).m), `reverse ${k} from ${X} vs fresh replay to ${X - k}`);
          // Forward k instructions. A step that takes an interrupt stops at the handler's first
          // instruction with nothing retired (gdb's view), so count retired instructions, not steps.
          for (let i = 0; e.icount < X; i++) {
            if (i > 2 * k + 8) throw new Error(`stepForward: ${i} steps without reaching ${X} (at ${e.icount})`);
            const s = await e.stepForward();
            if (s.kind !== "step" && !(s.kind === "end" && e.icount === X)) throw new Error(`stepForward ${i}: ${s.kind}`);
          }
          expectEq(e.icount, X, "icount after forward steps");
          expectEq(fullState(e.m), atX, `reverse ${k} then forward ${k} from ${X}`);
        });
      }), { numRuns: runs(20), includeErrorInReport: true, ...SHRINK_LIMIT });
  }, T);

  test("5. replaying one log twice in one process gives identical results (no hidden state)", async () => {
    await fc.assert(fc.asyncProperty(guestArb(), async (spec) => {
      const g = buildGuest(spec);
      return withGuest(g, async () => {
        const r = await record(g);
        const a = replay(g, r, { slices: true });
        const b = replay(g, r, { slices: true });
        expectSameSlices(a.slices, b.slices, "second replay in a fresh machine");
        expectEq(b.serial, a.serial, "serial transcript");
        expectEq(b.end, a.end, "end");
        // Again in the machine that already replayed it, from a snapshot of its start.
        const m = newMachine(g);
        const start = Snapshot.take(m);
        runReplay(m, r.events, { until: replayUntil(r), hashInterval: g.spec.hashInterval });
        const first = fullState(m);
        start.restore(m);
        const slices: [number, string][] = [];
        runReplay(m, r.events, { until: replayUntil(r), hashInterval: g.spec.hashInterval, onSlice: (mm) => { slices.push([mm.cpu.icount, fullState(mm)]); } });
        expectSameSlices(slices, a.slices, "replay again in the same machine after restoring its start");
        expectEq(fullState(m), first, "final state");
        expectEq(first, r.final, "final state vs recording");
      });
    }), { numRuns: runs(20), includeErrorInReport: true, ...SHRINK_LIMIT });
  }, T);

  test("6. two recordings of the same program and script: byte-identical after the header", async () => {
    await fc.assert(fc.asyncProperty(guestArb(), async (spec) => {
      const g = buildGuest(spec);
      return withGuest(g, async () => {
        const a = await record(g, { startTime: 1, hostname: "a" });
        const b = await record(g, { startTime: 2, hostname: "bbbb", cwd: "/elsewhere" });
        expectEq(a.log.comparedJson, b.log.comparedJson, "compared sections");
        expect(a.log.hostJson).not.toBe(b.log.hostJson);
        const ea = a.bytes.subarray(a.log.headerBytes), eb = b.bytes.subarray(b.log.headerBytes);
        if (Buffer.compare(ea, eb) !== 0) {
          let i = 0;
          while (i < ea.length && i < eb.length && ea[i] === eb[i]) i++;
          throw new Error(`event streams differ at byte ${i} after the header (${ea.length} vs ${eb.length} bytes)`);
        }
      });
    }), { numRuns: runs(20), includeErrorInReport: true, ...SHRINK_LIMIT });
  }, T);
});
