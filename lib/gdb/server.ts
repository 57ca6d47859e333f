/**
 * gdb remote stub over TCP (Bun.listen), one gdb connection at a time.
 *
 *   const server = new GdbServer(target, { port: 1234, log: (m) => console.error(m) });
 *   const { port } = await server.start();      // port 0 → an ephemeral port, reported here
 *   const why = await server.nextSessionEnd();  // "detach" | "kill" | "disconnect"
 *   await server.stop();
 *
 * Listens on 127.0.0.1 only (the protocol has no authentication). A second
 * connection while one is active is refused: it gets an RSP error packet
 * (E.. with a readable notice is pointless for gdb, so just the packet), is
 * closed, and the refusal is reported through `log`.
 */

import type { Socket, TCPSocketListener } from "bun";
import { OutQueue } from "./rsp.ts";
import { GdbSession, type SessionEnd, type SessionOptions } from "./session.ts";
import type { DebugTarget } from "./target.ts";

export const DEFAULT_GDB_PORT = 1234;

export interface GdbServerOptions extends SessionOptions {
  /** Interface to bind. Default "127.0.0.1". */
  host?: string;
  /** TCP port. Default 1234; 0 picks a free one (see `start()`'s result / `port`). */
  port?: number;
}

interface ConnState {
  session: GdbSession | null; // null: a refused connection
  out: OutQueue;
  closing: boolean;
}

export class GdbServer {
  private listener: TCPSocketListener<ConnState> | null = null;
  private active: Socket<ConnState> | null = null;
  private endWaiters: ((why: SessionEnd) => void)[] = [];
  private readonly log: (msg: string) => void;

  /** The session of the current connection, if any (stats, tests). */
  session: GdbSession | null = null;

  /** Called whenever a gdb connection ends. */
  onSessionEnd: ((why: SessionEnd) => void) | null = null;

  constructor(
    private readonly target: DebugTarget,
    private readonly opts: GdbServerOptions = {},
  ) {
    this.log = opts.log ?? (() => {});
  }

  /** Backpressure events on the current connection (transport took a write only partly). */
  get partialWrites(): number {
    return this.active?.data?.out.partialWrites ?? 0;
  }

  /** The bound port (after start()). */
  get port(): number {
    return this.listener?.port ?? 0;
  }

  get host(): string {
    return this.opts.host ?? "127.0.0.1";
  }

  /** Start listening. Rejects if the port is taken. */
  async start(): Promise<{ host: string; port: number }> {
    if (this.listener) return { host: this.host, port: this.port };
    this.listener = Bun.listen<ConnState>({
      hostname: this.host,
      port: this.opts.port ?? DEFAULT_GDB_PORT,
      socket: {
        binaryType: "uint8array",
        open: (sock) => this.onOpen(sock),
        data: (sock, data) => {
          sock.data?.session?.receive(data);
        },
        drain: (sock) => {
          const st = sock.data;
          if (!st) return;
          st.out.flush();
          if (st.closing && st.out.pending === 0) sock.end();
        },
        close: (sock) => this.onClose(sock),
        end: (sock) => this.onClose(sock),
        error: (sock, err) => {
          this.log(`gdb: socket error: ${err.message}`);
          this.onClose(sock);
        },
      },
    });
    return { host: this.host, port: this.port };
  }

  /** Resolves when the current (or next) gdb connection ends. */
  nextSessionEnd(): Promise<SessionEnd> {
    return new Promise((r) => this.endWaiters.push(r));
  }

  /** Close the active connection (aborting a running resume) and stop listening. */
  async stop(): Promise<void> {
    if (this.active) {
      const s = this.active;
      s.data?.session?.close("disconnect");
      s.end();
      this.active = null;
    }
    this.listener?.stop(true);
    this.listener = null;
  }

  private onOpen(sock: Socket<ConnState>): void {
    const out = new OutQueue((bytes) => {
      const n = sock.write(bytes);
      return n < 0 ? bytes.length : n; // closed: drop
    });
    if (this.active) {
      this.log("gdb: refusing a second connection: a debugger is already attached");
      sock.data = { session: null, out, closing: true };
      out.send("$E01#a6");
      if (out.pending === 0) sock.end();
      return;
    }
    const st: ConnState = { session: null, out, closing: false };
    sock.data = st;
    this.active = sock;
    const session = new GdbSession(this.target, (b) => out.send(b), this.opts);
    st.session = session;
    this.session = session;
    this.log(`gdb: debugger connected from ${sock.remoteAddress}`);
    session.onEnd = (why) => {
      this.log(`gdb: session ended (${why})`);
      st.closing = true;
      if (out.pending === 0) sock.end();
      if (this.active === sock) this.active = null;
      this.fireEnd(why);
    };
  }

  private onClose(sock: Socket<ConnState>): void {
    const st = sock.data;
    if (!st) return;
    if (st.session && !st.session.isEnded) st.session.close("disconnect");
    if (this.active === sock) this.active = null;
  }

  private fireEnd(why: SessionEnd): void {
    const w = this.endWaiters;
    this.endWaiters = [];
    for (const f of w) f(why);
    this.onSessionEnd?.(why);
  }
}
