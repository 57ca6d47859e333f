/**
 * The i386 PC: RAM, the CPU, the devices, the port bus, IRQ routing and virtual time.
 *
 * Virtual time (ns) = floor(icount * 1e9 / ips) + idleNs. It moves only when instructions
 * retire, or when a halted CPU is advanced to a deadline (idleNs). Device deadlines are
 * virtual times; the CPU runs exactly up to the icount at which the next one falls, so an
 * interrupt is raised at the same icount on every run.
 *
 * Nothing here reads host time or host input. Host input enters through `inject()`, called by
 * the driver (lib/machine/driver.ts) which is the single host-input boundary that live runs,
 * recording and replay share.
 */
import { Stop, type CpuBus } from "../cpu/contract.ts";
import { createPcCpu, type PcCpu } from "../boards/pc.ts";
import { PhysMem } from "./ram.ts";
import type { Device, DeviceContext, IoSize } from "./device.ts";
import { StateReader, StateWriter } from "./snapshot.ts";
import { Pic } from "../devices/pic.ts";
import { Pit } from "../devices/pit.ts";
import { Cmos } from "../devices/cmos.ts";
import { Uart } from "../devices/uart.ts";
import { I8042 } from "../devices/i8042.ts";
import { Vga } from "../devices/vga.ts";
import { DebugPorts } from "../devices/debug.ts";
import { SysCtl } from "../devices/sysctl.ts";

export interface MachineOptions {
  /** Guest RAM in bytes (multiple of 4 KiB). */
  memBytes: number;
  /** Instructions per virtual second (default 1e9: 1 instruction = 1 ns). */
  ips?: number;
  /** RTC start, Unix seconds (a logged host input). */
  bootEpochSeconds: number;
  /** A BIOS-style ROM mapped below 1 MiB and at the top of the 4 GiB space. */
  rom?: Uint8Array;
  /** The CPU model (lib/cpu/x86/model.ts); default: the model of new recordings. */
  cpuModel?: string;
}

/** Events from the host, applied at the current icount. */
export type InputEvent =
  | { kind: "serial"; port: number; byte: number }
  | { kind: "key"; bytes: number[] }
  | { kind: "mouse"; dx: number; dy: number; buttons: number }
  | { kind: "idle"; ns: number };

export type RunStop =
  | { kind: "limit" }
  | { kind: "exit"; status: number }
  /** Halted with interrupts disabled: nothing can wake the CPU. */
  | { kind: "halted" }
  /** Halted with interrupts enabled and no device deadline before the host deadline. */
  | { kind: "idle" }
  | { kind: "breakpoint"; addr: number }
  | { kind: "watch"; type: 2 | 3 | 4; addr: number }
  | { kind: "shutdown" }
  /** cpu.stopOnDelivery: an interrupt or exception was just delivered (nothing retired). */
  | { kind: "delivered" }
  /** Exceptions are delivered over and over and no instruction retires: the guest is hung. */
  | { kind: "stuck" };

/** The longest a halted CPU is carried forward through device deadlines at one icount (60 s). */
export const MAX_IDLE_NS = 60e9;

export class Machine implements CpuBus {
  readonly mem: PhysMem;
  readonly ram: Uint8Array;
  readonly cpu: PcCpu;
  readonly pic: Pic;
  readonly pit: Pit;
  readonly cmos: Cmos;
  readonly com1: Uart;
  readonly com2: Uart;
  readonly kbc: I8042;
  readonly vga: Vga;
  readonly debug: DebugPorts;
  readonly sysctl: SysCtl;
  /** Every device, in a fixed order (deadline firing, snapshots and hashes use this order). */
  readonly devices: Device[];
  readonly ips: number;
  readonly bootEpochSeconds: number;
  private readonly portMap: (Device | null)[] = new Array(0x10000).fill(null);
  private readonly rom: Uint8Array | null;

