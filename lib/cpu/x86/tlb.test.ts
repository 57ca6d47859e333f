/**
 * The TLB decides when a page walk sets accessed and dirty bits, which the guest can read: a
 * guest that clears them in a PTE without INVLPG sees them set again only after its TLB entry
 * goes. rrx's own events (a snapshot restored, the block cache or its write fast path dropped
 * for a hash record or a breakpoint, a watchpoint set elsewhere) must not change that, or a
 * replay would diverge from its recording there.
 */
import { describe, expect, test } from "bun:test";
import { Stop, EAX, EBX } from "./cpu.ts";
import { TestMachine, CODE, DATA } from "../../../test/cpu/machine.ts";
import { StateReader, StateWriter } from "../../machine/snapshot.ts";

const X = DATA + 0x3000;
const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];

function build(invlpg: boolean): TestMachine {
  const m = new TestMachine(8 << 20);
  m.flat(0, CODE);
  m.paging();
  const PTE = m.pte(X);
  const code = [
    0xa1, ...le32(X), // mov eax, [X]: a read walk sets A
    0xc7, 0x05, ...le32(X), ...le32(1), // mov dword [X], 1: a write walk sets D
    0x81, 0x25, ...le32(PTE), ...le32(~0x60 >>> 0), // and dword [pte(X)], ~(A|D)
    ...(invlpg ? [0x0f, 0x01, 0x3d, ...le32(X)] : [0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90]), // invlpg [X] or nops
    0x8b, 0x1d, ...le32(X), // mov ebx, [X]
    0xc7, 0x05, ...le32(X), ...le32(2), // mov dword [X], 2
    0xa1, ...le32(PTE), // mov eax, [pte(X)]
    0xf4,
  ];
  m.write(CODE, code);
  m.cpu.flushBlocks();
  return m;
}

/** Run to the HLT, with `between` done after the first four instructions (or seven nops). */
function run(between: (m: TestMachine) => TestMachine, invlpg = false): { pte: number; ebx: number; ram: Uint8Array } {
  let m = build(invlpg);
  expect(m.cpu.run(invlpg ? 4 : 10)).toBe(Stop.BUDGET);
  m = between(m);
  expect(m.cpu.run(100)).toBe(Stop.HALT);
  return { pte: m.cpu.regs[EAX]!, ebx: m.cpu.regs[EBX]!, ram: m.mem.ram.slice() };
}

/** Save the CPU and its caches, and restore them into a fresh machine with the same RAM. */
function snapshotRestore(m: TestMachine): TestMachine {
  const w = new StateWriter(), k = new StateWriter();
  m.cpu.save(w);
  m.cpu.saveCaches(k);
  const n = new TestMachine(8 << 20);
  n.mem.ram.set(m.mem.ram);
  n.mem.markAllDirty();
  n.cpu.restore(new StateReader(w.finish()));
  n.cpu.restoreCaches(new StateReader(k.finish()));
  return n;
}

describe("the TLB is the guest's, not rrx's", () => {
  test("A and D cleared without INVLPG stay clear; with INVLPG the next walk sets them", () => {
    const kept = run((m) => m);
    expect(kept.ebx).toBe(1);
    expect(kept.pte & 0x60).toBe(0);
    const flushed = run((m) => m, true);
    expect(flushed.pte & 0x60).toBe(0x60);
  });

  test.each([
    ["a snapshot restored into a fresh machine", snapshotRestore],
    ["the block cache and the write fast path dropped (hash record, breakpoint)", (m: TestMachine) => { m.cpu.flushBlocks(); m.cpu.flushWriteTlb(); return m; }],
    ["a watchpoint set elsewhere", (m: TestMachine) => { m.cpu.setWatchpoints([{ type: 2, addr: DATA, len: 4 }]); return m; }],
  ] as const)("%s changes nothing the guest sees", (_what, between) => {
    const ref = run((m) => m);
    const r = run(between as (m: TestMachine) => TestMachine);
    expect(r.pte).toBe(ref.pte);
    expect(r.ebx).toBe(ref.ebx);
    expect(Buffer.compare(r.ram, ref.ram)).toBe(0);
  });
});
