/**
 * ELF32 (i386) header and program-header parsing for the boot loaders.
 * Only what loading needs: the file header and PT_LOAD segments. No symbols.
 */

/** A boot image could not be loaded. The message is one line, fit for the user. */
export class BootError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BootError";
  }
}

export const PT_NULL = 0;
export const PT_LOAD = 1;
export const ET_EXEC = 2;
export const EM_386 = 3;

export interface ElfProgramHeader {
  type: number;
  /** File offset of the segment's bytes. */
  offset: number;
  vaddr: number;
  paddr: number;
  filesz: number;
  memsz: number;
  flags: number;
  align: number;
}

export interface Elf32 {
  type: number;
  machine: number;
  entry: number;
  phoff: number;
  shoff: number;
  flags: number;
  programHeaders: ElfProgramHeader[];
}

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46]; // "\x7fELF"

/** True if the image starts with the ELF magic (any class or machine). */
export function isElf(image: Uint8Array): boolean {
  if (image.length < 4) return false;
  for (let i = 0; i < 4; i++) if (image[i] !== ELF_MAGIC[i]) return false;
  return true;
}

/** Parse an ELF32 little-endian i386 executable. Throws BootError on anything else. */
export function parseElf32(image: Uint8Array): Elf32 {
  if (!isElf(image)) throw new BootError("not an ELF file (bad magic)");
  if (image.length < 16) throw new BootError("truncated ELF file: identification is incomplete");
  const cls = image[4];
  if (cls === 2) throw new BootError("64-bit ELF kernels are not supported yet");
  if (cls !== 1) throw new BootError(`not a valid ELF file: unknown class ${cls}`);
  if (image[5] !== 1) throw new BootError("not a little-endian ELF file");
  if (image.length < 52) throw new BootError("truncated ELF file: header is incomplete");
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const type = dv.getUint16(16, true);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_386) throw new BootError(`not an i386 ELF file (machine ${machine})`);
  if (type !== ET_EXEC) throw new BootError(`not an ELF executable (type ${type})`);
  const entry = dv.getUint32(24, true);
  const phoff = dv.getUint32(28, true);
  const shoff = dv.getUint32(32, true);
  const flags = dv.getUint32(36, true);
  const phentsize = dv.getUint16(42, true);
  const phnum = dv.getUint16(44, true);
  if (phnum > 0 && phentsize < 32) throw new BootError(`bad ELF program header size ${phentsize}`);
  if (phoff + phnum * phentsize > image.length) {
    throw new BootError("truncated ELF file: program headers extend past the end");
  }
  const programHeaders: ElfProgramHeader[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    const ph: ElfProgramHeader = {
      type: dv.getUint32(o, true),
      offset: dv.getUint32(o + 4, true),
      vaddr: dv.getUint32(o + 8, true),
      paddr: dv.getUint32(o + 12, true),
      filesz: dv.getUint32(o + 16, true),
      memsz: dv.getUint32(o + 20, true),
      flags: dv.getUint32(o + 24, true),
      align: dv.getUint32(o + 28, true),
    };
    if (ph.type === PT_LOAD) {
      if (ph.offset + ph.filesz > image.length) {
        throw new BootError(`truncated ELF file: segment ${i} extends past the end`);
      }
      if (ph.filesz > ph.memsz) {
        throw new BootError(`bad ELF segment ${i}: file size exceeds memory size`);
      }
    }
    programHeaders.push(ph);
  }
  return { type, machine, entry, phoff, shoff, flags, programHeaders };
}

/** The PT_LOAD segments with a nonzero memory size, in file order. */
export function loadSegments(elf: Elf32): ElfProgramHeader[] {
  return elf.programHeaders.filter((p) => p.type === PT_LOAD && p.memsz > 0);
}

/** Symbol values by name from an ELF32's .symtab (empty if it has none). */
export function elfSymbols(image: Uint8Array): Map<string, number> {
  const out = new Map<string, number>();
  if (image.length < 0x34) return out;
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const shoff = dv.getUint32(0x20, true), shentsize = dv.getUint16(0x2e, true), shnum = dv.getUint16(0x30, true);
  if (shoff === 0 || shoff + shnum * shentsize > image.length) return out;
  for (let i = 0; i < shnum; i++) {
    const sh = shoff + i * shentsize;
    if (dv.getUint32(sh + 4, true) !== 2) continue; // SHT_SYMTAB
    const off = dv.getUint32(sh + 16, true), size = dv.getUint32(sh + 20, true), link = dv.getUint32(sh + 24, true);
    if (link >= shnum || off + size > image.length) continue;
    const strOff = dv.getUint32(shoff + link * shentsize + 16, true);
    for (let s = off; s + 16 <= off + size; s += 16) {
      let n = strOff + dv.getUint32(s, true), name = "";
      while (n < image.length && image[n]) name += String.fromCharCode(image[n++]!);
      if (name) out.set(name, dv.getUint32(s + 4, true));
    }
  }
  return out;
}
