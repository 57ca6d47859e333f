/**
 * `rrx replay --verify` when the replay does not match: it names the hash window and the
 * component, from the last good point it kept (a RollingSnapshot, which copies only the pages
 * written since its previous update). And the rolling snapshot equals a full one.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildMachine, comparedSection, type MachineConfig } from "./session.ts";
import { runLive } from "../machine/driver.ts";
import { Recorder } from "./recorder.ts";
import { FileSink, LogWriter } from "./log/writer.ts";
import { openLog, verifyLog } from "./replayer.ts";
import { RollingSnapshot, Snapshot } from "./checkpoint.ts";
import { StateWriter } from "../machine/snapshot.ts";

const FIX = join(import.meta.dir, "..", "..", "fixtures");
const cfg = (append: string): MachineConfig => ({
  kernel: { name: join(FIX, "cpu-bound.elf"), data: new Uint8Array(readFileSync(join(FIX, "cpu-bound.elf"))) },
  bios: null, modules: [], cmdline: `cpu-bound.elf ${append}`, memBytes: 32 << 20, ips: 1e9, bootDate: 1_700_000_000,
});

function stateBytes(s: Snapshot): Uint8Array { return s.state; }

describe("verify", () => {
  test("a rolling snapshot equals a full snapshot at every update, and restores to the same machine", () => {
    const m = buildMachine(cfg("rounds=1"));
    m.onOutput = () => {};
    const roll = new RollingSnapshot(m);
    // Uneven steps through the xorshift fill, the CRC passes and the sieve (RAM rewritten a lot).
    for (const step of [1, 999, 1_500_000, 3_000_001, 7_777_777, 20_000_000]) {
      m.runUntil(m.cpu.icount + step);
      roll.update();
      const full = Snapshot.take(m);
      const r = roll.snapshot();
      expect(r.icount).toBe(full.icount);
      expect(Buffer.compare(r.ram, full.ram)).toBe(0);
      expect(Buffer.compare(stateBytes(r), stateBytes(full))).toBe(0);
    }
    const other = buildMachine(cfg("rounds=1"));
    roll.snapshot().restore(other);
    const a = new StateWriter(4096), b = new StateWriter(4096);
    m.saveState(a); other.saveState(b);
    expect(Buffer.compare(a.finish(), b.finish())).toBe(0);
    expect(Buffer.compare(other.ram, m.ram)).toBe(0);
  });

  test("a recording whose machine was disturbed: verify names the window and the component", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rrx-verify-"));
    const path = join(dir, "bad.rrx");
    const c = cfg("rounds=1");
    const m = buildMachine(c);
    m.onOutput = () => {};
    const hi = 1 << 18;
    const sink = new FileSink(path);
    const writer = new LogWriter(sink, { compared: { ...comparedSection(c, [c.kernel!.name]), hashInterval: hi }, host: { startTime: 1 } });
    const rec = new Recorder(m, writer, hi);
    // Something outside the log changes guest RAM once, past icount 2M: what a leak of host
    // state into the guest looks like to the replay.
    let flippedAt = -1;
    const end = await runLive(m, {
      maxInsns: 6_000_000, observer: rec,
      onSlice: (mm) => { if (flippedAt < 0 && mm.cpu.icount >= 2_000_000) { flippedAt = mm.cpu.icount; mm.ram[0x7f0000] ^= 0x5a; mm.mem.markDirty(0x7f0); } },
    });
    rec.finish(end.kind, 0);
    sink.close();
    expect(flippedAt).toBeGreaterThanOrEqual(2_000_000);

    const r = verifyLog(openLog(path));
    expect(r.ok).toBe(false);
    const mm = r.mismatch!;
    expect(mm.components).toEqual(["ram"]);
    // The first hash record after the change fails; the one before it was the last good point.
    expect(mm.windowEnd).toBe((Math.floor(flippedAt / hi) + 1) * hi);
    expect(mm.windowStart).toBe(mm.windowEnd - hi);
    expect(mm.text).toMatch(/ram/);
    // The replay itself is deterministic: block cache and single step agree over the window.
    expect(mm.firstInsn).toBeUndefined();
  }, 120_000);
});
