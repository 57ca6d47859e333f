import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildMachine, comparedSection, configFromCompared, type MachineConfig } from "./session.ts";
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

describe("the log header names the CPU model", () => {
  test("a new recording names the default model, and a replay builds that model", () => {
    const c = comparedSection(cfg, []);
    expect(c.cpu).toBe("i686");
    const m = buildMachine(configFromCompared(c, find));
    expect(m.cpu.model.name).toBe("i686");
  });

  test("a log without one was recorded with the legacy model, and replays with it", () => {
    const { cpu: _c, ...old } = comparedSection(cfg, []);
    const back = configFromCompared(old, find);
    expect(back.cpuModel).toBe("rrx-i586");
    const m = buildMachine(back);
    expect(m.cpu.model.name).toBe("rrx-i586");
    // The legacy model answers CPUID as every log before models was recorded: family 5 model 4
    // stepping 3, no FPU, and EDX at reset holds the same signature.
    expect(m.cpu.model.signature).toBe(0x543);
    expect(m.cpu.model.features & 1).toBe(0);
  });

  test("an unknown model is refused with a one-line error", () => {
    const c = comparedSection(cfg, []);
    expect(() => configFromCompared({ ...c, cpu: "pentium9" }, find)).toThrow(/^unknown CPU model "pentium9"; this rrx has: i686, rrx-i586$/);
    expect(checkCompared({ ...c, cpu: 5 })).toBe("compared section: cpu must be a string");
  });
});
