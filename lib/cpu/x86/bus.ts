/**
 * What the x86 core sees of the machine: the ISA-neutral CpuBus (lib/cpu/contract.ts) and the
 * PC-specific outputs a board may wire.
 */
import type { CpuBus as ContractBus } from "../contract.ts";

export interface CpuBus extends ContractBus {
  /**
   * FERR#: a waiting x87 instruction found an unmasked exception pending with CR0.NE clear.
   * The PC board raises IRQ 13 (and asserts IGNNE# once the guest writes port F0h; see x87.ts).
   */
  fpuError?(): void;
}
