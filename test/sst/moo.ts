/**
 * A reader (and a small writer) for the SingleStepTests MOO format: the binary, chunked,
 * little-endian container of the 80286 single-instruction tests
 * (https://github.com/SingleStepTests/80286; the format is described by the suite's
 * tools/moo2json.py and the MOO repository).
 *
 * A file is the magic `MOO `, a u32 header length and the header (u8 version, 3 bytes, u32
 * test count, 4-byte CPU name), followed by chunks: a 4-byte ASCII tag and a u32 length, then
 * the payload. Top-level chunks are `META` (skipped here) and `TEST`, whose payload is a u32
 * index followed by sub-chunks:
 *
 * - `NAME`: u32 length, the disassembly (UTF-8).
 * - `BYTS`: u32 count, the instruction bytes.
 * - `INIT` / `FINA`: the initial and final CPU state, made of sub-chunks `REGS` (u16 bitmask
 *   over ax bx cx dx cs ss ds es sp bp si di ip flags, then one u16 per set bit, in that
 *   order), `RAM ` (u32 count, then count × {u32 address, u8 byte}) and `QUEU` (prefetch queue).
 *   The final state lists only the registers and bytes that changed.
 * - `EXCP`: u8 exception vector, u32 physical address of the FLAGS word pushed for it.
 * - `HASH`: the SHA-1 of the original test chunk (20 bytes), which identifies the test.
 * - `CYCL`: the bus cycles (not used here: skipped without decoding).
 *
 * Unknown chunks are skipped, as the format intends. The CI sample (fixtures/sst) is a MOO
 * file written by `writeMoo` whose tests each add a `FORM` sub-chunk (u32 length, the name of
 * the suite file the test came from, e.g. "F6.7"), so one file can hold every form.
 */
import { gunzipSync } from "node:zlib";

/** Register names in the order of the REGS bitmask. */
export const REG_NAMES = ["ax", "bx", "cx", "dx", "cs", "ss", "ds", "es", "sp", "bp", "si", "di", "ip", "flags"] as const;
export const R_AX = 0, R_BX = 1, R_CX = 2, R_DX = 3, R_CS = 4, R_SS = 5, R_DS = 6, R_ES = 7,
  R_SP = 8, R_BP = 9, R_SI = 10, R_DI = 11, R_IP = 12, R_FLAGS = 13;

export interface MooState {
  /** Register values by REG_NAMES index; -1 where the state does not list the register. */
  regs: Int32Array;
  /** Physical addresses and their byte values, in file order. */
  addrs: Uint32Array;
  values: Uint8Array;
}

export interface MooTest {
  idx: number;
  name: string;
  bytes: Uint8Array;
  initial: MooState;
  final: MooState;
  /** An exception the instruction raised: its vector and where its FLAGS image was pushed. */
  exception: { vector: number; flagAddr: number } | null;
  /** SHA-1 of the test, lowercase hex ("" if the test has none). */
  hash: string;
  /** The suite file (instruction form) the test came from, when the file records it (FORM). */
  form: string | null;
  /** The TEST chunk as stored (tag and length included), for writing samples. */
  raw: Uint8Array;
}

export interface MooFile {
  version: number;
  cpu: string;
  /** Test count from the header. */
  count: number;
  tests: MooTest[];
}

const ascii = (b: Uint8Array, o: number, n: number): string => String.fromCharCode(...b.subarray(o, o + n));

function parseState(b: Uint8Array, dv: DataView, o: number, end: number, where: string): MooState {
  const st: MooState = { regs: new Int32Array(REG_NAMES.length).fill(-1), addrs: new Uint32Array(0), values: new Uint8Array(0) };
  while (o < end) {
    if (o + 8 > end) throw new Error(`${where}: truncated state chunk`);
    const tag = ascii(b, o, 4), len = dv.getUint32(o + 4, true);
    const p = o + 8;
    if (p + len > end) throw new Error(`${where}: ${tag} chunk runs past its state`);
    if (tag === "REGS") {
      const mask = dv.getUint16(p, true);
      let q = p + 2;
      for (let r = 0; r < REG_NAMES.length; r++) {
        if (mask & (1 << r)) { st.regs[r] = dv.getUint16(q, true); q += 2; }
      }
    } else if (tag === "RAM ") {
      const n = dv.getUint32(p, true);
      if (4 + n * 5 > len) throw new Error(`${where}: RAM chunk too short for ${n} entries`);
      st.addrs = new Uint32Array(n);
      st.values = new Uint8Array(n);
      for (let k = 0; k < n; k++) {
        st.addrs[k] = dv.getUint32(p + 4 + k * 5, true);
        st.values[k] = b[p + 8 + k * 5]!;
      }
    }
    o = p + len;
  }
  return st;
}

