/**
 * LogWriter: builds a v1 log (docs/LOG-FORMAT.md) and hands whole chunks to a sink.
 *
 * The writer never reads host time. The recorder decides when a chunk ends: it calls
 * flushChunk() at least every 100 ms of host time, and on exit / signals. Each chunk is
 * passed to the sink in one write() followed by flush(), so a crash (kill -9) loses at
 * most the events of the chunk being built.
 *
 * Output is a pure function of (header, the sequence of calls): two writers fed the same
 * calls produce identical bytes; only the host section differs between two recordings.
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { crc32 } from "./crc32.ts";
import {
  ByteWriter, CHUNK_HEADER_BYTES, ChunkKind, EventKind, HeaderFlag, LIMITS, SNAPSHOT_FORMAT_VERSION, CPU_MODEL_FORMAT_VERSION, BOARD_VERSION_FORMAT_VERSION,
  checkSnapshotInfo, encodeEvent, sha256Hex, encodeHeaderBody, encodeImagePayload, encodeTrailerPayload, imageInfo, newCodecState,
  type CodecState, type EventKindCode, type HashRecord, type LogHeader, type PackedImage, type PayloadMap, type Trailer,
} from "./format.ts";
import { MAX_UVARINT } from "./varint.ts";

export interface LogSink {
  write(bytes: Uint8Array): void;
  flush(): void;
  close(): void;
  /**
   * Replace the provisional tail (bytes after everything written with write()) with `bytes`.
   * A crash keeps the last tail; the next write() or close() first drops it. This lets the
   * recorder persist the chunk being built every 100 ms without fixing chunk boundaries by
   * host time, so two recordings of the same run stay byte-identical.
   */
  writeTail(bytes: Uint8Array): void;
}

/** Collects everything in memory (tests, `rrx log` tooling). */
export class MemorySink implements LogSink {
  private parts: Uint8Array[] = [];
  private size = 0;
  flushes = 0;
  closed = false;
  private tail: Uint8Array | null = null;
  write(bytes: Uint8Array): void {
    if (this.closed) throw new Error("MemorySink: write after close");
    this.tail = null;
    this.parts.push(bytes.slice());
    this.size += bytes.length;
  }
  writeTail(bytes: Uint8Array): void {
    if (this.closed) throw new Error("MemorySink: write after close");
    this.tail = bytes.slice();
  }
  flush(): void { this.flushes++; }
  close(): void { this.closed = true; this.tail = null; }
  get length(): number { return this.size + (this.tail?.length ?? 0); }
  /** Committed bytes plus the provisional tail (what a crash would leave). */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) { out.set(p, o); o += p.length; }
    if (this.tail) out.set(this.tail, o);
    return out;
  }
}

/**
 * Appends to a file with write(2) directly (no user-space buffering), so what write()
 * returned for is in the kernel and survives kill -9. flush() is a no-op unless
 * `fsync: true` (survive power loss too, at a cost per chunk).
 */
export class FileSink implements LogSink {
  private fd: number | null;
  private committed = 0;
  private tailLen = 0;
  constructor(readonly path: string, private opts: { fsync?: boolean; append?: boolean } = {}) {
    this.fd = openSync(path, opts.append ? "a" : "w", 0o644);
    if (opts.append) this.committed = fstatSync(this.fd).size;
  }
  private dropTail(): void {
    if (this.fd !== null && this.tailLen > 0) { ftruncateSync(this.fd, this.committed); this.tailLen = 0; }
  }
  private put(bytes: Uint8Array, at: number): void {
    let off = 0;
    while (off < bytes.length) off += writeSync(this.fd!, bytes, off, bytes.length - off, at + off);
  }
  write(bytes: Uint8Array): void {
    if (this.fd === null) throw new Error(`${this.path}: write after close`);
    this.dropTail();
    this.guarded(() => this.put(bytes, this.committed));
    this.committed += bytes.length;
  }
  writeTail(bytes: Uint8Array): void {
    if (this.fd === null) throw new Error(`${this.path}: write after close`);
    // Write the new tail over the old one, then cut anything left of a longer old tail.
    this.guarded(() => this.put(bytes, this.committed));
    if (bytes.length < this.tailLen) ftruncateSync(this.fd, this.committed + bytes.length);
    this.tailLen = bytes.length;
  }
  /**
   * A failed write (a full disk: ENOSPC) may leave part of a chunk in the file: cut the file
   * back to the last whole chunk, so it reads as a log truncated there, and rethrow.
   */
  private guarded(f: () => void): void {
    try {
      f();
    } catch (e) {
      try { ftruncateSync(this.fd!, this.committed); } catch { /* nothing better to do */ }
      this.tailLen = 0;
      throw e;
    }
  }
  flush(): void {
    if (this.fd !== null && this.opts.fsync) fsyncSync(this.fd);
  }
  close(): void {
    if (this.fd === null) return;
    this.dropTail();
    const fd = this.fd;
    this.fd = null;
    closeSync(fd);
  }
}

