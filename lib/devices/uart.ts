/**
 * National Semiconductor 16550A UART (PC COM port). Instantiate once per port, e.g.
 *   new Uart(ctx, { base: 0x3f8, irq: 4, name: "com1" })
 *   new Uart(ctx, { base: 0x2f8, irq: 3, name: "com2" })
 *
 * Registers: RBR/THR/DLL (+0), IER/DLM (+1), IIR/FCR (+2), LCR (+3), MCR (+4), LSR (+5),
 * MSR (+6), SCR (+7). 16-byte RX and TX FIFOs when FCR bit 0 is set (1-byte holding
 * registers otherwise), RX trigger levels 1/4/8/14, interrupt priorities line status > RX data
 * available > character timeout > THR empty > modem status, loopback (MCR bit 4).
 *
 * Transmission takes one character time of virtual time per byte: start bit + 5-8 data bits
 * + parity + 1/1.5/2 stop bits at 1843200 / (16 * divisor) baud. When a byte leaves the
 * transmit shift register it is handed to ctx.output(name, [byte]) (or, in loopback, to the
 * receiver). With `instantTx` (the PC board from version 2) a byte leaves as the guest writes
 * it: THR and the shift register are empty again at once (LSR THRE and TEMT stay set), as on
 * QEMU's UART; a guest that waits for each character does not wait. Reception keeps its
 * character times (the RX FIFO's timeout). The THRE interrupt is raised when the THR/TX FIFO becomes empty and cleared by
 * reading IIR (when it is the reported interrupt) or by writing THR; it is also raised when
 * ETBEI is enabled while THR is empty. The character timeout (FIFO mode) is pending when the
 * RX FIFO holds data and nothing was received or read for 4 character times.
 *
 * The IRQ line is driven (level, via ctx.setIrq) only while MCR OUT2 is set; in loopback the
 * OUT2 pin is inactive, so no IRQ is driven (as on a PC board).
 *
 * Host input API (called by the machine at logged points):
 *   receive(byte)      put a byte in the RX FIFO (overrun sets LSR OE if it is full)
 *   canReceive()/rxSpace()  whether / how many bytes the RX FIFO can take now
 *   readyForInput()    whether the far end may send now (RTS asserted, room in the FIFO)
 *   setModemInputs(cts, dsr, ri, dcd)  the modem status inputs (default CTS, DSR, DCD on)
 *
 * Not modelled: parity/framing errors and break reception (never generated), DMA mode,
 * the 16550A's delayed first THRE interrupt.
 */
import type { Device, DeviceContext, IoSize } from "../machine/device.ts";
import type { StateReader, StateWriter } from "../machine/snapshot.ts";

export interface UartOptions {
  base: number;
  irq: number;
  name: string;
  /** Send each byte as it is written instead of in its character time (default false). */
  instantTx?: boolean;
}

const XTAL = 1843200;
const FIFO_SIZE = 16;

const IER_RDI = 0x01, IER_THRI = 0x02, IER_RLSI = 0x04, IER_MSI = 0x08;
const LSR_DR = 0x01, LSR_OE = 0x02, LSR_THRE = 0x20, LSR_TEMT = 0x40;
const MCR_RTS = 0x02, MCR_OUT2 = 0x08, MCR_LOOP = 0x10;
const IIR_NONE = 0x01, IIR_MSI = 0x00, IIR_THRI = 0x02, IIR_RDI = 0x04, IIR_RLSI = 0x06, IIR_TIMEOUT = 0x0c;
const TRIGGER = [1, 4, 8, 14];

export class Uart implements Device {
  readonly name: string;
  readonly ports: ReadonlyArray<readonly [number, number]>;
  readonly base: number;
  readonly irq: number;
  readonly instantTx: boolean;

