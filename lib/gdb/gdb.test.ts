/**
 * The stub against the real gdb (batch mode), with the mock machine.
 * Skipped, with a message, when gdb is not installed (apt-get install gdb).
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildMockElf } from "../../test/support/mock-elf.ts";
import { MockTarget, type MockOptions } from "../../test/support/mock-target.ts";
import { GdbServer } from "./server.ts";

const GDB = Bun.which("gdb");
if (!GDB) console.warn("lib/gdb/gdb.test.ts: SKIPPED: gdb is not installed (apt-get install gdb) — real-gdb interoperability untested");

const dir = mkdtempSync(join(tmpdir(), "rrx-gdb-test-"));
const elf = join(dir, "mock.elf");
writeFileSync(elf, buildMockElf());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let server: GdbServer | null = null;
afterEach(async () => {
  await server?.stop();
  server = null;
});

interface Run {
  out: string;
  target: MockTarget;
  server: GdbServer;
  logs: string[];
}

/** Start a server on a mock, run gdb in batch mode with the given commands, return gdb's output. */
async function runGdb(
  cmds: string[],
  opts: { elf?: boolean; mock?: MockOptions; interruptWhenRunning?: boolean } = {},
): Promise<Run> {
  const target = new MockTarget(opts.mock);
  const logs: string[] = [];
  server = new GdbServer(target, { port: 0, log: (m) => logs.push(m) });
  const { port } = await server.start();
  const args = [GDB!, "-nx", "-batch"];
  if (opts.elf) args.push(elf);
  else args.push("-ex", "set architecture i386");
  args.push("-ex", "set confirm off", "-ex", `target remote 127.0.0.1:${port}`);
  for (const c of cmds) args.push("-ex", c);
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const killer = setTimeout(() => proc.kill(), 30000);
  if (opts.interruptWhenRunning) {
    // like pressing ^C in gdb: SIGINT makes gdb send a raw 0x03 to the stub
    void (async () => {
      for (let i = 0; i < 600 && !server?.session?.isRunning; i++) await Bun.sleep(10);
      await Bun.sleep(100);
      proc.kill("SIGINT");
    })();
  }
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  clearTimeout(killer);
  return { out: out + err, target, server, logs };
}

/** The lines of `out` after the line containing `marker`. */
function after(out: string, marker: string): string {
  const i = out.indexOf(marker);
  expect(i).toBeGreaterThanOrEqual(0);
  return out.slice(i + marker.length);
}

describe.skipIf(!GDB)("real gdb, no symbols (set architecture i386)", () => {
  test("accepts the target description; info registers, stepi, reverse-stepi, x/i", async () => {
    const { out, server: srv } = await runGdb([
      "info registers",
      "stepi",
      "stepi",
      "x/2i $pc",
      "reverse-stepi",
      "info registers eip",
      "echo M1\\n",
      "reverse-stepi",
      "reverse-stepi",
      "p $pc",
      "kill",
    ]);
    expect(out).not.toContain("rejected");
    expect(out).not.toContain("Remote 'g' packet reply is too long");
    expect(out).toMatch(/eax\s+0x0\s+0/);
    expect(out).toMatch(/esp\s+0x8000\s+0x8000/);
    expect(out).toMatch(/eip\s+0x1000\s+0x1000/);
    expect(out).toMatch(/eflags\s+0x202\s+\[ IF \]/);
    expect(out).toMatch(/cs\s+0x8\s+8/);
    expect(out).toMatch(/gs\s+0x10\s+16/);
    expect(out).toContain("0x00001001 in ?? ()");
    expect(out).toContain("0x00001003 in ?? ()");
    expect(out).toMatch(/=> 0x1003:\s+inc\s+%eax/);
    expect(out).toMatch(/0x1004:\s+mov\s+%eax,0x2000/);
    expect(out).toMatch(/0x00001001 in \?\? \(\)\neip\s+0x1001\s+0x1001/);
    // two more reverse steps: the first reaches instruction 0, the second hits the start of the log
    expect(after(out, "M1")).toContain("No more reverse-execution history.");
    expect(after(out, "M1")).toContain("$1 = (void (*)()) 0x1000");
    expect(srv.session).not.toBeNull();
  });

  test("register and memory writes", async () => {
    const { out, target } = await runGdb([
      "set var $eax = 0x2a",
      "set var $ebx = 7",
      "p $eax",
      "set var *(unsigned char*)0x2000 = 0x55",
      "x/1xb 0x2000",
      "x/1xw 0x20000",
      "kill",
    ]);
    expect(out).toContain("$1 = 42");
    expect(out).toContain("0x2000:\t0x55");
    expect(out).toContain("Cannot access memory at address 0x20000");
    expect(target.regs[0]).toBe(0x2a);
    expect(target.regs[3]).toBe(7);
    expect(target.mem[0x2000]).toBe(0x55);
  });
});