export interface LogWriterOptions {
  /**
   * Images to store in the log (--pack). Each must be listed in header.compared.images
   * with the same role, name, size and SHA-256; the header's PACKED flag is set.
   */
  pack?: PackedImage[];
  /**
   * Close the current chunk automatically once its payload reaches this many bytes
   * (default 1 MiB). Deterministic: depends only on the events.
   */
  maxChunkBytes?: number;
  /**
   * Start the log from a machine snapshot (a SNAPSHOT_FORMAT_VERSION log): the encoded
   * payload (encodeSnapshotPayload) and its icount. header.compared.snapshot must be
   * {icount, bytes, sha256} of this payload. Events then start at `icount`.
   */
  snapshot?: { icount: number; payload: Uint8Array };
}

export type TrailerInput = Omit<Trailer, "eventCount">;

export class LogWriter {
  private buf = new ByteWriter(4096);
  private st: CodecState = newCodecState();
  private chunkStart = 0;
  private chunkEvents = 0;
  private lastIcount = 0;
  private total = 0;
  private written = 0;
  private finished = false;
  private readonly maxChunkBytes: number;

  constructor(private readonly sink: LogSink, readonly header: LogHeader, opts: LogWriterOptions = {}) {
    this.maxChunkBytes = opts.maxChunkBytes ?? 1 << 20;
    const pack = opts.pack ?? [];
    for (const img of pack) {
      const info = imageInfo(img.role, img.name, img.data);
      const listed = header.compared.images.find((i) => i.role === info.role && i.name === info.name);
      if (!listed || listed.size !== info.size || listed.sha256 !== info.sha256) {
        throw new Error(`packed image ${img.role}:${img.name} is not listed in the header with size ${info.size} and sha256 ${info.sha256}`);
      }
    }
    if (pack.length > 0 && pack.length !== header.compared.images.length) {
      throw new Error(`--pack needs every image: header lists ${header.compared.images.length}, ${pack.length} given`);
    }
    const snap = opts.snapshot;
    if (snap) {
      const info = header.compared.snapshot as { icount?: unknown; bytes?: unknown; sha256?: unknown } | undefined;
      const err = checkSnapshotInfo(info);
      if (err) throw new Error(`a log that starts from a snapshot needs ${err.replace("compared section: ", "the compared section's ")}`);
      if (info!.icount !== snap.icount || info!.bytes !== snap.payload.length || info!.sha256 !== sha256Hex(snap.payload)) {
        throw new Error("the compared section's snapshot {icount, bytes, sha256} does not describe the snapshot given");
      }
      this.checkIcount(snap.icount);
    } else if (header.compared.snapshot !== undefined) {
      throw new Error("the compared section names a snapshot but none was given");
    }
    const version = header.compared.boardVersion !== undefined ? BOARD_VERSION_FORMAT_VERSION
      : header.compared.cpu !== undefined ? CPU_MODEL_FORMAT_VERSION : snap ? SNAPSHOT_FORMAT_VERSION : undefined;
    const body = encodeHeaderBody(header, pack.length > 0 ? HeaderFlag.PACKED : 0, version);
    const hw = new ByteWriter(body.length + 4);
    hw.raw(body).u32(crc32(body));
    this.emit(hw.bytes());
    for (const img of pack) this.writeChunk(ChunkKind.IMAGE, 0, 0, 0, encodeImagePayload(img));
    if (snap) {
      this.writeChunk(ChunkKind.SNAPSHOT, snap.icount, snap.icount, 0, snap.payload);
      this.chunkStart = snap.icount;
      this.lastIcount = snap.icount;
    }
    this.sink.flush();
  }

  /** Events written so far (including the unflushed chunk). */
  get eventCount(): number { return this.total; }
  /** Bytes handed to the sink so far. */
  get bytesWritten(): number { return this.written; }
  /** Bytes of the chunk being built (lost if the process dies now). */
  get pendingBytes(): number { return this.buf.length; }
  /** icount of the last event (or of the last progress mark). */
  get icount(): number { return Math.max(this.lastIcount, this.chunkStart); }

