// The steps of the edge's pipeline (pipeline.ts), each a few lines that hand
// the work to the subsystem that does it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError } from '../error-response.js';
import type { DomainMap } from '../tenants/domain-map.js';
import type { SiteRegistry } from '../static/site-registry.js';
import { applySiteRules, serveStatic } from '../static/serve/static-files.js';
import { checkBasicAuth } from '../static/serve/basic-auth.js';
import { isApiPath, pathOf } from '../static/serve/request-path.js';
import type { WorkerProxy } from './proxy/worker-proxy.js';
import type { WorkerPool } from '../pool/worker-pool.js';

/** Which enabled plugin, if any, a request path belongs to. */
export type PluginRouting = Pick<WorkerPool, 'pluginFor'>;
import { siteStep, type Step } from './pipeline.js';

/** The platform host: the control API, git and the platform's pages, all in one handler built by app/. */
export function platformHost(platformHostName: string, handler: (req: IncomingMessage, res: ServerResponse) => void): Step {
  return (ctx) => {
    if (ctx.host !== platformHostName) return false;
    handler(ctx.req, ctx.res);
    return true;
  };
}

/**
 * Host -> tenant (one Map lookup, no query) -> its live release. An unknown
 * host gets the same 404 whatever the name, so nothing leaks; a tenant whose
 * release is missing or failed to load (logged there) gets 503.
 */
export function tenantSite(domains: DomainMap, sites: SiteRegistry): Step {
  return (ctx) => {
    const tenantId = domains.lookup(ctx.host);
    if (tenantId === undefined) {
      sendError(ctx.res, 'unknown_host');
      return true;
    }
    const site = sites.get(tenantId);
    if (!site) {
      sendError(ctx.res, 'no_live_release', undefined, { 'Retry-After': '30' });
      return true;
    }
    ctx.tenant = { tenantId, site };
    return false;
  };
}

/**
 * `Basic-Auth` in `_headers`: 401 unless the request carries the credentials
 * its path asks for. Before the rules, so it holds whatever answers the path.
 * A site without any `Basic-Auth` costs one property read.
 */
export function basicAuth(): Step {
  return siteStep(({ site }, req, res) => site.headerRules.authRules.length !== 0 && checkBasicAuth(site, req, res));
}

/** `_redirects`: answers redirects and status rewrites; a 200 rewrite changes req.url for the steps after it. */
export function siteRules(sites: SiteRegistry): Step {
  return siteStep(({ site }, req, res) => applySiteRules(site, req, res, sites.fileCache));
}

/**
 * /_<plugin>/ of a plugin the tenant has enabled: the tenant's worker (where
 * the plugin runs). Before the site's rules, so a catch-all rewrite cannot
 * swallow plugin paths; never /_admin/ (admin calls come only through the API).
 */
export function pluginRoutes(plugins: PluginRouting, proxy: WorkerProxy): Step {
  return siteStep(({ tenantId, site }, req, res) => {
    if (plugins.pluginFor(tenantId, req.url ?? '/') === undefined) return false;
    proxy.forward(tenantId, site, req, res);
    return true;
  });
}

/** /api and below, on a site whose live release has api/: the tenant's worker. */
export function apiRoutes(proxy: WorkerProxy): Step {
  return siteStep(({ tenantId, site }, req, res) => {
    if (!site.hasApi || !isApiPath(pathOf(req.url ?? '/'))) return false;
    proxy.forward(tenantId, site, req, res);
    return true;
  });
}

/** Last: the release's files, folder indexes, clean URLs, SPA fallback, 404.html, 404. */
export function staticFiles(sites: SiteRegistry): Step {
  return siteStep(({ site }, req, res) => {
    serveStatic(site, req, res, sites.fileCache);
    return true;
  });
}
