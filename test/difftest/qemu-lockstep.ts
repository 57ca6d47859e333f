/**
 * Lockstep comparison of rrx against QEMU (qemu-system-i386, TCG) for system-level behaviour.
 *   bun test/difftest/qemu-lockstep.ts [--fixture paging|smc|rom|fpu|x87|...] [--steps N] [--irq]
 *        [--strict-io] [--no-x87] [--strict-x87] [--sys-every N] [--port P] [--verbose]
 * QEMU runs the fixture under its gdbstub (-S -gdb); both sides are single-stepped and compared
 * after every step: GPRs, EIP, EFLAGS (RF and the flags the SDM leaves undefined for the
 * instruction just executed masked), segment selectors; every --sys-every steps also CR0/CR2/
 * CR3/CR4 and the segment caches, GDTR/IDTR (QEMU `info registers` through qRcmd); after every
 * x87 instruction (and every --sys-every steps) the x87 state: FCW, FSW, the abridged tag word
 * and the valid physical registers.
 * Stops at the first divergence and prints both register files, the differing fields and a
 * disassembly of the instruction; otherwise prints "no divergence in N steps".
 * Not part of CI (needs QEMU); see test/difftest/README.md.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { connect, type Socket } from "node:net";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { buildMachine } from "../../lib/replay/session.ts";
import { parseElf32 } from "../../lib/boot/elf.ts";
import { disasm } from "../../lib/cpu/x86/disasm.ts";
import { CS, DS, ES, FS, GS, SS } from "../../lib/cpu/x86/decode.ts";
import type { Machine } from "../../lib/machine/machine.ts";

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const k = args.indexOf(name);
  return k >= 0 && k + 1 < args.length ? args[k + 1]! : def;
};
const fixture = opt("--fixture", "paging");
const maxSteps = Number(opt("--steps", "200000"));
const sysEvery = Number(opt("--sys-every", "1000"));
const port = Number(opt("--port", String(20000 + (process.pid % 20000))));
const irq = args.includes("--irq");
const verbose = args.includes("--verbose");
const strictIo = args.includes("--strict-io");
const noX87 = args.includes("--no-x87");
const strictX87 = args.includes("--strict-x87");
const FIX = join(import.meta.dir, "../../fixtures");

const REG_NAMES = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip", "eflags", "cs", "ss", "ds", "es", "fs", "gs"] as const;
type Regs = number[]; // in REG_NAMES order
const hex8 = (v: number) => (v >>> 0).toString(16).padStart(8, "0");

// ---------------------------------------------------------------- GDB remote protocol client

class Rsp {
  private buf = "";
  private waiters: ((p: string | null) => void)[] = [];
  private packets: string[] = [];
  closed = false;
  private constructor(private readonly sock: Socket) {
    sock.setEncoding("latin1");
    sock.on("data", (d: string) => { this.buf += d; this.parse(); });
    sock.on("close", () => { this.closed = true; for (const w of this.waiters.splice(0)) w(null); });
    sock.on("error", () => {});
  }
  static async open(port: number, timeoutMs = 10000): Promise<Rsp> {
    const t0 = Date.now();
    for (;;) {
      try {
        const s = await new Promise<Socket>((res, rej) => {
          const s = connect(port, "127.0.0.1", () => res(s));
          s.once("error", rej);
        });
        return new Rsp(s);
      } catch (e) {
        if (Date.now() - t0 > timeoutMs) throw e;
        await Bun.sleep(50);
      }
    }
  }
  private parse(): void {
    for (;;) {
      while (this.buf.length && (this.buf[0] === "+" || this.buf[0] === "-")) this.buf = this.buf.slice(1);
      if (!this.buf.length) return;
      const s = this.buf.indexOf("$");
      if (s < 0) { this.buf = ""; return; }
      const h = this.buf.indexOf("#", s);
      if (h < 0 || this.buf.length < h + 3) return;
      const body = this.buf.slice(s + 1, h);
      this.buf = this.buf.slice(h + 3);
      this.sock.write("+");
      const w = this.waiters.shift();
      if (w) w(body); else this.packets.push(body);
    }
  }
  private next(timeoutMs: number): Promise<string | null> {
    const p = this.packets.shift();
    if (p !== undefined) return Promise.resolve(p);
    if (this.closed) return Promise.resolve(null);
    return new Promise((res) => {
      let done = false;
      const t = setTimeout(() => {
        if (done) return;
        done = true;
        const i = this.waiters.indexOf(f);
        if (i >= 0) this.waiters.splice(i, 1);
        res("TIMEOUT");
      }, timeoutMs);
      const f = (x: string | null) => { if (!done) { done = true; clearTimeout(t); res(x); } };
      this.waiters.push(f);
    });
  }
  async cmd(body: string, timeoutMs = 5000): Promise<string | null> {
    let sum = 0;
    for (let i = 0; i < body.length; i++) sum = (sum + body.charCodeAt(i)) & 0xff;
    this.sock.write(`$${body}#${sum.toString(16).padStart(2, "0")}`);
    return this.next(timeoutMs);
  }
  /** qRcmd (monitor command): console output packets then OK. */
  async monitor(c: string): Promise<string> {
    let out = "";
    let r = await this.cmd("qRcmd," + Buffer.from(c, "latin1").toString("hex"));
    while (r !== null && r.startsWith("O") && r !== "OK") {
      out += Buffer.from(r.slice(1), "hex").toString("latin1");
      r = await this.next(5000);
    }
    return out;
  }
  close(): void { this.sock.destroy(); }
}

