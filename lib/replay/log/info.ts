/**
 * Summaries for `rrx log info` and listings for `rrx log events`, plus a semantic
 * comparison of two logs (compared section + events + trailer; host section and chunk
 * boundaries ignored, since those depend on host timing).
 */
import {
  CHUNK_KIND_NAMES, EventKind, KIND_TABLE, kindName,
  type EventKindCode, type ImageInfo, type KindSpec, type LogEvent, type Trailer,
} from "./format.ts";
import { diffHashes, formatHashDiff } from "../hash.ts";
import type { ParsedLog, Truncation } from "./reader.ts";

export interface KindSummary { kind: string; code: number; count: number; bytes: number }

export interface LogInfo {
  version: number;
  fileBytes: number;
  headerBytes: number;
  packed: boolean;
  compared: ParsedLog["header"]["compared"];
  host: ParsedLog["header"]["host"];
  images: (ImageInfo & { packed: boolean })[];
  /** v2: the machine snapshot the log starts from (null: a fresh boot). */
  snapshot: { icount: number; bytes: number; sha256: string; pages: number; stateBytes: number } | null;
  /** The icount the log starts at (the snapshot's, else 0). */
  startIcount: number;
  chunks: number;
  chunksByKind: Record<string, number>;
  events: number;
  kinds: KindSummary[];
  /** icount of the first and last event (null without events). */
  firstEventIcount: number | null;
  lastEventIcount: number | null;
  /** How far the log is complete (trailer final icount, or last complete chunk). */
  endIcount: number;
  /** Sum of IDLE_SKIP ns. */
  idleNs: number;
  hashRecords: number;
  trailer: Trailer | null;
  truncated: Truncation | null;
}

export function logInfo(log: ParsedLog): LogInfo {
  const kinds: KindSummary[] = [...log.stats.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([code, s]) => ({ kind: kindName(code), code, count: s.count, bytes: s.bytes }));
  const chunksByKind: Record<string, number> = {};
  for (const c of log.chunks) {
    const n = CHUNK_KIND_NAMES[c.kind] ?? String(c.kind);
    chunksByKind[n] = (chunksByKind[n] ?? 0) + 1;
  }
  let idleNs = 0;
  for (const e of log.events) if (e.kind === EventKind.IDLE_SKIP) idleNs += e.payload.ns;
  const ev = log.events;
  return {
    version: log.version,
    fileBytes: log.byteLength,
    headerBytes: log.headerBytes,
    packed: (log.headerFlags & 1) !== 0,
    compared: log.header.compared,
    host: log.header.host,
    images: log.header.compared.images.map((i) => ({ ...i, packed: log.images.some((p) => p.role === i.role && p.name === i.name) })),
    snapshot: snapshotSummary(log),
    startIcount: log.startIcount ?? 0,
    chunks: log.chunks.length,
    chunksByKind,
    events: ev.length,
    kinds,
    firstEventIcount: ev.length ? ev[0]!.icount : null,
    lastEventIcount: ev.length ? ev[ev.length - 1]!.icount : null,
    endIcount: log.endIcount,
    idleNs,
    hashRecords: log.hashes.length,
    trailer: log.trailer,
    truncated: log.truncated,
  };
}

function snapshotSummary(log: ParsedLog): LogInfo["snapshot"] {
  const info = log.version >= 2 ? (log.header.compared.snapshot as { icount: number; bytes: number; sha256: string } | undefined) : undefined;
  if (!info) return null;
  const s = log.snapshot;
  return { icount: info.icount, bytes: info.bytes, sha256: info.sha256, pages: s ? s.pages.length : 0, stateBytes: s ? s.state.length : 0 };
}