  /** Virtual ns spent halted (advanced to deadlines or by logged idle skips). */
  idleNs = 0;
  /** idleNs when the CPU arrived at its current icount (idle events are relative to this). */
  idleAtArrival = 0;
  a20 = true;
  /** Set by a debug-exit write; the run loop stops with it. */
  exitStatus: number | null = null;
  resetPending = false;
  resets = 0;
  /** Reboot on triple fault or reset request (a PC does); otherwise stop with "shutdown". */
  reboot = true;
  /** Called after a reset so the boot loader can load the kernel again. */
  onReset: (() => void) | null = null;
  /** Guest output to the host (serial, debug console). */
  onOutput: (channel: string, bytes: Uint8Array) => void = () => {};
  /** The driver's next host-side deadline (scripted input, realtime pacing), virtual ns. */
  hostDeadlineNs = Infinity;
  /** Linear address whose breakpoint is ignored for the first instruction of the next run. */
  ignoreBpOnce = -1;
  private deadlineDirty = true;
  private cachedDeadline = Infinity;
  private readonly nsPerInsn: number;

  constructor(opts: MachineOptions) {
    this.mem = new PhysMem(opts.memBytes);
    this.ram = this.mem.ram;
    this.ips = opts.ips ?? 1e9;
    this.nsPerInsn = 1e9 / this.ips;
    this.bootEpochSeconds = opts.bootEpochSeconds;
    this.rom = opts.rom ?? null;
    this.cpu = createPcCpu(this, this.mem, opts.cpuModel);
    const ctx = this.makeContext();
    this.pic = new Pic(ctx, { onIntrChange: (level) => { this.cpu.intrLine = level; } });
    this.pit = new Pit(ctx);
    this.cmos = new Cmos(ctx, { bootEpochSeconds: opts.bootEpochSeconds, memBytes: opts.memBytes });
    this.com1 = new Uart(ctx, { name: "com1", base: 0x3f8, irq: 4 });
    this.com2 = new Uart(ctx, { name: "com2", base: 0x2f8, irq: 3 });
    this.kbc = new I8042(ctx);
    this.vga = new Vga(ctx, this.ram);
    this.debug = new DebugPorts(ctx);
    this.sysctl = new SysCtl(ctx);
    this.devices = [this.pic, this.pit, this.cmos, this.com1, this.com2, this.kbc, this.vga, this.debug, this.sysctl];
    for (const d of this.devices) {
      for (const [a, b] of d.ports) for (let p = a; p <= b; p++) this.portMap[p] = d;
    }
    this.mapRom();
  }

  private makeContext(): DeviceContext {
    return {
      now: () => this.now(),
      setIrq: (irq, level) => this.pic.setIrq(irq, level),
      deadlinesChanged: () => { this.deadlineDirty = true; this.cpu.requestStop(); },
      requestReset: () => { this.resetPending = true; this.cpu.requestStop(); },
      requestExit: (status) => { this.exitStatus = status; this.cpu.requestStop(); },
      output: (channel, bytes) => this.onOutput(channel, bytes),
      setA20: (on) => { this.a20 = on; this.cpu.setA20(on); },
      getA20: () => this.a20,
      fpuErrorAck: () => { this.pic.setIrq(13, false); this.cpu.fpuErrorAck(); },
    };
  }

  private mapRom(): void {
    const rom = this.rom;
    if (!rom) return;
    // The last min(size, 128 KiB) bytes are visible below 1 MiB; the whole ROM at 4 GiB - size.
    const low = Math.min(rom.length, 0x20000);
    const start = 0x100000 - low;
    this.ram.set(rom.subarray(rom.length - low), start);
    for (let p = start >>> 12; p < 0x100; p++) this.mem.readonly[p] = 1;
  }

  // ---- virtual time ----

  now(): number {
    return (this.nsPerInsn === 1 ? this.cpu.icount : Math.floor(this.cpu.icount * this.nsPerInsn)) + this.idleNs;
  }

  /** Virtual time at which the CPU arrived at its current icount (before any idle skip). */
  arrivalNs(): number {
    return this.now() - this.idleNs + this.idleAtArrival;
  }

  /**
   * Advance virtual time while halted to `target`, firing every device deadline on the way in
   * order (the same deterministic steps the run loop takes), so a logged idle skip replays
   * identically however the halt was reached.
   */
  advanceIdleTo(target: number): void {
    for (let guard = 0; guard < 1_000_000; guard++) {
      this.fireDue();
      const dl = this.nextDeadline();
      if (dl > target) break;
      this.idleNs += Math.max(0, dl - this.now());
    }
    if (target > this.now()) this.idleNs += target - this.now();
    this.fireDue();
  }

