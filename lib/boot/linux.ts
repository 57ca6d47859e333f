/**
 * The Linux/x86 boot protocol, 32-bit entry (Documentation/arch/x86/boot.rst, "32-bit boot
 * protocol", and zero-page.rst): detect a bzImage by its setup header, load the protected-mode
 * kernel at 1 MiB and the initrd high in RAM, and build the zero page (struct boot_params) that
 * the real-mode setup code would have filled from BIOS calls. The kernel's real-mode part is
 * never run: rrx has no BIOS.
 *
 * The caller enters the kernel in flat protected mode with paging off, interrupts off,
 * CS = __BOOT_CS (0x10), DS/ES/SS = __BOOT_DS (0x18) from the GDT written here, ESI = the zero
 * page and EBP = EDI = EBX = 0 (see setLinuxEntryState in lib/boards/pc.ts).
 */

import { BootError } from "./elf.ts";

export { BootError } from "./elf.ts";

/** "HdrS" at 0x202, little-endian. */
export const LINUX_HDRS_MAGIC = 0x53726448;
/** Lowest protocol this loader handles: 2.06 added cmdline_size (and initrd_addr_max is 2.03). */
export const LINUX_MIN_PROTOCOL = 0x0206;
/** Where the protected-mode kernel of a bzImage is loaded (the default code32_start). */
export const LINUX_KERNEL_ADDR = 0x100000;
/** The zero page, the command line and the boot GDT: in conventional memory, below the EBDA. */
export const LINUX_GDT_ADDR = 0x8f000;
export const LINUX_ZERO_PAGE = 0x90000;
export const LINUX_CMDLINE_ADDR = 0x91000;
const CMDLINE_LIMIT = 0x9fc00;
/** Selectors the 32-bit entry requires. */
export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;
/** type_of_loader for a boot loader with no assigned ID (boot.rst). */
export const LOADER_TYPE_UNDEFINED = 0xff;

/** loadflags and xloadflags bits used here. */
const LOADED_HIGH = 0x01;
const QUIET_FLAG = 0x20;
const XLF_KERNEL_64 = 0x01;

/** E820 types. */
export const E820_RAM = 1;
export const E820_RESERVED = 2;

/** Zero-page offsets (zero-page.rst). */
export const ZP = {
  screenInfo: 0x000,
  altMemK: 0x1e0,
  e820Entries: 0x1e8,
  setupHeader: 0x1f1,
  e820Table: 0x2d0,
} as const;
/** Setup header offsets, relative to the start of the image or the zero page. */
export const HDR = {
  setupSects: 0x1f1,
  bootFlag: 0x1fe,
  jump: 0x200,
  header: 0x202,
  version: 0x206,
  typeOfLoader: 0x210,
  loadflags: 0x211,
  code32Start: 0x214,
  ramdiskImage: 0x218,
  ramdiskSize: 0x21c,
  heapEndPtr: 0x224,
  cmdLinePtr: 0x228,
  initrdAddrMax: 0x22c,
  kernelAlignment: 0x230,
  relocatableKernel: 0x234,
  xloadflags: 0x236,
  cmdlineSize: 0x238,
  hardwareSubarch: 0x23c,
  prefAddress: 0x258,
  initSize: 0x260,
} as const;

export interface BzImageHeader {
  /** Protocol version, e.g. 0x020f for 2.15. */
  version: number;
  setupSects: number;
  loadflags: number;
  xloadflags: number;
  initrdAddrMax: number;
  cmdlineSize: number;
  /** Where the decompressed kernel goes (pref_address, 2.10+), and how much it needs from there. */
  prefAddress: number;
  initSize: number;
  /** Byte offset and length of the protected-mode kernel in the file. */
  pmOffset: number;
  pmSize: number;
  /** End of the setup header in the file (0x202 + the byte at 0x201). */
  headerEnd: number;
}

export interface LinuxOptions {
  /** The kernel command line (without the kernel's name). */
  cmdline: string;
  initrd?: Uint8Array | null;
  /** Guest RAM size in bytes. */
  memBytes: number;
}

export interface LinuxLoadResult {
  entry: number;
  zeroPage: number;
  gdtAddr: number;
  gdtLimit: number;
  /** [start, end) of the initrd in RAM, if any. */
  initrd: [number, number] | null;
}

const u8 = (b: Uint8Array, o: number) => b[o] ?? 0;
const u16 = (b: Uint8Array, o: number) => u8(b, o) | (u8(b, o + 1) << 8);
const u32 = (b: Uint8Array, o: number) => (u16(b, o) | (u16(b, o + 2) << 16)) >>> 0;
const u64lo = (b: Uint8Array, o: number) => u32(b, o) + u32(b, o + 4) * 0x1_0000_0000;
const hex = (x: number) => "0x" + x.toString(16);
const mib = (x: number) => `${(x / (1 << 20)).toFixed(x % (1 << 20) === 0 ? 0 : 1)} MiB`;

