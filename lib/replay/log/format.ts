/**
 * rrx log format, versions 1 to 4: constants, types, and the table-driven event codecs.
 * docs/LOG-FORMAT.md is the byte-by-byte specification; keep the two in step.
 *
 * Layout: header, chunks ('I' images, 'E' events), then one 'T' trailer chunk.
 */
import { ByteReader, ByteWriter, DecodeError, utf8 } from "./bytes.ts";
import { bytesToHex, hexToBytes, type HashRecord } from "../hash.ts";

export { DecodeError } from "./bytes.ts";
export type { HashRecord } from "../hash.ts";

/** "RRXLOG", NUL, SUB (0x1a: stops `type`/`cat` on some systems, flags text-mode damage). */
export const MAGIC = Uint8Array.of(0x52, 0x52, 0x58, 0x4c, 0x4f, 0x47, 0x00, 0x1a);
export const ELF_MAGIC = Uint8Array.of(0x7f, 0x45, 0x4c, 0x46);
/** The version written for a log that starts from a fresh boot (v1 readers read it). */
export const FORMAT_VERSION = 1;
/** The version written for a log that starts from a machine snapshot ('S' chunk). */
export const SNAPSHOT_FORMAT_VERSION = 2;
/**
 * The version written for a log whose compared section names a CPU model (`cpu`): every
 * recording since models exist. v3 = v2 plus that key; a build that reads only v1/v2 would
 * replay such a log with its own CPU, so it must refuse it instead.
 */
export const CPU_MODEL_FORMAT_VERSION = 3;
/**
 * The version written for a log whose compared section names its board version
 * (`boardVersion`): every recording since board versions exist. v4 = v3 plus that key; a
 * build that reads only v1-v3 would replay such a log on its version-1 board, so it must
 * refuse it instead.
 */
export const BOARD_VERSION_FORMAT_VERSION = 4;
/** Every version this build reads (reader.ts keeps one reader per version). */
export const SUPPORTED_VERSIONS: readonly number[] = [1, 2, 3, 4];

/** Header flags (u16). */
export const HeaderFlag = {
  /** The images listed in the compared section are stored as 'I' chunks after the header. */
  PACKED: 0x0001,
} as const;

/** Limits the reader enforces before allocating anything. */
export const LIMITS = {
  comparedBytes: 1 << 20,
  hostBytes: 1 << 16,
  chunkPayload: 256 << 20,
  name: 255,
  keyBytes: 255,
  hostData: 1 << 20,
  reason: 4096,
  hashNames: 4096,
  pages: 1 << 22, // 16 GiB of 4 KiB pages
  jsonDepth: 64,
  /** Machine.saveState bytes in a SNAPSHOT chunk. */
  snapshotState: 16 << 20,
} as const;

/** Chunk header: kind u8, flags u8, reserved u16, length u32, start u64, end u64, count u32. */
export const CHUNK_HEADER_BYTES = 28;
export const CHUNK_CRC_BYTES = 4;

export const ChunkKind = {
  IMAGE: 0x49, // 'I'
  EVENTS: 0x45, // 'E'
  TRAILER: 0x54, // 'T'
  /** v2 only: the machine state the log starts from. */
  SNAPSHOT: 0x53, // 'S'
} as const;
export type ChunkKindCode = (typeof ChunkKind)[keyof typeof ChunkKind];
export const CHUNK_KIND_NAMES: Record<number, string> = { 0x49: "IMAGE", 0x45: "EVENTS", 0x54: "TRAILER", 0x53: "SNAPSHOT" };

/** All errors about a log's bytes are LogErrors with a one-line message. */
export class LogError extends Error {
  constructor(message: string, readonly offset?: number, readonly icount?: number) {
    super(message);
    this.name = "LogError";
  }
}

// ---------------------------------------------------------------------------------------
// Header

export interface ImageInfo {
  /** "kernel", "module", "rom", "bios", "initrd", ... */
  role: string;
  /** File name as given on the command line (basename or path, recorder's choice). */
  name: string;
  size: number;
  /** Lowercase hex SHA-256 of the image bytes. */
  sha256: string;
}

/**
 * The compared section: everything that determines the guest's execution. Two recordings
 * of the same run have byte-identical compared sections (canonical JSON, sorted keys).
 * Extra keys are allowed (e.g. cpu model) and are compared too.
 */
