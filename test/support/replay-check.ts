/**
 * Checks the reverse-execution tests share: the state hash a fresh replay of a log reaches at
 * an icount, and a comparison of two hash records that names the differing components.
 */
import { buildMachine, MachineHasher } from "../../lib/replay/session.ts";
import { runReplay } from "../../lib/machine/driver.ts";
import { diffHashes, type HashRecord } from "../../lib/replay/hash.ts";
import type { OpenedLog } from "../../lib/replay/replayer.ts";

/** The state hash of a fresh machine replaying `opened` up to instruction n. */
export function freshHash(opened: OpenedLog, n: number): HashRecord {
  const m = buildMachine(opened.cfg);
  runReplay(m, opened.events, { until: n });
  return new MachineHasher(m).record();
}

/** Whether two hash records are equal; prints the differing components when not. */
export function sameHash(a: HashRecord, b: HashRecord): boolean {
  const d = diffHashes(a, b);
  if (!d.equal) console.error("differs:", d.components);
  return d.equal;
}
