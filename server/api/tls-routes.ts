// /api/v1/tls/ask?domain=D, for Caddy's on-demand TLS ("ask"): 200 when D is a
// verified domain of some tenant (or the platform host), else 404, so a proxy
// in front asks a CA only for names this platform really serves. No token:
// Caddy sends none, and the answer tells no more than DNS does.
import { Router } from 'express';
import type { DomainMap } from '../tenants/domain-map.js';
import { normalizeDomain } from '../model/domain-name.js';
import { AppError } from '../errors.js';

export interface TlsRouterDeps {
  readonly domainMap: DomainMap;
  readonly platformHost: string;
}

/** Mounted at /api/v1/tls, ahead of the token check. */
export function tlsRouter(p: TlsRouterDeps): Router {
  const r = Router();
  r.get('/ask', (req, res) => {
    const raw = req.query.domain;
    if (typeof raw !== 'string' || raw === '') throw new AppError('invalid_request', 'Give the name as ?domain=');
    const domain = normalizeDomain(raw) ?? raw.trim().toLowerCase().replace(/\.$/, '');
    // Exact names only: a wildcard entry does not make every name under it worth a certificate.
    if (domain === p.platformHost || p.domainMap.isVerified(domain)) {
      res.json({ ok: true, domain });
      return;
    }
    throw new AppError('not_found', `${raw} is not a verified domain here.`);
  });
  return r;
}