export interface ComparedSection {
  /** Guest RAM size in bytes. */
  memoryBytes: number;
  /** Device names / configuration strings, in machine order. */
  devices: string[];
  /** Virtual instructions per second (the icount -> virtual time rate). */
  ips: number;
  /** Guest-affecting command line arguments (kernel command line, options). */
  args: string[];
  images: ImageInfo[];
  /** Boot date, seconds since the epoch (a logged host input). */
  bootDate: number;
  /** The board and CPU ISA the recording needs (optional: a log without them is "pc", "i386"). */
  board?: string;
  isa?: string;
  /** The CPU model (optional: a log without it was recorded with the legacy model, "rrx-i586"). */
  cpu?: string;
  /**
   * The board's version (lib/boards/board.ts `versions`; optional: a log without it was
   * recorded with version 1 of its board).
   */
  boardVersion?: number;
  [extra: string]: unknown;
}

/** The host section: varies between two recordings of the same thing; never compared. */
export interface HostSection {
  rrxVersion?: string;
  hostname?: string;
  platform?: string;
  /** Wall-clock start, ms since the epoch (passed in by the recorder; lib/ reads no clock). */
  startTime?: number;
  [extra: string]: unknown;
}

export interface LogHeader {
  compared: ComparedSection;
  host: HostSection;
}

/** A packed image (stored in an 'I' chunk). */
export interface PackedImage {
  role: string;
  name: string;
  data: Uint8Array;
}

/** Canonical JSON: object keys sorted (UTF-16 code unit order), no whitespace. */
export function canonicalJson(v: unknown): string {
  const out: string[] = [];
  const walk = (x: unknown, depth: number): void => {
    if (depth > LIMITS.jsonDepth) throw new TypeError("canonicalJson: nesting too deep");
    if (x === null) { out.push("null"); return; }
    switch (typeof x) {
      case "boolean": out.push(x ? "true" : "false"); return;
      case "string": out.push(JSON.stringify(x)); return;
      case "number":
        if (!Number.isFinite(x)) throw new TypeError(`canonicalJson: non-finite number ${x}`);
        out.push(JSON.stringify(x)); return;
      case "object": {
        if (Array.isArray(x)) {
          out.push("[");
          x.forEach((e, i) => { if (i) out.push(","); walk(e === undefined ? null : e, depth + 1); });
          out.push("]");
          return;
        }
        if (ArrayBuffer.isView(x)) throw new TypeError("canonicalJson: binary data is not JSON");
        const keys = Object.keys(x as object).filter((k) => (x as Record<string, unknown>)[k] !== undefined).sort();
        out.push("{");
        keys.forEach((k, i) => {
          if (i) out.push(",");
          out.push(JSON.stringify(k), ":");
          walk((x as Record<string, unknown>)[k], depth + 1);
        });
        out.push("}");
        return;
      }
      default:
        throw new TypeError(`canonicalJson: ${typeof x} is not JSON`);
    }
  };
  walk(v, 0);
  return out.join("");
}

