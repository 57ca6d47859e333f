/**
 * The ISA-neutral CPU contract: what the machine, the replay layer and the gdb stub may assume
 * of any CPU core (`GuestCpu`), and what a core may assume of the machine (`CpuBus`). Each ISA
 * lives under lib/cpu/<isa>/ and implements GuestCpu; a board (lib/boards/) creates the CPU
 * and is the only code above the CPU that imports an ISA's directory.
 */
import type { IoSize } from "../machine/device.ts";
import type { StateReader, StateWriter } from "../machine/snapshot.ts";

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

/**
 * What a CPU core sees of the machine. A core imports no device, replay or gdb code: memory
 * and I/O go through this interface only.
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
   * later icount before the machine's next device deadline returns the same value. A
   * translator may skip whole iterations of a polling loop whose reads are all stable (see
   * lib/cpu/x86/jit.ts). Optional: absent means no read is stable.
   */
  ioReadStable?(port: number, size: IoSize): boolean;
  /** Time-stamp counter: a deterministic function of virtual time (never host time). */
  readTsc(): number;
  /** Interrupt acknowledge: the vector of the highest-priority pending interrupt. */
  ackInterrupt(): number;
}

/**
 * A CPU core as the machine, the replay engine and the gdb stub use it.
 *
 * Execution: `run(n)` executes exactly n instructions or stops earlier with a Stop; `icount`
 * counts retired instructions and is exact wherever anything outside can observe it (see
 * docs/ARCHITECTURE.md, "icount"). A breakpoint stop happens before the instruction (neither
 * executed nor retired); a watchpoint stop after the accessing instruction; with
 * `stopOnDelivery` a run stops right after an interrupt or exception was delivered, which is
 * what a debugger's single step into a handler needs.
 */
export interface GuestCpu {
  /** Retired instructions (the machine sets it only to carry it over a reset or a restore). */
  icount: number;
  run(n: number, ignoreBpAt?: number): Stop;
  /** Ask run() to return after the current instruction (Stop.REQUEST). */
  requestStop(): void;
  /** Detail of the last BREAKPOINT and WATCH stops. */
  readonly bpAddr: number;
  readonly watchHit: { type: 2 | 3 | 4; addr: number } | null;
  /** Halted, waiting for an interrupt. */
  halted: boolean;
  /** The interrupt request input (level), driven by the board's interrupt controller. */
  intrLine: boolean;
  /** Whether an interrupt on the input would be taken now (e.g. x86 EFLAGS.IF). */
  interruptsEnabled(): boolean;
  /** Power-on reset. */
  reset(): void;

  /** Architectural state (the "cpu" hash component is the hash of these bytes). */
  save(w: StateWriter): void;
  /** Restore; with keepBlocks the caller invalidates the pages whose contents changed. */
  restore(r: StateReader, keepBlocks?: boolean): void;
  /**
   * Caches the guest cannot read but that decide what it sees later (x86: the TLB, which decides
   * when a walk sets accessed/dirty bits), saved in snapshots after `save`'s state and not
   * hashed. A CPU without such caches leaves these out.
   */
  saveCaches?(w: StateWriter): void;
  /** Restore them (after `restore`). */
  restoreCaches?(r: StateReader): void;
  /** Caches derived from guest memory, for callers that rewrite memory from outside. */
  flushBlocks(): void;
  flushTlb(): void;
  flushWriteTlb(): void;
  invalidatePage(pg: number): void;

  /** Breakpoints (addresses of instruction starts) and watchpoints, replacing the previous. */
  setBreakpoints(addrs: Iterable<number>): void;
  setWatchpoints(list: Watchpoint[]): void;
  stopOnDelivery: boolean;
  /** Called whenever an exception or interrupt is about to be delivered (debugger bookkeeping). */
  onDeliver: ((vec: number, soft: boolean) => void) | null;
  /** Reference mode: every block is one instruction (verification compares against it). */
  singleStep: boolean;

  /** The debugger's view (gdb stub). */
  readonly debug: DebugView;
}

/**
 * The debugger's view of a CPU: the register file in the gdb target description's numbering
 * and layout, register writes, address translation without side effects, and a disassembler.
 */
export interface DebugView {
  /** gdb architecture name (`<architecture>` of the target description), e.g. "i386". */
  readonly arch: string;
  /** The register file as the gdb stub serves it. */
  readonly layout: RegisterLayout;
  /** The general registers, gdb numbering, each as an unsigned 32-bit value. */
  readRegisters(): number[];
  /**
   * Optional: the registers after the general ones (layout order, raw little-endian bytes),
   * e.g. the x87 on i386; absent or null: the stub sends zeros.
   */
  readExtraRegisters?(): Uint8Array | null;
  /** The address of the next instruction as breakpoints name it (i386: CS base + EIP). */
  pcAddress(): number;
  /** Write register n (gdb numbering); false when the register cannot be written. */
  writeRegister(n: number, value: number): boolean;
  /** Physical address of a debugger (linear/virtual) address, or -1 if unmapped. No faults, no A/D bits. */
  xlate(addr: number): number;
  /** One instruction's text and length at a debugger address, for tools; null if unreadable. */
  disassemble(code: Uint8Array, addr: number): { text: string; len: number } | null;
}

/**
 * A register file as gdb sees it: the target description the stub serves and the layout of
 * the `g` packet. Registers 0 .. general-1 are 32-bit values (DebugView.readRegisters); the
 * ones after them are raw little-endian bytes a target may supply (zeros otherwise).
 */
export interface RegisterLayout {
  /** The complete target description (qXfer:features:read:target.xml). */
  readonly targetXml: string;
  /** Byte size of every register, in gdb numbering (the order of the g packet). */
  readonly sizes: readonly number[];
  /** How many leading registers are 32-bit values. */
  readonly general: number;
  /** The program counter's register number. */
  readonly pc: number;
  /** Registers a stop reply carries (the pc first), so gdb needs no `g` after a stop. */
  readonly expedite: readonly number[];
}
