/**
 * Machine configuration shared by `run`, `record`, `replay` and `gdb`: building a machine from
 * images and options, describing it in a log header, and rebuilding it from a header.
 */
import { Machine } from "../machine/machine.ts";
import { imageInfo, type ComparedSection, type ImageInfo, type HashRecord } from "./log/format.ts";
import { hashBytes, hashComponents, RamHasher } from "./hash.ts";
import { StateWriter } from "../machine/snapshot.ts";
import type { Board } from "../boards/board.ts";
import { boardFor, checkBoardVersion, DEFAULT_BOARD, newestVersion } from "../boards/registry.ts";

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
  /** The CPU model (a log header's `cpu`); default: the board's model of new recordings. */
  cpuModel?: string;
  /** The board (lib/boards/registry.ts; a log header's `board`); default: the PC. */
  board?: string;
  /** The board's version (a log header's `boardVersion`); default: its newest. */
  boardVersion?: number;
}

/** The board a configuration names. */
export function boardOf(cfg: MachineConfig): Board {
  return boardFor(cfg.board ?? DEFAULT_BOARD);
}

/** The PC's devices, in order (the log header's `devices` of a PC recording). */
export const DEVICE_LIST = [...boardFor(DEFAULT_BOARD).devices];

/** Check images before booting: one-line errors for anything the board cannot boot. */
export function validateConfig(cfg: MachineConfig): void {
  const board = boardOf(cfg);
  if (cfg.boardVersion !== undefined) checkBoardVersion(board, cfg.boardVersion);
  board.validate(cfg);
}

export function buildMachine(cfg: MachineConfig): Machine {
  const board = boardOf(cfg);
  if (cfg.boardVersion !== undefined) checkBoardVersion(board, cfg.boardVersion);
  board.validate(cfg);
  const m = new Machine({
    memBytes: cfg.memBytes, ips: cfg.ips, bootEpochSeconds: cfg.bootDate, rom: cfg.bios?.data,
    cpuModel: cfg.cpuModel, board, boardVersion: cfg.boardVersion,
  });
  board.boot(m, cfg);
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
  const board = boardOf(cfg);
  return {
    board: board.name,
    isa: board.isa,
    cpu: cfg.cpuModel ?? board.defaultCpu,
    boardVersion: cfg.boardVersion ?? newestVersion(board),
    memoryBytes: cfg.memBytes,
    devices: [...board.devices],
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
  const board = boardFor(c.board ?? DEFAULT_BOARD, c.isa ?? boardFor(DEFAULT_BOARD).isa);
  const cfg: MachineConfig = {
    kernel: null, bios: null, modules: [],
    cmdline: typeof c.cmdline === "string" ? c.cmdline : "",
    memBytes: c.memoryBytes, ips: c.ips, bootDate: c.bootDate,
    // A log made before the header named its CPU model was recorded with the legacy model.
    cpuModel: c.cpu ?? board.legacyCpu,
    // A log made before boards had versions was recorded with version 1.
    boardVersion: c.boardVersion ?? 1,
  };
  if (board.name !== DEFAULT_BOARD) cfg.board = board.name;
  board.checkCpu(cfg.cpuModel!); // an unknown model: one line, before anything is built
  checkBoardVersion(board, cfg.boardVersion!);
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

/** The screen as the guest shows it: text, attributes and cursor (empty for a board without one). */
export function screenBytes(m: Machine): Uint8Array {
  const w = new StateWriter();
  if (!m.display) return w.finish();
  const s = m.display.screen();
  w.str(s.rows.join("\n")).bytes(s.attrs).u8(s.cursor.row).u8(s.cursor.col).bool(s.cursor.visible);
  return w.finish();
}

export function screenHash(m: Machine): string {
  return hashBytes(screenBytes(m));
}
