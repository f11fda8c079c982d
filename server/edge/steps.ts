// The steps of the edge's pipeline (pipeline.ts), each a few lines that hand
// the work to the subsystem that does it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError } from '../error-response.js';
import type { DomainMap, DomainRoute } from '../tenants/domain-map.js';
import type { SiteRegistry } from '../static/site-registry.js';
import { applySiteRules, serveStatic } from '../static/serve/static-files.js';
import { checkBasicAuth } from '../static/serve/basic-auth.js';
import { isApiPath, pathOf } from '../static/serve/request-path.js';
import type { AcmeChallenges } from '../tls/acme-challenges.js';
import { ACME_CHALLENGE_PATH } from '../tls/acme-challenges.js';
import type { ProofResponder } from '../domains/proof-responder.js';
import { HTTP_PROOF_PATH } from '../domains/proof-values.js';
import type { WorkerProxy } from './proxy/worker-proxy.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import { siteStep, type EdgeContext, type Step } from './pipeline.js';

/** Which enabled plugin, if any, a request path belongs to. */
export type PluginRouting = Pick<WorkerPool, 'pluginFor'>;

const HSTS_VALUE = 'max-age=31536000';
const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

function answerText(res: ServerResponse, body: string): void {
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(body);
}

/** The token after `prefix` in the request path, when the path is exactly prefix + token. */
function tokenAfter(url: string | undefined, prefix: string): string | undefined {
  if (url === undefined || !url.startsWith(prefix)) return undefined;
  const token = pathOf(url).slice(prefix.length);
  return TOKEN.test(token) ? token : undefined;
}

/** A permanent redirect that keeps the method (308) except for GET and HEAD (301). */
function redirect(ctx: EdgeContext, location: string): void {
  const m = ctx.req.method;
  ctx.res.writeHead(m === 'GET' || m === 'HEAD' ? 301 : 308, { Location: location, 'Content-Length': 0, 'Cache-Control': 'no-store' });
  ctx.res.end();
}

/** The port part of the Host header (':8080'), or ''. */
function portOf(hostHeader: string | undefined): string {
  const m = hostHeader ? /:(\d+)$/.exec(hostHeader) : null;
  return m ? `:${m[1]}` : '';
}

/** First: ACME HTTP-01 answers for a certificate being issued (on that name only). */
export function acmeChallenge(challenges: AcmeChallenges): Step {
  return (ctx) => {
    const token = tokenAfter(ctx.req.url, ACME_CHALLENGE_PATH);
    const answer = token === undefined ? undefined : challenges.answer(ctx.host, token);
    if (answer === undefined) return false;
    answerText(ctx.res, answer);
    return true;
  };
}

/** Before the tenant step (a pending name is in no route): the HTTP proof of a domain claim. */
export function domainProof(proofs: ProofResponder): Step {
  return (ctx) => {
    const token = tokenAfter(ctx.req.url, HTTP_PROOF_PATH);
    const answer = token === undefined ? undefined : proofs.answer(ctx.host, token);
    if (answer === undefined) return false;
    answerText(ctx.res, answer);
    return true;
  };
}

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
    const route = domains.route(ctx.host);
    if (route === undefined) {
      sendError(ctx.res, 'unknown_host');
      return true;
    }
    if (route.redirect !== 'none' && route.domain === ctx.host) {
      redirect(ctx, `${ctx.origin.secure ? 'https' : 'http'}://${counterpart(route)}${portOf(ctx.req.headers.host)}${ctx.req.url ?? '/'}`);
      return true;
    }
    const site = sites.get(route.tenantId);
    if (!site) {
      sendError(ctx.res, 'no_live_release', undefined, { 'Retry-After': '30' });
      return true;
    }
    ctx.tenant = { tenantId: route.tenantId, site, route };
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

/** www.<name> for `to-www`, <name> for `to-apex` (www. removed). */
function counterpart(route: DomainRoute): string {
  return route.redirect === 'to-apex' ? route.domain.slice(4) : `www.${route.domain}`;
}

/**
 * The tenant's HTTPS options: plain HTTP visitors sent to HTTPS (when there is
 * an HTTPS to send them to: our listener, or the trusted proxy in front), and
 * Strict-Transport-Security on HTTPS answers.
 * `httpsPort`: the HTTPS listener's public port, undefined when there is none.
 */
export function httpsPolicy(httpsPort: () => number | undefined): Step {
  return (ctx) => {
    const https = ctx.tenant?.route.https;
    if (!https) return false;
    if (ctx.origin.secure) {
      if (https.hsts) ctx.res.setHeader('Strict-Transport-Security', HSTS_VALUE);
      return false;
    }
    if (!https.redirect) return false;
    const port = ctx.origin.viaProxy ? 443 : httpsPort();
    if (port === undefined) return false;
    redirect(ctx, `https://${ctx.host}${port === 443 ? '' : `:${port}`}${ctx.req.url ?? '/'}`);
    return true;
  };
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
  return (ctx) => {
    const t = ctx.tenant;
    if (t === undefined || plugins.pluginFor(t.tenantId, ctx.req.url ?? '/') === undefined) return false;
    proxy.forward(t.tenantId, t.site, ctx.req, ctx.res, ctx.origin);
    return true;
  };
}

/** /api and below, on a site whose live release has api/: the tenant's worker. */
export function apiRoutes(proxy: WorkerProxy): Step {
  return (ctx) => {
    const t = ctx.tenant;
    if (t === undefined || !t.site.hasApi || !isApiPath(pathOf(ctx.req.url ?? '/'))) return false;
    proxy.forward(t.tenantId, t.site, ctx.req, ctx.res, ctx.origin);
    return true;
  };
}

/** Last: the release's files, folder indexes, clean URLs, SPA fallback, 404.html, 404. */
export function staticFiles(sites: SiteRegistry): Step {
  return siteStep(({ site }, req, res) => {
    serveStatic(site, req, res, sites.fileCache);
    return true;
  });
}
