// The audit trail of the control API: every mutating request leaves a row,
// success or failure. Services write the rows of the changes they make (with
// what changed), given the request's actor (who, from where); a request that
// wrote none (refused before a service ran: bad token, scope, validation, ...)
// gets one row here once it is answered, with its error code.
import type { NextFunction, Request, Response } from 'express';
import type { Store } from '../db/store.js';
import type { Actor } from '../model/actor.js';
import type { TrustedProxies } from '../model/client-origin.js';
import { actorFor } from '../auth/principal.js';
import { RefusalSampler } from '../audit/refusal-sampler.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Rows written for this request, and the client's address. */
      audit?: { readonly trail: { rows: number }; readonly address: string };
    }
  }
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Route shapes (under /api/v1) and the action their rows are recorded as. */
const ACTIONS: readonly (readonly [string, RegExp, string])[] = [
  ['POST', /^\/tenants\/?$/, 'tenant.create'],
  ['PATCH', /^\/tenants\/[^/]+\/?$/, 'tenant.update'],
  ['DELETE', /^\/tenants\/[^/]+\/?$/, 'tenant.delete'],
  ['POST', /^\/tenants\/[^/]+\/tokens\/?$/, 'token.create'],
  ['DELETE', /^\/tenants\/[^/]+\/tokens\/[^/]+\/?$/, 'token.delete'],
  ['POST', /^\/tenants\/[^/]+\/deploys\/?$/, 'deploy.create'],
  ['POST', /^\/tenants\/[^/]+\/deploys\/[^/]+\/activate\/?$/, 'deploy.activate'],
  ['PUT', /^\/tenants\/[^/]+\/deploys\/[^/]+\/files\/[^/]+\/?$/, 'deploy.upload'],
  ['POST', /^\/tenants\/[^/]+\/deploys\/[^/]+\/finalize\/?$/, 'deploy.finalize'],
  ['PUT', /^\/tenants\/[^/]+\/env\/?$/, 'env.set'],
  ['POST', /^\/tenants\/[^/]+\/domains\/?$/, 'domain.add'],
  ['POST', /^\/tenants\/[^/]+\/domains\/[^/]+\/verify\/?$/, 'domain.verify'],
  ['PATCH', /^\/tenants\/[^/]+\/domains\/[^/]+\/?$/, 'domain.update'],
  ['DELETE', /^\/tenants\/[^/]+\/domains\/[^/]+\/?$/, 'domain.remove'],
  ['PUT', /^\/tenants\/[^/]+\/domains\/[^/]+\/certificate\/?$/, 'certificate.upload'],
  ['DELETE', /^\/tenants\/[^/]+\/domains\/[^/]+\/certificate\/?$/, 'certificate.remove'],
];
const TENANT_ID = /^\/tenants\/([a-z][a-z0-9-]{0,38}[a-z0-9])(?:\/|$)/;

function pathOf(req: Request): string {
  const url = req.originalUrl.split('?')[0] ?? '';
  return url.replace(/^\/api\/v1/, '');
}

/** Bounded names only: an unknown route is recorded by its method, never its path. */
function actionOf(method: string, path: string): string {
  for (const [m, re, action] of ACTIONS) if (m === method && re.test(path)) return action;
  return `api.${method.toLowerCase()}`;
}

/**
 * Mounted on /api/v1 before the token check, so refused requests are recorded too.
 * Refusals of callers with no valid token name no one: they are sampled (refusal-sampler.ts),
 * so a flood from many addresses cannot fill the trail; each row says how many it stands for.
 */
export function auditTrail(store: Store, proxies: TrustedProxies, anonymous: RefusalSampler = new RefusalSampler()) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!MUTATING.has(req.method)) return next();
    const audit = { trail: { rows: 0 }, address: proxies.originOf(req).address };
    req.audit = audit;
    res.once('finish', () => {
      if (audit.trail.rows > 0) return;
      const path = pathOf(req);
      const failed = res.statusCode >= 400;
      let detail: Record<string, unknown> = { status: res.statusCode };
      if (failed && req.principal === undefined) {
        const row = anonymous.admit(audit.address);
        if (!row) return;
        detail = { ...detail, refusals: row.refusals, ...(row.heldElsewhere ? { heldElsewhere: row.heldElsewhere } : {}) };
      }
      store.audit.record({
        actor: actorFor(req.principal, audit.address),
        action: actionOf(req.method, path),
        tenantId: TENANT_ID.exec(path)?.[1] ?? null,
        outcome: failed ? 'failure' : 'success',
        code: failed ? ((res.locals.errorCode as string | undefined) ?? `http_${res.statusCode}`) : null,
        detail,
      });
    });
    next();
  };
}

/** The actor services record for this request. */
export function auditActor(req: Request): Actor {
  return actorFor(req.principal, req.audit?.address ?? '', req.audit?.trail);
}
