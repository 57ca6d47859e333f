import { describe, expect, test } from "bun:test";
import { Pic } from "./pic.ts";
import { TestCtx, restoreBytes, saveBytes } from "../../test/support/testctx.ts";

/** Program the pair the way Linux does: master 0x20, slave 0x28, 8086 mode. */
function initPair(pic: Pic, icw4 = 0x01, ltim = false): void {
  const l = ltim ? 0x08 : 0;
  pic.ioWrite(0x20, 1, 0x11 | l); pic.ioWrite(0x21, 1, 0x20); pic.ioWrite(0x21, 1, 0x04); pic.ioWrite(0x21, 1, icw4);
  pic.ioWrite(0xa0, 1, 0x11 | l); pic.ioWrite(0xa1, 1, 0x28); pic.ioWrite(0xa1, 1, 0x02); pic.ioWrite(0xa1, 1, icw4);
  pic.ioWrite(0x21, 1, 0x00);
  pic.ioWrite(0xa1, 1, 0x00);
}

function mk(opts = {}) {
  const ctx = new TestCtx();
  const changes: boolean[] = [];
  const pic = new Pic(ctx, { onIntrChange: (l) => changes.push(l), ...opts });
  return { ctx, pic, changes };
}

const pulse = (pic: Pic, irq: number) => { pic.setIrq(irq, true); pic.setIrq(irq, false); };
const EOI = (pic: Pic, port = 0x20) => pic.ioWrite(port, 1, 0x20);

