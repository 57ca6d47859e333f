/**
 * DebugTarget over the replay engine (lib/replay/engine.ts): what `rrx gdb rec.rrx` serves.
 *
 * Registers and memory come straight from the machine (through the CPU's debugger view, so no
 * accessed/dirty bits are set and nothing is faulted in). Breakpoints and watchpoints live in
 * the emulator (guest memory is never patched). While replaying, register and memory writes
 * are refused (they would make the machine diverge from the recording); after `monitor live`
 * they are allowed and reverse execution is off.
 */
import type { ReplayEngine, EngineStop } from "../replay/engine.ts";
import type { LiveInput } from "../replay/live.ts";
import type { Machine } from "../machine/machine.ts";
import type { GuestCpu, RegisterLayout } from "../cpu/contract.ts";
import { MachineHasher } from "../replay/session.ts";
import { hashBytes } from "../replay/hash.ts";
import { PAGE_SIZE } from "../machine/ram.ts";
import {
  SIGTRAP,
  type BreakpointType, type DebugTarget, type ResumeAction, type Stop, type StopReason, type WatchpointType,
} from "./target.ts";

const WATCH_NAME = { 2: "watch", 3: "rwatch", 4: "awatch" } as const;

export interface RrxTargetOptions {
  /** Receives one-line notices (e.g. "went live at icount N"). */
  log?: (msg: string) => void;
  /**
   * Called when the machine goes live (`monitor live`): scripted input for the live part and
   * the recording of it (`rrx gdb --input SCRIPT --record FILE`). Null: neither.
   */
  liveInput?: (m: Machine) => LiveInput | null;
}

export class RrxTarget implements DebugTarget {
  private readonly bps = new Map<number, Set<BreakpointType>>();
  private readonly wps: { type: WatchpointType; addr: number; len: number }[] = [];
  private hasher: MachineHasher | null = null;
  private readonly log: (msg: string) => void;
  ended = false;

  private readonly makeLiveInput?: (m: Machine) => LiveInput | null;

  constructor(readonly engine: ReplayEngine, opts: RrxTargetOptions = {}) {
    this.log = opts.log ?? (() => {});
    this.makeLiveInput = opts.liveInput;
  }

  /** Live and recording: writes would not be in the log, so they are refused. */
  private get writable(): boolean {
    return this.engine.live && !this.engine.liveInput?.recording;
  }

  private liveReported = false;

  /** End the recording of the live part, if any (session end; a guest exit ends it in the engine), and say so once. */
  finishLive(reason: string): void {
    const li = this.engine.liveInput;
    li?.finish(reason, 0, this.engine.isCanonical);
    if (li?.summary && !this.liveReported) {
      this.liveReported = true;
      this.log(`rrx: ${li.summary}`);
    }
  }

  private get m() {
    return this.engine.m;
  }

  /** The CPU as the contract shows it (lib/cpu/contract.ts). */
  private get cpu(): GuestCpu {
    return this.m.cpu;
  }

  get layout(): RegisterLayout {
    return this.cpu.debug.layout;
  }

  readRegisters(): readonly number[] {
    return this.cpu.debug.readRegisters();
  }

  /** The registers after the general ones (the x87 on i386), or zeros when the CPU has none. */
  readFpuRegisters(): Uint8Array {
    return this.cpu.debug.readExtraRegisters?.() ?? new Uint8Array(0);
  }

  writeRegister(n: number, value: number): boolean {
    if (!this.writable || n < 0 || n >= this.layout.general) return false;
    return this.cpu.debug.writeRegister(n, value);
  }

  /** Physical address of a linear one for the debugger, or -1. */
  private phys(lin: number): number {
    return this.cpu.debug.xlate(lin >>> 0);
  }

