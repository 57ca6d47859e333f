#!/usr/bin/env bun
/**
 * rrx bench suite: `npm run bench [-- --quick | --full] [--only a,b] [--inproc] [--list]`.
 *
 * Every file in bench/cases/ is a case (see bench/lib/types.ts). Each case runs in its own
 * process (a fresh JIT and heap, so one case's warm-up or garbage does not colour the next),
 * in `order`; later cases can read earlier cases' figures (the QEMU comparison uses the
 * cpu-bound run's instruction counts and MIPS). The table goes to stdout, the JSON to
 * bench/results.json.
 */
import { readdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from "node:fs";
import { join, dirname, resolve, basename } from "node:path";
import { tmpdir, cpus, platform, arch, totalmem } from "node:os";
import type { BenchCase, BenchContext, CaseResult, Metric, Preset } from "./lib/types.ts";
import { formatTable, formatRatios } from "./lib/report.ts";
import { engineEnv } from "../bin/engine-env.cjs";

const ROOT = resolve(dirname(import.meta.path), "..");
const CASES_DIR = join(ROOT, "bench", "cases");
const RESULTS = join(ROOT, "bench", "results.json");

/** Wall-time limit per case process (with its subs). */
const CASE_TIMEOUT_S: Record<Preset, number> = { quick: 120, default: 240, full: 480 };

interface Args {
  preset: Preset;
  only: string[] | null;
  inproc: boolean;
  list: boolean;
  child: string | null;
  prior: string | null;
  out: string | null;
  json: string;
  sub: string | null;
  subargs: string | null;
  tmp: string | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { preset: "default", only: null, inproc: false, list: false, child: null, prior: null, out: null, json: RESULTS, sub: null, subargs: null, tmp: null };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    const val = () => { const v = argv[++i]; if (v === undefined) usage(`${x} needs a value`); return v; };
    if (x === "--quick") a.preset = "quick";
    else if (x === "--full") a.preset = "full";
    else if (x === "--default") a.preset = "default";
    else if (x === "--only") a.only = val().split(",").filter(Boolean);
    else if (x === "--inproc") a.inproc = true;
    else if (x === "--list") a.list = true;
    else if (x === "--json") a.json = resolve(val());
    else if (x === "--child") a.child = val();
    else if (x === "--prior") a.prior = val();
    else if (x === "--out") a.out = val();
    else if (x === "--sub") a.sub = val();
    else if (x === "--subargs") a.subargs = val();
    else if (x === "--tmp") a.tmp = val();
    else if (x === "-h" || x === "--help") usage();
    else usage(`unknown option ${x}`);
  }
  return a;
}

function usage(err?: string): never {
  if (err) process.stderr.write(`bench: ${err}\n`);
  process.stderr.write(
    "usage: bun bench/run.ts [--quick|--full] [--only case,case] [--inproc] [--list] [--json FILE]\n" +
    "  --quick   smallest workloads (about a minute)\n" +
    "  --full    largest workloads (a few minutes)\n" +
    "  --only    run only these cases (names from --list)\n" +
    "  --inproc  run every case in this process (debugging; figures are less independent)\n");
  process.exit(err ? 2 : 0);
}

async function loadCases(): Promise<{ file: string; c: BenchCase }[]> {
  const files = readdirSync(CASES_DIR).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts")).sort();
  const out: { file: string; c: BenchCase }[] = [];
  for (const f of files) {
    const mod = await import(join(CASES_DIR, f));
    const c = mod.default as BenchCase | undefined;
    if (!c || typeof c.run !== "function" || typeof c.name !== "string") {
      process.stderr.write(`bench: ${f}: no default-exported BenchCase, skipped\n`);
      continue;
    }
    out.push({ file: join(CASES_DIR, f), c });
  }
  const names = new Set<string>();
  for (const { file, c } of out) {
    if (names.has(c.name)) throw new Error(`${basename(file)}: duplicate case name ${c.name}`);
    names.add(c.name);
  }
  return out.sort((x, y) => x.c.order - y.c.order || x.c.name.localeCompare(y.c.name));
}