/** Decode a MOO file (not compressed). Throws a one-line error on malformed input. */
export function parseMoo(b: Uint8Array, where = "MOO file"): MooFile {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 8 || ascii(b, 0, 4) !== "MOO ") throw new Error(`${where}: not a MOO file`);
  const hlen = dv.getUint32(4, true);
  if (hlen < 12 || 8 + hlen > b.length) throw new Error(`${where}: bad MOO header`);
  const version = b[8]!;
  const count = dv.getUint32(12, true);
  const cpu = ascii(b, 16, 4).trimEnd();
  const tests: MooTest[] = [];
  let o = 8 + hlen;
  while (o < b.length) {
    if (o + 8 > b.length) throw new Error(`${where}: truncated chunk header at ${o}`);
    const tag = ascii(b, o, 4), len = dv.getUint32(o + 4, true);
    const p = o + 8, end = p + len;
    if (end > b.length) throw new Error(`${where}: ${tag} chunk at ${o} runs past the end of the file`);
    if (tag === "TEST") {
      const w = `${where}: test at ${o}`;
      const t: MooTest = {
        idx: dv.getUint32(p, true), name: "", bytes: new Uint8Array(0),
        initial: parseState(b, dv, 0, 0, w), final: parseState(b, dv, 0, 0, w),
        exception: null, hash: "", form: null, raw: b.subarray(o, end),
      };
      let q = p + 4;
      while (q < end) {
        if (q + 8 > end) throw new Error(`${w}: truncated sub-chunk`);
        const st = ascii(b, q, 4), sl = dv.getUint32(q + 4, true);
        const sp = q + 8;
        if (sp + sl > end) throw new Error(`${w}: ${st} sub-chunk runs past its test`);
        switch (st) {
          case "NAME": t.name = new TextDecoder().decode(b.subarray(sp + 4, sp + 4 + dv.getUint32(sp, true))); break;
          case "FORM": t.form = ascii(b, sp + 4, dv.getUint32(sp, true)); break;
          case "BYTS": t.bytes = b.slice(sp + 4, sp + 4 + dv.getUint32(sp, true)); break;
          case "INIT": t.initial = parseState(b, dv, sp, sp + sl, w); break;
          case "FINA": t.final = parseState(b, dv, sp, sp + sl, w); break;
          case "EXCP": t.exception = { vector: b[sp]!, flagAddr: dv.getUint32(sp + 1, true) }; break;
          case "HASH": t.hash = Buffer.from(b.subarray(sp, sp + sl)).toString("hex"); break;
        }
        q = sp + sl;
      }
      tests.push(t);
    }
    o = end;
  }
  return { version, cpu, count, tests };
}

/** Read a MOO file, gunzipping it when its name ends in .gz. */
export async function readMoo(path: string): Promise<MooFile> {
  let b = new Uint8Array(await Bun.file(path).arrayBuffer());
  if (path.endsWith(".gz")) b = new Uint8Array(gunzipSync(b));
  return parseMoo(b, path);
}

function chunk(tag: string, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.length);
  for (let k = 0; k < 4; k++) out[k] = tag.charCodeAt(k);
  new DataView(out.buffer).setUint32(4, payload.length, true);
  out.set(payload, 8);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/**
 * Re-emit a test's TEST chunk without its CYCL sub-chunk (bus cycles, most of a test's size)
 * and with a FORM sub-chunk naming the suite file it came from.
 */
export function stripTest(t: MooTest, form: string): Uint8Array {
  const b = t.raw, dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const parts: Uint8Array[] = [b.subarray(8, 12)];
  const name = new TextEncoder().encode(form);
  const fp = new Uint8Array(4 + name.length);
  new DataView(fp.buffer).setUint32(0, name.length, true);
  fp.set(name, 4);
  parts.push(chunk("FORM", fp));
  let q = 12;
  while (q < b.length) {
    const st = ascii(b, q, 4), sl = dv.getUint32(q + 4, true);
    if (st !== "CYCL" && st !== "FORM") parts.push(b.subarray(q, q + 8 + sl));
    q += 8 + sl;
  }
  return chunk("TEST", concat(parts));
}

/** A MOO file (not compressed) holding the given TEST chunks. */
export function writeMoo(cpu: string, version: number, testChunks: Uint8Array[]): Uint8Array {
  const hdr = new Uint8Array(12);
  const hv = new DataView(hdr.buffer);
  hdr[0] = version;
  hv.setUint32(4, testChunks.length, true);
  for (let k = 0; k < 4; k++) hdr[8 + k] = (cpu.padEnd(4, " ")).charCodeAt(k);
  return concat([chunk("MOO ", hdr), ...testChunks]);
}
