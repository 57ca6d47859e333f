/**
 * Debug ports:
 *  - 0xF4: QEMU isa-debug-exit compatible. A write of v (1, 2 or 4 bytes) asks the machine
 *    to stop with exit status ((v << 1) | 1) as an unsigned 32-bit number (v is masked to
 *    the access size). Reads return 0.
 *  - 0xE9: Bochs/QEMU debug console. A write sends its low byte to ctx.output("e9", ...);
 *    a read returns 0xE9 (the "port E9 hack is present" signature).
 * No state beyond nothing: save() writes zero bytes.
 */
import type { Device, DeviceContext, IoSize } from "../machine/device.ts";
import type { StateReader, StateWriter } from "../machine/snapshot.ts";

export const DEBUG_EXIT_PORT = 0xf4;
export const DEBUG_CONSOLE_PORT = 0xe9;

export class DebugPorts implements Device {
  readonly name = "debug";
  readonly ports = [[DEBUG_CONSOLE_PORT, DEBUG_CONSOLE_PORT], [DEBUG_EXIT_PORT, DEBUG_EXIT_PORT]] as const;

  constructor(private readonly ctx: DeviceContext) {}

  reset(): void {}

  ioRead(port: number, _size: IoSize): number {
    return port === DEBUG_CONSOLE_PORT ? 0xe9 : 0;
  }

  ioWrite(port: number, size: IoSize, value: number): void {
    if (port === DEBUG_CONSOLE_PORT) {
      this.ctx.output("e9", Uint8Array.of(value & 0xff));
      return;
    }
    const v = size === 1 ? value & 0xff : size === 2 ? value & 0xffff : value >>> 0;
    this.ctx.requestExit(((v << 1) | 1) >>> 0);
  }

  nextDeadline(): number { return Infinity; }
  onDeadline(): void {}
  save(_w: StateWriter): void {}
  restore(_r: StateReader): void {}
}
