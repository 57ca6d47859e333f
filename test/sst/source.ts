/**
 * Where the SingleStepTests 80286 files come from: a bare git mirror of
 * github.com/SingleStepTests/80286 (read with `git show`), a checkout or a directory of
 * *.MOO(.gz) files, or a single MOO file (such as the CI sample, whose tests name their form).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { parseMoo, type MooFile } from "./moo.ts";

/** The suite when no SOURCE is given: $RRX_SST_DIR, else a clone next to this repository. */
export const DEFAULT_MIRROR = process.env.RRX_SST_DIR ?? "../80286";

export interface SuiteFile {
  /** The form (file name without .MOO.gz, e.g. "F6.7"), or "" for a single file of mixed forms. */
  name: string;
  /** Read and decode it (throws a one-line error when it cannot be read). */
  load(): MooFile;
}

export interface Suite {
  files: SuiteFile[];
  /** Hashes of tests the suite's revocation_list.txt withdraws. */
  revoked: Set<string>;
}

const formOf = (file: string): string => file.replace(/^.*\//, "").replace(/\.MOO(\.gz)?$/i, "");

function decode(b: Uint8Array, where: string): MooFile {
  if (b[0] === 0x1f && b[1] === 0x8b) b = new Uint8Array(gunzipSync(b));
  return parseMoo(b, where);
}

export function parseRevocations(text: string): Set<string> {
  return new Set(text.split("\n").map((l) => l.trim().toLowerCase()).filter((l) => /^[0-9a-f]{40}$/.test(l)));
}

export function openSuite(src: string): Suite {
  if (!existsSync(src)) throw new Error(`${src}: no such file or directory`);
  const files: SuiteFile[] = [];
  let revoked = new Set<string>();
  if (statSync(src).isDirectory() && existsSync(join(src, "HEAD")) && !existsSync(join(src, "v1_real_mode"))) {
    const git = (...a: string[]): Uint8Array => {
      const r = Bun.spawnSync(["git", "-C", src, ...a], { stdout: "pipe", stderr: "pipe" });
      if (r.exitCode !== 0) throw new Error(`git ${a.join(" ")}: ${r.stderr.toString().trim().split("\n")[0]}`);
      return r.stdout;
    };
    const names = new TextDecoder().decode(git("ls-tree", "-r", "--name-only", "HEAD", "v1_real_mode")).split("\n").filter((n) => /\.MOO\.gz$/.test(n));
    for (const n of names) files.push({ name: formOf(n), load: () => decode(git("show", `HEAD:${n}`), n) });
    try { revoked = parseRevocations(new TextDecoder().decode(git("show", "HEAD:revocation_list.txt"))); } catch { /* none */ }
  } else if (statSync(src).isDirectory()) {
    const dir = existsSync(join(src, "v1_real_mode")) ? join(src, "v1_real_mode") : src;
    for (const n of readdirSync(dir).filter((n) => /\.MOO(\.gz)?$/i.test(n)).sort()) {
      files.push({ name: formOf(n), load: () => decode(new Uint8Array(readFileSync(join(dir, n))), n) });
    }
    for (const rl of [join(dir, "revocation_list.txt"), join(dir, "..", "revocation_list.txt")]) {
      if (existsSync(rl)) { revoked = parseRevocations(readFileSync(rl, "utf8")); break; }
    }
  } else {
    files.push({ name: "", load: () => decode(new Uint8Array(readFileSync(src)), src) });
  }
  return { files, revoked };
}
