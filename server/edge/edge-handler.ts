// The edge's request entry: every request on the HTTP listener goes through
// this one list of steps, in order. A new step is one line here (and a small
// function in steps.ts); see README "Request path".
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DomainMap } from '../tenants/domain-map.js';
import type { SiteRegistry } from '../static/site-registry.js';
import type { WorkerProxy } from './proxy/worker-proxy.js';
import { runSteps, type RequestHandler, type Step } from './pipeline.js';
import { apiRoutes, pluginRoutes, type PluginRouting, basicAuth, platformHost, siteRules, staticFiles, tenantSite } from './steps.js';

export interface EdgeParts {
  readonly platformHost: string;
  /** The platform host's application (control API, git, pages), built by app/. */
  readonly platformApp: (req: IncomingMessage, res: ServerResponse) => void;
  readonly domains: DomainMap;
  readonly sites: SiteRegistry;
  readonly proxy: WorkerProxy;
  readonly plugins: PluginRouting;
}

export function createEdgeHandler(parts: EdgeParts): RequestHandler {
  const steps: Step[] = [
    platformHost(parts.platformHost, parts.platformApp), // the platform's own host name
    tenantSite(parts.domains, parts.sites), // host -> tenant -> live release (404 / 503 otherwise)
    basicAuth(), // _headers Basic-Auth: 401 without the credentials the path asks for
    pluginRoutes(parts.plugins, parts.proxy), // /_<plugin>/...: the tenant's worker, where its plugins run
    siteRules(parts.sites), // _redirects: redirects, status rewrites, 200 rewrites (before api/)
    apiRoutes(parts.proxy), // /api/...: the tenant's worker
    staticFiles(parts.sites), // files, fallbacks, 404
  ];
  return runSteps(steps);
}
