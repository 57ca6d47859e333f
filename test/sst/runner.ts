/**
 * Run SingleStepTests 80286 real-mode tests (moo.ts) on rrx's x86 CPU (the i686 model, real
 * mode, 16 MiB of RAM, A20 enabled) and compare the final registers and RAM.
 *
 * Each test is one instruction followed by HLT; on the 286 the HLT ends the test, and when the
 * instruction transfers control (a jump, an interrupt, an exception) the test rig injects the
 * HLT at the first fetch from the new CS:IP. The final IP is therefore the one after that HLT.
 * Here the instruction under test runs alone (a REP string instruction until its count runs
 * out or it stops, an exception until its delivery) and the HLT is accounted for by adding 1
 * to IP, except in the HLT tests themselves (form F4).
 *
 * The initial FLAGS image is the value the generator gave the 286's LOADALL, whose bits 12-15
 * (IOPL, NT, bit 15) a 286 in real mode never holds (the suite's README): they are cleared
 * before loading. Exclusions and masked flags: exclusions.ts.
 */
import { Cpu, Stop, EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI } from "../../lib/cpu/x86/cpu.ts";
import { CS, DS, ES, SS, FS, GS } from "../../lib/cpu/x86/decode.ts";
import { PhysMem } from "../../lib/machine/ram.ts";
import type { CpuBus } from "../../lib/cpu/x86/bus.ts";
import { MODEL_I686 } from "../../lib/cpu/x86/model.ts";
import { REG_NAMES, R_CS, R_CX, R_FLAGS, R_IP, R_SP, R_SS, type MooTest } from "./moo.ts";
import { classify, type Verdict } from "./exclusions.ts";

const RAM = 16 << 20;
/** rrx register index for each MOO register (REG_NAMES order); segments as 100 + segment number. */
const REG_MAP = [EAX, EBX, ECX, EDX, 100 + CS, 100 + SS, 100 + DS, 100 + ES, ESP, EBP, ESI, EDI];

export interface Outcome {
  /** "pass", "fail" or "excluded". */
  status: "pass" | "fail" | "excluded";
  verdict: Verdict;
  /** What differed (fail only). */
  diffs: string[];
  /** Whether the test differed in a masked flag or register (so the mask mattered). */
  maskedDiffer?: boolean;
}

export class SstRunner {
  readonly mem = new PhysMem(RAM);
  readonly cpu: Cpu;
  private readonly dirty: Uint8Array;
  /** Expected byte per address (the initial bytes, then the final ones over them). */
  private readonly expect = new Map<number, number>();

  /**
   * With `jit`, the CPU runs whole blocks from the block cache (jitThreshold 1, so that a block
   * is offered to the translator on its first execution; the translator takes 32-bit code only,
   * so real-mode blocks stay interpreted) and the HLT really runs: the test's own HLT after the
   * instruction, or one written at the 286's final CS:IP - 1 (where its rig injected it) for
   * the time of the run. Without, the interpreter runs one instruction at a time (the reference
   * single-step mode).
   */
  constructor(readonly jit = false) {
    const bus: CpuBus = {
      ram: this.mem.ram,
      physRead8: () => 0xff,
      physWrite8: () => {},
      // The suite: every IN reads all ones.
      ioRead: (_port, size) => (size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff),
      ioWrite: () => {},
      readTsc: () => 0,
      ackInterrupt: () => 0,
    };
    this.cpu = new Cpu(bus, this.mem, MODEL_I686);
    this.cpu.singleStep = !jit;
    this.cpu.noJit = !jit;
    if (jit) this.cpu.jitThreshold = 1;
    this.cpu.stopOnDelivery = true;
    this.dirty = this.mem.addDirtyTracker();
    this.cpu.onDeliver = (vec) => { if (this.firstVector < 0) this.firstVector = vec; };
  }

  /** The first vector delivered by the last test (-1: none). */
  firstVector = -1;
  /** Whether the last test differed in a masked flag or register. */
  maskedDiffer = false;

  /** Run one test of the suite file `form` (e.g. "F6.7"). */
  run(t: MooTest, form: string): Outcome {
    const verdict = classify(form, t);
    if (verdict.excluded !== null) {
      if (verdict.expectVector === null) return { status: "excluded", verdict, diffs: [] };
      // What the i686 must do instead, by the SDM: deliver this vector (checked, not the rest).
      this.execute(t, form, 0, 0);
      if (this.firstVector === verdict.expectVector) return { status: "excluded", verdict, diffs: [] };
      return { status: "fail", verdict, diffs: [`excluded (${verdict.excluded}), but the i686 delivered vector ${this.firstVector} where the SDM gives ${verdict.expectVector}`] };
    }
    const diffs = this.execute(t, form, verdict.flagMask, verdict.pushedFlagMask, verdict.regMask);
    return { status: diffs.length === 0 ? "pass" : "fail", verdict, diffs, maskedDiffer: this.maskedDiffer };
  }

