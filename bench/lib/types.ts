/**
 * The bench suite's contract. A case is one file in bench/cases/ whose default export is a
 * BenchCase; the runner (bench/run.ts) finds it, runs it in its own process and prints its
 * metrics. Adding a measurement is adding one file.
 */

export type Preset = "quick" | "default" | "full";

export interface Metric {
  /** Stable key, unique within the case (results.json uses `${case}.${key}`). */
  key: string;
  label: string;
  /** null: not measured (pending, skipped, failed). */
  value: number | null;
  /** "MIPS", "s", "ms", "B", "x" (a ratio), ... */
  unit: string;
  /** A ratio between two figures of the same run: printed again in the ratio summary. */
  ratio?: boolean;
  digits?: number;
  note?: string;
}

export type CaseStatus = "ok" | "pending" | "skipped" | "error";

export interface CaseResult {
  status: CaseStatus;
  metrics: Metric[];
  /** Free-form lines printed under the case (what was run, caveats). */
  notes?: string[];
  /** Anything else worth keeping in results.json (raw timings, counts). */
  raw?: Record<string, unknown>;
  /** Wall time the case took, filled in by the runner. */
  seconds?: number;
}

export interface BenchContext {
  preset: Preset;
  /** Pick a value by preset. */
  scale<T>(quick: T, dflt: T, full: T): T;
  /** Repository root (the process's cwd). */
  root: string;
  /** A scratch directory for this case, removed afterwards. */
  tmp: string;
  /** Results of the cases that ran before this one (same run). */
  prior: Record<string, CaseResult>;
  /** A metric of an earlier case, if it was measured. */
  metric(caseName: string, key: string): number | undefined;
  /** Progress line on stderr. */
  log(msg: string): void;
  /**
   * Run `subs[name](args)` of this case in a fresh process and return its (JSON) result. Use it
   * to time things that must not share a JIT: a single-step run after a block-cache run in the
   * same process measures the first one's leftovers as much as the second. The sub-process
   * gets the same preset and the same `tmp` directory.
   */
  sub<T = unknown>(name: string, args?: unknown): Promise<T>;
}

export interface BenchCase {
  /** Short unique name (kebab-case); the key in results.json. */
  name: string;
  title: string;
  /** Run order (lower first; cases that use earlier results come later). */
  order: number;
  run(ctx: BenchContext): Promise<CaseResult> | CaseResult;
  /** Wall-time limit of the case's process, when it needs more than the preset's (bench/run.ts). */
  timeoutS?: number;
  /** Pieces run in their own processes through ctx.sub(). Arguments and results are JSON. */
  subs?: Record<string, (args: any, ctx: BenchContext) => unknown>;
}

/** A case that exists so its figures have a place in the table, to be filled in later. */
export function pending(note: string, metrics: Omit<Metric, "value">[]): CaseResult {
  return { status: "pending", metrics: metrics.map((m) => ({ ...m, value: null })), notes: [note] };
}
