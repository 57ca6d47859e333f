/**
 * The native difftest's trace comparison leaves out the arithmetic flags pushed by a trap
 * between two iterations of REPE/REPNE CMPS/SCAS (undefined by both vendors' manuals; Intel and
 * AMD hosts differ), and only those: host-independent checks on made-up traces.
 */
import { describe, expect, test } from "bun:test";
import { compareTrace, isRepCmpStr, CODE_BASE, type GenCase } from "./difftest.ts";

function fakeCase(code: number[]): GenCase {
  const c = new Uint8Array(code);
  // one instruction at offset 0, then the end
  return { prog: { code: c, offsets: [0], undefBefore: [0], undefFlags: 0 } as unknown as GenCase["prog"], code: c, regs: [], eflags: 0x202, dataAddr: 0, data: new Uint8Array() };
}
const rec = (eip: number, ecx: number, fl: number) => [eip, 0, ecx, 0, 0, 0, 0, 0, 0, fl];

describe("difftest: flags between REP CMPS/SCAS iterations", () => {
  test("recognises REPcc CMPS/SCAS with prefixes, and nothing else", () => {
    expect(isRepCmpStr(new Uint8Array([0xf2, 0xa6]), 0)).toBe(true);
    expect(isRepCmpStr(new Uint8Array([0x66, 0xf3, 0xaf]), 0)).toBe(true);
    expect(isRepCmpStr(new Uint8Array([0xf3, 0x2e, 0xa7]), 0)).toBe(true);
    expect(isRepCmpStr(new Uint8Array([0xa6]), 0)).toBe(false); // no REP
    expect(isRepCmpStr(new Uint8Array([0xf3, 0xa4]), 0)).toBe(false); // REP MOVS
    expect(isRepCmpStr(new Uint8Array([0xf3, 0xab]), 0)).toBe(false); // REP STOS
  });

  test("a mid-iteration trap's arithmetic flags are not compared; DF and the final flags are", () => {
    const c = fakeCase([0xf2, 0xae]); // repne scasb
    const start = rec(CODE_BASE, 3, 0x0);
    // Intel: pre-instruction flags (OF PF); AMD/rrx: the comparison's (SF PF)
    const nat = [start, rec(CODE_BASE, 2, 0x804), rec(CODE_BASE + 2, 0, 0x44)];
    const emu = [start, rec(CODE_BASE, 2, 0x084), rec(CODE_BASE + 2, 0, 0x44)];
    expect(compareTrace(c, nat, emu)).toBeNull();
    // DF is still compared at that step
    expect(compareTrace(c, nat, [start, rec(CODE_BASE, 2, 0x484), emu[2]!])).toContain("DF");
    // the flags after the last iteration are compared
    expect(compareTrace(c, nat, [start, emu[1]!, rec(CODE_BASE + 2, 0, 0x45)])).toContain("CF");
  });

  test("the same difference after a REP MOVS step is reported", () => {
    const c = fakeCase([0xf3, 0xa4]); // rep movsb
    const start = rec(CODE_BASE, 3, 0x0);
    expect(compareTrace(c, [start, rec(CODE_BASE, 2, 0x804)], [start, rec(CODE_BASE, 2, 0x084)])).toContain("SF OF differ");
  });
});
