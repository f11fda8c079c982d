// What a change (any method but GET/HEAD/OPTIONS) made with the session cookie
// must also carry: the session's CSRF token in the X-CSRF-Token header
// (compared in constant time) and an Origin header naming the platform host
// itself. A bearer token needs neither: a browser never sends it on its own.
import type { IncomingMessage } from 'node:http';
import { constantTimeEqual } from '../auth/token-hash.js';

export const CSRF_HEADER = 'x-csrf-token';

export function isChange(method: string | undefined): boolean {
  return !(method === 'GET' || method === 'HEAD' || method === 'OPTIONS');
}

/** `https://example.com:8443`: the origin a page of the platform host has, as this request reached us. */
export function expectedOrigin(req: IncomingMessage, secure: boolean): string | undefined {
  const host = req.headers.host;
  if (!host || /[\s/@]/.test(host)) return undefined;
  return `${secure ? 'https' : 'http'}://${host.toLowerCase()}`;
}

/** Why the request's Origin is not the platform's own, or undefined when it is. */
export function originProblem(req: IncomingMessage, secure: boolean): string | undefined {
  const origin = req.headers.origin;
  if (!origin) return 'The request has no Origin header.';
  const expected = expectedOrigin(req, secure);
  if (!expected || origin.toLowerCase() !== expected) return 'The request comes from another origin.';
  return undefined;
}

/** Why a cookie-authenticated change is refused, or undefined when it may go on. */
export function csrfProblem(req: IncomingMessage, secure: boolean, sessionCsrf: string): string | undefined {
  const origin = originProblem(req, secure);
  if (origin) return origin;
  const sent = req.headers[CSRF_HEADER];
  if (typeof sent !== 'string' || sent === '' || !constantTimeEqual(sent, sessionCsrf)) {
    return 'The CSRF token is missing or wrong: send the session\'s token in the X-CSRF-Token header.';
  }
  return undefined;
}
