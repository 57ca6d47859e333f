/**
 * The memory path: segment:offset to linear (limit and rights checks), linear to physical
 * through the software TLB and the page walker (#PF), RAM and the bus, the supervisor
 * accesses used for system structures, watchpoint checks, and the debugger's translation.
 *
 * Two TLBs, each one array per privilege and access kind (linear page -> physical page + 1):
 * - The architectural TLB (arch*): what the guest's CPU has cached. A page walk, which sets
 *   the accessed and dirty bits in guest memory, happens exactly when it misses, and only
 *   guest actions empty it (CR0/CR3/CR4 writes, INVLPG, A20, reset). So when a guest clears an
 *   accessed or dirty bit without flushing, whether the next access sets it again depends on
 *   the guest alone, never on rrx's caches, checkpoints or breakpoints; snapshots carry it
 *   (saveCaches).
 * - The fast TLB (tlbSR...): the subset the memory fast paths and translated code use. It
 *   holds only plain-RAM pages, and its write half only pages that are already dirty for every
 *   dirty tracker and hold no code, so the write fast path needs no per-write bookkeeping; rrx
 *   drops its entries whenever that no longer holds (flushWriteTlb, watchpoints) and refills
 *   them from the architectural TLB without a walk. A write to a page that holds code goes the
 *   slow way and invalidates the blocks covering it (blocks.ts).
 */
import type { CpuBus } from "./bus.ts";
import type { PhysMem } from "../../machine/ram.ts";
import { Stop, type Watchpoint } from "../contract.ts";
import { CR0_WP, CR4_PSE, CR4_PGE, AR_P, AR_CODE, AR_DB } from "./arch.ts";
import { CS, ES, SS, type Insn } from "./decode.ts";
import { CpuState } from "./state.ts";
import type { StateReader, StateWriter } from "../../machine/snapshot.ts";

const TLB_ENTRIES = 1 << 20;
/** Capacity of the lists of linear pages with TLB entries (tlbUsed, archUsed). */
const USED_PAGES = 1 << 15;

/** Link contexts remembered at once (CpuMemory.linkContext). */
const LINK_CTX = 8;

export abstract class CpuMemory extends CpuState {
  readonly ram: Uint8Array;
  protected readonly ramLen: number;
  // Software TLB: index = linear page, value = physical page + 1 (0 = miss). Only RAM pages.
  // (In the state area after RAM: ram.ts stateArray.)
  protected readonly tlbSR: Uint32Array;
  protected readonly tlbSW: Uint32Array;
  protected readonly tlbUR: Uint32Array;
  protected readonly tlbUW: Uint32Array;
  /** The TLBs for the current privilege level (read by translated code). */
  tlbR: Uint32Array;
  tlbW: Uint32Array;
  /** The architectural TLB (see above): same layout; filled by every walk with paging on. */
  protected readonly archSR = new Uint32Array(TLB_ENTRIES);
  protected readonly archSW = new Uint32Array(TLB_ENTRIES);
  protected readonly archUR = new Uint32Array(TLB_ENTRIES);
  protected readonly archUW = new Uint32Array(TLB_ENTRIES);
  /** 1 where the last walk that filled a linear page's entries found a global page (PTE/PDE.G with CR4.PGE). */
  protected readonly tlbG = new Uint8Array(TLB_ENTRIES);
  /**
   * Linear pages with fast entries, to clear them (past capacity: clear the whole arrays, 4 MiB
   * each). Room for as many pages as a kernel touches between flushes: a Linux boot used more
   * than 4096 between the recorder's hash points (each drops the write entries), and clearing
   * the whole arrays there cost more than the rest of the hashing.
   */
  protected readonly tlbUsed = new Int32Array(USED_PAGES);
  protected tlbUsedN = 0;
  /** The same for the architectural TLB (its own list: it must not depend on fast fills). */
  protected readonly archUsed = new Int32Array(USED_PAGES);
  protected archUsedN = 0;
  /** RAM as aligned 32-bit words (little-endian host), for aligned accesses. */
  readonly ram32: Int32Array;
  /** RAM as aligned 16-bit words, for translated code's aligned 16-bit accesses. */
  protected readonly ram16: Uint16Array;
  /** Epoch of every successor link between blocks (blocks.ts): see linkGen. */
  protected chainEpoch = 0;
  /**
   * The epoch is linkGen * LINK_CTX + the slot of the link context: CS (base, limit, size), CPL
   * and the mode. linkGen moves on whenever a link may have gone wrong (newLinkGen); a change
   * of context only picks another slot (linkContext), so that a kernel entered from user mode
   * and left again finds its links as it left them, and so does the user code.
   */
  private linkGen = 0;
  private ctxId = 0;
  private ctxNext = 0;
  private readonly ctxKey = new Float64Array(LINK_CTX * 3).fill(-1);

