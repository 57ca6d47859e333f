// Options for the JavaScript engine (JavaScriptCore, through Bun) that rrx's processes start
// with. The engine reads them from the environment when it starts, so the processes that start
// rrx set them: the `rrx` launcher (rrx.cjs) and the bench's case processes.
//
// One option: at least two threads compile WebAssembly. rrx compiles each translated region
// with `new WebAssembly.Module`, which waits while the engine's compiler threads work. With one
// such thread (JavaScriptCore's choice on a machine with two CPUs) that wait includes the
// engine's own tier-up compiles of earlier regions; with two it does not. A setting the user
// made is kept.
"use strict";
const { availableParallelism } = require("node:os");

const WASM_THREADS = "BUN_JSC_numberOfWasmCompilerThreads";

/** `env` with rrx's engine options added where it does not set them (`cpus`: the host's CPUs). */
function engineEnv(env, cpus = availableParallelism()) {
  const out = { ...env };
  if (out[WASM_THREADS] === undefined && cpus <= 2) out[WASM_THREADS] = "2";
  return out;
}

module.exports = { engineEnv, WASM_THREADS };
