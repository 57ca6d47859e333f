/**
 * readLog(bytes): parse a whole rrx log. Total over all inputs: every byte string gives
 * a ParsedLog (possibly `truncated`) or throws a LogError with a one-line message. Never
 * another exception, never a hang, never an allocation larger than the input.
 *
 * Readers are dispatched on the header's format version (READERS). v2 = v1 plus a SNAPSHOT
 * chunk: a log that starts from a machine state at icount N instead of a fresh boot. The two
 * share one chunk loop; every v2 addition is gated on the version, so a v1 log is read by
 * exactly the v1 rules (a 'S' chunk in a v1 log is still an unknown chunk kind). v3 = v2 plus
 * the compared section's `cpu` key (the CPU model), which v1 and v2 logs may not have.
 */
import { readFileSync } from "node:fs";
import { crc32 } from "./crc32.ts";
import {
  ByteReader, CHUNK_CRC_BYTES, CHUNK_HEADER_BYTES, CHUNK_KIND_NAMES, ChunkKind, DecodeError, ELF_MAGIC, EventKind,
  HeaderFlag, LIMITS, LogError, MAGIC, SUPPORTED_VERSIONS,
  checkCompared, checkHost, checkSnapshotInfo, decodeEventBody, decodeImagePayload, decodeSnapshotPayload, decodeTrailerPayload,
  jsonDepth, newCodecState, sha256Hex,
  type ComparedSection, type SnapshotData, type SnapshotInfo, type EventKindCode, type HashRecord, type HostSection, type LogEvent, type LogHeader,
  type PackedImage, type Trailer,
} from "./format.ts";
import { fromUtf8 } from "./bytes.ts";

export { LogError } from "./format.ts";

export interface ChunkInfo {
  kind: number;
  /** Byte offset of the chunk header in the file. */
  offset: number;
  /** Whole chunk size in bytes (header + payload + CRC). */
  size: number;
  startIcount: number;
  endIcount: number;
  events: number;
  /** Index in ParsedLog.events of this chunk's first event. */
  firstEvent: number;
}

export interface KindStats { count: number; bytes: number }

export interface Truncation {
  /** How far the log is complete: end icount of the last complete chunk. */
  atIcount: number;
  /** Byte offset where the incomplete (or missing) part starts. */
  atOffset: number;
  /** One line: why the log is considered truncated. */
  reason: string;
}

export interface ParsedLog {
  version: number;
  header: LogHeader;
  /** The compared section exactly as stored (canonical JSON): compare logs with it. */
  comparedJson: string;
  hostJson: string;
  headerFlags: number;
  /** Header size in bytes (including its CRC). */
  headerBytes: number;
  images: (PackedImage & { sha256: string })[];
  /**
   * v2: the machine state the log starts from (null: it starts from a fresh boot). When the
   * header announces a snapshot but the file ends before its chunk, this is null and
   * `truncated` says so: such a log cannot be replayed.
   */
  snapshot: SnapshotData | null;
  /** The icount the log starts at: the snapshot's icount, else 0. */
  startIcount: number;
  events: LogEvent[];
  hashes: { icount: number; record: HashRecord }[];
  chunks: ChunkInfo[];
  /** End icount of the last complete chunk (the trailer's final icount when complete). */
  endIcount: number;
  trailer: Trailer | null;
  truncated: Truncation | null;
  /** Per event kind (on-disk code; unknown kinds under their own code): count and bytes. */
  stats: Map<number, KindStats>;
  byteLength: number;
}

export interface ReadOptions {
  /**
   * Salvage mode: a corrupt chunk (bad CRC, bad fields) ends the log as `truncated` at the
   * last good chunk instead of throwing. Header errors still throw.
   */
  salvage?: boolean;
  /**
   * Read as a build that knows only versions up to this one would (default: all of
   * SUPPORTED_VERSIONS). Tools that cannot start a machine from a snapshot pass 1.
   */
  maxVersion?: number;
}

type VersionReader = (bytes: Uint8Array, opts: ReadOptions) => ParsedLog;

