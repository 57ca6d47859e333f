/**
 * The layering rules of docs/ARCHITECTURE.md, checked on the import statements of lib/:
 *  - product code in lib/ (not *.test.ts) imports nothing from test/; unit tests beside their
 *    code (lib/.../*.test.ts) are test code and may import test/support/ (e.g. the x86 encoder);
 *  - lib/machine, lib/replay and lib/gdb import nothing from lib/cpu/x86: the board
 *    (lib/boards/) wires the x86 CPU, and is the only code outside the core that imports it;
 *  - they know no particular board either: from lib/boards only the Board interface and the
 *    registry, and no device (lib/devices/) or image format (lib/boot/);
 *  - the x86 core imports nothing above the CPU but the machine's plain types (device, RAM,
 *    snapshot), and its files import each other without cycles;
 *  - no product file in lib/ is longer than 800 lines.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");

function walk(dir: string, out: string[] = []): string[] {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (f.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** Relative specifiers of every import, export-from and dynamic import, resolved to repo paths. */
export function importsOf(file: string, src = readFileSync(file, "utf8")): string[] {
  const out: string[] = [];
  const re = /(?:^|[;\s])(?:import|export)\s[^;'"]*?from\s*["']([^"']+)["']|(?:^|[;\s])import\s*["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)/gm;
  for (const m of src.matchAll(re)) {
    const spec = m[1] ?? m[2] ?? m[3]!;
    if (spec.startsWith(".")) out.push(relative(ROOT, resolve(dirname(file), spec)));
  }
  return out;
}

/** Every product source file in lib/ (tests beside the code excluded) with its imports. */
const LIB = walk(join(ROOT, "lib"))
  .filter((f) => !f.endsWith(".test.ts"))
  .map((f) => ({ file: relative(ROOT, f), imports: importsOf(f) }));

const under = (p: string, dir: string) => p === dir || p.startsWith(dir + "/");

/** Import edges that break a rule, as "file -> import" lines (empty when the rule holds). */
function violations(from: (f: string) => boolean, bad: (imp: string) => boolean): string[] {
  return LIB.filter((x) => from(x.file)).flatMap((x) => x.imports.filter(bad).map((i) => `${x.file} -> ${i}`));
}

/** The cycles of a directed graph, each as its path ("a -> b -> a"). */
export function cycles(graph: Map<string, string[]>): string[] {
  const out: string[] = [];
  const state = new Map<string, number>(); // 1 on the stack, 2 done
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, 1);
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (!graph.has(m)) continue;
      const s = state.get(m);
      if (s === 1) out.push([...stack.slice(stack.indexOf(m)), m].join(" -> "));
      else if (s === undefined) visit(m);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return out;
}

describe("layering", () => {
  test("the import scanner sees every form of import", () => {
    const src = `import a from "./a.ts";\nimport type { B } from "../b.ts";\nimport {\n  c,\n  d,\n} from "./c.ts";\nexport { e } from "./e.ts";\nexport * from "./f.ts";\nimport "./g.ts";\nconst h = await import("./h.ts");\nimport x from "fast-check";\n`;
    expect(importsOf(join(ROOT, "lib/x/y.ts"), src)).toEqual(["lib/x/a.ts", "lib/b.ts", "lib/x/c.ts", "lib/x/e.ts", "lib/x/f.ts", "lib/x/g.ts", "lib/x/h.ts"]);
    expect(cycles(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]))).toEqual(["a -> b -> c -> a"]);
    expect(cycles(new Map([["a", ["b", "c"]], ["b", ["c"]], ["c", []]]))).toEqual([]);
  });

  test("product code in lib/ (not *.test.ts) imports nothing from test/", () => {
    expect(LIB.length).toBeGreaterThan(50);
    expect(violations(() => true, (i) => under(i, "test"))).toEqual([]);
  });

  test("lib/machine, lib/replay and lib/gdb reach the x86 core only through the board", () => {
    const above = (f: string) => under(f, "lib/machine") || under(f, "lib/replay") || under(f, "lib/gdb");
    expect(violations(above, (i) => under(i, "lib/cpu/x86"))).toEqual([]);
  });

  test("lib/machine, lib/replay and lib/gdb know no particular board, device or image format", () => {
    const above = (f: string) => (under(f, "lib/machine") || under(f, "lib/replay") || under(f, "lib/gdb"));
    const generic = new Set(["lib/boards/board.ts", "lib/boards/registry.ts"]);
    expect(violations(above, (i) => (under(i, "lib/boards") && !generic.has(i)) || under(i, "lib/devices"))).toEqual([]);
    // Image formats: only the one-line BootError type.
    expect(violations(above, (i) => under(i, "lib/boot") && i !== "lib/boot/elf.ts")).toEqual([]);
  });

  test("outside the core, only the board imports lib/cpu/x86", () => {
    expect(violations((f) => !under(f, "lib/cpu/x86") && !under(f, "lib/boards"), (i) => under(i, "lib/cpu/x86"))).toEqual([]);
    expect(LIB.some((x) => under(x.file, "lib/boards") && x.imports.some((i) => under(i, "lib/cpu/x86")))).toBe(true);
  });

  test("a board imports nothing of the machine but its plain types", () => {
    const allowed = new Set(["lib/machine/device.ts", "lib/machine/ram.ts", "lib/machine/snapshot.ts"]);
    expect(violations((f) => under(f, "lib/boards"), (i) => (under(i, "lib/machine") || under(i, "lib/replay") || under(i, "lib/gdb")) && !allowed.has(i))).toEqual([]);
  });

  test("the CPU imports nothing above it but the machine's plain types", () => {
    const allowed = new Set(["lib/machine/device.ts", "lib/machine/ram.ts", "lib/machine/snapshot.ts"]);
    expect(violations((f) => under(f, "lib/cpu"), (i) => !under(i, "lib/cpu") && !allowed.has(i))).toEqual([]);
  });

  test("no product file in lib/ is longer than 800 lines (split it by concern)", () => {
    const long = LIB.map((x) => ({ file: x.file, lines: readFileSync(join(ROOT, x.file), "utf8").split("\n").length }))
      .filter((x) => x.lines > 800).map((x) => `${x.file}: ${x.lines}`);
    expect(long).toEqual([]);
  });

  test("no import cycles in lib/cpu", () => {
    const graph = new Map(LIB.filter((x) => under(x.file, "lib/cpu")).map((x) => [x.file, x.imports]));
    expect(graph.size).toBeGreaterThan(15);
    expect(cycles(graph)).toEqual([]);
  });
});