function w8(b: Uint8Array, o: number, v: number) { b[o] = v & 0xff; }
function w16(b: Uint8Array, o: number, v: number) { w8(b, o, v); w8(b, o + 1, v >>> 8); }
function w32(b: Uint8Array, o: number, v: number) { w16(b, o, v & 0xffff); w16(b, o + 2, v >>> 16); }
function w64(b: Uint8Array, o: number, v: number) { w32(b, o, v % 0x1_0000_0000); w32(b, o + 4, Math.floor(v / 0x1_0000_0000)); }

/** True if the image has the "HdrS" setup header of a Linux kernel (bzImage or zImage). */
export function isBzImage(image: Uint8Array): boolean {
  return image.length >= 0x206 && u32(image, HDR.header) === LINUX_HDRS_MAGIC;
}

/** Parse and check a bzImage's setup header; BootError (one line) for anything rrx cannot boot. */
export function parseBzImage(image: Uint8Array): BzImageHeader {
  if (!isBzImage(image)) throw new BootError("not a Linux kernel: no \"HdrS\" setup header at 0x202");
  const version = u16(image, HDR.version);
  const vs = `${version >> 8}.${String(version & 0xff).padStart(2, "0")}`;
  if (version >> 8 !== 2) throw new BootError(`Linux boot protocol ${vs} is newer than this loader understands (2.x)`);
  if (version < LINUX_MIN_PROTOCOL) throw new BootError(`Linux boot protocol ${vs} is too old: rrx needs 2.06 or later (kernel 2.6.22+)`);
  if (u16(image, HDR.bootFlag) !== 0xaa55) throw new BootError("bad Linux setup header: boot_flag at 0x1fe is not 0xAA55");
  const loadflags = u8(image, HDR.loadflags);
  if (!(loadflags & LOADED_HIGH)) throw new BootError("a zImage (loaded low): only bzImage kernels are supported");
  const xloadflags = u16(image, HDR.xloadflags);
  if (xloadflags & XLF_KERNEL_64) throw new BootError("a 64-bit (x86_64) kernel: rrx emulates a 32-bit i386 CPU");
  const setupSects = u8(image, HDR.setupSects) || 4;
  const pmOffset = (setupSects + 1) * 512;
  const headerEnd = 0x202 + u8(image, 0x201);
  if (pmOffset >= image.length || headerEnd > pmOffset) throw new BootError(`truncated Linux kernel: ${image.length} bytes, the protected-mode kernel starts at ${hex(pmOffset)}`);
  const hasPref = version >= 0x020a;
  return {
    version, setupSects, loadflags, xloadflags,
    initrdAddrMax: u32(image, HDR.initrdAddrMax),
    cmdlineSize: u32(image, HDR.cmdlineSize),
    prefAddress: hasPref ? u64lo(image, HDR.prefAddress) : LINUX_KERNEL_ADDR,
    initSize: hasPref ? u32(image, HDR.initSize) : 0,
    pmOffset,
    pmSize: image.length - pmOffset,
    headerEnd,
  };
}

/**
 * The memory map the zero page reports: the machine's RAM as it really is. Conventional memory
 * up to the EBDA, the EBDA and the BIOS area reserved, the VGA window and option-ROM area
 * (0xA0000-0xF0000) left out (a hole), then RAM from 1 MiB to the end.
 */
export function linuxE820(memBytes: number): [number, number, number][] {
  const map: [number, number, number][] = [
    [0, 0x9fc00, E820_RAM],
    [0x9fc00, 0x400, E820_RESERVED],
    [0xf0000, 0x10000, E820_RESERVED],
  ];
  if (memBytes > 0x100000) map.push([0x100000, memBytes - 0x100000, E820_RAM]);
  return map;
}

/**
 * Load a bzImage and its initrd into `ram` and build the zero page, the command line and a boot
 * GDT. Throws BootError (one line) when the kernel cannot be booted in this much RAM.
 */
