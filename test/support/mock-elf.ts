/**
 * Builds a tiny ELF32 i386 executable holding the mock machine's program
 * with a symbol table (main, func, counter), so the real-gdb tests can load
 * symbols the way `rrx gdb` loads the kernel ELF: function names in stops,
 * `break func`, `finish`, `nexti` over calls, `reverse-finish`...
 * No DWARF: gdb treats the functions as having no line information.
 */

import { MOCK_CODE, MOCK_DATA, MOCK_FUNC, MOCK_PROGRAM } from "./mock-target.ts";

export function buildMockElf(): Uint8Array {
  const text = Uint8Array.from(MOCK_PROGRAM);
  const strtab = "\0main\0func\0counter\0";
  const shstrtab = "\0.text\0.bss\0.symtab\0.strtab\0.shstrtab\0";
  const sname = (s: string) => shstrtab.indexOf("\0" + s + "\0") + 1;
  const name = (s: string) => strtab.indexOf("\0" + s + "\0") + 1;

  const textOff = 0x100;
  const symOff = 0x200;
  const syms: [number, number, number, number, number][] = [
    // name, value, size, info, shndx
    [0, 0, 0, 0, 0],
    [name("main"), MOCK_CODE, MOCK_FUNC - MOCK_CODE, 0x12, 1], // GLOBAL FUNC
    [name("func"), MOCK_FUNC, MOCK_PROGRAM.length - (MOCK_FUNC - MOCK_CODE), 0x12, 1],
    [name("counter"), MOCK_DATA, 4, 0x11, 2], // GLOBAL OBJECT
  ];
  const strOff = symOff + syms.length * 16;
  const shstrOff = strOff + strtab.length;
  const shOff = (shstrOff + shstrtab.length + 3) & ~3;
  const nsec = 6;
  const size = shOff + nsec * 40;

  const buf = new Uint8Array(size);
  const dv = new DataView(buf.buffer);
  const u8 = (o: number, v: number) => dv.setUint8(o, v);
  const u16 = (o: number, v: number) => dv.setUint16(o, v, true);
  const u32 = (o: number, v: number) => dv.setUint32(o, v >>> 0, true);
  const str = (o: number, s: string) => {
    for (let i = 0; i < s.length; i++) buf[o + i] = s.charCodeAt(i);
  };

  // ELF header
  buf.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1], 0); // ELFCLASS32, LSB, version 1
  u16(16, 2); // ET_EXEC
  u16(18, 3); // EM_386
  u32(20, 1);
  u32(24, MOCK_CODE); // entry
  u32(28, 52); // phoff
  u32(32, shOff);
  u32(36, 0);
  u16(40, 52);
  u16(42, 32);
  u16(44, 1); // phnum
  u16(46, 40);
  u16(48, nsec);
  u16(50, 5); // shstrndx

  // PT_LOAD for .text
  u32(52, 1);
  u32(56, textOff);
  u32(60, MOCK_CODE);
  u32(64, MOCK_CODE);
  u32(68, text.length);
  u32(72, text.length);
  u32(76, 5); // R+X
  u32(80, 0x1000);

  buf.set(text, textOff);
  syms.forEach(([n, v, s, info, shndx], i) => {
    const o = symOff + i * 16;
    u32(o, n);
    u32(o + 4, v);
    u32(o + 8, s);
    u8(o + 12, info);
    u8(o + 13, 0);
    u16(o + 14, shndx);
  });
  str(strOff, strtab);
  str(shstrOff, shstrtab);

  const sh = (i: number, nm: number, type: number, flags: number, addr: number, off: number, sz: number, link = 0, info = 0, align = 1, entsize = 0) => {
    const o = shOff + i * 40;
    u32(o, nm);
    u32(o + 4, type);
    u32(o + 8, flags);
    u32(o + 12, addr);
    u32(o + 16, off);
    u32(o + 20, sz);
    u32(o + 24, link);
    u32(o + 28, info);
    u32(o + 32, align);
    u32(o + 36, entsize);
  };
  sh(0, 0, 0, 0, 0, 0, 0);
  sh(1, sname(".text"), 1, 6, MOCK_CODE, textOff, text.length, 0, 0, 16); // PROGBITS, AX
  sh(2, sname(".bss"), 8, 3, MOCK_DATA, textOff + text.length, 4, 0, 0, 4); // NOBITS, WA
  sh(3, sname(".symtab"), 2, 0, 0, symOff, syms.length * 16, 4, 1, 4, 16); // link=.strtab, first global=1
  sh(4, sname(".strtab"), 3, 0, 0, strOff, strtab.length);
  sh(5, sname(".shstrtab"), 3, 0, 0, shstrOff, shstrtab.length);
  return buf;
}
