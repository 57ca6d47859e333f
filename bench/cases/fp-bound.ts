/**
 * A floating-point workload through the whole CPU: `fixtures/x87.elf nbody=N` (the five-body
 * n-body loop in double precision, compiled with -mfpmath=387: FLD/FST m64, FADD/FSUB/FMUL/FDIV,
 * FSQRT). rrx plain and record, each in its own process after a warm-up; then, when
 * qemu-system-i386 is installed, the same kernel under QEMU with `-icount shift=0,rr=record` and
 * plain TCG, at more steps, its start-up (the same kernel at nbody=1 in the same mode) taken
 * off. Instruction counts are rrx's: per step = (icount(N) - icount(1)) / (N - 1).
 */
import { join } from "node:path";
import type { BenchCase, Metric } from "../lib/types.ts";
import { fixtureConfig, median, runPlain, runRecord, warmup, type Timed } from "../lib/rrx.ts";

const COMMON = ["-serial", "stdio", "-display", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-m", "32", "-no-reboot"];

function qemuRun(bin: string, args: string[]): { ms: number; out: string; code: number } {
  const t0 = performance.now();
  const r = Bun.spawnSync([bin, ...COMMON, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  return { ms: performance.now() - t0, out: r.stdout.toString() + r.stderr.toString(), code: r.exitCode ?? -1 };
}

export default {
  name: "fp-bound",
  title: "x87 n-body (x87.elf nbody=N): rrx plain / record MIPS, and QEMU record",
  order: 55,
  subs: {
    async plain(a: { steps: number }): Promise<Timed> {
      await warmup("x87", 2_000_000);
      const { m: _m, ...r } = await runPlain(fixtureConfig("x87", `nbody=${a.steps}`));
      return r;
    },
    async record(a: { steps: number; path: string }): Promise<Timed> {
      await warmup("x87", 2_000_000);
      const { m: _m, recorder: _r, ...r } = await runRecord(fixtureConfig("x87", `nbody=${a.steps}`), { path: a.path });
      return r;
    },
  },
  async run(ctx) {
    const steps = ctx.scale(20_000, 60_000, 200_000);
    const one = await runPlain(fixtureConfig("x87", "nbody=1"));
    const plain = await ctx.sub<Timed>("plain", { steps });
    const rec = await ctx.sub<Timed>("record", { steps, path: join(ctx.tmp, "fp.rrx") });
    if (rec.icount !== plain.icount) throw new Error(`record ran ${rec.icount} instructions, plain ${plain.icount}`);
    if (plain.end !== "exit 1") throw new Error(`x87 nbody ended with ${plain.end}`);
    const perStep = (plain.icount - one.icount) / (steps - 1);
    ctx.log(`rrx: ${plain.icount} insns (${perStep.toFixed(0)} per step), plain ${plain.mips.toFixed(1)} MIPS, record ${rec.mips.toFixed(1)} MIPS`);
    const metrics: Metric[] = [
      { key: "instructions", label: `instructions (nbody=${steps})`, value: plain.icount, unit: "" },
      { key: "perStep", label: "instructions per n-body step", value: perStep, unit: "" },
      { key: "plain.mips", label: "rrx plain run", value: plain.mips, unit: "MIPS", note: `${plain.seconds.toFixed(2)} s` },
      { key: "record.mips", label: "rrx record", value: rec.mips, unit: "MIPS", note: `${rec.seconds.toFixed(2)} s` },
    ];
    const bin = Bun.which("qemu-system-i386");
    if (!bin) return { status: "ok", metrics, notes: ["qemu-system-i386 not found on PATH: no QEMU figures"] };
    const ver = Bun.spawnSync([bin, "--version"], { stdout: "pipe" }).stdout.toString().split("\n")[0];
    const qsteps = steps * ctx.scale(5, 5, 5);
    const insns = one.icount + (qsteps - 1) * perStep;
    const modes = [
      { key: "plain", label: "plain TCG", args: (_f: string) => [] as string[] },
      { key: "record", label: "-icount shift=0,rr=record", args: (f: string) => ["-icount", `shift=0,rr=record,rrfile=${f}`] },
    ];
    const q: Record<string, number> = {};
    for (const md of modes) {
      const base: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = qemuRun(bin, ["-kernel", "fixtures/x87.elf", "-append", "nbody=1", ...md.args(join(ctx.tmp, "one.rr"))]);
        if (r.code !== 1) throw new Error(`qemu ${md.label} nbody=1: exit ${r.code}: ${r.out.slice(-300)}`);
        base.push(r.ms);
      }
      const run = qemuRun(bin, ["-kernel", "fixtures/x87.elf", "-append", `nbody=${qsteps}`, ...md.args(join(ctx.tmp, "fp.rr"))]);
      if (run.code !== 1 || !run.out.includes("done")) throw new Error(`qemu ${md.label} nbody: exit ${run.code}: ${run.out.slice(-300)}`);
      const netS = Math.max(run.ms - median(base), 1) / 1000;
      q[md.key] = insns / netS / 1e6;
      ctx.log(`QEMU ${md.label}: ${run.ms.toFixed(0)} ms - ${median(base).toFixed(0)} ms start-up = ${q[md.key]!.toFixed(0)} MIPS`);
    }
    metrics.push(
      { key: "qemu.plain.mips", label: "QEMU plain TCG", value: q.plain!, unit: "MIPS" },
      { key: "qemu.record.mips", label: "QEMU record (rr=record)", value: q.record!, unit: "MIPS" },
      { key: "rrx_over_qemu.plain", label: "rrx / QEMU, plain (speed)", value: plain.mips / q.plain!, unit: "x", ratio: true },
      { key: "rrx_over_qemu.record", label: "rrx / QEMU, record (speed; goal >= 0.5)", value: rec.mips / q.record!, unit: "x", ratio: true },
    );
    return { status: "ok", metrics, notes: [`${ver}; QEMU at nbody=${qsteps}, instructions from rrx's per-step count`] };
  },
} satisfies BenchCase;