function parseG(g: string): Regs {
  const r: Regs = [];
  for (let i = 0; i < 16; i++) {
    const h = g.slice(i * 8, i * 8 + 8);
    r.push(parseInt(h.match(/../g)!.reverse().join(""), 16) >>> 0);
  }
  return r;
}

/** Parse QEMU's `info registers`: control registers and segment caches. */
function parseInfo(s: string): Record<string, number> {
  const o: Record<string, number> = {};
  for (const m of s.matchAll(/\b(CR[0-4])=([0-9a-f]+)/g)) o[m[1]!.toLowerCase()] = parseInt(m[2]!, 16) >>> 0;
  for (const m of s.matchAll(/^(ES|CS|SS|DS|FS|GS|LDT|TR) *=([0-9a-f]+) ([0-9a-f]+) ([0-9a-f]+) ([0-9a-f]+)/gm)) {
    const n = m[1]!.toLowerCase();
    o[n + ".sel"] = parseInt(m[2]!, 16);
    o[n + ".base"] = parseInt(m[3]!, 16) >>> 0;
    o[n + ".limit"] = parseInt(m[4]!, 16) >>> 0;
  }
  for (const m of s.matchAll(/^(GDT|IDT) *= *([0-9a-f]+) ([0-9a-f]+)/gm)) {
    o[m[1]!.toLowerCase() + ".base"] = parseInt(m[2]!, 16) >>> 0;
    o[m[1]!.toLowerCase() + ".limit"] = parseInt(m[3]!, 16) >>> 0;
  }
  return o;
}

/** The x87 state: FCW, FSW (with TOP), the abridged tag (bit p: physical register p valid), R0..R7 as "sign+exponent.significand". */
interface X87 { fcw: number; fsw: number; ftw: number; r: string[] }

/** QEMU's x87 state from `info registers` (FPRn are the physical registers), or null if absent. */
function parseX87(s: string): X87 | null {
  const h = s.match(/FCW=([0-9a-f]+) FSW=([0-9a-f]+) \[ST=\d\] FTW=([0-9a-f]+)/);
  if (!h) return null;
  const r: string[] = [];
  for (const m of s.matchAll(/FPR(\d)=([0-9a-f]{16}) ([0-9a-f]{4})/g)) r[Number(m[1])] = `${m[3]}.${m[2]}`;
  return { fcw: parseInt(h[1]!, 16), fsw: parseInt(h[2]!, 16), ftw: parseInt(h[3]!, 16), r };
}

// ---------------------------------------------------------------- rrx side

function rrxRegs(m: Machine): Regs {
  const c = m.cpu;
  return [...c.regs, c.eip >>> 0, c.getFlags() >>> 0, c.sel[CS]!, c.sel[SS]!, c.sel[DS]!, c.sel[ES]!, c.sel[FS]!, c.sel[GS]!];
}

function rrxSys(m: Machine): Record<string, number> {
  const c = m.cpu;
  const o: Record<string, number> = { cr0: c.cr0 >>> 0, cr2: c.cr2 >>> 0, cr3: c.cr3 >>> 0, cr4: c.cr4 >>> 0 };
  const segs: [string, number][] = [["es", ES], ["cs", CS], ["ss", SS], ["ds", DS], ["fs", FS], ["gs", GS]];
  for (const [n, s] of segs) {
    o[n + ".sel"] = c.sel[s]!;
    o[n + ".base"] = c.segBase[s]! >>> 0;
    o[n + ".limit"] = c.segLimit[s]! >>> 0;
  }
  o["gdt.base"] = c.gdtBase >>> 0; o["gdt.limit"] = c.gdtLimit;
  o["idt.base"] = c.idtBase >>> 0; o["idt.limit"] = c.idtLimit;
  o["tr.sel"] = c.trSel; o["tr.base"] = c.trBase >>> 0; o["tr.limit"] = c.trLimit >>> 0;
  return o;
}

function rrxX87(m: Machine): X87 | null {
  const f = m.cpu.fpu;
  if (!f) return null;
  const r: string[] = [];
  for (let p = 0; p < 8; p++) r.push(`${f.rse[p]!.toString(16).padStart(4, "0")}.${hex8(f.rhi[p]!)}${hex8(f.rlo[p]!)}`);
  return { fcw: f.cw, fsw: f.fsw, ftw: ~f.empty & 0xff, r };
}

/** Load QEMU's x87 state into rrx (the entry state: Multiboot leaves it undefined). */
function setX87(m: Machine, q: X87): void {
  const f = m.cpu.fpu!;
  f.cw = q.fcw; f.sw = q.fsw & ~0x3800; f.top = (q.fsw >> 11) & 7; f.empty = ~q.ftw & 0xff;
  for (let p = 0; p < 8; p++) {
    const [se, sig] = q.r[p]!.split(".");
    f.rse[p] = parseInt(se!, 16); f.rhi[p] = parseInt(sig!.slice(0, 8), 16) >>> 0; f.rlo[p] = parseInt(sig!.slice(8), 16) >>> 0;
  }
}

