/**
 * Moved to lib/boards/pc-boot.ts (the PC board's loaders). This re-export stays only for
 * bench/, which still imports it from here; new code imports the board's file.
 */
export * from "../boards/pc-boot.ts";
