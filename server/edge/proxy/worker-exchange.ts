// One request/response exchange between a client and a tenant's worker, as an
// undici dispatch handler: one object per request instead of a handful of
// closures, the answer written straight to the client with backpressure, the
// wait for headers bounded (504), a worker dying mid-request answered (502).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { ERRORS } from '../../errors.js';
import { sendError } from '../../error-response.js';
import type { Worker, WorkerPool } from '../../pool/worker-pool.js';
import type { TenantLogs } from '../../tenants/tenant-logs.js';
import { pathOf } from '../../static/serve/request-path.js';
import { normalizeHost } from '../../model/domain-name.js';
import type { SiteIndex } from '../../static/index/site-index.js';
import type { ClientOrigin } from '../../model/client-origin.js';
import { forwardedHeaderList, hasBody, responseHeaderList } from './forward-headers.js';

// Requests go over the worker's unix socket; the origin only names the pool.
const WORKER_ORIGIN = 'http://worker';

/** What an exchange needs from the proxy that made it. */
export interface ExchangeSettings {
  readonly workers: WorkerPool;
  readonly siteLogs: TenantLogs;
  readonly timeoutSeconds: number;
  /** Tries the request again on a fresh worker (used once, when it never reached tenant code). */
  readonly retry: (exchange: WorkerExchange) => void;
}

export class WorkerExchange implements Dispatcher.DispatchHandlers {
  private released = false;
  private connected = false;
  private finished = false;
  private abortUpstream: ((err?: Error) => void) | undefined;
  private resumeUpstream: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly settings: ExchangeSettings,
    readonly tenantId: string,
    /** The live release the request was routed on (a retry goes to the same one). */
    readonly site: SiteIndex,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    /** Who the client is (X-Forwarded-* for the worker). */
    readonly origin: ClientOrigin,
    readonly url: string,
    readonly attempt: number,
    private readonly worker: Worker,
  ) {}

  start(): void {
    const { req, res } = this;
    const timeoutMs = this.settings.timeoutSeconds * 1000;
    this.timer = setTimeout(onTimeout, timeoutMs, this);
    res.once('close', () => this.clientClosed());
    this.worker.dispatcher.dispatch(
      {
        origin: WORKER_ORIGIN,
        method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
        path: this.url,
        headers: forwardedHeaderList(req, this.origin),
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
    const seconds = this.settings.timeoutSeconds;
    this.settings.siteLogs.append(this.tenantId, `tenantry: ${this.req.method} ${pathOf(this.url)} timed out after ${seconds} s`);
    sendError(this.res, 'worker_timeout', `The route did not answer within ${seconds} s.`);
    this.abort();
    this.settings.workers.reportTimeout(this.worker);
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
    this.settings.workers.release(this.worker);
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
    res.writeHead(statusCode, responseHeaderList(rawHeaders, normalizeHost(this.req.headers.host)));
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
    if (neverArrived) this.settings.workers.reportUnreachable(worker);
    if (neverArrived && this.attempt === 1 && !res.headersSent && !res.destroyed) {
      this.settings.retry(this);
      return;
    }
    // Before the headers: the worker died or refused; after: cut the client off too.
    sendError(res, 'worker_failed', ERRORS.worker_failed.message);
  }
}

function onTimeout(exchange: WorkerExchange): void {
  exchange.timedOut();
}
