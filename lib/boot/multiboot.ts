/**
 * Multiboot v1 loader: finds the Multiboot header, loads an ELF32 kernel (or an a.out-kludge
 * image) into guest RAM, places modules, and builds the Multiboot information structure.
 *
 * The caller sets the CPU to the Multiboot entry state: EAX=0x2BADB002, EBX=infoAddr,
 * flat 4 GiB CS/DS/ES/SS, CR0.PE=1, paging off, IF=0, EIP=entry.
 *
 * Behaviour follows GRUB/QEMU where they agree: when header flag bit 16 (the "a.out kludge")
 * is set its addresses are used even for an ELF file; otherwise the image must be ELF32 i386
 * and its PT_LOAD segments are loaded at their physical addresses (p_paddr).
 */

import { BootError, isElf, loadSegments, parseElf32 } from "./elf.ts";

export { BootError } from "./elf.ts";

export const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
/** The header must lie entirely within this many bytes from the start of the image. */
export const MULTIBOOT_SEARCH = 8192;

/** Header flag bits. Bits 0-15 are requirements; bits 16-31 optional features. */
export const MB_FLAG_PAGE_ALIGN = 1 << 0;
export const MB_FLAG_MEMORY_INFO = 1 << 1;
export const MB_FLAG_VIDEO_MODE = 1 << 2;
export const MB_FLAG_AOUT_KLUDGE = 1 << 16;

/** Information structure flag bits. */
export const MBI_MEMORY = 1 << 0;
export const MBI_BOOT_DEVICE = 1 << 1;
export const MBI_CMDLINE = 1 << 2;
export const MBI_MODS = 1 << 3;
export const MBI_MMAP = 1 << 6;
export const MBI_BOOT_LOADER_NAME = 1 << 9;

/** Where the information structure and everything it points to is built. */
export const MB_INFO_BASE = 0x9000;
/** The information area must end below this address (start of the EBDA). */
export const MB_INFO_LIMIT = 0x9fc00;
const MBI_SIZE = 88;
const MMAP_ENTRY_SIZE = 24; // 4-byte size field + 20-byte entry
const MOD_ENTRY_SIZE = 16;
const PAGE = 4096;

export interface MultibootHeader {
  /** Byte offset of the header in the image. */
  offset: number;
  flags: number;
  checksum: number;
  /** Present when flag bit 16 is set. */
  aout?: {
    headerAddr: number;
    loadAddr: number;
    loadEndAddr: number;
    bssEndAddr: number;
    entryAddr: number;
  };
}

export interface MultibootModule {
  data: Uint8Array;
  cmdline: string;
  name: string;
}

export interface MultibootOptions {
  cmdline: string;
  modules: MultibootModule[];
  /** Guest RAM size in bytes. */
  memBytes: number;
  /** Defaults to "rrx". */
  bootloaderName?: string;
}

export interface MultibootLoadResult {
  /** Physical address to jump to. */
  entry: number;
  /** Physical address of the Multiboot information structure (EBX at entry). */
  infoAddr: number;
  /** Every [start, end) range written: kernel segments (with bss), modules, then the info area. */
  loadedRanges: [number, number][];
  /** Where each module was placed, in order: [start, end). */
  moduleRanges: [number, number][];
  /** True if the kernel was loaded through the a.out kludge rather than ELF program headers. */
  aoutKludge: boolean;
}

const u32 = (x: number): number => x >>> 0;
const hex = (x: number): string => "0x" + u32(x).toString(16);
const alignUp = (x: number, a: number): number => Math.ceil(x / a) * a;

function readU32(image: Uint8Array, off: number): number {
  return u32(image[off]! | (image[off + 1]! << 8) | (image[off + 2]! << 16) | (image[off + 3]! << 24));
}

function writeU32(ram: Uint8Array, addr: number, v: number): void {
  ram[addr] = v & 0xff;
  ram[addr + 1] = (v >>> 8) & 0xff;
  ram[addr + 2] = (v >>> 16) & 0xff;
  ram[addr + 3] = (v >>> 24) & 0xff;
}

function writeU64(ram: Uint8Array, addr: number, v: number): void {
  writeU32(ram, addr, v % 0x1_0000_0000);
  writeU32(ram, addr + 4, Math.floor(v / 0x1_0000_0000));
}

/** Encode a string as NUL-terminated bytes (UTF-8). */
function cString(s: string): Uint8Array {
  const body = new TextEncoder().encode(s);
  const out = new Uint8Array(body.length + 1);
  out.set(body);
  return out;
}

/**
 * Find a valid Multiboot v1 header: the magic at a 4-byte aligned offset with the whole header
 * (12 bytes, 32 with the a.out fields) inside the first 8 KiB and magic+flags+checksum == 0.
 * Returns null if there is none.
 */
