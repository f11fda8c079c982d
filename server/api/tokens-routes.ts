// /api/v1/tenants/:id/tokens: tenant tokens, shown once, stored hashed.
import { Router } from 'express';
import { z } from 'zod';
import type { TenantService } from '../tenants/tenant-service.js';
import { auditActor } from './audit-trail.js';
import { requireAdmin } from './auth-middleware.js';
import { jsonBody, SMALL_JSON } from './json-body.js';
import { parseBody } from './validate.js';
import { ALL_SCOPES, type Scope, type Store } from '../db/store.js';
import { hashToken, newId, newTokenValue } from '../auth/token-hash.js';
import { AppError } from '../errors.js';

const createSchema = z.strictObject({
  name: z.string().min(1).max(100).default('token'),
  scopes: z
    .array(z.enum(ALL_SCOPES as [Scope, ...Scope[]], { error: `scopes are ${ALL_SCOPES.join(', ')}` }))
    .min(1, 'give at least one scope')
    .default(['deploy', 'read']),
});

export interface TokensRouterDeps {
  readonly tenants: TenantService;
  readonly store: Store;
  /** The master secret tokens are hashed with. */
  readonly secret: string;
}

/** Mounted at /api/v1/tenants/:id/tokens. */
export function tokensRouter(p: TokensRouterDeps): Router {
  const r = Router({ mergeParams: true });

  r.post('/', requireAdmin, jsonBody(SMALL_JSON), (req, res) => {
    const tenantId = req.params.id as string;
    p.tenants.get(tenantId);
    const body = parseBody(createSchema, req.body);
    const token = newTokenValue();
    const id = newId('tok');
    const scopes = [...new Set(body.scopes)];
    p.store.tokens.insert({ id, tenantId, name: body.name, hash: hashToken(p.secret, token), scopes });
    p.store.audit.record({ actor: auditActor(req), action: 'token.create', tenantId, detail: { id, name: body.name, scopes } });
    res.status(201).json({ token, id, name: body.name, scopes });
  });

  r.get('/', requireAdmin, (req, res) => {
    const tenantId = req.params.id as string;
    p.tenants.get(tenantId);
    res.json({ tokens: p.store.tokens.forTenant(tenantId) });
  });

  r.delete('/:tokenId', requireAdmin, (req, res) => {
    const tenantId = req.params.id as string;
    if (!p.store.tokens.delete(tenantId, req.params.tokenId as string)) throw new AppError('not_found', 'No such token.');
    p.store.audit.record({ actor: auditActor(req), action: 'token.delete', tenantId, detail: { id: req.params.tokenId } });
    res.status(204).end();
  });

  return r;
}
