/**
 * Differential test against the host CPU.
 *   bun test/difftest/run.ts [--cases N] [--seed S] [--show K] [--no-trace]
 * By default every instruction is single-stepped natively (TF) and compared after each step.
 * Prints the number of cases run and every divergence (disassembly, initial state, diffs).
 * A divergence in case i of a batch starting at seed S is reproduced with the same seed.
 */
import { buildHarness } from "./native.ts";
import { difftest } from "./difftest.ts";

const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const k = args.indexOf(name);
  return k >= 0 ? Number(args[k + 1]) : def;
};
const cases = opt("--cases", 5000);
const seed = opt("--seed", Date.now() % 1_000_000);
const show = opt("--show", 10);

const h = buildHarness();
if (typeof h === "string") {
  console.log(`difftest skipped: ${h}`);
  process.exit(0);
}
try {
  const t0 = performance.now();
  const s = difftest(h, cases, seed, { trace: !args.includes("--no-trace") });
  for (const d of s.divergences.slice(0, show)) console.log(d.text + "\n");
  console.log(`difftest: ${s.cases} cases (seed ${seed}), ${s.faults} faulted natively, ${s.divergences.length} divergences, ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  process.exitCode = s.divergences.length ? 1 : 0;
} finally {
  h.dispose();
}
