/**
 * The PC board: an i386 CPU (lib/boards/pc.ts creates it), the PC devices in a fixed order
 * (8259A PIC pair, 8254 PIT, CMOS/RTC, COM1 and COM2, i8042, VGA text, debug ports, system
 * control), their wiring (ISA IRQs through the PIC to the CPU's INTR, the A20 gate, the x87
 * error line on IRQ 13, an optional BIOS ROM) and its boot loaders (Multiboot, Linux bzImage,
 * a raw ROM).
 */
import type { CpuBus } from "../cpu/contract.ts";
import type { PhysMem } from "../machine/ram.ts";
import type { Device, DeviceContext } from "../machine/device.ts";
import type { Board, BoardHost, BoardOptions, BoardWiring, BootImages, BootTarget } from "./board.ts";
import { createPcCpu, pcCpuModel, PC_BOARD, PC_DEFAULT_CPU, PC_LEGACY_CPU, type PcCpu } from "./pc.ts";
import { Pic } from "../devices/pic.ts";
import { Pit } from "../devices/pit.ts";
import { Cmos } from "../devices/cmos.ts";
import { Uart } from "../devices/uart.ts";
import { I8042 } from "../devices/i8042.ts";
import { Vga } from "../devices/vga.ts";
import { DebugPorts } from "../devices/debug.ts";
import { SysCtl } from "../devices/sysctl.ts";
import { bootLinux, bootMultiboot } from "./pc-boot.ts";
import { isBzImage, parseBzImage } from "../boot/linux.ts";
import { BootError, parseElf32, isElf } from "../boot/elf.ts";
import { findMultibootHeader } from "../boot/multiboot.ts";

/** The PC's devices, wired (what the machine sees through BoardWiring, plus the devices by name). */
export class PcWiring implements BoardWiring {
  readonly pic: Pic;
  readonly pit: Pit;
  readonly cmos: Cmos;
  readonly com1: Uart;
  readonly com2: Uart;
  readonly kbc: I8042;
  readonly vga: Vga;
  readonly debug: DebugPorts;
  readonly sysctl: SysCtl;
  readonly devices: Device[];
  readonly display: Vga;
  private a20 = true;

  constructor(private readonly cpu: PcCpu, private readonly host: BoardHost, opts: BoardOptions, private readonly rom: Uint8Array | null) {
    const ctx: DeviceContext = {
      now: () => host.now(),
      setIrq: (irq, level) => this.pic.setIrq(irq, level),
      deadlinesChanged: () => host.deadlinesChanged(),
      requestReset: () => host.requestReset(),
      requestExit: (status) => host.requestExit(status),
      output: (channel, bytes) => host.output(channel, bytes),
      setA20: (on) => { this.a20 = on; this.cpu.setA20(on); },
      getA20: () => this.a20,
      fpuErrorAck: () => { this.pic.setIrq(13, false); this.cpu.fpuErrorAck(); },
    };
    this.pic = new Pic(ctx, { onIntrChange: (level) => { this.cpu.intrLine = level; } });
    this.pit = new Pit(ctx);
    this.cmos = new Cmos(ctx, { bootEpochSeconds: opts.bootEpochSeconds, memBytes: opts.memBytes });
    // Version 1 sends each serial character in its character time; version 2 at once.
    const instantTx = opts.version >= 2;
    this.com1 = new Uart(ctx, { name: "com1", base: 0x3f8, irq: 4, instantTx });
    this.com2 = new Uart(ctx, { name: "com2", base: 0x2f8, irq: 3, instantTx });
    this.kbc = new I8042(ctx);
    this.vga = new Vga(ctx, host.ram);
    this.debug = new DebugPorts(ctx);
    this.sysctl = new SysCtl(ctx);
    this.devices = [this.pic, this.pit, this.cmos, this.com1, this.com2, this.kbc, this.vga, this.debug, this.sysctl];
    this.display = this.vga;
    this.mapRom();
  }

