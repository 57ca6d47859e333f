/**
 * The only module in lib/ that reads the host clock. Everything it returns is either used for
 * pacing and flush cadence (no effect on the guest) or becomes a logged input (the boot date,
 * idle skips while waiting for input in realtime mode).
 */
export function hostClockMs(): number {
  return performance.now();
}

/** The host's current time as Unix seconds: the RTC boot date when none is given. */
export function hostEpochSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
