/**
 * The block cache: decoded basic blocks keyed by physical address and code size, a
 * direct-mapped L1 in front of a Map, the per-page block lists that self-modifying code and
 * outside writes invalidate, the successor links between blocks (valid for one chain epoch),
 * and building a block (decode, handler choice, interpreter records).
 */
import { CS, DecodeError, Insn, decode, REP_NONE } from "./decode.ts";
import { endsBlock } from "./optable.ts";
import { handlerFor } from "./handlers.ts";
import type { Block } from "./block.ts";
import { CpuInterp, UHDR, UREC, encodeRec, markDeadFlags } from "./interp.ts";
import { JIT_X87_THRESHOLD } from "./jit.ts";

const MAX_BLOCK = 64;
/** A block joins a region when it ran at least 1/REGION_HOT of the translation threshold (jit.ts HOT_REGION_SHARE for a hot head's). */
const REGION_HOT = 8;
const L1_BITS = 14;

export abstract class CpuBlocks extends CpuInterp {
  // Block cache.
  protected readonly blocks = new Map<number, Block>();
  protected readonly l1 = new Array<Block | null>(1 << L1_BITS).fill(null);
  protected readonly pageBlocks = new Map<number, Block[]>();
  /**
   * Per code page, the bytes its valid blocks cover (a bit a byte), built when a write to the
   * page misses them all and dropped when the page's list changes: a page whose data is
   * written next to its code (or whose dead code is being overwritten byte by byte) is then
   * checked in O(1) a write instead of a walk over its blocks. Bits of blocks dropped since
   * are harmless: the walk decides.
   */
  private readonly codeBits = new Map<number, Uint8Array>();
  protected curBlock: Block | null = null;
  /** The block that ran last (for the successor cache) and the epoch of all successor links. */
  protected prevBlock: Block | null = null;
  protected decodeLin = 0;
  /** The page translation of the last instruction fetch, valid while one block is decoded. */
  protected fetchLinPage = -1;
  protected fetchPhysPage = 0;
  protected decodeUser = false;
  /** Executions of a block before it is translated (cpu.ts). */
  abstract jitThreshold: number;
  /** Statistics (not state). */
  blocksBuilt = 0;
  /** Translated blocks created since the block cache was last flushed. */
  translated = 0;

  setBreakpoints(addrs: Iterable<number>): void {
    this.breakpoints.clear();
    for (const a of addrs) this.breakpoints.add(a >>> 0);
    this.flushBlocks();
  }

  // =====================================================================================
  // Block cache
  // =====================================================================================

  flushBlocks(): void {
    this.translated = 0;
    this.newLinkGen();
    this.prevBlock = null;
    for (const b of this.blocks.values()) {
      b.valid = false;
      // (A WebAssembly region gives its table slot back: a debugger restores checkpoints often.)
      if (b.fn !== null) b.fn.unlink?.();
    }
    this.blocks.clear();
    this.l1.fill(null);
    this.ucTop = UHDR;
    this.prevH = -1;
    this.ublk.fill(null);
    for (const pg of this.pageBlocks.keys()) this.mem.code[pg] = 0;
    this.pageBlocks.clear();
    this.codeBits.clear();
    this.xHeads.clear();
    this.flushWriteTlb();
  }

  /** Translations dropped to make room (JIT_MAX_BLOCKS), for tests and the bench. */
  translationDrops = 0;
  /** Physical page -> heads of regions elsewhere with members there (Block.xPage). */
  protected xHeads = new Map<number, Block[]>();

  /**
   * Drop every translation (the blocks stay decoded): each block counts its executions to the
   * translation threshold again. For when the most translations are kept.
   */
  protected dropTranslations(): void {
    for (const b of this.blocks.values()) {
      if (b.fn === null) continue;
      b.fn.unlink?.();
      b.fn = null; b.region = false; b.rMembers = null; b.rHead = null; b.hotFrom = this.icount;
      const u = b.u!;
      if (this.ublk[u >> 2] === b && this.uc[u + 1]! !== 0) this.uc[u + 1] = b.head;
    }
    this.translated = 0;
    this.translationDrops++;
    this.xHeads.clear();
    this.newLinkGen();
  }

