/**
 * Every fixture boots, prints its expected serial transcript (recorded under QEMU, see
 * fixtures/fixtures.json) and exits with the expected status; its final screen matches the
 * committed one.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
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
      if (existsSync(screenFile)) expect(m.vga.screenText()).toBe(readFileSync(screenFile, "utf8"));
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
