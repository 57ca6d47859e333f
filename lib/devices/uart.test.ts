import { describe, expect, test } from "bun:test";
import { Uart } from "./uart.ts";
import { TestCtx, advance, restoreBytes, saveBytes } from "../../test/support/testctx.ts";

const B = 0x3f8;
function mk() {
  const ctx = new TestCtx();
  const u = new Uart(ctx, { base: B, irq: 4, name: "com1" });
  return { ctx, u };
}
const r = (u: Uart, off: number) => u.ioRead(B + off, 1);
const w = (u: Uart, off: number, v: number) => u.ioWrite(B + off, 1, v);
/** 115200 8N1 (10 bits at 8680.55 ns) */
const CHAR = Math.floor((10 * 16 * 1e9) / 1843200);

describe("16550A UART", () => {
  test("divisor latch and register read-back", () => {
    const { u } = mk();
    w(u, 3, 0x80);
    w(u, 0, 0x0c); w(u, 1, 0x00);
    expect(r(u, 0)).toBe(0x0c);
    expect(r(u, 1)).toBe(0x00);
    w(u, 3, 0x03);
    expect(u.divisor).toBe(12);
    w(u, 7, 0x5a);
    expect(r(u, 7)).toBe(0x5a);
    w(u, 1, 0xff);
    expect(r(u, 1)).toBe(0x0f);
    expect(r(u, 5)).toBe(0x60);
    expect(r(u, 6)).toBe(0xb0);
  });

  test("character time from divisor and LCR", () => {
    const { u } = mk();
    w(u, 3, 0x80); w(u, 0, 12); w(u, 1, 0); w(u, 3, 0x03); // 9600 8N1
    expect(u.charNs()).toBe(Math.floor((10 * 12 * 16 * 1e9) / 1843200));
    w(u, 3, 0x80 | 0x1f); w(u, 3, 0x1f); // 8E2 -> 12 bits
    expect(u.charNs()).toBe(Math.floor((12 * 12 * 16 * 1e9) / 1843200));
    w(u, 3, 0x04); // 5 bits, 1.5 stop
    expect(u.charNs()).toBe(Math.floor((7.5 * 12 * 16 * 1e9) / 1843200));
  });

  test("a THR byte is output after one character time; LSR THRE/TEMT track it", () => {
    const { ctx, u } = mk();
    w(u, 0, 0x41);
    expect(r(u, 5) & 0x60).toBe(0x20); // THR empty, shifter busy
    w(u, 0, 0x42);
    expect(r(u, 5) & 0x60).toBe(0x00);
    expect(u.nextDeadline()).toBe(CHAR);
    advance(ctx, u, CHAR - 1);
    expect(ctx.outputs.com1).toBeUndefined();
    advance(ctx, u, CHAR);
    expect(ctx.outputs.com1).toEqual([0x41]);
    advance(ctx, u, 2 * CHAR);
    expect(ctx.outputs.com1).toEqual([0x41, 0x42]);
    expect(r(u, 5) & 0x60).toBe(0x60);
    expect(u.nextDeadline()).toBe(Infinity);
  });

  test("TX FIFO holds 16 bytes and drains at line rate", () => {
    const { ctx, u } = mk();
    w(u, 2, 0x07);
    for (let i = 0; i < 20; i++) w(u, 0, i);
    advance(ctx, u, 100 * CHAR);
    expect(ctx.outputs.com1).toEqual([...Array(17).keys()]); // 1 in shifter + 16 in FIFO
  });

  test("THRE interrupt: raised when THR empties, cleared by IIR read or THR write; needs OUT2", () => {
    const { ctx, u } = mk();
    w(u, 1, 0x02); // ETBEI while THR empty -> THRE pending
    expect(r(u, 2)).toBe(0x02);
    expect(r(u, 2)).toBe(0x01); // cleared by the IIR read
    expect(ctx.irqEvents.length).toBe(0); // OUT2 clear
    w(u, 4, 0x08);
    w(u, 0, 0x31); // goes straight to the shifter: THR empty again -> THRE
    expect(ctx.irqLevels[4]).toBe(true);
    w(u, 0, 0x32); // THR write clears it
    expect(ctx.irqLevels[4]).toBe(false);
    expect(r(u, 2)).toBe(0x01);
    advance(ctx, u, CHAR); // 0x32 moves to the shifter
    expect(ctx.irqLevels[4]).toBe(true);
    expect(r(u, 2)).toBe(0x02);
    expect(ctx.irqLevels[4]).toBe(false);
  });

  test("RX FIFO trigger level, character timeout, IIR priorities", () => {
    const { ctx, u } = mk();
    w(u, 2, 0x81); // FIFO, trigger 8
    w(u, 1, 0x01);
    w(u, 4, 0x08);
    for (let i = 0; i < 7; i++) u.receive(0x61 + i);
    expect(r(u, 2)).toBe(0xc1);
    expect(r(u, 5) & 1).toBe(1);
    u.receive(0x68);
    expect(r(u, 2)).toBe(0xc4); // RDA at 8
    expect(ctx.irqLevels[4]).toBe(true);
    for (let i = 0; i < 2; i++) r(u, 0);
    expect(r(u, 2)).toBe(0xc1); // 6 left: below trigger, no timeout yet
    expect(ctx.irqLevels[4]).toBe(false);
    const deadline = u.nextDeadline();
    expect(deadline).toBe(ctx.t + 4 * CHAR);
    advance(ctx, u, deadline - 1);
    expect(ctx.irqLevels[4]).toBe(false);
    advance(ctx, u, deadline);
    expect(ctx.irqLevels[4]).toBe(true);
    expect(r(u, 2)).toBe(0xcc); // character timeout
    expect(r(u, 0)).toBe(0x63); // reading resets the timer
    expect(r(u, 2)).toBe(0xc1);
    // line status (overrun) outranks RX data
    w(u, 1, 0x07);
    for (let i = 0; i < 20; i++) u.receive(i);
    expect(r(u, 2)).toBe(0xc6);
    expect(r(u, 5) & 0x02).toBe(0x02);
    expect(r(u, 5) & 0x02).toBe(0); // cleared by the read
    expect(r(u, 2)).toBe(0xc4);
    for (let i = 0; i < 16; i++) r(u, 0);
    expect(r(u, 2)).toBe(0xc2); // THRE is next
    expect(r(u, 2)).toBe(0xc1);
  });

  test("modem status interrupt is lowest priority, MSR deltas cleared by read", () => {
    const { u } = mk();
    w(u, 1, 0x0a);
    u.setModemInputs(false, true, true, true);
    expect(r(u, 2)).toBe(0x02); // THRE outranks modem status
    expect(r(u, 2)).toBe(0x00);
    expect(r(u, 6)).toBe(0xe1);
    expect(r(u, 2)).toBe(0x01);
    u.setModemInputs(false, true, false, true);
    expect(r(u, 6)).toBe(0xa4); // trailing edge of RI
  });

  test("non-FIFO mode: one-byte RBR, overrun on the second byte", () => {
    const { u } = mk();
    expect(u.canReceive()).toBe(true);
    expect(u.receive(1)).toBe(true);
    expect(u.canReceive()).toBe(false);
    expect(u.receive(2)).toBe(false);
    expect(r(u, 5) & 0x03).toBe(0x03);
    expect(r(u, 0)).toBe(1);
    expect(r(u, 5) & 0x03).toBe(0x00);
  });

  test("input flow control: the far end may send only while RTS is asserted and there is room", () => {
    const { u } = mk();
    expect(u.canReceive()).toBe(true);
    expect(u.readyForInput()).toBe(false); // RTS off at power-on
    w(u, 4, 0x01); // DTR only (Linux's console before a program opens the port)
    expect(u.readyForInput()).toBe(false);
    w(u, 4, 0x0b); // DTR, RTS, OUT2
    expect(u.readyForInput()).toBe(true);
    expect(u.receive(7)).toBe(true);
    expect(u.readyForInput()).toBe(false); // the one-byte RBR is full
    expect(r(u, 0)).toBe(7);
    expect(u.readyForInput()).toBe(true);
    w(u, 4, 0x1b); // loopback: the RX input is disconnected
    expect(u.readyForInput()).toBe(false);
  });

  test("loopback: TX goes to RX after a character time, modem lines looped, no output", () => {
    const { ctx, u } = mk();
    w(u, 2, 0x01);
    w(u, 4, 0x10 | 0x0b); // loop, OUT2, RTS, DTR
    expect(r(u, 6) & 0xf0).toBe(0xb0); // DCD=OUT2, CTS=RTS, DSR=DTR
    expect(u.canReceive()).toBe(false);
    w(u, 0, 0x55);
    advance(ctx, u, CHAR);
    expect(ctx.outputs.com1).toBeUndefined();
    expect(r(u, 5) & 1).toBe(1);
    expect(r(u, 0)).toBe(0x55);
    w(u, 4, 0x14);
    expect(r(u, 6)).toBe(0x4b); // RI=OUT1; CTS, DSR, DCD dropped (deltas), RI rose (no TERI)
  });

  test("FCR clears FIFOs", () => {
    const { u } = mk();
    w(u, 2, 0x01);
    u.receive(1); u.receive(2);
    w(u, 2, 0x03);
    expect(r(u, 5) & 1).toBe(0);
  });

  test("save/restore round trip and identical continuation mid-transfer", () => {
    const { ctx, u } = mk();
    w(u, 2, 0x41);
    w(u, 1, 0x03);
    w(u, 4, 0x0b);
    for (let i = 0; i < 5; i++) w(u, 0, 0x30 + i);
    u.receive(0x10); u.receive(0x11);
    advance(ctx, u, 2.5 * CHAR);
    const b = saveBytes(u);
    const ctx2 = new TestCtx();
    ctx2.t = ctx.t;
    const u2 = new Uart(ctx2, { base: B, irq: 4, name: "com1" });
    restoreBytes(u2, b);
    expect(saveBytes(u2)).toEqual(b);
    const run = (c: TestCtx, x: Uart) => {
      c.clearEvents();
      c.outputs = {};
      const out: number[] = [];
      for (let i = 0; i < 20; i++) {
        advance(c, x, c.t + CHAR / 3);
        out.push(x.ioRead(B + 2, 1), x.ioRead(B + 5, 1));
        if (i === 7) x.receive(0x99);
      }
      out.push(x.ioRead(B, 1));
      return { out, ev: c.irqEvents, o: c.outputs };
    };
    expect(run(ctx2, u2)).toEqual(run(ctx, u));
    expect(saveBytes(u2)).toEqual(saveBytes(u));
  });
});

