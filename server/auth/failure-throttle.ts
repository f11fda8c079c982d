// Wrong tokens are throttled: after too many failures in a minute from one
// client address (or with one token prefix, for a token tried from many
// places), further attempts get 429 until the minute is over, without the
// token being looked at. Right tokens from other addresses are never slowed.
// Each throttled key is logged once per window.
import type { Logger } from '../log.js';

export interface ThrottleSettings {
  /** Failures allowed per key and window before attempts are refused. */
  readonly maxFailures: number;
  readonly windowMs: number;
}

export const DEFAULT_THROTTLE: ThrottleSettings = { maxFailures: 20, windowMs: 60_000 };
const PREFIX_LENGTH = 12;
const SWEEP_AT = 10_000;

interface Window {
  start: number;
  failures: number;
  logged: boolean;
}

export class FailureThrottle {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly log: Logger,
    private readonly settings: ThrottleSettings = DEFAULT_THROTTLE,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds to wait when this address or token prefix is over its limit; undefined when it may try. */
  retryAfter(address: string, token: string): number | undefined {
    let wait: number | undefined;
    for (const key of keysOf(address, token)) {
      const w = this.current(key);
      if (w && w.failures >= this.settings.maxFailures) {
        const s = Math.ceil((w.start + this.settings.windowMs - this.now()) / 1000);
        wait = Math.max(wait ?? 0, s, 1);
        if (!w.logged) {
          w.logged = true;
          this.log.warn('wrong tokens throttled', { key, failures: w.failures, seconds: s });
        }
      }
    }
    return wait;
  }

  recordFailure(address: string, token: string): void {
    if (this.windows.size > SWEEP_AT) this.sweep();
    for (const key of keysOf(address, token)) {
      const w = this.current(key);
      if (w) w.failures++;
      else this.windows.set(key, { start: this.now(), failures: 1, logged: false });
    }
  }

  private current(key: string): Window | undefined {
    const w = this.windows.get(key);
    if (w && this.now() - w.start >= this.settings.windowMs) {
      this.windows.delete(key);
      return undefined;
    }
    return w;
  }

  private sweep(): void {
    const t = this.now();
    for (const [key, w] of this.windows) if (t - w.start >= this.settings.windowMs) this.windows.delete(key);
  }
}

function keysOf(address: string, token: string): string[] {
  return [`address:${address}`, `token:${token.slice(0, PREFIX_LENGTH)}`];
}
