/**
 * The machine: RAM, the CPU and devices a board (lib/boards/) wires, the port bus, virtual
 * time and the run loop. Nothing here knows the ISA or the board's devices.
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
import { Stop, type CpuBus, type GuestCpu } from "../cpu/contract.ts";
import type { Board, BoardInput, BoardWiring, Display } from "../boards/board.ts";
import { boardFor, DEFAULT_BOARD, newestVersion } from "../boards/registry.ts";
import { PhysMem } from "./ram.ts";
import type { Device, IoSize } from "./device.ts";
import { StateReader, StateWriter } from "./snapshot.ts";

export interface MachineOptions {
  /** Guest RAM in bytes (multiple of 4 KiB). */
  memBytes: number;
  /** Instructions per virtual second (default 1e9: 1 instruction = 1 ns). */
  ips?: number;
  /** RTC start, Unix seconds (a logged host input). */
  bootEpochSeconds: number;
  /** A BIOS-style ROM mapped below 1 MiB and at the top of the 4 GiB space. */
  rom?: Uint8Array;
  /** The CPU model (the board's; for the PC lib/cpu/x86/model.ts); default: the model of new recordings. */
  cpuModel?: string;
  /** The board (lib/boards/); default: the PC. */
  board?: Board<any>;
  /** The board's version (Board.versions); default: its newest, the version of new recordings. */
  boardVersion?: number;
}

/** Events from the host, applied at the current icount: the board's inputs, and idle skips. */
export type InputEvent = BoardInput | { kind: "idle"; ns: number };

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

/**
 * `C` is the board's CPU type (the PC: `Machine<PcCpu>`). The default is unchecked so that
 * the PC's tests and benchmarks reach x86 fields through `m.cpu`; product code in lib/ uses
 * only the GuestCpu contract (it typechecks with the default set to GuestCpu).
 */
export class Machine<C extends GuestCpu = any> implements CpuBus {
  readonly mem: PhysMem;
  readonly ram: Uint8Array;
  readonly board: Board<C>;
  readonly cpu: C;
  /** The board's devices as wired to the CPU (interrupt routing, ROM, inputs). */
  readonly wiring: BoardWiring;
  /** Every device, in a fixed order (deadline firing, snapshots and hashes use this order). */
  readonly devices: Device[];
  /** The board's screen, or null. */
  readonly display: Display | null;
  readonly ips: number;
  readonly bootEpochSeconds: number;
  private readonly portMap: (Device | null)[] = new Array(0x10000).fill(null);

