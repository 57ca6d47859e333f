/**
 * Intel 8042 keyboard controller (ports 0x60 data, 0x64 status/command) with a PS/2 MF2
 * keyboard on the first port (IRQ1) and a PS/2 mouse on the auxiliary port (IRQ12).
 *
 * Controller: status register (OBF, SYS, A2 command/data, keyboard-not-inhibited, AUX OBF),
 * the 32-byte controller RAM whose byte 0 is the command byte (bit 0 keyboard IRQ, bit 1 aux
 * IRQ, bit 2 SYS, bit 4 keyboard disabled, bit 5 aux disabled, bit 6 set-2 -> set-1
 * translation), and the commands 0x20-0x3F / 0x60-0x7F (read/write RAM), 0xA4, 0xA7/0xA8/0xA9
 * (aux disable/enable/test), 0xAA (self test -> 0x55), 0xAB (keyboard test -> 0x00),
 * 0xAD/0xAE (keyboard disable/enable), 0xC0 (input port), 0xD0/0xD1 (read/write output port:
 * bit 1 is A20 -> ctx.setA20, bit 0 low -> ctx.requestReset()), 0xD2/0xD3 (write keyboard /
 * aux output buffer), 0xD4 (next byte to the mouse), 0xDD/0xDF (A20 off/on), 0xE0 (test
 * inputs), 0xF0-0xFF (pulse output port bits 0-3 low; an even command such as 0xFE pulses
 * the reset line). Writing data to port 0x60 with no command pending sends it to the
 * keyboard and clears the keyboard-disable bit.
 *
 * Bytes are delivered one at a time through the single output buffer: controller replies
 * first, then the keyboard queue (unless disabled), then the mouse queue (unless disabled).
 * Reading port 0x60 empties the buffer and the next byte is loaded at once, so the IRQ line
 * falls and rises again (a new edge). With translation on, keyboard bytes are translated by
 * the standard 8042 table and a set-2 0xF0 break prefix is swallowed and sets bit 7 of the
 * next translated code.
 *
 * Host input API (called by the machine at logged points):
 *   keyScancode(bytes)        set-2 scancode bytes of one key event (make or F0 break),
 *                             e.g. [0x1c] for 'A' down, [0xf0, 0x1c] for 'A' up
 *   canAcceptKey()            whether the keyboard buffer has room
 *   mouseMove(dx, dy, buttons) movement (PS/2 convention: +dy is up) and buttons
 *                             (bit 0 left, bit 1 right, bit 2 middle)
 *
 * Not modelled: typematic repeat (the host sends repeated makes), scancode set 3 (the
 * keyboard accepts it but keeps sending set 2), transfer delays, IntelliMouse extensions.
 */
import type { Device, DeviceContext, IoSize } from "../machine/device.ts";
import type { StateReader, StateWriter } from "../machine/snapshot.ts";

/** The 8042 set-2 -> set-1 translation table (data from the PC/AT keyboard controller). */
const XLAT_LOW = [
  0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
  0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
  0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
  0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
  0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
  0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
  0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
  0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
];
export const TRANSLATE: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) t[i] = i < 0x80 ? XLAT_LOW[i]! : i;
  t[0x83] = 0x41;
  t[0x84] = 0x37;
  return t;
})();

/** Convert a set-2 byte sequence to set 1 (used when the keyboard itself is in set 1). */
export function set2ToSet1(bytes: readonly number[]): number[] {
  const out: number[] = [];
  let brk = false;
  for (const b of bytes) {
    if (b === 0xf0) { brk = true; continue; }
    out.push(TRANSLATE[b & 0xff]! | (brk ? 0x80 : 0));
    brk = false;
  }
  return out;
}

const ST_OBF = 0x01, ST_SYS = 0x04, ST_CMD = 0x08, ST_UNLOCKED = 0x10, ST_AUX = 0x20;
const CB_KBD_INT = 0x01, CB_AUX_INT = 0x02, CB_SYS = 0x04, CB_KBD_OFF = 0x10, CB_AUX_OFF = 0x20, CB_XLATE = 0x40;
const QUEUE_MAX = 16;
const ACK = 0xfa, RESEND = 0xfe;