  /** Drop every link between blocks. */
  protected newLinkGen(): void {
    this.linkGen++;
    this.chainEpoch = this.linkGen * LINK_CTX + this.ctxId;
  }

  /** After a change of CS, CPL or mode: the links of that context. */
  protected linkContext(): void {
    const base = this.segBase[CS]!, lim = this.segLimit[CS]!;
    const f = ((this.segAr[CS]! & AR_DB) !== 0 ? 1 : 0) | (this.cpl << 1) | ((this.cr0 & 1) << 3) | ((this.eflags & 0x20000) !== 0 ? 16 : 0);
    const k = this.ctxKey;
    let id = -1;
    for (let i = 0; i < LINK_CTX; i++) if (k[i * 3] === base && k[i * 3 + 1] === lim && k[i * 3 + 2] === f) { id = i; break; }
    if (id < 0) {
      // A slot for a new context: the links stamped with it (by the context it had) must go.
      id = this.ctxNext;
      this.ctxNext = (id + 1) % LINK_CTX;
      k[id * 3] = base; k[id * 3 + 1] = lim; k[id * 3 + 2] = f;
      this.linkGen++;
    }
    this.ctxId = id;
    this.chainEpoch = this.linkGen * LINK_CTX + id;
  }

  constructor(readonly bus: CpuBus, readonly mem: PhysMem) {
    super(mem);
    this.tlbSR = mem.stateArray(Uint32Array, TLB_ENTRIES);
    this.tlbSW = mem.stateArray(Uint32Array, TLB_ENTRIES);
    this.tlbUR = mem.stateArray(Uint32Array, TLB_ENTRIES);
    this.tlbUW = mem.stateArray(Uint32Array, TLB_ENTRIES);
    this.ram = mem.ram;
    this.ramLen = mem.ram.length;
    if ((mem.ram.byteOffset & 3) !== 0) throw new Error("RAM must be 4-byte aligned");
    this.ram32 = new Int32Array(mem.ram.buffer, mem.ram.byteOffset, mem.ram.length >>> 2);
    this.ram16 = new Uint16Array(mem.ram.buffer, mem.ram.byteOffset, mem.ram.length >>> 1);
    this.tlbR = this.tlbSR;
    this.tlbW = this.tlbSW;
    mem.onRevokeFastWrite = () => this.flushWriteTlb();
  }

  /** A guest write hit a page holding translated code: drop the blocks that cover it (blocks.ts). */
  protected abstract invalidateCodeAt(p: number): void;

  setA20(on: boolean): void {
    const m = on ? 0xffffffff : 0xffefffff;
    if (m !== this.a20Mask) { this.a20Mask = m; this.flushTlb(); }
  }

  // =====================================================================================
  // Memory: segmentation
  // =====================================================================================

  /** Effective address (offset) of a ModRM memory operand. */
  ea(i: Insn): number {
    let a = i.disp;
    if (i.base >= 0) a += this.regs[i.base]!;
    if (i.index >= 0) a += this.regs[i.index]! << i.scale;
    return i.a32 ? a >>> 0 : a & 0xffff;
  }

  /** Segment of a ModRM memory operand. */
  seg(i: Insn): number { return i.seg >= 0 ? i.seg : i.defSeg; }

  /** Linear address for an access of `size` bytes at seg:off, with limit and rights checks. */
  lin(s: number, off: number, size: number, write: boolean): number {
    if (this.segFast[s]) return (this.segBase[s]! + off) >>> 0;
    return this.linSlow(s, off, size, write);
  }

  protected linSlow(s: number, off: number, size: number, write: boolean): number {
    const ar = this.segAr[s]!;
    const fv = s === SS ? 12 : 13;
    if (this.pe() && !this.v86()) {
      if ((this.sel[s]! & 0xfffc) === 0 && s !== CS && s !== SS) this.fault(fv, 0);
      if (!(ar & AR_P)) this.fault(fv, 0);
      if (ar & AR_CODE) {
        if (write && s !== -1) this.fault(fv, 0);
        if (!write && !(ar & 0x02) && s !== CS) this.fault(fv, 0);
      } else if (write && !(ar & 0x02)) this.fault(fv, 0);
    }
    const lim = this.segLimit[s]!;
    const last = off + size - 1;
    if (!(ar & AR_CODE) && (ar & 0x04)) {
      // Expand-down: valid offsets are (limit, 0xFFFF or 0xFFFFFFFF].
      const top = ar & AR_DB ? 0xffffffff : 0xffff;
      if (off <= lim || last > top) this.fault(fv, 0);
    } else if (last > lim) this.fault(fv, 0);
    return (this.segBase[s]! + off) >>> 0;
  }

