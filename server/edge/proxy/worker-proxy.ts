// Dynamic routes: requests for /api and /api/... (and plugin routes) of a
// tenant are streamed to its worker over its unix socket, through a keep-alive
// pool per worker (worker-exchange.ts does one exchange). A worker that cannot
// be had answers 502/503 with Retry-After; every request gets one access line
// in the tenant's site log.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../log.js';
import type { ClientOrigin } from '../../model/client-origin.js';
import { sendError } from '../../error-response.js';
import type { SiteIndex } from '../../static/index/site-index.js';
import type { TenantLogs } from '../../tenants/tenant-logs.js';
import { WorkerUnavailableError, type Worker, type WorkerPool } from '../../pool/worker-pool.js';
import { decodeRequestPath, pathOf } from '../../static/serve/request-path.js';
import { WorkerExchange, type ExchangeSettings } from './worker-exchange.js';

export interface WorkerProxyDeps {
  readonly workers: WorkerPool;
  readonly siteLogs: TenantLogs;
  readonly log: Logger;
  readonly requestTimeoutSeconds: number;
}

export interface WorkerProxy {
  /** Forwards one request to the tenant's worker, starting it if needed. */
  forward(tenantId: string, site: SiteIndex, req: IncomingMessage, res: ServerResponse, origin: ClientOrigin): void;
}

export function createWorkerProxy(deps: WorkerProxyDeps): WorkerProxy {
  const settings: ExchangeSettings = {
    workers: deps.workers,
    siteLogs: deps.siteLogs,
    timeoutSeconds: deps.requestTimeoutSeconds,
    retry: (x) => void relay(x.tenantId, x.site, x.req, x.res, x.origin, x.url, x.attempt + 1),
  };

  function forward(tenantId: string, site: SiteIndex, req: IncomingMessage, res: ServerResponse, origin: ClientOrigin): void {
    const started = Date.now();
    const url = req.url ?? '/';
    res.once('close', () => {
      deps.siteLogs.append(
        tenantId,
        `access ${req.method} ${pathOf(url)} ${res.headersSent ? res.statusCode : 499} ${Date.now() - started}ms ${origin.address || '-'}`,
      );
    });
    if (decodeRequestPath(pathOf(url)) === undefined) {
      sendError(res, 'invalid_request', 'The request path is not valid.');
      return;
    }
    void relay(tenantId, site, req, res, origin, url, 1);
  }

  /**
   * One attempt at the worker. A connection the worker's socket refused (the
   * worker died and the pool has not heard yet) never reached tenant code, so
   * it is tried once more on a fresh worker; the body is only read once the
   * connection is up, so it is still unread then.
   */
  async function relay(tenantId: string, site: SiteIndex, req: IncomingMessage, res: ServerResponse, origin: ClientOrigin, url: string, attempt: number): Promise<void> {
    let worker: Worker;
    try {
      worker = await deps.workers.acquire(tenantId, site);
    } catch (err) {
      if (err instanceof WorkerUnavailableError) {
        deps.siteLogs.append(tenantId, `tenantry: ${req.method} ${pathOf(url)} not served: ${err.message}`);
        const headers: Record<string, string> = err.retryAfterSeconds ? { 'Retry-After': String(err.retryAfterSeconds) } : {};
        sendError(res, err.status === 502 ? 'worker_failed' : 'worker_unavailable', "This site's dynamic routes are not available right now.", headers);
      } else {
        deps.log.error('proxy failed', { tenant: tenantId, err });
        sendError(res, 'internal_error');
      }
      return;
    }
    if (res.destroyed) {
      deps.workers.release(worker);
      return;
    }
    const exchange = new WorkerExchange(settings, tenantId, site, req, res, origin, url, attempt, worker);
    exchange.start();
  }

  return { forward };
}
