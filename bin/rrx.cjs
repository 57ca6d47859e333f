#!/usr/bin/env node
// The `rrx` command as npm installs it (npx rrx, npm link, npm install -g): runs cmd/rrx.ts
// with the Bun that came with rrx from npm, so no `bun` needs to be on PATH. Signals are
// passed on to rrx, and its exit status (or the signal that ended it) becomes ours.
"use strict";
const { spawn } = require("node:child_process");
const { join } = require("node:path");
const { engineEnv } = require("./engine-env.cjs");

let bun;
try {
  bun = join(require.resolve("bun/package.json", { paths: [__dirname] }), "..", "bin", "bun.exe");
} catch {
  process.stderr.write("rrx: error: the bun package is missing (run npm install in the rrx checkout)\n");
  process.exit(2);
}
// The engine's options (engine-env.cjs) go in the environment, where Bun reads them.
const child = spawn(bun, [join(__dirname, "..", "cmd", "rrx.ts"), ...process.argv.slice(2)], {
  stdio: "inherit",
  env: engineEnv(process.env),
});
// Pass signals on. A terminal sends SIGINT (Ctrl-C) and SIGHUP (hang-up) to its whole foreground
// process group, rrx included, so those are passed on only when stdin is not a terminal (a
// second SIGINT would make rrx exit at once instead of finishing its recording).
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    if (child.exitCode !== null) return;
    if (sig !== "SIGTERM" && process.stdin.isTTY) return;
    child.kill(sig);
  });
}
child.on("error", (e) => {
  process.stderr.write(`rrx: error: cannot start ${bun}: ${e.message}\n`);
  process.exit(2);
});
child.on("exit", (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code ?? 70);
});
