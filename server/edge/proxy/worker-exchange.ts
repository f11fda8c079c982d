// One request/response exchange between a client and a tenant's worker over
// one of the edge's keep-alive connections to the worker's socket
// (upstream-connection.ts): the request head built once and written in one go,
// the answer's head parsed and its body relayed as it comes, with
// backpressure; the wait for the head bounded (504), a worker dying
// mid-request answered (502).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERRORS } from '../../errors.js';
import { sendError } from '../../error-response.js';
import type { Worker, WorkerPool } from '../../pool/worker-pool.js';
import type { TenantLogs } from '../../tenants/tenant-logs.js';
import { pathOf } from '../../static/serve/request-path.js';
import { normalizeHost } from '../../model/domain-name.js';
import type { SiteIndex } from '../../static/index/site-index.js';
import type { ClientOrigin } from '../../model/client-origin.js';
import { forwardedHeaderList, hasBody, responseHeaderList } from './forward-headers.js';
import { AS_IS, CHUNKED, type UpstreamConnection, type UpstreamSink } from '../../pool/upstream/upstream-connection.js';
import type { ResponseHead } from '../../pool/upstream/response-head.js';

/** Codes of failures that happen before the request left the edge. */
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOENT', 'UPSTREAM_DESTROYED']);

/** What an exchange needs from the proxy that made it. */
export interface ExchangeSettings {
  readonly workers: WorkerPool;
  readonly siteLogs: TenantLogs;
  readonly timeoutSeconds: number;
  /** Tries the request again on a fresh worker (used once, when it never reached tenant code). */
  readonly retry: (exchange: WorkerExchange) => void;
}

export class WorkerExchange implements UpstreamSink {
  private released = false;
  /** The request was handed to a connection (it may have reached the worker). */
  private sent = false;
  private finished = false;
  private conn: UpstreamConnection | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** A 'drain' listener is waiting to resume the worker's connection (one at a time). */
  private waitingDrain = false;
  private readonly resumeUpstream = (): void => {
    this.waitingDrain = false;
    this.conn?.resume();
  };

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
    this.timer = setTimeout(onTimeout, this.settings.timeoutSeconds * 1000, this);
    this.res.once('close', () => this.clientClosed());
    this.worker.upstream.acquire((err, conn) => {
      if (err) return this.onError(err, false);
      if (this.finished) return this.worker.upstream.release(conn!);
      this.conn = conn!;
      this.send(conn!);
    });
  }

  private send(conn: UpstreamConnection): void {
    const req = this.req;
    const list = forwardedHeaderList(req, this.origin);
    let head = `${req.method ?? 'GET'} ${this.url} HTTP/1.1\r\n`;
    for (let i = 0; i < list.length; i += 2) head += `${list[i]}: ${list[i + 1]}\r\n`;
    // The client's own framing was decoded by the edge: a length goes as it is, chunks are chunked again.
    const body = hasBody(req);
    const chunked = body && req.headers['content-length'] === undefined;
    if (chunked) head += 'transfer-encoding: chunked\r\n';
    head += '\r\n';
    this.sent = true;
    // Read only now, once connected: a request that never left can still be tried again.
    conn.send(head, body ? req : null, body ? (chunked ? CHUNKED : AS_IS) : null, req.method === 'HEAD', this.settings.timeoutSeconds * 1000, this);
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
    // Not yet connected: the acquire callback sees `finished` and hands the connection back.
    this.conn?.abort();
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

  onHead(head: ResponseHead): void {
    this.stopTimer();
    const res = this.res;
    if (res.headersSent || res.destroyed) {
      this.abort();
      return;
    }
    res.writeHead(head.status, responseHeaderList(head.headers, normalizeHost(this.req.headers.host)));
  }

  onBody(chunk: Buffer): boolean {
    const res = this.res;
    if (res.destroyed) return true;
    if (res.write(chunk)) return true;
    if (!this.waitingDrain) {
      this.waitingDrain = true;
      res.once('drain', this.resumeUpstream);
    }
    return false;
  }

  onEnd(): void {
    this.finished = true;
    this.conn = undefined;
    if (!this.res.destroyed) this.res.end();
  }

  onError(err: Error & { code?: string }, reachedWorker: boolean): void {
    this.stopTimer();
    this.release();
    this.conn = undefined;
    if (this.finished) return;
    this.finished = true;
    const { res, worker } = this;
    // Refused, or the connections were closed because another request found
    // the worker gone: either way this request never reached tenant code.
    const neverArrived = !reachedWorker && !this.sent && NEVER_SENT.has(err.code ?? '');
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