describe("8259A pair", () => {
  test("BIOS power-on state: vectors 0x08/0x70, all masked except cascade", () => {
    const { pic } = mk();
    expect(pic.ioRead(0x21, 1)).toBe(0xfb);
    expect(pic.ioRead(0xa1, 1)).toBe(0xff);
    pic.ioWrite(0x21, 1, 0xfa);
    pulse(pic, 0);
    expect(pic.acknowledge()).toBe(0x08);
  });

  test("ICW sequence, vector and INTR callback", () => {
    const { pic, changes } = mk();
    initPair(pic);
    expect(pic.hasInterrupt()).toBe(false);
    pulse(pic, 1);
    expect(pic.hasInterrupt()).toBe(true);
    expect(changes).toEqual([true]);
    expect(pic.ioRead(0x20, 1)).toBe(0x02); // IRR
    expect(pic.acknowledge()).toBe(0x21);
    expect(pic.hasInterrupt()).toBe(false);
    expect(changes).toEqual([true, false]);
    pic.ioWrite(0x20, 1, 0x0b); // OCW3 read ISR
    expect(pic.ioRead(0x20, 1)).toBe(0x02);
    expect(pic.ioRead(0x20, 1)).toBe(0x02);
    EOI(pic);
    expect(pic.ioRead(0x20, 1)).toBe(0x00);
    pic.ioWrite(0x20, 1, 0x0a); // back to IRR
    expect(pic.ioRead(0x20, 1)).toBe(0x00);
  });

  test("fixed priority: lower IRQ number first; higher priority nests, lower waits", () => {
    const { pic } = mk();
    initPair(pic);
    pulse(pic, 4);
    pulse(pic, 3);
    expect(pic.acknowledge()).toBe(0x23);
    expect(pic.hasInterrupt()).toBe(false); // IRQ4 blocked by IRQ3 in service
    pulse(pic, 1);
    expect(pic.hasInterrupt()).toBe(true); // IRQ1 higher priority nests
    expect(pic.acknowledge()).toBe(0x21);
    EOI(pic); // non-specific EOI clears the highest (IRQ1)
    pic.ioWrite(0x20, 1, 0x0b);
    expect(pic.ioRead(0x20, 1)).toBe(0x08);
    expect(pic.hasInterrupt()).toBe(false);
    EOI(pic);
    expect(pic.acknowledge()).toBe(0x24);
  });

  test("specific EOI and masking", () => {
    const { pic } = mk();
    initPair(pic);
    pic.ioWrite(0x21, 1, 0x01);
    pulse(pic, 0);
    expect(pic.hasInterrupt()).toBe(false);
    expect(pic.ioRead(0x20, 1)).toBe(0x01); // IRR set even though masked
    pic.ioWrite(0x21, 1, 0x00);
    expect(pic.acknowledge()).toBe(0x20);
    pic.ioWrite(0x20, 1, 0x65); // specific EOI for IR5: not in service, nothing happens
    pic.ioWrite(0x20, 1, 0x0b);
    expect(pic.ioRead(0x20, 1)).toBe(0x01);
    pic.ioWrite(0x20, 1, 0x60); // specific EOI IR0
    expect(pic.ioRead(0x20, 1)).toBe(0x00);
  });

  test("rotate on non-specific EOI makes the serviced input lowest priority", () => {
    const { pic } = mk();
    initPair(pic);
    pulse(pic, 0);
    expect(pic.acknowledge()).toBe(0x20);
    pic.ioWrite(0x20, 1, 0xa0); // rotate on non-specific EOI -> IR0 lowest, IR1 highest
    pulse(pic, 0);
    pulse(pic, 5);
    expect(pic.acknowledge()).toBe(0x25);
    pic.ioWrite(0x20, 1, 0xc4); // set priority: IR4 lowest -> IR5 highest
    pulse(pic, 7);
    EOI(pic);
    expect(pic.acknowledge()).toBe(0x27);
  });

  test("cascade: slave IRQ goes through master IR2; both need EOI", () => {
    const { pic } = mk();
    initPair(pic);
    pulse(pic, 12);
    expect(pic.hasInterrupt()).toBe(true);
    expect(pic.acknowledge()).toBe(0x2c);
    pic.ioWrite(0x20, 1, 0x0b);
    pic.ioWrite(0xa0, 1, 0x0b);
    expect(pic.ioRead(0x20, 1)).toBe(0x04);
    expect(pic.ioRead(0xa0, 1)).toBe(0x10);
    pulse(pic, 8); // higher priority on the slave but master IR2 in service, not SFNM
    expect(pic.hasInterrupt()).toBe(false);
    EOI(pic, 0xa0);
    EOI(pic, 0x20);
    expect(pic.hasInterrupt()).toBe(true);
    expect(pic.acknowledge()).toBe(0x28);
  });

  test("IRQ2 is redirected to IRQ9", () => {
    const { pic } = mk();
    initPair(pic);
    pulse(pic, 2);
    expect(pic.acknowledge()).toBe(0x29);
  });

  test("special fully nested mode lets the slave nest its own higher priority request", () => {
    const { pic } = mk();
    initPair(pic, 0x11);
    pulse(pic, 12);
    expect(pic.acknowledge()).toBe(0x2c);
    pulse(pic, 8);
    expect(pic.hasInterrupt()).toBe(true);
    expect(pic.acknowledge()).toBe(0x28);
  });

  test("edge mode latches a pulse; a held line does not re-trigger after EOI", () => {
    const { pic } = mk();
    initPair(pic);
    pic.setIrq(3, true);
    expect(pic.acknowledge()).toBe(0x23);
    EOI(pic);
    expect(pic.hasInterrupt()).toBe(false);
    pic.setIrq(3, true); // still high: no new edge
    expect(pic.hasInterrupt()).toBe(false);
    pic.setIrq(3, false);
    pic.setIrq(3, true);
    expect(pic.hasInterrupt()).toBe(true);
  });

  test("level mode (LTIM): re-interrupts after EOI while high; drop before INTA -> spurious IRQ7", () => {
    const { pic } = mk();
    initPair(pic, 0x01, true);
    pic.setIrq(3, true);
    expect(pic.acknowledge()).toBe(0x23);
    EOI(pic);
    expect(pic.hasInterrupt()).toBe(true);
    expect(pic.acknowledge()).toBe(0x23);
    pic.setIrq(3, false);
    EOI(pic);
    expect(pic.hasInterrupt()).toBe(false);
    pic.setIrq(4, true);
    expect(pic.hasInterrupt()).toBe(true);
    pic.setIrq(4, false);
    expect(pic.acknowledge()).toBe(0x27);
    pic.ioWrite(0x20, 1, 0x0b);
    expect(pic.ioRead(0x20, 1)).toBe(0x00); // spurious: ISR7 not set
  });

  test("ELCR makes single inputs level-triggered; reserved bits read as zero", () => {
    const { pic } = mk();
    initPair(pic);
    pic.ioWrite(0x4d1, 1, 0xff);
    expect(pic.ioRead(0x4d1, 1)).toBe(0xde);
    pic.ioWrite(0x4d0, 1, 0xff);
    expect(pic.ioRead(0x4d0, 1)).toBe(0xf8);
    pic.setIrq(3, true);
    expect(pic.hasInterrupt()).toBe(true);
    pic.setIrq(3, false);
    expect(pic.hasInterrupt()).toBe(false); // level input dropped
    expect(pic.acknowledge()).toBe(0x27); // master sees nothing -> spurious IRQ7
  });

  test("spurious slave interrupt gives IRQ15 vector and leaves master IR2 in service", () => {
    const { pic } = mk();
    initPair(pic, 0x01, false);
    pic.ioWrite(0x4d1, 1, 0x08); // IRQ11 level
    pic.setIrq(11, true);
    // master latched the slave's INT edge; now the slave input drops before INTA
    pic.ioWrite(0x4d1, 1, 0x08);
    pic.setIrq(11, false);
    // master IR2 was latched by the edge
    pic.ioWrite(0x20, 1, 0x0a);
    expect(pic.ioRead(0x20, 1) & 0x04).toBe(0x04);
    expect(pic.acknowledge()).toBe(0x2f);
    pic.ioWrite(0x20, 1, 0x0b);
    pic.ioWrite(0xa0, 1, 0x0b);
    expect(pic.ioRead(0x20, 1)).toBe(0x04);
    expect(pic.ioRead(0xa0, 1)).toBe(0x00);
  });

  test("auto-EOI leaves ISR clear", () => {
    const { pic } = mk();
    initPair(pic, 0x03);
    pulse(pic, 5);
    expect(pic.acknowledge()).toBe(0x25);
    pic.ioWrite(0x20, 1, 0x0b);
    expect(pic.ioRead(0x20, 1)).toBe(0);
    pulse(pic, 6);
    expect(pic.hasInterrupt()).toBe(true);
  });

  test("poll mode returns 0x80|irq and acknowledges", () => {
    const { pic } = mk();
    initPair(pic);
    pic.ioWrite(0x20, 1, 0x0c);
    expect(pic.ioRead(0x20, 1)).toBe(0x00);
    pulse(pic, 6);
    pic.ioWrite(0x20, 1, 0x0c);
    expect(pic.ioRead(0x20, 1)).toBe(0x86);
    expect(pic.hasInterrupt()).toBe(false);
    pic.ioWrite(0x20, 1, 0x0b);
    expect(pic.ioRead(0x20, 1)).toBe(0x40);
  });

  test("special mask mode lets lower priority requests through masked in-service levels", () => {
    const { pic } = mk();
    initPair(pic);
    pulse(pic, 3);
    expect(pic.acknowledge()).toBe(0x23);
    pulse(pic, 5);
    expect(pic.hasInterrupt()).toBe(false);
    pic.ioWrite(0x21, 1, 0x08); // mask IR3
    pic.ioWrite(0x20, 1, 0x68); // set special mask
    expect(pic.hasInterrupt()).toBe(true);
    expect(pic.acknowledge()).toBe(0x25);
    pic.ioWrite(0x20, 1, 0x48); // reset special mask
  });

  test("ICW1 clears IMR and ISR and resets the edge sense", () => {
    const { pic } = mk();
    initPair(pic);
    pic.ioWrite(0x21, 1, 0xff);
    pulse(pic, 1);
    pic.ioWrite(0x20, 1, 0x11);
    pic.ioWrite(0x21, 1, 0x30); pic.ioWrite(0x21, 1, 0x04); pic.ioWrite(0x21, 1, 0x01);
    expect(pic.ioRead(0x21, 1)).toBe(0);
    expect(pic.ioRead(0x20, 1)).toBe(0);
    pulse(pic, 1);
    expect(pic.acknowledge()).toBe(0x31);
  });

  test("reset drops INTR through the callback", () => {
    const { pic, changes } = mk();
    initPair(pic);
    pulse(pic, 1);
    pic.reset();
    expect(changes).toEqual([true, false]);
    expect(pic.hasInterrupt()).toBe(false);
  });

  test("save/restore round trip and continuation", () => {
    const { ctx, pic } = mk();
    initPair(pic);
    pulse(pic, 12);
    pulse(pic, 4);
    pic.ioWrite(0x20, 1, 0x0b);
    pic.acknowledge();
    const b = saveBytes(pic);
    const pic2 = new Pic(ctx, { init: "raw" });
    restoreBytes(pic2, b);
    expect(saveBytes(pic2)).toEqual(b);
    expect(pic2.hasInterrupt()).toBe(pic.hasInterrupt());
    const seq = (p: Pic) => { EOI(p, 0xa0); EOI(p); const v = [p.acknowledge()]; EOI(p); pulse(p, 0); v.push(p.acknowledge(), p.ioRead(0x20, 1)); return v; };
    expect(seq(pic2)).toEqual(seq(pic));
    expect(saveBytes(pic2)).toEqual(saveBytes(pic));
  });
});
