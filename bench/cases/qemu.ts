/**
 * The same cpu-bound guest under QEMU (when qemu-system-i386 is installed): plain TCG,
 * `-icount shift=0` alone, then `-icount shift=0,rr=record,rrfile=F` and `rr=replay`. QEMU is
 * much faster, so it runs more rounds (`rounds=R`) to rise above its start-up time, which is
 * measured on fixtures/hello.elf in the same mode and subtracted. Instruction counts come from
 * rrx's own cpu-bound run: total(R) = total(rrx rounds) + (R - rrx rounds) x per-round count
 * (the per-round count read off the guest's output in that run; QEMU executes essentially the
 * same instructions). Ratios are rrx MIPS / QEMU MIPS.
 */
import { join } from "node:path";
import type { BenchCase } from "../lib/types.ts";
import { fixtureConfig, median, runPlain, type OutputLine } from "../lib/rrx.ts";

const COMMON = ["-serial", "stdio", "-display", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-m", "32", "-no-reboot"];

function qemuRun(bin: string, args: string[]): { ms: number; out: string; code: number } {
  const t0 = performance.now();
  const r = Bun.spawnSync([bin, ...COMMON, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const ms = performance.now() - t0;
  return { ms, out: r.stdout.toString() + r.stderr.toString(), code: r.exitCode ?? -1 };
}

export default {
  name: "qemu",
  title: "cpu-bound under QEMU TCG, record and replay; rrx as a ratio to QEMU",
  order: 50,
  async run(ctx) {
    const bin = Bun.which("qemu-system-i386");
    if (!bin) return { status: "skipped", metrics: [], notes: ["qemu-system-i386 not found on PATH"] };
    const ver = Bun.spawnSync([bin, "--version"], { stdout: "pipe" }).stdout.toString().split("\n")[0];

    // Instruction counts from rrx's cpu-bound run (or a fresh plain run when it was not selected).
    let total = ctx.metric("cpu-bound", "instructions");
    let perRound = ctx.metric("cpu-bound", "perRound");
    let rrxRounds = (ctx.prior["cpu-bound"]?.raw?.rounds as number | undefined) ?? 1;
    if (total === undefined || perRound === undefined) {
      ctx.log("no cpu-bound results in this run: counting instructions with a plain rrx run");
      const lines: OutputLine[] = [];
      const p = await runPlain(fixtureConfig("cpu-bound", "rounds=1"), { lines });
      const hdr = lines.find((l) => l.text.startsWith("rounds:")), r0 = lines.find((l) => l.text.startsWith("round 0:"));
      if (!hdr || !r0) throw new Error("cpu-bound printed no round lines");
      total = p.icount; perRound = r0.end - hdr.end; rrxRounds = 1;
    }
    const rounds = ctx.scale(10, 15, 25);
    const insns = total + (rounds - rrxRounds) * perRound;
    const reps = ctx.scale(3, 3, 5);

    const modes: { key: string; label: string; args: (rr: string) => string[] }[] = [
      { key: "plain", label: "plain TCG", args: () => [] },
      { key: "icount", label: "-icount shift=0", args: () => ["-icount", "shift=0"] },
      { key: "record", label: "-icount shift=0,rr=record", args: (f) => ["-icount", `shift=0,rr=record,rrfile=${f}`] },
      { key: "replay", label: "-icount shift=0,rr=replay", args: (f) => ["-icount", `shift=0,rr=replay,rrfile=${f}`] },
    ];
    const res: Record<string, { baseMs: number; runMs: number; netS: number; mips: number }> = {};
    for (const md of modes) {
      const helloRr = join(ctx.tmp, "hello.rr"), cpuRr = join(ctx.tmp, "cpu.rr");
      const base: number[] = [];
      for (let i = 0; i < reps; i++) {
        // hello's recording is made once by the record mode and replayed by the replay mode.
        const r = qemuRun(bin, ["-kernel", "fixtures/hello.elf", ...md.args(helloRr)]);
        if (r.code !== 1) throw new Error(`qemu ${md.label} hello: exit ${r.code}: ${r.out.slice(-300)}`);
        base.push(r.ms);
      }
      const run = qemuRun(bin, ["-kernel", "fixtures/cpu-bound.elf", "-append", `rounds=${rounds}`, ...md.args(cpuRr)]);
      if (run.code !== 1 || !run.out.includes("cpu-bound: done")) throw new Error(`qemu ${md.label} cpu-bound: exit ${run.code}: ${run.out.slice(-300)}`);
      const baseMs = median(base);
      const netS = Math.max(run.ms - baseMs, 1) / 1000;
      res[md.key] = { baseMs, runMs: run.ms, netS, mips: insns / netS / 1e6 };
      ctx.log(`${md.label}: ${run.ms.toFixed(0)} ms - ${baseMs.toFixed(0)} ms start-up = ${res[md.key]!.mips.toFixed(0)} MIPS`);
    }

    const rrx = (k: string) => ctx.metric("cpu-bound", `${k}.mips`);
    const ratio = (a: number | undefined, b: number) => (a === undefined ? null : a / b);
    const q = (k: string) => res[k]!.mips;
    return {
      status: "ok",
      metrics: [
        { key: "instructions", label: `instructions (rounds=${rounds}, from rrx's counts)`, value: insns, unit: "" },
        { key: "plain.mips", label: "QEMU plain TCG", value: q("plain"), unit: "MIPS", note: `${res.plain!.runMs.toFixed(0)} ms, start-up ${res.plain!.baseMs.toFixed(0)} ms` },
        { key: "icount.mips", label: "QEMU -icount shift=0", value: q("icount"), unit: "MIPS", note: `${res.icount!.runMs.toFixed(0)} ms, start-up ${res.icount!.baseMs.toFixed(0)} ms` },
        { key: "record.mips", label: "QEMU record (rr=record)", value: q("record"), unit: "MIPS", note: `${res.record!.runMs.toFixed(0)} ms, start-up ${res.record!.baseMs.toFixed(0)} ms` },
        { key: "replay.mips", label: "QEMU replay (rr=replay)", value: q("replay"), unit: "MIPS", note: `${res.replay!.runMs.toFixed(0)} ms, start-up ${res.replay!.baseMs.toFixed(0)} ms` },
        { key: "rrx_over_qemu.plain", label: "rrx / QEMU, plain run (speed)", value: ratio(rrx("plain"), q("plain")), unit: "x", ratio: true },
        { key: "rrx_over_qemu.record", label: "rrx / QEMU, record (speed)", value: ratio(rrx("record"), q("record")), unit: "x", ratio: true },
        { key: "rrx_over_qemu.replay", label: "rrx / QEMU, replay (speed)", value: ratio(rrx("replay"), q("replay")), unit: "x", ratio: true },
        { key: "qemu.record_over_plain", label: "QEMU record / QEMU plain (speed)", value: q("record") / q("plain"), unit: "x", ratio: true },
        { key: "qemu.replay_over_record", label: "QEMU replay / QEMU record (speed)", value: q("replay") / q("record"), unit: "x", ratio: true },
      ],
      notes: [
        `${ver}; rrx figures from the cpu-bound case of this run (rounds=${rrxRounds}), QEMU at rounds=${rounds}`,
        `QEMU time = wall time of the process less the median of ${reps} hello.elf runs in the same mode (start-up, BIOS, exit)`,
      ],
      raw: { qemu: bin, version: ver, rounds, insns, perRound, rrxTotal: total, rrxRounds, res },
    };
  },
} satisfies BenchCase;
