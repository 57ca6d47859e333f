/**
 * System control ports:
 *  - 0x92 System Control Port A: bit 1 = A20 gate (ctx.setA20; reads back the machine's
 *    current A20 state, which the i8042 output port also drives), bit 0 = fast reset (a 0->1
 *    transition calls ctx.requestReset()). Other bits are stored and read back.
 *  - 0xCF9 Reset Control Register: bits 1 (system reset) and 3 (full reset) are stored;
 *    a write with bit 2 (reset CPU) set calls ctx.requestReset().
 *  - 0xF0 (write only; reads as unmapped): the AT's x87 error latch. Any write clears IRQ 13
 *    and lets a CPU that waits on FERR# go on (ctx.fpuErrorAck; see lib/cpu/x86/x87.ts).
 */
import type { Device, DeviceContext, IoSize } from "../machine/device.ts";
import type { StateReader, StateWriter } from "../machine/snapshot.ts";

export class SysCtl implements Device {
  readonly name = "sysctl";
  readonly ports = [[0x92, 0x92], [0xf0, 0xf0], [0xcf9, 0xcf9]] as const;
  /** Port 0x92 bits other than A20. */
  port92 = 0;
  rcr = 0;

  constructor(private readonly ctx: DeviceContext) {}

  reset(): void {
    this.port92 = 0;
    this.rcr = 0;
  }

  ioRead(port: number, size: IoSize): number {
    if (port === 0xf0) return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
    if (port === 0x92) return (this.port92 & ~0x02) | (this.ctx.getA20() ? 0x02 : 0);
    return this.rcr;
  }

  ioWrite(port: number, _size: IoSize, value: number): void {
    value &= 0xff;
    if (port === 0xf0) { this.ctx.fpuErrorAck?.(); return; }
    if (port === 0x92) {
      const wasReset = this.port92 & 0x01;
      this.port92 = value & ~0x02;
      this.ctx.setA20((value & 0x02) !== 0);
      if (value & 0x01 && !wasReset) this.ctx.requestReset();
      return;
    }
    this.rcr = value & 0x0a;
    if (value & 0x04) this.ctx.requestReset();
  }

  nextDeadline(): number { return Infinity; }
  onDeadline(): void {}

  save(w: StateWriter): void {
    w.u8(this.port92).u8(this.rcr);
  }

  restore(r: StateReader): void {
    this.port92 = r.u8();
    this.rcr = r.u8();
  }
}