/** Differences in the x87 state; a register's value only where both sides hold it valid. */
function diffX87(q: X87, x: X87): string[] {
  const d: string[] = [];
  const h4 = (v: number) => v.toString(16).padStart(4, "0");
  if (q.fcw !== x.fcw) d.push(`fcw: qemu=${h4(q.fcw)} rrx=${h4(x.fcw)}`);
  if (q.fsw !== x.fsw) d.push(`fsw: qemu=${h4(q.fsw)} rrx=${h4(x.fsw)} (xor ${h4(q.fsw ^ x.fsw)})`);
  if (q.ftw !== x.ftw) d.push(`ftw (abridged): qemu=${q.ftw.toString(16).padStart(2, "0")} rrx=${x.ftw.toString(16).padStart(2, "0")}`);
  const top = (x.fsw >> 11) & 7;
  for (let p = 0; p < 8; p++) {
    if (!(q.ftw & x.ftw & (1 << p))) continue;
    if (q.r[p] !== x.r[p]) d.push(`R${p} (st${(p - top) & 7}): qemu=${q.r[p]} rrx=${x.r[p]}`);
  }
  return d;
}

/** True if the instruction bytes are an x87 instruction (ESC D8..DF or FWAIT, after prefixes). */
function isX87(b: Uint8Array | null): boolean {
  if (!b) return false;
  let i = 0;
  while (i < b.length && [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3].includes(b[i]!)) i++;
  return i < b.length && ((b[i]! >= 0xd8 && b[i]! <= 0xdf) || b[i] === 0x9b);
}

/** F2XM1 FYL2X FPTAN FPATAN FYL2XP1 FSINCOS FSIN FCOS. */
const TRANSCENDENTAL = new Set(["D9 F0", "D9 F1", "D9 F2", "D9 F3", "D9 F9", "D9 FB", "D9 FE", "D9 FF"]);
/** FSW bits QEMU gets wrong (see the sync in main): C1 and DE. */
const QEMU_FSW_DEFECTS = 0x202;
const hex4 = (v: number) => v.toString(16).padStart(4, "0");

/**
 * The condition codes C0/C2/C3 (FSW 0x4500) an x87 instruction defines, after the SDM's "FPU
 * flags affected" of each instruction: the compares, FTST, FXAM, FPREM/FPREM1 set them, FNINIT
 * and FNSAVE clear them, FLDENV/FRSTOR load them, FCOMI/FUCOMI/FNSTENV and the control
 * instructions without "undefined" leave them; FSIN/FCOS/FSINCOS/FPTAN define C2 only. Every
 * other instruction (arithmetic, loads, stores, FSQRT, FXCH, FLDCW, FNSTSW, FNCLEX ...) leaves
 * them undefined.
 */
function x87CcDefined(b: Uint8Array | null): number {
  if (!b) return 0x4500;
  let i = 0;
  while (i < b.length && [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3].includes(b[i]!)) i++;
  const op = b[i]!, mr = b[i + 1] ?? 0, reg = (mr >> 3) & 7;
  const ALL = 0x4500;
  if (mr < 0xc0) {
    if ((op === 0xd8 || op === 0xdc || op === 0xda || op === 0xde) && (reg === 2 || reg === 3)) return ALL; // FCOM/FICOM m
    if (op === 0xd9 && (reg === 4 || reg === 6)) return ALL; // FLDENV, FNSTENV
    if (op === 0xdd && (reg === 4 || reg === 6)) return ALL; // FRSTOR, FNSAVE
    return 0;
  }
  if ((op === 0xd8 || op === 0xdc) && mr >= 0xd0 && mr <= 0xdf) return ALL; // FCOM/FCOMP st(i)
  if (op === 0xde && mr === 0xd9) return ALL; // FCOMPP
  if (op === 0xdd && mr >= 0xe0 && mr <= 0xef) return ALL; // FUCOM/FUCOMP
  if (op === 0xda && mr === 0xe9) return ALL; // FUCOMPP
  if ((op === 0xdb || op === 0xdf) && mr >= 0xe8 && mr <= 0xf7) return ALL; // FUCOMI/FCOMI(P): not affected
  if (op === 0xd9 && [0xe4, 0xe5, 0xf8, 0xf5].includes(mr)) return ALL; // FTST FXAM FPREM FPREM1
  if (op === 0xd9 && [0xfe, 0xff, 0xfb, 0xf2].includes(mr)) return 0x400; // FSIN FCOS FSINCOS FPTAN: C2
  if (op === 0xdb && mr === 0xe3) return ALL; // FNINIT
  return 0;
}

/** An x87 instruction's form for reports: "D9 /0" (memory operand) or "DE F9" (register form). */
function x87Form(b: Uint8Array | null): string {
  if (!b) return "?";
  let i = 0;
  while (i < b.length && [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3].includes(b[i]!)) i++;
  const h = (v: number) => v.toString(16).toUpperCase().padStart(2, "0");
  if (b[i] === 0x9b) return "9B";
  const mr = b[i + 1] ?? 0;
  return mr >= 0xc0 ? `${h(b[i]!)} ${h(mr)}` : `${h(b[i]!)} /${(mr >> 3) & 7}`;
}

function physByte(m: Machine, p: number): number {
  return p < m.ram.length ? m.ram[p]! : m.physRead8(p);
}

function insnBytes(m: Machine): Uint8Array | null {
  const c = m.cpu;
  const out = new Uint8Array(15);
  for (let i = 0; i < 15; i++) {
    const p = c.debugXlate((c.segBase[CS]! + c.eip + i) >>> 0);
    if (p < 0) return i ? out.subarray(0, i) : null;
    out[i] = physByte(m, p);
  }
  return out;
}

function disasmAt(m: Machine): string {
  const b = insnBytes(m);
  if (!b) return "(code not mapped)";
  try {
    return disasm(b, m.cpu.code32, m.cpu.eip)[0] ?? "?";
  } catch (e) {
    return `(disasm failed: ${(e as Error).message})`;
  }
}

