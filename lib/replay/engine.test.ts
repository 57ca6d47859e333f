/**
 * The reverse engine and the checkpoint store against a real recording (test/gdb/kernel/dbg.elf:
 * PIT and serial interrupts, logged serial input, a global counter written by bump()).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openLog, type OpenedLog } from "./replayer.ts";
import { engineFromLog, type ReplayEngine } from "./engine.ts";
import { buildMachine, MachineHasher } from "./session.ts";
import { runReplay } from "../machine/driver.ts";
import type { HashRecord } from "./hash.ts";
import { CheckpointStore } from "./checkpoints.ts";
import { DBG_ELF, elfSymbols, recordDbg, RUNS } from "../../test/gdb/record.ts";
import { freshHash, sameHash } from "../../test/support/replay-check.ts";

let dir = "";
let opened: OpenedLog;
const sym = elfSymbols(new Uint8Array(readFileSync(DBG_ELF)));
const BUMP = sym.get("bump")!, COUNTER = sym.get("counter")!;
/** The interesting part of the recording: boot, the rounds from ~18K, the serial input at ~19.6K. */
const SPAN = 40_000;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rrx-engine-test-"));
  opened = openLog(recordDbg(dir));
});
afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

const fresh = (n: number) => freshHash(opened, n);
const same = sameHash;

/** Property: seeks to random icounts in the span land exactly there, in the state a fresh replay to that icount has. */
async function seeksMatchFresh(e: ReplayEngine, h: MachineHasher, numRuns: number): Promise<void> {
  await fc.assert(fc.asyncProperty(fc.array(fc.integer({ min: 0, max: SPAN }), { minLength: 1, maxLength: 4 }), async (targets) => {
    for (const t of targets) {
      const r = await e.seek(t);
      expect(r.kind).not.toBe("interrupted");
      expect(e.icount).toBe(t);
      if (!same(h.record(), fresh(t))) return false;
    }
    return true;
  }), { numRuns });
}

function counterOf(e: ReplayEngine): number {
  const p = e.m.cpu.debugXlate(COUNTER);
  return new DataView(e.m.ram.buffer, e.m.ram.byteOffset).getUint32(p, true);
}

