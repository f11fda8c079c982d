// GET /api/v1/tenants/:id/stats: the tenant's last hour by minute (requests,
// 4xx, 5xx, worker memory) for the dashboard's charts, taken from the same
// counters and readings as GET /metrics (metrics/minute-history.ts).
import { Router } from 'express';
import type { TenantService } from '../tenants/tenant-service.js';
import type { PlatformMetrics } from '../metrics/platform-metrics.js';
import { requireScope } from './auth-middleware.js';

export interface StatsRouterDeps {
  readonly tenants: TenantService;
  readonly metrics: Pick<PlatformMetrics, 'minutes'>;
}

/** Mounted at /api/v1/tenants/:id/stats. */
export function statsRouter(d: StatsRouterDeps): Router {
  const r = Router({ mergeParams: true });
  r.get('/', requireScope('read'), async (req, res) => {
    const id = req.params.id as string;
    d.tenants.get(id);
    const { minutes, memoryMissing } = await d.metrics.minutes(id);
    const totals = { requests: 0, errors4xx: 0, errors5xx: 0 };
    for (const m of minutes) {
      totals.requests += m.requests;
      totals.errors4xx += m.errors4xx;
      totals.errors5xx += m.errors5xx;
    }
    res.setHeader('Cache-Control', 'no-store');
    res.json({
      tenant: id,
      minuteSeconds: 60,
      minutes,
      totals,
      memory: memoryMissing === undefined ? { readable: true } : { readable: false, reason: memoryMissing },
    });
  });
  return r;
}
