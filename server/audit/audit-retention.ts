// Keeps the audit trail for TENANTRY_AUDIT_DAYS: older rows are deleted at
// start and once a day after.
import type { Store } from '../db/store.js';
import type { Logger } from '../log.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export class AuditRetention {
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: Store,
    private readonly days: number,
    private readonly log: Logger,
  ) {
    this.prune();
    this.timer = setInterval(() => this.prune(), DAY_MS);
    this.timer.unref();
  }

  /** Deletes rows older than the kept days; returns how many went. */
  prune(now = Date.now()): number {
    try {
      const removed = this.store.audit.pruneBefore(new Date(now - this.days * DAY_MS).toISOString());
      if (removed > 0) this.log.info('audit rows pruned', { removed, days: this.days });
      return removed;
    } catch (err) {
      this.log.error('audit pruning failed', { err });
      return 0;
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
