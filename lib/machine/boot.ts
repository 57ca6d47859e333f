/**
 * Putting a loaded image into the machine: the Multiboot and Linux (bzImage) entry states and
 * the raw-ROM reset path. The loaders themselves (ELF, Multiboot structures) live in lib/boot/.
 */
import type { Cpu } from "../cpu/x86/cpu.ts";
import { CS, DS, ES, FS, GS, SS } from "../cpu/x86/decode.ts";
import { loadMultiboot, MULTIBOOT_BOOTLOADER_MAGIC, type MultibootModule } from "../boot/multiboot.ts";
import { BOOT_CS, BOOT_DS, loadLinux } from "../boot/linux.ts";
import type { Machine } from "./machine.ts";

export interface MultibootBoot {
  kernel: Uint8Array;
  cmdline: string;
  modules: MultibootModule[];
}

/** Flat 4 GiB segment caches as the Multiboot specification describes the entry state. */
export function setMultibootEntryState(cpu: Cpu, entry: number, infoAddr: number): void {
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
  cpu.regs[0] = MULTIBOOT_BOOTLOADER_MAGIC;
  cpu.regs[3] = infoAddr;
  cpu.eip = entry >>> 0;
  cpu.setCpl(0);
  cpu.modeChanged();
}

/** Load a Multiboot kernel and set the CPU to its entry state; also on every reset. */
export function bootMultiboot(m: Machine, boot: MultibootBoot): void {
  const load = () => {
    m.ram.fill(0, 0, Math.min(m.ram.length, 0xa0000));
    m.ram.fill(0, 0x100000);
    const r = loadMultiboot(m.ram, boot.kernel, { cmdline: boot.cmdline, modules: boot.modules, memBytes: m.ram.length });
    m.mem.markAllDirty();
    m.cpu.flushBlocks();
    const icount = m.cpu.icount;
    setMultibootEntryState(m.cpu, r.entry, r.infoAddr);
    m.cpu.icount = icount;
  };
  load();
  m.onReset = load;
}

export interface LinuxBoot {
  kernel: Uint8Array;
  initrd: Uint8Array | null;
  cmdline: string;
}

/**
 * The Linux 32-bit boot protocol's entry state: protected mode, paging and interrupts off,
 * CS = __BOOT_CS and DS/ES/SS = __BOOT_DS from the boot GDT (flat 4 GiB), ESI = the zero page,
 * EBP = EDI = EBX = 0.
 */
export function setLinuxEntryState(cpu: Cpu, entry: number, zeroPage: number, gdtAddr: number, gdtLimit: number): void {
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
  cpu.regs[6] = zeroPage; // ESI
  cpu.eip = entry >>> 0;
  cpu.setCpl(0);
  cpu.modeChanged();
}

/** Load a bzImage (and initrd) and set the CPU to the Linux 32-bit entry state; also on every reset. */
export function bootLinux(m: Machine, boot: LinuxBoot): void {
  const load = () => {
    m.ram.fill(0, 0, Math.min(m.ram.length, 0xa0000));
    m.ram.fill(0, 0x100000);
    const r = loadLinux(m.ram, boot.kernel, { cmdline: boot.cmdline, initrd: boot.initrd, memBytes: m.ram.length });
    m.mem.markAllDirty();
    m.cpu.flushBlocks();
    const icount = m.cpu.icount;
    setLinuxEntryState(m.cpu, r.entry, r.zeroPage, r.gdtAddr, r.gdtLimit);
    m.cpu.icount = icount;
  };
  load();
  m.onReset = load;
}
