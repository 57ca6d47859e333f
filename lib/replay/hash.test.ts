import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  combineHashes, diffHashes, formatHashDiff, fullRamRoot, hashBytes, hashComponents, hashStateful,
  PAGE_SIZE, RamHasher, type HashRecord,
} from "./hash.ts";
import { RUNS } from "../../test/support/log-testutil.ts";
import type { StateWriter } from "../machine/snapshot.ts";

const ascii = (s: string) => new TextEncoder().encode(s);

describe("hashBytes", () => {
  test("is xxHash64 (published test vectors), 16 hex digits", () => {
    expect(hashBytes(new Uint8Array())).toBe("ef46db3751d8e999");
    expect(hashBytes(ascii("abc"))).toBe("44bc2cf5ad770999");
    expect(hashBytes(ascii("Nobody inspects the spammish repetition"))).toBe("fbcea83c8a378bf1");
  });

  test("hashStateful hashes the save() bytes", () => {
    const s = { save(w: StateWriter) { w.u32(0xdeadbeef).u8(7); }, restore() {} };
    expect(hashStateful(s)).toBe(hashBytes(new Uint8Array([0xef, 0xbe, 0xad, 0xde, 7])));
  });

  test("combineHashes is order sensitive", () => {
    const a = hashBytes(ascii("a")), b = hashBytes(ascii("b"));
    expect(combineHashes([a, b])).not.toBe(combineHashes([b, a]));
    expect(combineHashes([a, b])).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe("RamHasher", () => {
  test("root changes when a page changes and returns when it is restored", () => {
    const ram = new Uint8Array(64 * PAGE_SIZE + 100); // partial last page
    const dirty = new Uint8Array(Math.ceil(ram.length / PAGE_SIZE));
    const h = new RamHasher(ram, dirty);
    const r0 = h.root();
    expect(r0).toBe(fullRamRoot(ram));
    for (const addr of [0, 4095, 4096, 63 * PAGE_SIZE, ram.length - 1]) {
      ram[addr] = 0x5a;
      dirty[addr >> 12] = 1;
      const r1 = h.root();
      expect(r1).not.toBe(r0);
      expect(dirty[addr >> 12]).toBe(0); // consumed
      ram[addr] = 0;
      dirty[addr >> 12] = 1;
      expect(h.root()).toBe(r0);
    }
  });

  test("cost is proportional to dirty pages", () => {
    const ram = new Uint8Array(1024 * PAGE_SIZE);
    const dirty = new Uint8Array(1024);
    const h = new RamHasher(ram, dirty);
    h.root();
    const before = h.pagesHashed;
    ram[5 * PAGE_SIZE] = 1; dirty[5] = 1;
    ram[900 * PAGE_SIZE + 7] = 1; dirty[900] = 1;
    h.root();
    expect(h.pagesHashed - before).toBe(2);
    h.root();
    expect(h.pagesHashed - before).toBe(2);
  });

  test("page hashes name the changed page; RAM size is part of the root", () => {
    const ram = new Uint8Array(8 * PAGE_SIZE);
    const dirty = new Uint8Array(8);
    const h = new RamHasher(ram, dirty);
    const p0 = h.pageHashes();
    ram[3 * PAGE_SIZE + 9] = 1; dirty[3] = 1;
    const p1 = h.pageHashes();
    expect(p0.map((x, i) => (x !== p1[i] ? i : -1)).filter((i) => i >= 0)).toEqual([3]);
    expect(h.pageHash(3)).toBe(p1[3]!);
    expect(fullRamRoot(new Uint8Array(PAGE_SIZE))).not.toBe(fullRamRoot(new Uint8Array(2 * PAGE_SIZE)));
  });

  test("writes that bypass the dirty map are picked up by reset()", () => {
    const ram = new Uint8Array(4 * PAGE_SIZE);
    const h = new RamHasher(ram, new Uint8Array(4));
    const r0 = h.root();
    ram.set([1, 2, 3], 2 * PAGE_SIZE); // e.g. a checkpoint restore
    expect(h.root()).toBe(r0);
    h.reset();
    expect(h.root()).toBe(fullRamRoot(ram));
    expect(h.root()).not.toBe(r0);
  });

  type Op = { t: "w"; addr: number; val: number; mark: boolean } | { t: "root" } | { t: "reset" } | { t: "fill"; page: number; val: number };

  test("property: root equals a full rehash after arbitrary dirty/clean sequences", () => {
    const arb = fc.integer({ min: 1, max: 200 * PAGE_SIZE }).chain((size) => fc.tuple(
      fc.constant(size),
      fc.array(fc.oneof(
        { weight: 8, arbitrary: fc.record({ t: fc.constant("w" as const), addr: fc.nat(size - 1), val: fc.nat(255), mark: fc.constant(true) }) },
        { weight: 1, arbitrary: fc.record({ t: fc.constant("w" as const), addr: fc.nat(size - 1), val: fc.nat(255), mark: fc.constant(false) }) },
        { weight: 2, arbitrary: fc.constant({ t: "root" as const }) },
        { weight: 1, arbitrary: fc.constant({ t: "reset" as const }) },
        { weight: 1, arbitrary: fc.record({ t: fc.constant("fill" as const), page: fc.nat(Math.ceil(size / PAGE_SIZE) - 1), val: fc.nat(255) }) },
      ), { maxLength: 40 }),
    ));
    fc.assert(fc.property(arb, ([size, ops]) => {
      const ram = new Uint8Array(size);
      const dirty = new Uint8Array(Math.ceil(size / PAGE_SIZE));
      const h = new RamHasher(ram, dirty);
      let unmarked = false; // a write bypassed the dirty map since the last reset
      for (const op of ops as Op[]) {
        if (op.t === "w") {
          if (ram[op.addr] !== op.val && !op.mark) unmarked = true;
          ram[op.addr] = op.val;
          if (op.mark) dirty[op.addr >> 12] = 1;
        } else if (op.t === "fill") {
          ram.fill(op.val, op.page * PAGE_SIZE, (op.page + 1) * PAGE_SIZE);
          dirty[op.page] = 1;
        } else if (op.t === "reset") {
          h.reset();
          unmarked = false;
        } else if (!unmarked) {
          expect(h.root()).toBe(fullRamRoot(ram));
        }
      }
      h.reset();
      expect(h.root()).toBe(fullRamRoot(ram));
      expect(h.pageHashes()).toEqual(new RamHasher(ram.slice(), new Uint8Array(dirty.length)).pageHashes());
    }), { numRuns: RUNS });
  });
});

describe("hash records", () => {
  test("hashComponents builds {cpu, ram, screen, devices}", () => {
    const ram = new Uint8Array(2 * PAGE_SIZE);
    const h = new RamHasher(ram, new Uint8Array(2));
    const dev = { name: "pit", save(w: StateWriter) { w.u8(1); }, restore() {} };
    const rec = hashComponents({ cpu: ascii("cpu"), ram: h, screen: "0000000000000000", devices: [dev], withPages: true });
    expect(rec).toEqual({
      cpu: hashBytes(ascii("cpu")), ram: h.root(), screen: "0000000000000000",
      devices: { pit: hashBytes(new Uint8Array([1])) }, pages: h.pageHashes(),
    });
    const rec2 = hashComponents({ cpu: ascii("cpu"), ram: h.root(), screen: ascii(""), devices: { pit: new Uint8Array([1]) } });
    expect(rec2.devices).toEqual(rec.devices);
  });

  test("diffHashes names components, devices and page addresses", () => {
    const a: HashRecord = { cpu: "1", ram: "2", screen: "3", devices: { pit: "4", pic: "5", vga: "6" }, pages: ["a", "b", "c"] };
    const b: HashRecord = { cpu: "1", ram: "x", screen: "3", devices: { pit: "4", pic: "y", uart: "7" }, pages: ["a", "z", "c", "d"] };
    const d = diffHashes(a, b);
    expect(d).toEqual({ components: ["ram", "device:pic"], onlyInA: ["vga"], onlyInB: ["uart"], pages: [0x1000, 0x3000], equal: false });
    expect(formatHashDiff(d)).toBe("ram, device:pic differ; only in first: vga; only in second: uart; RAM pages 0x00001000, 0x00003000");
    expect(diffHashes(a, a).equal).toBe(true);
    expect(formatHashDiff(diffHashes(a, a))).toBe("hashes match");
  });
});
