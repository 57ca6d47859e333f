/**
 * Differential testing of rrx's CPU against the host CPU: random user-level programs from
 * the encoder, the same bytes run natively (harness.c) and in rrx, registers, flags (with the
 * architecturally undefined ones masked, see FLAG_EFFECTS in test/support/x86-encoder.ts) and sandbox memory
 * compared.
 */
import fc from "fast-check";
import { arbProgram, F_ARITH, F_DF, type Program } from "../support/x86-encoder.ts";
import { disasm } from "../../lib/cpu/x86/disasm.ts";
import { runNative, type Case, type Harness, type Result } from "./native.ts";
import { Emu } from "./emu.ts";

export const CODE_BASE = 0x100000, DATA_BASE = 0x108000, DATA_SIZE = 0x1000, STACK_TOP = 0x108800;
const REGN = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];

export interface GenCase extends Case { prog: Program }

function xorshift(seed: number): () => number {
  let s = (seed >>> 0) || 0x9e3779b9;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
}

export function generate(n: number, seed: number, opts: { selfModify?: boolean; unguardedDiv?: boolean; intelFlags?: boolean } = {}): GenCase[] {
  const arb = fc.record({
    prog: arbProgram({ codeBase: CODE_BASE, dataBase: DATA_BASE, dataSize: DATA_SIZE, stackTop: STACK_TOP, selfModify: opts.selfModify ?? true, unguardedDiv: opts.unguardedDiv ?? true, intelFlags: opts.intelFlags ?? false }),
    regs: fc.array(fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(0, 1, 0xffffffff, 0x80000000, 0x7fffffff, 0xff, 0x80)), { minLength: 8, maxLength: 8 }),
    flags: fc.integer({ min: 0, max: 0xffff }),
    dseed: fc.integer({ min: 1, max: 0xffffffff }),
  });
  return fc.sample(arb, { numRuns: n, seed }).map(({ prog, regs, flags, dseed }) => {
    const r = xorshift(dseed);
    const data = new Uint8Array(DATA_SIZE);
    for (let k = 0; k < DATA_SIZE; k++) data[k] = (dseed & 1) && (k & 64) ? k & 0xff : r() & 0xff;
    regs[4] = STACK_TOP;
    return { prog, code: prog.code, regs, eflags: (flags & (F_ARITH | F_DF)) | 0x202, dataAddr: DATA_BASE, data };
  });
}

/** Undefined arithmetic flags at the point a result describes. */
function undefAt(c: GenCase, res: Result): number {
  if (res.status === 0) return c.prog.undefFlags;
  const off = res.eip - CODE_BASE;
  const k = c.prog.offsets.indexOf(off);
  return k >= 0 ? c.prog.undefBefore[k]! : F_ARITH;
}

function undefAtEip(c: GenCase, eip: number): number {
  const off = eip - CODE_BASE;
  if (off === c.code.length) return c.prog.undefFlags;
  const k = c.prog.offsets.indexOf(off);
  return k >= 0 ? c.prog.undefBefore[k]! : F_ARITH;
}

/**
 * Whether the instruction at `eip` is a REPE/REPNE CMPS or SCAS. A single-step trap (or any
 * interrupt) between two of its iterations pushes arithmetic flags that neither the Intel SDM
 * nor the AMD APM defines: both manuals only say the registers are left so that the
 * instruction resumes (Intel adds that a fault restores the flags to their value before the
 * instruction). The hosts differ: Intel CPUs push the flags from before the instruction, AMD
 * CPUs (and rrx) the flags of the last comparison. Since the instruction does not read them and
 * its last iteration sets them all, the trace does not compare them at such a step.
 */
export function isRepCmpStr(code: Uint8Array, off: number): boolean {
  let rep = false;
  for (let k = off; k < code.length && k < off + 15; k++) {
    const b = code[k]!;
    if (b === 0xf2 || b === 0xf3) { rep = true; continue; }
    if (b === 0x66 || b === 0x67 || b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e || b === 0x64 || b === 0x65) continue;
    return rep && (b === 0xa6 || b === 0xa7 || b === 0xae || b === 0xaf);
  }
  return false;
}

/** First difference between two per-instruction traces, or null. */
export function compareTrace(c: GenCase, nat: number[][], emu: number[][]): string | null {
  const n = Math.min(nat.length, emu.length);
  for (let s = 0; s < n; s++) {
    const a = nat[s]!, b = emu[s]!;
    // A step that ends at the instruction it started from is a trap between two iterations of
    // a REP string instruction.
    const midRepCmp = s > 0 && a[0] === nat[s - 1]![0] && isRepCmpStr(c.code, a[0]! - CODE_BASE);
    const mask = (F_ARITH | F_DF) & ~undefAtEip(c, a[0]!) & ~(midRepCmp ? F_ARITH : 0);
    const d: string[] = [];
    if (a[0] !== b[0]) d.push(`eip native ${hex(a[0]!)} rrx ${hex(b[0]!)}`);
    for (let k = 0; k < 8; k++) if (a[k + 1] !== b[k + 1]) d.push(`${REGN[k]} native ${hex(a[k + 1]!)} rrx ${hex(b[k + 1]!)}`);
    if ((a[9]! & mask) !== (b[9]! & mask)) d.push(`eflags native ${hex(a[9]! & mask)} rrx ${hex(b[9]! & mask)} [${flagNames((a[9]! ^ b[9]!) & mask)} differ]`);
    if (d.length) {
      const prev = s > 0 ? nat[s - 1]![0]! : 0;
      const pi = c.prog.offsets.indexOf(prev - CODE_BASE);
      const txt = pi >= 0 ? disasm(c.code.subarray(c.prog.offsets[pi]!, c.prog.offsets[pi + 1] ?? c.code.length), true, prev)[0] : "?";
      const before = s > 0 ? ` before: ${REGN.map((r, k) => `${r}=${hex(nat[s - 1]![k + 1]!)}`).join(" ")} eflags=${hex(nat[s - 1]![9]!)}` : "";
      return `step ${s}, after ${txt?.trim()}:${before}\n      ${d.join("; ")}`;
    }
  }
  if (nat.length !== emu.length) return `trace length: native ${nat.length}, rrx ${emu.length}`;
  return null;
}

