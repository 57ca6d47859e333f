/**
 * The Linux boot protocol loader against synthetic bzImages. Offsets and values come from
 * Documentation/arch/x86/boot.rst and zero-page.rst, written out here as literals.
 */
import { describe, expect, test } from "bun:test";
import { BootError } from "./elf.ts";
import { isBzImage, loadLinux, parseBzImage } from "./linux.ts";
import { Machine } from "../machine/machine.ts";
import { bootLinux } from "../boards/pc-boot.ts";
import { CS, DS, ES, SS } from "../cpu/x86/decode.ts";

const MiB = 1 << 20;
const rd8 = (m: Uint8Array, a: number) => m[a]!;
const rd16 = (m: Uint8Array, a: number) => m[a]! | (m[a + 1]! << 8);
const rd32 = (m: Uint8Array, a: number) => (rd16(m, a) | (rd16(m, a + 2) << 16)) >>> 0;
const rd64 = (m: Uint8Array, a: number) => rd32(m, a) + rd32(m, a + 4) * 0x1_0000_0000;
const wr16 = (m: Uint8Array, a: number, v: number) => { m[a] = v & 0xff; m[a + 1] = (v >> 8) & 0xff; };
const wr32 = (m: Uint8Array, a: number, v: number) => { wr16(m, a, v & 0xffff); wr16(m, a + 2, v >>> 16); };
const cstr = (m: Uint8Array, a: number) => { let e = a; while (m[e] !== 0) e++; return new TextDecoder().decode(m.subarray(a, e)); };

interface Synth { version?: number; setupSects?: number; loadflags?: number; xloadflags?: number; initrdMax?: number; cmdlineSize?: number; pref?: number; initSize?: number; pmBytes?: number; hdrs?: string }

/** A bzImage with a setup header as the spec lays it out and a recognisable protected-mode part. */
function bzImage(s: Synth = {}): Uint8Array {
  const setupSects = s.setupSects ?? 4;
  const pmBytes = s.pmBytes ?? 8192;
  const img = new Uint8Array((Math.max(setupSects, 4) + 1) * 512 + pmBytes);
  img[0x1f1] = setupSects;
  wr16(img, 0x1fe, 0xaa55);
  img[0x200] = 0xeb; img[0x201] = 0x6a; // jmp: the header ends at 0x202 + 0x6a = 0x26c
  img.set(new TextEncoder().encode(s.hdrs ?? "HdrS"), 0x202);
  wr16(img, 0x206, s.version ?? 0x020f);
  img[0x211] = s.loadflags ?? 0x01;
  wr32(img, 0x214, 0x100000);
  wr32(img, 0x22c, s.initrdMax ?? 0x7fffffff);
  wr32(img, 0x230, 0x1000000);
  img[0x234] = 1;
  wr16(img, 0x236, s.xloadflags ?? 0);
  wr32(img, 0x238, s.cmdlineSize ?? 2047);
  wr32(img, 0x258, s.pref ?? 0x1000000);
  wr32(img, 0x260, s.initSize ?? 0x800000);
  const pm = (Math.max(setupSects, 4) + 1) * 512;
  for (let i = 0; i < pmBytes; i++) img[pm + i] = (i * 7 + 3) & 0xff;
  return img;
}

function bootError(f: () => unknown): string {
  try { f(); } catch (e) {
    expect(e).toBeInstanceOf(BootError);
    const msg = (e as Error).message;
    expect(msg).not.toContain("\n");
    return msg;
  }
  throw new Error("expected a BootError");
}