describe("16550A UART sending at once (instantTx, the PC board from version 2)", () => {
  function mkI() {
    const ctx = new TestCtx();
    const u = new Uart(ctx, { base: B, irq: 4, name: "com1", instantTx: true });
    return { ctx, u };
  }

  test("a THR byte is output as it is written; THR and the shifter stay empty; no deadline", () => {
    const { ctx, u } = mkI();
    for (const b of [0x41, 0x42, 0x43]) {
      w(u, 0, b);
      expect(r(u, 5) & 0x60).toBe(0x60); // THRE and TEMT: nothing waits to be sent
    }
    expect(ctx.outputs.com1).toEqual([0x41, 0x42, 0x43]);
    expect(u.nextDeadline()).toBe(Infinity);
    expect(u.pendingTx()).toEqual([]);
    // FIFO mode: same, at any divisor
    w(u, 2, 0x01);
    w(u, 3, 0x80); w(u, 0, 12); w(u, 1, 0); w(u, 3, 0x03);
    for (let i = 0; i < 40; i++) w(u, 0, 0x30 + (i % 10));
    expect(ctx.outputs.com1!.length).toBe(43);
    expect(r(u, 5) & 0x60).toBe(0x60);
  });

  test("THRE interrupt: a write clears it and the byte leaving raises it again at once", () => {
    const { ctx, u } = mkI();
    w(u, 4, 0x08); // OUT2
    w(u, 1, 0x02); // ETBEI
    expect(ctx.irqLevels[4]).toBe(true);
    expect(r(u, 2)).toBe(0x02); // THRE, and the read clears it
    expect(ctx.irqLevels[4]).toBe(false);
    ctx.clearEvents();
    w(u, 0, 0x41);
    expect(ctx.outputs.com1).toEqual([0x41]);
    expect(ctx.irqLevels[4]).toBe(true); // THR is empty again
    expect(r(u, 2)).toBe(0x02);
    expect(ctx.irqLevels[4]).toBe(false);
  });

  test("loopback: the byte is received at once, not output; reception keeps its timeout", () => {
    const { ctx, u } = mkI();
    w(u, 2, 0x01);
    w(u, 4, 0x10 | 0x0b);
    w(u, 0, 0x55);
    expect(ctx.outputs.com1).toBeUndefined();
    expect(r(u, 5) & 0x61).toBe(0x61);
    w(u, 1, 0x01); // RDI at the FIFO trigger of 1: the byte is there now
    expect(r(u, 2) & 0x0f).toBe(0x04);
    expect(r(u, 0)).toBe(0x55);
  });

  test("the same writes at line rate give the same bytes, later", () => {
    const a = mkI(), b = mk();
    for (const x of [a, b]) for (const v of [0x68, 0x69, 0x0a]) {
      while ((r(x.u, 5) & 0x20) === 0) advance(x.ctx, x.u, x.ctx.now() + 1000); // a driver's polling wait
      w(x.u, 0, v);
    }
    advance(b.ctx, b.u, 10 * CHAR);
    expect(a.ctx.outputs.com1).toEqual([0x68, 0x69, 0x0a]);
    expect(b.ctx.outputs.com1).toEqual([0x68, 0x69, 0x0a]);
    expect(a.ctx.now()).toBe(0);
    expect(b.ctx.now()).toBeGreaterThan(0);
  });
});
