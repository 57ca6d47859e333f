/**
 * Input scripts: host input at given virtual times, for tests and CI.
 *
 *   # comment
 *   at 10ms serial "hello\r"       COM1 receive bytes (C-style escapes: \r \n \t \\ \" \xHH)
 *   at 12ms serial2 "x"            COM2
 *   at 20ms key "ab\n"             typed text, turned into set-2 make/break scancodes
 *   at 21ms key 1c f0 1c           raw set-2 scancode bytes (hex)
 *   at 30ms mouse 5 -3 1           dx dy buttons (bit0 left, bit1 right, bit2 middle);
 *                                  dx, dy in -32768..32767, buttons in 0..255
 *
 * Times: an integer or decimal with unit ns, us, ms or s (virtual time since boot), below
 * 2^53 ns (about 104 days: the largest time a recording can hold). Events must be in
 * non-decreasing time order.
 */
import type { InputEvent } from "./machine.ts";

export interface ScriptEvent {
  atNs: number;
  events: InputEvent[];
  line: number;
}

export class ScriptError extends Error {}

const UNITS: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9 };
/** The largest event time, in ns: times are integers a log can encode (2^53 - 1). */
export const MAX_SCRIPT_NS = Number.MAX_SAFE_INTEGER;

export function parseScript(text: string, name = "script"): ScriptEvent[] {
  const out: ScriptEvent[] = [];
  let last = 0;
  const lines = text.split("\n");
  for (let ln = 0; ln < lines.length; ln++) {
    const raw = lines[ln]!.trim();
    if (raw === "" || raw.startsWith("#")) continue;
    const m = /^at\s+([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s)\s+(serial2?|key|mouse)\s+(.*)$/.exec(raw);
    if (!m) throw new ScriptError(`${name}:${ln + 1}: expected 'at TIME serial|serial2|key|mouse ARGS'`);
    const atNs = Math.round(parseFloat(m[1]!) * UNITS[m[2]!]!);
    if (!Number.isSafeInteger(atNs) || atNs > MAX_SCRIPT_NS) {
      throw new ScriptError(`${name}:${ln + 1}: time ${m[1]}${m[2]} is too late: event times must be below 2^53 ns (about 104 days)`);
    }
    if (atNs < last) throw new ScriptError(`${name}:${ln + 1}: time goes backwards`);
    last = atNs;
    const kind = m[3]!, args = m[4]!.trim();
    const events: InputEvent[] = [];
    if (kind === "serial" || kind === "serial2") {
      const bytes = parseString(args, `${name}:${ln + 1}`);
      for (const b of bytes) events.push({ kind: "serial", port: kind === "serial2" ? 1 : 0, byte: b });
    } else if (kind === "key") {
      if (args.startsWith('"')) {
        for (const ch of parseString(args, `${name}:${ln + 1}`)) {
          const codes = textToSet2(ch);
          if (!codes) throw new ScriptError(`${name}:${ln + 1}: no key for character 0x${ch.toString(16)}`);
          events.push({ kind: "key", bytes: codes });
        }
      } else {
        const words = args.split(/\s+/);
        if (words.some((h) => !/^[0-9a-fA-F]{1,2}$/.test(h))) throw new ScriptError(`${name}:${ln + 1}: bad scancode byte (hex 00..ff)`);
        const bytes = words.map((h) => parseInt(h, 16));
        events.push({ kind: "key", bytes });
      }
    } else {
      const w = args.split(/\s+/);
      if (w.length !== 3 || w.some((x) => !/^-?[0-9]+$/.test(x))) throw new ScriptError(`${name}:${ln + 1}: mouse needs dx dy buttons (integers)`);
      const [dx, dy, buttons] = w.map(Number) as [number, number, number];
      // The ranges a recording holds (MOUSE events: 16-bit dx and dy, a buttons byte).
      if (dx < -32768 || dx > 32767 || dy < -32768 || dy > 32767) throw new ScriptError(`${name}:${ln + 1}: mouse dx and dy must be in -32768..32767`);
      if (buttons < 0 || buttons > 255) throw new ScriptError(`${name}:${ln + 1}: mouse buttons must be in 0..255 (bit0 left, bit1 right, bit2 middle)`);
      events.push({ kind: "mouse", dx, dy, buttons });
    }
    out.push({ atNs, events, line: ln + 1 });
  }
  return out;
}

function parseString(s: string, where: string): number[] {
  if (!s.startsWith('"') || !s.endsWith('"') || s.length < 2) throw new ScriptError(`${where}: expected a quoted string`);
  const body = s.slice(1, -1);
  const out: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== "\\") { out.push(...new TextEncoder().encode(c)); continue; }
    const e = body[++i];
    switch (e) {
      case "n": out.push(10); break;
      case "r": out.push(13); break;
      case "t": out.push(9); break;
      case "\\": out.push(92); break;
      case '"': out.push(34); break;
      case "x": {
        const h = body.slice(i + 1, i + 3);
        if (!/^[0-9a-fA-F]{2}$/.test(h)) throw new ScriptError(`${where}: bad \\x escape`);
        out.push(parseInt(h, 16)); i += 2; break;
      }
      default: throw new ScriptError(`${where}: unknown escape \\${e ?? ""}`);
    }
  }
  return out;
}

// Set-2 make codes for unshifted keys of a US keyboard.
const SET2: Record<string, number> = {
  a: 0x1c, b: 0x32, c: 0x21, d: 0x23, e: 0x24, f: 0x2b, g: 0x34, h: 0x33, i: 0x43, j: 0x3b, k: 0x42, l: 0x4b,
  m: 0x3a, n: 0x31, o: 0x44, p: 0x4d, q: 0x15, r: 0x2d, s: 0x1b, t: 0x2c, u: 0x3c, v: 0x2a, w: 0x1d, x: 0x22,
  y: 0x35, z: 0x1a, "1": 0x16, "2": 0x1e, "3": 0x26, "4": 0x25, "5": 0x2e, "6": 0x36, "7": 0x3d, "8": 0x3e,
  "9": 0x46, "0": 0x45, " ": 0x29, "\n": 0x5a, "\r": 0x5a, "\t": 0x0d, "-": 0x4e, "=": 0x55, "[": 0x54,
  "]": 0x5b, ";": 0x4c, "'": 0x52, ",": 0x41, ".": 0x49, "/": 0x4a, "\\": 0x5d, "`": 0x0e, "\b": 0x66,
  "\x1b": 0x76,
};
const SHIFTED: Record<string, string> = {
  "!": "1", "@": "2", "#": "3", $: "4", "%": "5", "^": "6", "&": "7", "*": "8", "(": "9", ")": "0", _: "-",
  "+": "=", "{": "[", "}": "]", ":": ";", '"': "'", "<": ",", ">": ".", "?": "/", "|": "\\", "~": "`",
};
const LSHIFT = 0x12;

/** Set-2 make+break scancodes that type one ASCII byte (with shift when needed), or null. */
export function textToSet2(ch: number): number[] | null {
  const c = String.fromCharCode(ch);
  let base = c, shift = false;
  if (c >= "A" && c <= "Z") { base = c.toLowerCase(); shift = true; }
  else if (SHIFTED[c]) { base = SHIFTED[c]!; shift = true; }
  const code = SET2[base];
  if (code === undefined) return null;
  const seq = [code, 0xf0, code];
  return shift ? [LSHIFT, ...seq, 0xf0, LSHIFT] : seq;
}