  /**
   * A translated block loses its function: counted again to the threshold (a region's head
   * with members on another page takes the members that enter its function along, since
   * those may lie on a page the invalidation did not look at). The running one stops after
   * the current instruction.
   */
  private dropFn(b: Block): void {
    const f = b.fn;
    if (f === null) return;
    // (A WebAssembly region leaves the chain table when any block holding it drops it.)
    f.unlink?.();
    b.fn = null; b.region = false; this.translated--; b.hotFrom = this.icount; b.rtRuns = 0; b.rtInsns = 0;
    if (this.ublk[b.u! >> 2] === b && this.uc[b.u! + 1]! !== 0) this.uc[b.u! + 1] = b.head;
    if (b === this.curBlock) this.brk = this.brk || 1;
    if (b.xPage >= 0 && b.rMembers !== null) for (const m of b.rMembers) if (m.fn === f) this.dropFn(m);
    b.rMembers = null;
  }

  /** A guest write hit a page holding translated code: drop the blocks that cover it. */
  protected invalidateCodeAt(p: number): void {
    const pg = p >>> 12;
    const bits = this.codeBits.get(pg);
    if (bits !== undefined && (bits[(p & 0xfff) >>> 3]! & (1 << (p & 7))) === 0) return;
    const list = this.pageBlocks.get(pg);
    if (!list) { this.mem.code[pg] = 0; return; }
    let keep: Block[] | null = null;
    let hit = false;
    for (const b of list) {
      if (!b.valid) continue;
      const covers = (p >= b.phys && p < b.physEnd) || (b.phys2 >= 0 && p >= b.phys2 && p < b.phys2 + 4096);
      if (covers) {
        hit = true;
        b.valid = false;
        this.dropFn(b);
        if (this.ublk[b.u! >> 2] === b) this.uc[b.u! + 1] = 0;
        this.blocks.delete(b.phys * 2 + (b.code32 ? 1 : 0));
        if (b === this.curBlock || b.u === this.curH) this.brk = this.brk || 1;
      } else (keep ??= []).push(b);
    }
    // A region runs other blocks of its page: any block of the page dropped drops the regions
    // headed there (the running one stops after this instruction), to be translated again
    // later, and the regions headed elsewhere with members here.
    if (hit && keep) {
      for (const b of keep) if (b.region) this.dropFn(b);
    }
    const xs = hit ? this.xHeads.get(pg) : undefined;
    if (xs !== undefined) {
      this.xHeads.delete(pg);
      for (const h of xs) if (h.xPage === pg && h.region) this.dropFn(h);
    }
    if (keep && keep.length) {
      this.pageBlocks.set(pg, keep);
      this.mem.code[pg] = keep.length;
      if (hit) this.codeBits.delete(pg);
      else if (bits === undefined) this.codeBits.set(pg, coverage(pg, keep));
    } else {
      this.pageBlocks.delete(pg);
      this.codeBits.delete(pg);
      this.mem.code[pg] = 0;
    }
  }

  /** What the translator may look at to grow a region (jit.ts). */
  protected readonly regionHost = {
    cpu: this as CpuBlocks,
    blockAt(phys: number): Block | undefined { return this.cpu.blocks.get(phys * 2 + 1); },
    hasBreakpoint(lin: number): boolean { return this.cpu.breakpoints.has(lin); },
    /** The physical page a linear page maps to through the read TLB, else -1 (no walk). */
    tlbPage(lin: number): number { const e = this.cpu.tlbR[lin >>> 12]!; return e === 0 ? -1 : e - 1; },
    /** A region headed by `head` has members on physical page `pg`. */
    crossPage(head: Block, pg: number): void {
      const xs = this.cpu.xHeads.get(pg);
      if (xs === undefined) this.cpu.xHeads.set(pg, [head]);
      else if (!xs.includes(head)) xs.push(head);
    },
    hot(b: Block, share = REGION_HOT): boolean {
      // Executions counted in the header (up to the threshold; -1 once left interpreted for good).
      // (Counted from b.head: its executions are v - b.head + 1 of thr - b.head + 1.)
      const v = this.cpu.uc[b.u! + 1]!, thr = this.cpu.jitThreshold;
      return this.cpu.ublk[b.u! >> 2] === b && (v < 0 || (v - b.head + 1) * share >= thr - b.head + 1);
    },
  };

  protected fetcher = {
    cpu: this as CpuBlocks,
    fetch8(n: number): number {
      const c = this.cpu;
      const off = c.code32 ? (c.decodeLin + n) >>> 0 : (c.decodeLin + n) & 0xffff;
      if (off > c.segLimit[CS]!) c.gp(0);
      const l = (c.segBase[CS]! + off) >>> 0;
      return c.physRead8Fetch(l);
    },
  };

