/**
 * The boards this rrx has, by name: the PC is built in; tests (and future boards) add theirs
 * with registerBoard(). Replay finds the board a log header names here.
 */
import type { GuestCpu } from "../cpu/contract.ts";
import type { Board } from "./board.ts";
import { BootError } from "../boot/elf.ts";
import { pcBoard } from "./pc-board.ts";

const boards: Board<GuestCpu>[] = [pcBoard as unknown as Board<GuestCpu>];

/** The board new machines get when none is named. */
export const DEFAULT_BOARD = pcBoard.name;

/** Add a board (a board of the same name is replaced). */
export function registerBoard(b: Board<any>): void {
  const i = boards.findIndex((x) => x.name === b.name);
  if (i >= 0) boards[i] = b;
  else boards.push(b);
}

/** The board of that name (and ISA, when given), or undefined. */
export function findBoard(name: string, isa?: string): Board<GuestCpu> | undefined {
  return boards.find((b) => b.name === name && (isa === undefined || b.isa === isa));
}

/** The board of that name; a one-line BootError naming the boards there are otherwise. */
export function boardFor(name: string, isa?: string): Board<GuestCpu> {
  const b = findBoard(name, isa);
  if (b) return b;
  const what = isa === undefined ? `a ${JSON.stringify(name)} board` : `a ${JSON.stringify(name)} board with a ${JSON.stringify(isa)} CPU`;
  throw new BootError(`the log needs ${what}; this rrx has: ${boards.map((x) => `${x.name} (${x.isa})`).join(", ")}`);
}

/** Remove a board added with registerBoard (tests clean up after themselves). The PC stays. */
export function unregisterBoard(name: string): void {
  const i = boards.findIndex((x) => x.name === name);
  if (i >= 0 && name !== DEFAULT_BOARD) boards.splice(i, 1);
}

/** The board's newest version: what new recordings get. */
export function newestVersion(b: Board<any>): number {
  return b.versions[b.versions.length - 1]!.version;
}

/** A one-line BootError for a version the board does not have (a log from a newer rrx, a typo). */
export function checkBoardVersion(b: Board<any>, version: number): void {
  if (b.versions.some((v) => v.version === version)) return;
  const have = b.versions.map((v) => v.version).join(", ");
  const newer = version > newestVersion(b) ? "; upgrade rrx" : "";
  throw new BootError(`the ${b.name} board has no version ${version} (this rrx has ${have}${newer})`);
}