export class I8042 implements Device {
  readonly name = "i8042";
  readonly ports = [[0x60, 0x60], [0x64, 0x64]] as const;

  // controller
  readonly ram = new Uint8Array(32);
  private status = 0;
  private outByte = 0;
  private outport = 0xcf;
  /** Controller command awaiting its data byte (0 = none). */
  private pendingCmd = 0;
  /** Controller replies: bit 8 marks aux data. */
  private ctrlQ: number[] = [];
  private xlatBreak = false;
  private irq1 = false;
  private irq12 = false;

  // keyboard
  private kbdQ: number[] = [];
  private kbdScanning = true;
  private kbdSet = 2;
  private kbdLeds = 0;
  private kbdTypematic = 0x2b;
  private kbdArgCmd = 0;
  private kbdLast = 0;

  // mouse
  private auxQ: number[] = [];
  private mReporting = false;
  private mRemote = false;
  private mWrap = false;
  private mScaling2 = false;
  private mRate = 100;
  private mRes = 2;
  private mButtons = 0;
  private mArgCmd = 0;
  private mLast = 0;
  private mDx = 0;
  private mDy = 0;

  constructor(private readonly ctx: DeviceContext) {
    this.powerOn();
  }

  private powerOn(): void {
    this.ram.fill(0);
    this.ram[0] = CB_XLATE | CB_SYS | CB_AUX_INT | CB_KBD_INT;
    this.status = ST_SYS | ST_UNLOCKED;
    this.outByte = 0; this.outport = 0xcf; this.pendingCmd = 0; this.ctrlQ = []; this.xlatBreak = false;
    this.irq1 = false; this.irq12 = false;
    this.kbdQ = []; this.kbdScanning = true; this.kbdSet = 2; this.kbdLeds = 0; this.kbdTypematic = 0x2b;
    this.kbdArgCmd = 0; this.kbdLast = 0;
    this.auxQ = []; this.mouseDefaults(); this.mRemote = false; this.mWrap = false; this.mButtons = 0;
    this.mArgCmd = 0; this.mLast = 0;
  }

  /** Power-on: translation on, IRQs enabled, keyboard scanning, mouse reporting off. */
  reset(): void {
    const a = this.irq1, b = this.irq12;
    this.powerOn();
    if (a) this.ctx.setIrq(1, false);
    if (b) this.ctx.setIrq(12, false);
  }

  private get cmdByte(): number { return this.ram[0]!; }

  // ---- host input ----

  canAcceptKey(): boolean { return this.kbdQ.length < QUEUE_MAX; }

  /** One key event as set-2 bytes. Dropped (returns false) if scanning is off or the buffer is full. */
  keyScancode(set2Bytes: readonly number[]): boolean {
    if (!this.kbdScanning) return false;
    const bytes = this.kbdSet === 1 ? set2ToSet1(set2Bytes) : set2Bytes.map((b) => b & 0xff);
    if (this.kbdQ.length + bytes.length > QUEUE_MAX) return false;
    this.kbdQ.push(...bytes);
    this.refill();
    return true;
  }

  /** Mouse movement and button state; queues a 3-byte packet when streaming. */
  mouseMove(dx: number, dy: number, buttons: number): boolean {
    this.mButtons = buttons & 7;
    if (this.mRemote || this.mWrap || !this.mReporting) {
      this.mDx += dx; this.mDy += dy;
      return false;
    }
    if (this.auxQ.length + 3 > QUEUE_MAX) return false;
    this.auxQ.push(...this.packet(dx, dy));
    this.refill();
    return true;
  }

  private scale(v: number): number {
    if (!this.mScaling2) return v;
    const a = Math.abs(v);
    const s = a === 0 ? 0 : a === 1 ? 1 : a === 2 ? 1 : a === 3 ? 3 : a === 4 ? 6 : a === 5 ? 9 : 2 * a;
    return v < 0 ? -s : s;
  }

