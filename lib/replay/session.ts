/**
 * Machine configuration shared by `run`, `record`, `replay` and `gdb`: building a machine from
 * images and options, describing it in a log header, and rebuilding it from a header.
 */
import { Machine } from "../machine/machine.ts";
import { bootLinux, bootMultiboot } from "../machine/boot.ts";
import { isBzImage, parseBzImage } from "../boot/linux.ts";
import { BootError, parseElf32, isElf } from "../boot/elf.ts";
import { findMultibootHeader } from "../boot/multiboot.ts";
import { imageInfo, type ComparedSection, type ImageInfo, type HashRecord } from "./log/format.ts";
import { hashBytes, hashComponents, RamHasher } from "./hash.ts";
import { StateWriter } from "../machine/snapshot.ts";
import { PC_BOARD, PC_DEFAULT_CPU, PC_LEGACY_CPU, pcCpuModel } from "../boards/pc.ts";

export interface NamedImage {
  name: string;
  data: Uint8Array;
}

export interface MachineConfig {
  kernel: NamedImage | null;
  bios: NamedImage | null;
  modules: (NamedImage & { cmdline: string })[];
  /** A Linux kernel's initrd (--initrd); only with a bzImage kernel. */
  initrd?: NamedImage | null;
  /** The Multiboot command line (conventionally the kernel name, then --append); for a bzImage, the kernel command line. */
  cmdline: string;
  memBytes: number;
  ips: number;
  bootDate: number;
  /** The CPU model (a log header's `cpu`); default: the model of new recordings. */
  cpuModel?: string;
}

export const DEVICE_LIST = ["pic", "pit", "cmos", "com1", "com2", "i8042", "vga", "debug", "sysctl"];

/** Check images before booting: one-line errors for anything that is not a kernel. */
export function validateConfig(cfg: MachineConfig): void {
  if (!cfg.kernel && !cfg.bios) throw new BootError("nothing to boot: give a Multiboot kernel ELF or --bios ROM");
  if (cfg.kernel) {
    const k = cfg.kernel.data;
    if (isBzImage(k)) {
      try {
        parseBzImage(k);
      } catch (e) {
        if (e instanceof BootError) throw new BootError(`${cfg.kernel.name}: ${e.message}`);
        throw e;
      }
      if (cfg.modules.length) throw new BootError("--module is for Multiboot kernels; a Linux kernel takes --initrd");
      return validateMem(cfg);
    }
    if (cfg.initrd) throw new BootError(`--initrd is for Linux kernels (bzImage); ${cfg.kernel.name} is not one`);
    if (isElf(k)) parseElf32(k);
    if (!findMultibootHeader(k)) throw new BootError(`${cfg.kernel.name}: not a Multiboot kernel: no Multiboot header in the first 8 KiB`);
  }
  if (cfg.bios && (cfg.bios.data.length === 0 || cfg.bios.data.length > 0x100000 || cfg.bios.data.length % 0x1000 !== 0)) {
    throw new BootError(`${cfg.bios.name}: a ROM image must be a multiple of 4 KiB and at most 1 MiB`);
  }
  validateMem(cfg);
}

function validateMem(cfg: MachineConfig): void {
  if (cfg.memBytes < 2 << 20) throw new BootError("-m: at least 2 MiB of RAM are needed");
}

export function buildMachine(cfg: MachineConfig): Machine {
  validateConfig(cfg);
  const m = new Machine({ memBytes: cfg.memBytes, ips: cfg.ips, bootEpochSeconds: cfg.bootDate, rom: cfg.bios?.data, cpuModel: cfg.cpuModel });
  if (cfg.kernel && isBzImage(cfg.kernel.data)) {
    bootLinux(m, { kernel: cfg.kernel.data, initrd: cfg.initrd?.data ?? null, cmdline: cfg.cmdline });
  } else if (cfg.kernel) {
    bootMultiboot(m, {
      kernel: cfg.kernel.data,
      cmdline: cfg.cmdline,
      modules: cfg.modules.map((x) => ({ data: x.data, cmdline: x.cmdline, name: x.name })),
    });
  }
  return m;
}