  private emit(b: Uint8Array): void {
    this.sink.write(b);
    this.written += b.length;
  }

  private writeChunk(kind: number, start: number, end: number, count: number, payload: Uint8Array): void {
    this.emit(chunkBytes(kind, start, end, count, payload));
  }

  private checkOpen(): void {
    if (this.finished) throw new Error("LogWriter: already finished");
  }

  private checkIcount(icount: number): void {
    if (!Number.isSafeInteger(icount) || icount < 0 || icount > MAX_UVARINT) throw new RangeError(`bad icount ${icount}`);
    if (icount < this.icount) throw new RangeError(`icount went backwards: ${icount} < ${this.icount}`);
  }

  /** Append one event. Events must come in non-decreasing icount order. */
  event<K extends EventKindCode>(icount: number, kind: K, payload: PayloadMap[K]): void {
    this.checkOpen();
    this.checkIcount(icount);
    const before = this.buf.length;
    const prev = this.chunkEvents === 0 ? this.chunkStart : this.lastIcount;
    const saved = this.st.hashNames;
    try {
      encodeEvent(this.buf, icount - prev, kind, payload, this.st);
    } catch (e) {
      // Leave the chunk exactly as it was: a rejected event writes nothing.
      this.truncateBuf(before);
      this.st.hashNames = saved;
      throw e;
    }
    this.lastIcount = icount;
    this.chunkEvents++;
    this.total++;
    if (this.buf.length >= this.maxChunkBytes) this.flushChunk();
  }

  private truncateBuf(len: number): void {
    const keep = this.buf.bytes().slice(0, len);
    this.buf.clear();
    this.buf.raw(keep);
  }

  /** Append a state-hash record taken at `icount`. */
  hash(icount: number, record: HashRecord): void {
    this.event(icount, EventKind.HASH, record);
  }

  /**
   * End the current chunk and hand it to the sink. `icountNow` (optional) is how far the
   * guest has run: it becomes the chunk's end icount, so a log cut short by a crash still
   * says how far the recording got with no further input. With no pending events and no
   * progress, nothing is written.
   */
  flushChunk(icountNow?: number): void {
    this.checkOpen();
    let end = this.chunkEvents > 0 ? this.lastIcount : this.chunkStart;
    if (icountNow !== undefined) {
      this.checkIcount(icountNow);
      end = icountNow;
    }
    if (this.chunkEvents === 0 && end === this.chunkStart) return;
    this.writeChunk(ChunkKind.EVENTS, this.chunkStart, end, this.chunkEvents, this.buf.bytes());
    this.sink.flush();
    this.buf.clear();
    this.st = newCodecState();
    this.chunkStart = end;
    this.lastIcount = end;
    this.chunkEvents = 0;
  }

  /**
   * Persist the chunk being built as the sink's provisional tail, with `icountNow` as its end
   * icount, without ending it: chunk boundaries stay a function of the events alone.
   */
  persist(icountNow: number): void {
    this.checkOpen();
    this.checkIcount(icountNow);
    if (this.chunkEvents === 0 && icountNow === this.chunkStart) return;
    this.sink.writeTail(chunkBytes(ChunkKind.EVENTS, this.chunkStart, icountNow, this.chunkEvents, this.buf.bytes()));
    this.sink.flush();
  }

  /** Flush the last chunk, write the trailer, flush and close the sink. */
  finish(trailer: TrailerInput): void {
    this.checkOpen();
    this.checkIcount(trailer.finalIcount);
    const payload = encodeTrailerPayload({ ...trailer, eventCount: this.total });
    this.flushChunk();
    this.writeChunk(ChunkKind.TRAILER, this.chunkStart, trailer.finalIcount, 0, payload);
    this.finished = true;
    this.sink.flush();
    this.sink.close();
  }
}

/** One chunk: header fields, payload, CRC-32 over both. */
function chunkBytes(kind: number, start: number, end: number, count: number, payload: Uint8Array): Uint8Array {
  if (payload.length > LIMITS.chunkPayload) throw new RangeError(`chunk payload ${payload.length} bytes exceeds ${LIMITS.chunkPayload}`);
  const w = new ByteWriter(CHUNK_HEADER_BYTES + payload.length + 4);
  w.u8(kind).u8(0).u16(0).u32(payload.length).u64(start).u64(end).u32(count).raw(payload);
  const body = w.bytes();
  w.u32(crc32(body));
  return w.bytes();
}