// EFLAGS bits
const CF = 1, PF = 4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800, RF = 0x10000;

/** Flags the SDM calls undefined after the instruction `text` (Intel syntax), given ECX before. */
/** The instruction part of a disasm() line (after the address and the bytes). */
function insText(line: string): string {
  return line.match(/^[0-9a-f]{8}  (?:[0-9a-f]{2} )*[0-9a-f]{2}\s+(.*)$/)?.[1] ?? line;
}

function undefinedFlags(line: string, ecxBefore: number): number {
  const words = insText(line).split(/\s+/);
  while (words.length > 1 && /^(rep\w*|lock)$/.test(words[0]!)) words.shift();
  const mn = words[0]!.toLowerCase();
  const ops = words.slice(1).join(" ");
  switch (mn) {
    case "mul": case "imul": return SF | ZF | AF | PF;
    case "div": case "idiv": return CF | OF | SF | ZF | AF | PF;
    case "and": case "or": case "xor": case "test": return AF;
    case "bsf": case "bsr": return CF | OF | SF | AF | PF;
    case "bt": case "bts": case "btr": case "btc": return OF | SF | AF | PF;
    case "aaa": case "aas": return OF | SF | ZF | PF;
    case "daa": case "das": return OF;
    case "aam": case "aad": return OF | AF | CF;
    case "shld": case "shrd": return AF | OF | CF | SF | ZF | PF;
    case "shl": case "sal": case "shr": case "sar": case "rol": case "ror": case "rcl": case "rcr": {
      const last = ops.split(",").pop()!.trim();
      const count = last === "cl" ? ecxBefore & 0x1f : /^(0x)?[0-9a-f]+$/.test(last) && ops.includes(",") ? Number(last) & 0x1f : 1;
      if (count === 0) return 0;
      const rot = mn.startsWith("r");
      return (rot ? 0 : AF) | (count > 1 ? OF : 0);
    }
    default: return 0;
  }
}

function fmtRegs(r: Regs): string {
  const lines: string[] = [];
  for (let i = 0; i < 16; i += 4) lines.push(REG_NAMES.slice(i, i + 4).map((n, k) => `${n.padEnd(6)}=${i + k >= 10 ? r[i + k]!.toString(16).padStart(4, "0").padEnd(8) : hex8(r[i + k]!)}`).join("  "));
  return lines.map((l) => "    " + l).join("\n");
}

function diffRegs(q: Regs, x: Regs, flagMask: number): string[] {
  const d: string[] = [];
  for (let i = 0; i < 16; i++) {
    let a = q[i]!, b = x[i]!;
    if (i === 9) { a &= ~flagMask; b &= ~flagMask; }
    if (a !== b) d.push(`${REG_NAMES[i]}: qemu=${hex8(q[i]!)} rrx=${hex8(x[i]!)}` + (i === 9 ? ` (xor ${hex8(q[i]! ^ x[i]!)}, masked ${hex8(flagMask)})` : ""));
  }
  return d;
}

