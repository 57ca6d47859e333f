/**
 * `rrx gdb --no-launch`: a dropped gdb connection does not end the session. The machine keeps
 * its position (and checkpoints), a new connection goes on from there, and only detach, kill
 * or a signal end it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { encodePacket, hexToText, RspParser, textToHex } from "../../lib/gdb/rsp.ts";
import { BUN, recordDbg, RRX } from "./record.ts";

let dir = "", log = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rrx-gdb-reconnect-"));
  log = recordDbg(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A bare RSP client: send a packet, get the next reply payload (acks skipped). */
async function connect(port: number) {
  const parser = new RspParser();
  const replies: string[] = [];
  let closed = false;
  const sock = await Bun.connect({
    hostname: "127.0.0.1", port,
    socket: {
      binaryType: "uint8array",
      data: (s, d) => { for (const e of parser.feed(d)) if (e.type === "packet") { replies.push(e.data); s.write("+"); } },
      close: () => { closed = true; },
      end: () => { closed = true; },
    },
  });
  return {
    async cmd(p: string): Promise<string> {
      sock.write(encodePacket(p));
      for (let i = 0; i < 500 && replies.length === 0; i++) await Bun.sleep(10);
      if (replies.length === 0) throw new Error(`no reply to ${p}${closed ? " (closed)" : ""}`);
      return replies.shift()!;
    },
    async monitor(c: string): Promise<string> {
      sock.write(encodePacket("qRcmd," + textToHex(c)));
      let text = "";
      for (;;) {
        for (let i = 0; i < 500 && replies.length === 0; i++) await Bun.sleep(10);
        const r = replies.shift();
        if (r === undefined || r === "OK" || !r.startsWith("O")) return text;
        text += hexToText(r.slice(1)) ?? "";
      }
    },
    drop() { sock.terminate(); },
  };
}

describe("rrx gdb --no-launch: reconnecting", () => {
  test("a dropped connection keeps the session; a new one goes on where it was", async () => {
    const p = Bun.spawn([BUN, RRX, "gdb", log, "--no-launch", "--port", "0"], { cwd: dir, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    let err = "";
    const reader = (async () => { for await (const c of p.stderr) err += Buffer.from(c).toString(); })();
    for (let i = 0; i < 3000 && !/target remote \S+:(\d+)/.test(err); i++) await Bun.sleep(10);
    const port = Number(/target remote \S+:(\d+)/.exec(err)![1]);

    const a = await connect(port);
    for (let i = 0; i < 5; i++) expect(await a.cmd("s")).toMatch(/^T05/);
    expect(await a.monitor("when")).toContain("Current instruction: 5");
    a.drop();
    for (let i = 0; i < 300 && !err.includes("connection dropped"); i++) await Bun.sleep(10);
    expect(err).toContain("still listening");
    expect(p.exitCode).toBeNull();

    const b = await connect(port);
    expect(await b.monitor("when")).toContain("Current instruction: 5");
    expect(await b.cmd("bs")).toMatch(/^T05/); // reverse-stepi: the history is still there
    expect(await b.monitor("when")).toContain("Current instruction: 4");
    b.drop();
    for (let i = 0; i < 300 && err.split("connection dropped").length < 3; i++) await Bun.sleep(10);

    p.kill("SIGINT");
    expect(await p.exited).toBe(130);
    await reader;
  }, 60_000);
});