/** Nesting depth of a JSON text (brackets outside strings); bounded scan, no recursion. */
export function jsonDepth(s: string): number {
  let depth = 0, max = 0, inStr = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (inStr) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inStr = false;
    } else if (c === 0x22) inStr = true;
    else if (c === 0x5b || c === 0x7b) { if (++depth > max) max = depth; }
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** Encode the header (magic .. CRC excluded: the caller appends the CRC). */
export function encodeHeaderBody(h: LogHeader, flags: number, version: number = FORMAT_VERSION): Uint8Array {
  const compared = utf8(canonicalJson(h.compared));
  const host = utf8(canonicalJson(h.host));
  if (compared.length > LIMITS.comparedBytes) throw new RangeError(`compared section is ${compared.length} bytes (limit ${LIMITS.comparedBytes})`);
  if (host.length > LIMITS.hostBytes) throw new RangeError(`host section is ${host.length} bytes (limit ${LIMITS.hostBytes})`);
  const w = new ByteWriter(32 + compared.length + host.length);
  w.raw(MAGIC).u16(version).u16(flags);
  w.u32(compared.length).raw(compared);
  w.u32(host.length).raw(host);
  return w.finish();
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isStrArr = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === "string");
const isNonNegInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** Validate a parsed compared section; returns an error message or null. */
export function checkCompared(v: unknown): string | null {
  if (!isObj(v)) return "compared section is not a JSON object";
  if (!isNonNegInt(v.memoryBytes)) return "compared section: memoryBytes must be a non-negative integer";
  if (!isStrArr(v.devices)) return "compared section: devices must be an array of strings";
  if (typeof v.ips !== "number" || !(v.ips > 0) || !Number.isFinite(v.ips)) return "compared section: ips must be a positive number";
  if (!isStrArr(v.args)) return "compared section: args must be an array of strings";
  if (typeof v.bootDate !== "number" || !Number.isFinite(v.bootDate)) return "compared section: bootDate must be a number";
  if (v.board !== undefined && typeof v.board !== "string") return "compared section: board must be a string";
  if (v.boardVersion !== undefined && !(Number.isSafeInteger(v.boardVersion) && (v.boardVersion as number) >= 1)) return "compared section: boardVersion must be a positive integer";
  if (v.isa !== undefined && typeof v.isa !== "string") return "compared section: isa must be a string";
  if (v.cpu !== undefined && typeof v.cpu !== "string") return "compared section: cpu must be a string";
  if (!Array.isArray(v.images)) return "compared section: images must be an array";
  for (const [i, im] of v.images.entries()) {
    if (!isObj(im) || typeof im.role !== "string" || typeof im.name !== "string" || !isNonNegInt(im.size) ||
        typeof im.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(im.sha256)) {
      return `compared section: images[${i}] must be {role, name, size, sha256 (64 lowercase hex)}`;
    }
  }
  return null;
}

export function checkHost(v: unknown): string | null {
  if (!isObj(v)) return "host section is not a JSON object";
  for (const k of ["rrxVersion", "hostname", "platform"]) {
    if (v[k] !== undefined && typeof v[k] !== "string") return `host section: ${k} must be a string`;
  }
  if (v.startTime !== undefined && typeof v.startTime !== "number") return "host section: startTime must be a number";
  return null;
}

// ---------------------------------------------------------------------------------------
// Events

/**
 * Event kinds. 0x01..0x3F: fixed codecs (payload layout given by the table).
 * 0x40..0x7F: length-prefixed (uvarint length, then the body): readers skip unknown ones,
 * so new devices can add kinds here without a version bump. 0x00 and 0x80..0xFF: invalid in v1.
 */
export const EventKind = {
  SERIAL_RX: 0x01,
  KEY: 0x02,
  MOUSE: 0x03,
  IDLE_SKIP: 0x04,
  HASH: 0x05,
  CHECKPOINT_HINT: 0x06,
  INPUT_END: 0x07,
  HOST_DATA: 0x40,
  /** Pseudo-kind (never on disk as such): an unknown length-prefixed kind, kept raw. */
  UNKNOWN: 0x100,
} as const;
export type EventKindName = keyof typeof EventKind;
export type EventKindCode = (typeof EventKind)[EventKindName];

export const FIRST_LP_KIND = 0x40;
export const LAST_LP_KIND = 0x7f;

export interface SerialRxPayload { port: number; byte: number }
export interface KeyPayload { bytes: Uint8Array }
export interface MousePayload { dx: number; dy: number; buttons: number }
export interface IdleSkipPayload { ns: number }
export type CheckpointHintPayload = Record<string, never>;
export type InputEndPayload = Record<string, never>;
export interface HostDataPayload { name: string; data: Uint8Array }
export interface UnknownPayload { code: number; raw: Uint8Array }

export interface PayloadMap {
  [EventKind.SERIAL_RX]: SerialRxPayload;
  [EventKind.KEY]: KeyPayload;
  [EventKind.MOUSE]: MousePayload;
  [EventKind.IDLE_SKIP]: IdleSkipPayload;
  [EventKind.HASH]: HashRecord;
  [EventKind.CHECKPOINT_HINT]: CheckpointHintPayload;
  [EventKind.INPUT_END]: InputEndPayload;
  [EventKind.HOST_DATA]: HostDataPayload;
  [EventKind.UNKNOWN]: UnknownPayload;
}

export type LogEvent = { [K in EventKindCode]: { icount: number; kind: K; payload: PayloadMap[K] } }[EventKindCode];

/** Per-chunk state shared by the HASH codec (the device-name table). */
export interface CodecState { hashNames: string[] | null }
export const newCodecState = (): CodecState => ({ hashNames: null });