let subSeq = 0;

function makeContext(file: string, preset: Preset, prior: Record<string, CaseResult>, name: string, tmpDir?: string): BenchContext {
  const tmp = tmpDir ?? mkdtempSync(join(tmpdir(), `rrx-bench-${name}-`));
  return {
    preset,
    scale: (q, d, f) => (preset === "quick" ? q : preset === "full" ? f : d),
    root: ROOT,
    tmp,
    prior,
    metric(caseName, key) {
      const v = prior[caseName]?.metrics.find((m) => m.key === key)?.value;
      return v === null || v === undefined ? undefined : v;
    },
    log: (msg) => process.stderr.write(`  [${name}] ${msg}\n`),
    async sub<T>(sub: string, args?: unknown): Promise<T> {
      const base = join(tmp, `.sub-${process.pid}-${subSeq++}`);
      writeFileSync(`${base}.args.json`, JSON.stringify(args ?? null));
      const p = Bun.spawn([process.execPath, import.meta.path, "--child", file, `--${preset}`, "--sub", sub,
        "--subargs", `${base}.args.json`, "--out", `${base}.out.json`, "--tmp", tmp], {
        cwd: ROOT, stdout: "inherit", stderr: "inherit", stdin: "ignore", env: engineEnv(process.env),
      });
      const code = await p.exited;
      if (!existsSync(`${base}.out.json`)) throw new Error(`sub-process ${name}/${sub} exited with status ${code} and no result`);
      const r = JSON.parse(readFileSync(`${base}.out.json`, "utf8")) as { ok: boolean; value?: T; error?: string };
      rmSync(`${base}.args.json`, { force: true }); rmSync(`${base}.out.json`, { force: true });
      if (!r.ok) throw new Error(`${name}/${sub}: ${r.error}`);
      return r.value as T;
    },
  };
}

async function runInProcess(file: string, c: BenchCase, preset: Preset, prior: Record<string, CaseResult>): Promise<CaseResult> {
  const ctx = makeContext(file, preset, prior, c.name);
  const t0 = performance.now();
  try {
    const r = await c.run(ctx);
    r.seconds = (performance.now() - t0) / 1000;
    return r;
  } catch (e) {
    const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
    return { status: "error", metrics: [], notes: [`error: ${msg.split("\n").slice(0, 6).join("\n  ")}`], seconds: (performance.now() - t0) / 1000 };
  } finally {
    rmSync(ctx.tmp, { recursive: true, force: true });
  }
}

async function runChild(file: string, name: string, preset: Preset, prior: Record<string, CaseResult>, scratch: string, minTimeoutS = 0): Promise<CaseResult> {
  const priorPath = join(scratch, `${name}.prior.json`);
  const outPath = join(scratch, `${name}.out.json`);
  writeFileSync(priorPath, JSON.stringify(prior));
  const t0 = performance.now();
  const p = Bun.spawn([process.execPath, import.meta.path, "--child", file, `--${preset}`, "--prior", priorPath, "--out", outPath], {
    cwd: ROOT, stdout: "inherit", stderr: "inherit", stdin: "ignore", env: engineEnv(process.env), detached: true,
  });
  // A case that hangs (a guest that never exits under some revision of the core) must not hang
  // the suite: kill its process group (the case and its subs) after the preset's limit.
  const limitS = Math.max(CASE_TIMEOUT_S[preset], minTimeoutS);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try { process.kill(-p.pid, "SIGKILL"); } catch { p.kill("SIGKILL"); }
  }, limitS * 1000);
  const code = await p.exited;
  clearTimeout(timer);
  const seconds = (performance.now() - t0) / 1000;
  if (timedOut) return { status: "error", metrics: [], notes: [`timed out after ${limitS} s (killed)`], seconds };
  if (!existsSync(outPath)) {
    return { status: "error", metrics: [], notes: [`case process exited with status ${code} and no result`], seconds };
  }
  const r = JSON.parse(readFileSync(outPath, "utf8")) as CaseResult;
  r.seconds = seconds;
  return r;
}

