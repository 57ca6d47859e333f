/**
 * Debian's i386 Linux (fixtures/linux/fetch.sh) booting to the busybox shell, with the shell
 * session of test/linux (fixtures/linux/shell.txt, ending in `poweroff -f`):
 * - rrx record (in its own process): instructions to the prompt and to the end, MIPS to the
 *   prompt and over the whole run, the log's size per virtual second;
 * - rrx replay of that log (its own process): MIPS to the prompt and over the whole run;
 * - the peak memory (max RSS) of `rrx gdb` on the log with a stock gdb that runs to the end,
 *   steps back one instruction and reverse-continues to the start;
 * - QEMU (when installed), the same kernel, initrd and command line on an ISA PC
 *   (`-M isapc -cpu pentium2,-apic,-mmx`) with `-icount shift=0,rr=record` and `rr=replay`, to
 *   the prompt: its own instruction count (`info replay`) over its wall time, start-up included.
 *   The rrx / QEMU ratios compare the same span, from the start to the prompt (the session after
 *   it has no QEMU counterpart).
 * Skipped when the guest has not been fetched.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { homedir } from "node:os";
import type { BenchCase, Metric } from "../lib/types.ts";
import { BOOT_DATE, loadScript, runRecord, warmup, type Timed } from "../lib/rrx.ts";
import { buildMachine, type MachineConfig } from "../../lib/replay/session.ts";
import { openLog, replayToEnd } from "../../lib/replay/replayer.ts";
import type { Machine } from "../../lib/machine/machine.ts";

const DIR = process.env.RRX_LINUX_DIR ?? join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "rrx/linux");
const KERNEL = join(DIR, "vmlinuz"), INITRD = join(DIR, "initramfs.cpio.gz");
const APPEND = "console=ttyS0,115200 cryptomgr.notests noisapnp";
const PROMPT = "/ # ";

function linuxConfig(): MachineConfig {
  return {
    kernel: { name: KERNEL, data: new Uint8Array(readFileSync(KERNEL)) },
    initrd: { name: INITRD, data: new Uint8Array(readFileSync(INITRD)) },
    bios: null, modules: [], cmdline: APPEND, memBytes: 64 << 20, ips: 1e9, bootDate: BOOT_DATE,
  };
}

/** Where the shell prompt first appeared on the serial port: icount and seconds from the start. */
interface ToPrompt { promptIcount: number; promptSeconds: number }
interface RecordOut extends Timed, ToPrompt { bytes: number }
interface ReplayOut extends Timed, ToPrompt {}

/** Watch the machine's first serial port for the shell prompt; the object fills in when it shows (t0: the run's start). */
function watchPrompt(m: Machine, t0: number): ToPrompt {
  const out: ToPrompt = { promptIcount: -1, promptSeconds: -1 };
  let text = "";
  m.onOutput = (ch, bytes) => {
    if (out.promptIcount >= 0 || ch !== "com1") return;
    text = (text + Buffer.from(bytes).toString("latin1")).slice(-8);
    if (text.includes(PROMPT)) { out.promptIcount = m.cpu.icount; out.promptSeconds = (performance.now() - t0) / 1000; }
  };
  return out;
}

/**
 * QEMU to the shell prompt: wall seconds and its instruction count there. The serial port
 * writes to a file: a pipe that the reader drains late makes QEMU's writes partial, which it
 * records, and the replay then stops with "Missing character write event".
 */
