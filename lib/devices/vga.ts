/**
 * VGA in 80x25 colour text mode.
 *
 * The text buffer is guest RAM at physical 0xB8000 (mapped by the machine as plain RAM);
 * the device reads it through the `ram` array given to its constructor (the whole guest
 * physical RAM, or any array with the text at `textBase`) and never copies it, so the text
 * is hashed with RAM and not in save().
 *
 * Ports: attribute controller 0x3C0/0x3C1 (index/data flip-flop), misc output 0x3C2 (write)
 * / 0x3CC (read), input status 0 0x3C2 (read), 0x3C3 video subsystem enable, sequencer
 * 0x3C4/0x3C5, DAC 0x3C6-0x3C9 (pel mask, read/write index, 6-bit RGB data), feature control
 * 0x3CA (read) / 0x3DA (write), graphics controller 0x3CE/0x3CF, CRTC 0x3D4/0x3D5 (with the
 * CR11 write protect of CR0-CR7), input status 1 0x3DA (read resets the attribute flip-flop;
 * bit 3 vertical retrace and bit 0 display-disabled follow virtual time at 60 Hz frames and
 * 31.78 us lines). Registers are stored and read back; there are no graphics modes.
 *
 * API for the host side: screen(), screenText(), renderAnsi(colour).
 */
import type { Device, DeviceContext, IoSize } from "../machine/device.ts";
import type { StateReader, StateWriter } from "../machine/snapshot.ts";

export const COLS = 80;
export const ROWS = 25;

/** CP437 as Unicode; 0x00 is shown as a space. */
export const CP437: readonly string[] = [
  ..." ☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼",
  ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(0x20 + i)),
  ..."⌂ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0",
];

// Standard BIOS mode 3 (80x25 colour text) register values.
const MODE3_CRTC = [0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00,
  0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff];
const MODE3_SEQ = [0x03, 0x00, 0x03, 0x00, 0x02];
const MODE3_GC = [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff];
const MODE3_ATTR = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
  0x0c, 0x00, 0x0f, 0x08, 0x00];
const N_CRTC = 25, N_SEQ = 5, N_GC = 9, N_ATTR = 21;

export const FRAME_NS = 16_666_667;
export const LINE_NS = 31_778;
const HDISP_NS = 25_422;
const VRETRACE_NS = 2 * LINE_NS;
const VBLANK_NS = 45 * LINE_NS;

/** VGA colour index -> ANSI colour number. */
const ANSI = [0, 4, 2, 6, 1, 5, 3, 7];

export interface Screen {
  rows: string[];
  attrs: Uint8Array;
  cursor: { row: number; col: number; visible: boolean };
}

export interface VgaOptions {
  /** Offset of physical 0xB8000 in `ram` (default 0xB8000: `ram` is all of guest RAM). */
  textBase?: number;
}

export class Vga implements Device {
  readonly name = "vga";
  readonly ports = [[0x3c0, 0x3cf], [0x3d4, 0x3d5], [0x3da, 0x3da]] as const;
  readonly crtc = new Uint8Array(N_CRTC);
  readonly seq = new Uint8Array(N_SEQ);
  readonly gc = new Uint8Array(N_GC);
  readonly attr = new Uint8Array(N_ATTR);
  readonly dac = new Uint8Array(768);
  crtcIndex = 0;
  seqIndex = 0;
  gcIndex = 0;
  /** Attribute index register including bit 5 (palette address source). */
  attrIndex = 0;
  /** false: the next 0x3C0 write is an index. */
  attrFlipFlop = false;
  misc = 0x67;
  featureCtl = 0;
  vse = 1;
  pelMask = 0xff;
  dacReadIndex = 0;
  dacWriteIndex = 0;
  dacSub = 0;
  /** 0 = last index write was to 0x3C8 (write mode), 3 = to 0x3C7 (read mode). */
  dacState = 0;
  private readonly textBase: number;

  constructor(private readonly ctx: DeviceContext, private readonly ram: Uint8Array, opts: VgaOptions = {}) {
    this.textBase = opts.textBase ?? 0xb8000;
    this.reset();
  }

  /** Power-on state: the registers of BIOS mode 3 with the cursor at 0,0. */
  reset(): void {
    this.crtc.set(MODE3_CRTC);
    this.seq.set(MODE3_SEQ);
    this.gc.set(MODE3_GC);
    this.attr.set(MODE3_ATTR);
    this.dac.fill(0);
    for (let i = 0; i < 64; i++) {
      this.dac[i * 3] = ((i >> 2) & 1) * 0x2a + ((i >> 5) & 1) * 0x15;
      this.dac[i * 3 + 1] = ((i >> 1) & 1) * 0x2a + ((i >> 4) & 1) * 0x15;
      this.dac[i * 3 + 2] = (i & 1) * 0x2a + ((i >> 3) & 1) * 0x15;
    }
    this.crtcIndex = 0; this.seqIndex = 0; this.gcIndex = 0; this.attrIndex = 0x20; this.attrFlipFlop = false;
    this.misc = 0x67; this.featureCtl = 0; this.vse = 1; this.pelMask = 0xff;
    this.dacReadIndex = 0; this.dacWriteIndex = 0; this.dacSub = 0; this.dacState = 0;
  }

