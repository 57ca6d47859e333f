/**
 * Robustness: random byte strings executed as guest code in real mode, flat protected mode at
 * ring 0 and ring 3 (an IDT whose handlers halt; delivered vectors are observed through
 * cpu.onDeliver), and on the full PC (devices reachable by random port I/O).
 *
 *  - the guest sees only its own exceptions: every non-software delivery is an architectural
 *    exception vector (#DE #DB #BR #UD #NM #DF #TS #NP #SS #GP #PF #MF #AC);
 *  - the host never throws: no JS exception escapes cpu.run / machine.runUntil;
 *  - the host never hangs: every run has an instruction budget (and, on the PC, a virtual-time
 *    bound for halted waits) and finishes within a wall-clock bound;
 *  - no leaks: many programs run in one machine, reset between programs (dirty pages restored
 *    from a pristine copy); every 25th program is also run in a fresh machine and must end in
 *    the same state, and the heap must not grow without bound.
 *
 * Programs per mode: 25 x RRX_PROPERTY_RUNS (default 40 runs -> 1000), so the soak
 * (RRX_PROPERTY_RUNS=2000) runs 50,000 programs per CPU mode and 10,000 on the PC: 160,000.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Stop } from "../../lib/cpu/x86/cpu.ts";
import { disasm } from "../../lib/cpu/x86/disasm.ts";
import { Machine } from "../../lib/machine/machine.ts";
import { setMultibootEntryState } from "../../lib/boards/pc-boot.ts";
import { Snapshot } from "../../lib/replay/checkpoint.ts";
import { TestMachine, CODE, descriptor } from "../cpu/machine.ts";
import { fullState } from "./harness.ts";
import { runs } from "./guest.ts";

const PROGRAMS_PER_RUN = 25;
const BUDGET = 4000;
const WALL_MS = 2000;
/** Exceptions the architecture can raise on its own (not INT n). */
const ARCH = new Set([0, 1, 5, 6, 7, 8, 10, 11, 12, 13, 14, 16, 17]);

type Mode = "real" | "pm0" | "pm3";

const progArb = fc.record({
  bytes: fc.uint8Array({ minLength: 1, maxLength: 48 }),
  regs: fc.array(fc.oneof(fc.nat({ max: 0xffff }), fc.integer({ min: 0, max: 0xffffffff })), { minLength: 6, maxLength: 6 }),
});
type Prog = { bytes: Uint8Array; regs: number[] };

function show(mode: string, p: Prog): string {
  let d: string[];
  try { d = disasm(p.bytes, mode !== "real", mode === "real" ? 0x7c00 : CODE); } catch (e) { d = [`(disasm: ${e})`]; }
  return `${mode} program ${Buffer.from(p.bytes).toString("hex")} regs ${p.regs.map((r) => r.toString(16)).join(",")}\n${d.join("\n")}`;
}

/** One reusable CPU test machine per mode, reset between programs. */
class CpuRunner {
  readonly tm = new TestMachine(2 << 20);
  private readonly pristine: Uint8Array;
  private readonly dirty: Uint8Array;
  delivered: { vec: number; soft: boolean }[] = [];
  constructor(readonly mode: Mode) {
    this.enter();
    this.pristine = this.tm.mem.ram.slice();
    this.dirty = this.tm.mem.addDirtyTracker();
    this.tm.mem.clearTracker(this.dirty);
    this.tm.cpu.onDeliver = (vec, soft) => { if (this.delivered.length < 64) this.delivered.push({ vec, soft }); };
  }
  private enter(): void {
    if (this.mode === "real") this.tm.real(0x7c00);
    else this.tm.flat(this.mode === "pm3" ? 3 : 0, CODE);
  }
  reset(): void {
    const ram = this.tm.mem.ram, d = this.dirty;
    for (let p = 0; p < d.length; p++) if (d[p]) ram.set(this.pristine.subarray(p << 12, (p + 1) << 12), p << 12);
    this.tm.mem.clearTracker(d);
    this.delivered = [];
  }
  run(p: Prog): { stop: Stop; state: Uint8Array } {
    this.enter();
    const at = this.mode === "real" ? 0x7c00 : CODE;
    this.tm.write(at, p.bytes);
    this.tm.write(at + p.bytes.length, [0xf4]);
    const c = this.tm.cpu;
    c.icount = 0;
    [0, 1, 2, 3, 5, 6].forEach((r, k) => { c.regs[r] = p.regs[k]! >>> 0; });
    c.flushBlocks();
    const stop = c.run(BUDGET);
    return { stop, state: this.tm.state() };
  }
}

function checkOne(r: CpuRunner, p: Prog, fresh: boolean): void {
  r.reset();
  const t0 = performance.now();
  let res: { stop: Stop; state: Uint8Array };
  try {
    res = r.run(p);
  } catch (e) {
    throw new Error(`host exception: ${e instanceof Error ? e.stack : e}\n${show(r.mode, p)}`);
  }
  const ms = performance.now() - t0;
  if (ms > WALL_MS) throw new Error(`took ${ms.toFixed(0)} ms\n${show(r.mode, p)}`);
  for (const d of r.delivered) {
    if (!d.soft && !ARCH.has(d.vec)) throw new Error(`guest saw vector ${d.vec} (not an exception it can cause)\n${show(r.mode, p)}`);
  }
  if (r.tm.cpu.icount > BUDGET) throw new Error(`ran ${r.tm.cpu.icount} > ${BUDGET} instructions\n${show(r.mode, p)}`);
  if (fresh) {
    const f = new CpuRunner(r.mode);
    const fr = f.run(p);
    if (fr.stop !== res.stop || Buffer.compare(fr.state, res.state) !== 0 || Buffer.compare(f.tm.mem.ram, r.tm.mem.ram) !== 0) {
      throw new Error(`state leaked between programs: a fresh machine ends differently (stop ${fr.stop} vs ${res.stop})\n${show(r.mode, p)}`);
    }
  }
}