describe("ReplayEngine", () => {
  test("the log has input events inside the span", () => {
    expect(opened.events.some((e) => e.ev.kind === "serial" && e.icount < SPAN)).toBe(true);
  });

  test("seek to random icounts equals a fresh replay to that icount (MachineHasher)", async () => {
    const e = engineFromLog(opened, { sparseInterval: 4096, stepGap: 64 });
    const h = new MachineHasher(e.m);
    await seeksMatchFresh(e, h, Math.max(3, Math.min(RUNS, 25)));
  }, 120_000);

  test("seek with breakpoints set (passed, not disarmed) equals a fresh replay; they stay armed", async () => {
    // Breakpoints on bump() (more hits in the span than a seek passes before it takes them out)
    // and on an interrupt entry point (stops right after a delivery: not canonical states).
    const e = engineFromLog(opened, { sparseInterval: 4096, stepGap: 64 });
    await e.seek(1000);
    let entry = -1;
    for (let i = 0; i < 20_000 && entry < 0; i++) {
      const at = e.icount;
      await e.stepForward();
      if (e.icount === at) entry = e.linearPc();
    }
    expect(entry).toBeGreaterThan(0);
    e.setBreakpoints([BUMP, entry]);
    const h = new MachineHasher(e.m);
    await seeksMatchFresh(e, h, Math.max(3, Math.min(RUNS, 15)));
    await e.seek(0);
    const r = await e.continueForward();
    expect(r.kind).toBe("breakpoint");
  }, 120_000);

  test("reverse-step k then forward k gives the same state", async () => {
    const e = engineFromLog(opened, { sparseInterval: 8192 });
    const h = new MachineHasher(e.m);
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1000, max: SPAN }), fc.integer({ min: 1, max: 300 }), async (start, k) => {
      await e.seek(start);
      const before = h.record();
      for (let i = 0; i < k; i++) expect((await e.stepBack()).kind).toBe("step");
      expect(e.icount).toBe(start - k);
      if (!same(h.record(), fresh(start - k))) return false;
      // A step that takes an interrupt stops at the handler's first instruction with nothing
      // retired, so step until k instructions have retired.
      for (let i = 0; e.icount < start && i < 2 * k + 8; i++) expect((await e.stepForward()).kind).toBe("step");
      return e.icount === start && same(h.record(), before);
    }), { numRuns: Math.max(3, Math.min(RUNS, 20)) });
  }, 120_000);

  test("a step that takes an interrupt stops at the handler's first instruction; reverse-step goes back before the delivery", async () => {
    const e = engineFromLog(opened);
    await e.seek(1000);
    let found = false;
    for (let i = 0; i < 20_000 && !found; i++) {
      const at = e.icount, eip = e.m.cpu.eip;
      expect((await e.stepForward()).kind).toBe("step");
      if (e.icount !== at) continue;
      // Nothing retired: an interrupt was delivered and EIP is at its handler.
      found = true;
      expect(e.m.cpu.eip).not.toBe(eip);
      const inHandler = e.m.cpu.eip;
      expect((await e.stepBack()).kind).toBe("step");
      expect(e.icount).toBe(at);
      expect(e.m.cpu.eip).toBe(eip);
      expect(same(new MachineHasher(e.m).record(), fresh(at))).toBe(true);
      // Forward again: the same delivery, then the handler's first instruction retires.
      expect((await e.stepForward()).kind).toBe("step");
      expect(e.icount).toBe(at);
      expect(e.m.cpu.eip).toBe(inHandler);
      expect((await e.stepForward()).kind).toBe("step");
      expect(e.icount).toBe(at + 1);
    }
    expect(found).toBe(true);
  }, 120_000);

  test("boundaries: begin and end, neither ends anything", async () => {
    const e = engineFromLog(opened);
    expect((await e.stepBack()).kind).toBe("begin");
    expect((await e.continueBackward()).kind).toBe("begin");
    expect(e.icount).toBe(0);
    expect((await e.continueForward()).kind).toBe("end");
    expect(e.icount).toBe(e.end);
    expect((await e.stepForward()).kind).toBe("end");
    expect((await e.stepBack()).kind).toBe("step");
    expect(e.icount).toBe(e.end - 1);
    expect(same(new MachineHasher(e.m).record(), fresh(e.end - 1))).toBe(true);
    expect((await e.seek(0)).kind).toBe("begin");
  }, 60_000);

  test("breakpoints forward and reverse-continue to the previous hit", async () => {
    const e = engineFromLog(opened);
    e.setBreakpoints([BUMP]);
    const hits: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await e.continueForward();
      expect(r).toEqual({ kind: "breakpoint", addr: BUMP });
      expect(e.linearPc()).toBe(BUMP);
      hits.push(e.icount);
    }
    for (let i = 3; i >= 0; i--) {
      const r = await e.continueBackward();
      expect(r).toEqual({ kind: "breakpoint", addr: BUMP });
      expect(e.icount).toBe(hits[i]!);
    }
    expect((await e.continueBackward()).kind).toBe("begin");
  }, 60_000);

  test("reverse watchpoint stops at the writing instruction with the old value", async () => {
    const e = engineFromLog(opened);
    await e.seek(25_000);
    const now = counterOf(e);
    expect(now).toBeGreaterThan(0);
    e.setWatchpoints([{ type: 2, addr: COUNTER, len: 4 }]);
    const r = await e.continueBackward();
    expect(r.kind).toBe("watch");
    const at = e.icount;
    const old = counterOf(e);
    // executing the instruction again re-does the write, and it is the last write before 25000
    const f = await e.stepForward();
    expect(f.kind).toBe("watch");
    expect(e.icount).toBe(at + 1);
    expect(counterOf(e)).toBe(now);
    // and nothing writes it again before 25000
    expect((await e.continueForward()).kind).toBe("watch");
    expect(e.icount).toBeGreaterThan(25_000);
    await e.seek(at + 1);
    e.setWatchpoints([]);
    expect(same(new MachineHasher(e.m).record(), fresh(at + 1))).toBe(true);
    // reverse-step over the write reports the watchpoint too
    e.setWatchpoints([{ type: 2, addr: COUNTER, len: 4 }]);
    expect((await e.stepBack()).kind).toBe("watch");
    expect(counterOf(e)).toBe(old);
  }, 60_000);

  test("an aborted signal interrupts continue in both directions", async () => {
    const e = engineFromLog(opened);
    const ac = new AbortController();
    ac.abort();
    expect((await e.continueForward(ac.signal)).kind).toBe("interrupted");
    await e.seek(30_000);
    e.setBreakpoints([0xdead]);
    expect((await e.continueBackward(ac.signal)).kind).toBe("interrupted");
  });

  test("goLive: no reverse, runs on without the log", async () => {
    const e = engineFromLog(opened);
    await e.seek(5000);
    e.goLive();
    expect(e.stepBack()).rejects.toThrow();
    const r = await e.continueForward();
    expect(r.kind).toBe("exited");
  }, 60_000);
});

describe("CheckpointStore", () => {
  test("restoring any checkpoint, in any order, gives the state hash it was taken with; thinning keeps that", async () => {
    const m = buildMachine(opened.cfg);
    const store = new CheckpointStore(m, { minGap: 1 });
    const h = new MachineHasher(m);
    const taken: { c: ReturnType<CheckpointStore["take"]>; hash: HashRecord }[] = [];
    for (let t = 0; t <= SPAN; t += 2500) {
      runReplay(m, opened.events, { until: t });
      taken.push({ c: store.take(0), hash: h.record() });
    }
    await fc.assert(fc.property(fc.array(fc.nat(taken.length - 1), { minLength: 1, maxLength: 8 }), (order) => {
      for (const i of order) {
        const x = taken[i]!;
        if (!store.checkpoints.includes(x.c)) continue;
        store.restore(x.c);
        if (!same(h.record(), x.hash)) return false;
      }
      return true;
    }), { numRuns: Math.max(3, Math.min(RUNS, 30)) });
    store.thin(SPAN);
    const kept = taken.filter((x) => store.checkpoints.includes(x.c));
    expect(kept.length).toBeLessThan(taken.length);
    for (const x of kept.reverse()) {
      store.restore(x.c);
      expect(same(h.record(), x.hash)).toBe(true);
    }
    // zero pages take no space: far less than guest RAM is stored
    expect(store.stats().pageBytes).toBeLessThan(m.ram.length / 8);
  }, 60_000);

  test("a tight budget thins down to the pinned checkpoints and stays correct", () => {
    const m = buildMachine(opened.cfg);
    const store = new CheckpointStore(m, { memBudget: 1, minGap: 1 });
    const h = new MachineHasher(m);
    runReplay(m, opened.events, { until: 10 });
    const first = store.take(0), firstHash = h.record();
    for (let t = 1000; t <= 20000; t += 1000) {
      runReplay(m, opened.events, { until: t });
      store.take(0);
      store.thin(t);
    }
    expect(store.checkpoints.length).toBeLessThanOrEqual(3);
    store.restore(first);
    expect(same(h.record(), firstHash)).toBe(true);
  });
});
