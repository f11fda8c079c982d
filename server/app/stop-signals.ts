// The signals that stop a Tenantry process gracefully, in one place for the
// supervisor, the single-process platform and the edges. SIGHUP is among them:
// a closed terminal or a `kill -HUP` out of habit (other servers reload on it)
// must not end the platform abruptly (README, "Reload").
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** Calls `stop` on the first stop signal; later ones are ignored (the stop is under way). */
export function onStopSignal(stop: (signal: StopSignal) => void): void {
  let stopping = false;
  for (const signal of STOP_SIGNALS) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      stop(signal);
    });
  }
}