  private packet(dx: number, dy: number): number[] {
    dx = this.scale(Math.trunc(dx));
    dy = this.scale(Math.trunc(dy));
    let b0 = 0x08 | (this.mButtons & 1) | (this.mButtons & 2) | (this.mButtons & 4);
    if (dx < -256 || dx > 255) { b0 |= 0x40; dx = dx < 0 ? -256 : 255; }
    if (dy < -256 || dy > 255) { b0 |= 0x80; dy = dy < 0 ? -256 : 255; }
    if (dx < 0) b0 |= 0x10;
    if (dy < 0) b0 |= 0x20;
    return [b0, dx & 0xff, dy & 0xff];
  }

  // ---- output buffer ----

  private refill(): void {
    while (!(this.status & ST_OBF)) {
      let v: number;
      let aux = false;
      if (this.ctrlQ.length) {
        v = this.ctrlQ.shift()!;
        aux = (v & 0x100) !== 0;
        v &= 0xff;
      } else if (this.kbdQ.length && !(this.cmdByte & CB_KBD_OFF)) {
        v = this.kbdQ.shift()!;
        if (this.cmdByte & CB_XLATE) {
          if (v === 0xf0) { this.xlatBreak = true; continue; }
          v = TRANSLATE[v]! | (this.xlatBreak ? 0x80 : 0);
          this.xlatBreak = false;
        }
      } else if (this.auxQ.length && !(this.cmdByte & CB_AUX_OFF)) {
        v = this.auxQ.shift()!;
        aux = true;
      } else break;
      this.outByte = v;
      this.status = (this.status & ~ST_AUX) | ST_OBF | (aux ? ST_AUX : 0);
    }
    this.updateIrq();
  }

  private updateIrq(): void {
    const full = (this.status & ST_OBF) !== 0;
    const aux = (this.status & ST_AUX) !== 0;
    const i1 = full && !aux && (this.cmdByte & CB_KBD_INT) !== 0;
    const i12 = full && aux && (this.cmdByte & CB_AUX_INT) !== 0;
    if (i1 !== this.irq1) { this.irq1 = i1; this.ctx.setIrq(1, i1); }
    if (i12 !== this.irq12) { this.irq12 = i12; this.ctx.setIrq(12, i12); }
  }

  private reply(v: number, aux = false): void {
    this.ctrlQ.push((v & 0xff) | (aux ? 0x100 : 0));
  }

  // ---- ports ----

  ioRead(port: number, _size: IoSize): number {
    if (port === 0x64) return this.status;
    const v = this.outByte;
    this.status &= ~(ST_OBF | ST_AUX);
    this.updateIrq(); // the line falls, so the next byte makes a new edge
    this.refill();
    return v;
  }

  /** The status register: reading it changes nothing. */
  ioReadStable(port: number, _size: IoSize): boolean { return port === 0x64; }

  ioWrite(port: number, _size: IoSize, value: number): void {
    value &= 0xff;
    if (port === 0x64) {
      this.status |= ST_CMD;
      this.command(value);
    } else {
      this.status &= ~ST_CMD;
      this.data(value);
    }
    this.refill();
  }

  private writeOutport(v: number): void {
    this.outport = v;
    this.ctx.setA20((v & 0x02) !== 0);
    if (!(v & 0x01)) this.ctx.requestReset();
  }

  private command(c: number): void {
    this.pendingCmd = 0;
    if (c >= 0x20 && c <= 0x3f) { this.reply(this.ram[c & 0x1f]!); return; }
    if (c >= 0x60 && c <= 0x7f) { this.pendingCmd = c; return; }
    if (c >= 0xf0) {
      if (!(c & 0x01)) this.ctx.requestReset();
      return;
    }
    switch (c) {
      case 0xa4: this.reply(0xf1); break; // no password installed
      case 0xa7: this.ram[0] |= CB_AUX_OFF; break;
      case 0xa8: this.ram[0] &= ~CB_AUX_OFF; break;
      case 0xa9: this.reply(0x00); break;
      case 0xaa:
        this.status |= ST_SYS;
        this.reply(0x55);
        break;
      case 0xab: this.reply(0x00); break;
      case 0xad: this.ram[0] |= CB_KBD_OFF; break;
      case 0xae: this.ram[0] &= ~CB_KBD_OFF; break;
      case 0xc0: this.reply(0x80); break;
      case 0xd0: {
        const obf = this.status & ST_OBF ? (this.status & ST_AUX ? 0x20 : 0x10) : 0;
        this.reply((this.outport & 0xcf) | obf);
        break;
      }
      case 0xd1: case 0xd2: case 0xd3: case 0xd4:
        this.pendingCmd = c;
        break;
      case 0xdd: this.writeOutport(this.outport & ~0x02); break;
      case 0xdf: this.writeOutport(this.outport | 0x02); break;
      case 0xe0: this.reply(0x00); break;
      default: break;
    }
  }

