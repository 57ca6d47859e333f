/**
 * Helpers for `rrx gdb rec.rrx`: serve a DebugTarget and (optionally) launch
 * gdb connected to it with the guest kernel's ELF loaded for symbols.
 *
 *   const why = await debugWithGdb(target, { elf: "kernel.elf", port: 1234, log });
 *   const why = await debugWithGdb(target, { noLaunch: true, port: 1234, log });
 *
 * The command-line front end owns argument parsing; this module owns the gdb
 * argv and the process dance (while gdb runs in the foreground, the terminal's
 * ^C goes to the whole process group: the rrx process must ignore SIGINT, gdb
 * turns it into an RSP interrupt).
 */

import type { SessionEnd } from "./session.ts";
import { DEFAULT_GDB_PORT, GdbServer, type GdbServerOptions } from "./server.ts";
import type { DebugTarget } from "./target.ts";

export interface GdbLaunchOptions {
  /** gdb executable. Default "gdb". */
  gdb?: string;
  /** Guest ELF with symbols (the kernel); omitted → `set architecture <arch>`. */
  elf?: string;
  /** gdb's name of the target's architecture (DebugView.arch); default i386. */
  arch?: string;
  host?: string;
  port: number;
  /** Extra gdb commands run after connecting (each one -ex). */
  commands?: string[];
  /** Batch mode (tests, scripts): -batch, confirm off. */
  batch?: boolean;
  /** Don't read ~/.gdbinit etc. (-nx). Default false for interactive use, true in batch. */
  noInit?: boolean;
}

/** The architecture a target's description names (`<architecture>`), if any. */
export function archOf(target: DebugTarget): string | undefined {
  return /<architecture>([^<]+)<\/architecture>/.exec(target.layout.targetXml)?.[1];
}

/** The argv for gdb (argv[0] included). */
export function gdbArgs(o: GdbLaunchOptions): string[] {
  const args = [o.gdb ?? "gdb"];
  if (o.noInit ?? o.batch ?? false) args.push("-nx");
  if (o.batch) args.push("-batch");
  else args.push("-q");
  if (o.elf) args.push(o.elf);
  else args.push("-ex", `set architecture ${o.arch ?? "i386"}`);
  if (o.batch) args.push("-ex", "set confirm off");
  args.push("-ex", `target remote ${o.host ?? "127.0.0.1"}:${o.port}`);
  for (const c of o.commands ?? []) args.push("-ex", c);
  return args;
}

export interface DebugWithGdbOptions extends GdbServerOptions {
  /** Only serve; print how to connect (through `log`) and wait for gdb to connect and leave. */
  noLaunch?: boolean;
  gdb?: string;
  elf?: string;
  commands?: string[];
  batch?: boolean;
  /** stdio for the gdb child. Default "inherit" (interactive). */
  stdio?: "inherit" | "pipe";
  /** Receives gdb's output when stdio is "pipe". */
  onOutput?: (text: string) => void;
}

/**
 * Serve `target` and run one debugging session. Resolves when it is over:
 * with launch, when gdb exits (the server is then stopped); with noLaunch,
 * when the first gdb connection ends.
 */
export async function debugWithGdb(target: DebugTarget, opts: DebugWithGdbOptions): Promise<SessionEnd | "gdb-exited"> {
  const log = opts.log ?? (() => {});
  const server = new GdbServer(target, { ...opts, port: opts.port ?? DEFAULT_GDB_PORT });
  const { host, port } = await server.start();
  try {
    if (opts.noLaunch) {
      log(`rrx: gdb stub listening on ${host}:${port}; in gdb: target remote ${host}:${port}`);
      return await server.nextSessionEnd();
    }
    const argv = gdbArgs({ gdb: opts.gdb, elf: opts.elf, arch: archOf(target), host, port, commands: opts.commands, batch: opts.batch });
    const stdio = opts.stdio ?? "inherit";
    const ignore = () => {};
    process.on("SIGINT", ignore); // ^C is gdb's business
    try {
      const proc = Bun.spawn(argv, { stdin: stdio === "inherit" ? "inherit" : "ignore", stdout: stdio, stderr: stdio });
      if (stdio === "pipe") {
        const pump = async (s: ReadableStream<Uint8Array>) => {
          const dec = new TextDecoder();
          for await (const chunk of s) opts.onOutput?.(dec.decode(chunk, { stream: true }));
        };
        await Promise.all([pump(proc.stdout as ReadableStream<Uint8Array>), pump(proc.stderr as ReadableStream<Uint8Array>)]);
      }
      await proc.exited;
      return "gdb-exited";
    } finally {
      process.off("SIGINT", ignore);
    }
  } finally {
    await server.stop();
  }
}
