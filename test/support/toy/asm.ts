/**
 * A two-pass assembler for toy32 (cpu.ts): a program is a list of instructions and labels;
 * branch targets are labels.
 */
import { Op } from "./cpu.ts";

export type Item = string | [Op, number, number, number | string];

/** Instruction helpers: [op, rd, rs, imm or label]. */
export const I = {
  halt: (): Item => [Op.HALT, 0, 0, 0],
  li: (rd: number, imm: number): Item => [Op.LI, rd, 0, imm],
  lui: (rd: number, imm: number): Item => [Op.LUI, rd, 0, imm],
  add: (rd: number, rs: number): Item => [Op.ADD, rd, rs, 0],
  addi: (rd: number, imm: number): Item => [Op.ADDI, rd, 0, imm],
  ld: (rd: number, rs: number, imm: number): Item => [Op.LD, rd, rs, imm],
  st: (rd: number, rs: number, imm: number): Item => [Op.ST, rd, rs, imm],
  bz: (rd: number, label: string): Item => [Op.BZ, rd, 0, label],
  bnz: (rd: number, label: string): Item => [Op.BNZ, rd, 0, label],
  out: (rd: number, port: number): Item => [Op.OUT, rd, 0, port],
  in: (rd: number, port: number): Item => [Op.IN, rd, 0, port],
  wfi: (): Item => [Op.WFI, 0, 0, 0],
  iret: (): Item => [Op.IRET, 0, 0, 0],
  ei: (on: number): Item => [Op.EI, 0, 0, on],
};

/** Assemble at address 0: the bytes and each label's address. */
export function assemble(items: Item[]): { code: Uint8Array; labels: Map<string, number> } {
  const labels = new Map<string, number>();
  let pc = 0;
  for (const it of items) {
    if (typeof it === "string") labels.set(it, pc);
    else pc += 4;
  }
  const code = new Uint8Array(pc);
  pc = 0;
  for (const it of items) {
    if (typeof it === "string") continue;
    const [op, rd, rs, x] = it;
    let imm: number;
    if (typeof x === "string") {
      const t = labels.get(x);
      if (t === undefined) throw new Error(`no label ${x}`);
      imm = t - (pc + 4);
    } else imm = x;
    code[pc] = op; code[pc + 1] = (rd & 0xf) | (rs << 4); code[pc + 2] = imm & 0xff; code[pc + 3] = (imm >> 8) & 0xff;
    pc += 4;
  }
  return { code, labels };
}
