// /api/v1/tenants: create, list, show, change, delete (admin only).
import { Router } from 'express';
import { z } from 'zod';
import type { Store } from '../db/store.js';
import type { TenantService } from '../tenants/tenant-service.js';
import type { CertificateManager } from '../tls/certificate-manager.js';
import { auditActor } from './audit-trail.js';
import { requireAdmin } from './auth-middleware.js';
import { jsonBody, SMALL_JSON } from './json-body.js';
import { parseBody } from './validate.js';
import { tenantView } from './tenant-view.js';
import { limitsPatchSchema } from '../model/limits.js';
import { AppError } from '../errors.js';
import { isValidTenantId } from '../model/tenant-id.js';

const createSchema = z.strictObject({
  id: z.unknown(),
  domains: z.array(z.string()).max(100).optional(),
  limits: limitsPatchSchema.optional(),
  network: z.enum(['none', 'all']).optional(),
});

const patchSchema = z.strictObject({
  limits: limitsPatchSchema.optional(),
  network: z.enum(['none', 'all']).optional(),
  deployBranch: z
    .string()
    .regex(/^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,100}$/, 'must be a branch name such as main')
    .optional(),
  keepReleases: z.number().int().min(1).max(1000).optional(),
  /** Visitors on plain HTTP sent to HTTPS; Strict-Transport-Security over HTTPS. */
  https: z.strictObject({ redirect: z.boolean().optional(), hsts: z.boolean().optional() }).optional(),
});

export interface TenantsRouterDeps {
  readonly tenants: TenantService;
  readonly store: Store;
  readonly certificates: CertificateManager;
}

/** Mounted at /api/v1/tenants. */
export function tenantsRouter(p: TenantsRouterDeps): Router {
  const r = Router();
  const view = (id: string) => tenantView(p.tenants.get(id), p.store, (i) => p.tenants.urlOf(i), p.certificates);

  r.post('/', requireAdmin, jsonBody(SMALL_JSON), async (req, res) => {
    const body = parseBody(createSchema, req.body);
    if (!isValidTenantId(body.id)) throw new AppError('invalid_tenant_id');
    const t = await p.tenants.create({ id: body.id, domains: body.domains, limits: body.limits, network: body.network }, auditActor(req));
    res.status(201).json(view(t.id));
  });

  r.get('/', requireAdmin, (_req, res) => {
    res.json({ tenants: p.store.tenants.list().map((t) => view(t.id)) });
  });

  r.get('/:id', requireAdmin, (req, res) => {
    res.json(view(req.params.id as string));
  });

  r.patch('/:id', requireAdmin, jsonBody(SMALL_JSON), async (req, res) => {
    const id = req.params.id as string;
    p.tenants.get(id);
    const body = parseBody(patchSchema, req.body);
    await p.tenants.update(id, body, auditActor(req));
    res.json(view(id));
  });

  r.delete('/:id', requireAdmin, async (req, res) => {
    const id = req.params.id as string;
    p.tenants.get(id);
    await p.tenants.delete(id, auditActor(req));
    res.status(204).end();
  });

  return r;
}