  readMemory(addr: number, len: number): Uint8Array | null {
    if (addr < 0 || len < 0 || addr + len > 0x100000000) return null;
    const out = new Uint8Array(len);
    const ram = this.m.ram;
    let done = 0;
    while (done < len) {
      const lin = addr + done;
      const n = Math.min(len - done, PAGE_SIZE - (lin % PAGE_SIZE));
      const p = this.phys(lin);
      if (p < 0) return null;
      if (p + n <= ram.length) out.set(ram.subarray(p, p + n), done);
      else {
        // Above RAM: only the ROM window reads back (side-effect free); anything else is unmapped.
        for (let i = 0; i < n; i++) {
          const a = p + i;
          if (a < ram.length) { out[done + i] = ram[a]!; continue; }
          const v = this.m.physRead8(a);
          if (a < 0xfff00000) return null;
          out[done + i] = v;
        }
      }
      done += n;
    }
    return out;
  }

  writeMemory(addr: number, data: Uint8Array): boolean {
    if (!this.writable) return false;
    if (addr < 0 || addr + data.length > 0x100000000) return false;
    const ram = this.m.ram;
    // Check everything first: all or nothing.
    const parts: { p: number; off: number; n: number }[] = [];
    let done = 0;
    while (done < data.length) {
      const lin = addr + done;
      const n = Math.min(data.length - done, PAGE_SIZE - (lin % PAGE_SIZE));
      const p = this.phys(lin);
      if (p < 0 || p + n > ram.length || this.m.mem.readonly[p >>> 12]) return false;
      parts.push({ p, off: done, n });
      done += n;
    }
    for (const x of parts) this.m.mem.hostWrite(x.p, data.subarray(x.off, x.off + x.n));
    this.cpu.flushBlocks(); // the write may have hit translated code
    return true;
  }

  insertBreakpoint(type: BreakpointType, addr: number): boolean {
    addr >>>= 0;
    let s = this.bps.get(addr);
    if (!s) this.bps.set(addr, (s = new Set()));
    s.add(type);
    this.engine.setBreakpoints(this.bps.keys());
    return true;
  }

  removeBreakpoint(type: BreakpointType, addr: number): boolean {
    addr >>>= 0;
    const s = this.bps.get(addr);
    if (!s || !s.delete(type)) return false;
    if (s.size === 0) this.bps.delete(addr);
    this.engine.setBreakpoints(this.bps.keys());
    return true;
  }

  insertWatchpoint(type: WatchpointType, addr: number, len: number): boolean {
    if (len < 1) return false;
    addr >>>= 0;
    if (!this.wps.some((w) => w.type === type && w.addr === addr && w.len === len)) this.wps.push({ type, addr, len });
    this.engine.setWatchpoints(this.wps);
    return true;
  }

  removeWatchpoint(type: WatchpointType, addr: number, len: number): boolean {
    const i = this.wps.findIndex((w) => w.type === type && w.addr === addr >>> 0 && w.len === len);
    if (i < 0) return false;
    this.wps.splice(i, 1);
    this.engine.setWatchpoints(this.wps);
    return true;
  }

  canReverse(): boolean {
    return !this.engine.live;
  }

  async resume(action: ResumeAction, signal: AbortSignal): Promise<Stop> {
    const e = this.engine;
    let s: EngineStop;
    if (action.dir === "reverse") {
      if (e.live) return { reason: { kind: "signal", signal: 4 }, registers: this.readRegisters() };
      s = action.step ? await e.stepBack(signal) : await e.continueBackward(signal);
    } else {
      s = action.step ? await e.stepForward(signal) : await e.continueForward(signal);
      if (s.kind === "exited") this.finishLive("exit"); // reports the recording the exit finished
    }
    return { reason: this.reason(s), registers: this.readRegisters() };
  }

  private reason(s: EngineStop): StopReason {
    switch (s.kind) {
      case "step": return { kind: "signal", signal: SIGTRAP };
      case "breakpoint": {
        const t = this.bps.get(s.addr);
        return { kind: "breakpoint", addr: s.addr, hw: !!t && t.has(1) && !t.has(0) };
      }
      case "watch": return { kind: "watch", type: WATCH_NAME[s.type], addr: s.addr };
      case "begin": return { kind: "replaylog", where: "begin" };
      case "end": return { kind: "replaylog", where: "end" };
      case "exited": return { kind: "exited", status: s.status & 0xff };
      case "interrupted": return { kind: "interrupted" };
    }
  }

