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
  /**
   * Whether a read of this port now is *stable*: it changes no device state (other than a
   * time stamp the next read of the port refreshes the same way), and reading it again at any
   * later icount before the machine's next device deadline returns the same value. The
   * translator skips whole iterations of a polling loop whose reads are all stable (see
   * jit.ts). Optional: absent means no read is stable.
   */
  ioReadStable?(port: number, size: IoSize): boolean;
  /** Time-stamp counter: a deterministic function of virtual time (never host time). */
  readTsc(): number;
  /** INTA cycle: the vector of the highest-priority pending interrupt. */
  ackInterrupt(): number;
}