  private data(v: number): void {
    const c = this.pendingCmd;
    this.pendingCmd = 0;
    if (c >= 0x60 && c <= 0x7f) {
      this.ram[c & 0x1f] = v;
      if (c === 0x60) this.status = (this.status & ~ST_SYS) | (v & CB_SYS ? ST_SYS : 0);
      return;
    }
    switch (c) {
      case 0xd1: this.writeOutport(v); return;
      case 0xd2: this.reply(v); return;
      case 0xd3: this.reply(v, true); return;
      case 0xd4: this.mouseCommand(v); return;
      default:
        this.ram[0] &= ~CB_KBD_OFF;
        this.kbdCommand(v);
    }
  }

  // ---- keyboard ----

  private kbdSend(...bytes: number[]): void {
    for (const b of bytes) {
      if (this.kbdQ.length < QUEUE_MAX) this.kbdQ.push(b);
      if (b !== RESEND) this.kbdLast = b;
    }
  }

  private kbdDefaults(): void {
    this.kbdTypematic = 0x2b;
    this.kbdSet = 2;
  }

  private kbdCommand(v: number): void {
    const arg = this.kbdArgCmd;
    if (arg) {
      this.kbdArgCmd = 0;
      switch (arg) {
        case 0xed: this.kbdLeds = v & 7; this.kbdSend(ACK); return;
        case 0xf3: this.kbdTypematic = v & 0x7f; this.kbdSend(ACK); return;
        case 0xf0:
          if (v === 0) { this.kbdSend(ACK, this.kbdSet); return; }
          if (v >= 1 && v <= 3) { this.kbdSet = v; this.kbdSend(ACK); return; }
          this.kbdSend(RESEND);
          return;
      }
    }
    switch (v) {
      case 0xed: case 0xf3: case 0xf0:
        this.kbdArgCmd = v;
        this.kbdSend(ACK);
        break;
      case 0xee: this.kbdSend(0xee); break;
      case 0xf2: this.kbdSend(ACK, 0xab, 0x83); break;
      case 0xf4: this.kbdScanning = true; this.kbdSend(ACK); break;
      case 0xf5: this.kbdScanning = false; this.kbdDefaults(); this.kbdSend(ACK); break;
      case 0xf6: this.kbdDefaults(); this.kbdSend(ACK); break;
      case 0xf7: case 0xf8: case 0xf9: case 0xfa: case 0xfb: case 0xfc: case 0xfd:
        this.kbdSend(ACK);
        break;
      case 0xfe: this.kbdQ.push(this.kbdLast); break;
      case 0xff:
        this.kbdQ = [];
        this.kbdDefaults();
        this.kbdLeds = 0;
        this.kbdScanning = true;
        this.kbdSend(ACK, 0xaa);
        break;
      default: this.kbdSend(RESEND);
    }
  }

  // ---- mouse ----

  private auxSend(...bytes: number[]): void {
    for (const b of bytes) {
      if (this.auxQ.length < QUEUE_MAX) this.auxQ.push(b);
      if (b !== RESEND) this.mLast = b;
    }
  }

  private mouseDefaults(): void {
    this.mRate = 100; this.mRes = 2; this.mScaling2 = false; this.mReporting = false;
    this.mDx = 0; this.mDy = 0;
  }