/** Differences between the native and emulated results (empty = agree). */
export function compare(c: GenCase, nat: Result, emu: Result): string[] {
  const d: string[] = [];
  if (nat.trace.length || emu.trace.length) {
    const t = compareTrace(c, nat.trace, emu.trace);
    if (t) d.push("trace: " + t);
  }
  if (nat.status !== emu.status) {
    d.push(`status: native ${nat.status}${nat.status ? ` (vector ${nat.vector} at ${nat.eip.toString(16)})` : ""}, rrx ${emu.status}${emu.status > 0 ? ` (vector ${emu.vector} at ${emu.eip.toString(16)})` : emu.status < 0 ? ` (no end, eip ${emu.eip.toString(16)})` : ""}`);
    return d;
  }
  if (nat.status !== 0 && nat.eip !== emu.eip) d.push(`fault eip: native ${nat.eip.toString(16)}, rrx ${emu.eip.toString(16)}`);
  for (let k = 0; k < 8; k++) if (nat.regs[k] !== emu.regs[k]) d.push(`${REGN[k]}: native ${hex(nat.regs[k]!)}, rrx ${hex(emu.regs[k]!)}`);
  const mask = (F_ARITH | F_DF) & ~undefAt(c, nat);
  if ((nat.eflags & mask) !== (emu.eflags & mask)) d.push(`eflags (mask ${hex(mask)}): native ${hex(nat.eflags & mask)}, rrx ${hex(emu.eflags & mask)} [${flagNames((nat.eflags ^ emu.eflags) & mask)} differ]`);
  const bad: number[] = [];
  for (let k = 0; k < nat.data.length; k++) if (nat.data[k] !== emu.data[k]) bad.push(k);
  if (bad.length) {
    const show = bad.slice(0, 8).map((k) => `${hex(c.dataAddr + k)}: native ${nat.data[k]!.toString(16)} rrx ${emu.data[k]!.toString(16)}`);
    d.push(`memory: ${bad.length} bytes differ (${show.join("; ")})`);
  }
  return d;
}

const hex = (v: number) => "0x" + (v >>> 0).toString(16).padStart(8, "0");
function flagNames(f: number): string {
  const n: string[] = [];
  for (const [b, s] of [[1, "CF"], [4, "PF"], [0x10, "AF"], [0x40, "ZF"], [0x80, "SF"], [0x800, "OF"], [0x400, "DF"]] as const) if (f & b) n.push(s);
  return n.join(" ");
}

export function report(c: GenCase, idx: number, seed: number, diffs: string[]): string {
  const lines = [
    `--- divergence in case ${idx} (seed ${seed}) ---`,
    `initial: ${REGN.map((r, k) => `${r}=${hex(c.regs[k]!)}`).join(" ")} eflags=${hex(c.eflags)}`,
    ...disasm(c.code, true, CODE_BASE).map((l) => "  " + l),
    ...diffs.map((x) => "  ! " + x),
  ];
  return lines.join("\n");
}

export interface RunSummary { cases: number; faults: number; divergences: { idx: number; text: string; diffs: string[] }[] }

export function difftest(h: Harness, n: number, seed: number, opts: { selfModify?: boolean; unguardedDiv?: boolean; batch?: number; trace?: boolean } = {}): RunSummary {
  const trace = opts.trace ?? true;
  const emu = new Emu();
  const sum: RunSummary = { cases: 0, faults: 0, divergences: [] };
  const batch = opts.batch ?? 1000;
  for (let start = 0; start < n; start += batch) {
    // On an Intel host the flags Intel defines beyond the SDM (and rrx matches) are compared too.
    const cases = generate(Math.min(batch, n - start), seed + start, { intelFlags: h.vendor === "GenuineIntel", ...opts });
    const nat = runNative(h, cases, trace);
    for (let k = 0; k < cases.length; k++) {
      const c = cases[k]!;
      const e = trace ? emu.runTraced(c) : emu.run(c);
      sum.cases++;
      if (nat[k]!.status !== 0) sum.faults++;
      const diffs = compare(c, nat[k]!, e);
      if (diffs.length) sum.divergences.push({ idx: start + k, text: report(c, start + k, seed + start, diffs), diffs });
    }
  }
  return sum;
}
