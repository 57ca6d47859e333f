/** The golden recordings: what each was recorded from. */
export interface GoldenSpec {
  name: string;
  elf: string;
  cmdline: string;
  script?: string;
  bootDate: number;
  hashInterval: number;
  /**
   * A Linux guest (fixtures/linux/fetch.sh): the log is not packed (Debian's binaries stay out of
   * the tree); it names the kernel and initrd by hash, found in the guest cache. `elf` and
   * `cmdline` are unused; `args` are the `rrx run` arguments after the kernel.
   */
  linux?: { args: string[] };
}

const DATE = Math.floor(Date.parse("2024-02-29T12:34:56Z") / 1000);

export const GOLDEN: GoldenSpec[] = [
  { name: "hello-v1", elf: "hello.elf", cmdline: "hello.elf", bootDate: DATE, hashInterval: 1 << 20 },
  { name: "interrupts-v1", elf: "interrupts.elf", cmdline: "interrupts.elf", script: "input/interrupts.txt", bootDate: DATE, hashInterval: 1 << 20 },
  { name: "smc-v1", elf: "smc.elf", cmdline: "smc.elf", bootDate: DATE, hashInterval: 1 << 16 },
  { name: "paging-v1", elf: "paging.elf", cmdline: "paging.elf", bootDate: DATE, hashInterval: 1 << 20 },
  // Recorded before board versions (log v3: version 1 of the PC board, UARTs at the line rate).
  // This build writes v4 logs, so it cannot record it again; it stays to prove old logs replay.
  {
    name: "linux-shell-v3", elf: "", cmdline: "", script: "linux/shell.txt", bootDate: Math.floor(Date.parse("2026-01-01T00:00:00Z") / 1000), hashInterval: 1 << 24,
    linux: { args: ["-m", "64", "--append", "console=ttyS0,115200 cryptomgr.notests noisapnp"] },
  },
  // The same session on version 2 of the PC board (log v4): the UARTs send at once.
  {
    name: "linux-shell-v4", elf: "", cmdline: "", script: "linux/shell.txt", bootDate: Math.floor(Date.parse("2026-01-01T00:00:00Z") / 1000), hashInterval: 1 << 24,
    linux: { args: ["-m", "64", "--append", "console=ttyS0,115200 cryptomgr.notests noisapnp"] },
  },
];

/** Where fixtures/linux/fetch.sh puts the Linux guest. */
export function linuxGuestDir(): string {
  const home = process.env.HOME ?? "/root";
  return process.env.RRX_LINUX_DIR ?? `${process.env.XDG_CACHE_HOME || `${home}/.cache`}/rrx/linux`;
}
