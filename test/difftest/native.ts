/**
 * The native oracle: builds harness.c with `gcc -m32` into a temp dir and runs batches of
 * cases on the host CPU.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Case {
  code: Uint8Array;
  /** EAX..EDI (ESP included). */
  regs: number[];
  eflags: number;
  dataAddr: number;
  data: Uint8Array;
}

export interface Result {
  /** 0 = ran to the end; else the signal number (SIGFPE 8, SIGSEGV 11, SIGILL 4, SIGBUS 7, SIGTRAP 5); -1 = no end (budget). */
  status: number;
  /** EIP of the faulting instruction (status != 0). */
  eip: number;
  /** x86 exception vector of a fault, if known. */
  vector: number;
  regs: number[];
  eflags: number;
  data: Uint8Array;
  /** With TF in the input flags: the state after each step (first = entry), [eip, eax..edi, eflags]. */
  trace: number[][];
}

export interface Harness {
  bin: string;
  dir: string;
  /** The host CPU's vendor (CPUID leaf 0), e.g. "GenuineIntel"; "" when unknown. */
  vendor: string;
  dispose(): void;
}

/** The host CPU's vendor string, from /proc/cpuinfo ("" when it cannot be read). */
export function hostVendor(): string {
  try {
    return /^vendor_id\s*:\s*(\S+)/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "";
  } catch {
    return "";
  }
}

/** Compile the harness; returns a reason string when the host cannot build or run 32-bit code. */
export function buildHarness(): Harness | string {
  if (process.arch !== "x64" && process.arch !== "ia32") return `host is ${process.arch}, not x86`;
  const dir = mkdtempSync(join(tmpdir(), "rrx-difftest-"));
  const bin = join(dir, "harness");
  const src = join(import.meta.dir, "harness.c");
  let r;
  try {
    r = Bun.spawnSync({ cmd: ["gcc", "-m32", "-O1", "-no-pie", "-fno-pie", "-o", bin, src], stderr: "pipe", stdout: "pipe" });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return `gcc not available (${(e as Error).message})`;
  }
  if (r.exitCode !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return `gcc -m32 cannot build the harness: ${r.stderr.toString().split("\n").slice(0, 3).join(" ")}`;
  }
  const h: Harness = { bin, dir, vendor: hostVendor(), dispose: () => rmSync(dir, { recursive: true, force: true }) };
  // Smoke run: an empty program must come back with its registers.
  try {
    const [res] = runNative(h, [{ code: new Uint8Array(0), regs: [1, 2, 3, 4, 0x108800, 6, 7, 8], eflags: 0x202, dataAddr: 0x108000, data: new Uint8Array(16) }]);
    if (!res || res.status !== 0 || res.regs[3] !== 4) { h.dispose(); return "harness smoke test failed"; }
  } catch (e) {
    h.dispose();
    return `harness cannot run: ${(e as Error).message}`;
  }
  return h;
}

/** Run cases natively; with `trace` every instruction is single-stepped and its state recorded. */
export function runNative(h: Harness, cases: Case[], trace = false): Result[] {
  let size = 0;
  for (const c of cases) size += 12 + 36 + c.code.length + c.data.length;
  const buf = new Uint8Array(size);
  const dv = new DataView(buf.buffer);
  let p = 0;
  for (const c of cases) {
    dv.setUint32(p, c.code.length, true); dv.setUint32(p + 4, c.dataAddr, true); dv.setUint32(p + 8, c.data.length, true); p += 12;
    for (let k = 0; k < 8; k++) { dv.setUint32(p, c.regs[k]! >>> 0, true); p += 4; }
    dv.setUint32(p, (trace ? c.eflags | 0x100 : c.eflags & ~0x100) >>> 0, true); p += 4;
    buf.set(c.code, p); p += c.code.length;
    buf.set(c.data, p); p += c.data.length;
  }
  const r = Bun.spawnSync({ cmd: [h.bin], stdin: buf, stdout: "pipe", stderr: "pipe", timeout: 120_000 });
  if (r.exitCode !== 0) throw new Error(`harness exited ${r.exitCode}: ${r.stderr.toString()}`);
  const o = r.stdout;
  const ov = new DataView(o.buffer, o.byteOffset, o.byteLength);
  const res: Result[] = [];
  let q = 0;
  for (const c of cases) {
    if (q + 56 + c.data.length > o.length) throw new Error("harness output truncated");
    const status = ov.getUint32(q, true), eip = ov.getUint32(q + 4, true), trap = ov.getUint32(q + 8, true);
    q += 16;
    const ns = ov.getUint32(q, true); q += 4;
    const trace: number[][] = [];
    for (let s = 0; s < ns; s++) { const t: number[] = []; for (let k = 0; k < 10; k++) { t.push(ov.getUint32(q, true)); q += 4; } trace.push(t); }
    const regs: number[] = [];
    for (let k = 0; k < 8; k++) { regs.push(ov.getUint32(q, true)); q += 4; }
    const eflags = ov.getUint32(q, true); q += 4;
    const data = o.slice(q, q + c.data.length); q += c.data.length;
    res.push({ status, eip, vector: status ? trap : -1, regs, eflags, data, trace });
  }
  return res;
}