function diffSys(q: Record<string, number>, x: Record<string, number>): string[] {
  const d: string[] = [];
  for (const k of Object.keys(q)) {
    if (!(k in x)) continue;
    let a = q[k]!, b = x[k]!;
    // A null selector's cached base/limit is not architecturally visible (QEMU keeps whatever).
    const seg = k.split(".")[0]!;
    if (k.endsWith(".base") || k.endsWith(".limit")) {
      if (["es", "ss", "ds", "fs", "gs"].includes(seg) && (q[seg + ".sel"]! & ~3) === 0 && (x[seg + ".sel"]! & ~3) === 0 && (x.cr0! & 1)) continue;
    }
    if (a !== b) d.push(`${k}: qemu=${hex8(q[k]!)} rrx=${hex8(x[k]!)}`);
  }
  return d;
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  // Any Multiboot fixture (paging, smc, hello, interrupts, cpu-bound) or the real-mode ROM.
  const kernelFix = fixture !== "rom";
  if (kernelFix && !existsSync(join(FIX, `${fixture}.elf`))) throw new Error(`--fixture: no fixtures/${fixture}.elf (paging, smc, rom, ...)`);
  const mem = 32;
  const qargs = [
    "-m", String(mem), "-display", "none", "-serial", "null", "-monitor", "none",
    "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-no-reboot",
    "-S", "-gdb", `tcp:127.0.0.1:${port}`, "-icount", "shift=0,align=off,sleep=off",
  ];
  let entry = 0xfffffff0;
  if (kernelFix) {
    qargs.push("-kernel", `${fixture}.elf`, "-append", "");
    entry = parseElf32(readFileSync(join(FIX, `${fixture}.elf`))).entry >>> 0;
  } else {
    qargs.push("-bios", "rom.bin", "-debugcon", "null");
  }
  const qemu: ChildProcess = spawn("qemu-system-i386", qargs, { cwd: FIX, stdio: ["ignore", "ignore", "pipe"] });
  let qemuErr = "";
  qemu.stderr!.on("data", (d) => { qemuErr += d.toString(); });
  let qemuExit: number | null = null;
  qemu.on("exit", (c, s) => { qemuExit = c ?? (s ? 128 : -1); });
  const rsp = await Rsp.open(port);
  try {
    console.log(`qemu-lockstep: fixture ${fixture}, up to ${maxSteps} steps, interrupts during steps ${irq ? "enabled" : "masked (QEMU sstep default)"}`);
    await rsp.cmd("?");
    // QEMU answers p/P (one register) only once the client has read the target description.
    if (!noX87) await rsp.cmd("qXfer:features:read:target.xml:0,ffb");
    // QEMU's sstep flags: 1 = step; 2 = no IRQs; 4 = no timers. Default 7.
    const ss = await rsp.cmd(`Qqemu.sstep=${irq ? "1" : "7"}`);
    if (ss !== "OK") console.log(`  note: Qqemu.sstep not accepted (${ss})`);

    if (kernelFix) {
      // Run QEMU's own Multiboot loader (option ROM) up to the kernel entry.
      const z = await rsp.cmd(`Z1,${entry.toString(16)},1`);
      if (z !== "OK") throw new Error(`Z1 failed: ${z}`);
      const st = await rsp.cmd("c", 30000);
      if (!st || st === "TIMEOUT" || !st.startsWith("T")) throw new Error(`continue to entry: ${st}`);
      await rsp.cmd(`z1,${entry.toString(16)},1`);
    }
    let q = parseG((await rsp.cmd("g"))!);
    if (q[8] !== (entry & (kernelFix ? 0xffffffff : 0xffff))) console.log(`  note: QEMU stopped at eip ${hex8(q[8]!)}, expected ${hex8(entry)}`);

    // Build rrx's machine from the same images.
    let cmdline = "";
    if (kernelFix) {
      // Use the exact Multiboot command line QEMU passed (it prefixes the kernel file name).
      const mbi = await readQemuMem(rsp, q[3]!, 0x58);
      const cl = mbi.readUInt32LE(16);
      const raw = await readQemuMem(rsp, cl, 256);
      cmdline = raw.subarray(0, raw.indexOf(0)).toString("latin1");
      console.log(`  QEMU Multiboot info at ${hex8(q[3]!)}: flags ${hex8(mbi.readUInt32LE(0))} mem_lower ${mbi.readUInt32LE(4)} mem_upper ${mbi.readUInt32LE(8)} cmdline ${JSON.stringify(cmdline)} at ${hex8(cl)}`);
    }
    const m = buildMachine({
      kernel: kernelFix ? { name: `${fixture}.elf`, data: readFileSync(join(FIX, `${fixture}.elf`)) } : null,
      bios: kernelFix ? null : { name: "rom.bin", data: readFileSync(join(FIX, "rom.bin")) },
      modules: [], cmdline, memBytes: mem << 20, ips: 1e9, bootDate: 0,
    });
    const cpu = m.cpu;
    cpu.singleStep = true;
    cpu.noJit = true;
    cpu.stopOnDelivery = true;
    const deliveries: { step: number; vec: number; soft: boolean }[] = [];
    let lastVec = -1;
    cpu.onDeliver = (vec: number, soft: boolean) => { lastVec = vec; deliveries.push({ step: 0, vec, soft }); };

    let x = rrxRegs(m);
    const d0 = diffRegs(q, x, RF);
    if (d0.length) {
      console.log(`  entry state differs (reported, then rrx takes QEMU's values):\n    ` + d0.join("\n    "));
      if (kernelFix) {
        const mbiQ = q[3]!, mbiX = x[3]!;
        const mq = await readQemuMem(rsp, mbiQ, 0x58);
        const mx = Buffer.from(Array.from({ length: 0x58 }, (_, i) => physByte(m, mbiX + i)));
        for (let i = 0; i < 0x58; i += 4) {
          if (mq.readUInt32LE(i) !== mx.readUInt32LE(i)) console.log(`    multiboot info +0x${i.toString(16)}: qemu=${hex8(mq.readUInt32LE(i))} rrx=${hex8(mx.readUInt32LE(i))}`);
        }
        // Copy QEMU's Multiboot info block and command line into rrx's RAM at QEMU's addresses.
        for (let i = 0; i < 0x58; i++) m.ram[mbiQ + i] = mq[i]!;
        const cl = mq.readUInt32LE(16);
        for (let i = 0; i <= cmdline.length; i++) m.ram[cl + i] = i < cmdline.length ? cmdline.charCodeAt(i) : 0;
        m.mem.markAllDirty();
      }
      for (let i = 0; i < 8; i++) cpu.regs[i] = q[i]!;
      if (((q[9]! ^ x[9]!) & ~RF) !== 0) cpu.setFlags(q[9]!);
      x = rrxRegs(m);
      const still = diffRegs(q, x, RF);
      if (still.length) {
        console.log(`  cannot align the entry state: ${still.join("; ")}`);
        return 2;
      }
    }
    const qi0 = parseInfo(await rsp.monitor("info registers"));
    const sys0 = diffSys(qi0, rrxSys(m));
    if (sys0.length) {
      // GDTR/IDTR and CR0 bits other than PE/PG at the Multiboot entry are undefined by the
      // specification (SeaBIOS clears CD/NW): take QEMU's.
      console.log(`  system state at entry differs (GDTR/IDTR/CR0 then taken from QEMU): ${sys0.join("; ")}`);
      if (((qi0.cr0! ^ cpu.cr0) & 0x80000001) === 0) cpu.cr0 = qi0.cr0!;
      cpu.gdtBase = qi0["gdt.base"]!; cpu.gdtLimit = qi0["gdt.limit"]!;
      cpu.idtBase = qi0["idt.base"]!; cpu.idtLimit = qi0["idt.limit"]!;
      const still = diffSys(qi0, rrxSys(m));
      if (still.length) console.log(`  system state still differs: ${still.join("; ")}`);
    }

    const qx0 = noX87 ? null : parseX87(await rsp.monitor("info registers")), xx0 = rrxX87(m);
    if (qx0 && xx0) {
      const dx = diffX87(qx0, xx0);
      // Compare every register at entry (the tags differ too, typically).
      if (dx.length || qx0.ftw !== xx0.ftw) {
        console.log(`  x87 state at entry differs (then taken from QEMU): ${dx.join("; ")}`);
        setX87(m, qx0);
      }
    }
    let step = 0;
    const t0 = performance.now();
    // Stopped from outside (timeout, ^C): say how far the comparison got.
    const stopped = () => {
      summary();
      console.log(`stopped from outside at step ${step}: no divergence in ${step} steps (${((performance.now() - t0) / 1000).toFixed(1)}s)`);
      if (qemuExit === null) qemu.kill("SIGKILL");
      process.exit(3);
    };
    process.once("SIGTERM", stopped);
    process.once("SIGINT", stopped);
    let lastSys = 0, repExtra = 0, hltExtra = 0, undefSyncs = 0, x87Checks = 0, c1Syncs = 0;
    const c1Forms = new Map<string, number>();
    const ccSyncs = new Map<string, number>();
    const transSyncs = new Map<string, number>();
    const ioDiffs = new Map<string, number>();
    const summary = () => {
      if (transSyncs.size) console.log(`x87 transcendental results taken from QEMU: ${[...transSyncs].map(([k, n]) => `${k} x${n}`).join(", ")}`);
      if (ccSyncs.size) console.log(`undefined x87 condition codes synced: ${[...ccSyncs].map(([k, n]) => `${k} x${n}`).join(", ")}`);
      if (c1Forms.size) console.log(`x87 C1/DE differences (QEMU's FSW then set to rrx's): ${[...c1Forms].map(([k, n]) => `${k} x${n}`).join(", ")}`);
      if (ioDiffs.size) console.log(`device reads taken from QEMU: ${[...ioDiffs].map(([k, n]) => `port ${k} x${n}`).join(", ")}`);
      console.log(`rrx deliveries: ${deliveries.length}; extra QEMU steps ending REPs: ${repExtra}; HLT steps ending in a delivery: ${hltExtra}; undefined-flag differences synced: ${undefSyncs}; x87 state comparisons: ${x87Checks}; C1/DE differences (QEMU) synced: ${c1Syncs}`);
    };
    while (step < maxSteps) {
      const text = disasmAt(m);
      const insnBytes0 = insnBytes(m);
      const x87Insn = !noX87 && isX87(insnBytes0);
      const ecx = cpu.regs[1]!;
      const prevQ = q;
      lastVec = -1;
      const nDel = deliveries.length;
      const rs = m.runUntil(cpu.icount + 1);
      for (let k = nDel; k < deliveries.length; k++) deliveries[k]!.step = step + 1;
      const qs = await rsp.cmd("s", 10000);
      step++;
      const xExit = rs.kind === "exit" || rs.kind === "shutdown";
      if (qs === null || qs.startsWith("W") || qs.startsWith("X") || qemuExit !== null) {
        await Bun.sleep(100);
        console.log(`step ${step}: QEMU exited (${qs ?? "connection closed"}, status ${qemuExit}); rrx: ${rs.kind}${rs.kind === "exit" ? " status " + rs.status : ""}`);
        summary();
        console.log(xExit ? `both exited: no divergence in ${step} steps` : `DIVERGENCE: QEMU exited, rrx did not (at ${disasmAt(m)})`);
        return xExit ? 0 : 1;
      }
      if (qs === "TIMEOUT") {
        summary();
        console.log(`step ${step}: QEMU did not finish the step in 10 s (halted waiting for input? ${text}); rrx: ${rs.kind}; ${step - 1} steps equal`);
        return 1;
      }
      q = parseG((await rsp.cmd("g"))!);
      x = rrxRegs(m);
      // QEMU's step over HLT also waits for and delivers the waking interrupt; rrx's ends halted
      // after the HLT: let rrx wait and deliver too.
      if (cpu.halted && /^hlt/.test(insText(text)) && q[8] !== x[8] && handlerVector(m, q[8]!) !== null) {
        hltExtra++;
        const n = deliveries.length;
        const r2 = m.runUntil(cpu.icount + 1);
        for (let k = n; k < deliveries.length; k++) deliveries[k]!.step = step;
        if (r2.kind === "delivered") x = rrxRegs(m);
      }
      // QEMU (with -icount its REP fast exit is off) ends a REP's last iteration back at the
      // instruction with ECX=0 and leaves it in one more step; rrx leaves in the last iteration.
      if (/\brep/.test(text) && q[8] === prevQ[8] && x[8] !== prevQ[8] && (cpu.code32 ? q[1] : q[1]! & 0xffff) === 0) {
        repExtra++;
        await rsp.cmd("s", 10000);
        q = parseG((await rsp.cmd("g"))!);
      }
      const mask = RF | undefinedFlags(text, ecx);
      const d = diffRegs(q, x, mask);
      // An undefined flag that differs would show up after the next instruction: take QEMU's.
      const undef = (q[9]! ^ x[9]!) & mask & ~RF;
      if (undef) {
        undefSyncs++;
        if (verbose) console.log(`  step ${step}: undefined flags ${hex8(undef)} differ after ${insText(text)}; rrx takes QEMU's`);
        cpu.setFlags((x[9]! & ~undef) | (q[9]! & undef));
        x = rrxRegs(m);
      }
      const xDelivered = rs.kind === "delivered";
      if (verbose) console.log(`${step}: ${text}  ${rs.kind}`);
      if (xExit) {
        console.log(`step ${step}: rrx exited (${rs.kind}${rs.kind === "exit" ? " status " + rs.status : ""}), QEMU did not`);
        return 1;
      }
      // Device models differ (e.g. the UART's transmitter timing): an IN whose only difference
      // is the value read is a device difference; rrx takes QEMU's value (--strict-io: stop).
      if (!strictIo && d.length === 1 && d[0]!.startsWith("eax:") && /\sin\s+(al|ax|eax),/.test(text)) {
        const port = /,\s*dx/.test(text) ? (prevQ[2]! & 0xffff) : Number(text.split(",").pop()!.trim());
        const key = `${port.toString(16)}:${hex8(x[0]!)}->${hex8(q[0]!)}`;
        ioDiffs.set(key, (ioDiffs.get(key) ?? 0) + 1);
        if (ioDiffs.get(key) === 1) console.log(`  step ${step}: device read differs: ${text.replace(/^\S+\s+(\S\S )+\s*/, "")} (port 0x${port.toString(16)}): qemu=${hex8(q[0]!)} rrx=${hex8(x[0]!)}; rrx takes QEMU's value`);
        cpu.regs[0] = q[0]!;
        continue;
      }
      let sysDiff: string[] = [];
      const sysInsn = /cr\d|lgdt|lidt|ltr|lldt|iret|int|mov\s+[cdefgs]s|pop\s+[defgs]s|lss|far|retf|invlpg|clts|lmsw/.test(insText(text));
      if (d.length === 0 && (step - lastSys >= sysEvery || sysInsn || x87Insn)) {
        const info = await rsp.monitor("info registers");
        if (step - lastSys >= sysEvery || sysInsn) {
          lastSys = step;
          sysDiff = diffSys(parseInfo(info), rrxSys(m));
        }
        const qx = noX87 ? null : parseX87(info), xx = rrxX87(m);
        if (qx && xx) {
          x87Checks++;
          const dx = diffX87(qx, xx);
          // QEMU does not maintain C1 (SDM vol. 1 8.1.3.1: after an inexact result C1 = 1 when
          // the result was rounded up, and most instructions clear it otherwise) and does not
          // raise the denormal-operand flag DE in places (e.g. FTST); rrx does, as the host x87
          // does (fpu-difftest.ts compares the whole status word with the host's). QEMU takes
          // rrx's status word then (--strict-x87: stop instead).
          // C0/C2/C3 the SDM leaves undefined after this instruction: rrx takes QEMU's (as for EFLAGS).
          const ccUndef = 0x4500 & ~x87CcDefined(insnBytes0);
          if (dx.length === 1 && dx[0]!.startsWith("fsw:") && ((qx.fsw ^ xx.fsw) & ~0x200 & ~ccUndef) === 0 && (qx.fsw ^ xx.fsw) & ccUndef) {
            const key = x87Form(insnBytes0);
            ccSyncs.set(key, (ccSyncs.get(key) ?? 0) + 1);
            if (verbose || ccSyncs.get(key) === 1) console.log(`  step ${step}: x87 condition codes undefined after ${key} differ (qemu ${hex4(qx.fsw)}, rrx ${hex4(xx.fsw)}): rrx takes QEMU's`);
            cpu.fpu!.sw = (cpu.fpu!.sw & ~ccUndef) | (qx.fsw & ccUndef);
            xx.fsw = cpu.fpu!.fsw;
            dx.splice(0, 1, ...diffX87(qx, xx));
          }
          // QEMU computes the transcendentals in the host's double precision (its results end in
          // 11 zero bits); rrx's agree with the host x87 (docs/FPU.md). rrx takes QEMU's x87
          // registers and status word after them, so that the comparison goes on.
          const form = x87Form(insnBytes0);
          if (!strictX87 && dx.length && TRANSCENDENTAL.has(form)) {
            transSyncs.set(form, (transSyncs.get(form) ?? 0) + 1);
            if (verbose || transSyncs.get(form) === 1) console.log(`  step ${step}: x87 transcendental ${form} differs (${dx.join("; ")}): rrx takes QEMU's x87 state`);
            setX87(m, qx);
            dx.length = 0;
          }
          const qd = qx.fsw ^ xx.fsw;
          // And QEMU's FPREM1 leaves the quotient bits (C0 C3 C1 = Q2 Q1 Q0) clear where the SDM
          // and the host set them (10 FPREM1 3: quotient 3, FSW 0x7200 on an AMD EPYC host).
          const prem1 = x87Form(insnBytes0) === "D9 F5" ? 0x4300 : 0;
          if (!strictX87 && dx.length === 1 && dx[0]!.startsWith("fsw:") && (qd & ~(QEMU_FSW_DEFECTS | prem1)) === 0) {
            c1Syncs++;
            const key = `${x87Form(insnBytes0)} ${[qd & 0x4100 ? "C0/C3" : "", qd & 0x200 ? "C1" : "", qd & 2 ? "DE" : ""].filter(Boolean).join("+")} qemu=${hex4(qx.fsw & qd)} rrx=${hex4(xx.fsw & qd)}${qd & 0x200 && xx.fsw & 0x20 ? " (PE)" : ""}`;
            c1Forms.set(key, (c1Forms.get(key) ?? 0) + 1);
            if (c1Forms.get(key) === 1) console.log(`  step ${step}: x87 FSW differs after ${key}: QEMU takes rrx's FSW`);
            await setQemuFsw(rsp, xx.fsw);
          } else sysDiff.push(...dx);
        }
      }
      if (d.length || sysDiff.length) {
        console.log(`\nDIVERGENCE at step ${step} (rrx icount ${cpu.icount}, rrx stop: ${rs.kind})`);
        console.log(`  instruction: ${text}`);
        console.log(`  differing: ${[...d, ...sysDiff].join("\n             ")}`);
        console.log(`  before (QEMU):\n${fmtRegs(prevQ)}`);
        console.log(`  after, QEMU:\n${fmtRegs(q)}`);
        console.log(`  after, rrx:\n${fmtRegs(x)}`);
        console.log(`  next instruction, rrx: ${disasmAt(m)}`);
        const qVec = handlerVector(m, q[8]!), xVec = lastVec >= 0 ? lastVec : null;
        if (qVec !== null || xVec !== null) {
          const vs = (v: number | null) => (v === null ? "no delivery" : `vector 0x${v.toString(16)}`);
          console.log(`  delivery in this step: QEMU ${vs(qVec)} (EIP at that IDT gate's handler), rrx ${vs(xVec)}`);
          const ext = (v: number | null) => v !== null && v >= 0x20 && v < 0x30;
          if (qVec !== xVec && (ext(qVec) || ext(xVec)))
            console.log(`  => timing difference in external interrupt delivery (device timers are not instruction-identical), not a CPU bug`);
        }
        console.log(`  rrx deliveries so far: ${deliveries.length}${deliveries.length ? " (last: " + deliveries.slice(-5).map((d) => `0x${d.vec.toString(16)}@${d.step}`).join(", ") + ")" : ""}; both sides agreed on all but this step`);
        if (!d.length) {
          const qi = await rsp.monitor("info registers");
          console.log(`  QEMU info registers:\n${qi.replace(/^/gm, "    ")}`);
        }
        console.log(`steps compared: ${step - 1} equal, diverged at ${step} (${((performance.now() - t0) / 1000).toFixed(1)}s)`);
        return 1;
      }
    }
    summary();
    console.log(`no divergence in ${step} steps (${((performance.now() - t0) / 1000).toFixed(1)}s)`);
    return 0;
  } finally {
    rsp.close();
    if (qemuExit === null) qemu.kill("SIGKILL");
    if (verbose && qemuErr) console.log(`qemu stderr: ${qemuErr}`);
  }
}

