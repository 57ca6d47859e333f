/**
 * The `rrx` launcher (bin/rrx.cjs, what `npx rrx` runs) and the engine options it gives the Bun
 * process it starts (bin/engine-env.cjs): on a host with one or two CPUs, two WebAssembly
 * compiler threads and inlining two calls deep; a value the user set is kept.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { engineEnv, INLINING_DEPTH, WASM_THREADS } from "../bin/engine-env.cjs";

const ROOT = join(import.meta.dir, "..");
const HAVE_NODE = Bun.spawnSync(["sh", "-c", "command -v node"], { stdout: "pipe" }).exitCode === 0;

describe("engine options", () => {
  test("two WebAssembly compiler threads and inlining two deep on hosts with one or two CPUs, nothing on larger ones", () => {
    expect(WASM_THREADS).toBe("BUN_JSC_numberOfWasmCompilerThreads");
    expect(INLINING_DEPTH).toBe("BUN_JSC_maximumInliningDepth");
    const small = { HOME: "/h", [WASM_THREADS]: "2", [INLINING_DEPTH]: "2" };
    expect(engineEnv({ HOME: "/h" }, 1)).toEqual(small);
    expect(engineEnv({ HOME: "/h" }, 2)).toEqual(small);
    expect(engineEnv({ HOME: "/h" }, 8)).toEqual({ HOME: "/h" });
  });

  test("the user's own setting is kept, and the environment given is not changed", () => {
    const env = { [WASM_THREADS]: "1" };
    expect(engineEnv(env, 2)).toEqual({ [WASM_THREADS]: "1", [INLINING_DEPTH]: "2" });
    const plain: Record<string, string> = { PATH: "/bin" };
    engineEnv(plain, 2);
    expect(plain).toEqual({ PATH: "/bin" });
  });
});

/** The environment of the Bun process that `node bin/rrx.cjs` starts, read from /proc while it runs. */
async function childEnv(env: Record<string, string | undefined>): Promise<Map<string, string>> {
  const p = Bun.spawn(["node", join(ROOT, "bin/rrx.cjs"), "run", join(ROOT, "fixtures/poll.elf"), "--no-realtime"], {
    cwd: ROOT, env, stdin: "ignore", stdout: "ignore", stderr: "pipe",
  });
  try {
    for (let tries = 0; tries < 200; tries++) {
      const kids = Bun.spawnSync(["pgrep", "-P", String(p.pid)], { stdout: "pipe" }).stdout.toString().trim().split("\n").filter(Boolean);
      // Between its fork and its exec the child still has node's command line and environment.
      if (kids.length > 0 && readFileSync(`/proc/${kids[0]}/cmdline`, "latin1").includes("cmd/rrx.ts")) {
        const raw = readFileSync(`/proc/${kids[0]}/environ`, "latin1");
        return new Map(raw.split("\0").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)] as [string, string]));
      }
      await Bun.sleep(25);
    }
    throw new Error("the launcher started no process");
  } finally {
    p.kill("SIGTERM");
    await p.exited;
  }
}

describe.skipIf(!HAVE_NODE || process.platform !== "linux")("the rrx launcher", () => {
  test("starts rrx with the engine options in its environment, keeping the user's", async () => {
    const base: Record<string, string | undefined> = { ...process.env };
    delete base[WASM_THREADS];
    const plain = await childEnv(base);
    expect(plain.get(WASM_THREADS)).toBe(availableParallelism() <= 2 ? "2" : undefined);
    expect(plain.get(INLINING_DEPTH)).toBe(availableParallelism() <= 2 ? "2" : undefined);
    expect(plain.get("PATH")).toBe(process.env.PATH!);
    const own = await childEnv({ ...base, [WASM_THREADS]: "3" });
    expect(own.get(WASM_THREADS)).toBe("3");
  }, 60_000);
});