  async monitor(cmd: string): Promise<string> {
    const e = this.engine;
    const [verb = "", ...args] = cmd.trim().split(/\s+/);
    switch (verb) {
      case "when": {
        if (e.live) return `Current instruction: ${e.icount} (live)\n`;
        return `Current instruction: ${e.icount} (recording ${e.begin}..${e.end})\n`;
      }
      case "goto": {
        if (e.live) throw new Error("goto: not replaying (the machine is live)");
        const n = args.length === 1 && /^\d+$/.test(args[0]!) ? Number(args[0]) : NaN;
        if (!Number.isSafeInteger(n) || n < e.begin || n > e.end) throw new Error(`goto: expected an instruction count between ${e.begin} and ${e.end}, got '${args.join(" ")}'`);
        const r = await e.seek(n);
        if (e.icount !== n) throw new Error(`goto: stopped at instruction ${e.icount} (${r.kind})`);
        return `Now at instruction ${e.icount}\n`;
      }
      case "checkpoint": {
        const c = e.userCheckpoint();
        return `Checkpoint ${c.id} at instruction ${c.icount}\n`;
      }
      case "checkpoints": {
        const st = e.store.stats();
        const lines = e.store.checkpoints.map((c) =>
          `${c.user ? "*" : " "} ${String(c.id).padStart(5)}  icount ${c.icount}  ${c.pages.length} pages`);
        const mib = (b: number) => (b / (1 << 20)).toFixed(1);
        lines.push(`${st.count} checkpoints (* = yours), ${st.pages} stored pages, ${mib(st.usedBytes)} MiB of ${mib(st.budget)} MiB budget`);
        return lines.join("\n") + "\n";
      }
      case "hash": {
        this.hasher ??= new MachineHasher(this.m);
        const h = this.hasher.record();
        const all = hashBytes(new TextEncoder().encode(JSON.stringify(h)));
        const devs = Object.entries(h.devices).map(([k, v]) => `${k}=${v}`).join(" ");
        return `state ${all} at instruction ${e.icount}\ncpu=${h.cpu} ram=${h.ram} screen=${h.screen}\n${devs}\n`;
      }
      case "screen": return (this.m.display?.screenText() ?? "(this board has no screen)") + "\n";
      case "live": {
        if (e.live) return "Already live.\n";
        e.goLive(this.makeLiveInput);
        const li = e.liveInput;
        this.log(`rrx: went live at instruction ${e.icount}${li?.recording ? `, recording to ${li.recordPath}` : ""}`);
        const input = li && li.pending ? ` ${li.pending} scripted input events follow.` : "";
        if (li?.recording) {
          return `Live at instruction ${e.icount}: recording to ${li.recordPath} (the new log starts from a snapshot of this point); reverse execution is off, writes are refused while recording.${input}\n`;
        }
        return `Live at instruction ${e.icount}: the recording is no longer followed (nothing is recorded: rrx gdb --record FILE records the live part); reverse execution is off, writes are allowed.${input}\n`;
      }
      case "help":
      case "":
        return [
          "rrx monitor commands:",
          "  when           current position (instruction count)",
          "  goto N         jump to instruction N of the recording (then: flushregs)",
          "  checkpoint     checkpoint the current position (kept until the session ends)",
          "  checkpoints    list checkpoints and their memory use",
          "  hash           hash of the complete machine state",
          "  screen         the guest's text screen",
          "  live           stop following the recording and continue live (then: flushregs);",
          "                 with rrx gdb --record FILE the live part is recorded, --input SCRIPT is its input",
          "  help           this list",
        ].join("\n") + "\n";
      default:
        throw new Error(`unknown monitor command '${verb}' (monitor help lists them)`);
    }
  }

  kill(): void {
    this.finishLive("kill");
    this.ended = true;
  }

  detach(): void {
    this.finishLive("detach");
    this.ended = true;
  }

  threadName(): string {
    return `rrx cpu0 t=${this.engine.icount}${this.engine.live ? " live" : ""}`;
  }
}