export function findMultibootHeader(image: Uint8Array): MultibootHeader | null {
  const end = Math.min(image.length, MULTIBOOT_SEARCH);
  for (let off = 0; off + 12 <= end; off += 4) {
    if (readU32(image, off) !== MULTIBOOT_HEADER_MAGIC) continue;
    const flags = readU32(image, off + 4);
    const checksum = readU32(image, off + 8);
    if (u32(MULTIBOOT_HEADER_MAGIC + flags + checksum) !== 0) continue;
    const header: MultibootHeader = { offset: off, flags, checksum };
    if (flags & MB_FLAG_AOUT_KLUDGE) {
      if (off + 32 > end) continue;
      header.aout = {
        headerAddr: readU32(image, off + 12),
        loadAddr: readU32(image, off + 16),
        loadEndAddr: readU32(image, off + 20),
        bssEndAddr: readU32(image, off + 24),
        entryAddr: readU32(image, off + 28),
      };
    }
    return header;
  }
  return null;
}

interface Segment {
  addr: number;
  /** Bytes to copy (may be shorter than size; the rest is zeroed). */
  bytes: Uint8Array;
  size: number;
}

function elfSegments(image: Uint8Array): { segments: Segment[]; entry: number } {
  const elf = parseElf32(image);
  const phs = loadSegments(elf);
  if (phs.length === 0) throw new BootError("ELF kernel has no loadable segments");
  let entry = elf.entry;
  // A higher-half kernel links at virtual addresses but loads at p_paddr: translate the entry.
  for (const ph of phs) {
    if (ph.vaddr !== ph.paddr && entry >= ph.vaddr && entry < ph.vaddr + ph.memsz) {
      entry = u32(entry - ph.vaddr + ph.paddr);
      break;
    }
  }
  const segments = phs.map((ph) => ({
    addr: ph.paddr,
    bytes: image.subarray(ph.offset, ph.offset + ph.filesz),
    size: ph.memsz,
  }));
  return { segments, entry };
}

function aoutSegments(image: Uint8Array, h: MultibootHeader): { segments: Segment[]; entry: number } {
  const a = h.aout!;
  if (a.loadAddr > a.headerAddr) {
    throw new BootError(`bad Multiboot a.out kludge: load_addr ${hex(a.loadAddr)} is above header_addr ${hex(a.headerAddr)}`);
  }
  const fileStart = h.offset - (a.headerAddr - a.loadAddr);
  if (fileStart < 0) {
    throw new BootError("bad Multiboot a.out kludge: load_addr is before the start of the file");
  }
  let loadSize: number;
  if (a.loadEndAddr === 0) {
    loadSize = image.length - fileStart;
  } else {
    if (a.loadEndAddr < a.loadAddr) {
      throw new BootError(`bad Multiboot a.out kludge: load_end_addr ${hex(a.loadEndAddr)} is below load_addr`);
    }
    loadSize = a.loadEndAddr - a.loadAddr;
  }
  if (fileStart + loadSize > image.length) {
    throw new BootError("truncated kernel image: the a.out kludge load range extends past the end of the file");
  }
  let size = loadSize;
  if (a.bssEndAddr !== 0) {
    if (a.bssEndAddr < a.loadAddr + loadSize) {
      throw new BootError(`bad Multiboot a.out kludge: bss_end_addr ${hex(a.bssEndAddr)} is below the loaded image`);
    }
    size = a.bssEndAddr - a.loadAddr;
  }
  return {
    segments: [{ addr: a.loadAddr, bytes: image.subarray(fileStart, fileStart + loadSize), size }],
    entry: a.entryAddr,
  };
}

function overlaps(a0: number, a1: number, b0: number, b1: number): boolean {
  return a0 < b1 && b0 < a1;
}

function describeMem(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}

/**
 * Load a Multiboot v1 kernel and its modules into `ram` and build the information structure.
 * Throws BootError (one-line message) if the image cannot be booted.
 */
