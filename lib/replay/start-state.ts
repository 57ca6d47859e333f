/**
 * The machine state a v2 log starts from (its SNAPSHOT chunk): taking it from a running
 * machine, and putting it into a machine built from the log's header.
 *
 * The state is the same as a checkpoint's (Machine.saveState bytes + RAM, see checkpoint.ts);
 * the chunk stores only the RAM pages that are not all zero (format.ts).
 */
import type { Machine } from "../machine/machine.ts";
import { StateReader, StateWriter } from "../machine/snapshot.ts";
import { ByteReader, DecodeError, LogError, decodeSnapshotPayload, encodeSnapshotPayload, sha256Hex, type SnapshotData, type SnapshotInfo } from "./log/format.ts";

export interface CapturedState {
  icount: number;
  /** The SNAPSHOT chunk payload. */
  payload: Uint8Array;
  /** The compared section's `snapshot` key for it. */
  info: SnapshotInfo;
}

/** Encode the complete state of `m` (at its current icount) as a SNAPSHOT payload. */
export function captureState(m: Machine): CapturedState {
  m.cpu.flushWriteTlb();
  const w = new StateWriter(4096);
  m.saveState(w);
  const payload = encodeSnapshotPayload(w.finish(), m.ram);
  const icount = m.cpu.icount;
  return { icount, payload, info: { icount, bytes: payload.length, sha256: sha256Hex(payload) } };
}

/** Decode a payload made by captureState (for round trips: the recorder restores what it logged). */
export function decodeCaptured(c: CapturedState, memoryBytes: number): SnapshotData {
  try {
    return decodeSnapshotPayload(new ByteReader(c.payload, 0, c.payload.length), c.icount, memoryBytes);
  } catch (e) {
    if (e instanceof DecodeError) throw new LogError(`snapshot: ${e.message}`);
    throw e;
  }
}

/**
 * Put a snapshot into a machine built from the same configuration (session.buildMachine with
 * the log's header). Throws a one-line LogError when it does not fit (RAM size, or machine
 * state saved by a build with a different state layout).
 */
export function applyState(m: Machine, s: SnapshotData): void {
  if (m.ram.length !== s.ramBytes) throw new LogError(`snapshot holds ${s.ramBytes} bytes of RAM but the machine has ${m.ram.length}`);
  const ram = m.ram;
  ram.fill(0);
  for (const p of s.pages) ram.set(p.data, p.index * 4096);
  m.mem.markAllDirty();
  try {
    const r = new StateReader(s.state);
    m.restoreState(r);
    if (!r.done) throw new Error(`${s.state.length - r.pos} unread bytes`);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new LogError(`the log's snapshot does not fit this rrx build's machine state (${why.split("\n")[0]})`, undefined, s.icount);
  }
  m.cpu.flushBlocks();
}
