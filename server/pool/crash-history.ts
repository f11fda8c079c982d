// Pure bookkeeping of a tenant's worker crashes: how long to wait before the
// next start (exponential backoff), and when a crash loop puts the tenant's
// dynamic routes on hold. Time is passed in, so the rules are plain functions.

export const CRASH_WINDOW_MS = 60_000;
export const CRASH_LOOP_CRASHES = 5;
export const CRASH_LOOP_HOLD_MS = 5 * 60_000;
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 8_000;

export class CrashHistory {
  private crashes: number[] = [];
  private heldUntil = 0;
  private heldReason = '';

  /** Records one crash; returns true when it starts a crash-loop hold. */
  record(now: number, reason: string): boolean {
    this.crashes = this.crashes.filter((t) => now - t < CRASH_WINDOW_MS);
    this.crashes.push(now);
    if (this.crashes.length >= CRASH_LOOP_CRASHES && !this.isHeld(now)) {
      this.heldUntil = now + CRASH_LOOP_HOLD_MS;
      this.heldReason = `the worker crashed ${this.crashes.length} times within ${CRASH_WINDOW_MS / 1000} s; last: ${reason}`;
      return true;
    }
    return false;
  }

  isHeld(now: number): boolean {
    return now < this.heldUntil;
  }

  /** Seconds until the hold ends (for Retry-After). */
  retryAfterSeconds(now: number): number {
    return Math.max(1, Math.ceil((this.heldUntil - now) / 1000));
  }

  get reason(): string {
    return this.heldReason;
  }

  /** Delay before the next start: none after a first crash, then doubling. */
  backoffMs(now: number): number {
    const recent = this.crashes.filter((t) => now - t < CRASH_WINDOW_MS);
    if (recent.length <= 1) return 0;
    const wanted = Math.min(BACKOFF_BASE_MS * 2 ** (recent.length - 2), BACKOFF_MAX_MS);
    return Math.max(0, recent[recent.length - 1]! + wanted - now);
  }

  /** A deploy, an env change or a settings change: start afresh. */
  clear(): void {
    this.crashes = [];
    this.heldUntil = 0;
    this.heldReason = '';
  }
}
