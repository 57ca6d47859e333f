import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BootError, parseElf32 } from "./elf.ts";
import {
  MB_INFO_BASE,
  MULTIBOOT_HEADER_MAGIC,
  findMultibootHeader,
  loadMultiboot,
  type MultibootOptions,
} from "./multiboot.ts";

const FIXTURES = join(import.meta.dir, "..", "..", "fixtures");
const fixture = (name: string): Uint8Array<ArrayBuffer> => new Uint8Array(readFileSync(join(FIXTURES, name)));
const MiB = 1024 * 1024;

const rd32 = (m: Uint8Array, a: number): number => (m[a]! | (m[a + 1]! << 8) | (m[a + 2]! << 16) | (m[a + 3]! << 24)) >>> 0;
const rd64 = (m: Uint8Array, a: number): number => rd32(m, a) + rd32(m, a + 4) * 0x1_0000_0000;
const cstr = (m: Uint8Array, a: number): string => {
  let e = a;
  while (m[e] !== 0) e++;
  return new TextDecoder().decode(m.subarray(a, e));
};

function opts(over: Partial<MultibootOptions> = {}): MultibootOptions {
  return { cmdline: "hello.elf", modules: [], memBytes: 32 * MiB, ...over };
}

function bootError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(BootError);
    const msg = (e as Error).message;
    expect(msg).not.toContain("\n");
    return msg;
  }
  throw new Error("expected a BootError");
}

/** Build a small ELF32 i386 Multiboot kernel with one PT_LOAD segment. */
function makeElf(o: { paddr?: number; vaddr?: number; entry?: number; filesz?: number; memsz?: number; cls?: number; machine?: number } = {}): Uint8Array {
  const paddr = o.paddr ?? 0x100000;
  const vaddr = o.vaddr ?? paddr;
  const filesz = o.filesz ?? 0x40;
  const memsz = o.memsz ?? 0x80;
  const img = new Uint8Array(0x100 + filesz);
  const dv = new DataView(img.buffer);
  img.set([0x7f, 0x45, 0x4c, 0x46, o.cls ?? 1, 1, 1]);
  dv.setUint16(16, 2, true); // ET_EXEC
  dv.setUint16(18, o.machine ?? 3, true);
  dv.setUint32(20, 1, true);
  dv.setUint32(24, o.entry ?? vaddr + 12, true);
  dv.setUint32(28, 52, true); // phoff
  dv.setUint16(40, 52, true);
  dv.setUint16(42, 32, true);
  dv.setUint16(44, 1, true);
  // PT_LOAD at offset 0x100
  dv.setUint32(52, 1, true);
  dv.setUint32(56, 0x100, true);
  dv.setUint32(60, vaddr, true);
  dv.setUint32(64, paddr, true);
  dv.setUint32(68, filesz, true);
  dv.setUint32(72, memsz, true);
  dv.setUint32(76, 7, true);
  dv.setUint32(80, 0x1000, true);
  // Multiboot header at the start of the segment, then filler.
  dv.setUint32(0x100, MULTIBOOT_HEADER_MAGIC, true);
  dv.setUint32(0x104, 3, true);
  dv.setUint32(0x108, (-(MULTIBOOT_HEADER_MAGIC + 3)) >>> 0, true);
  for (let i = 12; i < filesz; i++) img[0x100 + i] = 0x90;
  return img;
}

describe("parseElf32", () => {
  test("parses the hello fixture", () => {
    const elf = parseElf32(fixture("hello.elf"));
    expect(elf.machine).toBe(3);
    const loads = elf.programHeaders.filter((p) => p.type === 1);
    expect(loads.length).toBeGreaterThan(0);
    expect(loads[0]!.paddr).toBe(0x100000);
    expect(elf.entry).toBeGreaterThanOrEqual(0x100000);
  });

  test("rejects non-ELF, ELF64, non-i386 and truncated files", () => {
    expect(bootError(() => parseElf32(new Uint8Array([1, 2, 3, 4, 5])))).toContain("not an ELF");
    expect(bootError(() => parseElf32(makeElf({ cls: 2 })))).toBe("64-bit ELF kernels are not supported yet");
    expect(bootError(() => parseElf32(makeElf({ machine: 62 })))).toContain("not an i386");
    expect(bootError(() => parseElf32(makeElf().subarray(0, 40)))).toContain("truncated");
    expect(bootError(() => parseElf32(makeElf().subarray(0, 70)))).toContain("truncated");
    expect(bootError(() => parseElf32(makeElf().subarray(0, 0x120)))).toContain("truncated");
  });
});

