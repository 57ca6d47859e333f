/**
 * The compiled binary's time from process start to the first guest instruction:
 * `dist/rrx run fixtures/hello.elf --max-insns 1` (boot, load, one instruction, exit), against
 * `--max-insns 0` (everything but the instruction), `rrx --version` (the runtime alone) and the
 * uncompiled `bun cmd/rrx.ts`. Median wall time of several spawns each.
 *
 * dist/rrx is used when it is newer than every file under cmd/ and lib/; when it is missing it
 * is built there (`bun build --compile cmd/rrx.ts --outfile dist/rrx`, what `npm run build`
 * does); when it is stale a fresh one is built in the case's scratch directory instead, so a
 * bench run never measures old code and never overwrites a build it did not make.
 */
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { BenchCase } from "../lib/types.ts";
import { median } from "../lib/rrx.ts";

function newestSource(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestSource(p));
    else if (e.name.endsWith(".ts")) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

function build(outfile: string): number {
  const t0 = performance.now();
  const r = Bun.spawnSync([process.execPath, "build", "--compile", "cmd/rrx.ts", "--outfile", outfile], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`bun build --compile failed: ${r.stderr.toString().slice(0, 500)}`);
  return (performance.now() - t0) / 1000;
}

function timeSpawn(cmd: string[], n: number, okCodes = [0]): { median: number; min: number; all: number[] } {
  const all: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const ms = performance.now() - t0;
    if (!okCodes.includes(r.exitCode ?? -1)) throw new Error(`${cmd.join(" ")}: exit ${r.exitCode}: ${r.stderr.toString().slice(0, 300)}`);
    all.push(ms);
  }
  return { median: median(all), min: Math.min(...all), all };
}

export default {
  name: "startup",
  title: "compiled binary: process start to first guest instruction",
  order: 40,
  run(ctx) {
    const dist = "dist/rrx";
    const newest = Math.max(newestSource("cmd"), newestSource("lib"));
    let bin = dist;
    let buildS: number | null = null;
    let how: string;
    if (existsSync(dist) && statSync(dist).mtimeMs >= newest) how = "dist/rrx (up to date)";
    else if (!existsSync(dist)) {
      ctx.log("building dist/rrx");
      mkdirSync("dist", { recursive: true });
      buildS = build(dist);
      how = "dist/rrx (built by the bench)";
    } else {
      bin = join(ctx.tmp, "rrx");
      ctx.log("dist/rrx is older than the sources: building a fresh binary in scratch");
      buildS = build(bin);
      how = "fresh build in scratch (dist/rrx is stale)";
    }
    const n = ctx.scale(3, 5, 9);
    const hello = ["run", "fixtures/hello.elf", "--serial", "none", "--debugcon", "none"];
    const bun = [process.execPath, "cmd/rrx.ts"];
    ctx.log(`${n} runs each`);
    timeSpawn([bin, "--version"], 1); // page the binary in
    const version = timeSpawn([bin, "--version"], n);
    const zero = timeSpawn([bin, ...hello, "--max-insns", "0"], n);
    const one = timeSpawn([bin, ...hello, "--max-insns", "1"], n);
    const full = timeSpawn([bin, ...hello], Math.min(n, 5), [1]);
    const counted = Bun.spawnSync([bin, ...hello, "--verbose"], { stdout: "pipe", stderr: "pipe" }).stderr.toString();
    const helloInsns = Number(/after (\d+) instructions/.exec(counted)?.[1] ?? NaN);
    const script = timeSpawn([...bun, ...hello, "--max-insns", "1"], n);
    return {
      status: "ok",
      metrics: [
        { key: "first.ms", label: "start to first guest instruction (--max-insns 1)", value: one.median, unit: "ms" },
        { key: "zero.ms", label: "same with --max-insns 0 (boot, no instruction)", value: zero.median, unit: "ms" },
        { key: "version.ms", label: "rrx --version (runtime start only)", value: version.median, unit: "ms" },
        { key: "hello.ms", label: "whole hello run", value: full.median, unit: "ms", note: `${helloInsns.toLocaleString("en-US")} instructions, mostly polling the UART` },
        { key: "script.ms", label: "bun cmd/rrx.ts, --max-insns 1 (not compiled)", value: script.median, unit: "ms" },
        { key: "first_minus_zero.ms", label: "first instruction itself (1 minus 0)", value: one.median - zero.median, unit: "ms", digits: 1 },
        { key: "machine.ms", label: "machine boot in the binary (0 minus --version)", value: zero.median - version.median, unit: "ms", digits: 1 },
        { key: "script_over_compiled", label: "dist/rrx speed-up over bun cmd/rrx.ts (time ratio)", value: script.median / one.median, unit: "x", ratio: true },
        { key: "build.s", label: "bun build --compile", value: buildS, unit: "s", note: buildS === null ? "not rebuilt" : "" },
      ],
      notes: [`binary: ${how}; medians of ${n} spawns; serial and debugcon output off`],
      raw: { bin, version, zero, one, full, script },
    };
  },
} satisfies BenchCase;
