import { describe, expect, test } from "bun:test";
import { PAGE_SIZE, PhysMem, STATE_AREA_BYTES } from "./ram.ts";

describe("the state area after guest RAM", () => {
  test("RAM starts at offset 0 of a WebAssembly memory, and the CPU's arrays follow it", () => {
    const m = new PhysMem(1 << 20);
    expect(m.wasmMemory).not.toBeNull();
    expect(m.ram.buffer === m.wasmMemory!.buffer).toBe(true);
    expect([m.ram.byteOffset, m.ram.length]).toEqual([0, 1 << 20]);
    const regs = m.stateArray(Uint32Array, 8), seg = m.stateArray(Uint8Array, 6), tlb = m.stateArray(Uint32Array, 1 << 20), s = m.stateArray(Int32Array, 64);
    const all = [regs, seg, tlb, s];
    for (const a of all) expect(a.buffer === m.ram.buffer).toBe(true);
    expect(regs.byteOffset).toBe(1 << 20); // right after RAM
    expect(tlb.byteOffset % PAGE_SIZE).toBe(0); // large arrays page-aligned
    expect(s.byteOffset % 8).toBe(0);
    // In order, without overlap, and zeroed.
    for (let k = 1; k < all.length; k++) expect(all[k]!.byteOffset).toBeGreaterThanOrEqual(all[k - 1]!.byteOffset + all[k - 1]!.byteLength);
    for (const a of all) expect(a.every((x) => x === 0)).toBe(true);
    // A guest write to the last byte of RAM leaves the area alone, and the reverse.
    m.ram[(1 << 20) - 1] = 0xff;
    regs[0] = 0xdeadbeef;
    expect([regs[0], m.ram[(1 << 20) - 1]]).toEqual([0xdeadbeef, 0xff]);
  });

  test("when the area is used up, an array of its own (not in the RAM's buffer)", () => {
    const m = new PhysMem(60 * 1024, 4096); // with the area: one 64 KiB wasm page
    const a = m.stateArray(Uint8Array, 4096);
    expect(a.buffer === m.ram.buffer).toBe(true);
    const b = m.stateArray(Uint32Array, 2);
    expect(b.buffer === m.ram.buffer).toBe(false);
    expect(b.length).toBe(2);
    expect(STATE_AREA_BYTES).toBeGreaterThanOrEqual(4 * 4 * 1024 * 1024); // the x86 CPU's four fast TLBs fit
  });
});