async function qemuToPrompt(bin: string, mode: "record" | "replay", rr: string, sock: string, serialOut: string, recorded?: number): Promise<{ seconds: number; icount: number }> {
  const t0 = performance.now();
  writeFileSync(serialOut, "");
  const p = Bun.spawn([bin, "-M", "isapc", "-cpu", "pentium2,-apic,-mmx", "-m", "64", "-display", "none", "-serial", `file:${serialOut}`,
    "-no-reboot", "-kernel", KERNEL, "-initrd", INITRD, "-append", APPEND, "-rtc", "base=2026-01-01T00:00:00",
    "-icount", `shift=0,rr=${mode},rrfile=${rr}`, "-monitor", `unix:${sock},server,nowait`], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const killer = setTimeout(() => p.kill("SIGKILL"), 300_000);
  let seconds = -1, exited = false;
  void p.exited.then(() => { exited = true; });
  while (!exited && (performance.now() - t0) < 300_000) {
    if (readFileSync(serialOut, "latin1").includes(PROMPT)) { seconds = (performance.now() - t0) / 1000; break; }
    await Bun.sleep(20);
  }
  if (seconds < 0) {
    p.kill("SIGKILL");
    await p.exited;
    clearTimeout(killer);
    throw new Error(`QEMU ${mode}: no prompt: ${(await new Response(p.stderr).text()).trim()} ${readFileSync(serialOut, "latin1").slice(-300)}`);
  }
  // The monitor: the instruction count now, then quit (QEMU finishes the rr file on quit). A
  // connection reset before the answer (seen once in many runs) is retried. A replay can reach
  // the end of the recording (quit just after the prompt) and exit before it answers: its
  // count there is the recording's (`recorded`).
  const ask = () => new Promise<number>((resolve, reject) => {
    let text = "";
    const s = connect(sock);
    s.on("data", (d) => {
      text += d.toString("latin1");
      const m = /instruction count = (\d+)/.exec(text);
      if (m) { s.write("quit\n"); s.end(); resolve(Number(m[1])); }
    });
    s.on("connect", () => s.write("info replay\n"));
    s.on("error", reject);
  });
  let icount = -1;
  for (let attempt = 1; icount < 0; attempt++) {
    try {
      icount = await ask();
    } catch (e) {
      if (exited && recorded !== undefined) { icount = recorded; break; }
      if (attempt === 3 || exited) { p.kill("SIGKILL"); await p.exited; clearTimeout(killer); throw e; }
      await Bun.sleep(200);
    }
  }
  await p.exited;
  clearTimeout(killer);
  return { seconds, icount };
}

export default {
  name: "linux-boot",
  title: "Debian i386 Linux to the busybox shell and a session: rrx record / replay, QEMU record / replay",
  order: 60,
  timeoutS: 900,
  subs: {
    async record(a: { path: string }): Promise<RecordOut> {
      await warmup("cpu-bound", 3_000_000);
      const t0 = performance.now();
      let prompt: ToPrompt = { promptIcount: -1, promptSeconds: -1 };
      const r = await runRecord(linuxConfig(), {
        path: a.path, script: loadScript("fixtures/linux/shell.txt"),
        onMachine: (m) => { prompt = watchPrompt(m, t0); },
      });
      const { m: _m, recorder: _r, ...rest } = r;
      return { ...rest, ...prompt };
    },
    async replay(a: { path: string }): Promise<ReplayOut> {
      await warmup("cpu-bound", 3_000_000);
      const t0 = performance.now();
      const opened = openLog(a.path, { searchDirs: [DIR] });
      const m = buildMachine(opened.cfg);
      const prompt = watchPrompt(m, t0);
      const end = replayToEnd(m, opened);
      const seconds = (performance.now() - t0) / 1000;
      if (end.kind === "diverged") throw new Error(`replay diverged: ${end.detail}`);
      return { seconds, icount: m.cpu.icount, mips: m.cpu.icount / seconds / 1e6, end: end.kind, ...prompt };
    },
  },
  async run(ctx) {
    if (!existsSync(KERNEL) || !existsSync(INITRD)) {
      return { status: "skipped", metrics: [], notes: [`no Linux guest in ${DIR} (run fixtures/linux/fetch.sh)`] };
    }
    const path = join(ctx.tmp, "linux.rrx");
    const rec = await ctx.sub<RecordOut>("record", { path });
    if (rec.promptIcount < 0) throw new Error("the guest printed no shell prompt");
    ctx.log(`rrx record: prompt at ${rec.promptIcount} insns (${rec.promptSeconds.toFixed(1)} s), end ${rec.icount} (${rec.mips.toFixed(1)} MIPS), log ${rec.bytes} B`);
    const rep = await ctx.sub<ReplayOut>("replay", { path });
    if (rep.icount !== rec.icount) throw new Error(`replay ran ${rep.icount} instructions, record ${rec.icount}`);
    if (rep.promptIcount !== rec.promptIcount) throw new Error(`replay printed the prompt at ${rep.promptIcount} instructions, record at ${rec.promptIcount}`);
    ctx.log(`rrx replay: ${rep.mips.toFixed(1)} MIPS`);
    // rrx's speed over the span QEMU is measured on: from the start to the shell prompt.
    const recPrompt = rec.promptIcount / rec.promptSeconds / 1e6, repPrompt = rep.promptIcount / rep.promptSeconds / 1e6;
    const virtS = rec.icount / 1e9;
    const metrics: Metric[] = [
      { key: "promptInsns", label: "instructions to the shell prompt", value: rec.promptIcount, unit: "" },
      { key: "insns", label: "instructions, boot and session to power-off", value: rec.icount, unit: "" },
      { key: "record.promptMips", label: "rrx record to the prompt", value: recPrompt, unit: "MIPS", note: `${rec.promptSeconds.toFixed(1)} s` },
      { key: "replay.promptMips", label: "rrx replay to the prompt", value: repPrompt, unit: "MIPS", note: `${rep.promptSeconds.toFixed(1)} s` },
      { key: "record.mips", label: "rrx record (whole run)", value: rec.mips, unit: "MIPS", note: `${rec.seconds.toFixed(1)} s` },
      { key: "replay.mips", label: "rrx replay (whole run)", value: rep.mips, unit: "MIPS", note: `${rep.seconds.toFixed(1)} s` },
      { key: "logBytesPerS", label: "log size per second of virtual time", value: rec.bytes / virtS, unit: "B", digits: 0, note: `${rec.bytes} B over ${virtS.toFixed(2)} s` },
    ];

    // rrx gdb's peak memory: run to the end, one step back, reverse-continue to the start.
    const gdb = Bun.which("gdb");
    if (gdb) {
      const p = Bun.spawn([process.execPath, "cmd/rrx.ts", "gdb", path, "--gdb", gdb, "--", "-batch",
        "-ex", "continue", "-ex", "reverse-stepi", "-ex", "reverse-continue"], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
      const killer = setTimeout(() => p.kill("SIGKILL"), 600_000);
      await p.exited;
      clearTimeout(killer);
      const rss = p.resourceUsage()?.maxRSS;
      if (p.exitCode === 0 && rss) {
        metrics.push({ key: "gdb.maxRss", label: "rrx gdb peak memory (to the end and back)", value: rss / 1048576, unit: "MiB", digits: 0 }); // maxRSS is in bytes
      } else ctx.log(`rrx gdb exited ${p.exitCode}: ${(await new Response(p.stderr).text()).slice(-300)}`);
    }

    const bin = Bun.which("qemu-system-i386");
    if (!bin) return { status: "ok", metrics, notes: ["qemu-system-i386 not found on PATH: no QEMU figures"] };
    const ver = Bun.spawnSync([bin, "--version"], { stdout: "pipe" }).stdout.toString().split("\n")[0];
    const rr = join(ctx.tmp, "linux.rr");
    const qrec = await qemuToPrompt(bin, "record", rr, join(ctx.tmp, "qmon-record.sock"), join(ctx.tmp, "qemu-record.txt"));
    // QEMU's own replay sometimes stops short of the prompt (seen once in many runs, exiting
    // with nothing on stderr): the record figures stand, the replay ones are left out.
    let qrep: { seconds: number; icount: number } | null = null, repFailed = "";
    try {
      qrep = await qemuToPrompt(bin, "replay", rr, join(ctx.tmp, "qmon-replay.sock"), join(ctx.tmp, "qemu-replay.txt"), qrec.icount);
    } catch (e) {
      repFailed = (e instanceof Error ? e.message : String(e)).split("\n")[0]!.slice(0, 120);
    }
    ctx.log(`QEMU record: prompt at ${qrec.icount} insns after ${qrec.seconds.toFixed(1)} s; replay ${qrep ? `${qrep.seconds.toFixed(1)} s` : "failed"} (${statSync(rr).size} B)`);
    const qm = (x: { seconds: number; icount: number }) => x.icount / x.seconds / 1e6;
    metrics.push(
      { key: "qemu.promptInsns", label: "QEMU instructions to the prompt (SeaBIOS and real-mode setup included)", value: qrec.icount, unit: "" },
      { key: "qemu.record.mips", label: "QEMU record to the prompt", value: qm(qrec), unit: "MIPS", note: `${qrec.seconds.toFixed(1)} s` },
      ...(qrep ? [{ key: "qemu.replay.mips", label: "QEMU replay to the prompt", value: qm(qrep), unit: "MIPS", note: `${qrep.seconds.toFixed(1)} s` }] : []),
      { key: "rrx_over_qemu.record", label: "rrx / QEMU, record MIPS to the prompt (goal >= 0.5)", value: recPrompt / qm(qrec), unit: "x", ratio: true },
      ...(qrep ? [{ key: "rrx_over_qemu.replay", label: "rrx / QEMU, replay MIPS to the prompt", value: repPrompt / qm(qrep), unit: "x", ratio: true }] : []),
      { key: "rrx_over_qemu.promptTime", label: "QEMU / rrx, wall time to the prompt recording", value: qrec.seconds / rec.promptSeconds, unit: "x", ratio: true },
    );
    const notes = [`${ver}; rrx counts the UART's character time (polling skipped), QEMU sends at once`];
    if (!qrep) notes.push(`QEMU's replay did not reach the prompt (${repFailed}): no replay ratio in this run`);
    return { status: "ok", metrics, notes };
  },
} satisfies BenchCase;