describe("bzImage detection and header checks", () => {
  test("HdrS at 0x202 marks a Linux kernel; anything else is not one", () => {
    expect(isBzImage(bzImage())).toBe(true);
    expect(isBzImage(bzImage({ hdrs: "HdrX" }))).toBe(false);
    expect(isBzImage(new Uint8Array(100))).toBe(false);
    expect(bootError(() => parseBzImage(new Uint8Array(4096)))).toMatch(/not a Linux kernel/);
  });
  test("protocol 3.x is too new, 2.05 too old, 2.06 and 2.15 are fine", () => {
    expect(bootError(() => parseBzImage(bzImage({ version: 0x0300 })))).toMatch(/3\.00 is newer/);
    expect(bootError(() => parseBzImage(bzImage({ version: 0x0205 })))).toMatch(/2\.05 is too old/);
    expect(parseBzImage(bzImage({ version: 0x0206 })).version).toBe(0x0206);
    expect(parseBzImage(bzImage()).version).toBe(0x020f);
  });
  test("a zImage (LOADED_HIGH clear) and a 64-bit kernel (XLF_KERNEL_64) are refused", () => {
    expect(bootError(() => parseBzImage(bzImage({ loadflags: 0 })))).toMatch(/zImage/);
    expect(bootError(() => parseBzImage(bzImage({ xloadflags: 0x0003 })))).toMatch(/64-bit/);
    // XLF_EFI_HANDOVER_32 alone (bit 2) is a 32-bit kernel, as Debian's 686 image has.
    expect(parseBzImage(bzImage({ xloadflags: 0x0004 })).xloadflags).toBe(4);
  });
  test("setup_sects 0 means 4; the protected-mode kernel starts after the setup sectors", () => {
    expect(parseBzImage(bzImage({ setupSects: 0 })).pmOffset).toBe(5 * 512);
    expect(parseBzImage(bzImage({ setupSects: 30 })).pmOffset).toBe(31 * 512);
    const cut = bzImage({ setupSects: 30 }).subarray(0, 31 * 512);
    expect(bootError(() => parseBzImage(cut))).toMatch(/truncated/);
  });
});

describe("loading", () => {
  const load = (img: Uint8Array, memBytes = 64 * MiB, cmdline = "console=ttyS0 quiet", initrd: Uint8Array | null = null) => {
    const ram = new Uint8Array(memBytes);
    return { ram, r: loadLinux(ram, img, { cmdline, initrd, memBytes }) };
  };

  test("the protected-mode kernel is at 1 MiB and the entry is 1 MiB", () => {
    const img = bzImage({ setupSects: 6 });
    const { ram, r } = load(img);
    expect(r.entry).toBe(0x100000);
    expect([...ram.subarray(0x100000, 0x100000 + 8192)]).toEqual([...img.subarray(7 * 512)]);
  });

  test("zero page: setup header copied, loader fields, command line, screen_info, e820", () => {
    const img = bzImage();
    const initrd = new Uint8Array(300_000).fill(0x5a);
    const { ram, r } = load(img, 64 * MiB, "console=ttyS0 quiet", initrd);
    const z = r.zeroPage;
    // The setup header (0x1f1 up to 0x202 + byte at 0x201) is the kernel's.
    expect(new TextDecoder().decode(ram.subarray(z + 0x202, z + 0x206))).toBe("HdrS");
    expect(rd16(ram, z + 0x206)).toBe(0x020f);
    expect(rd16(ram, z + 0x1fe)).toBe(0xaa55);
    expect(rd32(ram, z + 0x258)).toBe(0x1000000);
    // type_of_loader: 0xFF, "undefined" (no assigned boot loader ID).
    expect(rd8(ram, z + 0x210)).toBe(0xff);
    expect(rd8(ram, z + 0x211) & 0x01).toBe(1);
    // cmd_line_ptr -> the NUL-terminated command line.
    expect(cstr(ram, rd32(ram, z + 0x228))).toBe("console=ttyS0 quiet");
    // ramdisk_image / ramdisk_size: page aligned, the bytes there, as high as RAM allows.
    const rdAt = rd32(ram, z + 0x218);
    expect(rd32(ram, z + 0x21c)).toBe(300_000);
    expect(rdAt % 4096).toBe(0);
    expect(rdAt + 300_000).toBeLessThanOrEqual(64 * MiB);
    expect(rdAt + 300_000 + 4096).toBeGreaterThan(64 * MiB);
    expect(ram.subarray(rdAt, rdAt + 300_000).every((b) => b === 0x5a)).toBe(true);
    // screen_info: mode 3, 80 columns, 25 lines, VGA, 16-line font.
    expect(rd8(ram, z + 0x06)).toBe(3);
    expect(rd8(ram, z + 0x07)).toBe(80);
    expect(rd8(ram, z + 0x0e)).toBe(25);
    expect(rd8(ram, z + 0x0f)).toBe(1);
    expect(rd16(ram, z + 0x10)).toBe(16);
    // alt_mem_k: KiB above 1 MiB.
    expect(rd32(ram, z + 0x1e0)).toBe(63 * 1024);
    // e820: low RAM to the EBDA, EBDA and BIOS reserved, the VGA hole absent, RAM from 1 MiB.
    expect(rd8(ram, z + 0x1e8)).toBe(4);
    const e = (i: number) => [rd64(ram, z + 0x2d0 + i * 20), rd64(ram, z + 0x2d0 + i * 20 + 8), rd32(ram, z + 0x2d0 + i * 20 + 16)];
    expect([0, 1, 2, 3].map(e)).toEqual([
      [0, 0x9fc00, 1],
      [0x9fc00, 0x400, 2],
      [0xf0000, 0x10000, 2],
      [0x100000, 63 * MiB, 1],
    ]);
    expect(e(4)).toEqual([0, 0, 0]);
  });

  test("the initrd stays below initrd_addr_max", () => {
    const { ram, r } = load(bzImage({ initrdMax: 0x37ffffff }), 1024 * MiB, "", new Uint8Array(5000));
    const at = rd32(ram, r.zeroPage + 0x218);
    expect(at + 5000).toBeLessThanOrEqual(0x38000000);
    expect(at).toBe(0x38000000 - 8192);
  });

  test("one-line errors: RAM too small for the kernel, initrd that does not fit, long command line", () => {
    // pref_address 16 MiB + init_size 8 MiB: 24 MiB are needed.
    expect(bootError(() => load(bzImage(), 16 * MiB))).toMatch(/needs RAM up to 0x1800000/);
    expect(bootError(() => load(bzImage(), 26 * MiB, "", new Uint8Array(3 * MiB)))).toMatch(/initrd .*does not fit/);
    expect(bootError(() => load(bzImage({ initrdMax: 0x00ffffff }), 64 * MiB, "", new Uint8Array(4096)))).toMatch(/initrd .*does not fit/);
    expect(bootError(() => load(bzImage({ cmdlineSize: 10 }), 64 * MiB, "console=ttyS0"))).toMatch(/command line too long/);
  });
});

