// Messages per tenant in the last hour (in memory: a restart forgives, which
// is acceptable for a rate limit; counting is per accepted attempt).
const HOUR_MS = 60 * 60 * 1000;

export class HourlyCap {
  private readonly sent = new Map<string, number[]>();

  constructor(private readonly max: number) {}

  /** Counts one more for the tenant; false when the cap is reached (not counted then). */
  take(tenantId: string, now = Date.now()): boolean {
    const times = (this.sent.get(tenantId) ?? []).filter((t) => now - t < HOUR_MS);
    if (times.length >= this.max) {
      this.sent.set(tenantId, times);
      return false;
    }
    times.push(now);
    this.sent.set(tenantId, times);
    return true;
  }
}
