import type { StateReader, StateWriter, Stateful } from "./snapshot.ts";

/** An I/O access size in bytes. */
export type IoSize = 1 | 2 | 4;

/**
 * What a device may ask of the machine. Everything here is deterministic: time is
 * virtual (a function of the instruction counter and of logged idle skips), never host time.
 */
export interface DeviceContext {
  /** Current virtual time in nanoseconds (integer-valued float, exact below 2^53). */
  now(): number;
  /** Drive an ISA interrupt line (0-15) high or low. Edge-triggered devices pulse it. */
  setIrq(irq: number, level: boolean): void;
  /** Tell the machine that this device's nextDeadline() changed (it is re-read at once). */
  deadlinesChanged(): void;
  /** Ask the machine to reset the whole system after the current instruction. */
  requestReset(): void;
  /** Ask the machine to stop with an exit status after the current instruction (debug-exit). */
  requestExit(status: number): void;
  /** Guest output for the host (serial bytes, debug console): `channel` is e.g. "com1", "e9". */
  output(channel: string, bytes: Uint8Array): void;
  /** A20 gate control (port 0x92, i8042 output port). */
  setA20(enabled: boolean): void;
  getA20(): boolean;
  /**
   * A write to port F0h: the PC's x87 error latch is cleared (IRQ 13 drops) and, while the
   * CPU's FERR# is active, IGNNE# is asserted. Optional: a machine without an x87 omits it.
   */
  fpuErrorAck?(): void;
}

/**
 * Every device has the same small interface. A device holds no reference to host time or
 * host input; input arrives through methods the machine calls from its host-input boundary.
 */
export interface Device extends Stateful {
  readonly name: string;
  /** Inclusive port ranges [first, last] this device decodes. */
  readonly ports: ReadonlyArray<readonly [number, number]>;
  ioRead(port: number, size: IoSize): number;
  ioWrite(port: number, size: IoSize, value: number): void;
  /**
   * Optional: whether a read of this port now is stable (changes nothing but a time stamp
   * that the next read refreshes alike, and returns the same value until this device's next
   * deadline, an I/O write or host input). See CpuBus.ioReadStable. Absent: never.
   */
  ioReadStable?(port: number, size: IoSize): boolean;
  /** Virtual time (ns) at which onDeadline() must run, or Infinity. */
  nextDeadline(): number;
  /** Called by the machine once now() >= nextDeadline(). */
  onDeadline(): void;
  /** Power-on / system reset state. */
  reset(): void;
  save(w: StateWriter): void;
  restore(r: StateReader): void;
}