/** Multi-line human-readable `rrx log info`. */
export function formatLogInfo(i: LogInfo): string {
  const c = i.compared;
  const L: string[] = [];
  L.push(`rrx log v${i.version}, ${i.fileBytes} bytes (header ${i.headerBytes})${i.packed ? ", packed" : ""}`);
  L.push(`machine: ${c.board ?? "pc"} board version ${c.boardVersion ?? 1}, ${c.isa ?? "i386"} CPU ${c.cpu ?? "rrx-i586"}, ${c.memoryBytes} bytes RAM, ${c.ips} ips, devices: ${c.devices.join(" ") || "-"}`);
  L.push(`args: ${c.args.length ? c.args.join(" ") : "-"}`);
  L.push(`boot date: ${c.bootDate} (s since epoch)`);
  for (const im of i.images) L.push(`image ${im.role} ${im.name}: ${im.size} bytes sha256 ${im.sha256}${im.packed ? " [packed]" : ""}`);
  if (i.snapshot) {
    const sn = i.snapshot;
    L.push(`starts from a snapshot at icount ${sn.icount}: ${sn.bytes} bytes (machine state ${sn.stateBytes} bytes, ${sn.pages} non-zero RAM pages) sha256 ${sn.sha256}`);
    const from = i.host.liveFrom as { log?: unknown; kernel?: unknown; icount?: unknown } | undefined;
    if (from && typeof from === "object") {
      const what = typeof from.log === "string" ? `recording ${from.log}` : typeof from.kernel === "string" ? `live kernel ${from.kernel}` : "?";
      L.push(`recorded live from: ${what} at icount ${String(from.icount)}`);
    }
  }
  const host = Object.keys(i.host).sort().map((k) => `${k}=${JSON.stringify(i.host[k])}`).join(" ");
  L.push(`host: ${host || "-"}`);
  const ck = Object.entries(i.chunksByKind).map(([k, n]) => `${n} ${k}`).join(", ");
  L.push(`chunks: ${i.chunks}${ck ? ` (${ck})` : ""}`);
  L.push(`events: ${i.events}` + (i.firstEventIcount === null ? "" : `, icount ${i.firstEventIcount} .. ${i.lastEventIcount}`));
  for (const k of i.kinds) L.push(`  ${k.kind.padEnd(16)} ${String(k.count).padStart(10)} events ${String(k.bytes).padStart(12)} bytes`);
  if (i.idleNs) L.push(`idle skipped: ${i.idleNs} ns`);
  L.push(`hash records: ${i.hashRecords}`);
  if (i.trailer) {
    const t = i.trailer;
    L.push(`end: icount ${t.finalIcount}, ${t.reason} status ${t.status}, ${t.eventCount} events${t.hashes ? `, final ram ${t.hashes.ram}` : ""}`);
  }
  if (i.truncated) L.push(`TRUNCATED: complete up to icount ${i.truncated.atIcount} (byte ${i.truncated.atOffset}): ${i.truncated.reason}`);
  return L.join("\n");
}

const spec = (k: number) => (KIND_TABLE as Record<number, KindSpec<unknown>>)[k]!;

/** One line per event: "<icount> <KIND> <payload>". */
export function formatEvent(e: LogEvent): string {
  const name = e.kind === EventKind.UNKNOWN ? kindName(e.payload.code) : kindName(e.kind);
  const text = spec(e.kind).text(e.payload);
  return `${String(e.icount).padStart(14)} ${name.padEnd(16)}${text ? " " + text : ""}`.trimEnd();
}

/** JSON form of one event: {icount, kind: "NAME", code, ...payload fields (bytes as hex)}. */
export function eventToJson(e: LogEvent): Record<string, unknown> {
  const code = e.kind === EventKind.UNKNOWN ? e.payload.code : e.kind;
  return { icount: e.icount, kind: kindName(code), code, payload: spec(e.kind).json(e.payload) };
}

export interface EventFilter {
  /** Kind names (e.g. "KEY", "serial_rx") or codes to keep; all when absent. */
  kinds?: (string | number)[];
  fromIcount?: number;
  toIcount?: number;
  limit?: number;
}

