/**
 * Every fixture boots, prints its expected serial transcript (recorded under QEMU, see
 * fixtures/fixtures.json) and exits with the expected status; its final screen matches the
 * committed one. The fixtures that exercise CPU modes other tests don't reach (task switches,
 * virtual-8086 mode) are also recorded and replayed with `rrx replay --verify`.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, existsSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { buildMachine } from "../lib/replay/session.ts";
import { runLive } from "../lib/machine/driver.ts";
import { FIX, manifest, runFixture, RTC } from "./helpers.ts";

describe("fixtures", () => {
  for (const f of manifest.fixtures) {
    if (f.channel || !f.elf.endsWith(".elf") || f.name === "cpu-bound-rounds3") continue;
    test(`${f.name}: serial transcript, exit status and screen`, async () => {
      const { m, out, end } = await runFixture(f.name, f.elf, f.cmdline, f.memBytes);
      expect(end).toEqual({ kind: "exit", status: f.exitStatus });
      const expected = readFileSync(join(FIX, f.serial), "latin1").split("\n");
      const got = out.split("\n");
      expect(got.length).toBe(expected.length);
      for (let i = 0; i < expected.length; i++) {
        const rx = f.serialRegex?.find((r) => r.line === i);
        if (rx) expect(got[i]).toMatch(new RegExp(rx.regex));
        else expect(got[i]).toBe(expected[i]);
      }
      const screenFile = join(FIX, `${f.name}.screen.txt`);
      if (existsSync(screenFile)) expect(m.display!.screenText()).toBe(readFileSync(screenFile, "utf8"));
    }, 120_000);
  }
});

describe("record and replay --verify", () => {
  const RRX = join(import.meta.dir, "..", "cmd", "rrx.ts");
  const dir = mkdtempSync(join(tmpdir(), "rrx-fix-"));
  for (const name of ["tasks", "vm86", "x87", "fpu"]) {
    test(`${name}: every state hash of the recording verifies`, () => {
      const f = manifest.fixtures.find((x) => x.name === name)!;
      const log = join(dir, `${name}.rrx`);
      const rec = Bun.spawnSync([process.execPath, RRX, "run", join(FIX, f.elf), "--record", log, "--hash-interval", "65536", "--serial", "none"], { stderr: "pipe" });
      expect(rec.exitCode).toBe(f.exitStatus);
      const rep = Bun.spawnSync([process.execPath, RRX, "replay", log, "--verify", "--serial", "none"], { stderr: "pipe" });
      // At least one hash record (2^16 is the shortest interval; tasks and vm86 run about 2^17
      // instructions) and the final state in the trailer.
      expect(rep.stderr.toString()).toMatch(/verified: [1-9]\d* hash records/);
      expect(rep.exitCode).toBe(0);
    }, 120_000);
  }
});

describe("rom", () => {
  test("real-mode ROM at the reset vector runs to its debug-exit", async () => {
    const rom = new Uint8Array(readFileSync(join(FIX, "rom.bin")));
    const m = buildMachine({ kernel: null, bios: { name: "rom.bin", data: rom }, modules: [], cmdline: "", memBytes: 32 << 20, ips: 1e9, bootDate: RTC });
    let e9 = "";
    m.onOutput = (ch, b) => { if (ch === "e9") e9 += Buffer.from(b).toString("latin1"); };
    const end = await runLive(m, { maxInsns: 1e7 });
    const exp = JSON.parse(readFileSync(join(FIX, "fixtures.json"), "utf8")).fixtures.find((x: { name: string }) => x.name === "rom");
    expect(e9).toBe(readFileSync(join(FIX, exp.serial), "latin1"));
    expect(end).toEqual({ kind: "exit", status: exp.exitStatus });
  });
});
