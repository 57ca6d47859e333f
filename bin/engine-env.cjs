// Options for the JavaScript engine (JavaScriptCore, through Bun) that rrx's processes start
// with. The engine reads them from the environment when it starts, so the processes that start
// rrx set them: the `rrx` launcher (rrx.cjs) and the bench's case processes. A setting the
// user made is kept.
//
// They are for hosts with one or two CPUs, where the engine's compiler threads share a CPU with
// rrx and a guest's cold code (a kernel's initialisation) waits on their work:
// - at least two threads compile WebAssembly. rrx compiles each translated region with
//   `new WebAssembly.Module`, which waits while the engine's WebAssembly compiler threads work.
//   With one (JavaScriptCore's choice for two CPUs) that wait includes the tier-up compiles of
//   earlier regions; with two it does not.
// - the optimising compilers inline calls two deep instead of five. Their compiles of rrx's
//   interpreter and instruction handlers get smaller, and the optimised code arrives sooner;
//   hot translated code is WebAssembly, which this does not touch.
"use strict";
const { availableParallelism } = require("node:os");

const WASM_THREADS = "BUN_JSC_numberOfWasmCompilerThreads";
const INLINING_DEPTH = "BUN_JSC_maximumInliningDepth";
/** The options for hosts with one or two CPUs. */
const SMALL_HOST = { [WASM_THREADS]: "2", [INLINING_DEPTH]: "2" };

/** `env` with rrx's engine options added where it does not set them (`cpus`: the host's CPUs). */
function engineEnv(env, cpus = availableParallelism()) {
  const out = { ...env };
  if (cpus <= 2) for (const [k, v] of Object.entries(SMALL_HOST)) if (out[k] === undefined) out[k] = v;
  return out;
}

module.exports = { engineEnv, WASM_THREADS, INLINING_DEPTH };
