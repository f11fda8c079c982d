// GET /api/v1/tenants/:id/logs?lines=N: the tenant's site log (worker output,
// access lines, worker starts and stops), newest last.
import { Router } from 'express';
import type { TenantService } from '../tenants/tenant-service.js';
import type { TenantLogs } from '../tenants/tenant-logs.js';
import { requireScope } from './auth-middleware.js';
import { AppError } from '../errors.js';

export const DEFAULT_LOG_LINES = 100;
export const MAX_LOG_LINES = 10_000;

export interface LogsRouterDeps {
  readonly tenants: TenantService;
  readonly siteLogs: TenantLogs;
}

/** Mounted at /api/v1/tenants/:id/logs. */
export function logsRouter(p: LogsRouterDeps): Router {
  const r = Router({ mergeParams: true });
  r.get('/', requireScope('read'), (req, res) => {
    const id = req.params.id as string;
    p.tenants.get(id);
    const raw = req.query.lines;
    let lines = DEFAULT_LOG_LINES;
    if (raw !== undefined) {
      lines = Number(raw);
      if (typeof raw !== 'string' || !Number.isInteger(lines) || lines < 1 || lines > MAX_LOG_LINES) {
        throw new AppError('invalid_request', `lines must be a whole number from 1 to ${MAX_LOG_LINES}.`);
      }
    }
    res.json({ lines: p.siteLogs.tail(id, lines) });
  });
  return r;
}
