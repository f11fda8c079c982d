// Which headers cross the hop between the edge and a tenant's worker. The edge
// alone says who the client is (X-Forwarded-*); a client's own claims are
// dropped, as are hop-by-hop headers and the framing, which each side sets itself.
import type { IncomingMessage } from 'node:http';
import type { ClientOrigin } from '../../model/client-origin.js';
import { scopeSetCookie } from './cookie-scope.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade']);
// Dropped on the way to the worker: hop-by-hop, the framing (the exchange frames the
// body itself), "Expect" (the edge already answered any 100-continue) and
// forwarding claims, which only the edge may make.
const NOT_FORWARDED = new Set([...HOP_BY_HOP, 'transfer-encoding', 'expect', 'forwarded', 'x-real-ip']);
// Dropped on the way back: hop-by-hop and the framing (the edge frames its own answer).
const NOT_RETURNED = new Set([...HOP_BY_HOP, 'transfer-encoding']);

/**
 * The client's headers for the worker, as a flat name/value list, with the edge's X-Forwarded-* (from the origin: the socket, or what a
 * trusted proxy said).
 */
export function forwardedHeaderList(req: IncomingMessage, origin: ClientOrigin): string[] {
  const headers = req.headers;
  const out: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || NOT_FORWARDED.has(name) || name.startsWith('x-forwarded-') || name.startsWith('x-tenantry-')) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const one of value) out.push(name, one);
  }
  out.push('x-forwarded-for', origin.address);
  out.push('x-forwarded-proto', origin.secure ? 'https' : 'http');
  if (headers.host) out.push('x-forwarded-host', headers.host);
  return out;
}

/**
 * The worker's raw response headers as a flat list for writeHead: minus
 * hop-by-hop ones, and cookies kept to `host` (the request's own host name).
 */
export function responseHeaderList(raw: Buffer[] | string[] | null, host: string): string[] {
  const out: string[] = [];
  if (!raw) return out;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const lower = name.toLowerCase();
    if (NOT_RETURNED.has(lower)) continue;
    const value = raw[i + 1]!.toString('latin1');
    out.push(name, lower === 'set-cookie' ? scopeSetCookie(value, host) : value);
  }
  return out;
}

/** Whether the request has a body to stream (a length above zero, or chunked). */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}