  /** Instruction fetch of one byte at a linear address (user-mode rights when CPL 3). */
  physRead8Fetch(l: number): number {
    // One page walk per page per block built (the walk's A-bit updates happen on the first).
    let p: number;
    if ((l >>> 12) === this.fetchLinPage) p = (this.fetchPhysPage | (l & 0xfff)) >>> 0;
    else {
      p = this.xlate(l, false, this.decodeUser);
      this.fetchLinPage = l >>> 12;
      this.fetchPhysPage = (p & ~0xfff) >>> 0;
    }
    if (p < this.ramLen) return this.ram[p]!;
    return this.bus.physRead8(p) & 0xff;
  }

  /** The block at EIP (run() follows the header links itself first; this is the slow path). */
  protected lookupBlock(): Block {
    const prev = this.prevH >= 0 ? this.ublk[this.prevH >> 2]! : null;
    const eip = this.eip;
    if (prev !== null && prev.sEpoch === this.chainEpoch) {
      const s1 = prev.s1;
      if (s1 !== null && prev.s1Eip === eip && s1.valid) return s1;
      const s2 = prev.s2;
      if (s2 !== null && prev.s2Eip === eip && s2.valid) return s2;
    }
    const b = this.lookupBlockSlow();
    // A block that crosses a page is linked only while the read TLB maps its second page (as
    // lookupBlockSlow just checked): that entry changes only with a new chain epoch.
    const lp = ((this.segBase[CS]! + eip) >>> 12) & 0xfffff;
    if (prev !== null && (b.phys2 < 0 || this.tlbR[(lp + 1) & 0xfffff] === (b.phys2 >>> 12) + 1)) {
      if (prev.sEpoch !== this.chainEpoch) { prev.sEpoch = this.chainEpoch; prev.s1 = null; prev.s2 = null; prev.s1Eip = -1; prev.s2Eip = -1; }
      if (prev.s1 === null) { prev.s1 = b; prev.s1Eip = eip; }
      else if (prev.s2 === null) { prev.s2 = b; prev.s2Eip = eip; }
      // Mirror the links into prev's header.
      const uc = this.uc, h = prev.u!;
      if (this.ublk[h >> 2] !== prev) return b; // prev left the store (compacted away)
      this.ucf[(h >> 1) + 1] = prev.sEpoch;
      uc[h + 4] = prev.s1Eip; uc[h + 5] = prev.s1 !== null ? prev.s1.u! : 0;
      uc[h + 6] = prev.s2Eip; uc[h + 7] = prev.s2 !== null ? prev.s2.u! : 0;
    }
    return b;
  }

  /**
   * The cached block at EIP if finding it needs no page walk and no decoding (the read TLB and
   * the L1 only), one that lies in one page, else null. Nothing changes: translated code chains
   * through it past the two successor slots (cpu.ts runTranslated).
   */
  protected probeBlock(eip: number): Block | null {
    const linEip = (this.segBase[CS]! + eip) >>> 0;
    const e = this.tlbR[linEip >>> 12]!;
    if (e === 0) return null;
    const phys = (((e - 1) << 12) | (linEip & 0xfff)) >>> 0;
    const b = this.l1[phys & ((1 << L1_BITS) - 1)];
    return b !== null && b !== undefined && b.phys === phys && b.code32 === this.code32 && b.valid && b.phys2 < 0 ? b : null;
  }

  /**
   * The header of the cached block at EIP if the read TLB and the L1 find it (probeBlock), else
   * 0: where the interpreter goes on when neither successor link matches (a return to one of
   * many callers).
   */
  protected probeH(eip: number): number {
    const b = this.probeBlock(eip);
    return b !== null && this.ublk[b.u! >> 2] === b ? b.u! : 0;
  }

  /**
   * The interpreter linked a block to the one at EIP (found by probeH): as lookupBlockSlow
   * notes, a link through a page that is not global must not outlive a CR3 write.
   */
  protected noteLink(eip: number): void {
    if (this.tlbG[((this.segBase[CS]! + eip) >>> 12) & 0xfffff] !== 1) this.linkedLocal = true;
  }

  protected lookupBlockSlow(): Block {
    const linEip = (this.segBase[CS]! + this.eip) >>> 0;
    const e = this.tlbR[linEip >>> 12]!;
    const phys = e !== 0 ? (((e - 1) << 12) | (linEip & 0xfff)) >>> 0 : this.xlate(linEip, false, this.cpl === 3);
    if (this.tlbG[linEip >>> 12] !== 1 || (linEip & 0xfff) > 0xff0) this.linkedLocal = true;
    const slot = phys & ((1 << L1_BITS) - 1);
    let b = this.l1[slot];
    if (b !== null && b !== undefined && b.phys === phys && b.code32 === this.code32 && b.valid && (b.phys2 < 0 || this.phys2Matches(b, linEip))) return b;
    const m = this.blocks.get(phys * 2 + (this.code32 ? 1 : 0));
    if (m && (m.phys2 < 0 || this.phys2Matches(m, linEip))) { this.l1[slot] = m; return m; }
    const nb = this.buildBlock(phys, linEip);
    this.l1[slot] = nb;
    return nb;
  }