describe("findMultibootHeader", () => {
  test("finds the header of the hello fixture", () => {
    const img = fixture("hello.elf");
    const h = findMultibootHeader(img)!;
    expect(h).not.toBeNull();
    expect(h.offset % 4).toBe(0);
    expect(h.offset).toBeLessThan(8192);
    expect(h.flags & 0x10000).toBe(0);
    expect((MULTIBOOT_HEADER_MAGIC + h.flags + h.checksum) >>> 0).toBe(0);
  });

  test("ignores a bad checksum, a misaligned magic and a header past 8 KiB", () => {
    const img = makeElf();
    img[0x108] ^= 1;
    expect(findMultibootHeader(img)).toBeNull();
    const late = new Uint8Array(8192 + 16);
    new DataView(late.buffer).setUint32(8192, MULTIBOOT_HEADER_MAGIC, true);
    expect(findMultibootHeader(late)).toBeNull();
    const mis = new Uint8Array(64);
    const dv = new DataView(mis.buffer);
    dv.setUint32(2, MULTIBOOT_HEADER_MAGIC, true);
    dv.setUint32(6, 0, true);
    dv.setUint32(10, -MULTIBOOT_HEADER_MAGIC >>> 0, true);
    expect(findMultibootHeader(mis)).toBeNull();
  });
});

