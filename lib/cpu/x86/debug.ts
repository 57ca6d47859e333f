/**
 * The x86 core's debugger view (DebugView, lib/cpu/contract.ts): gdb's i386 "core" register
 * numbering and target description (tdesc.ts), register writes, side-effect-free address
 * translation, and the disassembler.
 *
 *   0 eax  1 ecx  2 edx  3 ebx  4 esp  5 ebp  6 esi  7 edi
 *   8 eip  9 eflags  10 cs  11 ss  12 ds  13 es  14 fs  15 gs
 */
import type { DebugView } from "../contract.ts";
import { CS, DS, ES, FS, GS, SS, DecodeError, Insn, decode } from "./decode.ts";
import { formatInsn } from "./disasm.ts";
import type { CpuCore } from "./interrupts.ts";
import { I386_LAYOUT } from "./tdesc.ts";

/** gdb's segment register order (cs ss ds es fs gs) as the core's segment numbers. */
const SEG_ORDER = [CS, SS, DS, ES, FS, GS];
/** General registers in gdb's i386 core numbering (without x87). */
export const I386_GREGS = 16;

export class X86Debug implements DebugView {
  readonly arch = "i386";
  readonly layout = I386_LAYOUT;
  constructor(private readonly cpu: CpuCore) {}

  readRegisters(): number[] {
    const cpu = this.cpu;
    const r = new Array<number>(I386_GREGS);
    for (let i = 0; i < 8; i++) r[i] = cpu.regs[i]! >>> 0;
    r[8] = cpu.eip >>> 0;
    r[9] = cpu.getFlags() >>> 0;
    for (let i = 0; i < 6; i++) r[10 + i] = cpu.sel[SEG_ORDER[i]!]!;
    return r;
  }

  /**
   * gdb registers 16..31: st0..st7 (10 bytes each, in stack order) then fctrl, fstat, ftag
   * (the full tag word), fiseg, fioff, foseg, fooff, fop (4 bytes each). Null without an FPU.
   */
  readExtraRegisters(): Uint8Array | null {
    const f = this.cpu.fpu;
    if (f === null) return null;
    const out = new Uint8Array(112);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) {
      const p = (f.top + i) & 7;
      dv.setUint32(10 * i, f.rlo[p]!, true);
      dv.setUint32(10 * i + 4, f.rhi[p]!, true);
      dv.setUint16(10 * i + 8, f.rse[p]!, true);
    }
    const words = [f.cw, f.fsw, f.ftw, f.fcs, f.fip, f.fds, f.fdp, f.fop];
    for (let k = 0; k < 8; k++) dv.setUint32(80 + 4 * k, words[k]! >>> 0, true);
    return out;
  }

  pcAddress(): number {
    return (this.cpu.segBase[CS]! + this.cpu.eip) >>> 0;
  }

  writeRegister(n: number, value: number): boolean {
    const cpu = this.cpu;
    value >>>= 0;
    if (n >= 0 && n < 8) cpu.regs[n] = value;
    else if (n === 8) cpu.eip = value;
    else if (n === 9) cpu.setFlags((value & ~0x20000) | (cpu.eflags & 0x20000)); // VM: the mode stays
    else return false; // segment registers: loading a selector has side effects; refuse
    return true;
  }

  xlate(addr: number): number {
    return this.cpu.debugXlate(addr >>> 0);
  }

  disassemble(code: Uint8Array, addr: number): { text: string; len: number } | null {
    const ins = new Insn();
    const f = { fetch8(n: number): number { if (n >= code.length) throw new RangeError("truncated"); return code[n]!; } };
    try {
      decode(f, this.cpu.code32, ins);
      return { text: formatInsn(ins, addr >>> 0, this.cpu.code32), len: ins.len };
    } catch (e) {
      if (e instanceof DecodeError || e instanceof RangeError) return null;
      throw e;
    }
  }
}
