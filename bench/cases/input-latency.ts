/**
 * How soon host input and stop requests take effect in a live run whose guest never waits:
 * poll.elf polls COM1 flat out (no interrupts, no HLT). A byte is pushed into the HostQueue (the
 * path typed and piped bytes take) and timed until the guest's echo leaves COM1, in realtime and
 * non-realtime mode; then a quit request (what Ctrl-A x and signals do) is timed until runLive
 * returns, also for cpu-bound computing with no I/O at all.
 */
import type { BenchCase } from "../lib/types.ts";
import { fixtureConfig } from "../lib/rrx.ts";
import { buildMachine } from "../../lib/replay/session.ts";
import { HostQueue, runLive } from "../../lib/machine/driver.ts";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function echoLatencies(realtime: boolean, n: number): Promise<{ echo: number[]; quit: number }> {
  const m = buildMachine(fixtureConfig("poll", `n=${n + 1}`));
  let out = "";
  m.onOutput = (ch, b) => { if (ch === "com1") out += Buffer.from(b).toString("latin1"); };
  const host = new HostQueue();
  const done = runLive(m, { host, realtime });
  const echo: number[] = [];
  const until = async (s: string) => { while (!out.includes(s)) await new Promise((r) => setTimeout(r, 1)); };
  await until("waiting");
  for (let i = 0; i < n; i++) {
    // A byte "typed" at t0: the timer's callback itself runs only when the live loop yields,
    // so the latency counts from when it was due, not from when the callback ran.
    const delay = 5 + (i % 7);
    const t0 = performance.now() + delay;
    await new Promise((r) => setTimeout(r, delay));
    const byte = 0x41 + (i % 26);
    const want = `got ${byte.toString(16)}\n`;
    const before = out.length;
    host.push({ kind: "serial", port: 0, byte });
    while (!out.slice(before).includes(want)) await new Promise((r) => setImmediate(r));
    echo.push(performance.now() - t0);
  }
  const t0 = performance.now() + 10;
  await new Promise((r) => setTimeout(r, 10));
  host.requestQuit();
  await done;
  return { echo, quit: performance.now() - t0 };
}

async function computeQuit(): Promise<number> {
  const m = buildMachine(fixtureConfig("cpu-bound", "rounds=100000"));
  m.onOutput = () => {};
  const host = new HostQueue();
  const done = runLive(m, { host });
  const t0 = performance.now() + 300;
  await new Promise((r) => setTimeout(r, 300));
  host.requestQuit();
  await done;
  return performance.now() - t0;
}

export default {
  name: "input-latency",
  title: "host input and quit latency with a guest that never waits",
  order: 32,
  async run(ctx) {
    const n = ctx.scale(10, 30, 60);
    const rt = await echoLatencies(true, n);
    const nrt = await echoLatencies(false, n);
    const cq = await computeQuit();
    return {
      status: "ok",
      metrics: [
        { key: "echo.realtime.median", label: "byte to echo, realtime, median", value: median(rt.echo), unit: "ms", digits: 1 },
        { key: "echo.realtime.max", label: "byte to echo, realtime, worst", value: Math.max(...rt.echo), unit: "ms", digits: 1 },
        { key: "echo.free.median", label: "byte to echo, not realtime, median", value: median(nrt.echo), unit: "ms", digits: 1 },
        { key: "echo.free.max", label: "byte to echo, not realtime, worst", value: Math.max(...nrt.echo), unit: "ms", digits: 1 },
        { key: "quit.poll", label: "quit due to end of run (polling guest)", value: Math.max(rt.quit, nrt.quit), unit: "ms", digits: 1 },
        { key: "quit.compute", label: "quit due to end of run (cpu-bound guest)", value: cq, unit: "ms", digits: 1 },
      ],
      notes: [
        `${n} bytes per mode, due 5-11 ms apart; poll.elf polls COM1 with no interrupts and no HLT`,
        "latencies count from when the byte or quit was due (its timer fires only when the loop yields)",
      ],
    };
  },
} satisfies BenchCase;