  /** Load, execute, compare, clean up; returns the differences found. */
  execute(t: MooTest, form: string, flagMask: number, pushedFlagMask: number, regMask: number[] = []): string[] {
    const { cpu, mem } = this;
    const ram = mem.ram;
    const ini = t.initial, fin = t.final;
    cpu.reset();
    for (let k = 0; k < ini.addrs.length; k++) ram[ini.addrs[k]!] = ini.values[k]!;
    for (let k = 0; k < ini.addrs.length; k++) cpu.invalidatePage(ini.addrs[k]! >>> 12);
    mem.clearTracker(this.dirty);
    for (let r = 0; r < 12; r++) {
      const m = REG_MAP[r]!, v = ini.regs[r]!;
      if (m >= 100) cpu.loadSegReal(m - 100, v);
      else cpu.regs[m] = v;
    }
    cpu.loadSegReal(FS, 0);
    cpu.loadSegReal(GS, 0);
    cpu.eip = ini.regs[R_IP]!;
    cpu.setFlags((ini.regs[R_FLAGS]! & 0x0fff) | 2);
    cpu.modeChanged();

    const diffs: string[] = [];
    this.firstVector = -1;
    this.maskedDiffer = false;
    const stop = this.jit ? this.stepJit(t, form) : this.step(t, form);
    if (stop !== null) diffs.push(stop);

    // Registers.
    for (let r = 0; r < REG_NAMES.length; r++) {
      let want = fin.regs[r]! >= 0 ? fin.regs[r]! : ini.regs[r]!;
      let got: number;
      if (r === R_IP) got = cpu.eip & 0xffff;
      else if (r === R_FLAGS) got = cpu.getFlags() & 0xffff;
      else { const m = REG_MAP[r]!; got = m >= 100 ? cpu.sel[m - 100]! : cpu.regs[m]! & 0xffff; }
      if (r === R_FLAGS) {
        if ((want ^ got) & flagMask) this.maskedDiffer = true;
        want &= ~flagMask; got &= ~flagMask;
      }
      if (regMask.includes(r)) { if (got !== want) this.maskedDiffer = true; continue; }
      if (got !== want) diffs.push(`${REG_NAMES[r]} ${hex(got)} want ${hex(want)}`);
    }
    for (const r of [EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI]) {
      if (cpu.regs[r]! >>> 16) diffs.push(`upper half of register ${r} set: ${hex(cpu.regs[r]!)}`);
    }

    // RAM: every listed byte, and every byte of every page the CPU wrote.
    const expect = this.expect;
    expect.clear();
    for (let k = 0; k < ini.addrs.length; k++) expect.set(ini.addrs[k]!, ini.values[k]!);
    for (let k = 0; k < fin.addrs.length; k++) expect.set(fin.addrs[k]!, fin.values[k]!);
    // The FLAGS image an exception pushed: at SS:SP+4 of the final state (the suite's EXCP
    // address is that rounded down to even when SP is odd, so it is not used).
    const fsp = fin.regs[R_SP]! >= 0 ? fin.regs[R_SP]! : ini.regs[R_SP]!, fss = fin.regs[R_SS]! >= 0 ? fin.regs[R_SS]! : ini.regs[R_SS]!;
    const fa = t.exception ? (fss << 4) + ((fsp + 4) & 0xffff) : -1, fa1 = t.exception ? (fss << 4) + ((fsp + 5) & 0xffff) : -1;
    const check = (a: number, want: number) => {
      let got = ram[a]!;
      if ((a === fa && (got ^ want) & pushedFlagMask & 0xff) || (a === fa1 && (got ^ want) & (pushedFlagMask >> 8) & 0xff)) this.maskedDiffer = true;
      if (a === fa) { got &= ~pushedFlagMask & 0xff; want &= ~pushedFlagMask & 0xff; }
      else if (a === fa1) { got &= ~(pushedFlagMask >> 8) & 0xff; want &= ~(pushedFlagMask >> 8) & 0xff; }
      if (got !== want) diffs.push(`ram[${hex(a)}] ${hex(ram[a]!)} want ${hex(want)}`);
    };
    for (const [a, v] of expect) check(a, v);
    const d = this.dirty;
    for (let pg = 0; pg < d.length; pg++) {
      if (!d[pg]) continue;
      const base = pg << 12;
      for (let a = base; a < base + 4096; a++) if (ram[a] !== 0 && !expect.has(a)) check(a, 0);
      ram.fill(0, base, base + 4096);
      cpu.invalidatePage(pg);
    }
    for (let k = 0; k < ini.addrs.length; k++) ram[ini.addrs[k]!] = 0;
    return diffs;
  }

