// The edge's request pipeline: an ordered list of steps, each the same small
// function. A step answers the request and returns true, or returns false to
// pass it on (possibly after rewriting req.url, as a 200 rule does). The list
// itself is built in one place, edge-handler.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { normalizeHost } from '../model/domain-name.js';
import type { ClientOrigin, TrustedProxies } from '../model/client-origin.js';
import type { SiteIndex } from '../static/index/site-index.js';
import type { DomainRoute } from '../tenants/domain-map.js';

/** The tenant a request is for and its live release, once a step has found them. */
export interface TenantSite {
  readonly tenantId: string;
  readonly site: SiteIndex;
  /** How its host name was matched, with the tenant's HTTPS options. */
  readonly route: DomainRoute;
}

export interface EdgeContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The Host header, lower case, without port or trailing dot ('' when absent). */
  readonly host: string;
  /** Who the client is and whether it used HTTPS (forwarding headers believed only from trusted proxies). */
  readonly origin: ClientOrigin;
  /** Set by the step that maps the host to a tenant; undefined before it. */
  tenant: TenantSite | undefined;
}

export type Step = (ctx: EdgeContext) => boolean;

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** A step that only applies to a tenant's site (after the tenant step). */
export function siteStep(fn: (tenant: TenantSite, req: IncomingMessage, res: ServerResponse) => boolean): Step {
  return (ctx) => ctx.tenant !== undefined && fn(ctx.tenant, ctx.req, ctx.res);
}

/** Runs the steps in order until one answers; the last step must always answer. */
export function runSteps(steps: readonly Step[], proxies: TrustedProxies): RequestHandler {
  const n = steps.length;
  return (req, res) => {
    const ctx: EdgeContext = { req, res, host: normalizeHost(req.headers.host), origin: proxies.originOf(req), tenant: undefined };
    for (let i = 0; i < n; i++) if (steps[i]!(ctx)) return;
  };
}
