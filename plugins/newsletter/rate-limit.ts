// A fixed-size sliding-window counter per key, in memory (per worker): the
// per-client limit. Client addresses are not written to disk. The per-address
// limit (one confirmation mail per address per day) and the per-tenant cap on
// confirmation mails are kept in the store, so they survive restarts.
export class SlidingWindowLimiter {
  private readonly hits = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly maxKeys = 10_000,
  ) {}

  /** Counts a hit for `key`; false when the key is over its limit. */
  take(key: string, now = Date.now()): boolean {
    const since = now - this.windowMs;
    const list = (this.hits.get(key) ?? []).filter((t) => t > since);
    if (list.length >= this.limit) {
      this.hits.set(key, list);
      return false;
    }
    list.push(now);
    this.hits.delete(key);
    this.hits.set(key, list);
    // Forget the least recently seen keys beyond the cap (a Map keeps insertion order).
    while (this.hits.size > this.maxKeys) this.hits.delete(this.hits.keys().next().value!);
    return true;
  }
}
