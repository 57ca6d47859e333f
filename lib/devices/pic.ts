/**
 * A pair of Intel 8259A programmable interrupt controllers in the PC/AT cascade:
 * master at 0x20/0x21, slave at 0xA0/0xA1 with its INT output on master IR2, plus the
 * edge/level control registers (ELCR) at 0x4D0/0x4D1.
 *
 * Modelled: ICW1-ICW4 initialisation sequence (single/cascade, IC4, LTIM level mode,
 * AEOI, SFNM), OCW1 mask, OCW2 (non-specific / specific EOI, rotate on (non-)specific
 * EOI, set/clear rotate in AEOI mode, set priority), OCW3 (IRR/ISR read select, poll,
 * special mask mode), edge and level triggered inputs, spurious IRQ 7 / 15 and poll mode.
 *
 * Edge mode: a low->high transition of an IR input sets its IRR bit, which stays set until
 * acknowledged (devices may pulse the line). Level mode (ICW1 LTIM or the ELCR bit): IRR
 * follows the input level; if the line drops before INTA the acknowledge is spurious.
 *
 * Machine wiring:
 *  - route every DeviceContext.setIrq(irq, level) to pic.setIrq(irq, level) (ISA IRQ 2 is
 *    the AT "IRQ2/9" pin and is delivered to IRQ 9, since master IR2 is the cascade input);
 *  - the INTR output is hasInterrupt(); the optional onIntrChange(level) constructor
 *    option is called whenever it changes (also by reset(), but never by the constructor
 *    or restore(): re-read hasInterrupt() after a restore);
 *  - when the CPU takes an external interrupt call acknowledge() for the vector.
 */
import type { Device, DeviceContext, IoSize } from "../machine/device.ts";
import type { StateReader, StateWriter } from "../machine/snapshot.ts";

export class I8259 {
  /** Input line levels as last driven. */
  lines = 0;
  irr = 0;
  isr = 0;
  imr = 0;
  /** ELCR: 1 = level-triggered input. */
  elcr = 0;
  /** ICW1 LTIM: every input level-triggered. */
  ltim = false;
  vectorBase = 0;
  /** ICW3: master: bitmap of inputs with slaves; slave: its cascade identity. */
  icw3 = 0;
  icw4 = 0;
  single = false;
  needIcw4 = false;
  /** 0 = operational; 2/3/4 = expecting ICW2/ICW3/ICW4. */
  initStep = 0;
  /** OCW3: read ISR (else IRR) on the even port. */
  readIsr = false;
  poll = false;
  specialMask = false;
  autoEoi = false;
  rotateOnAutoEoi = false;
  /** The lowest priority input; the highest is (lowestPriority + 1) & 7. */
  lowestPriority = 7;

  constructor(readonly isMaster: boolean, readonly elcrMask: number) {}

  powerOn(): void {
    this.lines = 0; this.irr = 0; this.isr = 0; this.imr = 0; this.elcr = 0; this.ltim = false;
    this.vectorBase = 0; this.icw3 = 0; this.icw4 = 0; this.single = false; this.needIcw4 = false;
    this.initStep = 0; this.readIsr = false; this.poll = false; this.specialMask = false;
    this.autoEoi = false; this.rotateOnAutoEoi = false; this.lowestPriority = 7;
  }

  get levelMask(): number { return this.ltim ? 0xff : this.elcr; }

  setLine(n: number, level: boolean): void {
    const bit = 1 << n;
    if (level) {
      if (!(this.lines & bit)) this.irr |= bit; // rising edge (or level high)
      if (this.levelMask & bit) this.irr |= bit;
      this.lines |= bit;
    } else {
      this.lines &= ~bit;
      if (this.levelMask & bit) this.irr &= ~bit;
    }
  }

  /** Highest-priority set bit in `mask` under the current rotation, or -1. */
  private highest(mask: number): number {
    if (!mask) return -1;
    for (let i = 1; i <= 8; i++) {
      const n = (this.lowestPriority + i) & 7;
      if (mask & (1 << n)) return n;
    }
    return -1;
  }

  /** Priority rank of an input: 0 = highest. */
  private rank(n: number): number { return (n - this.lowestPriority - 1) & 7; }

  /** The input that would be serviced next, or -1 (this drives INT). */
  pending(): number {
    const req = this.irr & ~this.imr;
    const irq = this.highest(req);
    if (irq < 0) return -1;
    let inService = this.isr;
    if (this.specialMask) inService &= ~this.imr;
    // Special fully nested mode: the master lets a cascade input interrupt its own service.
    if (this.isMaster && (this.icw4 & 0x10)) inService &= ~this.icw3;
    const cur = this.highest(inService);
    if (cur >= 0 && this.rank(cur) <= this.rank(irq)) return -1;
    return irq;
  }