  ier = 0;
  lcr = 0;
  mcr = 0;
  scr = 0;
  dll = 1;
  dlm = 0;
  fcr = 0;
  /** LSR error bits (OE, PE, FE, BI): sticky until LSR is read. */
  private lsrErr = 0;
  /** MSR delta bits 0-3. */
  private msrDelta = 0;
  /** External modem inputs as MSR bits 4-7 (CTS, DSR, RI, DCD). */
  private modemIn = 0xb0;
  /** Last MSR bits 4-7 seen, for deltas. */
  private msrLines = 0xb0;
  private rx: number[] = [];
  private tx: number[] = [];
  private tsrBusy = false;
  private tsrByte = 0;
  private tsrDoneAt = Infinity;
  /** THRE interrupt pending. */
  private thri = true;
  /** Last RX FIFO activity (receive or RBR read), for the character timeout. */
  private lastRx = 0;
  /** IRQ state was last evaluated at this time. */
  private evalNs = 0;
  private irqLine = false;

  constructor(private readonly ctx: DeviceContext, opts: UartOptions) {
    this.base = opts.base;
    this.irq = opts.irq;
    this.name = opts.name;
    this.instantTx = opts.instantTx ?? false;
    this.ports = [[opts.base, opts.base + 7]];
    this.powerOn();
  }

  private powerOn(): void {
    this.ier = 0; this.lcr = 0x03; this.mcr = 0; this.scr = 0; this.dll = 1; this.dlm = 0; this.fcr = 0;
    this.lsrErr = 0; this.msrDelta = 0; this.msrLines = this.modemIn;
    this.rx = []; this.tx = [];
    this.tsrBusy = false; this.tsrByte = 0; this.tsrDoneAt = Infinity;
    this.thri = false;
    this.lastRx = this.ctx.now();
    this.evalNs = this.ctx.now();
    this.irqLine = false;
  }

  /** Power-on: 8N1, divisor 1 (115200 baud), FIFOs off, interrupts off, IRQ low. */
  reset(): void {
    const was = this.irqLine;
    this.powerOn();
    if (was) this.ctx.setIrq(this.irq, false);
    this.ctx.deadlinesChanged();
  }

  private get fifoOn(): boolean { return (this.fcr & 1) !== 0; }
  private get cap(): number { return this.fifoOn ? FIFO_SIZE : 1; }
  private get loop(): boolean { return (this.mcr & MCR_LOOP) !== 0; }
  get divisor(): number { return (this.dlm << 8) | this.dll || 65536; }

  /** One character time in virtual ns for the current LCR and divisor. */
  charNs(): number {
    const wl = 5 + (this.lcr & 3);
    let halfBits = 2 * (1 + wl + (this.lcr & 0x08 ? 1 : 0));
    halfBits += this.lcr & 0x04 ? (wl === 5 ? 3 : 4) : 2;
    return Math.floor((halfBits * this.divisor * 16 * 1e9) / (2 * XTAL));
  }

  // ---- host input ----

  /** Bytes written by the guest but not yet transmitted (for the host to flush at exit). */
  pendingTx(): number[] { return this.tsrBusy ? [this.tsrByte, ...this.tx] : [...this.tx]; }

  /** Bytes the receiver can accept now (0 in loopback, where the RX input is disconnected). */
  rxSpace(): number { return this.loop ? 0 : this.cap - this.rx.length; }
  canReceive(): boolean { return this.rxSpace() > 0; }
  /**
   * Whether the far end may send a byte now, as a terminal with hardware flow control would:
   * the guest asserts RTS (MCR bit 1) and the receiver has room. RTS is off at power-on; a
   * guest raises it when it is ready to read (Linux when a program opens the port), so bytes
   * sent before then wait instead of being lost in a FIFO the driver clears when it starts.
   */
  readyForInput(): boolean { return (this.mcr & MCR_RTS) !== 0 && this.rxSpace() > 0; }

  /** A byte arrives on the serial input. Returns false if it was lost (overrun or loopback). */
  receive(byte: number): boolean {
    if (this.loop) return false;
    const ok = this.rxPush(byte & 0xff, this.ctx.now());
    this.update();
    return ok;
  }

  /** Modem status inputs (ignored while in loopback, where MCR drives them). */
  setModemInputs(cts: boolean, dsr: boolean, ri: boolean, dcd: boolean): void {
    this.modemIn = (cts ? 0x10 : 0) | (dsr ? 0x20 : 0) | (ri ? 0x40 : 0) | (dcd ? 0x80 : 0);
    this.updateModemLines();
    this.update();
  }

  // ---- internals ----

