import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildMachine, type MachineConfig } from "../lib/replay/session.ts";
import { runLive } from "../lib/machine/driver.ts";
import { parseScript } from "../lib/machine/script.ts";

export const FIX = join(import.meta.dir, "..", "fixtures");
export const manifest = JSON.parse(readFileSync(join(FIX, "fixtures.json"), "utf8")) as {
  fixtures: { name: string; elf: string; append: string; cmdline: string; memBytes: number; serial: string; exitStatus: number; needsInput: boolean; serialRegex?: { line: number; regex: string }[]; channel?: string }[];
};

/** Input scripts for fixtures that need input (QEMU's recording waited for output instead). */
export const SCRIPTS: Record<string, string> = { interrupts: "input/interrupts.txt" };
export const RTC = Math.floor(Date.parse("2024-02-29T12:34:56Z") / 1000);

export async function runFixture(name: string, elf: string, cmdline: string, memBytes: number) {
  const cfg: MachineConfig = {
    kernel: { name: elf, data: new Uint8Array(readFileSync(join(FIX, elf))) },
    bios: null, modules: [], cmdline, memBytes, ips: 1e9, bootDate: RTC,
  };
  const m = buildMachine(cfg);
  let out = "";
  m.onOutput = (ch, b) => { if (ch === "com1") out += Buffer.from(b).toString("latin1"); };
  const script = SCRIPTS[name] ? parseScript(readFileSync(join(FIX, SCRIPTS[name]!), "utf8")) : [];
  const end = await runLive(m, { script, maxInsns: 1e10 }); // a cap only: fpu runs ~4.3 G instructions
  m.flushOutput();
  return { m, out, end };
}

