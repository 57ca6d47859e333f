/**
 * The stub over real TCP, driven by a raw RSP client: protocol coverage,
 * malformed input, acks, interrupts, connection handling, register cache.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { RspParser, binStrToBytes, checksum, encodePacket, hexToText, textToHex, u32leHex, type RspEvent } from "./rsp.ts";
import { GdbServer } from "./server.ts";
import { MockTarget, MOCK_CODE, MOCK_DATA, MOCK_FUNC } from "../../test/support/mock-target.ts";
import { G_PACKET_BYTES, TARGET_XML } from "../cpu/x86/tdesc.ts";

/** Minimal RSP client over TCP. */
class RawClient {
  private parser = new RspParser();
  private events: RspEvent[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  sock!: Socket<undefined>;
  /** Send acks for received packets (ack mode). */
  ack = true;

  static async connect(port: number): Promise<RawClient> {
    const c = new RawClient();
    c.sock = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        binaryType: "uint8array",
        data: (_s, d) => {
          for (const e of c.parser.feed(d)) {
            c.events.push(e);
          }
          c.wake();
        },
        close: () => {
          c.closed = true;
          c.wake();
        },
        end: () => {
          c.closed = true;
          c.wake();
        },
      },
    });
    return c;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  raw(s: string): void {
    this.sock.write(binStrToBytes(s));
  }

  /** Write all of `s`, waiting while the socket takes it only partly. */
  async rawAll(s: string): Promise<void> {
    let buf = binStrToBytes(s);
    while (buf.length > 0) {
      const n = this.sock.write(buf);
      buf = buf.subarray(Math.max(0, n));
      if (buf.length > 0) await Bun.sleep(1);
    }
  }

  /** Next event of the given kinds (skipping others), with a timeout. */
  async next(types: RspEvent["type"][] = ["packet"], timeoutMs = 5000): Promise<RspEvent> {
    for (let waited = 0; ; ) {
      const i = this.events.findIndex((e) => types.includes(e.type));
      if (i >= 0) {
        const ev = this.events.splice(i, 1)[0];
        if (ev.type === "packet" && this.ack) this.sock.write("+");
        return ev;
      }
      if (this.closed) throw new Error("connection closed");
      if (waited >= timeoutMs) throw new Error(`timeout waiting for ${types.join("/")}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
      waited += 50;
    }
  }

  /** Send a packet, return the reply payload. */
  async cmd(payload: string): Promise<string> {
    this.sock.write(binStrToBytes(encodePacket(payload)));
    const ev = await this.next();
    return (ev as { data: string }).data;
  }

  drainAcks(): number {
    const n = this.events.filter((e) => e.type === "ack").length;
    this.events = this.events.filter((e) => e.type !== "ack");
    return n;
  }

  async waitClosed(timeoutMs = 3000): Promise<boolean> {
    for (let w = 0; w < timeoutMs && !this.closed; w += 20) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  close(): void {
    this.sock.end();
  }
}

function regsOf(g: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < 16; i++) {
    const h = g.slice(8 * i, 8 * i + 8);
    out.push(parseInt(h.match(/../g)!.reverse().join(""), 16));
  }
  return out;
}

let target: MockTarget;
let server: GdbServer;
let logs: string[];
let client: RawClient;

async function setup(opts: ConstructorParameters<typeof MockTarget>[0] = {}): Promise<void> {
  target = new MockTarget(opts);
  logs = [];
  server = new GdbServer(target, { port: 0, log: (m) => logs.push(m) });
  const { port } = await server.start();
  expect(port).toBeGreaterThan(0);
  client = await RawClient.connect(port);
}

afterEach(async () => {
  client?.close();
  await server?.stop();
});

describe("handshake and queries", () => {
  beforeEach(() => setup());

  test("qSupported advertises the features; reverse only when possible", async () => {
    const r = await client.cmd("qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vContSupported+");
    expect(client.drainAcks()).toBeGreaterThanOrEqual(1); // the stub acked our packet
    for (const f of ["PacketSize=4000", "qXfer:features:read+", "swbreak+", "hwbreak+", "QStartNoAckMode+", "vContSupported+", "ReverseStep+", "ReverseContinue+"]) {
      expect(r.split(";")).toContain(f);
    }
  });

  test("target.xml is served in chunks and reassembles", async () => {
    let xml = "";
    for (let off = 0; ; ) {
      const r = await client.cmd(`qXfer:features:read:target.xml:${off.toString(16)},100`);
      expect(r[0] === "m" || r[0] === "l").toBe(true);
      xml += r.slice(1);
      off += r.length - 1;
      if (r[0] === "l") break;
    }
    expect(xml).toBe(TARGET_XML);
    expect(await client.cmd("qXfer:features:read:nope.xml:0,100")).toBe("E00");
  });

  test("thread and misc queries", async () => {
    expect(await client.cmd("qAttached")).toBe("1");
    expect(await client.cmd("qAttached:1")).toBe("1");
    expect(await client.cmd("qC")).toBe("QC1");
    expect(await client.cmd("qfThreadInfo")).toBe("m1");
    expect(await client.cmd("qsThreadInfo")).toBe("l");
    expect(hexToText(await client.cmd("qThreadExtraInfo,1"))).toBe("rrx cpu0");
    expect(await client.cmd("Hg0")).toBe("OK");
    expect(await client.cmd("Hc-1")).toBe("OK");
    expect(await client.cmd("T1")).toBe("OK");
    expect(await client.cmd("T2")).toBe("E01");
    expect(await client.cmd("qTStatus")).toBe("");
    expect(await client.cmd("qSymbol::")).toBe("OK");
    expect(await client.cmd("vMustReplyEmpty")).toBe("");
    expect(await client.cmd("vCont?")).toBe("vCont;c;C;s;S");
    expect(await client.cmd("qOffsets")).toBe("");
    expect(await client.cmd("qSomethingNew")).toBe("");
    expect(await client.cmd("!")).toBe("");
  });

  test("? reports the current stop with thread and expedited registers", async () => {
    const r = await client.cmd("?");
    expect(r).toBe(`T05thread:1;08:${u32leHex(MOCK_CODE)};04:${u32leHex(0x8000)};05:${u32leHex(0)};`);
  });
});

describe("registers and memory", () => {
  beforeEach(() => setup());

  test("g returns 16 GPRs + zeroed x87 block, matching the target description size", async () => {
    const g = await client.cmd("g");
    expect(g.length).toBe(G_PACKET_BYTES * 2);
    expect(regsOf(g)).toEqual(target.regs);
    expect(g.slice(128)).toBe("0".repeat((G_PACKET_BYTES - 64) * 2));
  });

  test("p / P single registers, incl. x87 reads and refused x87 writes", async () => {
    expect(await client.cmd("p8")).toBe(u32leHex(MOCK_CODE));
    expect(await client.cmd("p10")).toBe("0".repeat(20)); // st0: 10 bytes
    expect(await client.cmd("p18")).toBe("00000000"); // fctrl
    expect(await client.cmd("p20")).toBe("E01"); // no such register
    expect(await client.cmd(`P0=${u32leHex(0xdeadbeef)}`)).toBe("OK");
    expect(target.regs[0]).toBe(0xdeadbeef);
    expect(await client.cmd("p0")).toBe("efbeadde");
    expect(await client.cmd(`P10=${"11".repeat(10)}`)).toBe("E01");
    expect(await client.cmd("P0=zz")).toBe("E01");
    expect(await client.cmd("P0")).toBe("E01");
  });

  test("G writes registers", async () => {
    const g = await client.cmd("g");
    const ebx = u32leHex(0x1234);
    const g2 = g.slice(0, 24) + ebx + g.slice(32);
    expect(await client.cmd("G" + g2)).toBe("OK");
    expect(target.regs[3]).toBe(0x1234);
    expect(await client.cmd("G12")).toBe("E01");
  });

  test("m / M / X, partial and failed reads", async () => {
    expect(await client.cmd(`m${MOCK_CODE.toString(16)},2`)).toBe("5589");
    expect(await client.cmd(`M${MOCK_DATA.toString(16)},3:aabbcc`)).toBe("OK");
    expect(await client.cmd(`m${MOCK_DATA.toString(16)},4`)).toBe("aabbcc00");
    // X with bytes needing escapes: # $ } *
    const bin = "\x23\x24\x7d\x2a";
    expect(await client.cmd(`X${MOCK_DATA.toString(16)},4:${bin}`)).toBe("OK");
    expect(await client.cmd(`m${MOCK_DATA.toString(16)},4`)).toBe("23247d2a");
    expect(await client.cmd(`X${MOCK_DATA.toString(16)},0:`)).toBe("OK"); // X probe
    expect(await client.cmd(`X${MOCK_DATA.toString(16)},5:ab`)).toBe("E01"); // length mismatch
    // across the end of mapped memory: the readable prefix
    expect(await client.cmd("mfffe,4")).toBe("0000");
    expect(await client.cmd("m20000,4")).toBe("E14");
    expect(await client.cmd("M20000,1:00")).toBe("E14");
    expect(await client.cmd("m1000")).toBe("E01");
    expect(await client.cmd("mxyz,4")).toBe("E01");
    expect(await client.cmd("m1000,0")).toBe("");
  });

  test("memory reads are cached until a write or resume", async () => {
    const before = target.calls.readMemory;
    await client.cmd("m1000,4");
    await client.cmd("m1000,4");
    expect(target.calls.readMemory - before).toBe(1);
    await client.cmd("M2000,1:01");
    await client.cmd("m1000,4");
    expect(target.calls.readMemory - before).toBe(2);
  });
});

describe("execution", () => {
  beforeEach(() => setup());

  test("s / bs move one instruction each way", async () => {
    expect(await client.cmd("s")).toStartWith("T05thread:1;08:01100000;");
    expect(target.pos).toBe(1);
    expect(await client.cmd("vCont;s:1")).toStartWith("T05thread:1;08:03100000;");
    expect(await client.cmd("bs")).toStartWith("T05thread:1;08:01100000;");
    expect(await client.cmd("bs")).toStartWith("T05thread:1;08:00100000;");
    expect(await client.cmd("bs")).toStartWith("T05replaylog:begin;");
    expect(await client.cmd("S05")).toStartWith("T05thread:1;");
    expect(await client.cmd("vCont;S05")).toStartWith("T05thread:1;");
  });

  test("Z0 breakpoint: c stops before the instruction with swbreak; bc goes back to it", async () => {
    expect(await client.cmd(`Z0,${MOCK_FUNC.toString(16)},1`)).toBe("OK");
    expect(await client.cmd("c")).toBe(`T05swbreak:;thread:1;08:${u32leHex(MOCK_FUNC)};04:${u32leHex(0x7ff8)};05:${u32leHex(0x7ffc)};`);
    expect(target.pos).toBe(5);
    // continuing from the breakpoint does not re-report it immediately
    expect(await client.cmd("vCont;c")).toStartWith(`T05swbreak:;thread:1;08:${u32leHex(MOCK_FUNC)}`);
    expect(target.pos).toBe(14);
    expect(await client.cmd("bc")).toStartWith(`T05swbreak:;thread:1;08:${u32leHex(MOCK_FUNC)}`);
    expect(target.pos).toBe(5);
    expect(await client.cmd("bc")).toStartWith("T05replaylog:begin;");
    expect(await client.cmd(`z0,${MOCK_FUNC.toString(16)},1`)).toBe("OK");
    expect(await client.cmd(`Z1,${MOCK_FUNC.toString(16)},1`)).toBe("OK");
    expect(await client.cmd("Z9,1000,1")).toBe(""); // unsupported type
    expect(await client.cmd("Z0,1000")).toBe("E01");
  });

  test("hardware breakpoint reports hwbreak", async () => {
    const t = target;
    const orig = t.resume.bind(t);
    t.resume = async (a, s) => {
      const st = await orig(a, s);
      if (st.reason.kind === "breakpoint") st.reason = { ...st.reason, hw: true };
      return st;
    };
    await client.cmd(`Z1,${MOCK_FUNC.toString(16)},1`);
    expect(await client.cmd("c")).toStartWith("T05hwbreak:;thread:1;");
  });

  test("write watchpoint forward and reverse", async () => {
    expect(await client.cmd(`Z2,${MOCK_DATA.toString(16)},4`)).toBe("OK");
    // forward: stops after the writing instruction (eip = next instruction)
    expect(await client.cmd("c")).toStartWith(`T05watch:2000;thread:1;08:${u32leHex(0x1009)}`);
    expect(await client.cmd("c")).toStartWith(`T05watch:2000;thread:1;08:${u32leHex(0x1009)}`);
    expect(target.mem[MOCK_DATA]).toBe(2);
    // reverse: stops at the writing instruction with the old value visible
    expect(await client.cmd("bc")).toStartWith(`T05watch:2000;thread:1;08:${u32leHex(0x1004)}`);
    expect(await client.cmd("m2000,1")).toBe("01");
    expect(await client.cmd(`z2,${MOCK_DATA.toString(16)},4`)).toBe("OK");
    expect(await client.cmd(`Z3,${MOCK_DATA.toString(16)},4`)).toBe("OK");
    expect(await client.cmd(`Z4,${MOCK_DATA.toString(16)},4`)).toBe("OK");
    expect(await client.cmd("c")).toStartWith("T05awatch:2000;");
    expect(await client.cmd(`Z2,${MOCK_DATA.toString(16)},0`)).toBe("E01");
  });

  test("end of the log: replaylog:end", async () => {
    await client.close();
    await server.stop();
    await setup({ logLength: 5 });
    expect(await client.cmd("c")).toStartWith("T05replaylog:end;");
    expect(target.pos).toBe(5);
  });

  test("c with an address resumes there", async () => {
    expect(await client.cmd(`s${MOCK_FUNC.toString(16)}`)).toStartWith(`T05thread:1;08:${u32leHex(MOCK_FUNC + 1)}`);
    expect(await client.cmd("cxyz")).toBe("E01");
  });

  test("exit is reported as W", async () => {
    target.mem[0x1000] = 0xf4; // hlt = power off in the mock
    target.regs[0] = 7;
    expect(await client.cmd("c")).toBe("W07");
    expect(await client.cmd("?")).toBe("W07");
  });

  test("^C interrupts a running continue", async () => {
    await client.close();
    await server.stop();
    await setup({ logLength: Infinity });
    client.raw(encodePacket("c"));
    await new Promise((r) => setTimeout(r, 100));
    expect(server.session?.isRunning).toBe(true);
    client.raw("\x03");
    expect(await client.cmd("?").catch(() => "")).toBeTruthy(); // consumes the stop reply first
  });

  test("^C reply is T02 and the stub keeps serving", async () => {
    await client.close();
    await server.stop();
    await setup({ logLength: Infinity });
    client.raw(encodePacket("c"));
    await new Promise((r) => setTimeout(r, 100));
    client.raw("\x03");
    const ev = await client.next();
    expect((ev as { data: string }).data).toStartWith("T02thread:1;");
    expect(target.pos).toBeGreaterThan(100);
    expect(await client.cmd("qC")).toBe("QC1");
  });

  test("^C sent right behind a queued continue still interrupts it", async () => {
    await client.close();
    await server.stop();
    await setup({ logLength: Infinity });
    // a slow monitor command keeps the queue busy while c and ^C arrive
    const orig = target.monitor.bind(target);
    target.monitor = async (c) => {
      await Bun.sleep(50);
      return orig(c);
    };
    client.raw(encodePacket("qRcmd," + textToHex("when")) + encodePacket("c") + "\x03");
    expect(((await client.next()) as { data: string }).data[0]).toBe("O");
    expect(((await client.next()) as { data: string }).data).toBe("OK");
    expect(((await client.next()) as { data: string }).data).toStartWith("T02");
    expect(await client.cmd("qC")).toBe("QC1");
  });

  test("backpressure: megabytes of monitor output reach a slow reader intact", async () => {
    client.ack = false;
    expect(await client.cmd("QStartNoAckMode")).toBe("OK");
    client.sock.pause?.();
    client.raw(encodePacket("qRcmd," + textToHex("big 3000000")));
    await Bun.sleep(200);
    client.sock.resume?.();
    let n = 0;
    for (;;) {
      const d = ((await client.next(["packet"], 20000)) as { data: string }).data;
      if (d === "OK") break;
      n += (d.length - 1) / 2;
    }
    expect(n).toBe(3000001);
    expect(server.partialWrites).toBeGreaterThan(0); // the drain path was exercised
    expect(await client.cmd("qC")).toBe("QC1");
  });

  test("reverse packets are refused when the target cannot reverse", async () => {
    await client.close();
    await server.stop();
    await setup({ reversible: false });
    const r = await client.cmd("qSupported");
    expect(r).not.toContain("Reverse");
    expect(await client.cmd("bs")).toBe("E01");
    expect(await client.cmd("bc")).toBe("E01");
  });
});

describe("fast reverse bursts: register cache", () => {
  test("g after a stop is served from the registers returned with the stop", async () => {
    await setup();
    for (let i = 0; i < 20; i++) await client.cmd("s");
    const before = target.calls.readRegisters;
    for (let i = 0; i < 10; i++) {
      const stop = await client.cmd("bs");
      expect(stop).toStartWith("T05");
      const g = await client.cmd("g");
      expect(regsOf(g)).toEqual(target.regs);
      await client.cmd("p8");
    }
    expect(target.calls.readRegisters - before).toBe(0);
    // a register write invalidates the cache: the next g asks the target
    await client.cmd(`P0=${u32leHex(5)}`);
    await client.cmd("g");
    expect(target.calls.readRegisters - before).toBeGreaterThan(0);
  });

  test("without registers in the stop, one readRegisters per stop", async () => {
    await setup({ returnRegisters: false });
    const before = target.calls.readRegisters;
    for (let i = 0; i < 5; i++) {
      await client.cmd("s");
      await client.cmd("g");
      await client.cmd("g");
    }
    expect(target.calls.readRegisters - before).toBe(5);
  });
});

describe("monitor (qRcmd)", () => {
  beforeEach(() => setup());

  test("output comes as O packets then OK", async () => {
    client.raw(encodePacket("qRcmd," + textToHex("when")));
    const o = (await client.next()) as { data: string };
    expect(o.data[0]).toBe("O");
    expect(hexToText(o.data.slice(1))).toBe("Current instruction: 0\n");
    expect(((await client.next()) as { data: string }).data).toBe("OK");
  });

  test("long output is split; goto moves and invalidates caches; errors give E01", async () => {
    client.raw(encodePacket("qRcmd," + textToHex("big 20000")));
    let text = "";
    for (;;) {
      const d = ((await client.next()) as { data: string }).data;
      if (d === "OK") break;
      expect(d[0]).toBe("O");
      text += hexToText(d.slice(1));
    }
    expect(text).toBe("x".repeat(20000) + "\n");
    await client.cmd("g");
    client.raw(encodePacket("qRcmd," + textToHex("goto 5")));
    await client.next();
    expect(((await client.next()) as { data: string }).data).toBe("OK");
    expect(regsOf(await client.cmd("g"))[8]).toBe(MOCK_FUNC);
    client.raw(encodePacket("qRcmd," + textToHex("bogus")));
    expect(hexToText(((await client.next()) as { data: string }).data.slice(1))).toContain("unknown monitor command");
    expect(((await client.next()) as { data: string }).data).toBe("E01");
    expect(await client.cmd("qRcmd,zz")).toBe("E01");
  });
});

describe("robustness", () => {
  beforeEach(() => setup());

  test("bad checksum gets '-', the retransmission is served", async () => {
    client.raw("$g#00");
    const nak = await client.next(["nak"]);
    expect(nak.type).toBe("nak");
    expect((await client.cmd("g")).length).toBe(G_PACKET_BYTES * 2);
  });

  test("our '-' makes the stub retransmit its last packet", async () => {
    const first = await client.cmd("qC");
    client.raw("-");
    const again = (await client.next()) as { data: string };
    expect(again.data).toBe(first);
  });

  test("garbage, truncated packets and nonsense arguments never kill the stub", async () => {
    client.raw("hello\r\n\x00\xff");
    client.raw("$m10");
    client.raw("$$$###");
    const bad = ["m", "M", "X", "Z", "z", "p", "P", "G", "g1", "H", "T", "C", "Cz", "S", "vCont;x", "vCont;", "vCont;c:2", "qXfer:features:read:target.xml:", "Zz,z,z", "b", "bx", "\x00\x01", "}", "m-1,4", "mffffffffff,4", "Mffffffff,2:0000", "P1f=00", "pffffffffffffffffff"];
    for (const p of bad) {
      const r = await client.cmd(p);
      expect(typeof r).toBe("string");
    }
    expect(logs.length).toBeGreaterThan(0);
    expect(await client.cmd("qC")).toBe("QC1");
    expect(regsOf(await client.cmd("g"))).toEqual(target.regs);
  });

  test("an oversized packet gets E01 and one log line; the session goes on", async () => {
    const before = logs.length;
    await client.rawAll("$X100000,4:" + "z".repeat(4 << 20) + "#00");
    expect(((await client.next()) as { data: string }).data).toBe("E01");
    const lines = logs.slice(before);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("dropped a packet of");
    expect(await client.cmd("qC")).toBe("QC1");
  });

  test("random packets (deterministic seed) never kill the stub", async () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const letters = "?gGpPmMXZzcsCSbvqQHTDk";
    for (let i = 0; i < 150; i++) {
      let p = letters[rnd(letters.length)];
      if (p === "D" || p === "k" || p === "c" || p === "b") p = "q" + p; // keep the session and don't run forever
      const n = rnd(12);
      for (let j = 0; j < n; j++) p += String.fromCharCode(rnd(256));
      const r = await client.cmd(p);
      expect(typeof r).toBe("string");
    }
    expect(await client.cmd("qC")).toBe("QC1");
  });

  test("QStartNoAckMode: no acks afterwards", async () => {
    expect(await client.cmd("QStartNoAckMode")).toBe("OK");
    client.drainAcks();
    client.ack = false;
    expect(await client.cmd("qC")).toBe("QC1");
    expect(await client.cmd("qAttached")).toBe("1");
    await new Promise((r) => setTimeout(r, 50));
    expect(client.drainAcks()).toBe(0);
    // bad checksums are dropped silently now
    client.raw("$qC#00");
    expect(await client.cmd("qAttached")).toBe("1");
  });

  test("several packets in one write and split packets are all answered in order", async () => {
    client.raw(encodePacket("qC") + encodePacket("qAttached") + encodePacket("p8"));
    expect(((await client.next()) as { data: string }).data).toBe("QC1");
    expect(((await client.next()) as { data: string }).data).toBe("1");
    expect(((await client.next()) as { data: string }).data).toBe(u32leHex(MOCK_CODE));
    const f = encodePacket("qfThreadInfo");
    for (const ch of f) {
      client.raw(ch);
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(((await client.next()) as { data: string }).data).toBe("m1");
  });

  test("run-length encoded request is understood", async () => {
    // "m1000,4" sent as "m10*<0x1f>,4": '0' plus 0x1f - 29 = 2 repeats
    const body = "m10*\u001f,4";
    client.raw("$" + body + "#" + checksum(body).toString(16).padStart(2, "0"));
    expect(((await client.next()) as { data: string }).data).toBe("5589e540");
  });

  test("a second connection is refused and logged; the first keeps working", async () => {
    const second = await RawClient.connect(server.port);
    expect(await second.waitClosed()).toBe(true);
    expect(logs.some((l) => l.includes("refusing a second connection"))).toBe(true);
    expect(await client.cmd("qC")).toBe("QC1");
  });

  test("detach replies OK, calls target.detach and closes; a new gdb can connect", async () => {
    const ended = server.nextSessionEnd();
    expect(await client.cmd("D")).toBe("OK");
    expect(await ended).toBe("detach");
    expect(target.calls.detach).toBe(1);
    expect(await client.waitClosed()).toBe(true);
    client = await RawClient.connect(server.port);
    expect(await client.cmd("qC")).toBe("QC1");
  });

  test("kill calls target.kill and closes", async () => {
    const ended = server.nextSessionEnd();
    client.raw(encodePacket("k"));
    expect(await ended).toBe("kill");
    expect(target.calls.kill).toBe(1);
    expect(await client.waitClosed()).toBe(true);
  });

  test("vKill replies OK then kills", async () => {
    expect(await client.cmd("vKill;1")).toBe("OK");
    expect(target.calls.kill).toBe(1);
  });

  test("dropping the connection mid-continue aborts the resume", async () => {
    await client.close();
    await server.stop();
    await setup({ logLength: Infinity });
    const ended = server.nextSessionEnd();
    client.raw(encodePacket("c"));
    await new Promise((r) => setTimeout(r, 50));
    client.close();
    expect(await ended).toBe("disconnect");
    await new Promise((r) => setTimeout(r, 50));
    const p = target.pos;
    await new Promise((r) => setTimeout(r, 50));
    expect(target.pos).toBe(p); // stopped running
  });
});