  /**
   * Whether the page after the one at linEip still maps to the block's second page: through
   * the read TLB, as for the first page (lookupBlockSlow), else a walk (which fills it).
   */
  protected phys2Matches(b: Block, linEip: number): boolean {
    const l2 = ((linEip & ~0xfff) + 0x1000) >>> 0;
    const e = this.tlbR[l2 >>> 12]!;
    if (e !== 0) return ((e - 1) << 12) >>> 0 === b.phys2;
    try { return this.xlate(l2, false, this.cpl === 3) === b.phys2; } catch { return false; }
  }

  protected buildBlock(phys: number, linEip: number): Block {
    const insns: Insn[] = [];
    const startEip = this.eip;
    let off = 0;
    let phys2 = -1;
    this.decodeUser = this.cpl === 3;
    this.fetchLinPage = -1;
    const max = this.singleStep ? 1 : MAX_BLOCK;
    const pageEnd = ((linEip & ~0xfff) >>> 0) + 0x1000; // unsigned: code above 2 GiB (a kernel at 0xC0000000)
    for (;;) {
      const insEip = this.code32 ? (startEip + off) >>> 0 : (startEip + off) & 0xffff;
      const insLin = (this.segBase[CS]! + insEip) >>> 0;
      if (insns.length > 0 && this.breakpoints.size && this.breakpoints.has(insLin)) break;
      this.decodeLin = insEip;
      const ins = new Insn();
      try {
        decode(this.fetcher, this.code32, ins);
      } catch (e) {
        if (insns.length === 0) {
          if (e instanceof DecodeError) this.fault(e.vector, 0);
          throw e;
        }
        break; // fault belongs to the next block's first instruction
      }
      ins.off = off;
      ins.fn = handlerFor(ins) as Insn["fn"];
      insns.push(ins);
      off += ins.len;
      if (endsBlock(ins.op, ins.reg)) break;
      // REP string instructions and any prefix-LOCKed or invalid form end the block.
      if (ins.rep !== REP_NONE && ((ins.op >= 0xa4 && ins.op <= 0xa7) || (ins.op >= 0xaa && ins.op <= 0xaf))) break;
      if (insns.length >= max) break;
      if (insLin + ins.len >= pageEnd) {
        if (insLin + ins.len > pageEnd) {
          // This instruction crosses into the next page.
          phys2 = this.xlate(pageEnd >>> 0, false, this.decodeUser);
        }
        break;
      }
    }
    // Instruction crossing the page boundary as the only / last instruction.
    if (phys2 < 0 && ((linEip & 0xfff) + off) > 0x1000) phys2 = this.xlate(pageEnd >>> 0, false, this.decodeUser);
    const u = this.ucAlloc(UHDR + insns.length * UREC), uc = this.uc;
    // A block with x87 instructions starts its count nearer the threshold (JIT_X87_THRESHOLD).
    const head = insns.some((i) => i.op >= 0xd8 && i.op <= 0xdf) ? Math.max(1, this.jitThreshold - JIT_X87_THRESHOLD + 1) : 1;
    uc[u] = insns.length; uc[u + 1] = head;
    this.ucf[(u >> 1) + 1] = -1;
    uc[u + 4] = -1; uc[u + 5] = 0; uc[u + 6] = -1; uc[u + 7] = 0;
    for (let k = 0; k < insns.length; k++) encodeRec(insns[k]!, this.code32, uc, u + UHDR + k * UREC);
    markDeadFlags(uc, u + UHDR, insns.length);
    const b: Block = {
      insns, n: insns.length, phys, physEnd: Math.min(phys + off, ((phys >>> 12) + 1) << 12), code32: this.code32, phys2, valid: true,
      fn: null, jitOff: null, jitIdx: null, region: false, jitEntry: 0, rHead: null, rDelta: 0, xPage: -1, rMembers: null, s1: null, s1Eip: -1, s2: null, s2Eip: -1, sEpoch: -1,
      hotFrom: this.icount, lukewarm: 0, rtRuns: 0, rtInsns: 0, head, u,
    };
    this.blocks.set(phys * 2 + (this.code32 ? 1 : 0), b);
    this.ublk[u >> 2] = b;
    this.addPageBlock(phys >>> 12, b);
    if (phys2 >= 0) this.addPageBlock(phys2 >>> 12, b);
    this.blocksBuilt++;
    return b;
  }

