/** What the x86 core sees of the machine: the ISA-neutral CpuBus (lib/cpu/contract.ts). */
export type { CpuBus } from "../contract.ts";
