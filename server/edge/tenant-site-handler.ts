// A request on a tenant's domain: its live release's static files. Dynamic
// routes (api/) are handed to the tenant's worker by the route step set here.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Platform } from '../app/platform.js';
import type { SiteIndex } from '../static/index/site-index.js';
import { applySiteRules, serveStatic } from '../static/serve/static-files.js';
import { sendPlain } from './plain-pages.js';

/**
 * Handles a request before static files; returns true when it answered.
 * The dynamic-route proxy and plugin routes plug in here.
 */
export type SiteRequestStep = (tenantId: string, site: SiteIndex, req: IncomingMessage, res: ServerResponse) => boolean;

export function createTenantSiteHandler(p: Platform, steps: readonly SiteRequestStep[] = []) {
  return (tenantId: string, req: IncomingMessage, res: ServerResponse): void => {
    // Undefined when the tenant has no live release or it failed to load (logged there).
    const site = p.sites.get(tenantId);
    if (!site) {
      sendPlain(res, 503, 'Service Unavailable: this site has no live release.', { 'Retry-After': '30' });
      return;
    }
    const cache = p.sites.fileCache;
    // _redirects first: a rewrite to /api/... reaches the dynamic-route step below.
    if (applySiteRules(site, req, res, cache)) return;
    for (const step of steps) if (step(tenantId, site, req, res)) return;
    serveStatic(site, req, res, cache);
  };
}
