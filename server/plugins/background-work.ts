// Plugins' work without requests (a newsletter issue sending). Workers start
// on requests and stop when idle; a plugin that has work pending says so over
// its capability channel (mail/capability-server.ts), and the platform records
// it in tenant_plugins.background_work. While any enabled plugin of a tenant
// has work pending, the pool does not stop the worker for idleness (its
// keepRunning), and this module starts it when the platform starts and again
// whenever it is not running (it crashed, or was killed), so the work resumes
// without anyone's help.
import type { Store } from '../db/store.js';
import type { Logger } from '../log.js';
import type { SiteRegistry } from '../static/site-registry.js';
import type { WorkerPool } from '../pool/worker-pool.js';

/** How often tenants with pending work are checked for a running worker. */
export const BACKGROUND_CHECK_MS = 15_000;

export interface BackgroundWorkDeps {
  readonly store: Store;
  readonly workers: Pick<WorkerPool, 'ensureRunning'>;
  readonly sites: Pick<SiteRegistry, 'get'>;
  readonly log: Logger;
  readonly checkMs?: number;
}

export class BackgroundWorkKeeper {
  private timer: NodeJS.Timeout | undefined;
  /** Tenants whose start is under way, so overlapping checks do not stack. */
  private readonly starting = new Set<string>();

  constructor(private readonly d: BackgroundWorkDeps) {}

  /** Starts the workers of tenants with pending work now, then checks every `checkMs`. */
  start(): void {
    if (this.timer) return;
    this.check();
    this.timer = setInterval(() => this.check(), this.d.checkMs ?? BACKGROUND_CHECK_MS);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    let tenants: string[];
    try {
      tenants = this.d.store.plugins.tenantsWithBackgroundWork();
    } catch {
      return; // the database is closed: the platform is stopping
    }
    for (const tenantId of tenants) {
      const live = this.d.sites.get(tenantId);
      if (!live || this.starting.has(tenantId)) continue;
      this.starting.add(tenantId);
      this.d.workers
        .ensureRunning(tenantId, live)
        .catch((err: unknown) => this.d.log.warn('could not start a worker for pending plugin work; trying again later', { tenant: tenantId, err }))
        .finally(() => this.starting.delete(tenantId));
    }
  }
}