  // Memory operand accessors by segment:offset.
  rd8(s: number, off: number): number { return this.rl8(this.lin(s, off, 1, false)); }
  rd16(s: number, off: number): number { return this.rl16(this.lin(s, off, 2, false)); }
  rd32(s: number, off: number): number { return this.rl32(this.lin(s, off, 4, false)); }
  rd(sz: number, s: number, off: number): number {
    return sz === 2 ? this.rd32(s, off) : sz === 1 ? this.rd16(s, off) : this.rd8(s, off);
  }
  /**
   * The read of a read-modify-write operand (ALU ops, INC/DEC, NEG, shifts and rotates, BTS/BTR/
   * BTC, XADD, CMPXCHG on memory), checked for the write first: a store that would fault faults
   * here, before the instruction has changed a flag (SDM Vol. 3 6.5: a fault reports the state
   * before the instruction), and the store that follows cannot fault. Translated code does the
   * same by setting the flags after its store.
   */
  rdRmw(sz: number, s: number, off: number): number {
    const n = 1 << sz;
    const l = this.lin(s, off, n, true);
    if (this.tlbW[l >>> 12] === 0) this.checkWritable(l);
    if ((l & 0xfff) > 0x1000 - n && this.tlbW[((l + n - 1) >>> 12)] === 0) this.checkWritable(((l + n - 1) & ~0xfff) >>> 0);
    return sz === 2 ? this.rl32(l) : sz === 1 ? this.rl16(l) : this.rl8(l);
  }
  wr8(s: number, off: number, v: number): void { this.wl8(this.lin(s, off, 1, true), v); }
  wr16(s: number, off: number, v: number): void { this.wl16(this.lin(s, off, 2, true), v); }
  wr32(s: number, off: number, v: number): void { this.wl32(this.lin(s, off, 4, true), v); }
  wr(sz: number, s: number, off: number, v: number): void {
    if (sz === 2) this.wr32(s, off, v); else if (sz === 1) this.wr16(s, off, v); else this.wr8(s, off, v);
  }

  /**
   * The exception the last translated-code accessor below caught, or null. Translated code
   * calls these on its slow paths and tests `jfx` after a read (a write returns 1): with no try
   * in the generated functions, the engine keeps their locals in registers and compiles them
   * faster.
   */
  jfx: unknown = null;
  jr8(s: number, off: number): number { try { return this.rd8(s, off); } catch (e) { this.jfx = e; return 0; } }
  jr16(s: number, off: number): number { try { return this.rd16(s, off); } catch (e) { this.jfx = e; return 0; } }
  jr32(s: number, off: number): number { try { return this.rd32(s, off) | 0; } catch (e) { this.jfx = e; return 0; } }
  jw8(s: number, off: number, v: number): number { try { this.wr8(s, off, v); return 0; } catch (e) { this.jfx = e; return 1; } }
  jw16(s: number, off: number, v: number): number { try { this.wr16(s, off, v); return 0; } catch (e) { this.jfx = e; return 1; } }
  jw32(s: number, off: number, v: number): number { try { this.wr32(s, off, v); return 0; } catch (e) { this.jfx = e; return 1; } }

