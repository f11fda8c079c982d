// The edge's request pipeline: an ordered list of steps, each the same small
// function. A step answers the request and returns true, or returns false to
// pass it on (possibly after rewriting req.url, as a 200 rule does). The list
// itself is built in one place, edge-handler.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { normalizeHost } from '../model/domain-name.js';
import type { ClientOrigin, TrustedProxies } from '../model/client-origin.js';
import type { SiteIndex } from '../static/index/site-index.js';
import type { DomainRoute } from '../tenants/domain-map.js';
import type { RequestKind, RequestMetrics } from '../metrics/platform-metrics.js';

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

/** Which kind of answer a step gives, for the request metrics; undefined: not a tenant's answer by itself. */
export type StepKind = RequestKind;

/**
 * Runs the steps in order until one answers; the last step must always answer.
 * With `metrics`, a tenant's answered request is counted once its response is
 * complete (at once when the step ended it, else on `finish`): status class,
 * kind (`kinds[i]` of the answering step, default static), bytes, latency.
 */
export function runSteps(steps: readonly Step[], proxies: TrustedProxies, metrics?: RequestMetrics, kinds: readonly (StepKind | undefined)[] = []): RequestHandler {
  const n = steps.length;
  return (req, res) => {
    const ctx: EdgeContext = { req, res, host: normalizeHost(req.headers.host), origin: proxies.originOf(req), tenant: undefined };
    const started = metrics === undefined ? 0 : performance.now();
    // Read before any step writes (a static answer is often written synchronously).
    const written = metrics === undefined ? 0 : req.socket.bytesWritten;
    for (let i = 0; i < n; i++) {
      if (!steps[i]!(ctx)) continue;
      if (metrics !== undefined && ctx.tenant !== undefined) count(metrics, ctx.tenant.tenantId, kinds[i] ?? 'static', req, res, started, written);
      return;
    }
  };
}

function count(metrics: RequestMetrics, tenantId: string, kind: StepKind, req: IncomingMessage, res: ServerResponse, started: number, before: number): void {
  // The socket's byte count includes what is still buffered: the delta is this response (one response at a time per socket).
  const socket = req.socket;
  // Most static answers are complete when their step returns (in-memory files): count them now, with no
  // listener (a 'finish' listener per request measurably costs the hot path). The rest when they finish.
  if (res.writableEnded) {
    metrics.request(tenantId, kind, res.statusCode, socket.bytesWritten - before, (performance.now() - started) / 1000);
    return;
  }
  res.once('finish', () => metrics.request(tenantId, kind, res.statusCode, socket.bytesWritten - before, (performance.now() - started) / 1000));
}