describe.skipIf(!GDB)("real gdb with the mock ELF's symbols", () => {
  test("breakpoints, finish, nexti / reverse-nexti over a call, reverse-finish, reverse-next", async () => {
    const { out, target } = await runGdb(
      [
        "break func",
        "continue",
        "bt",
        "echo M-finish\\n",
        "finish",
        "delete",
        "echo M-rnexti\\n",
        "reverse-nexti",
        "p $pc",
        "echo M-nexti\\n",
        "nexti",
        "p $pc",
        "echo M-rfinish\\n",
        "reverse-stepi",
        "p $pc",
        "reverse-finish",
        "p $pc",
        "echo M-rnext\\n",
        "stepi 4",
        "p $pc",
        "reverse-next",
        "p $pc",
        "echo M-end\\n",
        "kill",
      ],
      { elf: true },
    );
    expect(out).toContain("0x00001000 in main ()");
    expect(out).toContain("Breakpoint 1 at 0x1013");
    expect(out).toContain("Breakpoint 1, 0x00001013 in func ()");
    expect(out).toMatch(/#0\s+0x00001013 in func \(\)\n#1\s+0x0000100e in main \(\)/);
    expect(after(out, "M-finish")).toMatch(/^[^]*?0x0000100e in main \(\)/);
    expect(after(out, "M-rnexti")).toMatch(/^\n0x00001009 in main \(\)\n\$1 = \(void \(\*\)\(\)\) 0x1009 <main\+9>/);
    expect(after(out, "M-nexti")).toMatch(/^\n0x0000100e in main \(\)\n\$2 = .* 0x100e <main\+14>/);
    expect(after(out, "M-rfinish")).toMatch(/\$3 = .* 0x1015 <func\+5>/);
    expect(after(out, "M-rfinish")).toMatch(/\$4 = .* 0x1009 <main\+9>/);
    expect(after(out, "M-rnext")).toMatch(/\$5 = .* 0x1014 <func\+4>/);
    expect(after(out, "M-rnext")).toContain("Single stepping until exit from function func");
    expect(after(out, "M-rnext")).toMatch(/\$6 = .* 0x1009 <main\+9>/);
    expect(target.calls.kill).toBe(1);
  });

  test("watchpoints forward and in reverse (old value visible at the writing instruction)", async () => {
    const { out } = await runGdb(
      [
        "watch *(int*)&counter",
        "continue",
        "continue",
        "echo M-rev\\n",
        "reverse-continue",
        "x/i $pc",
        "p *(int*)&counter",
        "delete",
        "echo M-rwatch\\n",
        "rwatch *(int*)&counter",
        "awatch *(int*)&counter",
        "continue",
        "kill",
      ],
      { elf: true },
    );
    expect(out).toContain("Hardware watchpoint 1: *(int*)&counter");
    expect(out).toMatch(/Old value = 0\nNew value = 1\n0x00001009 in main \(\)/);
    expect(out).toMatch(/Old value = 1\nNew value = 2\n0x00001009 in main \(\)/);
    const rev = after(out, "M-rev");
    expect(rev).toMatch(/Old value = 2\nNew value = 1\n0x00001004 in main \(\)/);
    expect(rev).toMatch(/=> 0x1004 <main\+4>:\s+mov\s+%eax,0x2000/);
    expect(rev).toContain("= 1");
    const rw = after(out, "M-rwatch");
    expect(rw).toContain("Hardware read watchpoint 2: *(int*)&counter");
    expect(rw).toContain("Hardware access (read/write) watchpoint 3: *(int*)&counter");
    // the next access is the write of 2 at 0x1004 (an awatch hit)
    expect(rw).toMatch(/Hardware access \(read\/write\) watchpoint 3: \*\(int\*\)&counter\n\nOld value = 1\nNew value = 2\n0x00001009 in main \(\)/);
  });

  test("ends of the log, monitor, threads, detach", async () => {
    const { out, target } = await runGdb(
      [
        "continue",
        "p $pc",
        "monitor when",
        "echo M-begin\\n",
        "reverse-continue",
        "p $pc",
        "monitor when",
        "monitor goto 5",
        "maint flush register-cache",
        "p $pc",
        "info threads",
        "monitor bogus",
        "echo M-detach\\n",
        "detach",
      ],
      { elf: true, mock: { logLength: 50 } },
    );
    expect(out).toContain("No more reverse-execution history.");
    expect(out).toContain("Current instruction: 50");
    const b = after(out, "M-begin");
    expect(b).toContain("No more reverse-execution history.");
    expect(b).toContain("0x00001000 in main ()");
    expect(b).toContain("Current instruction: 0");
    expect(b).toContain("Now at instruction 5");
    expect(b).toMatch(/= \(void \(\*\)\(\)\) 0x1010 <func>/);
    expect(b).toMatch(/\* 1\s+Thread 1 \(rrx cpu0\)/);
    expect(b).toContain("unknown monitor command: bogus");
    expect(after(out, "M-detach")).toContain("[Inferior 1 (Remote target) detached]");
    expect(target.calls.detach).toBe(1);
  });

  test("a reverse burst (reverse-stepi 300) needs no g packets and no extra register reads", async () => {
    const { out, target, server: srv } = await runGdb(
      ["monitor goto 400", "maint flush register-cache", "echo M\\n", "reverse-stepi 300", "p $pc", "monitor when", "kill"],
      { elf: true },
    );
    expect(after(out, "M")).toContain("Current instruction: 100");
    const st = srv.session!.stats;
    expect(st.resumes).toBe(300);
    // every register gdb needed came with the stops (expedited + cached): the target was asked
    // for registers only around the connection and the monitor goto, not per step
    expect(target.calls.readRegisters).toBeLessThan(10);
  });

  test("^C: SIGINT to gdb during an endless continue interrupts the target", async () => {
    const { out, target } = await runGdb(["continue", "p $pc", "monitor when", "kill"], {
      elf: true,
      mock: { logLength: Infinity },
      interruptWhenRunning: true,
    });
    expect(out).toContain("Program received signal SIGINT, Interrupt.");
    expect(out).toMatch(/Current instruction: \d+/);
    expect(target.pos).toBeGreaterThan(1000);
  });

  test("unreadable memory is an error gdb reports; the session goes on", async () => {
    const { out } = await runGdb(["x/4xb 0xfffffffe", "p 1+1", "kill"], { elf: true });
    expect(out).toContain("Cannot access memory at address 0xfffffffe");
    expect(out).toContain("$1 = 2");
  });
});

describe.skipIf(!GDB)("launch helper (rrx gdb)", () => {
  test("gdbArgs builds the argv", async () => {
    const { gdbArgs } = await import("./launch.ts");
    expect(gdbArgs({ elf: "k.elf", port: 1234 })).toEqual(["gdb", "-q", "k.elf", "-ex", "target remote 127.0.0.1:1234"]);
    expect(gdbArgs({ port: 5, batch: true, commands: ["info registers"] })).toEqual([
      "gdb", "-nx", "-batch", "-ex", "set architecture i386", "-ex", "set confirm off",
      "-ex", "target remote 127.0.0.1:5", "-ex", "info registers",
    ]);
  });

  test("debugWithGdb launches gdb with the ELF, connected, and returns when gdb exits", async () => {
    const { debugWithGdb } = await import("./launch.ts");
    const target = new MockTarget();
    let text = "";
    const why = await debugWithGdb(target, {
      port: 0,
      gdb: GDB!,
      elf,
      batch: true,
      stdio: "pipe",
      onOutput: (t) => (text += t),
      commands: ["stepi", "bt", "kill"],
    });
    expect(why).toBe("gdb-exited");
    expect(text).toContain("0x00001001 in main ()");
    expect(target.calls.kill).toBe(1);
  });
});
