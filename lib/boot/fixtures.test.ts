import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { findMultibootHeader, loadMultiboot } from "./multiboot.ts";

const FIXTURES = join(import.meta.dir, "..", "..", "fixtures");

interface FixtureEntry {
  name: string;
  elf?: string;
  rom?: string;
  append?: string;
  cmdline?: string;
  memBytes: number;
  serial: string;
  exitStatus: number;
  needsInput: boolean;
  serialRegex?: { line: number; regex: string }[];
}

const manifest = JSON.parse(readFileSync(join(FIXTURES, "fixtures.json"), "utf8")) as { fixtures: FixtureEntry[] };

describe("fixtures.json", () => {
  test("lists the expected fixtures", () => {
    const names = manifest.fixtures.map((f) => f.name);
    for (const n of ["hello", "cpu-bound", "interrupts", "interrupts-noinput", "paging", "smc", "rom"]) {
      expect(names).toContain(n);
    }
  });

  for (const f of manifest.fixtures) {
    test(`${f.name}: files exist and the image boots`, () => {
      expect(existsSync(join(FIXTURES, f.serial))).toBe(true);
      expect(f.exitStatus & 1).toBe(1);
      const transcript = readFileSync(join(FIXTURES, f.serial), "utf8").split("\n");
      for (const r of f.serialRegex ?? []) expect(transcript[r.line]).toMatch(new RegExp(r.regex));
      if (f.elf) {
        const img = new Uint8Array(readFileSync(join(FIXTURES, f.elf)));
        expect(findMultibootHeader(img)).not.toBeNull();
        expect(f.cmdline!.startsWith(f.elf)).toBe(true);
        const ram = new Uint8Array(f.memBytes);
        const r = loadMultiboot(ram, img, { cmdline: f.cmdline!, modules: [], memBytes: f.memBytes });
        expect(r.entry).toBeGreaterThanOrEqual(0x100000);
      } else {
        const rom = new Uint8Array(readFileSync(join(FIXTURES, f.rom!)));
        expect(rom.length).toBe(65536);
        expect(rom[0xfff0]).toBe(0xea); // jmp far at the reset vector
      }
    });
  }
});
