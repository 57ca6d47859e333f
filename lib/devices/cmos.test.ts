import { describe, expect, test } from "bun:test";
import { Cmos, civilFromDays, daysFromCivil } from "./cmos.ts";
import { TestCtx, advance, restoreBytes, saveBytes } from "../../test/support/testctx.ts";

// 2024-02-29 23:59:58 UTC, a Thursday
const BOOT = daysFromCivil(2024, 2, 29) * 86400 + 23 * 3600 + 59 * 60 + 58;

function mk(memBytes = 128 * 1024 * 1024) {
  const ctx = new TestCtx();
  const rtc = new Cmos(ctx, { bootEpochSeconds: BOOT, memBytes });
  return { ctx, rtc };
}
const rd = (rtc: Cmos, i: number) => { rtc.ioWrite(0x70, 1, i); return rtc.ioRead(0x71, 1); };
const wr = (rtc: Cmos, i: number, v: number) => { rtc.ioWrite(0x70, 1, i); rtc.ioWrite(0x71, 1, v); };
const clock = (rtc: Cmos) => [0, 2, 4, 6, 7, 8, 9, 0x32].map((i) => rd(rtc, i));

describe("MC146818 RTC / CMOS", () => {
  test("civil date conversion", () => {
    expect(daysFromCivil(1970, 1, 1)).toBe(0);
    expect(civilFromDays(daysFromCivil(2000, 2, 29))).toEqual([2000, 2, 29]);
    expect(civilFromDays(-1)).toEqual([1969, 12, 31]);
  });

  test("BCD 24-hour time from bootEpochSeconds + virtual seconds, across a leap day", () => {
    const { ctx, rtc } = mk();
    expect(clock(rtc)).toEqual([0x58, 0x59, 0x23, 0x05, 0x29, 0x02, 0x24, 0x20]);
    ctx.t = 2.5e9;
    expect(clock(rtc)).toEqual([0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x24, 0x20]);
  });

  test("binary mode and 12-hour mode with PM bit", () => {
    const { rtc } = mk();
    wr(rtc, 0x0b, 0x06); // binary, 24h
    expect(clock(rtc)).toEqual([58, 59, 23, 5, 29, 2, 24, 20]);
    wr(rtc, 0x0b, 0x04); // binary, 12h
    expect(rd(rtc, 4)).toBe(0x80 | 11);
    wr(rtc, 0x0b, 0x00); // BCD, 12h
    expect(rd(rtc, 4)).toBe(0x80 | 0x11);
  });

  test("guest sets the time under SET; it is kept as an offset and keeps running", () => {
    const { ctx, rtc } = mk();
    ctx.t = 0.3e9;
    wr(rtc, 0x0b, 0x82); // SET, 24h, BCD
    wr(rtc, 0x00, 0x30); wr(rtc, 0x02, 0x15); wr(rtc, 0x04, 0x08);
    wr(rtc, 0x07, 0x15); wr(rtc, 0x08, 0x06); wr(rtc, 0x09, 0x99); wr(rtc, 0x32, 0x19);
    ctx.t = 5e9; // halted while SET
    expect(clock(rtc).slice(0, 3)).toEqual([0x30, 0x15, 0x08]);
    wr(rtc, 0x0b, 0x02);
    expect(clock(rtc)).toEqual([0x30, 0x15, 0x08, 0x03, 0x15, 0x06, 0x99, 0x19]); // 1999-06-15 was a Tuesday
    ctx.t = 7e9;
    expect(rd(rtc, 0)).toBe(0x32);
    // 12-hour write: 12 AM is hour 0
    wr(rtc, 0x0b, 0x00);
    wr(rtc, 0x04, 0x12);
    wr(rtc, 0x0b, 0x02);
    expect(rd(rtc, 4)).toBe(0x00);
  });

  test("day of week register is writable", () => {
    const { ctx, rtc } = mk();
    wr(rtc, 0x06, 0x02);
    expect(rd(rtc, 6)).toBe(0x02);
    ctx.t = 3e9; // next day
    expect(rd(rtc, 6)).toBe(0x03);
  });

  test("UIP is set only in the last 244 us of each virtual second", () => {
    const { ctx, rtc } = mk();
    expect(rd(rtc, 0x0a)).toBe(0x26);
    ctx.t = 1e9 - 244_001;
    expect(rd(rtc, 0x0a) & 0x80).toBe(0);
    ctx.t = 1e9 - 244_000;
    expect(rd(rtc, 0x0a) & 0x80).toBe(0x80);
    expect(rd(rtc, 0)).toBe(0x58); // update not yet done
    ctx.t = 1e9 - 1;
    expect(rd(rtc, 0x0a) & 0x80).toBe(0x80);
    ctx.t = 1e9;
    expect(rd(rtc, 0x0a) & 0x80).toBe(0);
    expect(rd(rtc, 0)).toBe(0x59);
    wr(rtc, 0x0b, 0x82);
    ctx.t = 2e9 - 1;
    expect(rd(rtc, 0x0a) & 0x80).toBe(0);
  });

  test("periodic interrupt at the register A rate on IRQ8, register C read clears", () => {
    const { ctx, rtc } = mk();
    wr(rtc, 0x0b, 0x42); // PIE
    // rate 6 = 1024 Hz: first at 976562.5 ns
    expect(rtc.nextDeadline()).toBe(976563);
    advance(ctx, rtc, 976562);
    expect(ctx.irqLevels[8]).toBe(false);
    advance(ctx, rtc, 976563);
    expect(ctx.irqLevels[8]).toBe(true);
    expect(rtc.nextDeadline()).toBe(Infinity);
    expect(rd(rtc, 0x0c)).toBe(0xc0);
    expect(ctx.irqLevels[8]).toBe(false);
    expect(rd(rtc, 0x0c)).toBe(0x00);
    let n = 0;
    for (let i = 0; i < 1000; i++) {
      advance(ctx, rtc, ctx.t + 100_000);
      if (ctx.irqLevels[8]) { n++; rd(rtc, 0x0c); }
    }
    expect(n).toBe(102); // 100 ms of 1024 Hz
    // rate 15 = 2 Hz
    wr(rtc, 0x0a, 0x2f);
    rd(rtc, 0x0c);
    ctx.clearEvents();
    advance(ctx, rtc, ctx.t + 1e9);
    expect(ctx.rises(8)).toBe(1);
  });

  test("PF is set even with PIE clear, without an interrupt", () => {
    const { ctx, rtc } = mk();
    ctx.t = 5e6;
    expect(rd(rtc, 0x0c)).toBe(0x40);
    expect(ctx.irqEvents.length).toBe(0);
  });

  test("update-ended interrupt each second; alarm with don't-care", () => {
    const { ctx, rtc } = mk();
    wr(rtc, 0x0a, 0x20); // no periodic
    wr(rtc, 0x0b, 0x12); // UIE
    advance(ctx, rtc, 0.9e9);
    expect(ctx.irqLevels[8]).toBe(false);
    advance(ctx, rtc, 1e9);
    expect(ctx.irqLevels[8]).toBe(true);
    expect(rd(rtc, 0x0c)).toBe(0x90);
    // alarm at 00:00:05 (any hour)
    wr(rtc, 0x0b, 0x22);
    wr(rtc, 0x01, 0x05); wr(rtc, 0x03, 0x00); wr(rtc, 0x05, 0xff);
    rd(rtc, 0x0c);
    ctx.clearEvents();
    advance(ctx, rtc, 6.5e9);
    expect(ctx.rises(8)).toBe(0);
    advance(ctx, rtc, 7e9); // 00:00:05
    expect(ctx.rises(8)).toBe(1);
    expect(rd(rtc, 0x0c)).toBe(0xb0);
  });

  test("SET clears UIE", () => {
    const { rtc } = mk();
    wr(rtc, 0x0b, 0x92);
    expect(rd(rtc, 0x0b)).toBe(0x82);
  });

  test("NMI mask bit in the index register", () => {
    const { rtc } = mk();
    rtc.ioWrite(0x70, 1, 0x8f);
    expect(rtc.nmiMasked).toBe(true);
    rtc.ioWrite(0x71, 1, 0x12);
    rtc.ioWrite(0x70, 1, 0x0f);
    expect(rtc.nmiMasked).toBe(false);
    expect(rtc.ioRead(0x71, 1)).toBe(0x12);
  });

  test("memory size fields, checksum, register D", () => {
    const { rtc } = mk(32 * 1024 * 1024);
    expect(rd(rtc, 0x15) | (rd(rtc, 0x16) << 8)).toBe(640);
    expect(rd(rtc, 0x17) | (rd(rtc, 0x18) << 8)).toBe(31 * 1024);
    expect(rd(rtc, 0x30) | (rd(rtc, 0x31) << 8)).toBe(31 * 1024);
    expect(rd(rtc, 0x34) | (rd(rtc, 0x35) << 8)).toBe(256);
    let sum = 0;
    for (let i = 0x10; i <= 0x2d; i++) sum += rd(rtc, i);
    expect((rd(rtc, 0x2e) << 8) | rd(rtc, 0x2f)).toBe(sum);
    expect(rd(rtc, 0x0d)).toBe(0x80);
    const big = mk(4 * 1024 * 1024 * 1024).rtc;
    expect(rd(big, 0x17) | (rd(big, 0x18) << 8)).toBe(65535);
    expect(rd(big, 0x34) | (rd(big, 0x35) << 8)).toBe(65280); // (4 GiB - 16 MiB) / 64 KiB
    const huge = mk(8 * 1024 * 1024 * 1024).rtc;
    expect(rd(huge, 0x34) | (rd(huge, 0x35) << 8)).toBe(65535);
  });

  test("save/restore round trip and continuation mid-operation", () => {
    const { ctx, rtc } = mk();
    wr(rtc, 0x0b, 0x52); // PIE+UIE
    wr(rtc, 0x40, 0xab);
    advance(ctx, rtc, 1.5e9);
    rd(rtc, 0x0c);
    wr(rtc, 0x04, 0x13);
    rtc.ioWrite(0x70, 1, 0x84);
    const b = saveBytes(rtc);
    const ctx2 = new TestCtx();
    ctx2.t = ctx.t;
    const rtc2 = new Cmos(ctx2, { bootEpochSeconds: 0, memBytes: 0 });
    restoreBytes(rtc2, b);
    expect(saveBytes(rtc2)).toEqual(b);
    const run = (c: TestCtx, r: Cmos) => {
      c.clearEvents();
      const out: number[] = [r.ioRead(0x71, 1)];
      for (let i = 0; i < 50; i++) {
        advance(c, r, c.t + 37_000_000);
        out.push(...clock(r), rd(r, 0x0c), rd(r, 0x0a));
      }
      return { out, ev: c.irqEvents };
    };
    expect(run(ctx2, rtc2)).toEqual(run(ctx, rtc));
    expect(saveBytes(rtc2)).toEqual(saveBytes(rtc));
  });
});
