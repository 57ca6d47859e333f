/**
 * gdb Remote Serial Protocol codec: framing, checksums, binary escaping,
 * run-length decoding, hex helpers and a streaming parser.
 *
 * Packet payloads are handled as "byte strings": JS strings whose every char
 * code is 0..255 (latin1). That keeps binary data (X packets, qXfer replies)
 * lossless while letting the dispatcher use ordinary string operations.
 *
 * Nothing in here throws on malformed input: the parser reports problems as
 * events and resynchronises on the next '$'.
 */

// ---------------------------------------------------------------- bytes <-> byte strings

export function bytesToBinStr(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode.apply(null, Array.from(b.subarray(i, i + 8192)));
  }
  return s;
}

export function binStrToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

// ---------------------------------------------------------------- hex

const HEX = "0123456789abcdef";

export function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += HEX[b[i] >> 4] + HEX[b[i] & 15];
  return s;
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Decode an even-length hex string; null if malformed. */
export function fromHex(s: string): Uint8Array | null {
  if (s.length % 2 !== 0) return null;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexVal(s.charCodeAt(2 * i));
    const lo = hexVal(s.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) return null;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/** Parse a big-endian hex number (as in addresses "m8048000,4"); null if empty/malformed/too large (> 2^53). */
export function parseHexNum(s: string): number | null {
  if (s.length === 0 || s.length > 13) return null;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const d = hexVal(s.charCodeAt(i));
    if (d < 0) return null;
    v = v * 16 + d;
  }
  return v;
}

/** Text → hex of its UTF-8 bytes (qRcmd output, O packets). */
export function textToHex(s: string): string {
  return toHex(new TextEncoder().encode(s));
}

/** Hex → UTF-8 text; null if malformed. */
export function hexToText(h: string): string | null {
  const b = fromHex(h);
  return b === null ? null : new TextDecoder().decode(b);
}

/** A 32-bit value as 8 hex digits in target (little-endian) byte order, as in g packets. */
export function u32leHex(v: number): string {
  v = v >>> 0;
  let s = "";
  for (let i = 0; i < 4; i++) {
    const b = (v >>> (8 * i)) & 0xff;
    s += HEX[b >> 4] + HEX[b & 15];
  }
  return s;
}

/** Inverse of u32leHex; null if malformed. Accepts 1..4 bytes (shorter = zero-extended). */
export function parseU32le(h: string): number | null {
  const b = fromHex(h);
  if (b === null || b.length === 0 || b.length > 4) return null;
  let v = 0;
  for (let i = b.length - 1; i >= 0; i--) v = v * 256 + b[i];
  return v >>> 0;
}

// ---------------------------------------------------------------- checksum, escaping, framing

/** Modulo-256 sum of the bytes of a byte string. */
export function checksum(s: string): number {
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum = (sum + s.charCodeAt(i)) & 0xff;
  return sum;
}

/** Characters that must be escaped inside a packet body. */
function needsEscape(c: number): boolean {
  return c === 0x23 /* # */ || c === 0x24 /* $ */ || c === 0x7d /* } */ || c === 0x2a /* * */;
}

/** Binary-escape a byte string: '}' then (c ^ 0x20) for # $ } *. */
export function escapeBinary(s: string): string {
  let out = "";
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (needsEscape(c)) {
      out += s.slice(start, i) + "}" + String.fromCharCode(c ^ 0x20);
      start = i + 1;
    }
  }
  return start === 0 ? s : out + s.slice(start);
}

/** Undo escapeBinary. A trailing lone '}' is dropped. */
export function unescapeBinary(s: string): string {
  if (s.indexOf("}") < 0) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x7d) {
      i++;
      if (i < s.length) out += String.fromCharCode(s.charCodeAt(i) ^ 0x20);
    } else out += s[i];
  }
  return out;
}

