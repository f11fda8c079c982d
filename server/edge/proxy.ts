// Dynamic routes: requests for /api and /api/... on a site whose live release
// has api/ are streamed to the tenant's worker over its unix socket, through a
// keep-alive pool per worker. The edge sets X-Forwarded-* itself (client
// values are dropped), bounds the wait for the answer (504), answers 502 when
// the worker dies mid-request, and writes one access line per request.
import type http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { TLSSocket } from 'node:tls';
import type { SiteIndex } from '../static/index/site-index.js';
import type { Logger } from '../log.js';
import type { TenantLogs } from '../tenants/tenant-logs.js';
import { WorkerUnavailableError, type Worker, type WorkerPool } from '../pool/worker-pool.js';
import type { SiteRequestStep } from './tenant-site-handler.js';
import { decodeRequestPath } from '../static/serve/static-files.js';
import { ERRORS, type ErrorCode } from '../errors.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade']);
// Dropped on the way to the worker: hop-by-hop, the framing (undici frames the
// body itself), "Expect" (the edge already answered any 100-continue) and
// forwarding claims, which only the edge may make.
const NOT_FORWARDED = new Set([...HOP_BY_HOP, 'transfer-encoding', 'expect', 'forwarded', 'x-real-ip']);
// Dropped on the way back: hop-by-hop and the framing (the edge frames its own answer).
const NOT_RETURNED = new Set([...HOP_BY_HOP, 'transfer-encoding']);
// Requests go over the worker's unix socket; the origin only names the pool.
const WORKER_ORIGIN = 'http://worker';

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

/** The same as forwardedHeaders, as the flat name/value list undici takes. */
function forwardedHeaderList(req: IncomingMessage): string[] {
  const headers = req.headers;
  const out: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || NOT_FORWARDED.has(name) || name.startsWith('x-forwarded-') || name.startsWith('x-tenantry-')) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const one of value) out.push(name, one);
  }
  out.push('x-forwarded-for', req.socket.remoteAddress ?? '');
  out.push('x-forwarded-proto', (req.socket as TLSSocket).encrypted ? 'https' : 'http');
  if (headers.host) out.push('x-forwarded-host', headers.host);
  return out;
}

/** The worker's raw response headers, minus hop-by-hop ones, as a flat list for writeHead. */
function responseHeaderList(raw: Buffer[] | string[] | null): string[] {
  const out: string[] = [];
  if (!raw) return out;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    if (NOT_RETURNED.has(name.toLowerCase())) continue;
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  return out;
}

/** Whether the request has a body to stream (a length above zero, or chunked). */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
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
   * it is tried once more on a fresh worker; undici only reads the body once
   * the connection is up, so it is still unread then.
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
    const exchange = new WorkerExchange(tenantId, site, req, res, url, attempt, worker);
    exchange.start();
  }

  /**
   * One request/response exchange with a worker, as an undici dispatch
   * handler: one object per request instead of a handful of closures, and the
   * response is written straight to the client with backpressure.
   */
  class WorkerExchange implements Dispatcher.DispatchHandlers {
    private released = false;
    private connected = false;
    private finished = false;
    private abortUpstream: ((err?: Error) => void) | undefined;
    private resumeUpstream: (() => void) | undefined;
    private timer: NodeJS.Timeout | undefined;

    constructor(
      private readonly tenantId: string,
      private readonly site: SiteIndex,
      private readonly req: IncomingMessage,
      private readonly res: ServerResponse,
      private readonly url: string,
      private readonly attempt: number,
      private readonly worker: Worker,
    ) {}

    start(): void {
      const { req, res } = this;
      this.timer = setTimeout(onTimeout, timeoutMs, this);
      res.once('close', () => this.clientClosed());
      this.worker.dispatcher.dispatch(
        {
          origin: WORKER_ORIGIN,
          method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
          path: this.url,
          headers: forwardedHeaderList(req),
          // Read lazily (only once connected), and never destroyed by undici:
          // a failed exchange must still be able to answer the client.
          body: hasBody(req) ? (req.iterator({ destroyOnReturn: false }) as unknown as Dispatcher.DispatchOptions['body']) : null,
          // The edge's own timer bounds the wait for the headers; while the
          // body streams, a worker silent for a whole timeout is cut off.
          headersTimeout: 0,
          bodyTimeout: timeoutMs,
        },
        this,
      );
    }

    timedOut(): void {
      this.timer = undefined;
      if (this.finished) return;
      deps.siteLogs.append(this.tenantId, `tenantry: ${this.req.method} ${pathOf(this.url)} timed out after ${deps.requestTimeoutSeconds} s`);
      sendJsonError(this.res, 'worker_timeout', `The route did not answer within ${deps.requestTimeoutSeconds} s.`);
      this.abort();
      deps.workers.reportTimeout(this.worker);
    }

    private clientClosed(): void {
      this.stopTimer();
      if (!this.finished) this.abort();
      this.release();
    }

    private abort(): void {
      this.finished = true;
      // Not yet connected: onConnect sees `finished` and aborts then.
      this.abortUpstream?.(new Error('the client went away'));
    }

    private stopTimer(): void {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
    }

    private release(): void {
      if (this.released) return;
      this.released = true;
      deps.workers.release(this.worker);
    }

    onConnect(abort: (err?: Error) => void): void {
      this.connected = true;
      this.abortUpstream = abort;
      if (this.finished) abort(new Error('the client went away'));
    }

    onHeaders(statusCode: number, rawHeaders: Buffer[] | string[] | null, resume: () => void): boolean {
      // Interim (1xx) answers are not relayed; the real one follows.
      if (statusCode < 200) return true;
      this.stopTimer();
      const res = this.res;
      if (res.headersSent || res.destroyed) {
        this.abort();
        return false;
      }
      this.resumeUpstream = resume;
      res.writeHead(statusCode, responseHeaderList(rawHeaders));
      return true;
    }

    onData(chunk: Buffer): boolean {
      const res = this.res;
      if (res.destroyed) return true;
      if (res.write(chunk)) return true;
      res.once('drain', this.resumeUpstream!);
      return false;
    }

    onComplete(): void {
      this.finished = true;
      if (!this.res.destroyed) this.res.end();
    }

    onError(err: Error & { code?: string }): void {
      this.stopTimer();
      this.release();
      if (this.finished) return;
      this.finished = true;
      const { res, worker } = this;
      // Refused, or the pool was closed because another request found the
      // worker gone: either way this request never reached tenant code.
      const neverArrived = !this.connected && (err.code === 'ECONNREFUSED' || err.code === 'ENOENT' || err.code === 'UND_ERR_DESTROYED');
      if (neverArrived) deps.workers.reportUnreachable(worker);
      if (neverArrived && this.attempt === 1 && !res.headersSent && !res.destroyed) {
        void relay(this.tenantId, this.site, this.req, res, this.url, this.attempt + 1);
        return;
      }
      // Before the headers: the worker died or refused; after: cut the client off too.
      sendJsonError(res, 'worker_failed', ERRORS.worker_failed.message);
    }
  }

  function onTimeout(exchange: WorkerExchange): void {
    exchange.timedOut();
  }

  /** The SiteRequestStep for /api paths of sites that have api/. */
  const apiStep: SiteRequestStep = (tenantId, site, req, res) => {
    if (!site.hasApi || !isApiPath(req.url ?? '/')) return false;
    void forward(tenantId, site, req, res);
    return true;
  };

  return { forward, apiStep };
}
