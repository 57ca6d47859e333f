/**
 * Run the whole SingleStepTests 80286 real-mode suite (or some forms of it) on rrx and print a
 * per-form pass-rate table.
 *
 *   bun test/sst/soak.ts [SOURCE] [--forms F6.6,D3.4] [--samples N] [--markdown] [--revoked FILE]
 *
 * SOURCE is a bare git mirror of github.com/SingleStepTests/80286 (read with `git show`, default
 * /work/.mirror/SingleStepTests+80286/repo), a directory of *.MOO.gz files (v1_real_mode or a
 * copy), or a single .MOO(.gz) file (the CI sample, fixtures/sst/80286-sample.moo.gz). Tests whose
 * hash is in the suite's revocation_list.txt are skipped. Exit status 1 if any non-excluded test
 * fails.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { parseMoo, type MooTest } from "./moo.ts";
import { SstRunner, describe, newStats, tally, type FormStats } from "./runner.ts";

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const k = args.indexOf(name);
  if (k < 0) return undefined;
  const v = args[k + 1];
  args.splice(k, 2);
  return v;
};
const flag = (name: string): boolean => { const k = args.indexOf(name); if (k >= 0) args.splice(k, 1); return k >= 0; };
const forms = opt("--forms")?.split(",");
const samples = Number(opt("--samples") ?? 3);
const markdown = flag("--markdown");
const dumpFile = opt("--dump");
const dump: string[] = [];
const src = args[0] ?? "/work/.mirror/SingleStepTests+80286/repo";

interface Source { name: string; read(): Uint8Array }
const sources: Source[] = [];
let revoked = new Set<string>();
const git = (...a: string[]): Uint8Array => {
  const r = Bun.spawnSync(["git", "-C", src, ...a], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`git ${a.join(" ")}: ${r.stderr.toString().trim()}`);
  return r.stdout;
};
const formOf = (file: string): string => file.replace(/^.*\//, "").replace(/\.MOO(\.gz)?$/i, "");
if (!existsSync(src)) { console.error(`soak: ${src}: no such file or directory`); process.exit(2); }
if (statSync(src).isDirectory() && existsSync(join(src, "HEAD")) && !existsSync(join(src, "v1_real_mode"))) {
  const names = new TextDecoder().decode(git("ls-tree", "-r", "--name-only", "HEAD", "v1_real_mode")).split("\n").filter((n) => /\.MOO\.gz$/.test(n));
  for (const n of names) sources.push({ name: formOf(n), read: () => git("show", `HEAD:${n}`) });
  revoked = parseRevocations(new TextDecoder().decode(git("show", "HEAD:revocation_list.txt")));
} else if (statSync(src).isDirectory()) {
  const dir = existsSync(join(src, "v1_real_mode")) ? join(src, "v1_real_mode") : src;
  for (const n of readdirSync(dir).filter((n) => /\.MOO(\.gz)?$/i.test(n)).sort()) {
    sources.push({ name: formOf(n), read: () => new Uint8Array(require("node:fs").readFileSync(join(dir, n))) });
  }
  const rl = join(dir, "..", "revocation_list.txt");
  if (existsSync(rl)) revoked = parseRevocations(require("node:fs").readFileSync(rl, "utf8"));
} else {
  sources.push({ name: "", read: () => new Uint8Array(require("node:fs").readFileSync(src)) });
}
const revokedFile = opt("--revoked");
if (revokedFile) revoked = parseRevocations(require("node:fs").readFileSync(revokedFile, "utf8"));

function parseRevocations(text: string): Set<string> {
  return new Set(text.split("\n").map((l) => l.trim().toLowerCase()).filter((l) => /^[0-9a-f]{40}$/.test(l)));
}

const runner = new SstRunner();
const stats = new Map<string, FormStats>();
const t0 = Date.now();
let skipped = 0;
const unreadable: string[] = [];
for (const s of sources) {
  if (forms && s.name && !forms.includes(s.name)) continue;
  let b: Uint8Array;
  try { b = s.read(); } catch (e) {
    unreadable.push(s.name);
    process.stderr.write(`${s.name}: not readable, skipped (${(e as Error).message.split("\n")[0]})\n`);
    continue;
  }
  if (b[0] === 0x1f && b[1] === 0x8b) b = new Uint8Array(gunzipSync(b));
  const f = parseMoo(b, s.name || src);
  for (const t of f.tests) {
    const form = t.form ?? s.name;
    if (forms && !forms.includes(form)) continue;
    if (revoked.has(t.hash)) { skipped++; continue; }
    let st = stats.get(form);
    if (!st) stats.set(form, (st = newStats()));
    const o = runner.run(t as MooTest, form);
    tally(st, t, o, samples);
    if (dumpFile && o.status === "fail") dump.push(`${form}\t${describe(t, o).replace(/\n\s*/g, "\t")}`);
  }
  const st = stats.get(s.name);
  if (st && !markdown) process.stderr.write(`${s.name}: ${st.pass}/${st.total - sum(st.excluded)} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
}

function sum(m: Map<string, number>): number { let n = 0; for (const v of m.values()) n += v; return n; }
const pct = (a: number, b: number): string => (b === 0 ? "-" : ((100 * a) / b).toFixed(2));

let total = 0, pass = 0, fail = 0;
const excl = new Map<string, number>(), masked = new Map<string, number>();
const rows: string[] = [];
for (const [form, st] of [...stats].sort((a, b) => a[0].localeCompare(b[0]))) {
  const ex = sum(st.excluded);
  total += st.total; pass += st.pass; fail += st.fail;
  for (const [k, v] of st.excluded) excl.set(k, (excl.get(k) ?? 0) + v);
  for (const [k, v] of st.masked) masked.set(k, (masked.get(k) ?? 0) + v);
  const exs = [...st.excluded].map(([k, v]) => `${v} ${k}`).join("; ");
  const ms = [...st.masked].map(([k, v]) => `${v} ${k}`).join("; ");
  rows.push(markdown
    ? `| ${form} | ${st.total} | ${ex} | ${st.pass} | ${st.fail} | ${pct(st.pass, st.total - ex)} | ${[exs, ms].filter(Boolean).join("; ")} |`
    : `${form.padEnd(5)} ${String(st.total).padStart(6)} excl ${String(ex).padStart(5)} pass ${String(st.pass).padStart(6)} fail ${String(st.fail).padStart(5)} ${pct(st.pass, st.total - ex).padStart(7)}%${exs ? "  excluded: " + exs : ""}`);
}
if (markdown) console.log("| form | tests | excluded | pass | fail | pass % | excluded / masked |\n|---|---|---|---|---|---|---|");
console.log(rows.join("\n"));
console.log(`\n${stats.size} forms, ${total} tests (${skipped} revoked skipped), ${total - pass - fail} excluded, ${pass} pass, ${fail} fail: ${pct(pass, pass + fail)}% of compared tests pass (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
if (unreadable.length) console.log(`  not readable (skipped): ${unreadable.join(" ")}`);
for (const [k, v] of excl) console.log(`  excluded, ${k}: ${v}`);
for (const [k, v] of masked) console.log(`  masked, ${k}: ${v} tests`);
if (fail && samples > 0) {
  console.log("\nfailures (first per form):");
  for (const [form, st] of stats) for (const s of st.samples) console.log(`${form} ${s}`);
}
if (dumpFile) require("node:fs").writeFileSync(dumpFile, dump.join("\n") + "\n");
process.exit(fail ? 1 : 0);
