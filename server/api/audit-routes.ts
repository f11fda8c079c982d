// GET /api/v1/audit?tenant=&limit=: the audit trail, newest first. The admin
// sees every tenant's (or one, with `tenant`); a tenant token with `read`
// sees its own tenant's rows only.
import { Router } from 'express';
import type { Store } from '../db/store.js';
import { refusalFor } from '../auth/principal.js';
import { AppError } from '../errors.js';

export const AUDIT_MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;

function limitOf(raw: unknown): number {
  if (raw === undefined) return DEFAULT_LIMIT;
  const n = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || n < 1 || n > AUDIT_MAX_LIMIT) {
    throw new AppError('invalid_query', `limit must be a whole number from 1 to ${AUDIT_MAX_LIMIT}.`);
  }
  return n;
}

export function auditRouter(d: { readonly store: Store }): Router {
  const r = Router();
  r.get('/', (req, res) => {
    const limit = limitOf(req.query.limit);
    const asked = typeof req.query.tenant === 'string' && req.query.tenant !== '' ? req.query.tenant : undefined;
    const p = req.principal;
    let tenantId = asked;
    if (p?.kind !== 'admin') {
      // A tenant token: its own tenant, whether named or not.
      tenantId = asked ?? (p?.kind === 'tenant' ? p.tenantId : undefined);
      const refusal = refusalFor(p, tenantId ?? '', 'read');
      if (refusal) throw new AppError(refusal.status === 401 ? 'unauthorized' : 'forbidden', refusal.message);
    }
    res.json({ entries: d.store.audit.list({ tenantId, limit }) });
  });
  return r;
}