  /** Virtual ns spent halted (advanced to deadlines or by logged idle skips). */
  idleNs = 0;
  /** idleNs when the CPU arrived at its current icount (idle events are relative to this). */
  idleAtArrival = 0;
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
    this.board = opts.board ?? (boardFor(DEFAULT_BOARD) as Board<C>);
    this.cpu = this.board.createCpu(this, this.mem, opts.cpuModel);
    this.wiring = this.board.wire(this.cpu, {
      mem: this.mem,
      ram: this.ram,
      now: () => this.now(),
      deadlinesChanged: () => { this.deadlineDirty = true; this.cpu.requestStop(); },
      requestReset: () => { this.resetPending = true; this.cpu.requestStop(); },
      requestExit: (status) => { this.exitStatus = status; this.cpu.requestStop(); },
      output: (channel, bytes) => this.onOutput(channel, bytes),
    }, { memBytes: opts.memBytes, bootEpochSeconds: opts.bootEpochSeconds, rom: opts.rom ?? null, version: opts.boardVersion ?? newestVersion(this.board) });
    this.devices = this.wiring.devices;
    this.display = this.wiring.display;
    for (const d of this.devices) {
      for (const [a, b] of d.ports) for (let p = a; p <= b; p++) this.portMap[p] = d;
    }
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
    return this.wiring.physRead8(addr);
  }
  physWrite8(_addr: number, _value: number): void {}
  ioRead(port: number, size: IoSize): number {
    const d = this.portMap[port];
    if (!d) return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
    const v = d.ioRead(port, size);
    this.deadlineDirty = true;
    return v;
  }
  /** The CPU's error line (the PC: x87 FERR#), routed by the board. */
  fpuError(): void { this.wiring.fpuError?.(); }
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
    return this.wiring.ackInterrupt();
  }

  // ---- host input ----

  /** Apply one host event at the current icount (callers: the driver, replay). */
  inject(ev: InputEvent): void {
    if (ev.kind === "idle") this.advanceIdleTo(this.arrivalNs() + ev.ns);
    else this.wiring.input(ev);
    this.deadlineDirty = true;
  }

  /** Whether a serial port can take another byte now (the driver holds input otherwise). */
  serialReady(port: number): boolean {
    return this.wiring.serialReady(port);
  }

  /** Hand the host the serial bytes still in the UARTs' transmitters (at the end of a run). */
  flushOutput(): void {
    for (const { channel, bytes } of this.wiring.pendingOutput()) {
      if (bytes.length) this.onOutput(channel, Uint8Array.from(bytes));
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

  /** A system reset: CPU, devices and board to power-on state, then the boot hook (reloads the kernel). */
  systemReset(): void {
    this.resetPending = false;
    this.resets++;
    const icount = this.cpu.icount;
    this.cpu.reset();
    this.cpu.icount = icount;
    for (const d of this.devices) d.reset();
    this.wiring.reset();
    this.deadlineDirty = true;
    this.onReset?.();
  }

  // ---- snapshot ----

  /** Everything the guest can observe, except RAM (saved separately, page by page). */
  saveState(w: StateWriter): void {
    w.f64(this.idleNs).f64(this.idleAtArrival).bool(this.wiring.flag).bool(this.resetPending).u32(this.resets);
    w.f64(this.exitStatus ?? -1);
    const cw = new StateWriter();
    this.cpu.save(cw);
    w.bytes(cw.finish());
    for (const d of this.devices) {
      const dw = new StateWriter();
      d.save(dw);
      w.str(d.name).bytes(dw.finish());
    }
    const kw = new StateWriter();
    this.cpu.saveCaches?.(kw);
    w.bytes(kw.finish());
  }

  restoreState(r: StateReader, keepBlocks = false): void {
    this.idleNs = r.f64(); this.idleAtArrival = r.f64(); const flag = r.bool(); this.resetPending = r.bool(); this.resets = r.u32();
    const ex = r.f64();
    this.exitStatus = ex < 0 ? null : ex;
    this.cpu.restore(new StateReader(r.bytes()), keepBlocks);
    this.wiring.flag = flag;
    for (const d of this.devices) {
      const name = r.str();
      if (name !== d.name) throw new Error(`snapshot device order mismatch: ${name} vs ${d.name}`);
      d.restore(new StateReader(r.bytes()));
    }
    // The CPU's caches (a snapshot from before they were saved has none: they start empty).
    if (!r.done) {
      const kr = new StateReader(r.bytes());
      if (this.cpu.restoreCaches) this.cpu.restoreCaches(kr);
    }
    this.wiring.syncInterrupt();
    this.deadlineDirty = true;
  }

  /** Per-component state bytes, for hashing (CPU, each device, screen). */
  componentStates(): { name: string; bytes: Uint8Array }[] {
    const out: { name: string; bytes: Uint8Array }[] = [];
    const cw = new StateWriter();
    this.cpu.save(cw);
    out.push({ name: "cpu", bytes: cw.finish() });
    const mw = new StateWriter();
    mw.f64(this.idleNs).f64(this.idleAtArrival).bool(this.wiring.flag).u32(this.resets);
    out.push({ name: "machine", bytes: mw.finish() });
    for (const d of this.devices) {
      const dw = new StateWriter();
      d.save(dw);
      out.push({ name: d.name, bytes: dw.finish() });
    }
    return out;
  }
}
