import { describe, expect, test } from "bun:test";
import { DebugPorts } from "./debug.ts";
import { SysCtl } from "./sysctl.ts";
import { TestCtx, restoreBytes, saveBytes } from "../../test/support/testctx.ts";

describe("debug ports", () => {
  test("0xF4 debug-exit: status (v << 1) | 1 for sizes 1, 2, 4", () => {
    const ctx = new TestCtx();
    const d = new DebugPorts(ctx);
    d.ioWrite(0xf4, 1, 0x00);
    d.ioWrite(0xf4, 1, 0x31);
    d.ioWrite(0xf4, 2, 0x1234);
    d.ioWrite(0xf4, 4, 0x7fffffff);
    d.ioWrite(0xf4, 1, 0x1ff);
    expect(ctx.exits).toEqual([1, 0x63, 0x2469, 0xffffffff, 0x1ff]);
  });

  test("0xE9 console output and detection", () => {
    const ctx = new TestCtx();
    const d = new DebugPorts(ctx);
    for (const c of "ok\n") d.ioWrite(0xe9, 1, c.charCodeAt(0));
    expect(ctx.outputs.e9).toEqual([0x6f, 0x6b, 0x0a]);
    expect(d.ioRead(0xe9, 1)).toBe(0xe9);
    expect(saveBytes(d).length).toBe(0);
  });
});

describe("system control ports", () => {
  test("0x92 A20 and fast reset", () => {
    const ctx = new TestCtx();
    const s = new SysCtl(ctx);
    expect(s.ioRead(0x92, 1)).toBe(0x00);
    s.ioWrite(0x92, 1, 0x02);
    expect(ctx.a20).toBe(true);
    expect(s.ioRead(0x92, 1)).toBe(0x02);
    expect(ctx.resets).toBe(0);
    s.ioWrite(0x92, 1, 0x03);
    expect(ctx.resets).toBe(1);
    s.ioWrite(0x92, 1, 0x01); // bit 0 still set: no new transition
    expect(ctx.resets).toBe(1);
    expect(ctx.a20).toBe(false);
  });

  test("0xCF9 reset control", () => {
    const ctx = new TestCtx();
    const s = new SysCtl(ctx);
    s.ioWrite(0xcf9, 1, 0x02);
    expect(ctx.resets).toBe(0);
    expect(s.ioRead(0xcf9, 1)).toBe(0x02);
    s.ioWrite(0xcf9, 1, 0x06);
    expect(ctx.resets).toBe(1);
  });

  test("save/restore", () => {
    const ctx = new TestCtx();
    const s = new SysCtl(ctx);
    s.ioWrite(0x92, 1, 0x41);
    s.ioWrite(0xcf9, 1, 0x08);
    const b = saveBytes(s);
    const s2 = new SysCtl(ctx);
    restoreBytes(s2, b);
    expect(saveBytes(s2)).toEqual(b);
    s.ioWrite(0x92, 1, 0x01); s2.ioWrite(0x92, 1, 0x01);
    expect(ctx.resets).toBe(1);
  });
});
