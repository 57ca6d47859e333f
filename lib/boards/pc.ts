/**
 * The PC board's CPU: the one place above the CPU that knows the PC runs an x86. The PC board
 * (pc-board.ts: its devices and wiring) creates its CPU here, and the Multiboot and Linux
 * loaders (pc-boot.ts) set their entry states through here; everything else above the CPU
 * uses the ISA-neutral contract (lib/cpu/contract.ts). A layering test
 * (test/layering.test.ts) keeps lib/machine, lib/replay and lib/gdb from importing
 * lib/cpu/x86 or any particular board.
 */
import type { CpuBus } from "../cpu/contract.ts";
import type { PhysMem } from "../machine/ram.ts";
import { Cpu } from "../cpu/x86/cpu.ts";
import { CS, DS, ES, FS, GS, SS } from "../cpu/x86/decode.ts";
import { EAX, EBX, ESI } from "../cpu/x86/arch.ts";
import { DEFAULT_MODEL, LEGACY_MODEL, MODELS, findModel, type X86Model } from "../cpu/x86/model.ts";
import { BootError } from "../boot/elf.ts";
import { MULTIBOOT_BOOTLOADER_MAGIC } from "../boot/multiboot.ts";
import { BOOT_CS, BOOT_DS } from "../boot/linux.ts";

/** The board and its ISA, as a recording names them. */
export const PC_BOARD = { board: "pc", isa: "i386" } as const;

/** The PC's CPU: the contract (GuestCpu) and the x86 specifics the PC board wires (A20). */
export type PcCpu = Cpu;

/**
 * The PC's CPU, of the model named (a log header's `cpu`; lib/cpu/x86/model.ts). No name: the
 * default model of new recordings. An unknown name is a BootError naming the models there are.
 */
export function createPcCpu(bus: CpuBus, mem: PhysMem, model?: string): PcCpu {
  return new Cpu(bus, mem, pcCpuModel(model));
}

/** The CPU model a name stands for (no name: the default for new recordings). */
export function pcCpuModel(name?: string): X86Model {
  if (name === undefined) return DEFAULT_MODEL;
  const m = findModel(name);
  if (!m) throw new BootError(`unknown CPU model ${JSON.stringify(name)}; this rrx has: ${MODELS.map((x) => x.name).join(", ")}`);
  return m;
}

/** The CPU model of a log whose header names none (recorded before the header named one). */
export const PC_LEGACY_CPU = LEGACY_MODEL.name;
/** The CPU model new recordings use. */
export const PC_DEFAULT_CPU = DEFAULT_MODEL.name;

/** Flat 4 GiB segment caches as the Multiboot specification describes the entry state. */
export function setMultibootEntryState(cpu: PcCpu, entry: number, infoAddr: number): void {
  cpu.reset();
  cpu.cr0 = 0x60000011; // PE, ET (+ CD/NW as at reset); paging off
  const flat = (s: number, sel: number, ar: number) => {
    cpu.sel[s] = sel; cpu.segBase[s] = 0; cpu.segLimit[s] = 0xffffffff; cpu.segAr[s] = ar;
  };
  flat(CS, 0x08, 0xc09b);
  for (const s of [DS, ES, FS, GS, SS]) flat(s, 0x10, 0xc093);
  cpu.gdtBase = 0; cpu.gdtLimit = 0;
  cpu.idtBase = 0; cpu.idtLimit = 0;
  cpu.eflags = 2;
  cpu.regs.fill(0);
  cpu.regs[EAX] = MULTIBOOT_BOOTLOADER_MAGIC;
  cpu.regs[EBX] = infoAddr;
  cpu.eip = entry >>> 0;
  cpu.setCpl(0);
  cpu.modeChanged();
}

/**
 * The Linux 32-bit boot protocol's entry state: protected mode, paging and interrupts off,
 * CS = __BOOT_CS and DS/ES/SS = __BOOT_DS from the boot GDT (flat 4 GiB), ESI = the zero page,
 * EBP = EDI = EBX = 0.
 */
export function setLinuxEntryState(cpu: PcCpu, entry: number, zeroPage: number, gdtAddr: number, gdtLimit: number): void {
  cpu.reset();
  cpu.cr0 = 0x60000011; // PE, ET (+ CD/NW as at reset); paging off
  const flat = (s: number, sel: number, ar: number) => {
    cpu.sel[s] = sel; cpu.segBase[s] = 0; cpu.segLimit[s] = 0xffffffff; cpu.segAr[s] = ar;
  };
  flat(CS, BOOT_CS, 0xc09b);
  for (const s of [DS, ES, FS, GS, SS]) flat(s, BOOT_DS, 0xc093);
  cpu.gdtBase = gdtAddr; cpu.gdtLimit = gdtLimit;
  cpu.idtBase = 0; cpu.idtLimit = 0;
  cpu.eflags = 2;
  cpu.regs.fill(0);
  cpu.regs[ESI] = zeroPage;
  cpu.eip = entry >>> 0;
  cpu.setCpl(0);
  cpu.modeChanged();
}