/**
 * The vector whose protected-mode IDT gate (in rrx's IDT) points at `eip`, or null. For a task
 * gate, the EIP saved in the TSS it names (where that task resumes).
 */
function handlerVector(m: Machine, eip: number): number | null {
  const c = m.cpu;
  if (!(c.cr0 & 1)) return null;
  const lin = (a: number, n: number) => Array.from({ length: n }, (_, k) => { const p = c.debugXlate((a + k) >>> 0); return p < 0 ? 0 : physByte(m, p); });
  for (let v = 0; v * 8 + 7 <= c.idtLimit; v++) {
    const b = lin(c.idtBase + v * 8, 8);
    if (!(b[5]! & 0x80)) continue;
    let off = (b[0]! | (b[1]! << 8) | (b[6]! << 16) | (b[7]! << 24)) >>> 0;
    if ((b[5]! & 0x1f) === 0x05) {
      const sel = b[2]! | (b[3]! << 8);
      const d = lin(c.gdtBase + (sel & 0xfff8), 8);
      const base = (d[2]! | (d[3]! << 8) | (d[4]! << 16) | (d[7]! << 24)) >>> 0;
      const e = (d[5]! & 8) ? lin(base + 0x20, 4) : [...lin(base + 0x0e, 2), 0, 0];
      off = (e[0]! | (e[1]! << 8) | (e[2]! << 16) | (e[3]! << 24)) >>> 0;
    }
    if (off === eip >>> 0) return v;
  }
  return null;
}