export function filterEvents(log: ParsedLog, f: EventFilter = {}): LogEvent[] {
  const want = f.kinds?.map((k) => (typeof k === "number" ? k : resolveKind(k)));
  const out: LogEvent[] = [];
  for (const e of log.events) {
    if (f.fromIcount !== undefined && e.icount < f.fromIcount) continue;
    if (f.toIcount !== undefined && e.icount > f.toIcount) break;
    if (want) {
      const code = e.kind === EventKind.UNKNOWN ? e.payload.code : e.kind;
      if (!want.includes(code)) continue;
    }
    out.push(e);
    if (f.limit !== undefined && out.length >= f.limit) break;
  }
  return out;
}

/** Kind name (case-insensitive) or "0x41" to its code; throws Error naming the valid kinds. */
export function resolveKind(name: string): number {
  const up = name.toUpperCase();
  if (up in EventKind && up !== "UNKNOWN") return EventKind[up as keyof typeof EventKind];
  if (/^0X[0-9A-F]{1,2}$/.test(up)) return parseInt(up.slice(2), 16);
  const valid = Object.keys(EventKind).filter((k) => k !== "UNKNOWN").join(", ");
  throw new Error(`unknown event kind "${name}" (kinds: ${valid})`);
}

/** `rrx log events` text: one line per event. */
export function formatEvents(log: ParsedLog, f: EventFilter = {}): string[] {
  return filterEvents(log, f).map(formatEvent);
}

/** `rrx log events --json`: one JSON object per line (JSON Lines). */
export function eventsJsonLines(log: ParsedLog, f: EventFilter = {}): string[] {
  return filterEvents(log, f).map((e) => JSON.stringify(eventToJson(e)));
}

/**
 * Compare two logs as recordings: compared section, event stream and trailer. Host
 * section and chunking are ignored. Returns one line per difference (empty = same),
 * stopping at the first differing event.
 */
export function diffLogs(a: ParsedLog, b: ParsedLog, maxLines = 20): string[] {
  const out: string[] = [];
  if (a.comparedJson !== b.comparedJson) {
    const ca = a.header.compared as Record<string, unknown>, cb = b.header.compared as Record<string, unknown>;
    const keys = [...new Set([...Object.keys(ca), ...Object.keys(cb)])].sort();
    for (const k of keys) {
      if (JSON.stringify(ca[k]) !== JSON.stringify(cb[k])) out.push(`header: ${k} differs`);
    }
  }
  const n = Math.min(a.events.length, b.events.length);
  for (let i = 0; i < n; i++) {
    const ea = a.events[i]!, eb = b.events[i]!;
    const ja = JSON.stringify(eventToJson(ea)), jb = JSON.stringify(eventToJson(eb));
    if (ja !== jb) {
      if (ea.kind === EventKind.HASH && eb.kind === EventKind.HASH && ea.icount === eb.icount) {
        out.push(`event ${i} at icount ${ea.icount}: hash mismatch: ${formatHashDiff(diffHashes(ea.payload, eb.payload))}`);
      } else {
        out.push(`event ${i} differs: ${formatEvent(ea).trim()} vs ${formatEvent(eb).trim()}`);
      }
      return out.slice(0, maxLines);
    }
  }
  if (a.events.length !== b.events.length) out.push(`event count differs: ${a.events.length} vs ${b.events.length}`);
  const ta = a.trailer, tb = b.trailer;
  if (!ta || !tb) {
    if (ta !== tb) out.push(`only ${ta ? "the first" : "the second"} log has a trailer`);
  } else {
    if (ta.finalIcount !== tb.finalIcount) out.push(`final icount differs: ${ta.finalIcount} vs ${tb.finalIcount}`);
    if (ta.reason !== tb.reason || ta.status !== tb.status) out.push(`exit differs: ${ta.reason} ${ta.status} vs ${tb.reason} ${tb.status}`);
    if (ta.hashes && tb.hashes) {
      const d = diffHashes(ta.hashes, tb.hashes);
      if (!d.equal) out.push(`final hashes differ: ${formatHashDiff(d)}`);
    }
  }
  return out.slice(0, maxLines);
}

export type { EventKindCode };
