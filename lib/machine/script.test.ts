import { describe, expect, test } from "bun:test";
import { parseScript, ScriptError } from "./script.ts";

/** Values a script may not hold are refused when it is parsed, never later by the recorder. */
describe("parseScript: values a recording cannot hold", () => {
  const bad = (line: string, re: RegExp) => {
    expect(() => parseScript(line + "\n", "s.txt")).toThrow(ScriptError);
    expect(() => parseScript(line + "\n", "s.txt")).toThrow(re);
  };

  test("mouse dx/dy outside 16 bits, buttons outside a byte, non-integers", () => {
    bad("at 1ms mouse 99999 0 0", /s\.txt:1: mouse dx and dy must be in -32768\.\.32767/);
    bad("at 1ms mouse 0 -32769 0", /mouse dx and dy must be in -32768\.\.32767/);
    bad("at 1ms mouse 99999999999999999999 0 0", /mouse dx and dy/);
    bad("at 1ms mouse 1 1 256", /mouse buttons must be in 0\.\.255/);
    bad("at 1ms mouse 1 1 -1", /mouse buttons must be in 0\.\.255/);
    bad("at 1ms mouse 1.5 0 0", /mouse needs dx dy buttons \(integers\)/);
    bad("at 1ms mouse 12abc 0 0", /mouse needs dx dy buttons/);
  });

  test("the extremes are accepted", () => {
    const s = parseScript("at 1ms mouse -32768 32767 255\n");
    expect(s[0]!.events).toEqual([{ kind: "mouse", dx: -32768, dy: 32767, buttons: 255 }]);
  });

  test("raw scancodes are whole hex bytes", () => {
    bad("at 1ms key 1zz", /bad scancode byte/);
    bad("at 1ms key 100", /bad scancode byte/);
    expect(parseScript("at 1ms key 1c f0 1C\n")[0]!.events).toEqual([{ kind: "key", bytes: [0x1c, 0xf0, 0x1c] }]);
  });
});