  /**
   * Up to `max` iterations of REP MOVS (kind 0, from segment `src`) or REP STOS (kind 2) of
   * 1 << sz bytes each, 32-bit addressing, forwards or (`down`: DF set) backwards, done at once
   * where every byte they touch is on the same source and destination page as their first,
   * through flat segments and fast TLB entries (plain RAM without code or watchpoints, already
   * accessed and dirty: nothing a single iteration would do differently). Updates ESI, EDI and
   * ECX and returns the count, 0 when the next iteration is not such a case (the caller runs it
   * the slow way).
   */
  bulkString(kind: number, sz: number, src: number, max: number, down = false): number {
    if (this.segFast[ES] === 0 || (kind === 0 && this.segFast[src] === 0)) return 0;
    const regs = this.regs, w = 1 << sz, edi = regs[7]!, dl = (this.segBase[ES]! + edi) >>> 0;
    const ed = this.tlbW[dl >>> 12]!;
    if (ed === 0) return 0;
    // Whole elements before the destination page, or the offset, ends (below the first
    // element, going down: it must lie in the page itself).
    let n = down ? ((dl & 0xfff) + w > 4096 ? 0 : Math.min(max, Math.floor((dl & 0xfff) / w) + 1, Math.floor(edi / w) + 1))
      : Math.min(max, Math.floor((4096 - (dl & 0xfff)) / w), Math.floor((0x100000000 - edi) / w));
    // (dp: the first element's byte in RAM)
    const dp = ((ed - 1) << 12) | (dl & 0xfff);
    const ram = this.ram;
    if (kind === 0) {
      const esi = regs[6]!, sl = (this.segBase[src]! + esi) >>> 0;
      const es = this.tlbR[sl >>> 12]!;
      if (es === 0) return 0;
      n = down ? ((sl & 0xfff) + w > 4096 ? 0 : Math.min(n, Math.floor((sl & 0xfff) / w) + 1, Math.floor(esi / w) + 1))
        : Math.min(n, Math.floor((4096 - (sl & 0xfff)) / w), Math.floor((0x100000000 - esi) / w));
      if (n <= 0) return 0;
      const sp = ((es - 1) << 12) | (sl & 0xfff), len = n * w, sgn = down ? -1 : 1;
      // Element by element, a copy onto source bytes it has yet to read (ahead of it, in its
      // direction) repeats a pattern; otherwise it equals a move (memmove's).
      if (down ? dp < sp && sp < dp + len : sp < dp && dp < sp + len) {
        for (let k = 0; k < len; k += w) {
          let v = 0;
          for (let j = 0; j < w; j++) v |= ram[sp + sgn * k + j]! << (j * 8);
          for (let j = 0; j < w; j++) ram[dp + sgn * k + j] = v >>> (j * 8);
        }
      } else {
        const low = down ? len - w : 0; // (from the first element's byte to the run's lowest)
        ram.copyWithin(dp - low, sp - low, sp - low + len);
      }
      regs[6] = (esi + sgn * len) >>> 0;
    } else {
      if (n <= 0) return 0;
      const v = regs[0]!, lo = down ? dp - (n - 1) * w : dp;
      if (sz === 0) ram.fill(v & 0xff, lo, lo + n);
      else if (sz === 2 && (lo & 3) === 0) this.ram32.fill(v | 0, lo >>> 2, (lo >>> 2) + n);
      else if (sz === 1 && (lo & 1) === 0) this.ram16.fill(v & 0xffff, lo >>> 1, (lo >>> 1) + n);
      else for (let k = 0; k < n * w; k++) ram[lo + k] = (v >>> ((k & (w - 1)) * 8)) & 0xff;
    }
    regs[7] = (down ? edi - n * w : edi + n * w) >>> 0;
    regs[1] = (regs[1]! - n) >>> 0;
    return n;
  }

  // =====================================================================================
  // Memory: linear accesses through the TLB
  // =====================================================================================

  rl8(l: number): number {
    const e = this.tlbR[l >>> 12]!;
    if (e !== 0) return this.ram[((e - 1) << 12) | (l & 0xfff)]!;
    return this.rl8Slow(l);
  }
  protected rl8Slow(l: number): number {
    return this.physRead8(this.xlate(l, false, this.cpl === 3), l);
  }
  rl16(l: number): number {
    const e = this.tlbR[l >>> 12]!, o = l & 0xfff;
    if (e !== 0 && o <= 0xffe) {
      const p = ((e - 1) << 12) | o, r = this.ram;
      return r[p]! | (r[p + 1]! << 8);
    }
    return this.rl8(l) | (this.rl8((l + 1) >>> 0) << 8);
  }
  rl32(l: number): number {
    const e = this.tlbR[l >>> 12]!, o = l & 0xfff;
    if (e !== 0 && o <= 0xffc) {
      const p = ((e - 1) << 12) | o, r = this.ram;
      return (r[p]! | (r[p + 1]! << 8) | (r[p + 2]! << 16) | (r[p + 3]! << 24)) >>> 0;
    }
    return this.rl32Slow(l);
  }
  protected rl32Slow(l: number): number {
    if ((l & 0xfff) <= 0xffc) {
      const p = this.xlate(l, false, this.cpl === 3);
      return (this.physRead8(p, l) | (this.physRead8(p + 1, l + 1) << 8) | (this.physRead8(p + 2, l + 2) << 16) | (this.physRead8(p + 3, l + 3) << 24)) >>> 0;
    }
    return (this.rl16(l) | (this.rl16((l + 2) >>> 0) << 16)) >>> 0;
  }
  wl8(l: number, v: number): void {
    const e = this.tlbW[l >>> 12]!;
    if (e !== 0) { this.ram[((e - 1) << 12) | (l & 0xfff)] = v; return; }
    this.wl8Slow(l, v);
  }
  protected wl8Slow(l: number, v: number): void {
    this.physWrite8(this.xlate(l, true, this.cpl === 3), v, l);
  }
  wl16(l: number, v: number): void {
    const e = this.tlbW[l >>> 12]!, o = l & 0xfff;
    if (e !== 0 && o <= 0xffe) {
      const p = ((e - 1) << 12) | o, r = this.ram;
      r[p] = v; r[p + 1] = v >>> 8;
      return;
    }
    if (o > 0xffe) this.checkWritable((l + 1) >>> 0);
    this.wl8(l, v);
    this.wl8((l + 1) >>> 0, v >>> 8);
  }
  wl32(l: number, v: number): void {
    const e = this.tlbW[l >>> 12]!, o = l & 0xfff;
    if (e !== 0 && o <= 0xffc) {
      const p = ((e - 1) << 12) | o, r = this.ram;
      r[p] = v; r[p + 1] = v >>> 8; r[p + 2] = v >>> 16; r[p + 3] = v >>> 24;
      return;
    }
    this.wl32Slow(l, v);
  }
  protected wl32Slow(l: number, v: number): void {
    const o = l & 0xfff;
    // A page-crossing write faults before any byte is written: lower page first, and CR2 is
    // the first byte of the access inside the faulting page.
    this.xlate(l, true, this.cpl === 3);
    if (o > 0xffc) this.checkWritable(((l + 3) & ~0xfff) >>> 0);
    this.wl8(l, v); this.wl8((l + 1) >>> 0, v >>> 8); this.wl8((l + 2) >>> 0, v >>> 16); this.wl8((l + 3) >>> 0, v >>> 24);
  }
  /** Raise the #PF (or take the walk) a write at linear `l` by the current privilege needs. */
  checkWritable(l: number): void {
    this.xlate(l, true, this.cpl === 3);
  }

