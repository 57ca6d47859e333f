/**
 * The x87 model alone (lib/cpu/x86/fpu, not yet wired into the CPU): million x87 instructions
 * per second through Fpu.exec for single operations and for the inner step of an n-body-like
 * double-precision loop (FLD m64, FSUB, FMUL, FADD, FSQRT, FDIV, FSTP m64). The significands are
 * BigInts; this is the figure to watch when the arithmetic changes representation.
 */
import type { BenchCase, Metric } from "../lib/types.ts";
import { Fpu } from "../../lib/cpu/x86/fpu/fpu.ts";

function rate(f: Fpu, prog: [number, number][], mem: Uint8Array, n: number): number {
  const code = new Int32Array(prog.flat());
  const len = code.length;
  const t0 = performance.now();
  for (let k = 0; k < n; k++) for (let i = 0; i < len; i += 2) f.exec(code[i]!, code[i + 1]!, mem, 0x202);
  return (n * prog.length) / ((performance.now() - t0) / 1000) / 1e6;
}

export default {
  name: "fpu-ops",
  title: "x87 model: million instructions per second (BigInt significands)",
  order: 70,
  run(ctx) {
    const n = ctx.scale(20_000, 100_000, 300_000);
    const mem = new Uint8Array(16);
    new DataView(mem.buffer).setFloat64(0, 1.2345678901234567, true);
    const setup = (f: Fpu): void => { f.fninit(); f.fldcw(0x027f); f.exec(5, 0x03, mem, 0x202); f.exec(1, 0xeb, mem, 0x202); };
    const cases: [string, string, [number, number][]][] = [
      ["fadd", "FADD ST0,ST1 + FSUB ST0,ST1", [[0, 0xc1], [0, 0xe1]]],
      ["fmul", "FMUL ST0,ST1 + FDIVR ST0,ST1", [[0, 0xc9], [0, 0xf9]]],
      ["fdiv", "FDIV ST0,ST1 + FMUL ST0,ST1", [[0, 0xf1], [0, 0xc9]]],
      ["fsqrt", "FSQRT + FMUL ST0,ST0", [[1, 0xfa], [0, 0xc8]]],
      ["ldst", "FLD m64 + FSTP m64", [[5, 0x03], [5, 0x1b]]],
      // r = sqrt(dx*dx + dy*dy); f = m / (r*r*r); v += f*dx  (with the stack kept balanced)
      ["nbody", "n-body step (14 instructions)", [[5, 0x03], [0, 0xe1], [1, 0xc0], [0, 0xc8], [1, 0xc1], [0, 0xc8], [6, 0xc1], [1, 0xfa], [1, 0xc0], [0, 0xc8], [0, 0xc9], [6, 0xf9], [5, 0x1b], [5, 0x1b]]],
    ];
    const metrics: Metric[] = [];
    for (const [key, label, prog] of cases) {
      const f = new Fpu();
      setup(f);
      rate(f, prog, mem, Math.ceil(n / 10));
      setup(f);
      metrics.push({ key, label, value: rate(f, prog, mem, n), unit: "M/s", digits: 2 });
    }
    return { status: "ok", metrics, notes: [`${n} passes of each sequence, PC=53, RN`] };
  },
} satisfies BenchCase;
