/**
 * Intel 8254 Programmable Interval Timer at ports 0x40-0x43, plus the PC/AT port 0x61
 * (NMI status and control / speaker gate).
 *
 * Nothing is ticked: each channel stores the virtual-time tick at which its counting
 * element (CE) was last loaded and derives the count and OUT from ctx.now() on demand.
 * The input clock is 1193182 Hz; tick = floor(now_ns * 1193182 / 1e9), computed in exact
 * integer arithmetic.
 *
 * Datasheet behaviour modelled:
 *  - Control word (SC, RW, M, BCD), counter-latch command, read-back command (count and/or
 *    status latch for any set of counters; the first latch wins until read).
 *  - Access modes LSB, MSB, LSB-then-MSB for both reads and writes, BCD counting.
 *  - The initial count is transferred from CR to CE on the CLK pulse after it is written
 *    (so in mode 0 OUT goes high N+1 clocks after the write); NULL COUNT is set until then.
 *  - Modes 0-5 including the GATE semantics of each mode (0/4: GATE low suspends counting;
 *    2/3: GATE low forces OUT high and the rising edge reloads; 1/5: rising edge triggers),
 *    new counts written during counting (mode 0: first byte stops counting and drives OUT low;
 *    mode 2: new count used at the end of the current period; mode 3: at the end of the
 *    current half-cycle; mode 4: loaded on the next CLK; modes 1/5: at the next trigger).
 *  - Count 0 means 65536 (binary) or 10000 (BCD). Count 1 is illegal in modes 2 and 3 and
 *    is treated as 2.
 *
 * Channel 0 OUT drives IRQ0 with its real level: ctx.setIrq(0, level) is called at every
 * OUT transition (the deadline is the next transition). If the machine services a deadline
 * late and a rising edge would otherwise be lost, a low-high pulse is emitted so the PIC
 * still sees a rising edge. Channels 0 and 1 have GATE tied high; channel 2's GATE is port
 * 0x61 bit 0 and its OUT is readable at port 0x61 bit 5.
 */
import type { Device, DeviceContext, IoSize } from "../machine/device.ts";
import type { StateReader, StateWriter } from "../machine/snapshot.ts";

export const PIT_HZ = 1193182;

/** Virtual nanoseconds -> PIT input clock ticks (floor), exact for integer ns < 2^53. */
export function nsToTick(ns: number): number {
  const s = Math.floor(ns / 1e9);
  const r = ns - s * 1e9;
  return s * PIT_HZ + Math.floor((r * PIT_HZ) / 1e9);
}

/** The first virtual nanosecond at which nsToTick() >= tick. */
export function tickToNs(tick: number): number {
  if (tick === Infinity) return Infinity;
  const q = Math.floor(tick / PIT_HZ);
  const m = tick - q * PIT_HZ;
  return q * 1e9 + Math.ceil((m * 1e9) / PIT_HZ);
}

function toBcd(v: number): number {
  return (v % 10) | (Math.floor(v / 10) % 10) << 4 | (Math.floor(v / 100) % 10) << 8 | (Math.floor(v / 1000) % 10) << 12;
}
function fromBcd(v: number): number {
  return (v & 0xf) + ((v >> 4) & 0xf) * 10 + ((v >> 8) & 0xf) * 100 + ((v >> 12) & 0xf) * 1000;
}
function mod(a: number, m: number): number {
  const r = a % m;
  return r < 0 ? r + m : r;
}

/** One 8254 counter. Times are in input-clock ticks. */
export class PitChannel {
  mode = 0;
  rw = 3;
  bcd = false;
  /** Count register as written (raw 16-bit, BCD-encoded when bcd). */
  cr = 0;
  crLow = 0;
  writeHi = false;
  readHi = false;
  latched = false;
  latchVal = 0;
  statusLatched = false;
  statusVal = 0;
  gate = true;
  hasCount = false;
  /** Counting suspended by GATE low (modes 0/4): resume from d = pausedD. */
  paused = false;
  pausedD = 0;
  /** Current segment: CE loaded with n at tick `start`, at pattern position p0. Infinity = not counting. */
  start = Infinity;
  n = 0;
  p0 = 0;
  /** Pending segment (modes 2/3: new count loaded at end of period / half-cycle). */
  pendStart = Infinity;
  pendN = 0;
  pendP0 = 0;
  /** CE value and OUT level before `start` (or while not counting). */
  ceIdle = 0;
  outIdle = false;
  /** NULL COUNT reads 1 while tick < nullUntil. */
  nullUntil = Infinity;

