// Dynamic routes: requests for /api and /api/... on a site whose live release
// has api/ are streamed to the tenant's worker over its unix socket, through a
// keep-alive pool per worker. The edge sets X-Forwarded-* itself (client
// values are dropped), bounds the wait for the answer (504), answers 502 when
// the worker dies mid-request, and writes one access line per request.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { SiteIndex } from '../site/site-index.js';
import type { Logger } from '../log.js';
import type { TenantLogs } from '../workers/tenant-logs.js';
import { WorkerUnavailableError, type Worker, type WorkerPool } from '../workers/worker-pool.js';
import type { SiteRequestStep } from './tenant-site-handler.js';
import { decodeRequestPath } from './static-files.js';
import { ERRORS, type ErrorCode } from '../errors.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade']);

export interface WorkerProxyDeps {
  readonly workers: WorkerPool;
  readonly siteLogs: TenantLogs;
  readonly log: Logger;
  readonly requestTimeoutSeconds: number;
}

/** The path part of a request target, undecoded. */
function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q >= 0 ? url.slice(0, q) : url;
}

export function isApiPath(url: string): boolean {
  const p = pathOf(url);
  return p === '/api' || p.startsWith('/api/');
}

/** Headers for the worker: the client's, minus hop-by-hop and forwarding claims, plus ours. */
export function forwardedHeaders(req: IncomingMessage): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    // The edge already answered any "Expect: 100-continue" itself.
    if (value === undefined || HOP_BY_HOP.has(name) || name === 'expect') continue;
    if (name.startsWith('x-forwarded-') || name.startsWith('x-tenantry-') || name === 'forwarded' || name === 'x-real-ip') continue;
    out[name] = value;
  }
  out['x-forwarded-for'] = req.socket.remoteAddress ?? '';
  out['x-forwarded-proto'] = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  if (req.headers.host) out['x-forwarded-host'] = req.headers.host;
  return out;
}

function responseHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || name === 'transfer-encoding') continue;
    out[name] = value;
  }
  return out;
}

function sendJsonError(res: ServerResponse, code: ErrorCode, message: string, headers: Record<string, string> = {}): void {
  if (res.writableEnded) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code, message } }) + '\n';
  res.writeHead(ERRORS[code].status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(body);
}

export function createWorkerProxy(deps: WorkerProxyDeps) {
  const timeoutMs = deps.requestTimeoutSeconds * 1000;

  /** Forwards one request to the tenant's worker (also usable for plugin routes). */
  async function forward(tenantId: string, site: SiteIndex, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const url = req.url ?? '/';
    res.once('close', () => {
      deps.siteLogs.append(
        tenantId,
        `access ${req.method} ${pathOf(url)} ${res.headersSent ? res.statusCode : 499} ${Date.now() - started}ms ${req.socket.remoteAddress ?? '-'}`,
      );
    });
    if (decodeRequestPath(pathOf(url)) === undefined) {
      sendJsonError(res, 'invalid_request', 'The request path is not valid.');
      return;
    }
    await relay(tenantId, site, req, res, url, 1);
  }

  /**
   * One attempt at the worker. A connection the worker's socket refused (the
   * worker died and the pool has not heard yet) never reached tenant code, so
   * it is tried once more on a fresh worker; the body is only sent once the
   * connection is up, so it is still unread then.
   */
  async function relay(tenantId: string, site: SiteIndex, req: IncomingMessage, res: ServerResponse, url: string, attempt: number): Promise<void> {
    let worker: Worker;
    try {
      worker = await deps.workers.acquire(tenantId, site);
    } catch (err) {
      if (err instanceof WorkerUnavailableError) {
        deps.siteLogs.append(tenantId, `tenantry: ${req.method} ${pathOf(url)} not served: ${err.message}`);
        const headers: Record<string, string> = err.retryAfterSeconds ? { 'Retry-After': String(err.retryAfterSeconds) } : {};
        sendJsonError(res, err.status === 502 ? 'worker_failed' : 'worker_unavailable', "This site's dynamic routes are not available right now.", headers);
      } else {
        deps.log.error('proxy failed', { tenant: tenantId, err });
        sendJsonError(res, 'internal_error', ERRORS.internal_error.message);
      }
      return;
    }
    if (res.destroyed) {
      deps.workers.release(worker);
      return;
    }
    let released = false;
    const done = () => {
      if (released) return;
      released = true;
      deps.workers.release(worker);
    };
    let answered = false;
    let bodySent = false;
    const upstream = http.request({
      socketPath: worker.socketPath,
      agent: worker.agent,
      method: req.method,
      path: url,
      headers: forwardedHeaders(req),
    });
    const sendBody = () => {
      if (bodySent) return;
      bodySent = true;
      req.pipe(upstream);
    };
    upstream.on('socket', (socket) => {
      if (socket.connecting) socket.once('connect', sendBody);
      else sendBody();
    });
    const timer = setTimeout(() => {
      deps.siteLogs.append(tenantId, `tenantry: ${req.method} ${pathOf(url)} timed out after ${deps.requestTimeoutSeconds} s`);
      sendJsonError(res, 'worker_timeout', `The route did not answer within ${deps.requestTimeoutSeconds} s.`);
      upstream.destroy();
      deps.workers.reportTimeout(worker);
    }, timeoutMs);

    upstream.on('response', (ures) => {
      clearTimeout(timer);
      if (res.headersSent) {
        ures.resume();
        return;
      }
      res.writeHead(ures.statusCode ?? 502, responseHeaders(ures.headers));
      // While streaming, a worker that goes silent for a whole timeout is cut off.
      upstream.setTimeout(timeoutMs, () => upstream.destroy());
      ures.on('end', () => (answered = true));
      ures.on('error', () => res.destroy());
      ures.on('aborted', () => res.destroy());
      ures.pipe(res);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      done();
      const neverArrived = !bodySent && (err.code === 'ECONNREFUSED' || err.code === 'ENOENT');
      if (neverArrived) deps.workers.reportUnreachable(worker);
      if (neverArrived && attempt === 1 && !res.headersSent && !res.destroyed) {
        void relay(tenantId, site, req, res, url, attempt + 1);
        return;
      }
      // Before the headers: the worker died or refused; after: cut the client off too.
      sendJsonError(res, 'worker_failed', ERRORS.worker_failed.message);
    });
    res.once('close', () => {
      clearTimeout(timer);
      if (!answered) upstream.destroy();
      done();
    });
  }

  /** The SiteRequestStep for /api paths of sites that have api/. */
  const apiStep: SiteRequestStep = (tenantId, site, req, res) => {
    if (!site.hasApi || !isApiPath(req.url ?? '/')) return false;
    void forward(tenantId, site, req, res);
    return true;
  };

  return { forward, apiStep };
}
