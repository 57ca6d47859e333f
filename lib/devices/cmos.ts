/**
 * Motorola MC146818 real-time clock and CMOS RAM at ports 0x70 (index, bit 7 = NMI mask)
 * and 0x71 (data), interrupt on IRQ8.
 *
 * The clock is never ticked. Guest-visible time is
 *     bootEpochSeconds + floor(ctx.now() / 1e9) + offset
 * where `offset` absorbs every time the guest sets (SET bit / direct register writes), so
 * updates happen at whole virtual seconds. The time registers (0x00, 0x02, 0x04, 0x06-0x09
 * and the century byte 0x32) are computed from that time in the current format (register B
 * DM: BCD or binary, 24/12: 24-hour or 12-hour with PM in bit 7). Other bytes, including
 * the alarm registers, are plain RAM.
 *
 * Register A: UIP (bit 7) reads 1 during the last 244 us of each virtual second (unless
 * SET); RS3-0 select the periodic interrupt rate from the 32.768 kHz time base. Register B:
 * SET halts updates (and clears UIE), PIE/AIE/UIE enable IRQ8. Register C: IRQF/PF/AF/UF,
 * cleared by reading. Register D: VRT=1. Flags are computed lazily from virtual time, so
 * PF/UF/AF are correct when read even with their interrupts disabled; a deadline is only
 * scheduled for enabled interrupts while IRQ8 is low. IRQ8 is driven at the IRQF level: it
 * rises when an enabled flag is set and falls when register C is read.
 *
 * Not modelled: the divider-chain reset (DV bits are stored only), daylight saving (DSE),
 * the square wave output, the registers being inaccessible during the update cycle.
 */
import type { Device, DeviceContext, IoSize } from "../machine/device.ts";
import type { StateReader, StateWriter } from "../machine/snapshot.ts";

export interface CmosOptions {
  /** Unix seconds at virtual time 0 (a logged host input chosen by the machine). */
  bootEpochSeconds: number;
  /** Guest RAM size in bytes, for the memory-size fields. */
  memBytes: number;
}

const NS = 1e9;
const UIP_NS = 244_000;

/** Days since 1970-01-01 of a proleptic Gregorian date (m 1-12). */
export function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

