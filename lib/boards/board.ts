/**
 * A board: what turns the generic machine (lib/machine/machine.ts: RAM, virtual time, the run
 * loop, snapshots) into a particular computer. It names itself and its ISA (a log header's
 * `board` and `isa`), creates its CPU (a GuestCpu, lib/cpu/contract.ts) over the machine's
 * CpuBus and RAM, creates and wires its devices (interrupt routing to the CPU's `intrLine`),
 * and names and runs its boot loaders. Boards are found by name in lib/boards/registry.ts.
 *
 * A new ISA: implement GuestCpu under lib/cpu/<isa>/, write a board that creates it and its
 * devices, and register the board. Nothing in lib/machine, lib/replay or lib/gdb changes.
 */
import type { CpuBus, GuestCpu } from "../cpu/contract.ts";
import type { Device } from "../machine/device.ts";
import type { PhysMem } from "../machine/ram.ts";

/** What the machine offers a board's devices (all deterministic: virtual time only). */
export interface BoardHost {
  readonly mem: PhysMem;
  readonly ram: Uint8Array;
  /** Virtual time in ns. */
  now(): number;
  /** A device's nextDeadline() changed. */
  deadlinesChanged(): void;
  /** Reset the whole system after the current instruction. */
  requestReset(): void;
  /** Stop with an exit status after the current instruction. */
  requestExit(status: number): void;
  /** Guest output for the host on a named channel ("com1", "e9", ...). */
  output(channel: string, bytes: Uint8Array): void;
}

/** Options of a machine that a board's devices may use. */
export interface BoardOptions {
  memBytes: number;
  /** RTC start, Unix seconds (a logged host input). */
  bootEpochSeconds: number;
  /** A ROM image, for boards that map one. */
  rom: Uint8Array | null;
  /** The board version to build (one of the board's `versions`). */
  version: number;
}

/** A text screen (the hashed "screen" component), for boards that have one. */
export interface Display {
  screen(): { rows: string[]; attrs: Uint8Array; cursor: { row: number; col: number; visible: boolean } };
  screenText(): string;
  renderAnsi(colour: boolean): string;
}

/** A host input event a board may take (besides idle skips, which the machine handles). */
export type BoardInput =
  | { kind: "serial"; port: number; byte: number }
  | { kind: "key"; bytes: number[] }
  | { kind: "mouse"; dx: number; dy: number; buttons: number };

/** A board's devices, wired to its CPU: what the machine calls for the board-specific parts. */
export interface BoardWiring {
  /** Every device in a fixed order (deadline firing, snapshots and hashes use this order). */
  readonly devices: Device[];
  /** The screen, or null (then the "screen" hash component is empty). */
  readonly display: Display | null;
  /** Interrupt acknowledge (CpuBus.ackInterrupt). */
  ackInterrupt(): number;
  /** Re-drive the CPU's interrupt input from the devices' state (after a restore). */
  syncInterrupt(): void;
  /** One board-defined bit kept in the machine record of snapshots and hashes (the PC: A20). */
  flag: boolean;
  /** Physical reads outside RAM (ROM, unmapped): CpuBus.physRead8. */
  physRead8(addr: number): number;
  /** The CPU signals an error line the board routes (the PC: FERR# to IRQ 13). */
  fpuError?(): void;
  /** Apply a host input event; a board without that input ignores it. */
  input(ev: BoardInput): void;
  /**
   * Whether serial port `port` can take another byte now (the host holds the byte until then:
   * the PC waits for the guest to assert RTS and for room in the FIFO).
   */
  serialReady(port: number): boolean;
  /** Serial bytes still in transmitters, per channel (handed to the host at the end of a run). */
  pendingOutput(): { channel: string; bytes: number[] }[];
  /** The board's part of a system reset, after the CPU and every device were reset. */
  reset(): void;
}

/** The images and memory a boot loader gets (lib/replay/session.ts's MachineConfig has these). */
export interface BootImages {
  kernel: { name: string; data: Uint8Array } | null;
  bios: { name: string; data: Uint8Array } | null;
  modules: { name: string; data: Uint8Array; cmdline: string }[];
  initrd?: { name: string; data: Uint8Array } | null;
  cmdline: string;
  memBytes: number;
}

/** The machine as a boot loader sees it. */
export interface BootTarget<C extends GuestCpu = GuestCpu> {
  readonly cpu: C;
  readonly mem: PhysMem;
  readonly ram: Uint8Array;
  /** Called after every system reset (a loader reloads its image there). */
  onReset: (() => void) | null;
}

export interface Board<C extends GuestCpu = GuestCpu> {
  /** The log header's `board`. */
  readonly name: string;
  /** The log header's `isa`. */
  readonly isa: string;
  /** Device names in order (the log header's `devices`). */
  readonly devices: readonly string[];
  /** Boot loaders, by name (documentation and error messages). */
  readonly loaders: readonly string[];
  /** The CPU model new recordings use, and the one a log that names none was made with. */
  readonly defaultCpu: string;
  readonly legacyCpu: string;
  /**
   * The board's versions, oldest first, each with what it changed. A guest-visible change to
   * the board's devices adds a version and keeps the old behaviour for the old ones, so a log
   * replays on the board it was recorded on (its header's `boardVersion`; none: version 1).
   * New recordings get the last.
   */
  readonly versions: readonly { version: number; note: string }[];
  /** Throw a one-line error (BootError) for a CPU model this board does not have. */
  checkCpu(model: string): void;
  /** The CPU, of the model named (none: the default). */
  createCpu(bus: CpuBus, mem: PhysMem, model?: string): C;
  /** Create the devices and wire them to the CPU (the machine maps their ports). */
  wire(cpu: C, host: BoardHost, opts: BoardOptions): BoardWiring;
  /** One-line errors (BootError) for images this board cannot boot. */
  validate(cfg: BootImages): void;
  /** Load the images and set the CPU's entry state (also on every reset, via onReset). */
  boot(m: BootTarget<C>, cfg: BootImages): void;
}
