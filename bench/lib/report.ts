/** Text rendering of bench results: one table per case, then every ratio in one block. */
import type { CaseResult, Metric } from "./types.ts";

export function fmtNum(v: number | null, digits?: number): string {
  if (v === null || !Number.isFinite(v)) return v === null ? "-" : String(v);
  if (digits !== undefined) return v.toFixed(digits);
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (Number.isInteger(v)) return a >= 1e4 ? v.toLocaleString("en-US") : String(v);
  if (a >= 1e6) return Math.round(v).toLocaleString("en-US");
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a >= 0.01) return v.toFixed(3);
  return v.toPrecision(2);
}

export function fmtMetric(m: Metric): string {
  const n = fmtNum(m.value, m.digits);
  if (m.value === null) return n;
  if (m.unit === "x") return `${n}x`;
  return m.unit ? `${n} ${m.unit}` : n;
}

export function formatTable(order: string[], titles: Record<string, string>, results: Record<string, CaseResult>): string {
  const lines: string[] = [];
  const width = 46;
  for (const name of order) {
    const r = results[name];
    if (!r) continue;
    const status = r.status === "ok" ? "" : `  [${r.status}]`;
    const secs = r.seconds !== undefined ? `  (${r.seconds.toFixed(1)} s)` : "";
    lines.push(`== ${name}: ${titles[name] ?? ""}${status}${secs}`);
    for (const m of r.metrics) {
      const mark = m.ratio ? "*" : " ";
      lines.push(`  ${mark} ${m.label.padEnd(width)} ${fmtMetric(m).padStart(16)}${m.note ? `   ${m.note}` : ""}`);
    }
    for (const n of r.notes ?? []) lines.push(`    ${n}`);
    lines.push("");
  }
  return lines.join("\n");
}

export function formatRatios(results: Record<string, CaseResult>): string {
  const rows: string[] = [];
  let missing = 0;
  for (const [name, r] of Object.entries(results)) {
    for (const m of r.metrics) {
      if (!m.ratio) continue;
      if (m.value === null) { missing++; continue; }
      rows.push(`  ${`${name}: ${m.label}`.padEnd(64)} ${fmtMetric(m).padStart(10)}`);
    }
  }
  if (missing) rows.push(`  (${missing} more not measured in this run: pending, skipped or --quick)`);
  if (!rows.length) return "";
  return ["== RATIOS (all from this run; \"a / b (speed)\" is MIPS over MIPS: above 1, a is faster)", ...rows, ""].join("\n");
}