  constructor(readonly index: number, gate: boolean) {
    this.resetTo(gate);
  }

  resetTo(gate: boolean): void {
    this.mode = 0; this.rw = 3; this.bcd = false; this.cr = 0; this.crLow = 0;
    this.writeHi = false; this.readHi = false; this.latched = false; this.latchVal = 0;
    this.statusLatched = false; this.statusVal = 0; this.gate = gate; this.hasCount = false;
    this.paused = false; this.pausedD = 0; this.start = Infinity; this.n = 0; this.p0 = 0;
    this.pendStart = Infinity; this.pendN = 0; this.pendP0 = 0; this.ceIdle = 0; this.outIdle = false;
    this.nullUntil = Infinity;
  }

  private get modulus(): number { return this.bcd ? 10000 : 65536; }

  /** Count register as a number of clocks (0 -> 65536 / 10000). */
  private crCount(): number {
    const v = this.bcd ? fromBcd(this.cr) : this.cr;
    let n = v === 0 ? this.modulus : v;
    if ((this.mode === 2 || this.mode === 3) && n < 2) n = 2;
    return n;
  }

  /** Promote the pending segment if its time has come. */
  settle(t: number): void {
    if (t >= this.pendStart) {
      this.start = this.pendStart; this.n = this.pendN; this.p0 = this.pendP0;
      this.pendStart = Infinity;
    }
  }

  private seg(t: number): [number, number, number] {
    if (t >= this.pendStart) return [this.pendStart, this.pendN, this.pendP0];
    return [this.start, this.n, this.p0];
  }

  /** CE value (numeric, 0..modulus-1) and OUT at tick t. Pure. */
  eval(t: number): { ce: number; out: boolean } {
    const [start, n, p0] = this.seg(t);
    if (start === Infinity) return { ce: this.ceIdle, out: this.outIdle };
    // Between a count's write (or a GATE trigger) and the next CLK, when the CE takes the count,
    // a read returns the value the CE is about to hold: on a PC an I/O read takes about 1 us,
    // longer than a CLK (838 ns), so software never sees the CE before the load (Linux's quick
    // TSC calibration reads the MSB of a fresh count right after writing it). rrx retires an
    // I/O instruction in one instruction's time, so it models that. OUT is not affected.
    if (t < start) return { ce: this.atPosition(p0, n).ce, out: this.outIdle };
    return this.atPosition(t - start + p0, n);
  }

  /** CE value and OUT at position d of a counting segment of count n. Pure. */
  private atPosition(d: number, n: number): { ce: number; out: boolean } {
    const M = this.modulus;
    switch (this.mode) {
      case 0: case 1:
        return { ce: mod(n - d, M), out: d >= n };
      case 4: case 5:
        return { ce: mod(n - d, M), out: d !== n };
      case 2: {
        const p = d % n;
        return { ce: mod(n - p, M), out: p !== n - 1 };
      }
      default: { // mode 3
        const p = d % n;
        const h = Math.ceil(n / 2);
        let ce: number;
        if (n % 2 === 0) ce = p < h ? n - 2 * p : n - 2 * (p - h);
        else if (p < h) ce = p === 0 ? n : n + 1 - 2 * p;
        else ce = p === h ? n : n - 1 - 2 * (p - h);
        return { ce: mod(ce, M), out: p < h };
      }
    }
  }

  out(t: number): boolean { return this.eval(t).out; }

  /** Smallest tick > t at which OUT may change (Infinity if never). Pure. */
  nextChange(t: number): number {
    let cap = Infinity;
    let start: number, n: number, p0: number;
    if (t >= this.pendStart) [start, n, p0] = [this.pendStart, this.pendN, this.pendP0];
    else { [start, n, p0] = [this.start, this.n, this.p0]; cap = this.pendStart; }
    if (start === Infinity) return cap;
    if (t < start) return Math.min(start, cap);
    const d = t - start + p0;
    let c = Infinity;
    switch (this.mode) {
      case 0: case 1:
        if (d < n) c = t + (n - d);
        break;
      case 4: case 5:
        if (d < n) c = t + (n - d);
        else if (d === n) c = t + 1;
        break;
      case 2: {
        const p = d % n;
        c = p < n - 1 ? t + (n - 1 - p) : t + 1;
        break;
      }
      default: {
        const p = d % n;
        const h = Math.ceil(n / 2);
        c = p < h ? t + (h - p) : t + (n - p);
      }
    }
    return Math.min(c, cap);
  }

