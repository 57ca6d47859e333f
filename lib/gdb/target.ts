/**
 * The contract between the gdb Remote Serial Protocol stub (lib/gdb/server.ts,
 * lib/gdb/session.ts) and whatever it debugs: the replay engine of a recording,
 * a live machine, or a mock in tests.
 *
 * Everything here is protocol-free: plain numbers, byte arrays and promises.
 * The stub translates gdb packets into these calls and the results back into
 * packets; the target never sees hex, checksums or sockets.
 *
 * ## Model
 *
 * One machine = one inferior with one thread (thread id 1). All-stop only: the
 * target is either stopped (every method but `resume` may be called) or
 * running inside a `resume()` (the stub calls nothing else on it until the
 * returned promise settles).
 *
 * ## Registers
 *
 * The register file is the target's `layout` (RegisterLayout, lib/cpu/contract.ts:
 * the CPU's DebugView supplies it): the target description the stub serves, the
 * size of every register in gdb numbering, and how many leading registers are
 * 32-bit values (`general`); only those are read and written through this
 * interface. For the PC (lib/cpu/x86/tdesc.ts) that is gdb's i386 "core"
 * numbering, 16 x 32-bit values:
 *
 *   0 eax  1 ecx  2 edx  3 ebx  4 esp  5 ebp  6 esi  7 edi
 *   8 eip  9 eflags  10 cs  11 ss  12 ds  13 es  14 fs  15 gs
 *
 * (segment registers are the 16-bit selectors zero-extended). The registers
 * after them (for i386 the x87 ones, 16..31) are reported as zero, or as the
 * bytes the optional `readFpuRegisters` hook returns, and writes to them are
 * refused.
 *
 * ## Addresses
 *
 * All memory addresses are *linear* addresses (what gdb calls virtual: the
 * addresses in the kernel ELF's symbols). With paging enabled the target
 * translates through the current page tables; without paging linear ==
 * physical. Unmapped/unreadable → `null` / `false` (gdb prints "Cannot access
 * memory at address ...").
 *
 * ## Execution semantics (x86 debug-register semantics)
 *
 * - A *breakpoint* stop (sw or hw) is reported *before* the instruction at the
 *   breakpoint address executes: eip == breakpoint address. Forward `resume`
 *   with `step: false` starting at an address that has a breakpoint must NOT
 *   report that breakpoint immediately; the first instruction is executed
 *   first (gdb normally steps over such breakpoints itself, but do not rely
 *   on it). In reverse, the same rule: a reverse continue starting at a
 *   breakpoint address leaves that address before checking breakpoints again.
 * - A *watchpoint* stop going forward is reported *after* the accessing
 *   instruction completed (eip = next instruction, new value in memory),
 *   exactly like a data breakpoint trap on real x86.
 *   Going in reverse, the stop is at the accessing instruction with the state
 *   *before* it executed (eip = the writing instruction, old value in
 *   memory). Executing forward from there re-does the write. This is what gdb
 *   expects for reverse watchpoints: it prints "Old value = <after>, New value
 *   = <before>" and shows the line doing the write.
 *   Watchpoints of type 2 (write) trigger on every write to the range, even if
 *   the value written equals the old one; gdb filters unchanged values itself
 *   for `watch`. Types 3 (read) and 4 (access) trigger on reads / any access.
 * - A *single step* (`step: true`) executes exactly one instruction (forward)
 *   or un-executes exactly the previous instruction (reverse), then stops
 *   with `{kind: "signal", signal: 5}`, unless something more specific
 *   happened on the way (a watchpoint hit by that very instruction → report
 *   the watchpoint; hitting the start/end of the replay log → `replaylog`).
 *   Interrupt/exception delivery counts as part of the instruction that was
 *   interrupted or faulted: a step that enters an interrupt handler stops at
 *   the handler's first instruction.
 * - `replaylog` is reported when reverse execution reaches the first recorded
 *   instruction (`begin`), or forward execution reaches the end of the
 *   recording while replaying (`end`, unless the target goes live).
 * - `exited`: the machine powered off / the emulation ended for good.
 * - `interrupted`: the AbortSignal passed to `resume` fired (gdb sent ^C).
 *   Stop as soon as convenient at an instruction boundary and return it.
 */

import type { RegisterLayout } from "../cpu/contract.ts";



/** SIGTRAP: single step done / generic trap. */
export const SIGTRAP = 5;
/** SIGINT: reported for `interrupted`. */
export const SIGINT = 2;

export type StopReason =
  /** Generic stop with a gdb signal number (GDB_SIGNAL_*, = Linux numbers for the common ones). Step done → 5 (SIGTRAP). */
  | { kind: "signal"; signal: number }
  /** Stopped at a breakpoint before executing the instruction at `addr` (== eip). `hw` = inserted with Z1. */
  | { kind: "breakpoint"; addr: number; hw: boolean }
  /** A watchpoint triggered; `addr` = the watched data address that was accessed (any address inside the watched range). */
  | { kind: "watch"; type: "watch" | "rwatch" | "awatch"; addr: number }
  /** Reverse execution reached the start of the log, or forward execution its end. */
  | { kind: "replaylog"; where: "begin" | "end" }
  /** The machine is gone (power off, emulation ended). `status` is 0..255. */
  | { kind: "exited"; status: number }
  /** The resume was aborted through its AbortSignal (gdb's ^C). Reported as SIGINT. */
  | { kind: "interrupted" };

