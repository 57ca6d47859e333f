/**
 * The PC board's boot loaders: putting a Multiboot kernel or a Linux bzImage into the machine
 * and setting the CPU's entry state, again on every reset. The image formats (ELF, Multiboot
 * structures, the bzImage) live in lib/boot/.
 */
import { loadMultiboot, type MultibootModule } from "../boot/multiboot.ts";
import { loadLinux } from "../boot/linux.ts";
import { setMultibootEntryState, setLinuxEntryState, type PcCpu } from "./pc.ts";
import type { BootTarget } from "./board.ts";

/** The entry states (Multiboot: flat segments, EAX = magic, EBX = info; Linux: boot GDT, ESI = zero page) live with the PC board. */
export { setMultibootEntryState, setLinuxEntryState };

export interface MultibootBoot {
  kernel: Uint8Array;
  cmdline: string;
  modules: MultibootModule[];
}

/** Load a Multiboot kernel and set the CPU to its entry state; also on every reset. */
export function bootMultiboot(m: BootTarget<PcCpu>, boot: MultibootBoot): void {
  loadOnEveryReset(m, () => {
    const r = loadMultiboot(m.ram, boot.kernel, { cmdline: boot.cmdline, modules: boot.modules, memBytes: m.ram.length });
    return () => setMultibootEntryState(m.cpu, r.entry, r.infoAddr);
  });
}

export interface LinuxBoot {
  kernel: Uint8Array;
  initrd: Uint8Array | null;
  cmdline: string;
}

/** Load a bzImage (and initrd) and set the CPU to the Linux 32-bit entry state; also on every reset. */
export function bootLinux(m: BootTarget<PcCpu>, boot: LinuxBoot): void {
  loadOnEveryReset(m, () => {
    const r = loadLinux(m.ram, boot.kernel, { cmdline: boot.cmdline, initrd: boot.initrd, memBytes: m.ram.length });
    return () => setLinuxEntryState(m.cpu, r.entry, r.zeroPage, r.gdtAddr, r.gdtLimit);
  });
}

/**
 * Clear low RAM and RAM from 1 MiB, let `place` put the images in, then enter the state it
 * returns (icount carries over); again on every reset. The first load runs on the RAM the
 * machine has just allocated, zero from 1 MiB up (the board maps its ROM below 1 MiB): that
 * part is not cleared again, which would touch every page of it (a tenth of a second for 32 MiB).
 */
function loadOnEveryReset(m: BootTarget<PcCpu>, place: () => () => void): void {
  const load = (fresh: boolean) => {
    m.ram.fill(0, 0, Math.min(m.ram.length, 0xa0000));
    if (!fresh) m.ram.fill(0, 0x100000);
    const enter = place();
    m.mem.markAllDirty();
    m.cpu.flushBlocks();
    const icount = m.cpu.icount;
    enter();
    m.cpu.icount = icount;
  };
  load(true);
  m.onReset = () => load(false);
}
