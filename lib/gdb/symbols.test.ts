/**
 * System.map -> symbol ELF. The map is binutils' `nm -n` listing of a fixture kernel (the format
 * Linux installs as System.map); the oracles are nm itself, readelf and gdb reading the file.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { parseSystemMap, symbolElf, SymbolMapError } from "./symbols.ts";

const FIX = join(import.meta.dir, "..", "..", "fixtures");
const have = (tool: string) => Bun.spawnSync(["sh", "-c", `command -v ${tool}`], { stdout: "pipe" }).exitCode === 0;
const HAVE_NM = have("nm") && have("readelf");
const HAVE_GDB = have("gdb");

function nmMap(elf: string): string {
  return Bun.spawnSync(["nm", "-n", join(FIX, elf)], { stdout: "pipe" }).stdout.toString();
}

function writeSymbols(map: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "rrx-sym-")), "syms.elf");
  writeFileSync(path, symbolElf(parseSystemMap(map)));
  return path;
}

describe.skipIf(!HAVE_NM)("System.map to a symbol file", () => {
  test("readelf lists every symbol of the map at its address, text as functions", () => {
    const map = nmMap("interrupts.elf");
    const path = writeSymbols(map);
    const listed = new Map<string, { value: number; type: string; ndx: string; bind: string }>();
    for (const line of Bun.spawnSync(["readelf", "-sW", path], { stdout: "pipe" }).stdout.toString().split("\n")) {
      const f = line.trim().split(/\s+/);
      if (f.length === 8 && /^\d+:$/.test(f[0]!)) listed.set(f[7]!, { value: parseInt(f[1]!, 16), type: f[3]!, bind: f[4]!, ndx: f[6]! });
    }
    let n = 0;
    for (const line of map.trim().split("\n")) {
      const [addr, type, name] = line.trim().split(/\s+/) as [string, string, string];
      const s = listed.get(name);
      expect(s, name).toBeDefined();
      expect(s!.value).toBe(parseInt(addr, 16));
      if (type === "T" || type === "t") expect(s!.type).toBe("FUNC");
      if ("bBdDrR".includes(type)) expect(s!.type).toBe("OBJECT");
      if (type === "a" || type === "A") expect(s!.ndx).toBe("ABS");
      expect(s!.bind).toBe(type === type.toUpperCase() ? "GLOBAL" : "LOCAL");
      n++;
    }
    expect(n).toBeGreaterThan(100);
  });

  test.skipIf(!HAVE_GDB)("gdb finds functions and data by name and names addresses inside functions", () => {
    const map = nmMap("interrupts.elf");
    const addrOf = (name: string) => parseInt(map.split("\n").find((l) => l.endsWith(` ${name}`))!.split(" ")[0]!, 16);
    const path = writeSymbols(map);
    const r = Bun.spawnSync(["gdb", "-nx", "-batch", path,
      "-ex", "info address kmain", "-ex", "info address ticks", "-ex", `info symbol ${addrOf("rt_printf") + 3}`, "-ex", "info symbol _start"], { stdout: "pipe", stderr: "pipe" });
    const out = r.stdout.toString();
    expect(out).toContain(`Symbol "kmain" is at 0x${addrOf("kmain").toString(16)}`);
    expect(out).toContain(`Symbol "ticks" is at 0x${addrOf("ticks").toString(16)}`);
    expect(out).toContain("rt_printf + 3 in section .text");
    expect(out).toContain("_start in section .text");
  });
});

describe("bad maps", () => {
  test("a line that is not 'ADDRESS TYPE NAME' is named with its line number", () => {
    expect(() => parseSystemMap("c1000000 T startup_32\nnot a map line\n", "System.map")).toThrow(new SymbolMapError("System.map:2: expected 'ADDRESS TYPE NAME', got 'not a map line'"));
  });
  test("a 64-bit kernel's map is refused", () => {
    expect(() => parseSystemMap("ffffffff81000000 T _text\n")).toThrow(/does not fit 32 bits/);
  });
  test("an empty file is refused", () => {
    expect(() => parseSystemMap("\n\n")).toThrow(/no symbols/);
  });
});