  /** Supervisor (system-structure) accesses: descriptor tables, TSS, IDT. */
  rs32(l: number): number {
    const saved = this.cpl;
    this.cpl = 0; this.tlbR = this.tlbSR;
    try { return this.rl32(l); } finally { this.cpl = saved; this.tlbR = saved === 3 ? this.tlbUR : this.tlbSR; }
  }
  rs16(l: number): number {
    const saved = this.cpl;
    this.cpl = 0; this.tlbR = this.tlbSR;
    try { return this.rl16(l); } finally { this.cpl = saved; this.tlbR = saved === 3 ? this.tlbUR : this.tlbSR; }
  }
  ws8(l: number, v: number): void {
    const saved = this.cpl;
    this.cpl = 0; this.tlbW = this.tlbSW;
    try { this.wl8(l, v); } finally { this.cpl = saved; this.tlbW = saved === 3 ? this.tlbUW : this.tlbSW; }
  }

  physRead8(p: number, lin: number): number {
    if (this.watchpoints.length) this.checkWatch(lin, 1, false);
    if (p < this.ramLen) return this.ram[p]!;
    return this.bus.physRead8(p) & 0xff;
  }

  physWrite8(p: number, v: number, lin: number): void {
    if (this.watchpoints.length) this.checkWatch(lin, 1, true);
    if (p < this.ramLen) {
      const pg = p >>> 12, mem = this.mem;
      if (mem.readonly[pg]) return;
      mem.markDirty(pg);
      if (mem.code[pg]) this.invalidateCodeAt(p);
      this.ram[p] = v;
      return;
    }
    this.bus.physWrite8(p, v & 0xff);
  }

  /** Physical read for the page walker and loaders (no watch checks). */
  protected pr32(p: number): number {
    p >>>= 0;
    if (p + 3 < this.ramLen) {
      const r = this.ram;
      return (r[p]! | (r[p + 1]! << 8) | (r[p + 2]! << 16) | (r[p + 3]! << 24)) >>> 0;
    }
    return (this.bus.physRead8(p) | (this.bus.physRead8(p + 1) << 8) | (this.bus.physRead8(p + 2) << 16) | (this.bus.physRead8(p + 3) << 24)) >>> 0;
  }
  protected pw32(p: number, v: number): void {
    p >>>= 0;
    if (p + 3 < this.ramLen) {
      const pg = p >>> 12;
      if (this.mem.readonly[pg]) return;
      this.mem.markDirty(pg);
      if (this.mem.code[pg]) this.invalidateCodeAt(p);
      const r = this.ram;
      r[p] = v; r[p + 1] = v >>> 8; r[p + 2] = v >>> 16; r[p + 3] = v >>> 24;
    }
  }