  private rxPush(byte: number, t: number): boolean {
    this.lastRx = t;
    if (this.rx.length >= this.cap) {
      this.lsrErr |= LSR_OE;
      return false;
    }
    this.rx.push(byte);
    return true;
  }

  private msrInputs(): number {
    if (!this.loop) return this.modemIn;
    const m = this.mcr;
    return (m & 0x02 ? 0x10 : 0) | (m & 0x01 ? 0x20 : 0) | (m & 0x04 ? 0x40 : 0) | (m & 0x08 ? 0x80 : 0);
  }

  private updateModemLines(): void {
    const now = this.msrInputs();
    const ch = now ^ this.msrLines;
    if (ch & 0x10) this.msrDelta |= 0x01;
    if (ch & 0x20) this.msrDelta |= 0x02;
    if (ch & 0x40 && !(now & 0x40)) this.msrDelta |= 0x04; // trailing edge of RI
    if (ch & 0x80) this.msrDelta |= 0x08;
    this.msrLines = now;
  }

  private timeoutAt(): number {
    if (!this.fifoOn || this.rx.length === 0) return Infinity;
    return this.lastRx + 4 * this.charNs();
  }

  /** The interrupt IIR would report now (IIR low nibble). */
  private pendingIir(): number {
    const ier = this.ier;
    if (ier & IER_RLSI && this.lsrErr) return IIR_RLSI;
    if (ier & IER_RDI) {
      if (this.rx.length > 0 && (!this.fifoOn || this.rx.length >= TRIGGER[this.fcr >> 6]!)) return IIR_RDI;
      if (this.ctx.now() >= this.timeoutAt()) return IIR_TIMEOUT;
    }
    if (ier & IER_THRI && this.thri) return IIR_THRI;
    if (ier & IER_MSI && this.msrDelta) return IIR_MSI;
    return IIR_NONE;
  }

  private update(): void {
    this.evalNs = this.ctx.now();
    const level = this.pendingIir() !== IIR_NONE && (this.mcr & MCR_OUT2) !== 0 && !this.loop;
    if (level !== this.irqLine) {
      this.irqLine = level;
      this.ctx.setIrq(this.irq, level);
    }
  }

  /** Move the next byte into the shift register if it is idle. */
  private pumpTx(t: number): void {
    if (this.tsrBusy || this.tx.length === 0) return;
    this.tsrByte = this.tx.shift()!;
    this.tsrBusy = true;
    this.tsrDoneAt = t + this.charNs();
    if (this.tx.length === 0) this.thri = true;
  }

  /** Complete every transmission due by now. */
  private runTx(): void {
    const now = this.ctx.now();
    while (this.tsrBusy && this.tsrDoneAt <= now) {
      const t = this.tsrDoneAt;
      this.tsrBusy = false;
      this.tsrDoneAt = Infinity;
      if (this.loop) this.rxPush(this.tsrByte, t);
      else this.ctx.output(this.name, Uint8Array.of(this.tsrByte));
      this.pumpTx(t);
    }
  }

  private lsr(): number {
    let v = this.lsrErr;
    if (this.rx.length) v |= LSR_DR;
    if (this.tx.length === 0) {
      v |= LSR_THRE;
      if (!this.tsrBusy) v |= LSR_TEMT;
    }
    return v;
  }

  ioRead(port: number, _size: IoSize): number {
    // The polling read: a stable LSR read (see ioReadStable) changes nothing but evalNs (the
    // interrupt level cannot change here: every time-driven change is a deadline, which the
    // machine has run before the CPU gets this far).
    if (port === this.base + 5 && this.ioReadStable(port, _size)) {
      this.evalNs = this.ctx.now();
      return this.lsr();
    }
    this.runTx();
    const now = this.ctx.now();
    let v: number;
    switch (port - this.base) {
      case 0:
        if (this.lcr & 0x80) { v = this.dll; break; }
        v = this.rx.length ? this.rx.shift()! : 0;
        this.lastRx = now;
        this.ctx.deadlinesChanged();
        break;
      case 1: v = this.lcr & 0x80 ? this.dlm : this.ier; break;
      case 2: {
        const id = this.pendingIir();
        if (id === IIR_THRI) this.thri = false;
        v = id | (this.fifoOn ? 0xc0 : 0);
        break;
      }
      case 3: v = this.lcr; break;
      case 4: v = this.mcr; break;
      case 5: v = this.lsr(); this.lsrErr = 0; break;
      case 6: v = this.msrLines | this.msrDelta; this.msrDelta = 0; break;
      default: v = this.scr;
    }
    this.update();
    return v;
  }