  /** The smallest icount at which now() >= ns. */
  icountAt(ns: number): number {
    const t = ns - this.idleNs;
    if (this.nsPerInsn === 1) return Math.max(t, 0);
    return Math.max(Math.ceil(t / this.nsPerInsn), 0);
  }

  nextDeadline(): number {
    if (this.deadlineDirty) {
      let m = Infinity;
      for (const d of this.devices) { const t = d.nextDeadline(); if (t < m) m = t; }
      this.cachedDeadline = m;
      this.deadlineDirty = false;
    }
    return this.cachedDeadline;
  }

  private fireDue(): void {
    for (let round = 0; round < 64; round++) {
      const now = this.now();
      if (this.nextDeadline() > now) return;
      for (const d of this.devices) if (d.nextDeadline() <= now) d.onDeadline();
      this.deadlineDirty = true;
    }
  }

  // ---- CpuBus ----

  physRead8(addr: number): number {
    const rom = this.rom;
    if (rom && addr >= 0x100000000 - rom.length) return rom[addr - (0x100000000 - rom.length)]!;
    return 0xff;
  }
  physWrite8(_addr: number, _value: number): void {}
  ioRead(port: number, size: IoSize): number {
    const d = this.portMap[port];
    if (!d) return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
    const v = d.ioRead(port, size);
    this.deadlineDirty = true;
    return v;
  }
  /** The CPU's FERR# (x87 error with CR0.NE clear): IRQ 13, as on the PC/AT. */
  fpuError(): void { this.pic.setIrq(13, true); }
  ioReadStable(port: number, size: IoSize): boolean {
    const d = this.portMap[port];
    if (!d) return true; // unmapped: all ones, always
    return d.ioReadStable !== undefined && d.ioReadStable(port, size);
  }
  ioWrite(port: number, size: IoSize, value: number): void {
    const d = this.portMap[port];
    if (!d) return;
    d.ioWrite(port, size, value);
    this.deadlineDirty = true;
  }
  readTsc(): number {
    return this.now();
  }
  ackInterrupt(): number {
    return this.pic.acknowledge();
  }

  // ---- host input ----

  /** Apply one host event at the current icount (callers: the driver, replay). */
  inject(ev: InputEvent): void {
    switch (ev.kind) {
      case "serial": (ev.port === 1 ? this.com2 : this.com1).receive(ev.byte); break;
      case "key": this.kbc.keyScancode(ev.bytes); break;
      case "mouse": this.kbc.mouseMove(ev.dx, ev.dy, ev.buttons); break;
      case "idle": this.advanceIdleTo(this.arrivalNs() + ev.ns); break;
    }
    this.deadlineDirty = true;
  }

  /** Whether a serial port can take another byte now (the driver holds input otherwise). */
  serialReady(port: number): boolean {
    return (port === 1 ? this.com2 : this.com1).canReceive();
  }

  /** Hand the host the serial bytes still in the UARTs' transmitters (at the end of a run). */
  flushOutput(): void {
    for (const u of [this.com1, this.com2]) {
      const b = u.pendingTx();
      if (b.length) this.onOutput(u.name, Uint8Array.from(b));
    }
  }

  // ---- the run loop ----

