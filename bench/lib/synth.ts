/**
 * Synthetic guests built in-process from machine-code bytes written straight into RAM: no
 * ELF, no boot code. The CPU starts in the Multiboot entry state (flat 32-bit protected mode,
 * paging off, interrupts off) at the code's first byte.
 */
import { Machine } from "../../lib/machine/machine.ts";
import { setMultibootEntryState } from "../../lib/boards/pc.ts";
import { BOOT_DATE } from "./rrx.ts";

const CODE = 0x100000;
const DATA = 0x400000;
const STRIDE = 32;

export interface ManyBlocks {
  m: Machine;
  blocks: number;
  passes: number;
  /** Instructions before the first pass starts (prologue). */
  prologue: number;
  /** Instructions in one pass over every block (including the loop tail). */
  perPass: number;
  /** Instructions until the guest exits. */
  total: number;
}

/**
 * `blocks` distinct basic blocks, each `add eax, imm32; xor ebx, eax; mov [abs], ebx; jmp next`,
 * 32 bytes apart, chained in a stride permutation so consecutive blocks are far apart in
 * memory (every jump is taken, no two neighbours share a cache line of the host's view). After
 * the last block a loop tail (`dec ecx; jnz first`) repeats the whole walk `passes` times, then
 * the guest exits through the debug-exit port (status 1).
 */
export function manyBlocksGuest(blocks: number, passes: number): ManyBlocks {
  const m = new Machine({ memBytes: 32 << 20, ips: 1e9, bootEpochSeconds: BOOT_DATE });
  const ram = m.ram;
  const dv = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  const at = (i: number) => CODE + 16 + i * STRIDE;
  const tail = at(blocks);
  // Visit order: 0, K, 2K, ... mod N, with K coprime to N and about N/phi away.
  let k = Math.max(1, Math.floor(blocks * 0.618));
  while (gcd(k, blocks) !== 1) k++;
  const order = Array.from({ length: blocks }, (_, j) => (j * k) % blocks);
  let p = CODE;
  const u8 = (b: number) => { ram[p++] = b; };
  const u32 = (v: number) => { dv.setUint32(p, v >>> 0, true); p += 4; };
  const rel = (target: number) => u32(target - (p + 4));
  // Prologue: mov ecx, passes; jmp first
  u8(0xb9); u32(passes);
  u8(0xe9); rel(at(order[0]!));
  for (let j = 0; j < blocks; j++) {
    const i = order[j]!;
    p = at(i);
    u8(0x05); u32(Math.imul(i + 1, 0x9e3779b1));          // add eax, imm32
    u8(0x31); u8(0xc3);                                   // xor ebx, eax
    u8(0x89); u8(0x1d); u32(DATA + (i & 1023) * 4);       // mov [abs32], ebx
    u8(0xe9); rel(j + 1 < blocks ? at(order[j + 1]!) : tail); // jmp next
    while (p < at(i) + STRIDE) u8(0xcc);
  }
  p = tail;
  u8(0x49);                                               // dec ecx
  u8(0x0f); u8(0x85); rel(at(order[0]!));                 // jnz first
  u8(0x31); u8(0xc0);                                     // xor eax, eax
  u8(0xe6); u8(0xf4);                                     // out 0xf4, al  (exit, status 1)
  u8(0xf4);                                               // hlt
  m.mem.markAllDirty();
  setMultibootEntryState(m.cpu, CODE, 0);
  const perPass = blocks * 4 + 2;
  return { m, blocks, passes, prologue: 2, perPass, total: 2 + passes * perPass + 2 };
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