function gitCommit(): string | null {
  const r = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: ROOT, stdout: "pipe", stderr: "ignore" });
  return r.exitCode === 0 ? r.stdout.toString().trim() : null;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  process.chdir(ROOT);

  if (args.child) {
    const mod = await import(args.child);
    const c = mod.default as BenchCase;
    const prior = args.prior ? (JSON.parse(readFileSync(args.prior, "utf8")) as Record<string, CaseResult>) : {};
    if (args.sub) {
      const fn = c.subs?.[args.sub];
      let out: { ok: boolean; value?: unknown; error?: string };
      if (!fn) out = { ok: false, error: `no sub ${args.sub}` };
      else {
        try {
          const subArgs = args.subargs ? JSON.parse(readFileSync(args.subargs, "utf8")) : null;
          out = { ok: true, value: await fn(subArgs, makeContext(args.child, args.preset, prior, c.name, args.tmp ?? undefined)) };
        } catch (e) {
          out = { ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
        }
      }
      writeFileSync(args.out!, JSON.stringify(out));
      process.exit(0);
    }
    const r = await runInProcess(args.child, c, args.preset, prior);
    writeFileSync(args.out!, JSON.stringify(r));
    process.exit(0);
  }

  const cases = await loadCases();
  if (args.list) {
    for (const { c } of cases) process.stdout.write(`${c.name.padEnd(24)} ${c.title}\n`);
    return;
  }
  const selected = args.only ? cases.filter(({ c }) => args.only!.includes(c.name)) : cases;
  if (args.only) {
    const unknown = args.only.filter((n) => !cases.some(({ c }) => c.name === n));
    if (unknown.length) usage(`unknown case(s): ${unknown.join(", ")} (see --list)`);
  }

  const scratch = mkdtempSync(join(tmpdir(), "rrx-bench-"));
  const results: Record<string, CaseResult> = {};
  const titles: Record<string, string> = {};
  const t0 = performance.now();
  process.stderr.write(`rrx bench (${args.preset}): ${selected.length} cases, ${cpus().length} CPUs\n`);
  try {
    for (const { file, c } of selected) {
      titles[c.name] = c.title;
      process.stderr.write(`- ${c.name}: ${c.title}\n`);
      const r = args.inproc ? await runInProcess(file, c, args.preset, results) : await runChild(file, c.name, args.preset, results, scratch, c.timeoutS);
      results[c.name] = r;
      process.stderr.write(`  ${r.status} in ${r.seconds!.toFixed(1)} s\n`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const total = (performance.now() - t0) / 1000;

  const out = formatTable(selected.map(({ c }) => c.name), titles, results) + "\n" + formatRatios(results) +
    `\nsuite: ${args.preset} preset, ${total.toFixed(1)} s wall on ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), bun ${Bun.version}\n`;
  process.stdout.write(out);

  const ratios: Record<string, number | null> = {};
  for (const [name, r] of Object.entries(results)) for (const m of r.metrics) if (m.ratio) ratios[`${name}.${m.key}`] = m.value;
  const flat: Record<string, number | null> = {};
  for (const [name, r] of Object.entries(results)) for (const m of r.metrics) flat[`${name}.${m.key}`] = m.value;
  const json = {
    suite: "rrx-bench",
    version: 1,
    date: new Date().toISOString(),
    preset: args.preset,
    commit: gitCommit(),
    host: { platform: platform(), arch: arch(), cpus: cpus().length, cpuModel: cpus()[0]?.model ?? null, memBytes: totalmem(), bun: Bun.version },
    seconds: total,
    ratios,
    metrics: flat,
    cases: Object.fromEntries(Object.entries(results).map(([n, r]) => [n, { title: titles[n], ...r }])),
  };
  writeFileSync(args.json, JSON.stringify(json, null, 2) + "\n");
  process.stderr.write(`wrote ${args.json}\n`);
  if (Object.values(results).some((r) => r.status === "error")) process.exitCode = 1;
}

export type { Metric };
await main();
