/**
 * A tiny fake i386 machine implementing DebugTarget, for the stub's tests and
 * as a reference for the semantics the real replay engine must follow.
 *
 * It interprets a handful of real x86 instructions (so gdb's disassembler and
 * stepping logic see sensible code), keeps an undo log of every executed
 * instruction (registers before + overwritten bytes) and "replays" by
 * re-executing: the program has no inputs, so forward execution is
 * deterministic and reverse execution pops the undo log.
 *
 * "The recording" is the first `logLength` instructions: forward execution
 * stops there with replaylog:end, reverse execution at 0 with replaylog:begin.
 */

import { I386_LAYOUT } from "../../lib/cpu/x86/tdesc.ts";
import { SIGTRAP, type BreakpointType, type DebugTarget, type ResumeAction, type Stop, type StopReason, type WatchpointType } from "../../lib/gdb/target.ts";

/** gdb's i386 register numbers (the mock is an i386; lib/cpu/x86/tdesc.ts is its layout). */
export const NUM_GREGS = 16;
export const Reg = {
  EAX: 0, ECX: 1, EDX: 2, EBX: 3, ESP: 4, EBP: 5, ESI: 6, EDI: 7,
  EIP: 8, EFLAGS: 9, CS: 10, SS: 11, DS: 12, ES: 13, FS: 14, GS: 15,
} as const;

export const MOCK_MEM_SIZE = 0x10000;
export const MOCK_CODE = 0x1000;
export const MOCK_DATA = 0x2000;
export const MOCK_FUNC = 0x1010;

/**
 * The default program (main sets up a frame so gdb's prologue analyser can
 * unwind through func back into main):
 *   1000: push ebp          ; main
 *   1001: mov ebp, esp
 *   1003: inc eax           ; loop
 *   1004: mov [0x2000], eax
 *   1009: call 0x1010
 *   100e: jmp 0x1003
 *   1010: push ebp          ; func
 *   1011: mov ebp, esp
 *   1013: inc ebx
 *   1014: pop ebp
 *   1015: ret
 * Two setup instructions, then 9 per loop iteration.
 */
export const MOCK_PROGRAM: readonly number[] = [
  0x55,
  0x89, 0xe5,
  0x40,
  0xa3, 0x00, 0x20, 0x00, 0x00,
  0xe8, 0x02, 0x00, 0x00, 0x00,
  0xeb, 0xf3,
  0x55,
  0x89, 0xe5,
  0x43,
  0x5d,
  0xc3,
];

interface Undo {
  regs: number[];
  writes: { addr: number; old: Uint8Array }[];
}

interface Access {
  addr: number;
  len: number;
  write: boolean;
}

export interface MockOptions {
  /** Instructions in the "recording". Default 1000. Infinity = endless (for interrupt tests). */
  logLength?: number;
  /** Return the register file with each stop (the fast path). Default true. */
  returnRegisters?: boolean;
  /** Reverse execution available. Default true. */
  reversible?: boolean;
  program?: readonly number[];
}

export class MockTarget implements DebugTarget {
  readonly layout = I386_LAYOUT;
  readonly mem = new Uint8Array(MOCK_MEM_SIZE);
  regs: number[] = [0, 0, 0, 0, 0x8000, 0, 0, 0, MOCK_CODE, 0x202, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10];
  private history: Undo[] = [];
  readonly breakpoints = new Set<number>();
  readonly watchpoints: { type: WatchpointType; addr: number; len: number }[] = [];
  readonly logLength: number;
  readonly returnRegisters: boolean;
  readonly reversible: boolean;
  /** Calls made by the stub, for assertions. */
  calls = { readRegisters: 0, readMemory: 0, resume: 0, kill: 0, detach: 0 };
  exited = false;

  constructor(opts: MockOptions = {}) {
    this.logLength = opts.logLength ?? 1000;
    this.returnRegisters = opts.returnRegisters ?? true;
    this.reversible = opts.reversible ?? true;
    this.mem.set(opts.program ?? MOCK_PROGRAM, MOCK_CODE);
  }

