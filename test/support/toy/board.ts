/**
 * The toy board (test-only): a toy32 CPU (cpu.ts), a timer that raises its interrupt on
 * virtual-time deadlines, a serial port (output, and input through the same host-event path
 * as the PC's UARTs) and a power port. Tests add it with `registerBoard(toyBoard)`.
 *
 *   0x10  timer period in ns (write starts it from now; 0 stops it)   read: the period
 *   0x11  timer pending (read); any write acknowledges it
 *   0x12  timer ticks so far (read)
 *   0x20  serial: write sends the low byte; read takes the next received byte (0: none)
 *   0x21  serial: received bytes waiting (read)
 *   0x30  power: a write ends the run with that exit status
 *
 * The CPU's interrupt input is high while the timer is pending or a received byte waits;
 * the interrupt acknowledge reports 0 for the timer, 1 for the serial port.
 */
import type { Board, BoardHost, BoardInput, BoardWiring, BootImages, BootTarget } from "../../../lib/boards/board.ts";
import type { Device, IoSize } from "../../../lib/machine/device.ts";
import type { StateReader, StateWriter } from "../../../lib/machine/snapshot.ts";
import { BootError } from "../../../lib/boot/elf.ts";
import { ToyCpu } from "./cpu.ts";

const RX_FIFO = 16;

class Timer implements Device {
  readonly name = "timer";
  readonly ports = [[0x10, 0x12]] as const;
  period = 0;
  next = Infinity;
  pending = false;
  ticks = 0;
  constructor(private readonly host: BoardHost, private readonly irq: () => void) {}
  ioRead(port: number, _size: IoSize): number {
    return port === 0x10 ? this.period : port === 0x11 ? (this.pending ? 1 : 0) : this.ticks;
  }
  ioWrite(port: number, _size: IoSize, value: number): void {
    if (port === 0x10) {
      this.period = value >>> 0;
      this.next = this.period ? this.host.now() + this.period : Infinity;
      this.host.deadlinesChanged();
    } else if (port === 0x11) {
      this.pending = false;
      this.irq();
    }
  }
  nextDeadline(): number { return this.next; }
  onDeadline(): void {
    this.pending = true;
    this.ticks = (this.ticks + 1) >>> 0;
    this.next += this.period;
    this.irq();
  }
  reset(): void { this.period = 0; this.next = Infinity; this.pending = false; this.ticks = 0; }
  save(w: StateWriter): void { w.u32(this.period).f64(this.next).bool(this.pending).u32(this.ticks); }
  restore(r: StateReader): void { this.period = r.u32(); this.next = r.f64(); this.pending = r.bool(); this.ticks = r.u32(); }
}

class Serial implements Device {
  readonly name = "serial";
  readonly ports = [[0x20, 0x21]] as const;
  rx: number[] = [];
  constructor(private readonly host: BoardHost, private readonly irq: () => void) {}
  ioRead(port: number, _size: IoSize): number {
    if (port === 0x21) return this.rx.length;
    const b = this.rx.shift() ?? 0;
    this.irq();
    return b;
  }
  ioWrite(port: number, _size: IoSize, value: number): void {
    if (port === 0x20) this.host.output("serial", Uint8Array.of(value & 0xff));
  }
  receive(byte: number): void {
    if (this.rx.length < RX_FIFO) this.rx.push(byte & 0xff);
    this.irq();
  }
  nextDeadline(): number { return Infinity; }
  onDeadline(): void {}
  reset(): void { this.rx = []; }
  save(w: StateWriter): void { w.u8s(this.rx); }
  restore(r: StateReader): void { this.rx = r.u8s(); }
}

class Power implements Device {
  readonly name = "power";
  readonly ports = [[0x30, 0x30]] as const;
  constructor(private readonly host: BoardHost) {}
  ioRead(): number { return 0; }
  ioWrite(_port: number, _size: IoSize, value: number): void { this.host.requestExit(value >>> 0); }
  nextDeadline(): number { return Infinity; }
  onDeadline(): void {}
  reset(): void {}
  save(_w: StateWriter): void {}
  restore(_r: StateReader): void {}
}

class ToyWiring implements BoardWiring {
  readonly timer: Timer;
  readonly serial: Serial;
  readonly devices: Device[];
  readonly display = null;
  flag = false;
  constructor(private readonly cpu: ToyCpu, host: BoardHost) {
    const irq = () => this.syncInterrupt();
    this.timer = new Timer(host, irq);
    this.serial = new Serial(host, irq);
    this.devices = [this.timer, this.serial, new Power(host)];
  }
  ackInterrupt(): number { return this.timer.pending ? 0 : 1; }
  syncInterrupt(): void { this.cpu.intrLine = this.timer.pending || this.serial.rx.length > 0; }
  physRead8(_addr: number): number { return 0xff; }
  input(ev: BoardInput): void { if (ev.kind === "serial" && ev.port === 0) this.serial.receive(ev.byte); }
  serialReady(port: number): boolean { return port === 0 && this.serial.rx.length < RX_FIFO; }
  pendingOutput(): { channel: string; bytes: number[] }[] { return []; }
  reset(): void { this.flag = false; }
}

/** The toy board: raw images are loaded at address 0, where the CPU starts. */
export const toyBoard: Board<ToyCpu> = {
  name: "toy",
  isa: "toy32",
  devices: ["timer", "serial", "power"],
  loaders: ["raw"],
  defaultCpu: "toy1",
  legacyCpu: "toy1",
  versions: [{ version: 1, note: "the toy board" }],
  checkCpu(model) { if (model !== "toy1") throw new BootError(`unknown CPU model ${JSON.stringify(model)}; this board has: toy1`); },
  createCpu: (bus, mem) => new ToyCpu(bus, mem),
  wire: (cpu, host) => new ToyWiring(cpu, host),
  validate(cfg: BootImages) {
    if (!cfg.kernel) throw new BootError("the toy board boots a raw program image; none given");
    if (cfg.kernel.data.length > cfg.memBytes) throw new BootError(`${cfg.kernel.name}: larger than RAM`);
  },
  boot(m: BootTarget<ToyCpu>, cfg: BootImages) {
    const image = cfg.kernel!.data;
    const load = () => {
      m.ram.fill(0);
      m.mem.hostWrite(0, image);
      m.mem.markAllDirty();
      const icount = m.cpu.icount;
      m.cpu.reset();
      m.cpu.icount = icount;
    };
    load();
    m.onReset = load;
  },
};
