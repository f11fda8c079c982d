// One deploy at a time per tenant. Uploads, git pushes and rollbacks of a
// tenant queue here in arrival order; a caller that waits longer than its
// bound gets 409 `deploy_in_progress` instead of hanging.
import { AppError } from '../errors.js';

interface Waiter {
  grant: () => void;
}

export class TenantLocks {
  /** tenant id -> waiters, the first of which holds the lock. */
  private readonly queues = new Map<string, Waiter[]>();

  /** Whether someone holds the tenant's lock right now. */
  isBusy(tenantId: string): boolean {
    return (this.queues.get(tenantId)?.length ?? 0) > 0;
  }

  /**
   * Runs `fn` while holding the tenant's lock. Waits at most `waitMs` for the
   * lock; the lock is released when `fn` settles, whether it throws or not.
   */
  async run<T>(tenantId: string, waitMs: number, fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire(tenantId, waitMs);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private acquire(tenantId: string, waitMs: number): Promise<() => void> {
    let queue = this.queues.get(tenantId);
    if (!queue) {
      queue = [];
      this.queues.set(tenantId, queue);
    }
    const q = queue;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        grant: () => {
          if (timer) clearTimeout(timer);
          let released = false;
          resolve(() => {
            if (released) return;
            released = true;
            this.releaseHead(tenantId, q, waiter);
          });
        },
      };
      q.push(waiter);
      if (q.length === 1) {
        waiter.grant();
        return;
      }
      timer = setTimeout(() => {
        const i = q.indexOf(waiter);
        // Index 0 means the lock was granted in the same tick: keep it.
        if (i > 0) {
          q.splice(i, 1);
          reject(
            new AppError(
              'deploy_in_progress',
              `Another deploy of tenant "${tenantId}" has been running for more than ${Math.round(waitMs / 1000)} s; try again when it has finished.`,
            ),
          );
        }
      }, waitMs);
    });
  }

  private releaseHead(tenantId: string, q: Waiter[], waiter: Waiter): void {
    if (q[0] !== waiter) return;
    q.shift();
    const next = q[0];
    if (next) next.grant();
    else if (this.queues.get(tenantId) === q) this.queues.delete(tenantId);
  }
}