  /**
   * Translate a linear address (page walk on a TLB miss), raising #PF. Fills the TLB when the
   * page is plain RAM (and, for writes, when the write fast path is allowed on it).
   */
  xlate(l: number, write: boolean, user: boolean): number {
    l >>>= 0;
    let phys: number, global = 0;
    const at = !this.paging() ? null : write ? (user ? this.archUW : this.archSW) : (user ? this.archUR : this.archSR);
    if (at === null) {
      phys = (l & this.a20Mask) >>> 0;
    } else if (at[l >>> 12] !== 0) {
      // Cached by the guest's CPU: no walk (the accessed/dirty bits were set when it was filled).
      phys = (((at[l >>> 12]! - 1) << 12) | (l & 0xfff)) >>> 0;
      global = this.tlbG[l >>> 12]!;
    } else {
      const pdeA = ((this.cr3 & 0xfffff000) + ((l >>> 22) << 2)) >>> 0;
      const pde = this.pr32(pdeA);
      const wp = (this.cr0 & CR0_WP) !== 0;
      const err = (write ? 2 : 0) | (user ? 4 : 0);
      if (!(pde & 1)) this.pageFault(l, err);
      if ((pde & 0x80) && (this.cr4 & CR4_PSE)) {
        if (user && !(pde & 4)) this.pageFault(l, err | 1);
        if (write && !(pde & 2) && (user || wp)) this.pageFault(l, err | 1);
        const npde = pde | 0x20 | (write ? 0x40 : 0);
        if (npde !== pde) this.pw32(pdeA, npde);
        phys = ((pde & 0xffc00000) | (l & 0x3fffff)) >>> 0;
        global = (pde >>> 8) & 1;
      } else {
        const pteA = ((pde & 0xfffff000) + (((l >>> 12) & 0x3ff) << 2)) >>> 0;
        const pte = this.pr32(pteA);
        if (!(pte & 1)) this.pageFault(l, err);
        const perm = pde & pte;
        if (user && !(perm & 4)) this.pageFault(l, err | 1);
        if (write && !(perm & 2) && (user || wp)) this.pageFault(l, err | 1);
        if (!(pde & 0x20)) this.pw32(pdeA, pde | 0x20);
        const npte = pte | 0x20 | (write ? 0x40 : 0);
        if (npte !== pte) this.pw32(pteA, npte);
        phys = ((pte & 0xfffff000) | (l & 0xfff)) >>> 0;
        global = (pte >>> 8) & 1;
      }
      if (!(this.cr4 & CR4_PGE)) global = 0;
      phys = (phys & this.a20Mask) >>> 0;
      const lp = l >>> 12;
      if ((this.archSR[lp]! | this.archSW[lp]! | this.archUR[lp]! | this.archUW[lp]!) === 0) {
        if (this.archUsedN < this.archUsed.length) this.archUsed[this.archUsedN++] = lp;
        else this.archUsedN = this.archUsed.length + 1;
      }
      at[lp] = (phys >>> 12) + 1;
      this.tlbG[lp] = global;
    }
    if (phys < this.ramLen && this.watchpoints.length === 0) {
      const pg = phys >>> 12, lp = l >>> 12;
      if (write) {
        // The write fast path needs the page dirty everywhere: mark it now (the caller writes).
        if (!this.mem.readonly[pg] && !this.mem.code[pg] && !this.mem.watched[pg]) {
          this.mem.markDirty(pg);
          const t = user ? this.tlbUW : this.tlbSW;
          if (t[lp] === 0) this.noteIfNew(lp);
          t[lp] = pg + 1;
          this.tlbG[lp] = global;
        }
      } else {
        // Block links (chainEpoch) assume a linear page's read entry changes only through a
        // flush: a walk that finds a new mapping for a cached page drops them too.
        const t = user ? this.tlbUR : this.tlbSR, o = t[lp]!;
        if (o !== pg + 1) {
          if (o === 0) this.noteIfNew(lp); else this.newLinkGen();
          t[lp] = pg + 1;
        }
        this.tlbG[lp] = global;
      }
    }
    return phys;
  }

  /**
   * Raise the #PF a write at linear `l` by the current privilege would raise, without writing,
   * filling the TLB or setting accessed/dirty bits (ENTER's check of its final stack pointer).
   */
  probeWrite(l: number): void {
    l >>>= 0;
    const user = this.cpl === 3, err = 2 | (user ? 4 : 0);
    if (this.tlbW[l >>> 12] !== 0 || !this.paging() || (user ? this.archUW : this.archSW)[l >>> 12] !== 0) return;
    const wp = (this.cr0 & CR0_WP) !== 0;
    const pde = this.pr32(((this.cr3 & 0xfffff000) + ((l >>> 22) << 2)) >>> 0);
    if (!(pde & 1)) this.pageFault(l, err);
    let perm = pde;
    if (!((pde & 0x80) && (this.cr4 & CR4_PSE))) {
      const pte = this.pr32(((pde & 0xfffff000) + (((l >>> 12) & 0x3ff) << 2)) >>> 0);
      if (!(pte & 1)) this.pageFault(l, err);
      perm &= pte;
    }
    if (user && !(perm & 4)) this.pageFault(l, err | 1);
    if (!(perm & 2) && (user || wp)) this.pageFault(l, err | 1);
  }

