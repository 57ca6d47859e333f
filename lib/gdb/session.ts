/**
 * One gdb connection: the transport-independent RSP protocol engine.
 *
 * Feed it the bytes received from gdb (`receive`), give it a function that
 * sends bytes back (`send`). It parses packets, acknowledges them, dispatches
 * them to a DebugTarget one at a time (resumes are asynchronous; a raw ^C
 * while one runs aborts it), and writes the replies.
 *
 * lib/gdb/server.ts wraps this in a TCP listener; tests drive it directly
 * too.
 */

import {
  RspParser,
  encodePacket,
  fromHex,
  parseHexNum,
  parseU32le,
  textToHex,
  hexToText,
  toHex,
  u32leHex,
  unescapeBinary,
  binStrToBytes,
  type RspEvent,
} from "./rsp.ts";
import type { RegisterLayout } from "../cpu/contract.ts";
import {
  SIGINT,
  SIGTRAP,
  type DebugTarget,
  type ResumeAction,
  type Stop,
  type StopReason,
} from "./target.ts";

/** Advertised PacketSize (max packet body gdb may send us / we send back), in bytes. */
export const DEFAULT_PACKET_SIZE = 0x4000;

/** A register layout with the offsets the stub needs precomputed. */
class Layout {
  /** Registers in the description; the 32-bit ones (first); byte offset of each in the g packet. */
  readonly count: number;
  readonly general: number;
  readonly offsets: number[];
  /** Bytes of the registers after the general ones (the target's readFpuRegisters, or zeros). */
  readonly extraBytes: number;
  constructor(readonly l: RegisterLayout) {
    this.count = l.sizes.length;
    this.general = l.general;
    this.offsets = [];
    let off = 0;
    for (const sz of l.sizes) { this.offsets.push(off); off += sz; }
    this.extraBytes = off - l.general * 4;
  }
}

export interface SessionOptions {
  /** Diagnostics (malformed packets, target errors). Default: none. */
  log?: (msg: string) => void;
  /** Advertised PacketSize. Default 0x4000. */
  packetSize?: number;
  /** Cache memory reads between stops (dropped on resume, writes, monitor). Default true. */
  cacheMemory?: boolean;
  /** Log every packet in both directions through `log`. */
  traceProtocol?: boolean;
}

export type SessionEnd = "detach" | "kill" | "disconnect";

/** Counters, for tests and `monitor`-style diagnostics. */
export interface SessionStats {
  packets: number;
  resumes: number;
  /** target.readRegisters() calls */
  targetRegisterReads: number;
  /** target.readMemory() calls */
  targetMemoryReads: number;
  badChecksums: number;
  garbageBytes: number;
}

export class GdbSession {
  readonly stats: SessionStats = {
    packets: 0,
    resumes: 0,
    targetRegisterReads: 0,
    targetMemoryReads: 0,
    badChecksums: 0,
    garbageBytes: 0,
  };

  private readonly parser: RspParser;
  private readonly log: (msg: string) => void;
  private readonly packetSize: number;
  private readonly cacheMemory: boolean;
  private readonly trace: boolean;

  private ackMode = true;
  private lastSent = "";
  private queue: string[] = [];
  private pumping = false;
  private running: AbortController | null = null;
  /** ^C that arrived while packets were still queued: applies to the next resume. */
  private interruptPending = false;
  private ended = false;
  private idleWaiters: (() => void)[] = [];

  private lastStop: StopReason = { kind: "signal", signal: SIGTRAP };
  private regCache: number[] | null = null;
  private memCache = new Map<string, Uint8Array | null>();
  /** The target's register file (taken once: it does not change during a session). */
  private readonly layout: Layout;

  /** Called once when the session is over (gdb detached/killed, or `close()`); the transport should close. */
  onEnd: ((why: SessionEnd) => void) | null = null;