describe("entry state", () => {
  test("flat protected mode, __BOOT_CS/__BOOT_DS from a real GDT, ESI = zero page, IF = 0", () => {
    const m = new Machine({ memBytes: 64 * MiB, bootEpochSeconds: 0 });
    bootLinux(m, { kernel: bzImage(), initrd: null, cmdline: "x" });
    const c = m.cpu;
    expect(c.eip).toBe(0x100000);
    expect(c.cr0 & 1).toBe(1);
    expect(c.cr0 >>> 31).toBe(0);
    expect(c.eflags & 0x200).toBe(0);
    expect(c.sel[CS]).toBe(0x10);
    for (const s of [DS, ES, SS]) expect(c.sel[s]).toBe(0x18);
    expect(c.regs[6]).toBe(0x90000); // ESI
    expect([c.regs[3], c.regs[5], c.regs[7]]).toEqual([0, 0, 0]); // EBX, EBP, EDI
    expect(c.gdtLimit).toBeGreaterThanOrEqual(0x1f);
    // The descriptors in RAM: base 0, limit 0xfffff with 4 KiB granularity, 32-bit, present.
    const d = (sel: number) => m.ram.subarray(c.gdtBase + sel, c.gdtBase + sel + 8);
    expect([...d(0x10)]).toEqual([0xff, 0xff, 0, 0, 0, 0x9b, 0xcf, 0]);
    expect([...d(0x18)]).toEqual([0xff, 0xff, 0, 0, 0, 0x93, 0xcf, 0]);
    expect(rd8(m.ram, 0x90000 + 0x210)).toBe(0xff);
  });
});