  /** First tick in (a, b] at which OUT rises, or Infinity. */
  riseIn(a: number, b: number): number {
    let t = a;
    for (let i = 0; i < 8; i++) {
      const c = this.nextChange(t);
      if (c > b) return Infinity;
      if (this.out(c) && !this.out(c - 1)) return c;
      t = c;
    }
    return Infinity;
  }

  private freeze(t: number): void {
    const v = this.eval(t);
    this.ceIdle = v.ce;
    this.outIdle = v.out;
  }

  /** Position in the pattern at tick t (for suspending). */
  private dAt(t: number): number {
    const [start, , p0] = this.seg(t);
    if (start === Infinity) return this.paused ? this.pausedD : 0;
    if (t < start) return p0;
    return t - start + p0;
  }

  controlWord(rw: number, mode: number, bcd: boolean, t: number): void {
    this.settle(t);
    this.freeze(t);
    this.rw = rw;
    this.mode = mode;
    this.bcd = bcd;
    this.writeHi = false;
    this.readHi = false;
    this.latched = false;
    this.statusLatched = false;
    this.hasCount = false;
    this.paused = false;
    this.start = Infinity;
    this.pendStart = Infinity;
    this.outIdle = mode !== 0;
    this.nullUntil = Infinity;
  }

  latchCount(t: number): void {
    if (this.latched) return;
    this.latched = true;
    this.latchVal = this.countValue(t);
  }

  latchStatus(t: number): void {
    if (this.statusLatched) return;
    this.statusLatched = true;
    this.statusVal = (this.out(t) ? 0x80 : 0) | (t < this.nullUntil ? 0x40 : 0) | (this.rw << 4) | (this.mode << 1) | (this.bcd ? 1 : 0);
  }

  /** The CE value as it would be read (BCD-encoded in BCD mode). */
  countValue(t: number): number {
    const ce = this.eval(t).ce;
    return this.bcd ? toBcd(ce) : ce & 0xffff;
  }

  read(t: number): number {
    if (this.statusLatched) {
      this.statusLatched = false;
      return this.statusVal;
    }
    const v = this.latched ? this.latchVal : this.countValue(t);
    let hi: boolean;
    if (this.rw === 1) hi = false;
    else if (this.rw === 2) hi = true;
    else { hi = this.readHi; this.readHi = !this.readHi; }
    if (this.latched && (this.rw !== 3 || hi)) this.latched = false;
    return hi ? (v >> 8) & 0xff : v & 0xff;
  }

  write(value: number, t: number): void {
    this.settle(t);
    value &= 0xff;
    if (this.rw === 1) this.loadCount(value, t);
    else if (this.rw === 2) this.loadCount(value << 8, t);
    else if (!this.writeHi) {
      this.crLow = value;
      this.writeHi = true;
      if (this.mode === 0) {
        // Writing the first byte disables counting; OUT goes low immediately.
        this.freeze(t);
        this.outIdle = false;
        this.start = Infinity;
        this.paused = false;
      }
    } else {
      this.writeHi = false;
      this.loadCount(this.crLow | (value << 8), t);
    }
  }

  private loadCount(raw: number, t: number): void {
    this.cr = raw & 0xffff;
    this.hasCount = true;
    const n = this.crCount();
    switch (this.mode) {
      case 0: case 4:
        this.freeze(t);
        if (this.mode === 0) this.outIdle = false;
        this.n = n;
        this.p0 = 0;
        this.nullUntil = t + 1;
        if (this.gate) { this.start = t + 1; this.paused = false; }
        else { this.start = Infinity; this.paused = true; this.pausedD = 0; this.ceIdle = n % this.modulus; }
        break;
      case 1: case 5:
        this.nullUntil = Infinity; // transferred at the next trigger
        break;
      default: { // 2, 3
        if (this.start !== Infinity && t < this.start) {
          this.n = n; // not loaded yet: the new count replaces it
          this.nullUntil = this.start;
        } else if (this.start !== Infinity) {
          // Counting: the new count takes effect at the end of the period (mode 2) or half-cycle (mode 3).
          const d = t - this.start + this.p0;
          const cn = this.n;
          const p = d % cn;
          if (this.mode === 2) {
            this.pendStart = t + (cn - p);
            this.pendP0 = 0;
          } else {
            const h = Math.ceil(cn / 2);
            if (p < h) { this.pendStart = t + (h - p); this.pendP0 = Math.ceil(n / 2); }
            else { this.pendStart = t + (cn - p); this.pendP0 = 0; }
          }
          this.pendN = n;
          this.nullUntil = this.pendStart;
        } else if (this.gate) {
          this.freeze(t);
          this.start = t + 1; this.n = n; this.p0 = 0;
          this.nullUntil = t + 1;
        } else {
          this.nullUntil = Infinity; // loaded when GATE rises
        }
      }
    }
  }

