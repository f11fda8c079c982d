// /api/v1/tenants/:id/domains: a tenant's custom domains (add, prove, options,
// remove) and their certificates (upload, remove). Reading needs `read`;
// changes need `deploy` (or the admin, whose names are verified at once).
import { Router } from 'express';
import { z } from 'zod';
import type { TenantService } from '../tenants/tenant-service.js';
import type { DomainService } from '../domains/domain-service.js';
import type { CertificateManager } from '../tls/certificate-manager.js';
import { auditActor } from './audit-trail.js';
import { requireScope } from './auth-middleware.js';
import { jsonBody, SMALL_JSON, type JsonBodyLimits } from './json-body.js';
import { parseBody } from './validate.js';
import { domainView } from './domain-view.js';

const redirect = z.enum(['none', 'to-apex', 'to-www'], { error: 'redirect is one of none, to-apex, to-www' });
const addSchema = z.strictObject({ domain: z.string().min(1).max(1024), redirect: redirect.optional() });
const patchSchema = z.strictObject({ redirect });
const verifySchema = z.strictObject({ method: z.enum(['txt', 'http'], { error: 'method is txt or http' }).optional() });
const pem = (what: string) => z.string({ error: `${what} is a PEM string` }).min(1).max(64 * 1024);
const certificateSchema = z.strictObject({ cert: pem('cert'), key: pem('key') });
/** A certificate chain with its key: a few kilobytes, flat. */
const PEM_JSON: JsonBodyLimits = { limit: '160kb', maxDepth: 2 };

export interface DomainsRouterDeps {
  readonly tenants: TenantService;
  readonly domains: DomainService;
  readonly certificates: CertificateManager;
}

/** Mounted at /api/v1/tenants/:id/domains. */
export function domainsRouter(p: DomainsRouterDeps): Router {
  const r = Router({ mergeParams: true });
  const view = (d: Parameters<typeof domainView>[0]) => domainView(d, p.domains, p.certificates);
  const tenantOf = (params: Record<string, unknown>) => p.tenants.get(String(params.id)).id;

  r.get('/', requireScope('read'), (req, res) => {
    res.json({ domains: p.domains.list(tenantOf(req.params)).map(view) });
  });

  r.post('/', requireScope('deploy'), jsonBody(SMALL_JSON), (req, res) => {
    const tenantId = tenantOf(req.params);
    const body = parseBody(addSchema, req.body);
    const { record, created } = p.domains.add(tenantId, body.domain, { admin: req.principal?.kind === 'admin', redirect: body.redirect }, auditActor(req));
    res.status(created ? 201 : 200).json(view(record));
  });

  r.get('/:domain', requireScope('read'), (req, res) => {
    res.json(view(p.domains.get(tenantOf(req.params), String(req.params.domain))));
  });

  r.post('/:domain/verify', requireScope('deploy'), jsonBody(SMALL_JSON), async (req, res) => {
    const tenantId = tenantOf(req.params);
    const body = parseBody(verifySchema, req.body);
    res.json(view(await p.domains.verify(tenantId, String(req.params.domain), auditActor(req), body.method)));
  });

  r.patch('/:domain', requireScope('deploy'), jsonBody(SMALL_JSON), (req, res) => {
    const tenantId = tenantOf(req.params);
    const body = parseBody(patchSchema, req.body);
    res.json(view(p.domains.setRedirect(tenantId, String(req.params.domain), body.redirect, auditActor(req))));
  });

  r.delete('/:domain', requireScope('deploy'), (req, res) => {
    p.domains.remove(tenantOf(req.params), String(req.params.domain), auditActor(req));
    res.status(204).end();
  });

  r.put('/:domain/certificate', requireScope('deploy'), jsonBody(PEM_JSON), (req, res) => {
    const claim = p.domains.get(tenantOf(req.params), String(req.params.domain));
    const body = parseBody(certificateSchema, req.body);
    p.certificates.upload(claim, body.cert, body.key, auditActor(req));
    res.json(view(claim));
  });

  r.delete('/:domain/certificate', requireScope('deploy'), (req, res) => {
    const claim = p.domains.get(tenantOf(req.params), String(req.params.domain));
    p.certificates.remove(claim, auditActor(req));
    res.json(view(claim));
  });

  return r;
}
