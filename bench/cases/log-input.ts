/**
 * Log bytes per input byte: the interrupts fixture driven by fixtures/input/interrupts.txt
 * (one key, then 12 serial bytes), recorded to memory. The event figure counts only the bytes
 * of the input events themselves; the whole-log figure includes the fixed header (image
 * hashes, host section), hash records, chunk framing and the trailer.
 */
import type { BenchCase } from "../lib/types.ts";
import { fixtureConfig, loadScript, runRecord } from "../lib/rrx.ts";
import { CountingRecorder } from "../lib/counting-recorder.ts";

export default {
  name: "log-input",
  title: "log bytes per input byte (interrupts fixture + input script)",
  order: 30,
  async run(ctx) {
    const script = loadScript("fixtures/input/interrupts.txt");
    let rec!: CountingRecorder;
    const r = await runRecord(fixtureConfig("interrupts"), {
      script,
      makeRecorder: (m, w, hi) => (rec = new CountingRecorder(m, w, hi)),
    });
    if (r.end !== "exit 1") throw new Error(`interrupts fixture ended with ${r.end}`);
    const input = rec.inputBytes;
    const evBytes = rec.bytesOf("serial", "key", "mouse");
    const idle = rec.tally["idle"] ?? { count: 0, bytes: 0 };
    const fixed = rec.headerBytes;
    return {
      status: "ok",
      metrics: [
        { key: "input.bytes", label: "input bytes (serial + scancode bytes)", value: input, unit: "B", note: `${rec.countOf("serial", "key", "mouse")} events` },
        { key: "event.bytes", label: "log bytes of those input events", value: evBytes, unit: "B" },
        { key: "perInputByte", label: "log bytes per input byte (events)", value: evBytes / input, unit: "B", digits: 2 },
        { key: "idle.bytes", label: "idle-skip events (waiting for input)", value: idle.bytes, unit: "B", note: `${idle.count} events` },
        { key: "perInputByte.withIdle", label: "log bytes per input byte (events + idle skips)", value: (evBytes + idle.bytes) / input, unit: "B", digits: 2 },
        { key: "log.bytes", label: "whole log", value: r.bytes, unit: "B", note: `header ${fixed} B` },
        { key: "perInputByte.whole", label: "whole log per input byte", value: r.bytes / input, unit: "B", digits: 1 },
        { key: "perInputByte.variable", label: "whole log less header, per input byte", value: (r.bytes - fixed) / input, unit: "B", digits: 1 },
      ],
      notes: [`${r.icount} instructions, ${(r.m.now() / 1e9).toFixed(3)} s virtual; not realtime (flushes follow host time, not the guest)`],
      raw: { tally: rec.tally, icount: r.icount, virtualNs: r.m.now(), header: fixed, total: r.bytes },
    };
  },
} satisfies BenchCase;