/**
 * What `resume` returns. `registers` is the fast-path hook for reverse bursts
 * (see `DebugTarget.resume`).
 */
export interface Stop {
  reason: StopReason;
  /**
   * Optional: the 32-bit registers (layout.general values, gdb order) at the
   * stop. When present the stub caches it and answers `g`/`p` and the
   * expedited registers of the stop reply from it, without calling
   * `readRegisters()`. The cache is dropped on any register or memory write,
   * any monitor command, and the next resume. The target must return the
   * exact values `readRegisters()` would return; pass a fresh array (the stub
   * keeps it).
   */
  registers?: readonly number[];
}

export interface ResumeAction {
  /** Direction of execution; "reverse" only while `canReverse()`. */
  dir: "forward" | "reverse";
  /** true: one instruction (see semantics above); false: until a stop event. */
  step: boolean;
}

export type BreakpointType = 0 | 1; // 0 = software (Z0), 1 = hardware (Z1)
export type WatchpointType = 2 | 3 | 4; // 2 = write (Z2), 3 = read (Z3), 4 = access (Z4)

export interface DebugTarget {
  /** The register file: target description and g packet layout. */
  readonly layout: RegisterLayout;

  /** The `layout.general` 32-bit registers in gdb order, as unsigned 32-bit numbers. */
  readRegisters(): readonly number[];

  /**
   * Set register `n` (0 .. layout.general - 1). Returns false if the register cannot be written
   * in this state (e.g. while replaying, when writes would diverge from the
   * recording; the stub then replies with an error and gdb reports it).
   */
  writeRegister(n: number, value: number): boolean;

  /**
   * Read `len` bytes at linear address `addr` (0 <= addr < 2^32; a range that
   * wraps past 4 GiB may be treated as unmapped). Returns exactly `len` bytes,
   * or null if any byte is unreadable. Must have no side effects (no MMIO
   * reads, no accessed/dirty bits). Breakpoints must not be visible in memory.
   */
  readMemory(addr: number, len: number): Uint8Array | null;

  /** Write bytes at a linear address. false if unmapped or refused (e.g. while replaying). */
  writeMemory(addr: number, data: Uint8Array): boolean;

  /**
   * Insert a breakpoint at linear address `addr` (`kind` is gdb's breakpoint
   * kind, 1 on x86 = length of int3; ignore it). Insertion is idempotent per
   * (type, addr). Never modify guest memory for a breakpoint. false → gdb
   * reports "Cannot insert breakpoint".
   */
  insertBreakpoint(type: BreakpointType, addr: number, kind: number): boolean;
  removeBreakpoint(type: BreakpointType, addr: number, kind: number): boolean;

  /** Insert a data watchpoint over [addr, addr+len). Any length >= 1. */
  insertWatchpoint(type: WatchpointType, addr: number, len: number): boolean;
  removeWatchpoint(type: WatchpointType, addr: number, len: number): boolean;

  /**
   * Run until a stop event, or one instruction if `action.step`.
   *
   * `signal` is aborted when gdb sends an interrupt (^C): return
   * `{reason: {kind: "interrupted"}}` soon after (at an instruction boundary).
   * Long-running implementations must yield to the event loop regularly
   * (e.g. every few thousand instructions / ms) or the interrupt byte cannot
   * even be read from the socket.
   *
   * Reverse single steps come in bursts (gdb's reverse-next/reverse-step/
   * reverse-finish issue one `bs` per instruction and inspect the registers
   * after each): make a reverse step cheap (e.g. restore the nearest
   * checkpoint and run forward, with a per-checkpoint cache of recent
   * states), and return `registers` with the stop so the stub need not ask.
   *
   * Rejecting the promise makes the stub reply with an error; prefer
   * returning a stop.
   */
  resume(action: ResumeAction, signal: AbortSignal): Promise<Stop>;

  /** true while reverse execution is possible (replaying a recording). Checked at each qSupported and before each reverse packet. */
  canReverse(): boolean;

  /**
   * `monitor CMD` (gdb's qRcmd). The whole command line, e.g. "when",
   * "goto 12345", "checkpoint", "checkpoints", "hash", "screen", "live",
   * "help". Returns the text to print (newline-terminated lines). Throwing
   * makes gdb print the message and fail the command.
   *
   * Commands that move the machine (goto, live...) change state behind gdb's
   * back: gdb still shows its cached view until told otherwise. The stub
   * drops its own caches after every monitor command; the user (or the rrx
   * gdb launcher's helper commands) runs `maint flush register-cache`.
   */
  monitor(cmd: string): Promise<string>;

  /** gdb `kill` (k / vKill): the session is over; the stub closes the connection afterwards. */
  kill(): void;

  /** gdb `detach` (D): the session is over; the target may keep running (e.g. live) or stop. */
  detach(): void;

  /**
   * Optional: the registers after the general ones, as raw little-endian
   * bytes in layout order. For i386 the x87 state, registers 16..31 of gdb's
   * i386 core feature (st0..st7 as 10-byte extended reals, then fctrl fstat
   * ftag fiseg fioff foseg fooff fop as 32-bit values): 8*10 + 8*4 = 112
   * bytes. Absent → zeros.
   */
  readFpuRegisters?(): Uint8Array;

  /**
   * Optional: a short description of the thread (gdb `info threads`), e.g.
   * "cpu0 t=123456". Absent → "rrx cpu0".
   */
  threadName?(): string;
}
