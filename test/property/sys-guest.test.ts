/**
 * The random guests' vm86 and task-switch segments (guest-sys.ts) do what they are built to do:
 * a guest made mostly of them reaches its programmed end (never an unexpected exception, which
 * exits with status (0x100 + vector) << 1 | 1), after leaving vm86 mode once per vm86 segment
 * and running every task body once. The determinism properties (determinism.test.ts) are only
 * as strong as the code these guests reach; this keeps the monitor, the handler task and the
 * task bodies from silently going dead.
 */
import { describe, test } from "bun:test";
import fc from "fast-check";
import { runLive } from "../../lib/machine/driver.ts";
import { buildGuest, describeGuest, guestArb, newMachine, runs } from "./guest.ts";
import { T_RUNS, VM_EXITS } from "./guest-sys.ts";

describe("vm86 and task-switch segments", () => {
  test("a guest of mostly vm86/task segments reaches its end; one vm86 exit per vm86 segment, one run per task", async () => {
    await fc.assert(fc.asyncProperty(guestArb({ sysWeight: 8, maxEvents: 4 }), async (spec) => {
      const g = buildGuest(spec);
      const m = newMachine(g);
      const end = await runLive(m, { script: g.script, maxInsns: g.maxInsns });
      const rd = (a: number) => m.ram[a]! | (m.ram[a + 1]! << 8) | (m.ram[a + 2]! << 16) | (m.ram[a + 3]! << 24);
      const e = spec.ending;
      const want = e.k === "exit" ? `exit ${(e.status << 1) | 1}` : e.k === "clihlt" ? "halted" : "limit";
      const got = end.kind === "exit" ? `exit ${end.status}` : end.kind;
      const vm86 = spec.segments.filter((s) => s.k === "vm86").length, tasks = spec.segments.filter((s) => s.k === "task").length;
      const counts = `vm86 exits ${rd(VM_EXITS)}/${vm86}, task runs ${rd(T_RUNS)}/${tasks}`;
      if (got !== want || rd(VM_EXITS) !== vm86 || rd(T_RUNS) !== tasks) {
        throw new Error(`ended ${got} (want ${want}), ${counts}\n${describeGuest(g)}`);
      }
    }), { numRuns: runs(30), includeErrorInReport: true });
  }, 120_000);
});
