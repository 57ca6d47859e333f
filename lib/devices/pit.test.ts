import { describe, expect, test } from "bun:test";
import { Pit, PIT_HZ, nsToTick, tickToNs } from "./pit.ts";
import { TestCtx, advance, restoreBytes, saveBytes } from "../../test/support/testctx.ts";

function mk() {
  const ctx = new TestCtx();
  const pit = new Pit(ctx);
  return { ctx, pit };
}
/** Set virtual time to the start of input-clock tick k (firing deadlines on the way). */
function at(ctx: TestCtx, pit: Pit, k: number) { advance(ctx, pit, tickToNs(k)); }
function latch0(pit: Pit): number {
  pit.ioWrite(0x43, 1, 0x00);
  const lo = pit.ioRead(0x40, 1);
  return lo | (pit.ioRead(0x40, 1) << 8);
}
function status(pit: Pit, ch: number): number {
  pit.ioWrite(0x43, 1, 0xe0 | (2 << ch));
  return pit.ioRead(0x40 + ch, 1);
}

describe("8254 PIT", () => {
  test("tick conversion is exact and monotone", () => {
    expect(nsToTick(1e9)).toBe(PIT_HZ);
    expect(nsToTick(tickToNs(12345))).toBe(12345);
    expect(nsToTick(tickToNs(12345) - 1)).toBe(12344);
    expect(nsToTick(3600e9 * 24 * 365)).toBe(PIT_HZ * 3600 * 24 * 365);
  });

  test("mode 2 counts down, pulses OUT low at 1, reloads, and IRQ0 rises once per period", () => {
    const { ctx, pit } = mk();
    at(ctx, pit, 1000);
    pit.ioWrite(0x43, 1, 0x34);
    pit.ioWrite(0x40, 1, 100);
    pit.ioWrite(0x40, 1, 0);
    expect(pit.out(0)).toBe(true);
    at(ctx, pit, 1001);
    expect(latch0(pit)).toBe(100);
    at(ctx, pit, 1011);
    expect(latch0(pit)).toBe(90);
    at(ctx, pit, 1001 + 99);
    expect(latch0(pit)).toBe(1);
    expect(pit.out(0)).toBe(false);
    at(ctx, pit, 1001 + 100);
    expect(latch0(pit)).toBe(100);
    expect(pit.out(0)).toBe(true);
    ctx.clearEvents();
    at(ctx, pit, 1001 + 100 + 1000);
    expect(ctx.rises(0)).toBe(10);
    // each rising edge of IRQ0 is exactly at a period boundary
    const rises = ctx.irqEvents.filter((e) => e.level).map((e) => nsToTick(e.t));
    expect(rises).toEqual([1201, 1301, 1401, 1501, 1601, 1701, 1801, 1901, 2001, 2101]);
  });

  test("a late deadline still delivers a rising edge to IRQ0", () => {
    const { ctx, pit } = mk();
    pit.ioWrite(0x43, 1, 0x34);
    pit.ioWrite(0x40, 1, 10);
    pit.ioWrite(0x40, 1, 0);
    ctx.clearEvents();
    ctx.t = tickToNs(105); // far past several deadlines, then service once
    pit.onDeadline();
    expect(ctx.rises(0)).toBe(1);
    expect(ctx.irqLevels[0]).toBe(true);
  });

  test("mode 0: OUT low on control word, high N+1 clocks after the write, counter wraps", () => {
    const { ctx, pit } = mk();
    at(ctx, pit, 50);
    pit.ioWrite(0x43, 1, 0x30);
    expect(pit.out(0)).toBe(false);
    pit.ioWrite(0x40, 1, 20);
    pit.ioWrite(0x40, 1, 0);
    at(ctx, pit, 50 + 20);
    expect(pit.out(0)).toBe(false);
    expect(latch0(pit)).toBe(1);
    at(ctx, pit, 50 + 21);
    expect(pit.out(0)).toBe(true);
    expect(ctx.irqLevels[0]).toBe(true);
    expect(nsToTick(ctx.irqEvents.at(-1)!.t)).toBe(71);
    at(ctx, pit, 50 + 23);
    expect(latch0(pit)).toBe(0xfffe);
    expect(pit.nextDeadline()).toBe(Infinity);
    // writing the first byte of a new count drives OUT low and stops counting
    pit.ioWrite(0x40, 1, 5);
    expect(pit.out(0)).toBe(false);
    expect(ctx.irqLevels[0]).toBe(false);
    at(ctx, pit, 200);
    expect(latch0(pit)).toBe(0xfffe);
    pit.ioWrite(0x40, 1, 0);
    at(ctx, pit, 206);
    expect(pit.out(0)).toBe(true);
  });

  test("LSB-only and MSB-only access modes", () => {
    const { ctx, pit } = mk();
    pit.ioWrite(0x43, 1, 0x10); // ch0 LSB only, mode 0
    pit.ioWrite(0x40, 1, 0x40);
    at(ctx, pit, 1 + 0x10);
    expect(pit.ioRead(0x40, 1)).toBe(0x30);
    expect(pit.ioRead(0x40, 1)).toBe(0x30);
    pit.ioWrite(0x43, 1, 0x20); // MSB only
    pit.ioWrite(0x40, 1, 0x02); // count 0x200
    at(ctx, pit, 17 + 1 + 0x100);
    expect(pit.ioRead(0x40, 1)).toBe(0x01);
  });

  test("counter latch holds the value while time passes; a second latch is ignored", () => {
    const { ctx, pit } = mk();
    pit.ioWrite(0x43, 1, 0x34);
    pit.ioWrite(0x40, 1, 0); pit.ioWrite(0x40, 1, 0); // 65536
    at(ctx, pit, 1001);
    pit.ioWrite(0x43, 1, 0x00);
    at(ctx, pit, 2001);
    pit.ioWrite(0x43, 1, 0x00);
    expect(pit.ioRead(0x40, 1) | (pit.ioRead(0x40, 1) << 8)).toBe(65536 - 1000);
    expect(latch0(pit)).toBe(65536 - 2000);
  });

  test("read-back: status byte (OUT, NULL COUNT, RW, mode, BCD) then count", () => {
    const { ctx, pit } = mk();
    pit.ioWrite(0x43, 1, 0xb6); // ch2, LSB/MSB, mode 3, binary
    expect(status(pit, 2)).toBe(0x40 | 0x80 | 0x30 | 0x06); // null count, OUT high
    pit.ioWrite(0x61, 1, 0x01); // gate 2 on
    pit.ioWrite(0x42, 1, 0x10);
    pit.ioWrite(0x42, 1, 0x00);
    expect(status(pit, 2) & 0x40).toBe(0x40); // not yet transferred to CE
    at(ctx, pit, 1);
    expect(status(pit, 2)).toBe(0x80 | 0x36);
    // latch status and count together: status first, then the count
    at(ctx, pit, 3);
    pit.ioWrite(0x43, 1, 0xc8);
    expect(pit.ioRead(0x42, 1)).toBe(0xb6);
    expect(pit.ioRead(0x42, 1)).toBe(12);
    expect(pit.ioRead(0x42, 1)).toBe(0);
    // mode 0 status: OUT low
    pit.ioWrite(0x43, 1, 0x71); // ch1 LSB/MSB mode 0 BCD
    expect(status(pit, 1)).toBe(0x40 | 0x31);
  });

  test("BCD counting", () => {
    const { ctx, pit } = mk();
    pit.ioWrite(0x43, 1, 0x31);
    pit.ioWrite(0x40, 1, 0x00);
    pit.ioWrite(0x40, 1, 0x01); // BCD 100
    at(ctx, pit, 1 + 11);
    expect(latch0(pit)).toBe(0x0089);
    at(ctx, pit, 1 + 101);
    expect(latch0(pit)).toBe(0x9999);
    expect(pit.out(0)).toBe(true);
    // BCD count 0 = 10000
    pit.ioWrite(0x43, 1, 0x35);
    pit.ioWrite(0x40, 1, 0); pit.ioWrite(0x40, 1, 0);
    at(ctx, pit, 102 + 1 + 1);
    expect(latch0(pit)).toBe(0x9999);
  });

  test("mode 3 square wave: even and odd counts, IRQ0 at the frequency", () => {
    const { ctx, pit } = mk();
    pit.ioWrite(0x43, 1, 0x36);
    pit.ioWrite(0x40, 1, 10); pit.ioWrite(0x40, 1, 0);
    const outs: boolean[] = [];
    for (let k = 1; k <= 20; k++) { at(ctx, pit, k); outs.push(pit.out(0)); }
    expect(outs.map((o) => (o ? 1 : 0)).join("")).toBe("11111000001111100000");
    pit.ioWrite(0x43, 1, 0x36);
    pit.ioWrite(0x40, 1, 7); pit.ioWrite(0x40, 1, 0);
    const outs2: boolean[] = [];
    for (let k = 21; k <= 34; k++) { at(ctx, pit, k); outs2.push(pit.out(0)); }
    expect(outs2.map((o) => (o ? 1 : 0)).join("")).toBe("11110001111000");
    ctx.clearEvents();
    at(ctx, pit, 34 + 7000);
    expect(ctx.rises(0)).toBe(1000);
  });

  test("mode 2: a new count takes effect at the end of the current period", () => {
    const { ctx, pit } = mk();
    pit.ioWrite(0x43, 1, 0x34);
    pit.ioWrite(0x40, 1, 100); pit.ioWrite(0x40, 1, 0);
    at(ctx, pit, 51);
    pit.ioWrite(0x40, 1, 10); pit.ioWrite(0x40, 1, 0);
    expect(status(pit, 0) & 0x40).toBe(0x40);
    at(ctx, pit, 100);
    expect(latch0(pit)).toBe(1);
    at(ctx, pit, 101);
    expect(latch0(pit)).toBe(10);
    expect(status(pit, 0) & 0x40).toBe(0);
    ctx.clearEvents();
    at(ctx, pit, 201);
    expect(ctx.rises(0)).toBe(10);
  });

  test("a count read in the same clock as its write reads as loaded (Linux's quick TSC calibration)", () => {
    // Linux: gate on, mode 0 with 0xffff on channel 2, then it reads LSB/MSB at once and needs
    // MSB 0xff (an ISA read takes longer than a CLK, so hardware never shows the old CE).
    const { ctx, pit } = mk();
    at(ctx, pit, 100);
    ctx.t += 10; // mid-clock: the load happens at the next CLK (tick 101)
    pit.ioWrite(0x61, 1, 0x01);
    pit.ioWrite(0x43, 1, 0xb0);
    pit.ioWrite(0x42, 1, 0xff); pit.ioWrite(0x42, 1, 0xff);
    expect(pit.ioRead(0x42, 1)).toBe(0xff);
    expect(pit.ioRead(0x42, 1)).toBe(0xff);
    expect(pit.ioRead(0x61, 1) & 0x20).toBe(0); // OUT still low: N+1 clocks to go
    at(ctx, pit, 101 + 256);
    expect(pit.ioRead(0x42, 1) | (pit.ioRead(0x42, 1) << 8)).toBe(0xffff - 256);
    // mode 2 from idle on channel 0: the first read before the load is the count too
    ctx.t += 5;
    pit.ioWrite(0x43, 1, 0x34);
    pit.ioWrite(0x40, 1, 0x00); pit.ioWrite(0x40, 1, 0x10);
    expect(latch0(pit)).toBe(0x1000);
  });

  test("channel 2 via port 0x61: gate, OUT2 on bit 5, mode 0 calibration loop, speaker", () => {
    const { ctx, pit } = mk();
    pit.ioWrite(0x61, 1, 0x00);
    pit.ioWrite(0x43, 1, 0xb0);
    pit.ioWrite(0x42, 1, 0xff); pit.ioWrite(0x42, 1, 0xff);
    at(ctx, pit, 10);
    expect(pit.ioRead(0x61, 1) & 0x20).toBe(0);
    pit.ioWrite(0x61, 1, 0x01); // gate on: counting starts
    at(ctx, pit, 10 + 0xffff);
    expect(pit.ioRead(0x61, 1) & 0x20).toBe(0);
    at(ctx, pit, 10 + 0xffff + 1);
    expect(pit.ioRead(0x61, 1) & 0x21).toBe(0x21);
    // gate low suspends mode 0 counting
    pit.ioWrite(0x43, 1, 0xb0);
    pit.ioWrite(0x42, 1, 0xe8); pit.ioWrite(0x42, 1, 0x03); // 1000
    const t0 = nsToTick(ctx.t);
    at(ctx, pit, t0 + 1 + 500);
    pit.ioWrite(0x61, 1, 0x00);
    pit.ioWrite(0x43, 1, 0x80);
    const held = pit.ioRead(0x42, 1) | (pit.ioRead(0x42, 1) << 8);
    expect(held).toBe(500);
    at(ctx, pit, t0 + 5000);
    pit.ioWrite(0x43, 1, 0x80);
    expect(pit.ioRead(0x42, 1) | (pit.ioRead(0x42, 1) << 8)).toBe(held);
    // gate high again: counting resumes from the held value on the next clock
    pit.ioWrite(0x61, 1, 0x01);
    at(ctx, pit, t0 + 5000 + 1 + 100);
    pit.ioWrite(0x43, 1, 0x80);
    expect(pit.ioRead(0x42, 1) | (pit.ioRead(0x42, 1) << 8)).toBe(held - 100);
    at(ctx, pit, t0 + 5000 + 1 + held);
    expect(pit.ioRead(0x61, 1) & 0x20).toBe(0x20);
    pit.ioWrite(0x61, 1, 0x00);
    // speaker tone
    pit.ioWrite(0x43, 1, 0xb6);
    pit.ioWrite(0x42, 1, 0xa9); pit.ioWrite(0x42, 1, 0x04); // 1193 -> ~1000 Hz
    pit.ioWrite(0x61, 1, 0x03);
    at(ctx, pit, t0 + 5010);
    expect(pit.speaker().on).toBe(true);
    expect(Math.round(pit.speaker().frequencyHz)).toBe(1000);
    expect(pit.ioRead(0x61, 1) & 0x0f).toBe(0x03);
  });

  test("port 0x61 bit 4 toggles every refresh period", () => {
    const { ctx, pit } = mk();
    const a = pit.ioRead(0x61, 1) & 0x10;
    ctx.t += 15085;
    const b = pit.ioRead(0x61, 1) & 0x10;
    ctx.t += 15085;
    expect(a).not.toBe(b);
    expect(pit.ioRead(0x61, 1) & 0x10).toBe(a);
  });

  test("mode 1 one-shot is triggered by the gate and retriggerable", () => {
    const { ctx, pit } = mk();
    pit.ioWrite(0x43, 1, 0xb2);
    pit.ioWrite(0x42, 1, 10); pit.ioWrite(0x42, 1, 0);
    at(ctx, pit, 20);
    expect(pit.out(2)).toBe(true);
    pit.ioWrite(0x61, 1, 1); // trigger at tick 20
    at(ctx, pit, 21);
    expect(pit.out(2)).toBe(false);
    at(ctx, pit, 25);
    pit.ioWrite(0x61, 1, 0);
    pit.ioWrite(0x61, 1, 1); // retrigger at 25
    at(ctx, pit, 35);
    expect(pit.out(2)).toBe(false);
    at(ctx, pit, 36);
    expect(pit.out(2)).toBe(true);
  });

  test("mode 4 strobes OUT low for one clock N+1 clocks after the write", () => {
    const { ctx, pit } = mk();
    pit.ioWrite(0x43, 1, 0x38);
    pit.ioWrite(0x40, 1, 5); pit.ioWrite(0x40, 1, 0);
    ctx.clearEvents();
    const outs: number[] = [];
    for (let k = 1; k <= 9; k++) { at(ctx, pit, k); outs.push(pit.out(0) ? 1 : 0); }
    expect(outs.join("")).toBe("111110111");
    expect(ctx.rises(0)).toBe(1);
  });

  test("save -> restore -> save is identical, and restore mid-count continues identically", () => {
    const { ctx, pit } = mk();
    pit.ioWrite(0x43, 1, 0x34);
    pit.ioWrite(0x40, 1, 0x9c); pit.ioWrite(0x40, 1, 0x2e);
    pit.ioWrite(0x61, 1, 0x03);
    pit.ioWrite(0x43, 1, 0xb6);
    pit.ioWrite(0x42, 1, 0x33);
    at(ctx, pit, 30000);
    pit.ioWrite(0x43, 1, 0x00); // latched, half read
    pit.ioRead(0x40, 1);
    const b = saveBytes(pit);
    const ctx2 = new TestCtx();
    ctx2.t = ctx.t;
    ctx2.irqLevels = [...ctx.irqLevels];
    const pit2 = new Pit(ctx2);
    restoreBytes(pit2, b);
    expect(saveBytes(pit2)).toEqual(b);
    const run = (c: TestCtx, p: Pit) => {
      c.clearEvents();
      const r: number[] = [p.ioRead(0x40, 1)];
      p.ioWrite(0x42, 1, 0x01);
      at(c, p, 100000);
      r.push(latch0(p), p.ioRead(0x61, 1), p.nextDeadline());
      return { r, ev: c.irqEvents };
    };
    expect(run(ctx2, pit2)).toEqual(run(ctx, pit));
    expect(saveBytes(pit2)).toEqual(saveBytes(pit));
  });
});
