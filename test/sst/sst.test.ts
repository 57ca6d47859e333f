/**
 * The SingleStepTests 80286 real-mode sample (fixtures/sst) on rrx's i686 model: every test
 * that is not excluded (exclusions.ts) must end with the 286's registers and RAM, flags the
 * SDM leaves undefined masked; every excluded test with an SDM-given i686 outcome must have it.
 * The full suite runs with `bun test/sst/soak.ts` (test/sst/README.md).
 */
import { describe, expect, test } from "bun:test";
import { gunzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { parseMoo, stripTest, writeMoo, REG_NAMES } from "./moo.ts";
import { SstRunner, describe as describeTest, newStats, tally, type FormStats } from "./runner.ts";
import { classify, decode, EXCLUDE } from "./exclusions.ts";

const SAMPLE = new URL("../../fixtures/sst/80286-sample.moo.gz", import.meta.url).pathname;
const file = parseMoo(new Uint8Array(gunzipSync(readFileSync(SAMPLE))), SAMPLE);

describe("SingleStepTests 80286 sample", () => {
  test("the sample holds 24 tests of each of 325 forms", () => {
    expect(file.cpu).toBe("C286");
    const per = new Map<string, number>();
    for (const t of file.tests) per.set(t.form!, (per.get(t.form!) ?? 0) + 1);
    expect(per.size).toBe(325);
    for (const n of per.values()) expect(n).toBe(24);
    expect(file.count).toBe(file.tests.length);
  });

  for (const blocks of [false, true]) test(`every compared test ends in the 286's state (${blocks ? "block cache" : "single step"})`, () => {
    const runner = new SstRunner(blocks);
    const stats = new Map<string, FormStats>();
    const failures: string[] = [];
    let excluded = 0;
    for (const t of file.tests) {
      const o = runner.run(t, t.form!);
      let st = stats.get(t.form!);
      if (!st) stats.set(t.form!, (st = newStats()));
      tally(st, t, o);
      if (o.status === "fail") failures.push(`${t.form} ${describeTest(t, o)}`);
      if (o.status === "excluded") excluded++;
    }
    for (const f of failures.slice(0, 10)) console.log(f);
    expect(failures).toEqual([]);
    // Exclusions stay the exception: about 2% of the suite (mostly LOCK before a
    // non-lockable instruction).
    expect(excluded / file.tests.length).toBeLessThan(0.03);
  }, 120_000);
});

describe("MOO reader", () => {
  test("a stripped and rewritten test reads back the same", () => {
    const t = file.tests[100]!;
    const again = parseMoo(writeMoo("C286", 1, [stripTest(t, "XY")])).tests[0]!;
    expect(again.form).toBe("XY");
    expect(again.name).toBe(t.name);
    expect(again.hash).toBe(t.hash);
    expect(Array.from(again.bytes)).toEqual(Array.from(t.bytes));
    expect(Array.from(again.initial.regs)).toEqual(Array.from(t.initial.regs));
    expect(Array.from(again.final.addrs)).toEqual(Array.from(t.final.addrs));
    expect(REG_NAMES.length).toBe(14);
  });

  test("malformed input gives a one-line error", () => {
    expect(() => parseMoo(new Uint8Array([1, 2, 3]))).toThrow(/not a MOO file/);
    const good = writeMoo("C286", 1, [stripTest(file.tests[0]!, "00")]);
    expect(() => parseMoo(good.subarray(0, good.length - 5))).toThrow(/runs past the end/);
  });
});

describe("exclusions", () => {
  const t0 = file.tests.find((t) => t.form === "00")!;
  const withBytes = (b: number[]) => ({ ...t0, bytes: Uint8Array.from(b) });
  test("instruction lengths and LOCK", () => {
    expect(decode(Uint8Array.from([0x26, 0x2e, 0x81, 0x87, 0x34, 0x12, 0x78, 0x56, 0xf4])).len).toBe(8);
    // 11 bytes: #UD on a 286 (the suite), executed on 386+; 10 bytes: compared.
    expect(classify("81.0", withBytes([0x26, 0x26, 0x26, 0x26, 0x81, 0x87, 0x34, 0x12, 0x78, 0x56, 0xf4])).excluded).toBeNull();
    expect(classify("81.0", withBytes([0x26, 0x26, 0x26, 0x26, 0x26, 0x81, 0x87, 0x34, 0x12, 0x78, 0x56, 0xf4])).excluded).toBe(EXCLUDE.length);
    expect(classify("00", withBytes([0xf0, 0x00, 0x07, 0xf4])).excluded).toBeNull(); // lock add [bx],al
    expect(classify("00", withBytes([0xf0, 0x00, 0xc0, 0xf4])).excluded).toBe(EXCLUDE.lock); // register destination
    expect(classify("88", withBytes([0xf0, 0x88, 0x07, 0xf4])).excluded).toBe(EXCLUDE.lock); // MOV
  });
  test("shift flags masked by count", () => {
    // shl al,1: AF only; shl al,cl with CL=9: OF AF CF; rol al,1: nothing; rcl al,3: OF.
    expect(classify("D0.4", withBytes([0xd0, 0xe0, 0xf4])).flagMask).toBe(0x10);
    const cl9 = { ...withBytes([0xd2, 0xe0, 0xf4]), initial: { ...t0.initial, regs: Int32Array.from(t0.initial.regs).fill(9, 2, 3) } };
    expect(classify("D2.4", cl9).flagMask).toBe(0x811);
    expect(classify("D0.0", withBytes([0xd0, 0xc0, 0xf4])).flagMask).toBe(0);
    expect(classify("C0.2", withBytes([0xc0, 0xd0, 0x03, 0xf4])).flagMask).toBe(0x800);
  });
});
