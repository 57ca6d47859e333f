/**
 * A tiny bzImage for tests: a protocol 2.15 setup header and, at 1 MiB,
 * start_kernel: xor eax,eax; spin: inc eax; cmp eax,100; jne spin; do_exit: mov al,0; out 0xf4,al; hlt
 */
export const TINY_CODE = [0x31, 0xc0, 0x40, 0x83, 0xf8, 0x64, 0x75, 0xfa, 0xb0, 0x00, 0xe6, 0xf4, 0xf4];
export const TINY_MAP = "00100000 T start_kernel\n00100002 t spin\n00100008 T do_exit\n";

export function tinyBzImage(o: { xloadflags?: number } = {}): Uint8Array {
  const img = new Uint8Array(5 * 512 + 512);
  const w16 = (off: number, v: number) => { img[off] = v & 0xff; img[off + 1] = v >> 8; };
  const w32 = (off: number, v: number) => { w16(off, v & 0xffff); w16(off + 2, v >>> 16); };
  img[0x1f1] = 4; w16(0x1fe, 0xaa55); img[0x200] = 0xeb; img[0x201] = 0x6a;
  img.set([0x48, 0x64, 0x72, 0x53], 0x202); // "HdrS"
  w16(0x206, 0x020f); img[0x211] = 1; w32(0x214, 0x100000); w32(0x22c, 0x7fffffff);
  w16(0x236, o.xloadflags ?? 0); w32(0x238, 2047); w32(0x258, 0x100000); w32(0x260, 0x10000);
  img.set(TINY_CODE, 5 * 512);
  return img;
}
