/**
 * Re-record golden logs: `bun golden/record.ts NAME...` (never to make a test pass: only when
 * emulation changed guest behaviour legitimately; say why in the commit).
 * Each golden log is packed (images inside) and has NAME.json with the expected final icount,
 * final hashes and serial transcript.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildMachine, comparedSection, imagesOf, type MachineConfig } from "../lib/replay/session.ts";
import { runLive } from "../lib/machine/driver.ts";
import { parseScript } from "../lib/machine/script.ts";
import { Recorder } from "../lib/replay/recorder.ts";
import { LogWriter, MemorySink } from "../lib/replay/log/writer.ts";
import { GOLDEN, linuxGuestDir, type GoldenSpec } from "./golden.ts";
import { openLog, verifyLog } from "../lib/replay/replayer.ts";

const FIX = join(import.meta.dir, "..", "fixtures");
for (const name of process.argv.slice(2)) {
  const g = GOLDEN.find((x) => x.name === name);
  if (!g) throw new Error(`unknown golden log ${name}`);
  if (g.linux) { recordLinux(g); continue; }
  const cfg: MachineConfig = {
    kernel: { name: g.elf, data: new Uint8Array(readFileSync(join(FIX, g.elf))) },
    bios: null, modules: [], cmdline: g.cmdline, memBytes: 32 << 20, ips: 1e9, bootDate: g.bootDate,
  };
  const m = buildMachine(cfg);
  let out = "";
  m.onOutput = (ch, b) => { if (ch === "com1") out += Buffer.from(b).toString("latin1"); };
  const images = imagesOf(cfg);
  const sink = new MemorySink();
  const writer = new LogWriter(sink, {
    compared: { ...comparedSection(cfg, [g.elf, ...(g.script ? ["--input", g.script] : [])]), hashInterval: g.hashInterval },
    host: { rrxVersion: "golden" },
  }, { pack: images.map((x) => ({ role: x.info.role, name: x.info.name, data: x.data })) });
  const rec = new Recorder(m, writer, g.hashInterval);
  const script = g.script ? parseScript(readFileSync(join(FIX, g.script), "utf8")) : [];
  const end = await runLive(m, { script, observer: rec, maxInsns: 1e9 });
  m.flushOutput();
  rec.finish(end.kind, end.kind === "exit" ? end.status : 0);
  writeFileSync(join(import.meta.dir, `${name}.rrx`), sink.bytes());
  const trailer = rec.hasher.record();
  writeFileSync(join(import.meta.dir, `${name}.json`), JSON.stringify({
    name, formatVersion: 1, finalIcount: m.cpu.icount, end, hashes: trailer, serial: out,
  }, null, 2) + "\n");
  console.log(`${name}: ${m.cpu.icount} instructions, ${sink.bytes().length} bytes`);
}

/** A Linux golden log: recorded with `rrx run` (not packed), its expectations from a verify. */
function recordLinux(g: GoldenSpec): void {
  const dir = linuxGuestDir(), log = join(import.meta.dir, `${g.name}.rrx`);
  const date = new Date(g.bootDate * 1000).toISOString().replace(".000Z", "Z");
  const r = Bun.spawnSync([process.execPath, join(import.meta.dir, "..", "cmd", "rrx.ts"), "run", join(dir, "vmlinuz"), "--initrd", join(dir, "initramfs.cpio.gz"),
    ...g.linux!.args, "--rtc", date, "--no-realtime", "--input", join(FIX, g.script!), "--serial", "none", "--record", log, "--force",
    "--hash-interval", String(g.hashInterval)], { stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) throw new Error(`${g.name}: rrx run exited ${r.exitCode}`);
  const opened = openLog(log, { searchDirs: [dir] });
  let out = "";
  const v = verifyLog(opened, (ch, b) => { if (ch === "com1") out += Buffer.from(b).toString("latin1"); });
  v.machine!.flushOutput();
  if (!v.ok) throw new Error(`${g.name}: ${v.mismatch!.text}`);
  writeFileSync(join(import.meta.dir, `${g.name}.json`), JSON.stringify({
    name: g.name, formatVersion: 3, finalIcount: v.icount, end: v.end, hashes: opened.log.trailer!.hashes, serial: out,
  }, null, 2) + "\n");
  console.log(`${g.name}: ${v.icount} instructions`);
}