  /** INTA for input `irq`: set ISR (unless AEOI), clear IRR for edge inputs. */
  ack(irq: number): void {
    const bit = 1 << irq;
    if (!(this.levelMask & bit)) this.irr &= ~bit;
    if (this.autoEoi) {
      if (this.rotateOnAutoEoi) this.lowestPriority = irq;
    } else {
      this.isr |= bit;
    }
  }

  writeCommand(v: number): void {
    if (v & 0x10) {
      // ICW1
      this.ltim = (v & 0x08) !== 0;
      this.single = (v & 0x02) !== 0;
      this.needIcw4 = (v & 0x01) !== 0;
      this.initStep = 2;
      this.imr = 0;
      this.isr = 0;
      this.irr &= this.levelMask & this.lines; // edge sense circuit reset
      this.lowestPriority = 7;
      this.specialMask = false;
      this.readIsr = false;
      this.poll = false;
      this.rotateOnAutoEoi = false;
      if (!this.needIcw4) { this.icw4 = 0; this.autoEoi = false; }
      return;
    }
    if (v & 0x08) {
      // OCW3
      if (v & 0x04) this.poll = true;
      if (v & 0x02) this.readIsr = (v & 0x01) !== 0;
      if (v & 0x40) this.specialMask = (v & 0x20) !== 0;
      return;
    }
    // OCW2
    const cmd = v >> 5;
    const level = v & 7;
    switch (cmd) {
      case 0: this.rotateOnAutoEoi = false; break;
      case 4: this.rotateOnAutoEoi = true; break;
      case 1: case 5: { // non-specific EOI (and rotate)
        const irq = this.highest(this.isr);
        if (irq >= 0) {
          this.isr &= ~(1 << irq);
          if (cmd === 5) this.lowestPriority = irq;
        }
        break;
      }
      case 3: this.isr &= ~(1 << level); break; // specific EOI
      case 7: this.isr &= ~(1 << level); this.lowestPriority = level; break; // rotate on specific EOI
      case 6: this.lowestPriority = level; break; // set priority
      default: break; // 2: no operation
    }
  }

  writeData(v: number): void {
    switch (this.initStep) {
      case 2:
        this.vectorBase = v & 0xf8;
        this.initStep = this.single ? (this.needIcw4 ? 4 : 0) : 3;
        return;
      case 3:
        this.icw3 = v;
        this.initStep = this.needIcw4 ? 4 : 0;
        return;
      case 4:
        this.icw4 = v & 0x1f;
        this.autoEoi = (v & 0x02) !== 0;
        this.initStep = 0;
        return;
      default:
        this.imr = v;
    }
  }

  save(w: StateWriter): void {
    w.u8(this.lines).u8(this.irr).u8(this.isr).u8(this.imr).u8(this.elcr).bool(this.ltim);
    w.u8(this.vectorBase).u8(this.icw3).u8(this.icw4).bool(this.single).bool(this.needIcw4);
    w.u8(this.initStep).bool(this.readIsr).bool(this.poll).bool(this.specialMask);
    w.bool(this.autoEoi).bool(this.rotateOnAutoEoi).u8(this.lowestPriority);
  }

  restore(r: StateReader): void {
    this.lines = r.u8(); this.irr = r.u8(); this.isr = r.u8(); this.imr = r.u8(); this.elcr = r.u8(); this.ltim = r.bool();
    this.vectorBase = r.u8(); this.icw3 = r.u8(); this.icw4 = r.u8(); this.single = r.bool(); this.needIcw4 = r.bool();
    this.initStep = r.u8(); this.readIsr = r.bool(); this.poll = r.bool(); this.specialMask = r.bool();
    this.autoEoi = r.bool(); this.rotateOnAutoEoi = r.bool(); this.lowestPriority = r.u8();
  }
}

export interface PicOptions {
  /** Called whenever the INTR output to the CPU changes. */
  onIntrChange?: (level: boolean) => void;
  /**
   * Power-on state. "bios" (default) leaves the pair as a PC BIOS does: master vectors
   * 0x08-0x0F, slave 0x70-0x77, cascade on IR2, 8086 mode, every input masked except the
   * cascade. "raw" leaves both chips uninitialised with vector base 0 and nothing masked.
   */
  init?: "bios" | "raw";
}