  private mouseCommand(v: number): void {
    const arg = this.mArgCmd;
    if (arg) {
      this.mArgCmd = 0;
      if (arg === 0xf3) this.mRate = v;
      else this.mRes = v & 3;
      this.auxSend(ACK);
      return;
    }
    if (this.mWrap && v !== 0xec && v !== 0xff) { this.auxSend(v); return; }
    switch (v) {
      case 0xe6: this.mScaling2 = false; this.auxSend(ACK); break;
      case 0xe7: this.mScaling2 = true; this.auxSend(ACK); break;
      case 0xe8: case 0xf3: this.mArgCmd = v; this.auxSend(ACK); break;
      case 0xe9: {
        const st = (this.mRemote ? 0x40 : 0) | (this.mReporting ? 0x20 : 0) | (this.mScaling2 ? 0x10 : 0)
          | (this.mButtons & 1 ? 0x04 : 0) | (this.mButtons & 4 ? 0x02 : 0) | (this.mButtons & 2 ? 0x01 : 0);
        this.auxSend(ACK, st, this.mRes, this.mRate);
        break;
      }
      case 0xea: this.mRemote = false; this.auxSend(ACK); break;
      case 0xeb: {
        this.auxSend(ACK, ...this.packet(this.mDx, this.mDy));
        this.mDx = 0; this.mDy = 0;
        break;
      }
      case 0xec: this.mWrap = false; this.auxSend(ACK); break;
      case 0xee: this.mWrap = true; this.auxSend(ACK); break;
      case 0xf0: this.mRemote = true; this.auxSend(ACK); break;
      case 0xf2: this.auxSend(ACK, 0x00); break;
      case 0xf4: this.mReporting = true; this.auxSend(ACK); break;
      case 0xf5: this.mReporting = false; this.auxSend(ACK); break;
      case 0xf6: this.mouseDefaults(); this.auxSend(ACK); break;
      case 0xfe: this.auxQ.push(this.mLast); break;
      case 0xff:
        this.auxQ = [];
        this.mouseDefaults();
        this.mRemote = false; this.mWrap = false;
        this.auxSend(ACK, 0xaa, 0x00);
        break;
      default: this.auxSend(RESEND);
    }
  }

  /** Keyboard LED state set by the guest (bit 0 scroll, 1 num, 2 caps lock). */
  leds(): number { return this.kbdLeds; }

  nextDeadline(): number { return Infinity; }
  onDeadline(): void {}

  save(w: StateWriter): void {
    w.raw(this.ram).u8(this.status).u8(this.outByte).u8(this.outport).u8(this.pendingCmd);
    w.u32s(this.ctrlQ).bool(this.xlatBreak).bool(this.irq1).bool(this.irq12);
    w.u8s(this.kbdQ).bool(this.kbdScanning).u8(this.kbdSet).u8(this.kbdLeds).u8(this.kbdTypematic);
    w.u8(this.kbdArgCmd).u8(this.kbdLast);
    w.u8s(this.auxQ).bool(this.mReporting).bool(this.mRemote).bool(this.mWrap).bool(this.mScaling2);
    w.u8(this.mRate).u8(this.mRes).u8(this.mButtons).u8(this.mArgCmd).u8(this.mLast).f64(this.mDx).f64(this.mDy);
  }

  restore(r: StateReader): void {
    this.ram.set(r.raw(32));
    this.status = r.u8(); this.outByte = r.u8(); this.outport = r.u8(); this.pendingCmd = r.u8();
    this.ctrlQ = r.u32s(); this.xlatBreak = r.bool(); this.irq1 = r.bool(); this.irq12 = r.bool();
    this.kbdQ = r.u8s(); this.kbdScanning = r.bool(); this.kbdSet = r.u8(); this.kbdLeds = r.u8(); this.kbdTypematic = r.u8();
    this.kbdArgCmd = r.u8(); this.kbdLast = r.u8();
    this.auxQ = r.u8s(); this.mReporting = r.bool(); this.mRemote = r.bool(); this.mWrap = r.bool(); this.mScaling2 = r.bool();
    this.mRate = r.u8(); this.mRes = r.u8(); this.mButtons = r.u8(); this.mArgCmd = r.u8(); this.mLast = r.u8();
    this.mDx = r.f64(); this.mDy = r.f64();
  }
}
