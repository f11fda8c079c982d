// /api/v1/tenants/:id/plugins/<name>/... -> /_admin/<name>/... on the tenant's
// worker, once the control API has checked the caller (plugins scope) and that
// the plugin is enabled. The body is streamed with a size cap; the answer is
// streamed back as the worker gave it (minus hop-by-hop headers).
import { Transform, type TransformCallback } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';
import type { Request, Response } from 'express';
import type { SiteRegistry } from '../static/site-registry.js';
import { WorkerUnavailableError, type WorkerPool } from '../pool/worker-pool.js';
import { adminPluginPrefix } from '../launch/plugin-launch.js';
import { AppError } from '../errors.js';

/** Larger than a worker parses (1 MB of JSON or form) to leave room for CSV imports, and no more. */
export const MAX_ADMIN_BODY_BYTES = 8 * 1024 * 1024;
const ADMIN_TIMEOUT_MS = 60_000;

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);
/**
 * The answer is the tenant's code speaking on the platform host: it may not set
 * the platform's cookies or loosen its security headers, and whatever it sends
 * (even HTML) runs, if ever opened in a browser, in an opaque origin.
 */
const DROPPED_ANSWER_HEADERS = new Set([
  'set-cookie',
  'content-security-policy',
  'content-security-policy-report-only',
  'x-content-type-options',
  'x-frame-options',
  'cross-origin-resource-policy',
  'cross-origin-opener-policy',
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'strict-transport-security',
  'clear-site-data',
  'refresh',
]);
const FORCED_ANSWER_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
  'x-content-type-options': 'nosniff',
  'cross-origin-resource-policy': 'same-origin',
};
/** Request headers a plugin's admin routes may see: never the caller's token or cookies. */
const PASSED_REQUEST_HEADERS = ['content-type', 'content-length', 'accept', 'accept-language', 'if-none-match', 'if-match'];

class SizeCap extends Transform {
  private seen = 0;
  constructor(private readonly max: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.max) done(new AppError('payload_too_large', `A plugin admin request body is at most ${this.max / 1024 / 1024} MB.`));
    else done(null, chunk);
  }
}

export interface AdminRelayDeps {
  readonly workers: Pick<WorkerPool, 'acquire' | 'release'>;
  readonly sites: Pick<SiteRegistry, 'get'>;
}

/** Relays one request; `rest` is the path and query after /plugins/<name>. */
export async function relayToAdmin(d: AdminRelayDeps, tenantId: string, name: string, rest: string, req: Request, res: Response, actor: string): Promise<void> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_ADMIN_BODY_BYTES) throw new AppError('payload_too_large', `A plugin admin request body is at most ${MAX_ADMIN_BODY_BYTES / 1024 / 1024} MB.`);
  const live = d.sites.get(tenantId);
  if (!live) throw new AppError('no_live_release');
  let worker;
  try {
    worker = await d.workers.acquire(tenantId, live);
  } catch (err) {
    if (err instanceof WorkerUnavailableError) throw new AppError(err.status === 502 ? 'worker_failed' : 'worker_unavailable', `The tenant's worker is not available: ${err.message}`);
    throw err;
  }
  try {
    const headers: Record<string, string> = { 'x-forwarded-for': req.socket.remoteAddress ?? '127.0.0.1', 'x-tenantry-actor': actor };
    for (const h of PASSED_REQUEST_HEADERS) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD' && (declared > 0 || req.headers['transfer-encoding'] !== undefined);
    const cap = new SizeCap(MAX_ADMIN_BODY_BYTES);
    let capError: unknown;
    cap.on('error', (e) => (capError = e));
    const answer = await worker.dispatcher
      .request({
        path: `${adminPluginPrefix(name)}${rest.startsWith('/') ? rest : '/' + rest}`,
        method: req.method as 'GET',
        headers,
        body: hasBody ? req.pipe(cap) : undefined,
        headersTimeout: ADMIN_TIMEOUT_MS,
        bodyTimeout: ADMIN_TIMEOUT_MS,
      })
      .catch((err: unknown) => {
        throw capError ?? new AppError('worker_failed', `The plugin's admin route failed: ${(err as Error).message}`);
      });
    res.status(answer.statusCode);
    for (const [k, v] of Object.entries(answer.headers as IncomingHttpHeaders)) {
      const name = k.toLowerCase();
      if (v !== undefined && !HOP_BY_HOP.has(name) && !DROPPED_ANSWER_HEADERS.has(name)) res.setHeader(k, v);
    }
    for (const [k, v] of Object.entries(FORCED_ANSWER_HEADERS)) res.setHeader(k, v);
    await new Promise<void>((resolve) => {
      answer.body.on('error', () => {
        res.destroy();
        resolve();
      });
      res.on('close', resolve);
      answer.body.pipe(res);
    });
  } finally {
    d.workers.release(worker);
  }
}
