/**
 * Symbols for gdb from a System.map (the `nm -n` listing Linux installs next to its kernel):
 * turned into a small ELF32 i386 file that holds only a symbol table, which gdb loads like any
 * other symbol file. A distribution kernel ships as a compressed bzImage without symbols, so
 * this is how `rrx gdb` gives a user `break do_sys_uname` and function names in `bt` and `x/i`.
 *
 * The ELF has no program headers and no section contents: one NOBITS section spans the
 * symbols' addresses (gdb reads the code itself from the target), absolute symbols are SHN_ABS,
 * text symbols are functions whose size runs to the next symbol, data symbols are objects.
 */

export interface MapSymbol {
  addr: number;
  /** nm's type letter: T/t text, D/d data, B/b bss, R/r read-only, A/a absolute, W/w weak, ... */
  type: string;
  name: string;
}

export class SymbolMapError extends Error {}

/** Parse System.map / `nm` text: "ADDRESS TYPE NAME" per line; blank lines are skipped. */
export function parseSystemMap(text: string, name = "System.map"): MapSymbol[] {
  const out: MapSymbol[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    const m = /^([0-9a-fA-F]{1,16})\s+([A-Za-z?-])\s+(\S+)/.exec(line);
    if (!m) throw new SymbolMapError(`${name}:${i + 1}: expected 'ADDRESS TYPE NAME', got '${line.slice(0, 60)}'`);
    const addr = parseInt(m[1]!, 16);
    if (addr > 0xffffffff) throw new SymbolMapError(`${name}:${i + 1}: address ${m[1]} does not fit 32 bits (a 64-bit kernel's map?)`);
    out.push({ addr, type: m[2]!, name: m[3]! });
  }
  if (out.length === 0) throw new SymbolMapError(`${name}: no symbols`);
  return out;
}

const SHT_PROGBITS = 1, SHT_SYMTAB = 2, SHT_STRTAB = 3, SHT_NOBITS = 8;
const SHF_WRITE = 1, SHF_ALLOC = 2, SHF_EXECINSTR = 4;
const STB_LOCAL = 0, STB_GLOBAL = 1, STB_WEAK = 2;
const STT_NOTYPE = 0, STT_OBJECT = 1, STT_FUNC = 2;
const SHN_ABS = 0xfff1;

function symKind(type: string): { bind: number; stype: number; abs: boolean } | null {
  const t = type;
  if (t === "U" || t === "-") return null; // undefined, stabs: nothing to place
  const abs = t === "A" || t === "a";
  const bind = "WwVv".includes(t) ? STB_WEAK : t === "u" || t === t.toUpperCase() ? STB_GLOBAL : STB_LOCAL;
  const lower = t.toLowerCase();
  const stype = lower === "t" || lower === "w" ? STT_FUNC : "dbrgsv".includes(lower) ? STT_OBJECT : STT_NOTYPE;
  return { bind, stype, abs };
}

class Strtab {
  private readonly parts: Uint8Array[] = [new Uint8Array(1)];
  private size = 1;
  add(s: string): number {
    const b = new TextEncoder().encode(s + "\0");
    const off = this.size;
    this.parts.push(b);
    this.size += b.length;
    return off;
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const p of this.parts) { out.set(p, o); o += p.length; }
    return out;
  }
}

