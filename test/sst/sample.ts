/**
 * Write the CI sample of the SingleStepTests 80286 suite: from every form, the N tests with the
 * smallest hashes (a deterministic, unbiased choice), revoked tests left out, without their bus
 * cycles, each tagged with its form, as one gzip'd MOO file.
 *
 *   bun test/sst/sample.ts [SOURCE] [--per-form N] [--out FILE]
 *
 * Defaults: the mirror of test/sst/source.ts, 24 per form, fixtures/sst/80286-sample.moo.gz.
 */
import { writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { stripTest, writeMoo } from "./moo.ts";
import { DEFAULT_MIRROR, openSuite } from "./source.ts";

const args = process.argv.slice(2);
const opt = (name: string, def: string): string => {
  const k = args.indexOf(name);
  if (k < 0) return def;
  const v = args[k + 1] ?? def;
  args.splice(k, 2);
  return v;
};
const perForm = Number(opt("--per-form", "24"));
const out = opt("--out", "fixtures/sst/80286-sample.moo.gz");
const suite = openSuite(args[0] ?? DEFAULT_MIRROR);
const chunks: Uint8Array[] = [];
const missing: string[] = [];
let cpu = "C286", version = 1;
for (const f of suite.files) {
  let file;
  try { file = f.load(); } catch { missing.push(f.name); continue; }
  cpu = file.cpu; version = file.version;
  const picked = file.tests.filter((t) => !suite.revoked.has(t.hash)).sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0)).slice(0, perForm);
  picked.sort((a, b) => a.idx - b.idx);
  for (const t of picked) chunks.push(stripTest(t, f.name));
}
const gz = gzipSync(writeMoo(cpu, version, chunks), { level: 9 });
writeFileSync(out, gz);
console.log(`${out}: ${chunks.length} tests, ${gz.length} bytes${missing.length ? `; not readable: ${missing.join(" ")}` : ""}`);