  /** Input status 1 from virtual time. */
  private status1(): number {
    const t = this.ctx.now();
    const f = t % FRAME_NS;
    const vretrace = f >= FRAME_NS - VRETRACE_NS;
    const vblank = f >= FRAME_NS - VBLANK_NS;
    const hblank = t % LINE_NS >= HDISP_NS;
    return (vblank || hblank ? 0x01 : 0) | (vretrace ? 0x08 : 0);
  }

  ioRead(port: number, _size: IoSize): number {
    switch (port) {
      case 0x3c0: return this.attrIndex;
      case 0x3c1: {
        const i = this.attrIndex & 0x1f;
        return i < N_ATTR ? this.attr[i]! : 0;
      }
      case 0x3c2: return 0x10; // input status 0: switch sense
      case 0x3c3: return this.vse;
      case 0x3c4: return this.seqIndex;
      case 0x3c5: return this.seqIndex < N_SEQ ? this.seq[this.seqIndex]! : 0xff;
      case 0x3c6: return this.pelMask;
      case 0x3c7: return this.dacState;
      case 0x3c8: return this.dacWriteIndex;
      case 0x3c9: {
        const v = this.dac[this.dacReadIndex * 3 + this.dacSub]!;
        if (++this.dacSub === 3) { this.dacSub = 0; this.dacReadIndex = (this.dacReadIndex + 1) & 0xff; }
        return v;
      }
      case 0x3ca: return this.featureCtl;
      case 0x3cc: return this.misc;
      case 0x3ce: return this.gcIndex;
      case 0x3cf: return this.gcIndex < N_GC ? this.gc[this.gcIndex]! : 0xff;
      case 0x3d4: return this.crtcIndex;
      case 0x3d5: return this.crtcIndex < N_CRTC ? this.crtc[this.crtcIndex]! : 0xff;
      case 0x3da:
        this.attrFlipFlop = false;
        return this.status1();
      default: return 0xff;
    }
  }

  ioWrite(port: number, size: IoSize, value: number): void {
    if (size === 2) {
      // A word write to an index port writes the index and then the data port.
      this.ioWrite(port, 1, value & 0xff);
      if (port === 0x3c4 || port === 0x3ce || port === 0x3d4) this.ioWrite(port + 1, 1, (value >> 8) & 0xff);
      else if (port === 0x3c0) this.ioWrite(port, 1, (value >> 8) & 0xff);
      return;
    }
    value &= 0xff;
    switch (port) {
      case 0x3c0:
        if (!this.attrFlipFlop) this.attrIndex = value & 0x3f;
        else {
          const i = this.attrIndex & 0x1f;
          if (i < N_ATTR) this.attr[i] = value;
        }
        this.attrFlipFlop = !this.attrFlipFlop;
        break;
      case 0x3c2: this.misc = value; break;
      case 0x3c3: this.vse = value & 1; break;
      case 0x3c4: this.seqIndex = value & 0x07; break;
      case 0x3c5: if (this.seqIndex < N_SEQ) this.seq[this.seqIndex] = value; break;
      case 0x3c6: this.pelMask = value; break;
      case 0x3c7: this.dacReadIndex = value; this.dacSub = 0; this.dacState = 3; break;
      case 0x3c8: this.dacWriteIndex = value; this.dacSub = 0; this.dacState = 0; break;
      case 0x3c9:
        this.dac[this.dacWriteIndex * 3 + this.dacSub] = value & 0x3f;
        if (++this.dacSub === 3) { this.dacSub = 0; this.dacWriteIndex = (this.dacWriteIndex + 1) & 0xff; }
        break;
      case 0x3ce: this.gcIndex = value & 0x0f; break;
      case 0x3cf: if (this.gcIndex < N_GC) this.gc[this.gcIndex] = value; break;
      case 0x3d4: this.crtcIndex = value; break;
      case 0x3d5: {
        const i = this.crtcIndex;
        if (i >= N_CRTC) break;
        if (i <= 7 && this.crtc[0x11]! & 0x80) {
          if (i === 7) this.crtc[7] = (this.crtc[7]! & ~0x10) | (value & 0x10); // line compare bit 8 stays writable
          break;
        }
        this.crtc[i] = value;
        break;
      }
      case 0x3da: this.featureCtl = value; break;
      default: break;
    }
  }

  nextDeadline(): number { return Infinity; }
  onDeadline(): void {}