  protected pageFault(l: number, err: number): never {
    this.cr2 = l >>> 0;
    return this.fault(14, err);
  }

  protected tlbNote(lp: number): void {
    if (this.tlbUsedN < this.tlbUsed.length) this.tlbUsed[this.tlbUsedN++] = lp;
    else this.tlbUsedN = this.tlbUsed.length + 1; // overflowed: flush clears everything
  }

  /** Note a linear page in the fast list before its first fast entry. */
  private noteIfNew(lp: number): void {
    if ((this.tlbSR[lp]! | this.tlbSW[lp]! | this.tlbUR[lp]! | this.tlbUW[lp]!) === 0) this.tlbNote(lp);
  }

  /**
   * Drop TLB entries: all of them, or (`keepGlobal`: a CR3 write with CR4.PGE) all but those of
   * global pages. Past the list's capacity every entry goes, global or not (a TLB may always
   * drop entries; the SDM guarantees only that non-global ones go).
   */
  flushTlb(keepGlobal = false): void {
    if (keepGlobal) this.flushFastTlbLocal(); else this.flushFastTlb();
    let kept = 0;
    if (this.archUsedN > this.archUsed.length) {
      this.archSR.fill(0); this.archSW.fill(0); this.archUR.fill(0); this.archUW.fill(0);
    } else {
      const used = this.archUsed, g = this.tlbG;
      for (let i = 0; i < this.archUsedN; i++) {
        const lp = used[i]!;
        if (keepGlobal && g[lp] === 1) { used[kept++] = lp; continue; }
        this.archSR[lp] = 0; this.archSW[lp] = 0; this.archUR[lp] = 0; this.archUW[lp] = 0;
      }
    }
    this.archUsedN = kept;
  }

  /** Drop the fast TLB's write entries (the architectural TLB keeps them). */
  flushWriteTlb(): void {
    if (this.tlbUsedN > this.tlbUsed.length) { this.tlbSW.fill(0); this.tlbUW.fill(0); return; }
    for (let i = 0; i < this.tlbUsedN; i++) {
      const lp = this.tlbUsed[i]!;
      this.tlbSW[lp] = 0; this.tlbUW[lp] = 0;
    }
  }

  /**
   * Whether a block was looked up through a page that is not global, or crossing pages, since
   * the chain epoch last moved on: the links between blocks may then depend on a mapping that
   * a CR3 write drops (flushFastTlbLocal).
   */
  protected linkedLocal = true;

  /**
   * Drop the fast TLB's entries of pages that are not global (a CR3 write with CR4.PGE). The
   * links between blocks survive unless one was made through such a page: a kernel switching
   * address spaces keeps its own code linked.
   */
  protected flushFastTlbLocal(): void {
    if (this.linkedLocal || this.tlbUsedN > this.tlbUsed.length) { this.flushFastTlb(); return; }
    const used = this.tlbUsed, g = this.tlbG;
    let kept = 0;
    for (let i = 0; i < this.tlbUsedN; i++) {
      const lp = used[i]!;
      if (g[lp] === 1) { used[kept++] = lp; continue; }
      this.tlbSR[lp] = 0; this.tlbSW[lp] = 0; this.tlbUR[lp] = 0; this.tlbUW[lp] = 0;
    }
    this.tlbUsedN = kept;
  }

  /** Drop the whole fast TLB (the architectural TLB keeps its entries). */
  protected flushFastTlb(): void {
    this.newLinkGen();
    this.linkedLocal = false;
    if (this.tlbUsedN > this.tlbUsed.length) {
      this.tlbSR.fill(0); this.tlbSW.fill(0); this.tlbUR.fill(0); this.tlbUW.fill(0);
    } else {
      for (let i = 0; i < this.tlbUsedN; i++) {
        const lp = this.tlbUsed[i]!;
        this.tlbSR[lp] = 0; this.tlbSW[lp] = 0; this.tlbUR[lp] = 0; this.tlbUW[lp] = 0;
      }
    }
    this.tlbUsedN = 0;
    this.tlbR = this.cpl === 3 ? this.tlbUR : this.tlbSR;
    this.tlbW = this.cpl === 3 ? this.tlbUW : this.tlbSW;
  }