  /**
   * Run until icount reaches `limit` or something stops the machine. Device deadlines due at
   * or before the current time are always fired before returning, so a caller that injects
   * input between calls sees the same order on every run.
   */
  runUntil(limit: number): RunStop {
    const cpu = this.cpu;
    for (;;) {
      this.fireDue();
      if (this.exitStatus !== null) return { kind: "exit", status: this.exitStatus };
      if (this.resetPending) {
        if (!this.reboot) return { kind: "shutdown" };
        this.systemReset();
        continue;
      }
      if (cpu.icount >= limit) return { kind: "limit" };
      if (cpu.halted && !(cpu.intrLine && cpu.interruptsEnabled())) {
        if (!cpu.interruptsEnabled()) return { kind: "halted" };
        const dl = this.nextDeadline();
        if (dl === Infinity || dl > this.hostDeadlineNs) return { kind: "idle" };
        // Device deadlines that never wake the CPU (their interrupts masked) must not keep the
        // loop skipping time forever: past MAX_IDLE_NS at one icount the machine counts as idle.
        // The rule is in virtual time only, so recording and replay agree on it.
        if (dl - this.arrivalNs() > MAX_IDLE_NS) return { kind: "idle" };
        this.idleNs += Math.max(0, dl - this.now());
        continue;
      }
      let budget = limit - cpu.icount;
      const dl = this.nextDeadline();
      if (dl !== Infinity) {
        const k = this.icountAt(dl) - cpu.icount;
        if (k < budget) budget = k < 1 ? 1 : k;
      }
      const before = cpu.icount;
      const r = cpu.run(budget, this.ignoreBpOnce);
      this.ignoreBpOnce = -1;
      if (cpu.icount !== before) this.idleAtArrival = this.idleNs;
      switch (r) {
        case Stop.BREAKPOINT: return { kind: "breakpoint", addr: cpu.bpAddr };
        case Stop.WATCH: return { kind: "watch", type: cpu.watchHit!.type, addr: cpu.watchHit!.addr };
        case Stop.DELIVERED: return { kind: "delivered" };
        case Stop.STUCK: return { kind: "stuck" };
        case Stop.SHUTDOWN:
          if (!this.reboot) return { kind: "shutdown" };
          this.resetPending = true;
          break;
        default: break;
      }
    }
  }

  /** A PC reset: CPU and devices to power-on state, then the boot hook (reloads the kernel). */
  systemReset(): void {
    this.resetPending = false;
    this.resets++;
    const icount = this.cpu.icount;
    this.cpu.reset();
    this.cpu.icount = icount;
    for (const d of this.devices) d.reset();
    this.a20 = true;
    this.cpu.setA20(true);
    this.mapRom();
    this.deadlineDirty = true;
    this.onReset?.();
  }

  // ---- snapshot ----

  /** Everything the guest can observe, except RAM (saved separately, page by page). */
  saveState(w: StateWriter): void {
    w.f64(this.idleNs).f64(this.idleAtArrival).bool(this.a20).bool(this.resetPending).u32(this.resets);
    w.f64(this.exitStatus ?? -1);
    const cw = new StateWriter();
    this.cpu.save(cw);
    w.bytes(cw.finish());
    for (const d of this.devices) {
      const dw = new StateWriter();
      d.save(dw);
      w.str(d.name).bytes(dw.finish());
    }
  }

  restoreState(r: StateReader, keepBlocks = false): void {
    this.idleNs = r.f64(); this.idleAtArrival = r.f64(); this.a20 = r.bool(); this.resetPending = r.bool(); this.resets = r.u32();
    const ex = r.f64();
    this.exitStatus = ex < 0 ? null : ex;
    this.cpu.restore(new StateReader(r.bytes()), keepBlocks);
    this.cpu.setA20(this.a20);
    for (const d of this.devices) {
      const name = r.str();
      if (name !== d.name) throw new Error(`snapshot device order mismatch: ${name} vs ${d.name}`);
      d.restore(new StateReader(r.bytes()));
    }
    this.cpu.intrLine = this.pic.hasInterrupt();
    this.deadlineDirty = true;
  }

  /** Per-component state bytes, for hashing (CPU, each device, screen). */
  componentStates(): { name: string; bytes: Uint8Array }[] {
    const out: { name: string; bytes: Uint8Array }[] = [];
    const cw = new StateWriter();
    this.cpu.save(cw);
    out.push({ name: "cpu", bytes: cw.finish() });
    const mw = new StateWriter();
    mw.f64(this.idleNs).f64(this.idleAtArrival).bool(this.a20).u32(this.resets);
    out.push({ name: "machine", bytes: mw.finish() });
    for (const d of this.devices) {
      const dw = new StateWriter();
      d.save(dw);
      out.push({ name: d.name, bytes: dw.finish() });
    }
    return out;
  }
}