export function imagesOf(cfg: MachineConfig): { info: ImageInfo; data: Uint8Array }[] {
  const out: { info: ImageInfo; data: Uint8Array }[] = [];
  if (cfg.kernel) out.push({ info: imageInfo("kernel", cfg.kernel.name, cfg.kernel.data), data: cfg.kernel.data });
  if (cfg.initrd) out.push({ info: imageInfo("initrd", cfg.initrd.name, cfg.initrd.data), data: cfg.initrd.data });
  for (const m of cfg.modules) out.push({ info: imageInfo("module", m.name, m.data), data: m.data });
  if (cfg.bios) out.push({ info: imageInfo("bios", cfg.bios.name, cfg.bios.data), data: cfg.bios.data });
  return out;
}

export function comparedSection(cfg: MachineConfig, args: string[]): ComparedSection {
  return {
    board: PC_BOARD.board,
    isa: PC_BOARD.isa,
    cpu: cfg.cpuModel ?? PC_DEFAULT_CPU,
    memoryBytes: cfg.memBytes,
    devices: DEVICE_LIST,
    ips: cfg.ips,
    args,
    images: imagesOf(cfg).map((x) => x.info),
    bootDate: cfg.bootDate,
    cmdline: cfg.cmdline,
    moduleCmdlines: cfg.modules.map((x) => x.cmdline),
  };
}

/** Rebuild the configuration a log was recorded with, given the image bytes by role/name. */
export function configFromCompared(c: ComparedSection, find: (info: ImageInfo) => Uint8Array): MachineConfig {
  // A log made before the header named its machine is a PC log.
  const board = c.board ?? PC_BOARD.board, isa = c.isa ?? PC_BOARD.isa;
  if (board !== PC_BOARD.board || isa !== PC_BOARD.isa) {
    throw new BootError(`the log needs a ${JSON.stringify(board)} board with a ${JSON.stringify(isa)} CPU; this rrx has: ${PC_BOARD.board} (${PC_BOARD.isa})`);
  }
  const cfg: MachineConfig = {
    kernel: null, bios: null, modules: [],
    cmdline: typeof c.cmdline === "string" ? c.cmdline : "",
    memBytes: c.memoryBytes, ips: c.ips, bootDate: c.bootDate,
    // A log made before the header named its CPU model was recorded with the legacy model.
    cpuModel: c.cpu ?? PC_LEGACY_CPU,
  };
  pcCpuModel(cfg.cpuModel); // an unknown model: one line, before anything is built
  const mc = Array.isArray(c.moduleCmdlines) ? (c.moduleCmdlines as string[]) : [];
  let mi = 0;
  for (const info of c.images) {
    const data = find(info);
    if (info.role === "kernel") cfg.kernel = { name: info.name, data };
    else if (info.role === "bios") cfg.bios = { name: info.name, data };
    else if (info.role === "initrd") cfg.initrd = { name: info.name, data };
    else if (info.role === "module") cfg.modules.push({ name: info.name, data, cmdline: mc[mi++] ?? info.name });
  }
  return cfg;
}

/**
 * State hashing for a machine. RAM is hashed incrementally from the pages dirtied since the
 * previous record; CPU, each device and the screen are hashed from their saved state.
 */
export class MachineHasher {
  private readonly ramHasher: RamHasher;
  constructor(private readonly m: Machine) {
    this.ramHasher = new RamHasher(m.ram, m.mem.addDirtyTracker());
  }
  /** After anything rewrote RAM wholesale (checkpoint restore). */
  reset(): void {
    this.ramHasher.reset();
    this.m.cpu.flushWriteTlb();
  }
  record(withPages = false): HashRecord {
    this.ramHasher.update();
    this.m.cpu.flushWriteTlb();
    const devices: Record<string, Uint8Array> = {};
    let cpu: Uint8Array = new Uint8Array();
    for (const c of this.m.componentStates()) {
      if (c.name === "cpu") cpu = c.bytes;
      else devices[c.name] = c.bytes;
    }
    return hashComponents({ cpu, ram: this.ramHasher, screen: screenBytes(this.m), devices, withPages });
  }
}

/** The screen as the guest shows it: text, attributes and cursor. */
export function screenBytes(m: Machine): Uint8Array {
  const s = m.vga.screen();
  const w = new StateWriter();
  w.str(s.rows.join("\n")).bytes(s.attrs).u8(s.cursor.row).u8(s.cursor.col).bool(s.cursor.visible);
  return w.finish();
}

export function screenHash(m: Machine): string {
  return hashBytes(screenBytes(m));
}