const READERS: Record<number, VersionReader> = { 1: readV1, 2: readV2, 3: readV3, 4: readV4 };

function startsWith(b: Uint8Array, prefix: Uint8Array): boolean {
  if (b.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (b[i] !== prefix[i]) return false;
  return true;
}

/** Parse a log. Throws LogError (only) for anything that is not a readable rrx log. */
export function readLog(bytes: Uint8Array, opts: ReadOptions = {}): ParsedLog {
  if (startsWith(bytes, ELF_MAGIC)) throw new LogError("this is an ELF kernel, not an rrx log; use `rrx run`", 0);
  if (bytes.length < MAGIC.length) {
    if (bytes.length > 0 && startsWith(MAGIC, bytes)) throw new LogError(`log truncated inside its header (${bytes.length} bytes)`, 0);
    throw new LogError(bytes.length === 0 ? "not an rrx log (empty file)" : "not an rrx log (bad magic)", 0);
  }
  if (!startsWith(bytes, MAGIC)) throw new LogError("not an rrx log (bad magic)", 0);
  if (bytes.length < MAGIC.length + 2) throw new LogError(`log truncated inside its header (${bytes.length} bytes)`, 0);
  const version = bytes[8]! | (bytes[9]! << 8);
  const known = SUPPORTED_VERSIONS.filter((v) => opts.maxVersion === undefined || v <= opts.maxVersion);
  const reader = known.includes(version) ? READERS[version] : undefined;
  if (!reader) {
    const newest = Math.max(...known);
    const what = known.length === 1 ? `version ${known[0]}` : `versions ${known.join(", ")}`;
    const hint = version === 2 && newest < 2 ? "; version 2 logs start from a machine snapshot (rrx gdb --record)"
      : version === 3 && newest < 3 ? "; version 3 logs name their CPU model"
      : version === 4 && newest < 4 ? "; version 4 logs name their board version" : "";
    throw new LogError(`log format version ${version} is not supported (this rrx reads ${what}${version > newest ? "; upgrade rrx" : ""})${hint}`, 8);
  }
  return reader(bytes, opts);
}

/** Parse a JSON section: UTF-8, bounded depth, must be an object. */
function parseSection(b: Uint8Array, what: string, offset: number): unknown {
  const text = fromUtf8(b);
  if (text === null) throw new LogError(`header ${what} section is not valid UTF-8`, offset);
  if (jsonDepth(text) > LIMITS.jsonDepth) throw new LogError(`header ${what} section nests deeper than ${LIMITS.jsonDepth}`, offset);
  try {
    return JSON.parse(text);
  } catch {
    throw new LogError(`header ${what} section is not valid JSON`, offset);
  }
}

function readV1(bytes: Uint8Array, opts: ReadOptions): ParsedLog {
  return readChunked(bytes, opts, 1);
}

/** v2: v1 plus the SNAPSHOT chunk (compared section key `snapshot`). */
function readV2(bytes: Uint8Array, opts: ReadOptions): ParsedLog {
  return readChunked(bytes, opts, 2);
}

/** v3: v2 plus the compared section's `cpu` (the CPU model the log was recorded with). */
function readV3(bytes: Uint8Array, opts: ReadOptions): ParsedLog {
  return readChunked(bytes, opts, 3);
}

/** v4: v3 plus the compared section's `boardVersion` (the board version the log was recorded with). */
function readV4(bytes: Uint8Array, opts: ReadOptions): ParsedLog {
  return readChunked(bytes, opts, 4);
}

function readChunked(bytes: Uint8Array, opts: ReadOptions, version: 1 | 2 | 3 | 4): ParsedLog {
  const len = bytes.length;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const truncHeader = () => new LogError(`log truncated inside its header (${len} bytes)`, 0);

  // ---- header
  if (len < 16) throw truncHeader();
  const flags = dv.getUint16(10, true);
  if (flags & ~HeaderFlag.PACKED) throw new LogError(`header has unknown flags 0x${flags.toString(16)}`, 10);
  const cLen = dv.getUint32(12, true);
  if (cLen > LIMITS.comparedBytes) throw new LogError(`header compared section length ${cLen} exceeds ${LIMITS.comparedBytes}`, 12);
  if (len < 16 + cLen + 4) throw truncHeader();
  const hOff = 16 + cLen;
  const hLen = dv.getUint32(hOff, true);
  if (hLen > LIMITS.hostBytes) throw new LogError(`header host section length ${hLen} exceeds ${LIMITS.hostBytes}`, hOff);
  const crcOff = hOff + 4 + hLen;
  if (len < crcOff + 4) throw truncHeader();
  const want = dv.getUint32(crcOff, true);
  const got = crc32(bytes, 0, crcOff);
  if (want !== got) throw new LogError(`header CRC mismatch (stored ${hex32(want)}, computed ${hex32(got)})`, crcOff);
  const comparedRaw = bytes.subarray(16, 16 + cLen);
  const hostRaw = bytes.subarray(hOff + 4, crcOff);
  const compared = parseSection(comparedRaw, "compared", 16);
  const cErr = checkCompared(compared);
  if (cErr) throw new LogError(`header: ${cErr}`, 16);
  const host = parseSection(hostRaw, "host", hOff + 4);
  const hErr = checkHost(host);
  if (hErr) throw new LogError(`header: ${hErr}`, hOff + 4);
  const header: LogHeader = { compared: compared as ComparedSection, host: host as HostSection };
  const headerBytes = crcOff + 4;
  // v3: the CPU model; a v1/v2 log was recorded before models, with the legacy one.
  if (version < 3 && (compared as ComparedSection).cpu !== undefined) {
    throw new LogError(`header: a version ${version} log cannot name a CPU model (cpu needs version 3)`, 16);
  }
  // v4: the board version; a v1-v3 log was recorded with version 1 of its board.
  if (version < 4 && (compared as ComparedSection).boardVersion !== undefined) {
    throw new LogError(`header: a version ${version} log cannot name a board version (boardVersion needs version 4)`, 16);
  }
  // v2: a log that starts from a snapshot says so in its compared section.
  let snapInfo: SnapshotInfo | null = null;
  if (version >= 2 && (compared as ComparedSection).snapshot !== undefined) {
    const sErr = checkSnapshotInfo((compared as ComparedSection).snapshot);
    if (sErr) throw new LogError(`header: ${sErr}`, 16);
    snapInfo = (compared as ComparedSection).snapshot as SnapshotInfo;
  }

  const log: ParsedLog = {
    version, header, headerFlags: flags, headerBytes,
    comparedJson: fromUtf8(comparedRaw)!, hostJson: fromUtf8(hostRaw)!,
    images: [], snapshot: null, startIcount: 0, events: [], hashes: [], chunks: [], endIcount: 0,
    trailer: null, truncated: null, stats: new Map(), byteLength: len,
  };

  // ---- chunks
  let off = headerBytes;
  let prevEnd = 0;
  let sawEvents = false;
  let sawSnapshot = false;
  const truncate = (reason: string) => { log.truncated = { atIcount: prevEnd, atOffset: off, reason }; };

  while (off < len) {
    if (log.trailer) {
      if (opts.salvage) break;
      throw new LogError(`${len - off} unexpected bytes after the trailer at offset ${off}`, off);
    }
    if (len - off < CHUNK_HEADER_BYTES) { truncate(`file ends inside a chunk header at offset ${off}`); break; }
    const kind = bytes[off]!;
    const cflags = bytes[off + 1]!;
    const reserved = dv.getUint16(off + 2, true);
    const pLen = dv.getUint32(off + 4, true);
    const where = `chunk at offset ${off}`;
    // Everything that can be judged before the CRC is judged on values that bound the read.
    if (pLen > LIMITS.chunkPayload) {
      if (opts.salvage) { truncate(`${where}: payload length ${pLen} exceeds ${LIMITS.chunkPayload}`); break; }
      throw new LogError(`${where}: payload length ${pLen} exceeds the limit of ${LIMITS.chunkPayload} bytes`, off);
    }
    const size = CHUNK_HEADER_BYTES + pLen + CHUNK_CRC_BYTES;
    if (len - off < size) { truncate(`file ends inside the ${CHUNK_KIND_NAMES[kind] ?? "unknown"} chunk at offset ${off}`); break; }
    const icLo = dv.getUint32(off + 8, true), icHi = dv.getUint32(off + 12, true);
    const startIc = icHi * 0x100000000 + icLo;
    const endLo = dv.getUint32(off + 16, true), endHi = dv.getUint32(off + 20, true);
    const endIc = endHi * 0x100000000 + endLo;
    const count = dv.getUint32(off + 24, true);
    const wantCrc = dv.getUint32(off + size - 4, true);
    const gotCrc = crc32(bytes, off, off + size - 4);

    const fail = (msg: string): "stop" => {
      if (opts.salvage) { truncate(`${where}: ${msg}`); return "stop"; }
      throw new LogError(`${where} (icount ${startIc}): ${msg}`, off, startIc);
    };
    if (wantCrc !== gotCrc) { fail(`CRC mismatch (stored ${hex32(wantCrc)}, computed ${hex32(gotCrc)})`); break; }
    if (!CHUNK_KIND_NAMES[kind] || (kind === ChunkKind.SNAPSHOT && version < 2)) { fail(`unknown chunk kind 0x${kind.toString(16).padStart(2, "0")}`); break; }
    if (cflags !== 0 || reserved !== 0) { fail(`nonzero flags/reserved bytes`); break; }
    if (icHi > 0x1fffff || endHi > 0x1fffff) { fail(`icount exceeds 2^53-1`); break; }
    if (snapInfo && !sawSnapshot && kind !== ChunkKind.IMAGE && kind !== ChunkKind.SNAPSHOT) {
      fail(`${CHUNK_KIND_NAMES[kind]} chunk before the SNAPSHOT chunk the header announces`); break;
    }
    // The SNAPSHOT chunk moves the log's position from 0 to its icount; checked below.
    if (kind !== ChunkKind.SNAPSHOT && startIc !== prevEnd) { fail(`starts at icount ${startIc} but the previous chunk ended at ${prevEnd}`); break; }
    if (endIc < startIc) { fail(`ends at icount ${endIc}, before its start`); break; }

    const info: ChunkInfo = { kind, offset: off, size, startIcount: startIc, endIcount: endIc, events: count, firstEvent: log.events.length };
    const r = new ByteReader(bytes, off + CHUNK_HEADER_BYTES, off + CHUNK_HEADER_BYTES + pLen);
    try {
      if (kind === ChunkKind.IMAGE) {
        if (!(flags & HeaderFlag.PACKED)) throw new DecodeError("image chunk in a log without the PACKED flag", r.pos);
        if (sawEvents) throw new DecodeError("image chunk after event chunks", r.pos);
        if (count !== 0 || endIc !== startIc) throw new DecodeError("image chunk with events or icount progress", r.pos);
        const img = decodeImagePayload(r);
        const listed = header.compared.images.find((i) => i.role === img.role && i.name === img.name);
        if (!listed || listed.sha256 !== img.sha256 || listed.size !== img.data.length) {
          throw new DecodeError(`packed image ${img.role}:${img.name} does not match the header's image list`, r.pos);
        }
        if (log.images.some((i) => i.role === img.role && i.name === img.name)) {
          throw new DecodeError(`image ${img.role}:${img.name} packed twice`, r.pos);
        }
        log.images.push(img);
      } else if (kind === ChunkKind.SNAPSHOT) {
        if (!snapInfo) throw new DecodeError("snapshot chunk in a log whose header announces none", r.pos);
        if (sawSnapshot) throw new DecodeError("second snapshot chunk", r.pos);
        if (count !== 0 || startIc !== snapInfo.icount || endIc !== snapInfo.icount) {
          throw new DecodeError(`snapshot chunk must be at icount ${snapInfo.icount} with no events`, r.pos);
        }
        if (pLen !== snapInfo.bytes) throw new DecodeError(`snapshot chunk holds ${pLen} bytes but the header says ${snapInfo.bytes}`, r.pos);
        const payload = bytes.subarray(r.pos, r.pos + pLen);
        if (sha256Hex(payload) !== snapInfo.sha256) throw new DecodeError("snapshot SHA-256 does not match the header", r.pos);
        log.snapshot = decodeSnapshotPayload(r, startIc, header.compared.memoryBytes);
        log.startIcount = startIc;
        sawSnapshot = true;
      } else if (kind === ChunkKind.EVENTS) {
        sawEvents = true;
        decodeEvents(log, r, startIc, endIc, count);
      } else {
        if (count !== 0) throw new DecodeError(`trailer chunk with event count ${count}`, r.pos);
        const t = decodeTrailerPayload(r, endIc);
        if (t.eventCount !== log.events.length) {
          throw new DecodeError(`trailer says ${t.eventCount} events but the log holds ${log.events.length}`, r.pos);
        }
        log.trailer = t;
      }
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      if (fail(`${e.message} (payload byte ${e.pos - off - CHUNK_HEADER_BYTES})`) === "stop") break;
    }
    log.chunks.push(info);
    prevEnd = endIc;
    log.endIcount = endIc;
    off += size;
  }

  if (snapInfo && !log.snapshot && !log.truncated) {
    // A complete-looking log (trailer present) whose snapshot never came: the chunk-order check
    // above already threw for any other chunk, so only an empty chunk list gets here.
    log.truncated = { atIcount: 0, atOffset: off, reason: "log ends before its snapshot chunk" };
  }
  if (!log.truncated && !log.trailer) {
    log.truncated = { atIcount: prevEnd, atOffset: off, reason: "log has no trailer (recording did not finish)" };
  }
  if (!log.truncated && (flags & HeaderFlag.PACKED) && log.images.length !== header.compared.images.length) {
    const missing = header.compared.images.find((i) => !log.images.some((p) => p.role === i.role && p.name === i.name))!;
    throw new LogError(`packed log lacks image ${missing.role}:${missing.name}`, headerBytes);
  }
  return log;
}

/** Decode a chunk's events; commits them to `log` only if the whole chunk decodes. */
function decodeEvents(log: ParsedLog, r: ByteReader, start: number, end: number, count: number): void {
  const st = newCodecState();
  let ic = start;
  const events: LogEvent[] = [];
  const sizes: number[] = [];
  for (let i = 0; i < count; i++) {
    if (r.done) r.fail(`chunk declares ${count} events but holds ${i}`);
    const at = r.pos;
    ic += r.uvarint();
    if (ic > end) r.fail(`event icount ${ic} beyond the chunk's end icount ${end}`);
    const { kind, payload } = decodeEventBody(r, st);
    events.push({ icount: ic, kind, payload } as LogEvent);
    sizes.push(r.pos - at);
  }
  if (!r.done) r.fail(`${r.remaining} bytes after the chunk's ${count} events`);
  events.forEach((ev, i) => {
    log.events.push(ev);
    if (ev.kind === EventKind.HASH) log.hashes.push({ icount: ev.icount, record: ev.payload });
    addStat(log.stats, ev.kind === EventKind.UNKNOWN ? ev.payload.code : ev.kind, sizes[i]!);
  });
}

function addStat(stats: Map<number, KindStats>, code: number, bytes: number): void {
  const s = stats.get(code);
  if (s) { s.count++; s.bytes += bytes; } else stats.set(code, { count: 1, bytes });
}

function hex32(v: number): string {
  return "0x" + v.toString(16).padStart(8, "0");
}

export type { EventKindCode };

/**
 * Read and parse a log file. File-system errors (ENOENT, EACCES) propagate as they are;
 * everything about the bytes is a LogError.
 */
export function readLogFile(path: string, opts: ReadOptions = {}): ParsedLog {
  return readLog(new Uint8Array(readFileSync(path)), opts);
}