  /**
   * Execute the instruction under test: one instruction, all iterations of a REP string
   * instruction, or up to the delivery of an exception; then account for the HLT.
   * Returns a description of an unexpected stop, or null.
   */
  private stepJit(t: MooTest, form: string): string | null {
    const cpu = this.cpu, ram = this.mem.ram, fin = t.final, ini = t.initial;
    if (form === "F4" || t.exception) return this.runToHalt(-1);
    const cs = fin.regs[R_CS]! >= 0 ? fin.regs[R_CS]! : ini.regs[R_CS]!;
    const ip = fin.regs[R_IP]! >= 0 ? fin.regs[R_IP]! : ini.regs[R_IP]!;
    const at = (cs << 4) + ((ip - 1) & 0xffff);
    const start = (ini.regs[R_CS]! << 4) + ini.regs[R_IP]!;
    if (at >= start && at < start + t.bytes.length - 1) return this.step(t, form); // a jump into itself
    const old = ram[at]!;
    ram[at] = 0xf4;
    cpu.invalidatePage(at >>> 12);
    const r = this.runToHalt(at);
    ram[at] = old;
    return r;
  }

  /** Run until the HLT retires or a delivery; `hlt` is where the HLT must be (-1: any). */
  private runToHalt(hlt: number): string | null {
    const cpu = this.cpu;
    const s = cpu.run(1 << 20);
    if (s === Stop.DELIVERED) { cpu.eip = (cpu.eip + 1) & 0xffff; return null; }
    if (s !== Stop.HALT) return `stop ${s}`;
    if (hlt >= 0 && cpu.segBase[CS]! + ((cpu.eip - 1) & 0xffff) !== hlt) return `halted at ${hex(cpu.eip)}`;
    return null;
  }

  private step(t: MooTest, form: string): string | null {
    const cpu = this.cpu;
    const cs0 = cpu.sel[CS]!, ip0 = cpu.eip;
    const repString = isRepString(t.bytes);
    for (let n = 0; ; n++) {
      const s = cpu.run(1);
      if (s === Stop.DELIVERED) break;
      if (s === Stop.HALT) {
        if (form === "F4") return null; // the HLT under test
        return "halted";
      }
      if (s === Stop.SHUTDOWN) return "shutdown";
      if (s !== Stop.BUDGET) return `stop ${s}`;
      // A REP string instruction leaves CS:IP on itself until its last iteration.
      if (!(repString && cpu.sel[CS] === cs0 && cpu.eip === ip0 && (cpu.regs[ECX]! & 0xffff) !== 0)) break;
      if (n > 0x10000) return "REP did not finish";
    }
    cpu.eip = (cpu.eip + 1) & 0xffff; // the HLT after the instruction (or injected at its target)
    return null;
  }
}

/** Prefixes the suite uses: segment overrides, LOCK, REPNE, REP. */
export const PREFIXES = new Set([0x26, 0x2e, 0x36, 0x3e, 0xf0, 0xf2, 0xf3]);

/** Whether the instruction bytes are a string instruction with a REP/REPNE prefix. */
export function isRepString(bytes: Uint8Array): boolean {
  let rep = false, k = 0;
  for (; k < bytes.length && PREFIXES.has(bytes[k]!); k++) if (bytes[k] === 0xf2 || bytes[k] === 0xf3) rep = true;
  const op = bytes[k]!;
  return rep && ((op >= 0xa4 && op <= 0xa7) || (op >= 0xaa && op <= 0xaf) || (op >= 0x6c && op <= 0x6f));
}

export const hex = (v: number): string => v.toString(16).padStart(4, "0");

/** Per-form tallies. */
export interface FormStats {
  total: number;
  pass: number;
  fail: number;
  excluded: Map<string, number>;
  /** Tests in which a flag was masked, by reason. */
  masked: Map<string, number>;
  /** Of those, the tests that differed in a masked bit, by reason. */
  maskedDiffer: Map<string, number>;
  /** A few failures, for the report. */
  samples: string[];
}

export function newStats(): FormStats {
  return { total: 0, pass: 0, fail: 0, excluded: new Map(), masked: new Map(), maskedDiffer: new Map(), samples: [] };
}

export function tally(s: FormStats, t: MooTest, o: Outcome, keep = 3): void {
  s.total++;
  for (const m of o.verdict.masked) {
    s.masked.set(m, (s.masked.get(m) ?? 0) + 1);
    if (o.maskedDiffer) s.maskedDiffer.set(m, (s.maskedDiffer.get(m) ?? 0) + 1);
  }
  if (o.status === "excluded") {
    const r = o.verdict.excluded!;
    s.excluded.set(r, (s.excluded.get(r) ?? 0) + 1);
  } else if (o.status === "pass") s.pass++;
  else {
    s.fail++;
    if (s.samples.length < keep) s.samples.push(describe(t, o));
  }
}

export function describe(t: MooTest, o: Outcome): string {
  const ini = REG_NAMES.map((n, r) => `${n}=${hex(t.initial.regs[r]!)}`).join(" ");
  const exc = t.exception ? ` exception ${t.exception.vector}` : "";
  return `#${t.idx} ${t.name} [${Buffer.from(t.bytes).toString("hex")}] ${t.hash}${exc}\n    ${ini}\n    ${o.diffs.join("; ")}`;
}

export { R_CX };