  /** IER, LCR, MCR, SCR always; LSR and MSR while reading them clears nothing (no sticky bits). */
  ioReadStable(port: number, _size: IoSize): boolean {
    if (this.tsrBusy && this.tsrDoneAt <= this.ctx.now()) return false; // a transmission is due
    switch (port - this.base) {
      case 1: case 3: case 4: case 7: return true;
      case 5: return this.lsrErr === 0;
      case 6: return this.msrDelta === 0;
      default: return false;
    }
  }

  ioWrite(port: number, _size: IoSize, value: number): void {
    this.runTx();
    const now = this.ctx.now();
    value &= 0xff;
    switch (port - this.base) {
      case 0:
        if (this.lcr & 0x80) { this.dll = value; break; }
        if (this.instantTx) {
          // THR empties at once: the THRE interrupt is pending again (a write clears it and the
          // byte leaving sets it), and nothing is left for a deadline.
          if (this.loop) this.rxPush(value, now);
          else this.ctx.output(this.name, Uint8Array.of(value));
          this.thri = true;
          break;
        }
        this.thri = false;
        if (this.tx.length < this.cap) this.tx.push(value);
        else if (!this.fifoOn) this.tx[0] = value; // overwrites the holding register
        this.pumpTx(now);
        this.ctx.deadlinesChanged();
        break;
      case 1:
        if (this.lcr & 0x80) { this.dlm = value; break; }
        if (value & IER_THRI && !(this.ier & IER_THRI) && this.tx.length === 0) this.thri = true;
        this.ier = value & 0x0f;
        this.ctx.deadlinesChanged();
        break;
      case 2: {
        const enable = value & 1;
        if (enable !== (this.fcr & 1)) {
          this.rx = [];
          this.tx = [];
        }
        if (value & 0x02) { this.rx = []; this.lastRx = now; }
        if (value & 0x04) { this.tx = []; this.thri = true; }
        this.fcr = value & 0xc9;
        this.ctx.deadlinesChanged();
        break;
      }
      case 3: this.lcr = value; this.ctx.deadlinesChanged(); break;
      case 4:
        this.mcr = value & 0x1f;
        this.updateModemLines();
        break;
      case 5: break; // LSR: factory test only
      case 6: break;
      default: this.scr = value;
    }
    this.update();
  }

  nextDeadline(): number {
    let d = this.tsrDoneAt;
    if (this.ier & IER_RDI) {
      const to = this.timeoutAt();
      if (to > this.evalNs && to < d) d = to;
    }
    return d;
  }

  onDeadline(): void {
    this.runTx();
    this.update();
  }

  save(w: StateWriter): void {
    w.u8(this.ier).u8(this.lcr).u8(this.mcr).u8(this.scr).u8(this.dll).u8(this.dlm).u8(this.fcr);
    w.u8(this.lsrErr).u8(this.msrDelta).u8(this.modemIn).u8(this.msrLines);
    w.u8s(this.rx).u8s(this.tx).bool(this.tsrBusy).u8(this.tsrByte).f64(this.tsrDoneAt);
    w.bool(this.thri).f64(this.lastRx).f64(this.evalNs).bool(this.irqLine);
  }

  restore(r: StateReader): void {
    this.ier = r.u8(); this.lcr = r.u8(); this.mcr = r.u8(); this.scr = r.u8(); this.dll = r.u8(); this.dlm = r.u8(); this.fcr = r.u8();
    this.lsrErr = r.u8(); this.msrDelta = r.u8(); this.modemIn = r.u8(); this.msrLines = r.u8();
    this.rx = r.u8s(); this.tx = r.u8s(); this.tsrBusy = r.bool(); this.tsrByte = r.u8(); this.tsrDoneAt = r.f64();
    this.thri = r.bool(); this.lastRx = r.f64(); this.evalNs = r.f64(); this.irqLine = r.bool();
  }
}