/** An ELF32 little-endian i386 symbol file holding `symbols`. */
export function symbolElf(symbols: readonly MapSymbol[]): Uint8Array {
  const placed = symbols
    .map((s) => ({ s, k: symKind(s.type) }))
    .filter((x): x is { s: MapSymbol; k: NonNullable<ReturnType<typeof symKind>> } => x.k !== null);
  const inSection = placed.filter((x) => !x.k.abs);
  let lo = Infinity, hi = 0;
  for (const { s } of inSection) { lo = Math.min(lo, s.addr); hi = Math.max(hi, s.addr); }
  if (inSection.length === 0) { lo = 0; hi = 0; }
  // Sizes: a function runs to the next distinct address (sorted), so gdb knows its bounds.
  const addrs = [...new Set(inSection.map((x) => x.s.addr))].sort((a, b) => a - b);
  const nextAddr = new Map<number, number>();
  for (let i = 0; i + 1 < addrs.length; i++) nextAddr.set(addrs[i]!, addrs[i + 1]!);

  // Locals first (ELF requires it), each group in map order.
  const ordered = [...placed.filter((x) => x.k.bind === STB_LOCAL), ...placed.filter((x) => x.k.bind !== STB_LOCAL)];
  const firstGlobal = 1 + placed.filter((x) => x.k.bind === STB_LOCAL).length;
  const strtab = new Strtab();
  const symtab = new Uint8Array(16 * (ordered.length + 1));
  const sv = new DataView(symtab.buffer);
  ordered.forEach(({ s, k }, i) => {
    const o = 16 * (i + 1);
    sv.setUint32(o, strtab.add(s.name), true);
    sv.setUint32(o + 4, s.addr, true);
    const next = nextAddr.get(s.addr);
    sv.setUint32(o + 8, k.stype === STT_FUNC && next !== undefined ? next - s.addr : 0, true);
    symtab[o + 12] = (k.bind << 4) | k.stype;
    symtab[o + 13] = 0;
    sv.setUint16(o + 14, k.abs ? SHN_ABS : 1, true);
  });
  const strBytes = strtab.bytes();

  const shstr = new Strtab();
  const nText = shstr.add(".text"), nSym = shstr.add(".symtab"), nStr = shstr.add(".strtab"), nShstr = shstr.add(".shstrtab");
  const shstrBytes = shstr.bytes();

  // Layout: header, symtab, strtab, shstrtab, section headers.
  const EH = 52;
  const symOff = EH, strOff = symOff + symtab.length, shstrOff = strOff + strBytes.length;
  const shOff = (shstrOff + shstrBytes.length + 3) & ~3;
  const nSections = 5;
  const total = shOff + 40 * nSections;
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1, 0], 0); // ELF, 32-bit, little endian, version 1, System V
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 3, true); // EM_386
  v.setUint32(20, 1, true); // EV_CURRENT
  v.setUint32(24, 0, true); // no entry point
  v.setUint32(28, 0, true); // no program headers
  v.setUint32(32, shOff, true);
  v.setUint32(36, 0, true);
  v.setUint16(40, EH, true);
  v.setUint16(42, 32, true);
  v.setUint16(44, 0, true);
  v.setUint16(46, 40, true);
  v.setUint16(48, nSections, true);
  v.setUint16(50, 4, true); // .shstrtab
  out.set(symtab, symOff);
  out.set(strBytes, strOff);
  out.set(shstrBytes, shstrOff);
  const sh = (i: number, f: { name: number; type: number; flags: number; addr: number; off: number; size: number; link?: number; info?: number; align: number; entsize?: number }) => {
    const o = shOff + 40 * i;
    v.setUint32(o, f.name, true); v.setUint32(o + 4, f.type, true); v.setUint32(o + 8, f.flags, true);
    v.setUint32(o + 12, f.addr, true); v.setUint32(o + 16, f.off, true); v.setUint32(o + 20, f.size, true);
    v.setUint32(o + 24, f.link ?? 0, true); v.setUint32(o + 28, f.info ?? 0, true);
    v.setUint32(o + 32, f.align, true); v.setUint32(o + 36, f.entsize ?? 0, true);
  };
  sh(1, { name: nText, type: inSection.length ? SHT_NOBITS : SHT_PROGBITS, flags: SHF_ALLOC | SHF_WRITE | SHF_EXECINSTR, addr: lo, off: symOff, size: inSection.length ? hi - lo + 1 : 0, align: 1 });
  sh(2, { name: nSym, type: SHT_SYMTAB, flags: 0, addr: 0, off: symOff, size: symtab.length, link: 3, info: firstGlobal, align: 4, entsize: 16 });
  sh(3, { name: nStr, type: SHT_STRTAB, flags: 0, addr: 0, off: strOff, size: strBytes.length, align: 1 });
  sh(4, { name: nShstr, type: SHT_STRTAB, flags: 0, addr: 0, off: shstrOff, size: shstrBytes.length, align: 1 });
  return out;
}
