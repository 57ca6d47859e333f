/**
 * What every rrx command shares: input files, the file a recording goes to, sizes and dates
 * given on the command line, and the exit-status convention:
 *
 *   2   usage and input errors (bad options, missing/unreadable/wrong files, a full disk)
 *   3   divergence (replay --verify)
 *   4   replay --verify: everything in the log verified, but the log is truncated
 *   70  an internal error (a bug in rrx)
 *   128+n  stopped by signal n (run: 129 SIGHUP, 130 SIGINT, 143 SIGTERM; 141 stdout closed)
 */
import { closeSync, openSync, readFileSync, readSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { BootError } from "../lib/boot/elf.ts";
import { LogError, MAGIC } from "../lib/replay/log/format.ts";
import { ScriptError } from "../lib/machine/script.ts";

export class UsageError extends Error {}

/** Exit status of `replay --verify` when the log verified but is truncated. */
export const EXIT_TRUNCATED = 4;

/** Errors a user can cause (exit 2); anything else is a bug (exit 70). */
export function isUserError(e: unknown): boolean {
  if (e instanceof UsageError || e instanceof BootError || e instanceof LogError || e instanceof ScriptError) return true;
  if (e instanceof Error && /^(Unknown option|missing required args|Unused args|option `.*` value is missing)/i.test(e.message)) return true;
  return false;
}

/** Read a file the user named; a missing file, a directory or an unreadable file is a UsageError. */
export function readInput(path: string, what: string): Uint8Array {
  checkInput(path, what);
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new UsageError(`${path}: cannot read ${what} file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

/** Check that a file the user named exists and is not a directory (a UsageError if not). */
export function checkInput(path: string, what: string): void {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(code === "ENOENT" || code === "ENOTDIR" ? `${path}: no such ${what} file` : `${path}: cannot open ${what} file (${code})`);
  }
  if (st.isDirectory()) throw new UsageError(`${path} is a directory (give the ${what} file)`);
}

/**
 * Check the file a recording will be written to. Refused: a directory, any file the run reads
 * (kernel, modules, ROM, input script: compared by device and inode, so links and other
 * spellings of the path are caught), an existing file that is not an rrx log (an empty file is
 * fine), and an existing rrx log unless `force`.
 */
export function checkRecordTarget(path: string, inputs: { path: string; role: string }[], force: boolean): void {
  if (path === "" || path === "true") throw new UsageError("--record: give the file to record to");
  let st;
  try {
    st = statSync(path);
  } catch {
    return; // does not exist yet (a missing directory is reported when it is created)
  }
  if (st.isDirectory()) throw new UsageError(`--record: ${path} is a directory; give a file name`);
  if (!st.isFile()) throw new UsageError(`--record: ${path} is not a regular file (a device, a FIFO or a socket); give a file name`);
  for (const i of inputs) {
    let s;
    try { s = statSync(i.path); } catch { continue; }
    if (s.dev === st.dev && s.ino === st.ino) throw new UsageError(`--record: ${path} is the ${i.role} of this run; record to another file`);
  }
  if (st.size === 0) return;
  const head = new Uint8Array(MAGIC.length);
  let n = 0;
  try {
    const fd = openSync(path, "r");
    try { n = readSync(fd, head, 0, head.length, 0); } finally { closeSync(fd); }
  } catch (e) {
    throw new UsageError(`--record: ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const isLog = n === MAGIC.length && head.every((b, k) => b === MAGIC[k]);
  if (!isLog) throw new UsageError(`--record: ${path} exists and is not an rrx recording; refusing to overwrite it`);
  if (!force) throw new UsageError(`--record: ${path} is an existing recording; give --force to overwrite it`);
}

/**
 * What identifies a file: its device and inode if it exists (so links and other spellings of
 * the path match), else its absolute path with the directory's links resolved.
 */
function fileId(path: string): string {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    try { return resolve(realpathSync(dirname(path)), basename(path)); } catch { return resolve(path); }
  }
}

/**
 * Check the files guest output is written to (`--serial file:PATH` and the like, which are
 * truncated when opened): none may be a file the command reads or writes otherwise (the
 * kernel, a module, the ROM, the input script, the log being recorded or replayed).
 */
export function checkOutputFiles(outputs: { path: string; flag: string }[], files: { path: string; role: string }[]): void {
  for (const o of outputs) {
    const id = fileId(o.path);
    for (const f of files) {
      if (fileId(f.path) === id) throw new UsageError(`${o.flag}: file:${o.path} is the ${f.role} of this run; write guest output to another file`);
    }
  }
}

/** Sizes of guest RAM: MiB by default, or with QEMU's suffixes (K, M, G); 1 MiB to 3 GiB. */
export function parseMemSize(v: unknown): number {
  const s = String(v);
  const range = `-m: expected a RAM size from 1M to 3072M (MiB, or with a suffix M or G, e.g. 64M, 1G), got '${s}'`;
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG]i?[bB]?)?$/.exec(s.trim());
  if (!m) throw new UsageError(range);
  const unit = (m[2] ?? "M")[0]!.toUpperCase();
  const bytes = parseFloat(m[1]!) * (unit === "K" ? 1024 : unit === "G" ? 1024 ** 3 : 1024 ** 2);
  if (!Number.isFinite(bytes) || bytes % (1024 * 1024) !== 0 || bytes < 1024 * 1024 || bytes > 3072 * 1024 * 1024) throw new UsageError(range);
  return bytes;
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * An RTC start date in seconds: ISO 8601 (`2026-01-01`, `2026-01-01T12:00:00Z`, with an
 * optional `+hh:mm` offset; without a zone a date and time is local time, a bare date UTC).
 * Impossible dates and anything else are refused.
 */
export function parseDate(v: unknown, flag: string): number {
  const s = String(v);
  const bad = () => new UsageError(`${flag}: expected a date like 2026-01-01T00:00:00Z, got '${s}'`);
  // ISO 8601 only (Date.parse alone takes '5' for May 2001).
  const d = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/.exec(s);
  if (!d) throw bad();
  {
    const y = Number(d[1]), mo = Number(d[2]), day = Number(d[3]);
    const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
    const dim = mo === 2 && leap ? 29 : DAYS[mo - 1];
    if (dim === undefined || day < 1 || day > dim) throw new UsageError(`${flag}: ${s}: no such date`);
    if (d[4] !== undefined && (Number(d[4]) > 23 || Number(d[5]) > 59 || Number(d[6] ?? 0) > 59)) throw new UsageError(`${flag}: ${s}: no such time of day`);
  }
  const t = Date.parse(s);
  if (!Number.isFinite(t)) throw bad();
  return Math.floor(t / 1000);
}