export function loadMultiboot(ram: Uint8Array, image: Uint8Array, opts: MultibootOptions): MultibootLoadResult {
  const memBytes = opts.memBytes;
  const limit = Math.min(memBytes, ram.length);
  const header = findMultibootHeader(image);
  if (!header) {
    if (isElf(image) && image.length > 4 && image[4] === 2) {
      throw new BootError("64-bit ELF kernels are not supported yet");
    }
    throw new BootError("not a Multiboot kernel: no Multiboot header in the first 8 KiB");
  }
  const unsupported = header.flags & 0xfff8;
  if (unsupported) {
    throw new BootError(`unsupported Multiboot header requirement flags ${hex(unsupported)}`);
  }

  let loaded: { segments: Segment[]; entry: number };
  const aoutKludge = (header.flags & MB_FLAG_AOUT_KLUDGE) !== 0;
  if (aoutKludge) {
    loaded = aoutSegments(image, header);
  } else if (isElf(image)) {
    loaded = elfSegments(image);
  } else {
    throw new BootError("cannot load kernel: not an ELF file and the Multiboot header has no a.out kludge (flag bit 16)");
  }

  // Lay out the information area: struct, memory map, module list, then strings.
  const mmap: [number, number, number][] = [
    [0, 0x9fc00, 1],
    [0x9fc00, 0x400, 2],
    [0xf0000, 0x10000, 2],
  ];
  if (memBytes > 0x100000) mmap.push([0x100000, memBytes - 0x100000, 1]);
  const mmapAddr = MB_INFO_BASE + MBI_SIZE;
  const modsAddr = mmapAddr + mmap.length * MMAP_ENTRY_SIZE;
  let strAddr = modsAddr + opts.modules.length * MOD_ENTRY_SIZE;
  const strings: { addr: number; bytes: Uint8Array }[] = [];
  const addString = (s: string): number => {
    const bytes = cString(s);
    const addr = strAddr;
    strings.push({ addr, bytes });
    strAddr += bytes.length;
    return addr;
  };
  const cmdlineAddr = addString(opts.cmdline);
  const nameAddr = addString(opts.bootloaderName ?? "rrx");
  const modStringAddrs = opts.modules.map((m) => addString(m.cmdline));
  const infoEnd = alignUp(strAddr, 4);
  if (infoEnd > MB_INFO_LIMIT) {
    throw new BootError(`Multiboot information (command lines) too large: needs ${infoEnd - MB_INFO_BASE} bytes at ${hex(MB_INFO_BASE)}`);
  }
  if (infoEnd > limit) throw new BootError(`memory size ${describeMem(memBytes)} is too small to boot`);

  // Check the kernel segments before writing anything.
  const loadedRanges: [number, number][] = [];
  let kernelEnd = 0;
  for (const seg of loaded.segments) {
    const start = seg.addr;
    const end = seg.addr + seg.size;
    const range = `${hex(start)}-${hex(end)}`;
    if (end > 0x1_0000_0000) throw new BootError(`kernel segment ${range} wraps past 4 GiB`);
    if (end > limit) {
      throw new BootError(`kernel does not fit in memory: segment ${range} exceeds ${describeMem(memBytes)}`);
    }
    if (overlaps(start, end, MB_INFO_BASE, infoEnd)) {
      throw new BootError(`kernel segment ${range} overlaps the Multiboot information area ${hex(MB_INFO_BASE)}-${hex(infoEnd)}`);
    }
    for (const [s, e] of loadedRanges) {
      if (overlaps(start, end, s, e)) throw new BootError(`kernel segments overlap at ${range}`);
    }
    loadedRanges.push([start, end]);
    kernelEnd = Math.max(kernelEnd, end);
  }
  const entry = loaded.entry;
  if (!loadedRanges.some(([s, e]) => entry >= s && entry < e)) {
    throw new BootError(`kernel entry point ${hex(entry)} is outside the loaded image`);
  }

  // Modules: page-aligned, one after the other, after the kernel.
  const moduleRanges: [number, number][] = [];
  let next = alignUp(Math.max(kernelEnd, 0x100000), PAGE);
  for (const m of opts.modules) {
    const start = next;
    const end = start + m.data.length;
    if (end > limit) {
      throw new BootError(`module ${m.name} (${m.data.length} bytes at ${hex(start)}) does not fit in ${describeMem(memBytes)} of memory`);
    }
    moduleRanges.push([start, end]);
    next = alignUp(end, PAGE);
  }

  // Write the kernel (zeroing bss) and the modules.
  for (const seg of loaded.segments) {
    ram.fill(0, seg.addr, seg.addr + seg.size);
    ram.set(seg.bytes, seg.addr);
  }
  opts.modules.forEach((m, i) => ram.set(m.data, moduleRanges[i]![0]));
  loadedRanges.push(...moduleRanges);

  // Write the information structure.
  ram.fill(0, MB_INFO_BASE, infoEnd);
  const memLowerKiB = 639;
  const memUpperKiB = Math.max(0, Math.floor(memBytes / 1024) - 1024);
  const b = MB_INFO_BASE;
  writeU32(ram, b + 0, MBI_MEMORY | MBI_CMDLINE | MBI_MODS | MBI_MMAP | MBI_BOOT_LOADER_NAME);
  writeU32(ram, b + 4, memLowerKiB);
  writeU32(ram, b + 8, memUpperKiB);
  writeU32(ram, b + 16, cmdlineAddr);
  writeU32(ram, b + 20, opts.modules.length);
  writeU32(ram, b + 24, modsAddr);
  writeU32(ram, b + 44, mmap.length * MMAP_ENTRY_SIZE);
  writeU32(ram, b + 48, mmapAddr);
  writeU32(ram, b + 64, nameAddr);
  mmap.forEach(([base, length, type], i) => {
    const e = mmapAddr + i * MMAP_ENTRY_SIZE;
    writeU32(ram, e, MMAP_ENTRY_SIZE - 4);
    writeU64(ram, e + 4, base);
    writeU64(ram, e + 12, length);
    writeU32(ram, e + 20, type);
  });
  moduleRanges.forEach(([start, end], i) => {
    const e = modsAddr + i * MOD_ENTRY_SIZE;
    writeU32(ram, e, start);
    writeU32(ram, e + 4, end);
    writeU32(ram, e + 8, modStringAddrs[i]!);
  });
  for (const s of strings) ram.set(s.bytes, s.addr);
  loadedRanges.push([MB_INFO_BASE, infoEnd]);

  return { entry, infoAddr: MB_INFO_BASE, loadedRanges, moduleRanges, aoutKludge };
}