export class Pic implements Device {
  readonly name = "pic";
  readonly ports = [[0x20, 0x21], [0xa0, 0xa1], [0x4d0, 0x4d1]] as const;
  readonly master = new I8259(true, 0xf8);
  readonly slave = new I8259(false, 0xde);
  private intr = false;
  private readonly onIntrChange?: (level: boolean) => void;
  private readonly init: "bios" | "raw";

  constructor(_ctx: DeviceContext, opts: PicOptions = {}) {
    this.onIntrChange = opts.onIntrChange;
    this.init = opts.init ?? "bios";
    this.powerOn();
  }

  private powerOn(): void {
    this.master.powerOn();
    this.slave.powerOn();
    if (this.init === "bios") {
      this.master.vectorBase = 0x08; this.master.icw3 = 0x04; this.master.icw4 = 0x01; this.master.imr = 0xfb;
      this.slave.vectorBase = 0x70; this.slave.icw3 = 0x02; this.slave.icw4 = 0x01; this.slave.imr = 0xff;
    }
    this.intr = false;
  }

  /** Power-on state; drops INTR (calling onIntrChange(false)) if it was raised. */
  reset(): void {
    const was = this.intr;
    this.powerOn();
    if (was) this.onIntrChange?.(false);
  }

  /** Drive ISA IRQ line 0-15 (IRQ 2 is redirected to 9). */
  setIrq(irq: number, level: boolean): void {
    if (irq === 2) irq = 9;
    if (irq < 8) this.master.setLine(irq, level);
    else this.slave.setLine(irq - 8, level);
    this.update();
  }

  /** The INTR line to the CPU. */
  hasInterrupt(): boolean { return this.intr; }

  /**
   * INTA cycle: returns the vector and moves the request from IRR to ISR (unless AEOI).
   * With nothing pending (e.g. a level input dropped) returns the spurious vector for
   * IR7 without setting ISR; a spurious slave request yields slave IR7 (IRQ 15) while the
   * master's IR2 is still marked in service.
   */
  acknowledge(): number {
    const m = this.master;
    const irq = m.pending();
    let vector: number;
    if (irq < 0) {
      vector = m.vectorBase | 7;
    } else {
      m.ack(irq);
      if (this.isCascade(irq)) {
        const s = this.slave;
        const sirq = s.pending();
        if (sirq < 0) vector = s.vectorBase | 7;
        else { s.ack(sirq); vector = s.vectorBase | sirq; }
        this.propagateSlave();
      } else {
        vector = m.vectorBase | irq;
      }
    }
    this.update();
    return vector;
  }

  private isCascade(irq: number): boolean {
    return !this.master.single && (this.master.icw3 & (1 << irq)) !== 0;
  }

  /** Slave INT output -> master IR2. */
  private propagateSlave(): void {
    this.master.setLine(2, this.slave.pending() >= 0);
  }

  private update(): void {
    this.propagateSlave();
    const intr = this.master.pending() >= 0;
    if (intr !== this.intr) {
      this.intr = intr;
      this.onIntrChange?.(intr);
    }
  }

  private pollRead(chip: I8259): number {
    chip.poll = false;
    const irq = chip.pending();
    if (irq < 0) return 0;
    chip.ack(irq);
    if (chip === this.master && this.isCascade(irq)) this.propagateSlave();
    return 0x80 | irq;
  }

  ioRead(port: number, _size: IoSize): number {
    if (port === 0x4d0) return this.master.elcr;
    if (port === 0x4d1) return this.slave.elcr;
    const chip = port < 0xa0 ? this.master : this.slave;
    let v: number;
    if (chip.poll) {
      v = this.pollRead(chip);
      this.update();
    } else if (port & 1) v = chip.imr;
    else v = chip.readIsr ? chip.isr : chip.irr;
    return v;
  }

  ioWrite(port: number, _size: IoSize, value: number): void {
    value &= 0xff;
    if (port === 0x4d0 || port === 0x4d1) {
      const chip = port === 0x4d0 ? this.master : this.slave;
      chip.elcr = value & chip.elcrMask;
      // Level inputs follow the line immediately.
      chip.irr = (chip.irr & ~chip.levelMask) | (chip.lines & chip.levelMask);
      this.update();
      return;
    }
    const chip = port < 0xa0 ? this.master : this.slave;
    if (port & 1) chip.writeData(value);
    else chip.writeCommand(value);
    this.update();
  }

  nextDeadline(): number { return Infinity; }
  onDeadline(): void {}

  save(w: StateWriter): void {
    this.master.save(w);
    this.slave.save(w);
    w.bool(this.intr);
  }

  restore(r: StateReader): void {
    this.master.restore(r);
    this.slave.restore(r);
    this.intr = r.bool();
  }
}
