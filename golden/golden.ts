/** The golden recordings: what each was recorded from. */
export interface GoldenSpec {
  name: string;
  elf: string;
  cmdline: string;
  script?: string;
  bootDate: number;
  hashInterval: number;
}

const DATE = Math.floor(Date.parse("2024-02-29T12:34:56Z") / 1000);

export const GOLDEN: GoldenSpec[] = [
  { name: "hello-v1", elf: "hello.elf", cmdline: "hello.elf", bootDate: DATE, hashInterval: 1 << 20 },
  { name: "interrupts-v1", elf: "interrupts.elf", cmdline: "interrupts.elf", script: "input/interrupts.txt", bootDate: DATE, hashInterval: 1 << 20 },
  { name: "smc-v1", elf: "smc.elf", cmdline: "smc.elf", bootDate: DATE, hashInterval: 1 << 16 },
  { name: "paging-v1", elf: "paging.elf", cmdline: "paging.elf", bootDate: DATE, hashInterval: 1 << 20 },
];