  /** Instructions executed so far (position in the recording). */
  get pos(): number {
    return this.history.length;
  }

  readRegisters(): readonly number[] {
    this.calls.readRegisters++;
    return this.regs.slice();
  }

  writeRegister(n: number, value: number): boolean {
    if (n < 0 || n >= NUM_GREGS) return false;
    this.regs[n] = value >>> 0;
    return true;
  }

  readMemory(addr: number, len: number): Uint8Array | null {
    this.calls.readMemory++;
    if (addr < 0 || addr + len > MOCK_MEM_SIZE) return null;
    return this.mem.slice(addr, addr + len);
  }

  writeMemory(addr: number, data: Uint8Array): boolean {
    if (addr < 0 || addr + data.length > MOCK_MEM_SIZE) return false;
    this.mem.set(data, addr);
    return true;
  }

  insertBreakpoint(_type: BreakpointType, addr: number): boolean {
    this.breakpoints.add(addr);
    return true;
  }

  removeBreakpoint(_type: BreakpointType, addr: number): boolean {
    this.breakpoints.delete(addr);
    return true;
  }

  insertWatchpoint(type: WatchpointType, addr: number, len: number): boolean {
    this.watchpoints.push({ type, addr, len });
    return true;
  }

  removeWatchpoint(type: WatchpointType, addr: number, len: number): boolean {
    const i = this.watchpoints.findIndex((w) => w.type === type && w.addr === addr && w.len === len);
    if (i >= 0) this.watchpoints.splice(i, 1);
    return i >= 0;
  }

  canReverse(): boolean {
    return this.reversible && !this.exited;
  }

  async monitor(cmd: string): Promise<string> {
    const [verb, arg] = cmd.split(/\s+/);
    switch (verb) {
      case "when":
        return `Current instruction: ${this.pos}\n`;
      case "goto": {
        const n = Number(arg);
        if (!Number.isInteger(n) || n < 0 || n > this.logLength) throw new Error(`goto: bad instruction count ${arg}`);
        while (this.pos > n) this.undo();
        while (this.pos < n) this.exec();
        return `Now at instruction ${this.pos}\n`;
      }
      case "help":
        return "when, goto N, help\n";
      case "big":
        return "x".repeat(Number(arg)) + "\n";
      default:
        throw new Error(`unknown monitor command: ${cmd}`);
    }
  }

  kill(): void {
    this.calls.kill++;
  }

  detach(): void {
    this.calls.detach++;
  }

  async resume(action: ResumeAction, signal: AbortSignal): Promise<Stop> {
    this.calls.resume++;
    const reason = await this.run(action, signal);
    return this.returnRegisters ? { reason, registers: this.regs.slice() } : { reason };
  }

  private async run(action: ResumeAction, signal: AbortSignal): Promise<StopReason> {
    if (this.exited) return { kind: "exited", status: 0 };
    for (let n = 1; ; n++) {
      if (signal.aborted) return { kind: "interrupted" };
      let accesses: Access[];
      if (action.dir === "forward") {
        if (this.pos >= this.logLength) return { kind: "replaylog", where: "end" };
        const r = this.exec();
        if (r.stop) return r.stop;
        accesses = r.accesses;
      } else {
        if (!this.reversible) return { kind: "signal", signal: 4 };
        if (this.pos === 0) return { kind: "replaylog", where: "begin" };
        accesses = this.undo();
      }
      const w = this.watchHit(accesses);
      if (w) return w;
      if (action.step) return { kind: "signal", signal: SIGTRAP };
      const eip = this.regs[Reg.EIP];
      if (this.breakpoints.has(eip)) return { kind: "breakpoint", addr: eip, hw: false };
      if (n % 4096 === 0) await new Promise((r) => setTimeout(r, 0)); // let ^C in
    }
  }