/**
 * Frame a payload: `$` + escaped payload + `#` + two hex checksum digits.
 * The payload is escaped (harmless for ordinary text replies, which never
 * contain the four special characters) so binary replies are safe.
 */
export function encodePacket(payload: string): string {
  const body = escapeBinary(payload);
  const cs = checksum(body);
  return "$" + body + "#" + HEX[cs >> 4] + HEX[cs & 15];
}

/**
 * Run-length encode (the form gdb accepts from stubs): a run of n+1 equal
 * chars (4 <= n+1) becomes `c*X` with X = n + 29, skipping the counts whose
 * X would be '#' or '$' (n = 6, 7). Only for already-escaped bodies.
 * Used by tests; the stub does not compress its replies.
 */
export function rleEncode(body: string): string {
  let out = "";
  let i = 0;
  while (i < body.length) {
    const ch = body[i];
    let run = 1;
    while (i + run < body.length && body[i + run] === ch && run < 98) run++;
    // don't start a run on '}' (escape prefix) or after it (escaped char) — keep it simple: only plain chars
    if (run >= 4 && ch !== "}" && ch !== "*" && !(i > 0 && body[i - 1] === "}")) {
      let n = run - 1; // repeats after the first char
      if (n === 6 || n === 7) n = 5; // '#' and '$' are not allowed as counts
      out += ch + "*" + String.fromCharCode(n + 29);
      i += n + 1;
    } else {
      out += ch;
      i++;
    }
  }
  return out;
}

/**
 * Expand run-length encoding in a raw packet body: `X*c` = X repeated
 * (c - 29) more times. The escape layer is left alone (gdb's order: RLE
 * first, then binary unescaping, only for binary packets). A '*' without a
 * preceding char or count is dropped.
 */
export function rleDecode(body: string): string {
  if (body.indexOf("*") < 0) return body;
  let out = "";
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === "*") {
      const cnt = i + 1 < body.length ? body.charCodeAt(i + 1) - 29 : -1;
      i++;
      if (cnt > 0 && out.length > 0) out += out[out.length - 1].repeat(cnt);
    } else out += c;
  }
  return out;
}

// ---------------------------------------------------------------- streaming parser

export type RspEvent =
  /** A well-formed packet; `data` is the RLE-expanded body (still binary-escaped). */
  | { type: "packet"; data: string }
  | { type: "ack" }
  | { type: "nak" }
  /** A raw 0x03 byte outside a packet: gdb's interrupt request. */
  | { type: "interrupt" }
  /** A complete packet whose checksum did not match (or had non-hex digits). */
  | { type: "bad-checksum"; data: string }
  /** Bytes outside any packet that mean nothing. */
  | { type: "garbage"; bytes: string }
  /** A packet longer than the parser's limit, dropped whole (`bytes`: its length so far). */
  | { type: "oversized"; bytes: number };

const enum St {
  Idle,
  Body,
  Cs1,
  Cs2,
  /** Inside a packet longer than maxPacket: its bytes are counted and dropped. */
  Skip,
  SkipCs1,
  SkipCs2,
}

/**
 * Incremental RSP parser. Feed it arbitrary byte chunks; it returns the
 * events completed by each chunk. Never throws.
 */
export class RspParser {
  private st = St.Idle;
  private body = "";
  private cs1 = 0;
  private garbage = "";

  private skipped = 0;

  /** @param maxPacket packets whose body exceeds this many bytes are dropped (one "oversized" event each). */
  constructor(private readonly maxPacket = 1 << 20) {}