export interface KindSpec<P> {
  code: number;
  name: EventKindName;
  /** Throws TypeError/RangeError on an invalid payload (a caller bug). */
  encode(w: ByteWriter, p: P, st: CodecState): void;
  /** Throws DecodeError only. For length-prefixed kinds `r` covers exactly the body. */
  decode(r: ByteReader, st: CodecState): P;
  /** Human-readable one-line payload. */
  text(p: P): string;
  /** JSON-safe payload. */
  json(p: P): unknown;
}

const hexOf = bytesToHex;
const needInt = (v: unknown, lo: number, hi: number, what: string): number => {
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${what} must be an integer in ${lo}..${hi}, got ${v}`);
  return v;
};
const needBytes = (v: unknown, max: number, what: string): Uint8Array => {
  if (!(v instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  if (v.length > max) throw new RangeError(`${what} is ${v.length} bytes (limit ${max})`);
  return v;
};
const needName = (v: unknown, what: string): string => {
  if (typeof v !== "string" || v.length === 0) throw new TypeError(`${what} must be a non-empty string`);
  if (utf8(v).length > LIMITS.name) throw new RangeError(`${what} longer than ${LIMITS.name} UTF-8 bytes`);
  return v;
};
function printable(b: number): string {
  return b >= 0x20 && b < 0x7f ? ` '${String.fromCharCode(b)}'` : "";
}

// ---- HASH codec -------------------------------------------------------------------------
// u8 flags (bit0 names table follows, bit1 pages follow), u8 width W (8 or 16),
// [bit0: uvarint n, n x (uvarint len, UTF-8 name)], W cpu, W ram, W screen,
// n x W device hashes in table order, [bit1: uvarint pageCount, pageCount x W].

const HASH_FLAG_NAMES = 1;
const HASH_FLAG_PAGES = 2;

function sameNames(a: readonly string[] | null, b: readonly string[]): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function encodeHashRecord(w: ByteWriter, rec: HashRecord, st: CodecState, forceNames = false): void {
  if (typeof rec !== "object" || rec === null || typeof rec.devices !== "object" || rec.devices === null) {
    throw new TypeError("hash record must be {cpu, ram, screen, devices}");
  }
  const names = Object.keys(rec.devices).sort();
  if (names.length > LIMITS.hashNames) throw new RangeError(`hash record has ${names.length} devices (limit ${LIMITS.hashNames})`);
  names.forEach((n) => needName(n, "device name"));
  const all = [rec.cpu, rec.ram, rec.screen, ...names.map((n) => rec.devices[n]), ...(rec.pages ?? [])];
  const width = typeof rec.cpu === "string" ? rec.cpu.length / 2 : 0;
  if (width !== 8 && width !== 16) throw new RangeError(`hashes must be 16 or 32 hex digits, got ${JSON.stringify(rec.cpu)}`);
  const bins = all.map((h) => {
    const b = typeof h === "string" ? hexToBytes(h) : null;
    if (!b || b.length !== width) throw new RangeError(`hash ${JSON.stringify(h)} is not ${width * 2} hex digits`);
    return b;
  });
  if (rec.pages !== undefined && (!Array.isArray(rec.pages) || rec.pages.length > LIMITS.pages)) {
    throw new RangeError("hash record pages must be an array of at most " + LIMITS.pages);
  }
  const withNames = forceNames || !sameNames(st.hashNames, names);
  let flags = 0;
  if (withNames) flags |= HASH_FLAG_NAMES;
  if (rec.pages !== undefined) flags |= HASH_FLAG_PAGES;
  w.u8(flags).u8(width);
  if (withNames) {
    w.uvarint(names.length);
    for (const n of names) w.str(n);
    st.hashNames = names;
  }
  for (let i = 0; i < 3 + names.length; i++) w.raw(bins[i]!);
  if (rec.pages !== undefined) {
    w.uvarint(rec.pages.length);
    for (let i = 3 + names.length; i < bins.length; i++) w.raw(bins[i]!);
  }
}

function setOwn(o: Record<string, string>, k: string, v: string): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

export function decodeHashRecord(r: ByteReader, st: CodecState): HashRecord {
  const flags = r.u8();
  if (flags & ~(HASH_FLAG_NAMES | HASH_FLAG_PAGES)) r.fail(`hash record has unknown flags 0x${flags.toString(16)}`);
  const width = r.u8();
  if (width !== 8 && width !== 16) r.fail(`hash width ${width} (must be 8 or 16)`);
  if (flags & HASH_FLAG_NAMES) {
    const n = r.uvarint();
    if (n > LIMITS.hashNames) r.fail(`hash names table has ${n} entries (limit ${LIMITS.hashNames})`);
    const names: string[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const s = r.str(LIMITS.name, "device name");
      if (s.length === 0) r.fail("empty device name");
      if (seen.has(s)) r.fail(`duplicate device name ${JSON.stringify(s)}`);
      seen.add(s);
      names.push(s);
    }
    st.hashNames = names;
  }
  const names = st.hashNames;
  if (!names) return r.fail("hash record without a device-name table");
  const h = () => hexOf(r.rawView(width));
  const rec: HashRecord = { cpu: h(), ram: h(), screen: h(), devices: {} };
  for (const n of names) setOwn(rec.devices, n, h());
  if (flags & HASH_FLAG_PAGES) {
    const n = r.uvarint();
    if (n > LIMITS.pages || n * width > r.remaining) r.fail(`hash record claims ${n} page hashes`);
    const pages = new Array<string>(n);
    for (let i = 0; i < n; i++) pages[i] = h();
    rec.pages = pages;
  }
  return rec;
}

function hashText(p: HashRecord): string {
  const dev = Object.keys(p.devices).map((n) => `${n}=${p.devices[n]}`).join(" ");
  return `cpu=${p.cpu} ram=${p.ram} screen=${p.screen}${dev ? " " + dev : ""}${p.pages ? ` pages=${p.pages.length}` : ""}`;
}

// ---- the table ---------------------------------------------------------------------------

const empty = Object.freeze({}) as Record<string, never>;

export const KIND_TABLE: { [K in EventKindCode]: KindSpec<PayloadMap[K]> } = {
  [EventKind.SERIAL_RX]: {
    code: EventKind.SERIAL_RX, name: "SERIAL_RX",
    encode: (w, p) => { w.u8(needInt(p.port, 0, 255, "port")).u8(needInt(p.byte, 0, 255, "byte")); },
    decode: (r) => ({ port: r.u8(), byte: r.u8() }),
    text: (p) => `port=${p.port} byte=0x${p.byte.toString(16).padStart(2, "0")}${printable(p.byte)}`,
    json: (p) => ({ port: p.port, byte: p.byte }),
  },
  [EventKind.KEY]: {
    code: EventKind.KEY, name: "KEY",
    encode: (w, p) => { w.lpBytes(needBytes(p.bytes, LIMITS.keyBytes, "scancode bytes")); },
    decode: (r) => ({ bytes: r.lpBytes(LIMITS.keyBytes, "scancode bytes") }),
    text: (p) => `scancodes=${Array.from(p.bytes, (b) => b.toString(16).padStart(2, "0")).join(" ")}`,
    json: (p) => ({ bytes: hexOf(p.bytes) }),
  },
  [EventKind.MOUSE]: {
    code: EventKind.MOUSE, name: "MOUSE",
    encode: (w, p) => { w.i16(needInt(p.dx, -32768, 32767, "dx")).i16(needInt(p.dy, -32768, 32767, "dy")).u8(needInt(p.buttons, 0, 255, "buttons")); },
    decode: (r) => ({ dx: r.i16(), dy: r.i16(), buttons: r.u8() }),
    text: (p) => `dx=${p.dx} dy=${p.dy} buttons=0x${p.buttons.toString(16)}`,
    json: (p) => ({ dx: p.dx, dy: p.dy, buttons: p.buttons }),
  },
  [EventKind.IDLE_SKIP]: {
    code: EventKind.IDLE_SKIP, name: "IDLE_SKIP",
    encode: (w, p) => { w.uvarint(p.ns); },
    decode: (r) => ({ ns: r.uvarint() }),
    text: (p) => `ns=${p.ns}`,
    json: (p) => ({ ns: p.ns }),
  },
  [EventKind.HASH]: {
    code: EventKind.HASH, name: "HASH",
    encode: (w, p, st) => encodeHashRecord(w, p, st),
    decode: (r, st) => decodeHashRecord(r, st),
    text: hashText,
    json: (p) => ({ ...p, devices: { ...p.devices } }),
  },
  [EventKind.CHECKPOINT_HINT]: {
    code: EventKind.CHECKPOINT_HINT, name: "CHECKPOINT_HINT",
    encode: () => {},
    decode: () => empty,
    text: () => "",
    json: () => ({}),
  },
  [EventKind.INPUT_END]: {
    code: EventKind.INPUT_END, name: "INPUT_END",
    encode: () => {},
    decode: () => empty,
    text: () => "",
    json: () => ({}),
  },
  [EventKind.HOST_DATA]: {
    code: EventKind.HOST_DATA, name: "HOST_DATA",
    encode: (w, p) => { w.str(needName(p.name, "host data name")).lpBytes(needBytes(p.data, LIMITS.hostData, "host data")); },
    decode: (r) => {
      const name = r.str(LIMITS.name, "host data name");
      if (name.length === 0) r.fail("empty host data name");
      return { name, data: r.lpBytes(LIMITS.hostData, "host data") };
    },
    text: (p) => `name=${JSON.stringify(p.name)} bytes=${hexOf(p.data.subarray(0, 32))}${p.data.length > 32 ? `... (${p.data.length})` : ""}`,
    json: (p) => ({ name: p.name, data: hexOf(p.data) }),
  },
  [EventKind.UNKNOWN]: {
    code: EventKind.UNKNOWN, name: "UNKNOWN",
    encode: (w, p) => { w.raw(needBytes(p.raw, LIMITS.chunkPayload, "raw payload")); },
    decode: (r) => ({ code: -1, raw: r.raw(r.remaining) }),
    text: (p) => `kind=0x${p.code.toString(16)} bytes=${hexOf(p.raw.subarray(0, 32))}${p.raw.length > 32 ? `... (${p.raw.length})` : ""}`,
    json: (p) => ({ code: p.code, raw: hexOf(p.raw) }),
  },
};

/** Spec for an on-disk kind byte, or undefined if v1 does not know it. */
export function kindSpec(code: number): KindSpec<unknown> | undefined {
  if (code === EventKind.UNKNOWN) return undefined;
  return (KIND_TABLE as Record<number, KindSpec<unknown>>)[code];
}

export function kindName(code: number): string {
  const s = (KIND_TABLE as Record<number, KindSpec<unknown>>)[code];
  return s ? s.name : `KIND_0x${code.toString(16).padStart(2, "0")}`;
}

export function isLengthPrefixed(code: number): boolean {
  return code >= FIRST_LP_KIND && code <= LAST_LP_KIND;
}

/**
 * Encode one event (delta, kind byte, payload) into w. For UNKNOWN, payload.code is the
 * on-disk kind (must be 0x40..0x7F and not a known kind).
 */
export function encodeEvent(w: ByteWriter, delta: number, kind: number, payload: unknown, st: CodecState): void {
  const spec = (KIND_TABLE as Record<number, KindSpec<unknown>>)[kind];
  if (!spec) throw new RangeError(`unknown event kind ${kind}`);
  let code = kind;
  if (kind === EventKind.UNKNOWN) {
    code = (payload as UnknownPayload).code;
    if (!isLengthPrefixed(code) || kindSpec(code)) throw new RangeError(`UNKNOWN event code must be an unassigned kind in 0x40..0x7f, got ${code}`);
  }
  w.uvarint(delta).u8(code);
  if (isLengthPrefixed(code)) {
    const body = new ByteWriter(64);
    spec.encode(body, payload, st);
    w.lpBytes(body.bytes());
  } else {
    spec.encode(w, payload, st);
  }
}

/** Decode the kind byte + payload at r (the delta has been read). */
export function decodeEventBody(r: ByteReader, st: CodecState): { kind: EventKindCode; payload: unknown } {
  const code = r.u8();
  if (isLengthPrefixed(code)) {
    const len = r.uvarint();
    if (len > r.remaining) r.fail(`event body of ${len} bytes runs past the chunk`);
    const sub = r.sub(len);
    const spec = kindSpec(code);
    if (!spec) return { kind: EventKind.UNKNOWN, payload: { code, raw: sub.raw(len) } };
    const payload = spec.decode(sub, st);
    if (!sub.done) sub.fail(`${spec.name} body has ${sub.remaining} unexpected trailing bytes`);
    return { kind: code as EventKindCode, payload };
  }
  const spec = kindSpec(code);
  if (!spec) return r.fail(`unknown event kind 0x${code.toString(16).padStart(2, "0")}`);
  return { kind: code as EventKindCode, payload: spec.decode(r, st) };
}

// ---------------------------------------------------------------------------------------
// Trailer: uvarint-len reason, svarint status, uvarint eventCount, u8 hasHashes, [hash record
// with its names table]. The final icount is the trailer chunk's end icount.

export interface Trailer {
  finalIcount: number;
  /** "exit", "halt", "signal:SIGINT", "limit", "triple-fault", ... */
  reason: string;
  /** Exit status (debug-exit value, signal number...). */
  status: number;
  /** Total number of events in the log. */
  eventCount: number;
  /** State hashes at finalIcount. */
  hashes?: HashRecord;
}

export function encodeTrailerPayload(t: Omit<Trailer, "finalIcount">): Uint8Array {
  const w = new ByteWriter(128);
  if (typeof t.reason !== "string") throw new TypeError("trailer reason must be a string");
  if (utf8(t.reason).length > LIMITS.reason) throw new RangeError("trailer reason too long");
  w.str(t.reason).svarint(t.status).uvarint(t.eventCount);
  if (t.hashes) {
    w.u8(1);
    encodeHashRecord(w, t.hashes, newCodecState(), true);
  } else w.u8(0);
  return w.finish();
}

export function decodeTrailerPayload(r: ByteReader, finalIcount: number): Trailer {
  const reason = r.str(LIMITS.reason, "exit reason");
  const status = r.svarint();
  const eventCount = r.uvarint();
  const has = r.u8();
  if (has > 1) r.fail(`trailer hash flag ${has}`);
  const t: Trailer = { finalIcount, reason, status, eventCount };
  if (has) t.hashes = decodeHashRecord(r, newCodecState());
  if (!r.done) r.fail(`trailer has ${r.remaining} trailing bytes`);
  return t;
}

// ---------------------------------------------------------------------------------------
// Image chunk payload: uvarint-len role, uvarint-len name, 32 bytes SHA-256, then the image
// bytes (the rest of the payload).

export function sha256Hex(data: Uint8Array): string {
  const h = new Bun.CryptoHasher("sha256");
  h.update(data);
  return h.digest("hex");
}

export function imageInfo(role: string, name: string, data: Uint8Array): ImageInfo {
  return { role, name, size: data.length, sha256: sha256Hex(data) };
}

export function encodeImagePayload(img: PackedImage): Uint8Array {
  const w = new ByteWriter(img.data.length + 64);
  w.str(needName(img.role, "image role")).str(needName(img.name, "image name"));
  w.raw(hexToBytes(sha256Hex(img.data))!).raw(img.data);
  return w.finish();
}

export function decodeImagePayload(r: ByteReader): PackedImage & { sha256: string } {
  const role = r.str(LIMITS.name, "image role");
  const name = r.str(LIMITS.name, "image name");
  const sha = hexOf(r.rawView(32));
  const data = r.raw(r.remaining);
  if (sha256Hex(data) !== sha) r.fail(`image ${JSON.stringify(name)}: SHA-256 does not match its data`);
  return { role, name, sha256: sha, data };
}

// ---------------------------------------------------------------------------------------
// Snapshot (v2): a log that starts from a machine state instead of a fresh boot. The compared
// section's `snapshot` key is {icount, bytes, sha256} of the SNAPSHOT chunk's payload:
//   u8 encoding (1), uvarint stateLen, state bytes (Machine.saveState),
//   uvarint ramBytes (= memoryBytes), uvarint pageCount,
//   pageCount x (uvarint gap, page bytes): page index = previous index + 1 + gap (the first:
//   gap = index); 4096 bytes, or ramBytes - 4096*index for a partial last page. Exactly the
//   pages that are not all zero are stored, in ascending order (so the encoding is canonical).

export const SNAPSHOT_PAGE = 4096;
export const SNAPSHOT_ENCODING = 1;

/** The compared section's `snapshot` key. */
export interface SnapshotInfo {
  /** The icount the log starts at. */
  icount: number;
  /** SNAPSHOT chunk payload length. */
  bytes: number;
  /** Lowercase hex SHA-256 of the SNAPSHOT chunk payload. */
  sha256: string;
}

/** A decoded snapshot: machine state bytes and the non-zero RAM pages (views into the input). */
export interface SnapshotData {
  icount: number;
  state: Uint8Array;
  ramBytes: number;
  pages: { index: number; data: Uint8Array }[];
}

/** Validate the compared section's `snapshot` key; null when fine. */
export function checkSnapshotInfo(v: unknown): string | null {
  if (!isObj(v) || !isNonNegInt(v.icount) || !isNonNegInt(v.bytes) || typeof v.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(v.sha256)) {
    return "compared section: snapshot must be {icount, bytes, sha256 (64 lowercase hex)}";
  }
  return null;
}

function allZero(b: Uint8Array): boolean {
  // 8 bytes at a time where aligned; pages are 4 KiB so this is the common case.
  if ((b.byteOffset & 7) === 0 && (b.length & 7) === 0) {
    const w = new BigUint64Array(b.buffer, b.byteOffset, b.length >>> 3);
    for (let i = 0; i < w.length; i++) if (w[i] !== 0n) return false;
    return true;
  }
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Encode a machine snapshot (state bytes and the whole RAM) as a SNAPSHOT payload. */
export function encodeSnapshotPayload(state: Uint8Array, ram: Uint8Array): Uint8Array {
  if (state.length > LIMITS.snapshotState) throw new RangeError(`machine state is ${state.length} bytes (limit ${LIMITS.snapshotState})`);
  const nPages = Math.ceil(ram.length / SNAPSHOT_PAGE);
  const keep: number[] = [];
  let bytes = 0;
  for (let i = 0; i < nPages; i++) {
    const p = ram.subarray(i * SNAPSHOT_PAGE, Math.min(ram.length, (i + 1) * SNAPSHOT_PAGE));
    if (!allZero(p)) { keep.push(i); bytes += p.length + 4; }
  }
  if (bytes + state.length + 64 > LIMITS.chunkPayload) {
    throw new RangeError(`snapshot of ${keep.length} non-zero RAM pages exceeds the ${LIMITS.chunkPayload >> 20} MiB chunk limit`);
  }
  const w = new ByteWriter(bytes + state.length + 64);
  w.u8(SNAPSHOT_ENCODING).uvarint(state.length).raw(state).uvarint(ram.length).uvarint(keep.length);
  let prev = -1;
  for (const i of keep) {
    w.uvarint(i - prev - 1).raw(ram.subarray(i * SNAPSHOT_PAGE, Math.min(ram.length, (i + 1) * SNAPSHOT_PAGE)));
    prev = i;
  }
  return w.finish();
}

/** Decode a SNAPSHOT payload; `ramBytes` is the compared section's memoryBytes. Throws DecodeError only. */
export function decodeSnapshotPayload(r: ByteReader, icount: number, ramBytes: number): SnapshotData {
  const enc = r.u8();
  if (enc !== SNAPSHOT_ENCODING) r.fail(`snapshot encoding ${enc} is not supported (this rrx reads ${SNAPSHOT_ENCODING})`);
  const sLen = r.uvarint();
  if (sLen > LIMITS.snapshotState || sLen > r.remaining) r.fail(`snapshot machine state of ${sLen} bytes runs past the chunk`);
  const state = r.raw(sLen);
  const ram = r.uvarint();
  if (ram !== ramBytes) r.fail(`snapshot RAM is ${ram} bytes but the header says memoryBytes ${ramBytes}`);
  const nPages = Math.ceil(ram / SNAPSHOT_PAGE);
  const count = r.uvarint();
  if (count > nPages || count > r.remaining) r.fail(`snapshot claims ${count} pages`);
  const pages: SnapshotData["pages"] = [];
  let prev = -1;
  for (let k = 0; k < count; k++) {
    const idx = prev + 1 + r.uvarint();
    if (idx >= nPages) r.fail(`snapshot page ${idx} is beyond RAM (${nPages} pages)`);
    const len = Math.min(SNAPSHOT_PAGE, ram - idx * SNAPSHOT_PAGE);
    const data = r.rawView(len);
    if (allZero(data)) r.fail(`snapshot page ${idx} is all zero (zero pages are not stored)`);
    pages.push({ index: idx, data });
    prev = idx;
  }
  if (!r.done) r.fail(`snapshot has ${r.remaining} trailing bytes`);
  return { icount, state, ramBytes: ram, pages };
}

export { ByteReader, ByteWriter };