  /** Display start address (in character cells). */
  get startAddress(): number { return (this.crtc[0x0c]! << 8) | this.crtc[0x0d]!; }
  /** Cursor location (in character cells). */
  get cursorAddress(): number { return (this.crtc[0x0e]! << 8) | this.crtc[0x0f]!; }

  private cell(addr: number): number {
    const off = this.textBase + ((addr * 2) & 0x7fff);
    return off < this.ram.length ? off : -1;
  }

  /** The 80x25 screen: CP437 text mapped to Unicode, attributes, cursor. */
  screen(): Screen {
    const rows: string[] = [];
    const attrs = new Uint8Array(COLS * ROWS);
    const pitch = this.crtc[0x13]! * 2 || COLS;
    const start = this.startAddress;
    for (let r = 0; r < ROWS; r++) {
      let s = "";
      for (let c = 0; c < COLS; c++) {
        const off = this.cell(start + r * pitch + c);
        const ch = off >= 0 ? this.ram[off]! : 0x20;
        attrs[r * COLS + c] = off >= 0 && off + 1 < this.ram.length ? this.ram[off + 1]! : 0x07;
        s += CP437[ch]!;
      }
      rows.push(s);
    }
    const rel = this.cursorAddress - start;
    const disabled = (this.crtc[0x0a]! & 0x20) !== 0;
    let row = 0, col = 0, inside = false;
    if (rel >= 0) {
      row = Math.floor(rel / pitch);
      col = rel % pitch;
      inside = row < ROWS && col < COLS;
    }
    if (!inside) { row = Math.min(Math.max(row, 0), ROWS - 1); col = Math.min(col, COLS - 1); }
    return { rows, attrs, cursor: { row, col, visible: !disabled && inside } };
  }

  /** The 25 lines joined by "\n", trailing spaces trimmed per line. */
  screenText(): string {
    return this.screen().rows.map((r) => r.replace(/[ \u00a0]+$/, "")).join("\n");
  }

  /**
   * The screen for a terminal: 25 lines joined by "\n". With `colour`, SGR sequences give
   * each cell's foreground/background (blink bit as bright background unless the attribute
   * mode control enables blinking) and the cursor cell is shown in reverse video; every
   * line ends with a reset. Without `colour` it is the untrimmed text only.
   */
  renderAnsi(colour: boolean): string {
    const s = this.screen();
    if (!colour) return s.rows.join("\n");
    const blink = (this.attr[0x10]! & 0x08) !== 0;
    const lines: string[] = [];
    for (let r = 0; r < ROWS; r++) {
      let line = "";
      let prev = -1;
      const chars = [...s.rows[r]!];
      for (let c = 0; c < COLS; c++) {
        const a = s.attrs[r * COLS + c]!;
        const isCursor = s.cursor.visible && s.cursor.row === r && s.cursor.col === c;
        const key = a | (isCursor ? 0x100 : 0);
        if (key !== prev) {
          const fg = a & 0x0f;
          const bg = blink ? (a >> 4) & 7 : (a >> 4) & 0x0f;
          const fgCode = fg < 8 ? 30 + ANSI[fg]! : 90 + ANSI[fg - 8]!;
          const bgCode = bg < 8 ? 40 + ANSI[bg]! : 100 + ANSI[bg - 8]!;
          line += `\x1b[0;${fgCode};${bgCode}${blink && a & 0x80 ? ";5" : ""}${isCursor ? ";7" : ""}m`;
          prev = key;
        }
        line += chars[c];
      }
      lines.push(line + "\x1b[0m");
    }
    return lines.join("\n");
  }

  save(w: StateWriter): void {
    w.raw(this.crtc).raw(this.seq).raw(this.gc).raw(this.attr).raw(this.dac);
    w.u8(this.crtcIndex).u8(this.seqIndex).u8(this.gcIndex).u8(this.attrIndex).bool(this.attrFlipFlop);
    w.u8(this.misc).u8(this.featureCtl).u8(this.vse).u8(this.pelMask);
    w.u8(this.dacReadIndex).u8(this.dacWriteIndex).u8(this.dacSub).u8(this.dacState);
  }

  restore(r: StateReader): void {
    this.crtc.set(r.raw(N_CRTC)); this.seq.set(r.raw(N_SEQ)); this.gc.set(r.raw(N_GC)); this.attr.set(r.raw(N_ATTR));
    this.dac.set(r.raw(768));
    this.crtcIndex = r.u8(); this.seqIndex = r.u8(); this.gcIndex = r.u8(); this.attrIndex = r.u8(); this.attrFlipFlop = r.bool();
    this.misc = r.u8(); this.featureCtl = r.u8(); this.vse = r.u8(); this.pelMask = r.u8();
    this.dacReadIndex = r.u8(); this.dacWriteIndex = r.u8(); this.dacSub = r.u8(); this.dacState = r.u8();
  }
}