  private watchHit(acc: Access[]): StopReason | null {
    for (const a of acc) {
      for (const w of this.watchpoints) {
        if (a.addr < w.addr + w.len && w.addr < a.addr + a.len) {
          const hit = Math.max(a.addr, w.addr);
          if (w.type === 2 && a.write) return { kind: "watch", type: "watch", addr: hit };
          if (w.type === 3 && !a.write) return { kind: "watch", type: "rwatch", addr: hit };
          if (w.type === 4) return { kind: "watch", type: "awatch", addr: hit };
        }
      }
    }
    return null;
  }

  /** Un-execute the last instruction; returns its accesses. */
  private undo(): Access[] {
    const u = this.history.pop()!;
    const acc: Access[] = [];
    for (let i = u.writes.length - 1; i >= 0; i--) {
      this.mem.set(u.writes[i].old, u.writes[i].addr);
      acc.push({ addr: u.writes[i].addr, len: u.writes[i].old.length, write: true });
    }
    this.regs = u.regs;
    return acc;
  }

  /** Execute one instruction. */
  private exec(): { stop?: StopReason; accesses: Access[] } {
    const r = this.regs;
    const before = r.slice();
    const writes: { addr: number; old: Uint8Array }[] = [];
    const accesses: Access[] = [];
    const rd32 = (a: number): number => {
      accesses.push({ addr: a, len: 4, write: false });
      return (this.mem[a] | (this.mem[a + 1] << 8) | (this.mem[a + 2] << 16) | (this.mem[a + 3] << 24)) >>> 0;
    };
    const wr32 = (a: number, v: number): void => {
      writes.push({ addr: a, old: this.mem.slice(a, a + 4) });
      accesses.push({ addr: a, len: 4, write: true });
      this.mem[a] = v & 0xff;
      this.mem[a + 1] = (v >>> 8) & 0xff;
      this.mem[a + 2] = (v >>> 16) & 0xff;
      this.mem[a + 3] = (v >>> 24) & 0xff;
    };
    const eip = r[Reg.EIP];
    const op = this.mem[eip];
    const imm32 = (o: number): number =>
      (this.mem[eip + o] | (this.mem[eip + o + 1] << 8) | (this.mem[eip + o + 2] << 16) | (this.mem[eip + o + 3] << 24)) >>> 0;
    let next = eip + 1;
    if (op >= 0x40 && op <= 0x47) {
      r[op - 0x40] = (r[op - 0x40] + 1) >>> 0;
    } else if (op === 0x90) {
      // nop
    } else if (op === 0xa3) {
      wr32(imm32(1), r[Reg.EAX]);
      next = eip + 5;
    } else if (op === 0xa1) {
      r[Reg.EAX] = rd32(imm32(1));
      next = eip + 5;
    } else if (op === 0xe8) {
      next = eip + 5;
      r[Reg.ESP] = (r[Reg.ESP] - 4) >>> 0;
      wr32(r[Reg.ESP], next);
      next = (next + imm32(1)) >>> 0;
    } else if (op === 0xc3) {
      next = rd32(r[Reg.ESP]);
      r[Reg.ESP] = (r[Reg.ESP] + 4) >>> 0;
    } else if (op === 0x55) {
      r[Reg.ESP] = (r[Reg.ESP] - 4) >>> 0;
      wr32(r[Reg.ESP], r[Reg.EBP]);
    } else if (op === 0x5d) {
      r[Reg.EBP] = rd32(r[Reg.ESP]);
      r[Reg.ESP] = (r[Reg.ESP] + 4) >>> 0;
    } else if (op === 0x89 && this.mem[eip + 1] === 0xe5) {
      r[Reg.EBP] = r[Reg.ESP];
      next = eip + 2;
    } else if (op === 0xeb) {
      next = (eip + 2 + ((this.mem[eip + 1] << 24) >> 24)) >>> 0;
    } else if (op === 0xf4) {
      this.exited = true;
      return { stop: { kind: "exited", status: r[Reg.EAX] & 0xff }, accesses };
    } else {
      this.regs = before;
      return { stop: { kind: "signal", signal: 4 }, accesses };
    }
    r[Reg.EIP] = next >>> 0;
    this.history.push({ regs: before, writes });
    return { accesses };
  }
}