  feed(chunk: Uint8Array | string): RspEvent[] {
    const events: RspEvent[] = [];
    const n = chunk.length;
    const isStr = typeof chunk === "string";
    for (let i = 0; i < n; i++) {
      const c = isStr ? (chunk as string).charCodeAt(i) & 0xff : (chunk as Uint8Array)[i];
      switch (this.st) {
        case St.Idle:
          if (c === 0x24 /* $ */) {
            this.flushGarbage(events);
            this.st = St.Body;
            this.body = "";
          } else if (c === 0x2b /* + */) {
            this.flushGarbage(events);
            events.push({ type: "ack" });
          } else if (c === 0x2d /* - */) {
            this.flushGarbage(events);
            events.push({ type: "nak" });
          } else if (c === 0x03) {
            this.flushGarbage(events);
            events.push({ type: "interrupt" });
          } else {
            this.garbage += String.fromCharCode(c);
            if (this.garbage.length >= 4096) this.flushGarbage(events);
          }
          break;
        case St.Body:
          if (c === 0x23 /* # */) {
            this.st = St.Cs1;
          } else if (c === 0x24 /* $ */) {
            // a new packet start inside a packet: the old one was truncated
            events.push({ type: "garbage", bytes: "$" + this.body });
            this.body = "";
          } else {
            if (this.body.length >= this.maxPacket) {
              // Too long: drop the rest up to its checksum, then report it once.
              this.skipped = this.body.length + 2; // with the "$" and this byte
              this.body = "";
              this.st = St.Skip;
            } else {
              // accumulate in slices for speed when the chunk is a string
              this.body += String.fromCharCode(c);
            }
          }
          break;
        case St.Cs1:
          this.cs1 = c;
          this.st = St.Cs2;
          break;
        case St.Skip:
          if (c === 0x23 /* # */) this.st = St.SkipCs1;
          else if (c === 0x24 /* $ */) {
            // a new packet start: the long one was truncated
            events.push({ type: "oversized", bytes: this.skipped });
            this.st = St.Body;
            this.body = "";
          } else this.skipped++;
          break;
        case St.SkipCs1:
          this.st = St.SkipCs2;
          break;
        case St.SkipCs2:
          events.push({ type: "oversized", bytes: this.skipped });
          this.st = St.Idle;
          break;
        case St.Cs2: {
          const hi = hexVal(this.cs1);
          const lo = hexVal(c);
          const body = this.body;
          this.body = "";
          this.st = St.Idle;
          if (hi < 0 || lo < 0 || ((hi << 4) | lo) !== checksum(body)) {
            events.push({ type: "bad-checksum", data: body });
          } else {
            events.push({ type: "packet", data: rleDecode(body) });
          }
          break;
        }
      }
    }
    this.flushGarbage(events);
    return events;
  }

  private flushGarbage(events: RspEvent[]): void {
    if (this.garbage.length > 0) {
      events.push({ type: "garbage", bytes: this.garbage });
      this.garbage = "";
    }
  }
}

// ---------------------------------------------------------------- outgoing queue with backpressure

/**
 * Buffers outgoing bytes for a transport whose write may accept only part of
 * what it is given (Bun sockets: `write()` returns the number of bytes taken;
 * the rest must be written again on `drain`).
 */
export class OutQueue {
  private chunks: Uint8Array[] = [];
  /** How many writes the transport took only partly (backpressure events). */
  partialWrites = 0;

  /** @param write writes a prefix of `data`, returns how many bytes it took (0..data.length). */
  constructor(private readonly write: (data: Uint8Array) => number) {}

  get pending(): number {
    let n = 0;
    for (const c of this.chunks) n += c.length;
    return n;
  }

  send(data: Uint8Array | string): void {
    const bytes = typeof data === "string" ? binStrToBytes(data) : data;
    if (bytes.length === 0) return;
    this.chunks.push(bytes);
    if (this.chunks.length === 1) this.flush();
  }

  /** Write as much as possible; call again on the transport's drain event. */
  flush(): void {
    while (this.chunks.length > 0) {
      const head = this.chunks[0];
      let n = this.write(head);
      if (!(n > 0)) n = 0;
      if (n >= head.length) {
        this.chunks.shift();
      } else {
        this.partialWrites++;
        this.chunks[0] = head.subarray(n);
        return;
      }
    }
  }
}
