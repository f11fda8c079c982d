// The edge's request entry: Host -> platform (control API) or a tenant's site.
// One Map lookup per request; no database query.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Platform } from '../app/platform.js';
import { normalizeHost } from '../tenants/domain-map.js';
import { createControlApp } from '../api/control-app.js';
import { createTenantSiteHandler, type SiteRequestStep } from './tenant-site-handler.js';
import { sendUnknownHost } from './plain-pages.js';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function createEdgeHandler(p: Platform, siteSteps: readonly SiteRequestStep[] = []): RequestHandler {
  const control = createControlApp(p);
  const site = createTenantSiteHandler(p, siteSteps);
  const platformHost = p.config.platformHost;
  return (req, res) => {
    const host = normalizeHost(req.headers.host);
    if (host === platformHost) {
      control(req, res);
      return;
    }
    const tenantId = p.domains.lookup(host);
    if (tenantId === undefined) {
      sendUnknownHost(res);
      return;
    }
    site(tenantId, req, res);
  };
}