describe("loadMultiboot", () => {
  test("loads the hello fixture and builds the information structure", () => {
    const img = fixture("hello.elf");
    const elf = parseElf32(img);
    const ram = new Uint8Array(32 * MiB).fill(0xaa);
    const r = loadMultiboot(ram, img, opts({ cmdline: "hello.elf a=b" }));
    expect(r.entry).toBe(elf.entry);
    expect(r.infoAddr).toBe(MB_INFO_BASE);
    expect(r.aoutKludge).toBe(false);

    // Segments: file bytes copied, bss zeroed.
    for (const ph of elf.programHeaders.filter((p) => p.type === 1)) {
      expect(ram.subarray(ph.paddr, ph.paddr + ph.filesz)).toEqual(img.slice(ph.offset, ph.offset + ph.filesz));
      expect(ram.subarray(ph.paddr + ph.filesz, ph.paddr + ph.memsz).every((b) => b === 0)).toBe(true);
      expect(r.loadedRanges).toContainEqual([ph.paddr, ph.paddr + ph.memsz]);
    }

    const b = r.infoAddr;
    const flags = rd32(ram, b);
    expect(flags & 0x1).toBe(1); // mem
    expect(flags & 0x4).toBe(4); // cmdline
    expect(flags & 0x8).toBe(8); // mods
    expect(flags & 0x40).toBe(0x40); // mmap
    expect(flags & 0x200).toBe(0x200); // boot loader name
    expect(rd32(ram, b + 4)).toBe(639);
    expect(rd32(ram, b + 8)).toBe(32 * 1024 - 1024);
    expect(cstr(ram, rd32(ram, b + 16))).toBe("hello.elf a=b");
    expect(rd32(ram, b + 20)).toBe(0);
    expect(cstr(ram, rd32(ram, b + 64))).toBe("rrx");

    const mmapLen = rd32(ram, b + 44);
    const mmapAddr = rd32(ram, b + 48);
    const entries: [number, number, number][] = [];
    for (let p = mmapAddr; p < mmapAddr + mmapLen; p += rd32(ram, p) + 4) {
      entries.push([rd64(ram, p + 4), rd64(ram, p + 12), rd32(ram, p + 20)]);
    }
    expect(entries).toEqual([
      [0, 0x9fc00, 1],
      [0x9fc00, 0x400, 2],
      [0xf0000, 0x10000, 2],
      [0x100000, 31 * MiB, 1],
    ]);
  });

  test("places modules page-aligned after the kernel", () => {
    const img = fixture("hello.elf");
    const ram = new Uint8Array(32 * MiB);
    const m1 = new Uint8Array(5000).fill(1);
    const m2 = new Uint8Array(10).fill(2);
    const r = loadMultiboot(ram, img, opts({
      modules: [
        { data: m1, cmdline: "mod1 x=1", name: "mod1.bin" },
        { data: m2, cmdline: "mod2", name: "mod2.bin" },
      ],
      bootloaderName: "test loader",
    }));
    const kernelEnd = Math.max(...parseElf32(img).programHeaders.filter((p) => p.type === 1).map((p) => p.paddr + p.memsz));
    const b = r.infoAddr;
    expect(rd32(ram, b + 20)).toBe(2);
    const mods = rd32(ram, b + 24);
    const s1 = rd32(ram, mods), e1 = rd32(ram, mods + 4);
    const s2 = rd32(ram, mods + 16), e2 = rd32(ram, mods + 20);
    expect(s1 % 4096).toBe(0);
    expect(s1).toBeGreaterThanOrEqual(kernelEnd);
    expect(e1 - s1).toBe(5000);
    expect(s2 % 4096).toBe(0);
    expect(s2).toBeGreaterThanOrEqual(e1);
    expect(e2 - s2).toBe(10);
    expect(ram.subarray(s1, e1).every((x) => x === 1)).toBe(true);
    expect(ram.subarray(s2, e2).every((x) => x === 2)).toBe(true);
    expect(cstr(ram, rd32(ram, mods + 8))).toBe("mod1 x=1");
    expect(cstr(ram, rd32(ram, mods + 24))).toBe("mod2");
    expect(cstr(ram, rd32(ram, b + 64))).toBe("test loader");
    expect(r.moduleRanges).toEqual([[s1, e1], [s2, e2]]);
  });

  test("loads every committed fixture kernel", () => {
    for (const name of ["hello", "cpu-bound", "interrupts", "paging", "smc"]) {
      const img = fixture(`${name}.elf`);
      const r = loadMultiboot(new Uint8Array(32 * MiB), img, opts({ cmdline: `${name}.elf` }));
      expect(r.entry).toBe(parseElf32(img).entry);
    }
  });

  test("translates a higher-half entry point to its physical address", () => {
    const img = makeElf({ paddr: 0x200000, vaddr: 0xc0200000, entry: 0xc0200010 });
    const r = loadMultiboot(new Uint8Array(32 * MiB), img, opts());
    expect(r.entry).toBe(0x200010);
    expect(r.loadedRanges[0]).toEqual([0x200000, 0x200080]);
  });

  test("loads a flat binary through the a.out kludge", () => {
    // Header at offset 16; the image loads at 0x200000, 0x100 bytes of bss after it.
    const img = new Uint8Array(64).fill(0x90);
    const dv = new DataView(img.buffer);
    const flags = 0x10003;
    dv.setUint32(16, MULTIBOOT_HEADER_MAGIC, true);
    dv.setUint32(20, flags, true);
    dv.setUint32(24, (-(MULTIBOOT_HEADER_MAGIC + flags)) >>> 0, true);
    dv.setUint32(28, 0x200010, true); // header_addr
    dv.setUint32(32, 0x200000, true); // load_addr
    dv.setUint32(36, 0, true); // load_end_addr: whole file
    dv.setUint32(40, 0x200140, true); // bss_end_addr
    dv.setUint32(44, 0x200030, true); // entry_addr
    const ram = new Uint8Array(8 * MiB).fill(0xaa);
    const r = loadMultiboot(ram, img, opts({ memBytes: 8 * MiB }));
    expect(r.aoutKludge).toBe(true);
    expect(r.entry).toBe(0x200030);
    expect(ram.subarray(0x200000, 0x200040)).toEqual(img);
    expect(ram.subarray(0x200040, 0x200140).every((x) => x === 0)).toBe(true);
    expect(ram[0x200140]).toBe(0xaa);
    expect(r.loadedRanges[0]).toEqual([0x200000, 0x200140]);
  });

  test("rejects images without a Multiboot header", () => {
    const ram = new Uint8Array(32 * MiB);
    const msg = "not a Multiboot kernel: no Multiboot header in the first 8 KiB";
    expect(bootError(() => loadMultiboot(ram, new Uint8Array(100), opts()))).toBe(msg);
    const flipped = fixture("hello.elf");
    const h = findMultibootHeader(flipped)!;
    flipped[h.offset] ^= 0xff;
    expect(bootError(() => loadMultiboot(ram, flipped, opts()))).toBe(msg);
    expect(bootError(() => loadMultiboot(ram, fixture("hello.elf").subarray(0, 1024), opts()))).toBe(msg);
  });

  test("rejects ELF64, non-i386 and truncated kernels", () => {
    const ram = new Uint8Array(32 * MiB);
    expect(bootError(() => loadMultiboot(ram, makeElf({ cls: 2 }), opts()))).toBe("64-bit ELF kernels are not supported yet");
    const elf64NoHeader = new Uint8Array(64);
    elf64NoHeader.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    expect(bootError(() => loadMultiboot(ram, elf64NoHeader, opts()))).toBe("64-bit ELF kernels are not supported yet");
    expect(bootError(() => loadMultiboot(ram, makeElf({ machine: 40 }), opts()))).toContain("not an i386");
    const img = fixture("hello.elf");
    const h = findMultibootHeader(img)!;
    expect(bootError(() => loadMultiboot(ram, img.subarray(0, h.offset + 64), opts()))).toContain("truncated");
  });

  test("rejects a flat binary without the a.out kludge", () => {
    const img = new Uint8Array(64);
    const dv = new DataView(img.buffer);
    dv.setUint32(0, MULTIBOOT_HEADER_MAGIC, true);
    dv.setUint32(4, 3, true);
    dv.setUint32(8, (-(MULTIBOOT_HEADER_MAGIC + 3)) >>> 0, true);
    expect(bootError(() => loadMultiboot(new Uint8Array(32 * MiB), img, opts()))).toContain("a.out kludge");
  });

  test("rejects kernels and modules that do not fit in memory", () => {
    const big = makeElf({ paddr: 0x100000, memsz: 2 * MiB });
    expect(bootError(() => loadMultiboot(new Uint8Array(2 * MiB), big, opts({ memBytes: 2 * MiB })))).toContain("does not fit in memory");
    // memBytes smaller than the RAM array still limits the load.
    expect(bootError(() => loadMultiboot(new Uint8Array(32 * MiB), big, opts({ memBytes: 2 * MiB })))).toContain("does not fit");
    const img = fixture("hello.elf");
    const mod = { data: new Uint8Array(3 * MiB), cmdline: "big", name: "big.bin" };
    expect(bootError(() => loadMultiboot(new Uint8Array(4 * MiB), img, opts({ memBytes: 4 * MiB, modules: [mod] })))).toContain("module big.bin");
  });

  test("rejects a segment overlapping the information area", () => {
    const img = makeElf({ paddr: MB_INFO_BASE - 0x20, memsz: 0x100 });
    expect(bootError(() => loadMultiboot(new Uint8Array(32 * MiB), img, opts()))).toContain("overlaps the Multiboot information area");
  });

  test("rejects an entry point outside the image", () => {
    const img = makeElf({ entry: 0x300000 });
    expect(bootError(() => loadMultiboot(new Uint8Array(32 * MiB), img, opts()))).toContain("entry point");
  });

  test("is deterministic", () => {
    const img = fixture("hello.elf");
    const a = new Uint8Array(4 * MiB);
    const b = new Uint8Array(4 * MiB);
    loadMultiboot(a, img, opts({ memBytes: 4 * MiB }));
    loadMultiboot(b, img, opts({ memBytes: 4 * MiB }));
    expect(a).toEqual(b);
  });
});