  /** The last min(size, 128 KiB) ROM bytes are visible below 1 MiB; the whole ROM at 4 GiB - size. */
  private mapRom(): void {
    const rom = this.rom;
    if (!rom) return;
    const low = Math.min(rom.length, 0x20000);
    const start = 0x100000 - low;
    this.host.ram.set(rom.subarray(rom.length - low), start);
    for (let p = start >>> 12; p < 0x100; p++) this.host.mem.readonly[p] = 1;
  }

  ackInterrupt(): number { return this.pic.acknowledge(); }
  syncInterrupt(): void { this.cpu.intrLine = this.pic.hasInterrupt(); }
  /** The A20 gate (in the machine record of snapshots and hashes). */
  get flag(): boolean { return this.a20; }
  set flag(on: boolean) { this.a20 = on; this.cpu.setA20(on); }

  physRead8(addr: number): number {
    const rom = this.rom;
    if (rom && addr >= 0x100000000 - rom.length) return rom[addr - (0x100000000 - rom.length)]!;
    return 0xff;
  }
  /** The CPU's FERR# (x87 error with CR0.NE clear): IRQ 13, as on the PC/AT. */
  fpuError(): void { this.pic.setIrq(13, true); }

  input(ev: Parameters<BoardWiring["input"]>[0]): void {
    switch (ev.kind) {
      case "serial": (ev.port === 1 ? this.com2 : this.com1).receive(ev.byte); break;
      case "key": this.kbc.keyScancode(ev.bytes); break;
      case "mouse": this.kbc.mouseMove(ev.dx, ev.dy, ev.buttons); break;
    }
  }
  serialReady(port: number): boolean { return (port === 1 ? this.com2 : this.com1).readyForInput(); }
  pendingOutput(): { channel: string; bytes: number[] }[] {
    return [this.com1, this.com2].map((u) => ({ channel: u.name, bytes: u.pendingTx() }));
  }
  reset(): void {
    this.flag = true;
    this.mapRom();
  }
}

/** Check images before booting: one-line errors for anything that is not a kernel. */
function validatePc(cfg: BootImages): void {
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

function validateMem(cfg: BootImages): void {
  if (cfg.memBytes < 2 << 20) throw new BootError("-m: at least 2 MiB of RAM are needed");
}

/** The PC board (registered by default in lib/boards/registry.ts). */
export const pcBoard: Board<PcCpu> = {
  name: PC_BOARD.board,
  isa: PC_BOARD.isa,
  devices: ["pic", "pit", "cmos", "com1", "com2", "i8042", "vga", "debug", "sysctl"],
  loaders: ["multiboot", "linux", "rom"],
  defaultCpu: PC_DEFAULT_CPU,
  legacyCpu: PC_LEGACY_CPU,
  versions: [
    { version: 1, note: "the UARTs send each character in its character time at the line rate" },
    { version: 2, note: "the UARTs send each character as the guest writes it, as QEMU's do" },
  ],
  checkCpu: (model) => { pcCpuModel(model); },
  createCpu: (bus: CpuBus, mem: PhysMem, model?: string) => createPcCpu(bus, mem, model),
  wire: (cpu, host, opts) => new PcWiring(cpu, host, opts, opts.rom),
  validate: validatePc,
  boot(m: BootTarget<PcCpu>, cfg: BootImages): void {
    // With only a ROM the CPU starts at the reset vector, as a PC does.
    if (cfg.kernel && isBzImage(cfg.kernel.data)) {
      bootLinux(m, { kernel: cfg.kernel.data, initrd: cfg.initrd?.data ?? null, cmdline: cfg.cmdline });
    } else if (cfg.kernel) {
      bootMultiboot(m, {
        kernel: cfg.kernel.data,
        cmdline: cfg.cmdline,
        modules: cfg.modules.map((x) => ({ data: x.data, cmdline: x.cmdline, name: x.name })),
      });
    }
  },
};
