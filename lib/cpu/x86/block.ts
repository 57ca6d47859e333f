/**
 * What the block cache holds for one decoded basic block (blocks.ts builds them, interp.ts and
 * jit.ts run them), and the signature of a translated block. Types only.
 */
import type { Insn } from "./decode.ts";
import type { exec } from "./exec.ts";
import type { CpuCore } from "./interrupts.ts";

export interface Block {
  insns: Insn[];
  n: number;
  phys: number;
  physEnd: number;
  code32: boolean;
  /** Physical address of the second page's start if the block crosses a page, else -1. */
  phys2: number;
  valid: boolean;
  /** Translated code (after JIT_THRESHOLD executions), or null. */
  fn: BlockFn | null;
  /** For `fn`: each fault index's offset from the entry EIP and index in its block (jit.ts). */
  jitOff: Int32Array | null;
  jitIdx: Int32Array | null;
  /** `fn` is a region (runs other blocks of this page, or of one other page, too). */
  region: boolean;
  /**
   * Offset of this block's start from the start of the function `fn` runs: 0, or the block's
   * offset in another block's region that `fn` enters at this block (`jitOff` is then that
   * region's).
   */
  jitEntry: number;
  /** The region this block was last made a member of, and its offset there from the head's EIP. */
  rHead: Block | null;
  rDelta: number;
  /**
   * For a region's head with members on one other page: that page's physical page number
   * (blocks.ts drops the region when code there changes), else -1.
   */
  xPage: number;
  /** For a region's head: its members (itself excluded) as translated. */
  rMembers: Block[] | null;
  /** Successor cache (two slots: taken and fall-through), valid for one chain epoch. */
  s1: Block | null;
  s1Eip: number;
  s2: Block | null;
  s2Eip: number;
  sEpoch: number;
  /**
   * The icount when the block's execution count last started from 1, and how many times it
   * reached the translation threshold too slowly to be translated (cpu.ts run()).
   */
  hotFrom: number;
  lukewarm: number;
  /** Runs of translated code entered at this block, and the instructions they retired (cpu.ts). */
  rtRuns: number;
  rtInsns: number;
  /**
   * The execution count the block starts from (1; for a block with x87 instructions, nearer
   * the threshold: jit.ts JIT_X87_THRESHOLD).
   */
  head: number;
  /** Offset of the block's interpreter records in the record store (interp.ts) (UREC words per instruction). */
  u?: number;
}

/**
 * Runs the block (a region: from its member `d0` bytes after its head, the block's
 * `jitEntry`); `r` is the registers' Int32Array view (a Uint32Array element of 2^31 or more
 * is a double, which the engine's optimised code had speculated it was not); `lim` is the
 * instruction budget (loops and regions iterate within it).
 */
export type BlockFn = ((c: CpuCore, r: Int32Array, I: Insn[], X: typeof exec, lim: number, d0: number) => number) & {
  /**
   * A WebAssembly region's slot in the CPU's table of regions that other regions go on to
   * without returning to the run loop (jit-wasm.ts); 0 or absent: none.
   */
  tix?: number;
  /** Takes a WebAssembly region out of that table, for good (blocks.ts, when a block drops it). */
  unlink?: () => void;
};