/** QEMU's gdbstub register number of FSW (fstat) in qemu-system-i386: 8 GPRs, EIP, EFLAGS, 9 segment registers, 6 control registers, ST0-7, FCW, FSW. */
const GDB_FSTAT = 8 + 1 + 1 + 9 + 6 + 8 + 1;

/** Write QEMU's FSW (TOP included) through the gdbstub; checked by reading it back. */
async function setQemuFsw(rsp: Rsp, fsw: number): Promise<void> {
  const le = (v: number) => [0, 8, 16, 24].map((b) => ((v >>> b) & 0xff).toString(16).padStart(2, "0")).join("");
  const r = await rsp.cmd(`P${GDB_FSTAT.toString(16)}=${le(fsw)}`);
  const back = await rsp.cmd(`p${GDB_FSTAT.toString(16)}`);
  if (r !== "OK" || back !== le(fsw)) throw new Error(`writing QEMU's FSW (register ${GDB_FSTAT}): ${r}, read back ${back}`);
}

async function readQemuMem(rsp: Rsp, addr: number, len: number): Promise<Buffer> {
  const r = await rsp.cmd(`m${addr.toString(16)},${len.toString(16)}`);
  if (!r || r.startsWith("E")) throw new Error(`QEMU memory read at ${hex8(addr)}: ${r}`);
  return Buffer.from(r, "hex");
}

process.exitCode = await main();
process.exit();