  /**
   * Room for `words` words in the store. When it is full: if the blocks still in the cache
   * fill at most half of what is in use, their headers and records are copied to a fresh store
   * and blocks not copied are made unreachable (L1 cleared, successor links dropped by the
   * epoch); otherwise the store doubles (contents and offsets kept).
   */
  protected ucAlloc(words: number): number {
    if (this.ucTop + words > this.uc.length) {
      let live = UHDR + words;
      for (const b of this.blocks.values()) live += UHDR + b.n * UREC;
      let cap = this.uc.length;
      while (live * 2 > cap) cap *= 2;
      const old = this.uc, uc = new Int32Array(cap), ucf = new Float64Array(uc.buffer);
      if (live * 2 > this.ucTop) {
        // Mostly live: grow in place.
        uc.set(old);
        for (let k = this.ublk.length; k < cap >> 2; k++) this.ublk.push(null);
        this.uc = uc; this.ucf = ucf;
      } else {
        const ublk = new Array<Block | null>(cap >> 2).fill(null);
        let top = UHDR;
        for (const b of this.blocks.values()) {
          const n = UHDR + b.n * UREC, from = b.u!;
          for (let k = 0; k < n; k++) uc[top + k] = old[from + k]!;
          b.u = top;
          ublk[top >> 2] = b;
          ucf[(top >> 1) + 1] = -1; // links dropped (chainEpoch moves on below as well)
          top += n;
        }
        this.uc = uc; this.ucf = ucf; this.ublk = ublk;
        this.ucTop = top;
        this.l1.fill(null);
        this.newLinkGen();
        this.prevH = -1;
      }
    }
    const u = this.ucTop;
    this.ucTop += words;
    return u;
  }

  protected addPageBlock(pg: number, b: Block): void {
    if (pg >= this.mem.pages) return; // ROM outside RAM cannot be written
    let list = this.pageBlocks.get(pg);
    if (!list) { list = []; this.pageBlocks.set(pg, list); }
    list.push(b);
    this.codeBits.delete(pg);
    const wasCode = this.mem.code[pg] !== 0;
    this.mem.code[pg] = list.length;
    if (!wasCode) this.flushWriteTlb();
  }

  /**
   * Drop every translated block that starts in or reaches into physical page `pg` (a caller
   * that rewrote the page from outside the guest: checkpoint restore, debugger writes).
   */
  invalidatePage(pg: number): void {
    if (!this.mem.code[pg] && !this.pageBlocks.has(pg)) return;
    const list = this.pageBlocks.get(pg);
    if (list) {
      for (const b of list) {
        if (!b.valid) continue;
        b.valid = false;
        if (this.ublk[b.u! >> 2] === b) this.uc[b.u! + 1] = 0;
        if (b.fn !== null) { b.fn.unlink?.(); b.fn = null; this.translated--; }
        this.blocks.delete(b.phys * 2 + (b.code32 ? 1 : 0));
        const other = b.phys >>> 12 === pg ? (b.phys2 >= 0 ? b.phys2 >>> 12 : -1) : b.phys >>> 12;
        if (other >= 0) {
          const ol = this.pageBlocks.get(other);
          if (ol) {
            const keep = ol.filter((x) => x !== b);
            if (keep.length) { this.pageBlocks.set(other, keep); this.mem.code[other] = keep.length; }
            else { this.pageBlocks.delete(other); this.mem.code[other] = 0; }
            this.codeBits.delete(other);
          }
        }
      }
      this.pageBlocks.delete(pg);
    }
    this.codeBits.delete(pg);
    this.mem.code[pg] = 0;
    this.newLinkGen();
  }
}

/** The bytes of page `pg` the valid blocks of `list` cover, as invalidateCodeAt tests them. */
function coverage(pg: number, list: readonly Block[]): Uint8Array {
  const bits = new Uint8Array(512);
  const lo = pg * 4096, hi = lo + 4096;
  const mark = (a: number, b: number) => {
    for (let x = Math.max(a, lo); x < Math.min(b, hi); x++) bits[(x - lo) >>> 3]! |= 1 << (x & 7);
  };
  for (const b of list) {
    if (!b.valid) continue;
    mark(b.phys, b.physEnd);
    if (b.phys2 >= 0) mark(b.phys2, b.phys2 + 4096);
  }
  return bits;
}