  constructor(
    private readonly target: DebugTarget,
    private readonly send: (bytes: string) => void,
    opts: SessionOptions = {},
  ) {
    this.log = opts.log ?? (() => {});
    this.packetSize = opts.packetSize ?? DEFAULT_PACKET_SIZE;
    this.cacheMemory = opts.cacheMemory ?? true;
    this.trace = opts.traceProtocol ?? false;
    this.layout = new Layout(target.layout);
    this.parser = new RspParser(Math.max(this.packetSize * 2, 1 << 16));
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** True while a resume is in progress on the target. */
  get isRunning(): boolean {
    return this.running !== null;
  }

  /** Bytes from gdb. Never throws. */
  receive(chunk: Uint8Array | string): void {
    if (this.ended) return;
    let events: RspEvent[];
    try {
      events = this.parser.feed(chunk);
    } catch (e) {
      this.log(`gdb: parser error: ${String(e)}`);
      return;
    }
    for (const ev of events) this.onEvent(ev);
  }

  /** The transport went away (or the owner wants out): abort any resume, stop processing. */
  close(why: SessionEnd = "disconnect"): void {
    if (this.ended) return;
    this.ended = true;
    this.queue = [];
    this.running?.abort();
    const cb = this.onEnd;
    this.onEnd = null;
    cb?.(why);
    this.notifyIdle();
  }

  /** Resolves when all received packets have been processed (tests). */
  idle(): Promise<void> {
    if (!this.pumping && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  // ------------------------------------------------------------------ input side

  private onEvent(ev: RspEvent): void {
    switch (ev.type) {
      case "ack":
        return;
      case "nak":
        if (this.lastSent) this.send(this.lastSent);
        return;
      case "interrupt":
        if (this.trace) this.log("gdb <- ^C");
        if (this.running) this.running.abort();
        else if (this.pumping || this.queue.length > 0) this.interruptPending = true;
        return;
      case "garbage":
        this.stats.garbageBytes += ev.bytes.length;
        this.log(`gdb: ignoring ${ev.bytes.length} stray byte(s) outside packets`);
        return;
      case "oversized":
        // One line and an error reply (the packet may have been a command gdb waits on).
        this.stats.garbageBytes += ev.bytes;
        this.log(`gdb: dropped a packet of ${ev.bytes} bytes, longer than the ${this.packetSize}-byte PacketSize this stub advertises`);
        if (this.ackMode) this.send("+");
        this.reply("E01");
        return;
      case "bad-checksum":
        this.stats.badChecksums++;
        this.log(`gdb: bad checksum on packet ${JSON.stringify(ev.data.slice(0, 40))}`);
        if (this.ackMode) this.send("-");
        return;
      case "packet":
        if (this.ackMode) this.send("+");
        this.stats.packets++;
        this.queue.push(ev.data);
        void this.pump();
        return;
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.ended) {
        const pkt = this.queue.shift()!;
        if (this.trace) this.log(`gdb <- ${printable(pkt)}`);
        let reply: string | null;
        try {
          reply = await this.dispatch(pkt);
        } catch (e) {
          this.log(`gdb: error handling ${JSON.stringify(pkt.slice(0, 40))}: ${e instanceof Error ? e.message : String(e)}`);
          reply = "E01";
        }
        if (reply !== null && !this.ended) this.reply(reply);
      }
    } finally {
      this.pumping = false;
      this.interruptPending = false; // a ^C with no resume behind it is void
      this.notifyIdle();
    }
  }

  private notifyIdle(): void {
    if (this.pumping || (this.queue.length > 0 && !this.ended)) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  private reply(payload: string): void {
    if (this.trace) this.log(`gdb -> ${printable(payload)}`);
    const framed = encodePacket(payload);
    this.lastSent = framed;
    this.send(framed);
  }

  // ------------------------------------------------------------------ caches

  private invalidate(): void {
    this.regCache = null;
    this.memCache.clear();
  }

  private regs(): number[] {
    if (!this.regCache) {
      this.stats.targetRegisterReads++;
      this.regCache = Array.from(this.target.readRegisters(), (v) => v >>> 0);
    }
    return this.regCache;
  }

  private readMem(addr: number, len: number): Uint8Array | null {
    const key = `${addr}:${len}`;
    if (this.cacheMemory && this.memCache.has(key)) return this.memCache.get(key)!;
    this.stats.targetMemoryReads++;
    const data = this.target.readMemory(addr, len);
    const res = data && data.length === len ? data.slice() : null;
    if (this.cacheMemory) {
      if (this.memCache.size >= 512) this.memCache.clear();
      this.memCache.set(key, res);
    }
    return res;
  }

  // ------------------------------------------------------------------ dispatch

  /** Returns the reply payload, or null for no reply. */
  private async dispatch(p: string): Promise<string | null> {
    const c = p[0];
    switch (c) {
      case "?":
        return this.stopReply(this.lastStop);
      case "g":
        return p === "g" ? this.gPacket() : "E01";
      case "G":
        return this.writeAllRegs(p.slice(1));
      case "p":
        return this.readOneReg(p.slice(1));
      case "P":
        return this.writeOneReg(p.slice(1));
      case "m":
        return this.memRead(p.slice(1));
      case "M":
        return this.memWrite(p.slice(1), false);
      case "X":
        return this.memWrite(p.slice(1), true);
      case "Z":
      case "z":
        return this.breakWatch(c === "Z", p.slice(1));
      case "c":
      case "s":
        return this.resumeWithAddr({ dir: "forward", step: c === "s" }, p.slice(1));
      case "C":
      case "S": {
        // C sig[;addr]: the signal is meaningless for a machine; ignore it.
        const semi = p.indexOf(";");
        if (parseHexNum(semi < 0 ? p.slice(1) : p.slice(1, semi)) === null) return "E01";
        return this.resumeWithAddr({ dir: "forward", step: c === "S" }, semi < 0 ? "" : p.slice(semi + 1));
      }
      case "b":
        if (p === "bc" || p === "bs") {
          if (!this.target.canReverse()) return "E01";
          return this.doResume({ dir: "reverse", step: p === "bs" });
        }
        return "";
      case "v":
        return this.vPacket(p);
      case "q":
        return this.qPacket(p);
      case "Q":
        if (p === "QStartNoAckMode") {
          // The OK is still acknowledged; after it, no more acks either way.
          this.reply("OK");
          this.ackMode = false;
          return null;
        }
        return "";
      case "H":
        return "OK";
      case "T":
        return this.isOurThread(p.slice(1)) ? "OK" : "E01";
      case "D":
        this.reply("OK");
        this.safe(() => this.target.detach());
        this.close("detach");
        return null;
      case "k":
        this.safe(() => this.target.kill());
        this.close("kill");
        return null;
      default:
        return "";
    }
  }

  private safe(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.log(`gdb: target error: ${String(e)}`);
    }
  }

  private isOurThread(t: string): boolean {
    // "1", "-1", "0", "p1.1", "p1.-1", "p-1.-1"
    if (t.startsWith("p")) {
      const dot = t.indexOf(".");
      t = dot < 0 ? "-1" : t.slice(dot + 1);
    }
    return t === "1" || t === "-1" || t === "0";
  }

  // -------------------------------------------------- registers

  private gPacket(): string {
    const r = this.regs();
    let s = "";
    for (let i = 0; i < this.layout.general; i++) s += u32leHex(r[i] ?? 0);
    return s + toHex(this.extraBytes());
  }

  /** The registers after the general ones (x87 for i386): the target's bytes or zeros. */
  private extraBytes(): Uint8Array {
    const out = new Uint8Array(this.layout.extraBytes);
    if (this.target.readFpuRegisters) {
      const f = this.target.readFpuRegisters();
      out.set(f.subarray(0, out.length));
    }
    return out;
  }

  /** Register n's slice of the extra bytes. */
  private extraReg(n: number): Uint8Array {
    const L = this.layout, off = L.offsets[n]! - L.general * 4;
    return this.extraBytes().subarray(off, off + L.l.sizes[n]!);
  }

  private readOneReg(arg: string): string {
    const n = parseHexNum(arg);
    if (n === null || n >= this.layout.count) return "E01";
    if (n < this.layout.general) return u32leHex(this.regs()[n] ?? 0);
    return toHex(this.extraReg(n));
  }

  private writeReg(n: number, v: number): boolean {
    const cur = this.regs()[n];
    if (cur === v) return true; // gdb writes back unchanged registers (G); never bother the target
    this.invalidate();
    try {
      return this.target.writeRegister(n, v) !== false;
    } finally {
      this.invalidate();
    }
  }

  private writeOneReg(arg: string): string {
    const eq = arg.indexOf("=");
    if (eq < 0) return "E01";
    const n = parseHexNum(arg.slice(0, eq));
    if (n === null || n >= this.layout.count) return "E01";
    const hex = arg.slice(eq + 1);
    if (hex.length !== this.layout.l.sizes[n]! * 2) return "E01";
    if (n >= this.layout.general) return hex === toHex(this.extraReg(n)) ? "OK" : "E01";
    const v = parseU32le(hex);
    if (v === null) return "E01";
    return this.writeReg(n, v) ? "OK" : "E01";
  }

  private writeAllRegs(hex: string): string {
    const bytes = fromHex(hex);
    if (bytes === null || bytes.length < this.layout.general * 4) return "E01";
    let ok = true;
    for (let n = 0; n < this.layout.general; n++) {
      const v = (bytes[4 * n] | (bytes[4 * n + 1] << 8) | (bytes[4 * n + 2] << 16) | (bytes[4 * n + 3] << 24)) >>> 0;
      if (!this.writeReg(n, v)) ok = false;
    }
    return ok ? "OK" : "E01";
  }

  // -------------------------------------------------- memory

  private parseAddrLen(s: string): [number, number] | null {
    const comma = s.indexOf(",");
    if (comma < 0) return null;
    const addr = parseHexNum(s.slice(0, comma));
    const len = parseHexNum(s.slice(comma + 1));
    if (addr === null || len === null || addr > 0xffffffff) return null;
    return [addr, len];
  }

  private memRead(arg: string): string {
    const al = this.parseAddrLen(arg);
    if (!al) return "E01";
    const [addr, reqLen] = al;
    // Replies may be shorter than asked (gdb retries the rest); cap to the packet size and 4 GiB.
    const len = Math.min(reqLen, Math.floor((this.packetSize - 4) / 2), 0x100000000 - addr);
    if (len === 0) return "";
    const whole = this.readMem(addr, len);
    if (whole) return toHex(whole);
    // Partial read: the longest readable prefix, page by page.
    let got = "";
    let a = addr;
    const end = addr + len;
    while (a < end) {
      const chunk = Math.min(end, (Math.floor(a / 4096) + 1) * 4096) - a;
      const part = this.readMem(a, chunk);
      if (!part) break;
      got += toHex(part);
      a += chunk;
    }
    return got.length > 0 ? got : "E14";
  }

  private memWrite(arg: string, binary: boolean): string {
    const colon = arg.indexOf(":");
    if (colon < 0) return "E01";
    const al = this.parseAddrLen(arg.slice(0, colon));
    if (!al) return "E01";
    const [addr, len] = al;
    let data: Uint8Array | null;
    if (binary) data = binStrToBytes(unescapeBinary(arg.slice(colon + 1)));
    else data = fromHex(arg.slice(colon + 1));
    if (!data || data.length !== len) return "E01";
    if (len === 0) return "OK"; // gdb probes X support with a zero-length write
    if (addr + len > 0x100000000) return "E14";
    this.invalidate();
    let ok: boolean;
    try {
      ok = this.target.writeMemory(addr, data) !== false;
    } finally {
      this.invalidate();
    }
    return ok ? "OK" : "E14";
  }

  // -------------------------------------------------- breakpoints / watchpoints

  private breakWatch(insert: boolean, arg: string): string {
    // type,addr,kind[;cond...] (we don't advertise conditions; ignore anything after ';')
    const semi = arg.indexOf(";");
    const parts = (semi < 0 ? arg : arg.slice(0, semi)).split(",");
    if (parts.length !== 3) return "E01";
    const type = parseHexNum(parts[0]);
    const addr = parseHexNum(parts[1]);
    const kind = parseHexNum(parts[2]);
    if (type === null || addr === null || kind === null || addr > 0xffffffff) return "E01";
    let ok: boolean;
    if (type === 0 || type === 1) {
      ok = insert
        ? this.target.insertBreakpoint(type, addr, kind)
        : this.target.removeBreakpoint(type, addr, kind);
    } else if (type === 2 || type === 3 || type === 4) {
      if (kind === 0) return "E01";
      ok = insert
        ? this.target.insertWatchpoint(type, addr, kind)
        : this.target.removeWatchpoint(type, addr, kind);
    } else {
      return ""; // unsupported type
    }
    return ok ? "OK" : "E01";
  }

  // -------------------------------------------------- execution

  private async resumeWithAddr(action: ResumeAction, addrArg: string): Promise<string> {
    if (addrArg.length > 0) {
      const a = parseHexNum(addrArg);
      if (a === null || a > 0xffffffff) return "E01";
      if (!this.writeReg(this.layout.l.pc, a)) return "E01";
    }
    return this.doResume(action);
  }

  private async doResume(action: ResumeAction): Promise<string> {
    this.invalidate();
    const ac = new AbortController();
    if (this.interruptPending) {
      this.interruptPending = false;
      ac.abort();
    }
    this.running = ac;
    this.stats.resumes++;
    let stop: Stop;
    try {
      stop = await this.target.resume(action, ac.signal);
    } finally {
      this.running = null;
    }
    this.invalidate();
    if (stop.registers && stop.registers.length >= this.layout.general) {
      this.regCache = Array.from(stop.registers, (v) => v >>> 0);
    }
    this.lastStop = stop.reason;
    return this.stopReply(stop.reason);
  }

  private stopReply(r: StopReason): string {
    if (r.kind === "exited") return "W" + hex2(r.status & 0xff);
    let sig = SIGTRAP;
    let why = "";
    switch (r.kind) {
      case "signal":
        sig = r.signal;
        break;
      case "interrupted":
        sig = SIGINT;
        break;
      case "breakpoint":
        why = r.hw ? "hwbreak:;" : "swbreak:;";
        break;
      case "watch":
        why = `${r.type}:${(r.addr >>> 0).toString(16)};`;
        break;
      case "replaylog":
        why = `replaylog:${r.where};`;
        break;
    }
    const regs = this.regs();
    const exp = this.layout.l.expedite
      .map((n) => `${hex2(n)}:${u32leHex(regs[n] ?? 0)};`)
      .join("");
    return `T${hex2(sig & 0xff)}${why}thread:1;${exp}`;
  }

  // -------------------------------------------------- v packets

  private async vPacket(p: string): Promise<string | null> {
    if (p === "vCont?") return "vCont;c;C;s;S";
    if (p.startsWith("vCont;")) {
      const actions = p.slice(6).split(";");
      for (const a of actions) {
        const colon = a.indexOf(":");
        const act = colon < 0 ? a : a.slice(0, colon);
        const tid = colon < 0 ? "-1" : a.slice(colon + 1);
        if (!this.isOurThread(tid)) continue;
        const k = act[0];
        if (k === "c" || k === "s") {
          if (act.length !== 1) return "E01";
          return this.doResume({ dir: "forward", step: k === "s" });
        }
        if (k === "C" || k === "S") {
          if (parseHexNum(act.slice(1)) === null) return "E01";
          return this.doResume({ dir: "forward", step: k === "S" });
        }
        if (k === "t") return "OK"; // already stopped
        return "E01";
      }
      return "E01";
    }
    if (p === "vMustReplyEmpty") return "";
    if (p.startsWith("vKill")) {
      this.reply("OK");
      this.safe(() => this.target.kill());
      this.close("kill");
      return null;
    }
    return "";
  }

  // -------------------------------------------------- q packets

  private async qPacket(p: string): Promise<string | null> {
    if (p.startsWith("qSupported")) {
      const feats = [
        `PacketSize=${this.packetSize.toString(16)}`,
        "qXfer:features:read+",
        "swbreak+",
        "hwbreak+",
        "QStartNoAckMode+",
        "vContSupported+",
      ];
      if (this.target.canReverse()) feats.push("ReverseStep+", "ReverseContinue+");
      return feats.join(";");
    }
    if (p.startsWith("qXfer:features:read:")) {
      // qXfer:features:read:ANNEX:OFFSET,LENGTH
      const rest = p.slice("qXfer:features:read:".length);
      const colon = rest.lastIndexOf(":");
      if (colon < 0) return "E00";
      const annex = rest.slice(0, colon);
      const al = this.parseAddrLen(rest.slice(colon + 1));
      if (!al) return "E00";
      if (annex !== "target.xml") return "E00";
      const [off, len] = al;
      const max = Math.min(len, this.packetSize - 8);
      const xml = this.layout.l.targetXml;
      const chunk = xml.slice(off, off + max);
      return (off + max >= xml.length ? "l" : "m") + chunk;
    }
    if (p.startsWith("qXfer:")) return "";
    if (p === "qAttached" || p.startsWith("qAttached:")) return "1";
    if (p === "qC") return "QC1";
    if (p === "qfThreadInfo") return "m1";
    if (p === "qsThreadInfo") return "l";
    if (p.startsWith("qThreadExtraInfo,")) {
      let name = "rrx cpu0";
      if (this.target.threadName) {
        try {
          name = this.target.threadName();
        } catch {
          /* keep default */
        }
      }
      return textToHex(name);
    }
    if (p === "qSymbol::" || p.startsWith("qSymbol:")) return "OK";
    if (p === "qTStatus") return "";
    if (p.startsWith("qRcmd,")) return this.monitor(p.slice(6));
    return "";
  }

  private async monitor(hex: string): Promise<string | null> {
    const cmd = hexToText(hex);
    if (cmd === null) return "E01";
    this.invalidate();
    let out: string;
    let failed = false;
    try {
      out = await this.target.monitor(cmd.trim());
    } catch (e) {
      out = `${e instanceof Error ? e.message : String(e)}\n`;
      failed = true;
    } finally {
      this.invalidate();
    }
    if (this.ended) return null;
    // Stream the text as O packets (hex), then the final OK / error.
    const bytes = new TextEncoder().encode(out);
    const per = Math.max(1, Math.floor((this.packetSize - 8) / 2));
    for (let i = 0; i < bytes.length; i += per) this.reply("O" + toHex(bytes.subarray(i, i + per)));
    return failed ? "E01" : "OK";
  }
}

function hex2(n: number): string {
  return (n & 0xff).toString(16).padStart(2, "0");
}

function printable(s: string): string {
  const t = s.length > 200 ? s.slice(0, 200) + "..." : s;
  return t.replace(/[^\x20-\x7e]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`);
}