export function loadLinux(ram: Uint8Array, image: Uint8Array, opts: LinuxOptions): LinuxLoadResult {
  const h = parseBzImage(image);
  const memBytes = Math.min(opts.memBytes, ram.length);
  // The kernel decompresses itself to pref_address and needs init_size bytes from there.
  const kernelEnd = Math.max(LINUX_KERNEL_ADDR + h.pmSize, h.prefAddress + h.initSize);
  if (kernelEnd > memBytes) {
    throw new BootError(`the kernel needs RAM up to ${hex(kernelEnd)} (${mib(kernelEnd)}) to decompress; give -m ${Math.ceil(kernelEnd / (1 << 20)) + 8} or more`);
  }
  const cmdline = new TextEncoder().encode(opts.cmdline);
  const cmdMax = h.cmdlineSize > 0 ? h.cmdlineSize : 255;
  if (cmdline.length > cmdMax) throw new BootError(`kernel command line too long: ${cmdline.length} bytes, the kernel takes at most ${cmdMax}`);
  if (LINUX_CMDLINE_ADDR + cmdline.length + 1 > CMDLINE_LIMIT) throw new BootError("kernel command line too long");

  let initrd: [number, number] | null = null;
  const rd = opts.initrd ?? null;
  if (rd && rd.length > 0) {
    // As high as possible: below initrd_addr_max and the end of RAM, page aligned, above the kernel.
    const top = Math.min(memBytes, h.initrdAddrMax + 1);
    const start = Math.floor((top - rd.length) / 4096) * 4096;
    if (start < kernelEnd) {
      throw new BootError(`initrd (${rd.length} bytes) does not fit in RAM between the kernel's end ${hex(kernelEnd)} and ${hex(top)}; give more memory with -m`);
    }
    initrd = [start, start + rd.length];
  }

  // Write the kernel and the initrd.
  ram.fill(0, LINUX_KERNEL_ADDR, Math.min(memBytes, kernelEnd));
  ram.set(image.subarray(h.pmOffset), LINUX_KERNEL_ADDR);
  if (initrd && rd) ram.set(rd, initrd[0]);

  // The boot GDT: null, unused, __BOOT_CS (flat 4 GiB code), __BOOT_DS (flat 4 GiB data).
  ram.fill(0, LINUX_GDT_ADDR, LINUX_GDT_ADDR + 32);
  ram.set([0xff, 0xff, 0, 0, 0, 0x9b, 0xcf, 0], LINUX_GDT_ADDR + BOOT_CS);
  ram.set([0xff, 0xff, 0, 0, 0, 0x93, 0xcf, 0], LINUX_GDT_ADDR + BOOT_DS);

  // The zero page: zeroed, the setup header copied from the image, then the loader's fields.
  const zp = LINUX_ZERO_PAGE;
  ram.fill(0, zp, zp + 4096);
  ram.set(image.subarray(HDR.setupSects, h.headerEnd), zp + HDR.setupSects);
  const z = ram.subarray(zp, zp + 4096);
  w8(z, HDR.typeOfLoader, LOADER_TYPE_UNDEFINED);
  w8(z, HDR.loadflags, (h.loadflags & ~QUIET_FLAG) & 0xff);
  w32(z, HDR.code32Start, LINUX_KERNEL_ADDR);
  w32(z, HDR.ramdiskImage, initrd ? initrd[0] : 0);
  w32(z, HDR.ramdiskSize, initrd ? initrd[1] - initrd[0] : 0);
  w32(z, HDR.cmdLinePtr, LINUX_CMDLINE_ADDR);
  w32(z, HDR.hardwareSubarch, 0); // a normal PC
  // screen_info: VGA colour text mode 3, 80x25, cursor at the top left, 8x16 font.
  const si = ZP.screenInfo;
  w8(z, si + 0x00, 0); // orig_x
  w8(z, si + 0x01, 0); // orig_y
  w16(z, si + 0x02, Math.min(0xffff, Math.max(0, Math.floor(memBytes / 1024) - 1024))); // ext_mem_k
  w8(z, si + 0x06, 3); // orig_video_mode
  w8(z, si + 0x07, 80); // orig_video_cols
  w16(z, si + 0x0a, 0x0003); // orig_video_ega_bx: colour (BH=0), 256 KiB (BL=3)
  w8(z, si + 0x0e, 25); // orig_video_lines
  w8(z, si + 0x0f, 1); // orig_video_isVGA
  w16(z, si + 0x10, 16); // orig_video_points
  w32(z, ZP.altMemK, Math.max(0, Math.floor(memBytes / 1024) - 1024));
  const e820 = linuxE820(memBytes);
  w8(z, ZP.e820Entries, e820.length);
  e820.forEach(([base, len, type], i) => {
    const o = ZP.e820Table + i * 20;
    w64(z, o, base); w64(z, o + 8, len); w32(z, o + 16, type);
  });
  ram.fill(0, LINUX_CMDLINE_ADDR, LINUX_CMDLINE_ADDR + cmdline.length + 1);
  ram.set(cmdline, LINUX_CMDLINE_ADDR);

  return { entry: LINUX_KERNEL_ADDR, zeroPage: zp, gdtAddr: LINUX_GDT_ADDR, gdtLimit: BOOT_DS + 7, initrd };
}
