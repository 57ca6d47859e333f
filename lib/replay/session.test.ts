import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { comparedSection, configFromCompared, type MachineConfig } from "./session.ts";
import { checkCompared } from "./log/format.ts";

const kernel = { name: "hello.elf", data: new Uint8Array(readFileSync(join(import.meta.dir, "../../fixtures/hello.elf"))) };
const cfg: MachineConfig = { kernel, bios: null, modules: [], cmdline: "hello.elf", memBytes: 32 << 20, ips: 1e9, bootDate: 1e9 };
const find = () => kernel.data;

describe("the log header names the board and ISA", () => {
  test("a recording's compared section says pc / i386, and reads back", () => {
    const c = comparedSection(cfg, []);
    expect([c.board, c.isa]).toEqual(["pc", "i386"]);
    expect(checkCompared(JSON.parse(JSON.stringify(c)))).toBeNull();
    expect(configFromCompared(c, find).memBytes).toBe(32 << 20);
  });

  test("a header without them (every log before them) is a PC log", () => {
    const { board: _b, isa: _i, ...old } = comparedSection(cfg, []);
    expect(checkCompared(old)).toBeNull();
    expect(configFromCompared(old, find).kernel!.name).toBe("hello.elf");
  });

  test("another board or ISA is refused with a one-line error", () => {
    const c = comparedSection(cfg, []);
    expect(() => configFromCompared({ ...c, board: "virt", isa: "arm" }, find)).toThrow(/^the log needs a "virt" board with a "arm" CPU; this rrx has: pc \(i386\)$/);
    expect(() => configFromCompared({ ...c, isa: "x86_64" }, find)).toThrow(/"x86_64" CPU/);
    expect(checkCompared({ ...c, board: 7 })).toBe("compared section: board must be a string");
  });
});
