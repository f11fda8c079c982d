// GET /api/v1/tenants/:id/logs?lines=N: the tenant's site log (worker output,
// access lines, worker starts and stops), newest last; /stream follows it live.
import { Router } from 'express';
import type { TenantService } from '../tenants/tenant-service.js';
import type { TenantLogs } from '../tenants/tenant-logs.js';
import { requireScope } from './auth-middleware.js';
import { AppError } from '../errors.js';
import { streamTenantLog } from '../dashboard/log-stream.js';
import { allowedFor, type Principal } from '../auth/principal.js';

export const DEFAULT_LOG_LINES = 100;
export const MAX_LOG_LINES = 10_000;

export interface LogsRouterDeps {
  readonly tenants: TenantService;
  readonly siteLogs: TenantLogs;
  /** Who the caller is now (its session or token may end while a stream is open). */
  readonly principalNow?: (req: import('express').Request) => Principal | undefined;
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
  // Server-sent events: the last lines, then each new one (the dashboard's live log).
  r.get('/stream', requireScope('read'), (req, res) => {
    const id = req.params.id as string;
    p.tenants.get(id);
    streamTenantLog(req, res, {
      siteLogs: p.siteLogs,
      tenantId: id,
      stillAllowed: () => (p.principalNow ? allowedFor(p.principalNow(req), id, ['read']) : true),
    });
  });
  return r;
}