  setGate(level: boolean, t: number): void {
    this.settle(t);
    if (level === this.gate) return;
    this.gate = level;
    switch (this.mode) {
      case 0: case 4:
        if (!level) {
          if (this.start !== Infinity) {
            this.pausedD = this.dAt(t);
            this.freeze(t);
            this.start = Infinity;
            this.paused = true;
          }
        } else if (this.paused) {
          this.paused = false;
          this.start = t + 1;
          this.p0 = this.pausedD;
        }
        break;
      case 1: case 5:
        if (level && this.hasCount) {
          this.freeze(t);
          this.start = t + 1; this.n = this.crCount(); this.p0 = 0;
          if (this.nullUntil > t + 1) this.nullUntil = t + 1;
        }
        break;
      default: // 2, 3
        if (!level) {
          this.freeze(t);
          this.outIdle = true;
          this.start = Infinity;
          this.pendStart = Infinity;
        } else if (this.hasCount) {
          this.start = t + 1; this.n = this.crCount(); this.p0 = 0;
          if (this.nullUntil > t + 1) this.nullUntil = t + 1;
        }
    }
  }

  save(w: StateWriter): void {
    w.u8(this.mode).u8(this.rw).bool(this.bcd).u16(this.cr).u8(this.crLow).bool(this.writeHi).bool(this.readHi);
    w.bool(this.latched).u16(this.latchVal).bool(this.statusLatched).u8(this.statusVal);
    w.bool(this.gate).bool(this.hasCount).bool(this.paused).f64(this.pausedD);
    w.f64(this.start).f64(this.n).f64(this.p0).f64(this.pendStart).f64(this.pendN).f64(this.pendP0);
    w.f64(this.ceIdle).bool(this.outIdle).f64(this.nullUntil);
  }

  restore(r: StateReader): void {
    this.mode = r.u8(); this.rw = r.u8(); this.bcd = r.bool(); this.cr = r.u16(); this.crLow = r.u8();
    this.writeHi = r.bool(); this.readHi = r.bool();
    this.latched = r.bool(); this.latchVal = r.u16(); this.statusLatched = r.bool(); this.statusVal = r.u8();
    this.gate = r.bool(); this.hasCount = r.bool(); this.paused = r.bool(); this.pausedD = r.f64();
    this.start = r.f64(); this.n = r.f64(); this.p0 = r.f64(); this.pendStart = r.f64(); this.pendN = r.f64(); this.pendP0 = r.f64();
    this.ceIdle = r.f64(); this.outIdle = r.bool(); this.nullUntil = r.f64();
  }
}

/** Refresh-request toggle period for port 0x61 bit 4 (ns). */
export const REFRESH_NS = 15085;

export class Pit implements Device {
  readonly name = "pit";
  readonly ports = [[0x40, 0x43], [0x61, 0x61]] as const;
  readonly channels: PitChannel[];
  /** Port 0x61 bits 0-3 (timer 2 gate, speaker data, parity/IOCHK check disables). */
  port61 = 0;
  /** Level last driven on IRQ0 and the tick up to which channel-0 edges were delivered. */
  private irqLevel = false;
  private irqTick = 0;

  constructor(private readonly ctx: DeviceContext) {
    this.channels = [new PitChannel(0, true), new PitChannel(1, true), new PitChannel(2, false)];
    this.powerOn();
  }

  private powerOn(): void {
    this.channels[0]!.resetTo(true);
    this.channels[1]!.resetTo(true);
    this.channels[2]!.resetTo(false);
    this.port61 = 0;
    this.irqLevel = false;
    this.irqTick = nsToTick(this.ctx.now());
  }

  /** Power-on state: all counters unprogrammed (OUT low), IRQ0 low, port 0x61 = 0. */
  reset(): void {
    this.channels[0]!.resetTo(true);
    this.channels[1]!.resetTo(true);
    this.channels[2]!.resetTo(false);
    this.port61 = 0;
    this.irqTick = nsToTick(this.ctx.now());
    if (this.irqLevel) { this.irqLevel = false; this.ctx.setIrq(0, false); }
    this.ctx.deadlinesChanged();
  }

