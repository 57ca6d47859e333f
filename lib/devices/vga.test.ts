import { describe, expect, test } from "bun:test";
import { CP437, FRAME_NS, Vga } from "./vga.ts";
import { TestCtx, restoreBytes, saveBytes } from "../../test/support/testctx.ts";

function mk() {
  const ctx = new TestCtx();
  const ram = new Uint8Array(1 << 20);
  const vga = new Vga(ctx, ram);
  return { ctx, ram, vga };
}
function puts(ram: Uint8Array, cell: number, s: string, attr = 0x07) {
  for (let i = 0; i < s.length; i++) {
    ram[0xb8000 + (cell + i) * 2] = s.charCodeAt(i);
    ram[0xb8000 + (cell + i) * 2 + 1] = attr;
  }
}
const crtc = (v: Vga, i: number, val: number) => { v.ioWrite(0x3d4, 1, i); v.ioWrite(0x3d5, 1, val); };

describe("VGA text mode", () => {
  test("CP437 table has 256 single characters", () => {
    expect(CP437.length).toBe(256);
    expect(CP437[0x41]).toBe("A");
    expect(CP437[0xc9]).toBe("╔");
    expect(CP437[0xdb]).toBe("█");
    expect(CP437[0x01]).toBe("☺");
    expect(CP437[0xe1]).toBe("ß");
  });

  test("screenText reads guest RAM at 0xB8000 live, trims trailing spaces", () => {
    const { ram, vga } = mk();
    for (let i = 0; i < 2000; i++) { ram[0xb8000 + 2 * i] = 0x20; ram[0xb8000 + 2 * i + 1] = 0x07; }
    puts(ram, 0, "Hello, world!   ");
    puts(ram, 80 * 24 + 70, "\xc9\xcd\xbb");
    const lines = vga.screenText().split("\n");
    expect(lines.length).toBe(25);
    expect(lines[0]).toBe("Hello, world!");
    expect(lines[24]).toBe(" ".repeat(70) + "╔═╗");
    puts(ram, 0, "J");
    expect(vga.screenText().startsWith("Jello")).toBe(true);
  });

  test("cursor location, cursor disable bit and start address", () => {
    const { ram, vga } = mk();
    crtc(vga, 0x0e, 0x00); crtc(vga, 0x0f, 0xa5); // 165 = row 2 col 5
    expect(vga.screen().cursor).toEqual({ row: 2, col: 5, visible: true });
    crtc(vga, 0x0a, 0x20);
    expect(vga.screen().cursor.visible).toBe(false);
    crtc(vga, 0x0a, 0x0d);
    vga.ioWrite(0x3d4, 1, 0x0a);
    expect(vga.ioRead(0x3d5, 1)).toBe(0x0d);
    puts(ram, 80, "second line");
    crtc(vga, 0x0c, 0x00); crtc(vga, 0x0d, 80); // scroll by one line
    expect(vga.screenText().split("\n")[0]).toBe("second line");
    expect(vga.screen().cursor).toEqual({ row: 1, col: 5, visible: true });
  });

  test("word writes to the CRTC index port set index and data", () => {
    const { vga } = mk();
    vga.ioWrite(0x3d4, 2, 0x3412);
    expect(vga.ioRead(0x3d4, 1)).toBe(0x12);
    expect(vga.ioRead(0x3d5, 1)).toBe(0x34);
  });

  test("CR11 bit 7 write-protects CR0-CR7", () => {
    const { vga } = mk();
    crtc(vga, 0x11, 0x8e);
    crtc(vga, 0x01, 0x00);
    vga.ioWrite(0x3d4, 1, 0x01);
    expect(vga.ioRead(0x3d5, 1)).toBe(0x4f);
  });

  test("attribute controller flip-flop is reset by reading 0x3DA", () => {
    const { vga } = mk();
    vga.ioRead(0x3da, 1);
    vga.ioWrite(0x3c0, 1, 0x10);
    vga.ioWrite(0x3c0, 1, 0x08);
    vga.ioWrite(0x3c0, 1, 0x12); // this is an index again
    vga.ioRead(0x3da, 1);
    vga.ioWrite(0x3c0, 1, 0x30);
    expect(vga.ioRead(0x3c1, 1)).toBe(0x08);
    expect(vga.ioRead(0x3c0, 1)).toBe(0x30);
  });

  test("sequencer, graphics, misc and DAC registers read back", () => {
    const { vga } = mk();
    vga.ioWrite(0x3c4, 1, 0x02); vga.ioWrite(0x3c5, 1, 0x0f);
    expect(vga.ioRead(0x3c5, 1)).toBe(0x0f);
    vga.ioWrite(0x3ce, 1, 0x05); vga.ioWrite(0x3cf, 1, 0x40);
    expect(vga.ioRead(0x3cf, 1)).toBe(0x40);
    vga.ioWrite(0x3c2, 1, 0x63);
    expect(vga.ioRead(0x3cc, 1)).toBe(0x63);
    vga.ioWrite(0x3c8, 1, 5);
    for (const v of [1, 2, 3, 4, 5, 6]) vga.ioWrite(0x3c9, 1, v);
    vga.ioWrite(0x3c7, 1, 5);
    expect([0, 1, 2, 3, 4, 5].map(() => vga.ioRead(0x3c9, 1))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(vga.ioRead(0x3c7, 1)).toBe(3);
  });

  test("0x3DA retrace bits follow virtual time at 60 Hz", () => {
    const { ctx, vga } = mk();
    ctx.t = 1000;
    expect(vga.ioRead(0x3da, 1) & 0x08).toBe(0);
    ctx.t = FRAME_NS - 10;
    expect(vga.ioRead(0x3da, 1) & 0x09).toBe(0x09);
    ctx.t = FRAME_NS + 10;
    expect(vga.ioRead(0x3da, 1) & 0x08).toBe(0);
    let retraces = 0;
    let prev = 0;
    for (let t = 0; t < 1e9; t += 20_000) {
      ctx.t = t;
      const v = vga.ioRead(0x3da, 1) & 0x08;
      if (v && !prev) retraces++;
      prev = v;
    }
    expect(retraces).toBe(60);
  });

  test("renderAnsi with and without colour", () => {
    const { ram, vga } = mk();
    for (let i = 0; i < 2000; i++) { ram[0xb8000 + 2 * i] = 0x20; ram[0xb8000 + 2 * i + 1] = 0x07; }
    puts(ram, 0, "Hi", 0x1e); // yellow on blue
    crtc(vga, 0x0a, 0x20);
    const plain = vga.renderAnsi(false);
    expect(plain.includes("\x1b")).toBe(false);
    expect(plain.split("\n")[0]).toBe("Hi" + " ".repeat(78));
    const col = vga.renderAnsi(true).split("\n")[0]!;
    expect(col.startsWith("\x1b[0;93;44mHi\x1b[0;37;40m ")).toBe(true);
    expect(col.endsWith("\x1b[0m")).toBe(true);
  });

  test("save/restore round trip; text stays in RAM", () => {
    const { ctx, ram, vga } = mk();
    crtc(vga, 0x0e, 0x01); crtc(vga, 0x0f, 0x00);
    vga.ioRead(0x3da, 1);
    vga.ioWrite(0x3c0, 1, 0x11);
    vga.ioWrite(0x3c8, 1, 7); vga.ioWrite(0x3c9, 1, 9);
    const b = saveBytes(vga);
    const v2 = new Vga(ctx, ram);
    restoreBytes(v2, b);
    expect(saveBytes(v2)).toEqual(b);
    vga.ioWrite(0x3c0, 1, 0x99); v2.ioWrite(0x3c0, 1, 0x99);
    vga.ioWrite(0x3c9, 1, 1); v2.ioWrite(0x3c9, 1, 1);
    expect(saveBytes(v2)).toEqual(saveBytes(vga));
    expect(v2.screen()).toEqual(vga.screen());
  });
});