function heapMB(): number {
  Bun.gc(true);
  return process.memoryUsage().heapUsed / 2 ** 20;
}

describe("robustness: random bytes as guest code", () => {
  for (const mode of ["real", "pm0", "pm3"] as Mode[]) {
    test(`${mode}: only guest exceptions, no host exception, bounded, no leak`, () => {
      const r = new CpuRunner(mode);
      let n = 0;
      const stops = new Map<number, number>();
      const vecs = new Map<number, number>();
      let heap0 = -1;
      fc.assert(fc.property(fc.array(progArb, { minLength: PROGRAMS_PER_RUN, maxLength: PROGRAMS_PER_RUN }), (progs) => {
        for (const p of progs) {
          checkOne(r, p, n % 25 === 0);
          n++;
          for (const d of r.delivered) vecs.set(d.vec, (vecs.get(d.vec) ?? 0) + 1);
          if (n === 200) heap0 = heapMB();
        }
        stops.set(r.tm.cpu.halted ? 1 : 0, (stops.get(r.tm.cpu.halted ? 1 : 0) ?? 0) + 1);
      }), { numRuns: runs(40), includeErrorInReport: true });
      const heap1 = heapMB();
      const top = [...vecs.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([v, c]) => `${v}:${c}`).join(" ");
      console.log(`${mode}: ${n} programs, heap ${heap0.toFixed(1)} -> ${heap1.toFixed(1)} MB, vectors ${top}`);
      expect(n).toBe(runs(40) * PROGRAMS_PER_RUN);
      if (heap0 >= 0) expect(heap1 - heap0).toBeLessThan(64);
    }, 600_000);
  }

  test("full PC: random code with port I/O to every device, reset between programs", () => {
    const GDT = 0x1000, IDT = 0x2000, STUBS = 0x3000, AT = 0x10000;
    const m = new Machine({ memBytes: 2 << 20, ips: 1e8, bootEpochSeconds: 1_700_000_000 });
    const prepare = (mm: Machine) => {
      const dv = new DataView(mm.ram.buffer);
      [[0, 0], descriptor(0, 0xfffff, 0x9a, 0xc), descriptor(0, 0xfffff, 0x92, 0xc)].forEach(([lo, hi], i) => { dv.setUint32(GDT + i * 8, lo!, true); dv.setUint32(GDT + i * 8 + 4, hi!, true); });
      for (let v = 0; v < 256; v++) {
        const off = STUBS + v;
        mm.ram[off] = 0xf4;
        dv.setUint32(IDT + v * 8, ((0x08 << 16) | (off & 0xffff)) >>> 0, true);
        dv.setUint32(IDT + v * 8 + 4, ((off & 0xffff0000) | 0x8e00) >>> 0, true);
      }
      mm.mem.markAllDirty();
      setMultibootEntryState(mm.cpu, AT, 0);
      mm.cpu.gdtBase = GDT; mm.cpu.gdtLimit = 23; mm.cpu.idtBase = IDT; mm.cpu.idtLimit = 0x7ff;
      mm.cpu.regs[4] = 0x9000;
      mm.cpu.flushBlocks();
      mm.onReset = () => { mm.cpu.eip = 0xfff0; };
    };
    prepare(m);
    const start = Snapshot.take(m);
    const runOne = (mm: Machine, p: Prog): string => {
      mm.mem.hostWrite(AT, p.bytes);
      mm.mem.hostWrite(AT + p.bytes.length, Uint8Array.of(0xf4));
      [0, 1, 2, 3, 5, 6].forEach((r, k) => { mm.cpu.regs[r] = p.regs[k]! >>> 0; });
      mm.cpu.flushBlocks();
      // A halted guest with a timer but no deliverable interrupt idles forever in virtual time:
      // bound the wait the way a driver's host deadline does.
      mm.hostDeadlineNs = mm.now() + 50_000_000;
      let last = "";
      for (let k = 0; k < 4; k++) {
        const s = mm.runUntil(BUDGET);
        last = s.kind;
        if (s.kind !== "limit" && s.kind !== "idle") break;
        if (s.kind === "idle") break;
      }
      return `${last}:${fullState(mm)}`;
    };
    let n = 0;
    fc.assert(fc.property(fc.array(progArb, { minLength: 5, maxLength: 5 }), (progs) => {
      for (const p of progs) {
        start.restore(m);
        const t0 = performance.now();
        let got: string;
        try { got = runOne(m, p); } catch (e) { throw new Error(`host exception: ${e instanceof Error ? e.stack : e}\n${show("pm0", p)}`); }
        if (performance.now() - t0 > WALL_MS) throw new Error(`took too long\n${show("pm0", p)}`);
        if (m.cpu.icount > BUDGET) throw new Error(`ran ${m.cpu.icount} instructions\n${show("pm0", p)}`);
        if (n % 25 === 0) {
          const f = new Machine({ memBytes: 2 << 20, ips: 1e8, bootEpochSeconds: 1_700_000_000 });
          prepare(f);
          if (runOne(f, p) !== got) throw new Error(`state leaked between programs (fresh PC ends differently)\n${show("pm0", p)}`);
        }
        n++;
      }
    }), { numRuns: runs(40), includeErrorInReport: true });
    console.log(`pc: ${n} programs`);
  }, 600_000);
});
