import { describe, expect, test } from "bun:test";
import { I8042, TRANSLATE, set2ToSet1 } from "./i8042.ts";
import { TestCtx, restoreBytes, saveBytes } from "../../test/support/testctx.ts";

function mk() {
  const ctx = new TestCtx();
  const kbc = new I8042(ctx);
  return { ctx, kbc };
}
const st = (k: I8042) => k.ioRead(0x64, 1);
const cmd = (k: I8042, c: number) => k.ioWrite(0x64, 1, c);
const put = (k: I8042, v: number) => k.ioWrite(0x60, 1, v);
/** Read every byte waiting in the output buffer. */
function drain(k: I8042): number[] {
  const out: number[] = [];
  while (st(k) & 1) out.push(k.ioRead(0x60, 1));
  return out;
}
function drainAux(k: I8042): Array<[number, boolean]> {
  const out: Array<[number, boolean]> = [];
  for (let s = st(k); s & 1; s = st(k)) out.push([k.ioRead(0x60, 1), (s & 0x20) !== 0]);
  return out;
}

describe("8042 keyboard controller", () => {
  test("translation table spot checks", () => {
    expect(TRANSLATE[0x1c]).toBe(0x1e); // A
    expect(TRANSLATE[0x76]).toBe(0x01); // Esc
    expect(TRANSLATE[0x5a]).toBe(0x1c); // Enter
    expect(TRANSLATE[0x29]).toBe(0x39); // Space
    expect(TRANSLATE[0x83]).toBe(0x41); // F7
    expect(TRANSLATE[0xe0]).toBe(0xe0);
    expect(set2ToSet1([0xe0, 0xf0, 0x75])).toEqual([0xe0, 0xc8]);
  });

  test("set-2 scancodes are translated to set 1 (0x1C -> 0x1E, F0 1C -> 0x9E) with IRQ1", () => {
    const { ctx, kbc } = mk();
    kbc.keyScancode([0x1c]);
    expect(st(kbc) & 0x21).toBe(0x01);
    expect(ctx.irqLevels[1]).toBe(true);
    expect(kbc.ioRead(0x60, 1)).toBe(0x1e);
    expect(ctx.irqLevels[1]).toBe(false);
    kbc.keyScancode([0xf0, 0x1c]);
    expect(drain(kbc)).toEqual([0x9e]);
    kbc.keyScancode([0xe0, 0x75]); // up arrow
    kbc.keyScancode([0xe0, 0xf0, 0x75]);
    expect(drain(kbc)).toEqual([0xe0, 0x48, 0xe0, 0xc8]);
  });

  test("one byte at a time: each read gives a new IRQ1 edge", () => {
    const { ctx, kbc } = mk();
    kbc.keyScancode([0x1c]);
    kbc.keyScancode([0x32]);
    kbc.ioRead(0x60, 1);
    kbc.ioRead(0x60, 1);
    expect(ctx.rises(1)).toBe(2);
  });

  test("translation off passes set 2 through", () => {
    const { kbc } = mk();
    cmd(kbc, 0x20);
    const cb = drain(kbc)[0]!;
    expect(cb & 0x40).toBe(0x40);
    cmd(kbc, 0x60); put(kbc, cb & ~0x40);
    kbc.keyScancode([0xf0, 0x1c]);
    expect(drain(kbc)).toEqual([0xf0, 0x1c]);
  });

  test("controller self tests, command byte, status bits", () => {
    const { ctx, kbc } = mk();
    cmd(kbc, 0xaa);
    expect(st(kbc) & 0x0d).toBe(0x0d); // OBF, SYS, last write was a command
    expect(drain(kbc)).toEqual([0x55]);
    cmd(kbc, 0xab); expect(drain(kbc)).toEqual([0x00]);
    cmd(kbc, 0xa9); expect(drain(kbc)).toEqual([0x00]);
    cmd(kbc, 0x60); put(kbc, 0x00); // no IRQs, SYS clear
    expect(st(kbc) & 0x0c).toBe(0x00);
    cmd(kbc, 0x20); expect(drain(kbc)).toEqual([0x00]);
    ctx.clearEvents();
    kbc.keyScancode([0x1c]);
    expect(ctx.irqEvents.length).toBe(0);
    expect(drain(kbc)).toEqual([0x1c]); // translation was switched off too
  });

  test("0xAD/0xAE disable and enable the keyboard; data is held meanwhile", () => {
    const { kbc } = mk();
    cmd(kbc, 0xad);
    kbc.keyScancode([0x1c]);
    expect(st(kbc) & 1).toBe(0);
    cmd(kbc, 0xae);
    expect(drain(kbc)).toEqual([0x1e]);
    cmd(kbc, 0xa7);
    cmd(kbc, 0x20);
    expect(drain(kbc)[0]! & 0x30).toBe(0x20);
    cmd(kbc, 0xa8);
    cmd(kbc, 0x20);
    expect(drain(kbc)[0]! & 0x30).toBe(0x00);
  });

  test("output port: A20 and reset; 0xFE pulses reset", () => {
    const { ctx, kbc } = mk();
    cmd(kbc, 0xd1); put(kbc, 0xdf);
    expect(ctx.a20).toBe(true);
    expect(ctx.resets).toBe(0);
    cmd(kbc, 0xd0);
    expect(drain(kbc)).toEqual([0xcf]);
    cmd(kbc, 0xd1); put(kbc, 0xdd);
    expect(ctx.a20).toBe(false);
    cmd(kbc, 0xd1); put(kbc, 0xde);
    expect(ctx.resets).toBe(1);
    cmd(kbc, 0xfe);
    expect(ctx.resets).toBe(2);
    cmd(kbc, 0xff);
    expect(ctx.resets).toBe(2);
  });

  test("0xD2/0xD3 write the output buffer as keyboard / aux data", () => {
    const { ctx, kbc } = mk();
    cmd(kbc, 0xd2); put(kbc, 0x12);
    expect(ctx.irqLevels[1]).toBe(true);
    expect(drainAux(kbc)).toEqual([[0x12, false]]);
    cmd(kbc, 0xd3); put(kbc, 0x34);
    expect(ctx.irqLevels[12]).toBe(true);
    expect(drainAux(kbc)).toEqual([[0x34, true]]);
  });

  test("keyboard commands: reset, identify, scancode set, LEDs, typematic, disable", () => {
    const { kbc } = mk();
    put(kbc, 0xff);
    expect(drain(kbc)).toEqual([0xfa, 0xaa]);
    put(kbc, 0xf2);
    expect(drain(kbc)).toEqual([0xfa, 0xab, 0x41]); // 0x83 translated
    put(kbc, 0xed); expect(drain(kbc)).toEqual([0xfa]);
    put(kbc, 0x04); expect(drain(kbc)).toEqual([0xfa]);
    expect(kbc.leds()).toBe(4);
    put(kbc, 0xf3); put(kbc, 0x00);
    expect(drain(kbc)).toEqual([0xfa, 0xfa]);
    put(kbc, 0xf0); put(kbc, 0x00);
    expect(drain(kbc)).toEqual([0xfa, 0xfa, 0x41]); // set 2, translated
    put(kbc, 0xee); expect(drain(kbc)).toEqual([0xee]);
    put(kbc, 0xf5); expect(drain(kbc)).toEqual([0xfa]);
    expect(kbc.keyScancode([0x1c])).toBe(false);
    put(kbc, 0xf4); expect(drain(kbc)).toEqual([0xfa]);
    expect(kbc.keyScancode([0x1c])).toBe(true);
    expect(drain(kbc)).toEqual([0x1e]);
    // set 1 in the keyboard, translation off
    cmd(kbc, 0x60); put(kbc, 0x07);
    put(kbc, 0xf0); put(kbc, 0x01);
    expect(drain(kbc)).toEqual([0xfa, 0xfa]);
    kbc.keyScancode([0xf0, 0x1c]);
    expect(drain(kbc)).toEqual([0x9e]);
    put(kbc, 0x12); // unknown -> resend
    expect(drain(kbc)).toEqual([0xfe]);
  });

  test("mouse: reset, id, enable streaming, packets with sign and overflow on IRQ12", () => {
    const { ctx, kbc } = mk();
    const aux = (v: number) => { cmd(kbc, 0xd4); put(kbc, v); };
    aux(0xff);
    expect(drainAux(kbc)).toEqual([[0xfa, true], [0xaa, true], [0x00, true]]);
    aux(0xf2);
    expect(drainAux(kbc).map((x) => x[0])).toEqual([0xfa, 0x00]);
    expect(kbc.mouseMove(5, 5, 0)).toBe(false); // not streaming yet
    aux(0xf3); aux(200);
    aux(0xe8); aux(3);
    aux(0xe7);
    aux(0xe9);
    expect(drainAux(kbc).map((x) => x[0])).toEqual([0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0x10, 3, 200]);
    aux(0xe6);
    aux(0xf4);
    drainAux(kbc);
    ctx.clearEvents();
    expect(kbc.mouseMove(10, -3, 1)).toBe(true);
    expect(ctx.irqLevels[12]).toBe(true);
    expect(drainAux(kbc)).toEqual([[0x29, true], [10, true], [0xfd, true]]);
    expect(ctx.rises(12)).toBe(3);
    kbc.mouseMove(-300, 400, 6);
    expect(drainAux(kbc).map((x) => x[0])).toEqual([0x08 | 0x06 | 0x10 | 0x40 | 0x80, 0x00, 0xff]);
    aux(0xf5);
    drainAux(kbc);
    expect(kbc.mouseMove(1, 1, 0)).toBe(false);
    // wrap mode echoes
    aux(0xee); aux(0x42); aux(0xec);
    expect(drainAux(kbc).map((x) => x[0])).toEqual([0xfa, 0x42, 0xfa]);
  });

  test("keyboard data has priority over queued mouse data", () => {
    const { kbc } = mk();
    cmd(kbc, 0xd4); put(kbc, 0xf4);
    expect(drainAux(kbc)).toEqual([[0xfa, true]]);
    kbc.mouseMove(1, 1, 0);
    kbc.keyScancode([0x1c]);
    expect(drainAux(kbc).map((x) => x[1])).toEqual([true, false, true, true]);
  });

  test("save/restore round trip and identical continuation", () => {
    const { ctx, kbc } = mk();
    cmd(kbc, 0xd4); put(kbc, 0xf4);
    kbc.keyScancode([0x1c]);
    kbc.keyScancode([0xf0]); // half an event (break pending in the translator)
    kbc.mouseMove(3, 4, 2);
    kbc.ioRead(0x60, 1);
    cmd(kbc, 0x60); // pending controller command
    const b = saveBytes(kbc);
    const ctx2 = new TestCtx();
    ctx2.irqLevels = [...ctx.irqLevels];
    const k2 = new I8042(ctx2);
    restoreBytes(k2, b);
    expect(saveBytes(k2)).toEqual(b);
    const run = (c: TestCtx, k: I8042) => {
      c.clearEvents();
      put(k, 0x47);
      k.keyScancode([0x1c]);
      return { out: drainAux(k), ev: c.irqEvents };
    };
    expect(run(ctx2, k2)).toEqual(run(ctx, kbc));
    expect(saveBytes(k2)).toEqual(saveBytes(kbc));
  });
});
