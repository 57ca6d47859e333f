import type { IoSize } from "../../machine/device.ts";

/**
 * What the CPU core sees of the machine. The core imports no device, replay or gdb code:
 * memory and I/O go through this interface only.
 */
export interface CpuBus {
  /** Guest RAM, physical addresses 0 .. ram.length-1 (the fast path). */
  readonly ram: Uint8Array;
  /** Physical read/write of a byte that is not plain RAM (ROM, unmapped, RAM-size overflow). */
  physRead8(addr: number): number;
  physWrite8(addr: number, value: number): void;
  ioRead(port: number, size: IoSize): number;
  ioWrite(port: number, size: IoSize, value: number): void;
  /** Time-stamp counter: a deterministic function of virtual time (never host time). */
  readTsc(): number;
  /** INTA cycle: the vector of the highest-priority pending interrupt. */
  ackInterrupt(): number;
}
