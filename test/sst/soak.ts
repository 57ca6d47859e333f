/**
 * Run the whole SingleStepTests 80286 real-mode suite (or some forms of it) on rrx and print a
 * per-form pass-rate table.
 *
 *   bun test/sst/soak.ts [SOURCE] [--blocks] [--forms F6.6,D3.4] [--samples N] [--markdown] [--revoked FILE]
 *
 * SOURCE is a bare git mirror of github.com/SingleStepTests/80286 (read with `git show`; default
 * $RRX_SST_DIR, else ../80286), a directory of *.MOO.gz files (v1_real_mode or a
 * copy), or a single .MOO(.gz) file (the CI sample, fixtures/sst/80286-sample.moo.gz). Tests whose
 * hash is in the suite's revocation_list.txt are skipped. Exit status 1 if any non-excluded test
 * fails.
 */
import { type MooFile } from "./moo.ts";
import { SstRunner, describe, newStats, tally, type FormStats } from "./runner.ts";
import { DEFAULT_MIRROR, openSuite, parseRevocations, type Suite } from "./source.ts";

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
const jit = flag("--blocks");
const dumpFile = opt("--dump");
const revokedFile = opt("--revoked");
const dump: string[] = [];
const src = args[0] ?? DEFAULT_MIRROR;
let suite: Suite;
try {
  suite = openSuite(src);
  if (revokedFile) suite.revoked = parseRevocations(require("node:fs").readFileSync(revokedFile, "utf8"));
} catch (e) {
  console.error(`soak: ${(e as Error).message}`);
  process.exit(2);
}
const revoked = suite.revoked;

const runner = new SstRunner(jit);
const stats = new Map<string, FormStats>();
const t0 = Date.now();
let skipped = 0;
const unreadable: string[] = [];
for (const s of suite.files) {
  if (forms && s.name && !forms.includes(s.name)) continue;
  let f: MooFile;
  try { f = s.load(); } catch (e) {
    unreadable.push(s.name);
    process.stderr.write(`${s.name}: not readable, skipped (${(e as Error).message})\n`);
    continue;
  }
  for (const t of f.tests) {
    const form = t.form ?? s.name;
    if (forms && !forms.includes(form)) continue;
    if (revoked.has(t.hash)) { skipped++; continue; }
    let st = stats.get(form);
    if (!st) stats.set(form, (st = newStats()));
    const o = runner.run(t, form);
    tally(st, t, o, samples);
    if (dumpFile && o.status === "fail") dump.push(`${form}\t${describe(t, o).replace(/\n\s*/g, "\t")}`);
  }
  const st = stats.get(s.name);
  if (st && !markdown) process.stderr.write(`${s.name}: ${st.pass}/${st.total - sum(st.excluded)} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
}

function sum(m: Map<string, number>): number { let n = 0; for (const v of m.values()) n += v; return n; }
const pct = (a: number, b: number): string => (b === 0 ? "-" : ((100 * a) / b).toFixed(2));

let total = 0, pass = 0, fail = 0;
const excl = new Map<string, number>(), masked = new Map<string, number>(), maskedDiffer = new Map<string, number>();
const rows: string[] = [];
for (const [form, st] of [...stats].sort((a, b) => a[0].localeCompare(b[0]))) {
  const ex = sum(st.excluded);
  total += st.total; pass += st.pass; fail += st.fail;
  for (const [k, v] of st.excluded) excl.set(k, (excl.get(k) ?? 0) + v);
  for (const [k, v] of st.masked) masked.set(k, (masked.get(k) ?? 0) + v);
  for (const [k, v] of st.maskedDiffer) maskedDiffer.set(k, (maskedDiffer.get(k) ?? 0) + v);
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
for (const [k, v] of masked) console.log(`  masked, ${k}: ${v} tests, ${maskedDiffer.get(k) ?? 0} of them differing there`);
if (fail && samples > 0) {
  console.log("\nfailures (first per form):");
  for (const [form, st] of stats) for (const s of st.samples) console.log(`${form} ${s}`);
}
if (dumpFile) require("node:fs").writeFileSync(dumpFile, dump.join("\n") + "\n");
process.exit(fail ? 1 : 0);