  private tick(): number { return nsToTick(this.ctx.now()); }

  /** Deliver channel-0 OUT transitions up to tick t. */
  private sync0(t: number): void {
    const ch = this.channels[0]!;
    if (t > this.irqTick) {
      const outNow = ch.out(t);
      if (ch.riseIn(this.irqTick, t) <= t) {
        if (this.irqLevel) this.ctx.setIrq(0, false);
        this.ctx.setIrq(0, true);
        this.irqLevel = true;
        if (!outNow) { this.ctx.setIrq(0, false); this.irqLevel = false; }
      } else if (outNow !== this.irqLevel) {
        this.irqLevel = outNow;
        this.ctx.setIrq(0, outNow);
      }
      this.irqTick = t;
    }
    ch.settle(t);
  }

  /** After a channel-0 reprogramming at tick t: drive its new OUT level and reschedule. */
  private after0(t: number): void {
    const out = this.channels[0]!.out(t);
    if (out !== this.irqLevel) { this.irqLevel = out; this.ctx.setIrq(0, out); }
    if (t > this.irqTick) this.irqTick = t;
    this.ctx.deadlinesChanged();
  }

  ioRead(port: number, _size: IoSize): number {
    const t = this.tick();
    if (port === 0x61) {
      const out2 = this.channels[2]!.out(t);
      const refresh = Math.floor(this.ctx.now() / REFRESH_NS) & 1;
      return (this.port61 & 0x0f) | (refresh << 4) | (out2 ? 0x20 : 0);
    }
    if (port === 0x43) return 0xff; // control word register is write-only
    const ch = this.channels[port - 0x40]!;
    if (port === 0x40) this.sync0(t);
    else ch.settle(t);
    return ch.read(t);
  }

  ioWrite(port: number, _size: IoSize, value: number): void {
    const t = this.tick();
    value &= 0xff;
    this.sync0(t);
    if (port === 0x61) {
      this.port61 = value & 0x0f;
      this.channels[2]!.setGate((value & 1) !== 0, t);
      return;
    }
    if (port === 0x43) {
      const sc = value >> 6;
      if (sc === 3) {
        // Read-back: bit5 = 0 latch count, bit4 = 0 latch status, bits 3..1 = counters 2..0.
        for (let i = 0; i < 3; i++) {
          if (!(value & (2 << i))) continue;
          const ch = this.channels[i]!;
          ch.settle(t);
          if (!(value & 0x20)) ch.latchCount(t);
          if (!(value & 0x10)) ch.latchStatus(t);
        }
        return;
      }
      const ch = this.channels[sc]!;
      ch.settle(t);
      const rw = (value >> 4) & 3;
      if (rw === 0) { ch.latchCount(t); return; }
      let mode = (value >> 1) & 7;
      if (mode > 5) mode -= 4;
      ch.controlWord(rw, mode, (value & 1) !== 0, t);
      if (sc === 0) this.after0(t);
      return;
    }
    const i = port - 0x40;
    const ch = this.channels[i]!;
    ch.settle(t);
    ch.write(value, t);
    if (i === 0) this.after0(t);
  }

  nextDeadline(): number {
    return tickToNs(this.channels[0]!.nextChange(this.irqTick));
  }

  onDeadline(): void {
    this.sync0(this.tick());
  }

  /** OUT of a channel at the current virtual time. */
  out(channel: number): boolean {
    return this.channels[channel]!.out(this.tick());
  }

  /** Speaker signal: port 0x61 bit 1 AND timer 2 OUT (the instantaneous level). */
  speakerLevel(): boolean {
    return (this.port61 & 2) !== 0 && this.out(2);
  }

  /**
   * The speaker as a tone: on when the data bit and the timer 2 gate are set and timer 2
   * runs a square wave; frequencyHz is the input clock divided by the count.
   */
  speaker(): { on: boolean; frequencyHz: number } {
    const ch = this.channels[2]!;
    const running = ch.start !== Infinity && (ch.mode === 3 || ch.mode === 2);
    const on = (this.port61 & 3) === 3 && running;
    return { on, frequencyHz: on ? PIT_HZ / ch.n : 0 };
  }

  save(w: StateWriter): void {
    for (const ch of this.channels) ch.save(w);
    w.u8(this.port61).bool(this.irqLevel).f64(this.irqTick);
  }

  restore(r: StateReader): void {
    for (const ch of this.channels) ch.restore(r);
    this.port61 = r.u8();
    this.irqLevel = r.bool();
    this.irqTick = r.f64();
  }
}
