// The request pipeline of a sibling edge: the same steps as the first edge
// (edge-handler.ts) for what depends only on the live release and the host
// map, which it holds in memory: static files, rules, redirects, Basic-Auth,
// unknown hosts. Everything else goes to the first edge, with the URL the
// client sent, to run through the whole pipeline there (forward-to-first.ts):
// the platform host, dynamic routes and plugins (the first edge owns the
// tenants' workers, one per tenant), ACME and domain proofs.
import type { IncomingMessage } from 'node:http';
import type { DomainMap } from '../../tenants/domain-map.js';
import type { SiteRegistry } from '../../static/site-registry.js';
import type { TrustedProxies } from '../../model/client-origin.js';
import type { RequestMetrics } from '../../metrics/platform-metrics.js';
import { isApiPath, pathOf } from '../../static/serve/request-path.js';
import { ACME_CHALLENGE_PATH } from '../../tls/acme-challenges.js';
import { HTTP_PROOF_PATH } from '../../domains/proof-values.js';
import { runSteps, type RequestHandler, type Step, type StepKind } from '../pipeline.js';
import { basicAuth, httpsPolicy, platformHost, siteRules, staticFiles, tenantSite } from '../steps.js';
import type { Forward } from './forward-to-first.js';

export interface SiblingEdgeParts {
  readonly platformHost: string;
  readonly domains: DomainMap;
  readonly sites: SiteRegistry;
  readonly trustedProxies: TrustedProxies;
  readonly httpsPort: () => number | undefined;
  /** Whether a plugin of this name is installed (its routes, /_<name>/, may be enabled: the first edge decides). */
  readonly isPluginName: (name: string) => boolean;
  readonly forward: Forward;
  /** Counts what this edge answers itself; forwarded requests are counted by the first edge. */
  readonly metrics: RequestMetrics;
  /** Set (debug): each answer says which edge accepted it, in X-Tenantry-Edge. */
  readonly edgeHeader?: string;
}

const ORIGINAL_URL = Symbol('the URL the client sent');
type Tagged = IncomingMessage & { [ORIGINAL_URL]?: string };

/** The first path segment after "/_", or undefined. */
function underscoreSegment(url: string): string | undefined {
  if (url.charCodeAt(1) !== 0x5f) return undefined;
  const end = url.slice(2).search(/[/?]/);
  return end === -1 ? url.slice(2) : url.slice(2, 2 + end);
}

export function createSiblingEdgeHandler(parts: SiblingEdgeParts): RequestHandler {
  const forwardStep =
    (when: (req: IncomingMessage, ctx: Parameters<Step>[0]) => boolean): Step =>
    (ctx) => {
      if (!when(ctx.req, ctx)) return false;
      parts.forward(ctx.req, ctx.res, (ctx.req as Tagged)[ORIGINAL_URL] ?? ctx.req.url ?? '/');
      return true;
    };
  const wellKnown = forwardStep((req) => {
    const url = req.url ?? '/';
    return url.startsWith(ACME_CHALLENGE_PATH) || url.startsWith(HTTP_PROOF_PATH);
  });
  const plugins = forwardStep((req, ctx) => {
    const name = ctx.tenant === undefined ? undefined : underscoreSegment(req.url ?? '/');
    return name !== undefined && parts.isPluginName(name);
  });
  const api = forwardStep((req, ctx) => ctx.tenant !== undefined && ctx.tenant.site.hasApi && isApiPath(pathOf(req.url ?? '/')));
  const steps: Step[] = [
    wellKnown, // ACME answers and domain proofs live in the first edge
    platformHost(parts.platformHost, (req, res) => parts.forward(req, res, (req as Tagged)[ORIGINAL_URL] ?? req.url ?? '/')),
    tenantSite(parts.domains, parts.sites),
    httpsPolicy(parts.httpsPort),
    basicAuth(),
    plugins,
    siteRules(parts.sites),
    api,
    staticFiles(parts.sites),
  ];
  const kinds = steps.map((step): StepKind | undefined => (step === plugins ? 'plugin' : step === api ? 'dynamic' : undefined));
  const own: RequestMetrics = {
    request: (tenantId, kind, status, bytes, seconds) => {
      if (kind === 'static') parts.metrics.request(tenantId, kind, status, bytes, seconds);
    },
  };
  const run = runSteps(steps, parts.trustedProxies, own, kinds);
  const edgeHeader = parts.edgeHeader;
  return (req, res) => {
    (req as Tagged)[ORIGINAL_URL] = req.url;
    if (edgeHeader !== undefined) res.setHeader('X-Tenantry-Edge', edgeHeader);
    run(req, res);
  };
}
