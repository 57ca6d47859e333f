/**
 * The ISA-neutral CPU contract: what the machine, the replay layer and the gdb stub may assume
 * of any CPU core.
 */

/** Why run() returned. */
export const enum Stop {
  /** Executed exactly the requested number of instructions. */
  BUDGET = 0,
  /** Halted (HLT) with no interrupt deliverable. */
  HALT = 1,
  /** About to execute an instruction at a breakpoint address (not executed, not retired). */
  BREAKPOINT = 2,
  /** A watched location was accessed by the instruction just retired. */
  WATCH = 3,
  /** Triple fault: the machine must reset or stop. */
  SHUTDOWN = 4,
  /** Something outside asked the CPU to stop after the current instruction (device exit/reset). */
  REQUEST = 5,
  /** With stopOnDelivery: an interrupt or exception was just delivered (EIP at the handler). */
  DELIVERED = 6,
  /** Exceptions keep being delivered and no instruction retires (see FAULT_STORM). */
  STUCK = 7,
}

/** A watchpoint: gdb's Z2/Z3/Z4 kinds (write, read, access) over `len` bytes at a linear address. */
export interface Watchpoint {
  type: 2 | 3 | 4; // write, read, access (gdb Z2/Z3/Z4)
  addr: number;
  len: number;
}
