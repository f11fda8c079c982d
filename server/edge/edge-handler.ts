// The edge's request entry: every request on the HTTP listener goes through
// this one list of steps, in order (both listeners, HTTP and HTTPS). A new step is one line here (and a small
// function in steps.ts); see README "Request path".
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DomainMap } from '../tenants/domain-map.js';
import type { SiteRegistry } from '../static/site-registry.js';
import type { TrustedProxies } from '../model/client-origin.js';
import type { AcmeChallenges } from '../tls/acme-challenges.js';
import type { ProofResponder } from '../domains/proof-responder.js';
import type { WorkerProxy } from './proxy/worker-proxy.js';
import { runSteps, type RequestHandler, type Step, type StepKind } from './pipeline.js';
import type { RequestMetrics } from '../metrics/platform-metrics.js';
import { acmeChallenge, apiRoutes, basicAuth, domainProof, httpsPolicy, platformHost, pluginRoutes, siteRules, staticFiles, tenantSite, type PluginRouting } from './steps.js';

export interface EdgeParts {
  readonly platformHost: string;
  /** The platform host's application (control API, git, pages), built by app/. */
  readonly platformApp: (req: IncomingMessage, res: ServerResponse) => void;
  readonly domains: DomainMap;
  readonly sites: SiteRegistry;
  readonly proxy: WorkerProxy;
  readonly plugins: PluginRouting;
  readonly acmeChallenges: AcmeChallenges;
  readonly proofs: ProofResponder;
  /** Peers whose X-Forwarded-For / -Proto are believed. */
  readonly trustedProxies: TrustedProxies;
  /** The HTTPS listener's public port; undefined when there is none. */
  readonly httpsPort: () => number | undefined;
  /** Per-tenant request counts; none: nothing counted. */
  readonly metrics?: RequestMetrics;
}

export function createEdgeHandler(parts: EdgeParts): RequestHandler {
  const plugins = pluginRoutes(parts.plugins, parts.proxy);
  const api = apiRoutes(parts.proxy);
  const steps: Step[] = [
    acmeChallenge(parts.acmeChallenges), // /.well-known/acme-challenge/<token> of a certificate being issued
    platformHost(parts.platformHost, parts.platformApp), // the platform's own host name
    domainProof(parts.proofs), // /.well-known/tenantry/<token>: the HTTP proof of a pending domain
    tenantSite(parts.domains, parts.sites), // host -> tenant -> live release (404 / 503 otherwise); www redirects
    httpsPolicy(parts.httpsPort), // the tenant's HTTP -> HTTPS redirect and HSTS
    basicAuth(), // _headers Basic-Auth: 401 without the credentials the path asks for
    plugins, // /_<plugin>/...: the tenant's worker, where its plugins run
    siteRules(parts.sites), // _redirects: redirects, status rewrites, 200 rewrites (before api/)
    api, // /api/...: the tenant's worker
    staticFiles(parts.sites), // files, fallbacks, 404
  ];
  // The kind each answering step counts as (tenant requests only); the others are static answers (files, rules, 401, 404).
  const kinds = steps.map((step): StepKind | undefined => (step === plugins ? 'plugin' : step === api ? 'dynamic' : undefined));
  return runSteps(steps, parts.trustedProxies, parts.metrics, kinds);
}