  invlpg(l: number): void {
    const lp = l >>> 12;
    // Links between blocks can involve the page only if it maps code (or ROM, whose blocks
    // RAM's code map does not count).
    const r1 = this.archSR[lp]!, r2 = this.archUR[lp]!, code = this.mem.code, pages = this.mem.pages;
    if (!this.paging() || (r1 !== 0 && (r1 - 1 >= pages || code[r1 - 1] !== 0)) || (r2 !== 0 && (r2 - 1 >= pages || code[r2 - 1] !== 0))) this.newLinkGen();
    this.tlbSR[lp] = 0; this.tlbSW[lp] = 0; this.tlbUR[lp] = 0; this.tlbUW[lp] = 0;
    this.archSR[lp] = 0; this.archSW[lp] = 0; this.archUR[lp] = 0; this.archUW[lp] = 0;
  }

  /**
   * The architectural TLB, for snapshots (not hashed: it is not guest memory or registers, but
   * it decides when walks set accessed and dirty bits, so a restored machine must have it).
   * The list of used pages in its order, each with its four entries and global bit.
   */
  saveCaches(w: StateWriter): void {
    const over = this.archUsedN > this.archUsed.length;
    w.bool(over);
    const lps: number[] = [];
    if (over) {
      for (let lp = 0; lp < TLB_ENTRIES; lp++) if ((this.archSR[lp]! | this.archSW[lp]! | this.archUR[lp]! | this.archUW[lp]!) !== 0) lps.push(lp);
    } else for (let i = 0; i < this.archUsedN; i++) lps.push(this.archUsed[i]!);
    w.u32(lps.length);
    for (const lp of lps) w.u32(lp).u32(this.archSR[lp]!).u32(this.archSW[lp]!).u32(this.archUR[lp]!).u32(this.archUW[lp]!).u8(this.tlbG[lp]!);
  }

  restoreCaches(r: StateReader): void {
    this.flushTlb();
    const over = r.bool(), n = r.u32();
    if (n > (over ? TLB_ENTRIES : this.archUsed.length)) throw new RangeError(`TLB state with ${n} entries`);
    for (let i = 0; i < n; i++) {
      const lp = r.u32() & (TLB_ENTRIES - 1);
      this.archSR[lp] = r.u32(); this.archSW[lp] = r.u32(); this.archUR[lp] = r.u32(); this.archUW[lp] = r.u32();
      this.tlbG[lp] = r.u8();
      if (!over) this.archUsed[this.archUsedN++] = lp;
    }
    if (over) this.archUsedN = this.archUsed.length + 1;
  }

  setCpl(c: number): void {
    this.cpl = c;
    this.tlbR = c === 3 ? this.tlbUR : this.tlbSR;
    this.tlbW = c === 3 ? this.tlbUW : this.tlbSW;
    this.linkContext();
  }

  // =====================================================================================
  // Debugger support: linear memory access without side effects on A/D bits is not
  // possible on x86 hardware either; we translate without touching A/D bits here.
  // =====================================================================================

  /** Translate for the debugger: no faults, no A/D updates. Returns -1 if unmapped. */
  debugXlate(l: number): number {
    l >>>= 0;
    if (!this.paging()) return (l & this.a20Mask) >>> 0;
    const pde = this.pr32(((this.cr3 & 0xfffff000) + ((l >>> 22) << 2)) >>> 0);
    if (!(pde & 1)) return -1;
    if ((pde & 0x80) && (this.cr4 & CR4_PSE)) return (((pde & 0xffc00000) | (l & 0x3fffff)) & this.a20Mask) >>> 0;
    const pte = this.pr32(((pde & 0xfffff000) + (((l >>> 12) & 0x3ff) << 2)) >>> 0);
    if (!(pte & 1)) return -1;
    return (((pte & 0xfffff000) | (l & 0xfff)) & this.a20Mask) >>> 0;
  }

  // =====================================================================================
  // Watchpoints and breakpoints
  // =====================================================================================

  protected checkWatch(lin: number, size: number, write: boolean): void {
    for (const w of this.watchpoints) {
      if (w.type === 2 && !write) continue;
      if (w.type === 3 && write) continue;
      if (lin + size > w.addr && lin < w.addr + w.len) {
        if (!this.watchHit) this.watchHit = { type: w.type, addr: w.addr };
        this.brk = Stop.WATCH;
      }
    }
  }

  setWatchpoints(list: Watchpoint[]): void {
    this.watchpoints.length = 0;
    this.watchpoints.push(...list);
    this.flushFastTlb(); // the fast TLB holds no page while watchpoints are set
  }
}