export function civilFromDays(z: number): [number, number, number] {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

interface Fields { sec: number; min: number; hour: number; dow: number; day: number; mon: number; year: number }

function breakDown(t: number): Fields {
  const days = Math.floor(t / 86400);
  const tod = t - days * 86400;
  const [year, mon, day] = civilFromDays(days);
  return {
    sec: tod % 60, min: Math.floor(tod / 60) % 60, hour: Math.floor(tod / 3600),
    dow: (((days + 4) % 7) + 7) % 7 + 1, day, mon, year,
  };
}

function buildUp(f: Fields): number {
  return daysFromCivil(f.year, f.mon, f.day) * 86400 + f.hour * 3600 + f.min * 60 + f.sec;
}

/** 32.768 kHz time-base ticks. */
function nsTo32k(ns: number): number {
  const s = Math.floor(ns / NS);
  return s * 32768 + Math.floor(((ns - s * NS) * 32768) / NS);
}
function t32kToNs(k: number): number {
  const q = Math.floor(k / 32768);
  return q * NS + Math.ceil((k - q * 32768) * 30517.578125);
}

const REG_A = 0x0a, REG_B = 0x0b, REG_C = 0x0c, REG_D = 0x0d;
const B_SET = 0x80, B_PIE = 0x40, B_AIE = 0x20, B_UIE = 0x10, B_DM = 0x04, B_24H = 0x02;
const C_IRQF = 0x80, C_PF = 0x40, C_AF = 0x20, C_UF = 0x10;

export class Cmos implements Device {
  readonly name = "cmos";
  readonly ports = [[0x70, 0x71]] as const;
  readonly ram = new Uint8Array(128);
  index = 0;
  /** Port 0x70 bit 7: NMI disabled. The machine must not deliver NMIs while set. */
  nmiMasked = false;
  private bootEpochSeconds: number;
  private readonly memBytes: number;
  /** Seconds added to boot + virtual seconds by guest time changes. */
  private offset = 0;
  /** The time held while SET=1. */
  private frozen = 0;
  /** Days added to the computed day of week by guest writes of register 6. */
  private dowAdjust = 0;
  /** Register C flags materialised up to syncNs. */
  private flags = 0;
  private syncNs = 0;
  private irqLine = false;

  constructor(private readonly ctx: DeviceContext, opts: CmosOptions) {
    this.bootEpochSeconds = Math.floor(opts.bootEpochSeconds);
    this.memBytes = opts.memBytes;
    this.powerOn();
  }

  private powerOn(): void {
    const r = this.ram;
    r.fill(0);
    r[REG_A] = 0x26;
    r[REG_B] = B_24H;
    r[REG_D] = 0x80;
    r[0x14] = 0x06; // equipment: math coprocessor, pointing device, VGA
    r[0x15] = 640 & 0xff; r[0x16] = 640 >> 8;
    const extKiB = Math.min(65535, Math.max(0, Math.floor((this.memBytes - 0x100000) / 1024)));
    r[0x17] = r[0x30] = extKiB & 0xff;
    r[0x18] = r[0x31] = extKiB >> 8;
    const above16 = Math.min(65535, Math.max(0, Math.floor((this.memBytes - 0x1000000) / 65536)));
    r[0x34] = above16 & 0xff; r[0x35] = above16 >> 8;
    this.updateChecksum();
    this.index = 0;
    this.nmiMasked = false;
    this.offset = 0;
    this.frozen = 0;
    this.dowAdjust = 0;
    this.flags = 0;
    this.syncNs = this.ctx.now();
    this.irqLine = false;
  }

  /** Power-on state: the clock restarts from bootEpochSeconds + virtual seconds. */
  reset(): void {
    const wasHigh = this.irqLine;
    this.powerOn();
    if (wasHigh) this.ctx.setIrq(8, false);
  }

  private updateChecksum(): void {
    let sum = 0;
    for (let i = 0x10; i <= 0x2d; i++) sum += this.ram[i]!;
    this.ram[0x2e] = (sum >> 8) & 0xff;
    this.ram[0x2f] = sum & 0xff;
  }

  private get regB(): number { return this.ram[REG_B]!; }
  private get halted(): boolean { return (this.regB & B_SET) !== 0; }

  /** Current RTC time in Unix seconds. */
  time(): number {
    if (this.halted) return this.frozen;
    return this.bootEpochSeconds + Math.floor(this.ctx.now() / NS) + this.offset;
  }

  private setTime(t: number): void {
    if (this.halted) this.frozen = t;
    else this.offset = t - this.bootEpochSeconds - Math.floor(this.ctx.now() / NS);
  }

  private enc(v: number): number {
    return this.regB & B_DM ? v & 0xff : (Math.floor(v / 10) % 10) * 16 + (v % 10);
  }
  private dec(v: number): number {
    return this.regB & B_DM ? v : (v >> 4) * 10 + (v & 0x0f);
  }

  private encHour(h: number): number {
    if (this.regB & B_24H) return this.enc(h);
    const pm = h >= 12;
    const h12 = h % 12 === 0 ? 12 : h % 12;
    return this.enc(h12) | (pm ? 0x80 : 0);
  }
  private decHour(v: number): number {
    if (this.regB & B_24H) return this.dec(v);
    const h12 = this.dec(v & 0x7f) % 12;
    return h12 + (v & 0x80 ? 12 : 0);
  }

  private readTimeReg(idx: number, t: number): number {
    const f = breakDown(t);
    switch (idx) {
      case 0x00: return this.enc(f.sec);
      case 0x02: return this.enc(f.min);
      case 0x04: return this.encHour(f.hour);
      case 0x06: return this.enc((((f.dow - 1 + this.dowAdjust) % 7) + 7) % 7 + 1);
      case 0x07: return this.enc(f.day);
      case 0x08: return this.enc(f.mon);
      case 0x09: return this.enc(((f.year % 100) + 100) % 100);
      default: return this.enc(Math.floor(f.year / 100)); // 0x32 century
    }
  }

  private writeTimeReg(idx: number, v: number): void {
    const t = this.time();
    const f = breakDown(t);
    const d = this.dec(v);
    switch (idx) {
      case 0x00: f.sec = d; break;
      case 0x02: f.min = d; break;
      case 0x04: f.hour = this.decHour(v); break;
      case 0x06: {
        const want = (((d - 1) % 7) + 7) % 7;
        this.dowAdjust = (((want - (f.dow - 1)) % 7) + 7) % 7;
        return;
      }
      case 0x07: f.day = d; break;
      case 0x08: f.mon = d; break;
      case 0x09: f.year = Math.floor(f.year / 100) * 100 + d; break;
      default: f.year = d * 100 + (f.year % 100); break;
    }
    this.setTime(buildUp(f));
  }

  private isTimeReg(idx: number): boolean {
    return idx === 0 || idx === 2 || idx === 4 || (idx >= 6 && idx <= 9) || idx === 0x32;
  }

  private periodTicks(): number {
    let rs = this.ram[REG_A]! & 0x0f;
    if (rs === 0) return 0;
    if (rs <= 2) rs += 7;
    return 1 << (rs - 1);
  }

  private alarmMatches(t: number): boolean {
    const sa = this.ram[0x01]!, ma = this.ram[0x03]!, ha = this.ram[0x05]!;
    return ((sa & 0xc0) === 0xc0 || sa === this.readTimeReg(0x00, t))
      && ((ma & 0xc0) === 0xc0 || ma === this.readTimeReg(0x02, t))
      && ((ha & 0xc0) === 0xc0 || ha === this.readTimeReg(0x04, t));
  }

  /** Set PF/UF/AF for everything that happened in (syncNs, now]. */
  private materialize(): void {
    const now = this.ctx.now();
    if (now <= this.syncNs) return;
    const p = this.periodTicks();
    if (p && Math.floor(nsTo32k(now) / p) > Math.floor(nsTo32k(this.syncNs) / p)) this.flags |= C_PF;
    if (!this.halted) {
      const s0 = Math.floor(this.syncNs / NS), s1 = Math.floor(now / NS);
      if (s1 > s0) {
        this.flags |= C_UF;
        if (!(this.flags & C_AF)) {
          const base = this.bootEpochSeconds + this.offset;
          for (let s = Math.max(s0 + 1, s1 - 86400); s <= s1; s++) {
            if (this.alarmMatches(base + s)) { this.flags |= C_AF; break; }
          }
        }
      }
    }
    this.syncNs = now;
  }

  private irqf(): boolean {
    return (this.flags & this.regB & (C_PF | C_AF | C_UF)) !== 0;
  }

  private updateIrq(): void {
    const l = this.irqf();
    if (l !== this.irqLine) {
      this.irqLine = l;
      this.ctx.setIrq(8, l);
    }
  }

  ioRead(port: number, _size: IoSize): number {
    if (port === 0x70) return 0xff;
    const idx = this.index;
    if (this.isTimeReg(idx)) return this.readTimeReg(idx, this.time());
    switch (idx) {
      case REG_A: {
        const inWindow = this.ctx.now() % NS >= NS - UIP_NS;
        return (this.ram[REG_A]! & 0x7f) | (!this.halted && inWindow ? 0x80 : 0);
      }
      case REG_C: {
        this.materialize();
        const v = this.flags | (this.irqf() ? C_IRQF : 0);
        this.flags = 0;
        this.updateIrq();
        this.ctx.deadlinesChanged();
        return v;
      }
      case REG_D: return 0x80;
      default: return this.ram[idx]!;
    }
  }

  ioWrite(port: number, _size: IoSize, value: number): void {
    value &= 0xff;
    if (port === 0x70) {
      this.index = value & 0x7f;
      this.nmiMasked = (value & 0x80) !== 0;
      return;
    }
    const idx = this.index;
    this.materialize(); // flags up to now are decided by the old settings
    if (this.isTimeReg(idx)) { this.writeTimeReg(idx, value); return; }
    switch (idx) {
      case REG_A:
        this.ram[REG_A] = value & 0x7f;
        break;
      case REG_B: {
        const wasSet = this.halted;
        const t = this.time();
        if (value & B_SET) value &= ~B_UIE;
        this.ram[REG_B] = value;
        if (!wasSet && this.halted) this.frozen = t;
        else if (wasSet && !this.halted) this.setTime(t);
        this.updateIrq();
        break;
      }
      case REG_C: case REG_D: return; // read-only
      default: this.ram[idx] = value;
    }
    this.ctx.deadlinesChanged();
  }

  nextDeadline(): number {
    if (this.irqLine) return Infinity;
    const b = this.regB;
    let d = Infinity;
    const p = this.periodTicks();
    if (b & B_PIE && p) {
      const k = (Math.floor(nsTo32k(this.syncNs) / p) + 1) * p;
      d = t32kToNs(k);
    }
    if (b & (B_UIE | B_AIE) && !this.halted) d = Math.min(d, (Math.floor(this.syncNs / NS) + 1) * NS);
    return d;
  }

  onDeadline(): void {
    this.materialize();
    this.updateIrq();
  }

  save(w: StateWriter): void {
    w.raw(this.ram).u8(this.index).bool(this.nmiMasked).f64(this.bootEpochSeconds);
    w.f64(this.offset).f64(this.frozen).u8(this.dowAdjust).u8(this.flags).f64(this.syncNs).bool(this.irqLine);
  }

  restore(r: StateReader): void {
    this.ram.set(r.raw(128));
    this.index = r.u8(); this.nmiMasked = r.bool(); this.bootEpochSeconds = r.f64();
    this.offset = r.f64(); this.frozen = r.f64(); this.dowAdjust = r.u8(); this.flags = r.u8();
    this.syncNs = r.f64(); this.irqLine = r.bool();
  }
}
