/**
 * Shared pieces of the reverse-debugging cases (reverse-stepi, reverse-continue, reverse-next,
 * breakpoint-overhead, checkpoint-memory): a cpu-bound recording of the preset's size, recorded
 * once and kept between runs, and a replay engine over it.
 *
 * The recording is `fixtures/cpu-bound.elf rounds=R` (R = 2 / 15 / 15: about 1.5e8 / 1.1e9
 * instructions), as `rrx run cpu-bound.elf --append rounds=R --record F` makes it. It is cached
 * in $TMPDIR/rrx-bench-cache under the kernel's hash; a cached file that the current build
 * does not replay to its recorded end is recorded again.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { elfSymbols } from "../../lib/boot/elf.ts";
import { join } from "node:path";
import { tmpdir } from "node:os";
import type { BenchContext } from "./types.ts";
import { fixtureConfig, runRecord } from "./rrx.ts";
import { openLog } from "../../lib/replay/replayer.ts";
import { engineFromLog, type EngineOptions, type ReplayEngine } from "../../lib/replay/engine.ts";
import { sha256Hex } from "../../lib/replay/log/format.ts";

export const CACHE_DIR = join(tmpdir(), "rrx-bench-cache");

export function rounds(ctx: BenchContext): number {
  return ctx.scale(2, 15, 15);
}

/** Path of the cached recording for this preset, recording it if missing. */
export async function recording(ctx: BenchContext, force = false, r = rounds(ctx)): Promise<string> {
  const elf = new Uint8Array(readFileSync("fixtures/cpu-bound.elf"));
  const path = join(CACHE_DIR, `cpu-bound-r${r}-${sha256Hex(elf).slice(0, 12)}.rrx`);
  if (existsSync(path) && !force) return path;
  mkdirSync(CACHE_DIR, { recursive: true });
  ctx.log(`recording cpu-bound rounds=${r} to ${path} (once)`);
  const t0 = performance.now();
  const tmp = `${path}.${process.pid}.tmp`;
  const rec = await runRecord(fixtureConfig("cpu-bound", `rounds=${r}`), { path: tmp });
  renameSync(tmp, path);
  ctx.log(`recorded ${rec.icount} instructions in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return path;
}

export interface Opened {
  e: ReplayEngine;
  path: string;
  /** Seconds of the replay to the end (continue with no breakpoints). */
  toEndS: number;
}

/**
 * An engine over the cached recording, replayed to its end with `continue` (the way a gdb
 * session reaches the end of a recording). Records again if the build no longer reaches the end.
 */
export async function engineAtEnd(ctx: BenchContext, opts: EngineOptions = {}): Promise<Opened> {
  for (let attempt = 0; ; attempt++) {
    const path = await recording(ctx, attempt > 0);
    const e = engineFromLog(openLog(path), opts);
    const t0 = performance.now();
    const r = await e.continueForward();
    const toEndS = (performance.now() - t0) / 1000;
    if (r.kind === "end" && e.icount === e.end) return { e, path, toEndS };
    if (attempt > 0) throw new Error(`replay of ${path} stopped at ${e.icount} (${r.kind}), recorded end ${e.end}`);
    ctx.log(`cached recording no longer replays to its end (${r.kind} at ${e.icount}); recording again`);
    rmSync(path, { force: true });
  }
}

/** An engine over the cached recording at its start. */
export async function engineAtStart(ctx: BenchContext, opts: EngineOptions = {}, r = rounds(ctx)): Promise<{ e: ReplayEngine; path: string }> {
  const path = await recording(ctx, false, r);
  return { e: engineFromLog(openLog(path), opts), path };
}

/** Linear addresses of cpu-bound's functions (its ELF symbol table). */
export function symbols(): Map<string, number> {
  return elfSymbols(new Uint8Array(readFileSync("fixtures/cpu-bound.elf")));
}

export function sym(name: string): number {
  const a = symbols().get(name);
  if (a === undefined) throw new Error(`cpu-bound.elf has no symbol ${name}`);
  return a;
}

/** Nearest-rank percentile (p in 0..1). */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

export async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; v: T }> {
  const t0 = performance.now();
  const v = await f();
  return { ms: performance.now() - t0, v };
}

export function mib(b: number): string {
  return (b / (1 << 20)).toFixed(1);
}
