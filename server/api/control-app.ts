// The platform host's application: /healthz, the control API (/api/v1), git
// smart HTTP (/git) and the platform's own pages. The edge hands it every
// request whose Host is the platform host. Each router gets the few services
// it uses, and is mounted under its own prefix.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router, type Express, type Request } from 'express';
import helmet from 'helmet';
import type { Logger } from '../log.js';
import type { Store } from '../db/store.js';
import type { TokenCheck } from '../auth/principal.js';
import type { IsolationReport } from '../sandbox/detect.js';
import type { TenantService } from '../tenants/tenant-service.js';
import type { TenantLogs } from '../tenants/tenant-logs.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import type { DeployService } from '../deploy/deploy-service.js';
import type { ManifestDeploys } from '../deploy/manifest-deploys.js';
import type { GitService } from '../git/git-service.js';
import { gitHttpHandler } from '../git/git-http.js';
import { authenticate, requireAdmin } from './auth-middleware.js';
import { auditTrail } from './audit-trail.js';
import { auditRouter } from './audit-routes.js';
import type { PlatformMetrics } from '../metrics/platform-metrics.js';
import { errorMiddleware, notFoundMiddleware } from './error-middleware.js';
import { tenantsRouter } from './tenants-routes.js';
import { tokensRouter } from './tokens-routes.js';
import { deploysRouter } from './deploys-routes.js';
import { envRouter } from './env-routes.js';
import { logsRouter } from './logs-routes.js';
import { statsRouter } from './stats-routes.js';
import { isolationRouter } from './isolation-routes.js';
import { domainsRouter } from './domains-routes.js';
import { tlsRouter } from './tls-routes.js';
import { catalogueRouter, tenantPluginsRouter } from './plugins-routes.js';
import type { PluginCatalogue } from '../plugins/catalogue.js';
import type { PluginService } from '../plugins/plugin-service.js';
import type { SiteRegistry } from '../static/site-registry.js';
import type { TrustedProxies } from '../model/client-origin.js';
import type { DomainService } from '../domains/domain-service.js';
import type { DomainMap } from '../tenants/domain-map.js';
import type { CertificateManager } from '../tls/certificate-manager.js';
import type { DashboardSessions } from '../dashboard/sessions.js';
import { sessionOf, sessionRouter } from '../dashboard/session-routes.js';
import { jsonBody } from './json-body.js';

const PLATFORM_PUBLIC_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../public');

export interface ControlAppDeps {
  readonly log: Logger;
  readonly store: Store;
  /** The master secret (tokens are stored as keyed hashes). */
  readonly secret: string;
  /** Bearer and git tokens, behind the wrong-token throttle. */
  readonly checkToken: TokenCheck;
  readonly isolation: IsolationReport;
  readonly tenants: TenantService;
  readonly siteLogs: TenantLogs;
  readonly workers: WorkerPool;
  readonly deploys: DeployService;
  readonly manifestDeploys: ManifestDeploys;
  readonly git: GitService;
  /** Peers whose X-Forwarded-For is believed (the throttle's client address). */
  readonly trustedProxies: TrustedProxies;
  readonly platformHost: string;
  readonly domains: DomainService;
  readonly domainMap: DomainMap;
  readonly certificates: CertificateManager;
  readonly sites: SiteRegistry;
  /** Installed plugins (manifests) and tenants' plugin settings. */
  readonly pluginCatalogue: PluginCatalogue;
  readonly plugins: PluginService;
  /** The dashboard's server-side sessions (cookie + CSRF token in place of a bearer token). */
  readonly sessions: DashboardSessions;
  /** The registry GET /metrics answers from, and the per-minute view of it (GET .../stats); none: neither route. */
  readonly metrics?: Pick<PlatformMetrics, 'text' | 'contentType' | 'minutes'>;
}

/**
 * The dashboard's pages: scripts only from the platform host's own files (no
 * inline script, no eval), no framing, requests only back to the platform host.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export function createControlApp(d: ControlAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  // DENY, as the CSP's frame-ancestors 'none' says (helmet's default SAMEORIGIN would disagree with it).
  app.use(helmet({ xFrameOptions: { action: 'deny' } }));

  app.get('/healthz', (_req, res) => {
    // Exactly the contract's answer: what is isolated is for the admin (GET /api/v1/isolation).
    res.json({ ok: true });
  });

  // Prometheus scrapes with the admin token (Authorization: Bearer ...).
  const metrics = d.metrics;
  if (metrics) {
    app.get('/metrics', authenticate(d.checkToken, d.trustedProxies), requireAdmin, (_req, res, next) => {
      metrics.text().then((text) => {
        res.setHeader('Content-Type', metrics.contentType);
        res.setHeader('Cache-Control', 'no-store');
        res.end(text);
      }, next);
    });
  }

  // git smart HTTP: Basic auth of its own, and the raw body (a pack stream) untouched.
  app.use('/git', gitHttpHandler({ git: d.git, store: d.store, checkToken: d.checkToken, trustedProxies: d.trustedProxies, log: d.log }));

  // Every /api/v1 route needs a token (bodies are read per route, after its scope
  // check), except /api/v1/tls/ask, which Caddy asks without one.
  const api = Router();
  api.use('/tls', tlsRouter({ domainMap: d.domainMap, platformHost: d.platformHost }));
  api.use('/session', jsonBody({ limit: '2kb', maxDepth: 2 }), sessionRouter({ sessions: d.sessions, checkToken: d.checkToken, trustedProxies: d.trustedProxies }));
  api.use(auditTrail(d.store, d.trustedProxies));
  api.use(authenticate(d.checkToken, d.trustedProxies, d.sessions));
  api.use('/audit', auditRouter({ store: d.store }));
  api.use('/isolation', isolationRouter(d.isolation));
  api.use('/plugins', catalogueRouter(d.pluginCatalogue));
  api.use('/tenants', tenantsRouter({ tenants: d.tenants, store: d.store, certificates: d.certificates }));
  const tenant = Router({ mergeParams: true });
  tenant.use('/tokens', tokensRouter({ tenants: d.tenants, store: d.store, secret: d.secret }));
  tenant.use('/deploys', deploysRouter({ tenants: d.tenants, deploys: d.deploys, manifestDeploys: d.manifestDeploys }));
  tenant.use('/env', envRouter({ tenants: d.tenants, store: d.store, workers: d.workers }));
  const principalNow = (req: Request) => (req.dashboardSession ? sessionOf(req, d.sessions, d.trustedProxies).session?.principal : req.principal);
  tenant.use('/logs', logsRouter({ tenants: d.tenants, siteLogs: d.siteLogs, principalNow }));
  tenant.use('/domains', domainsRouter({ tenants: d.tenants, domains: d.domains, certificates: d.certificates }));
  tenant.use('/plugins', tenantPluginsRouter({ tenants: d.tenants, store: d.store, plugins: d.plugins, workers: d.workers, sites: d.sites }));
  if (metrics) tenant.use('/stats', statsRouter({ tenants: d.tenants, metrics }));
  api.use('/tenants/:id', tenant);
  app.use('/api/v1', api);

  // The platform's own pages (public/): the dashboard. Plain files, a strict CSP.
  app.use(
    express.static(PLATFORM_PUBLIC_DIR, {
      index: 'index.html',
      dotfiles: 'ignore',
      extensions: ['html'],
      setHeaders: (res) => {
        res.setHeader('Content-Security-Policy', DASHBOARD_CSP);
        res.setHeader('Cache-Control', 'no-cache');
      },
    }),
  );
  app.use(notFoundMiddleware);
  app.use(errorMiddleware(d.log));
  return app;
}
