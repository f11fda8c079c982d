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
  const expected = expectedOrigin(req, secure);
  const own = expected ? ` (${expected})` : '';
  if (!origin) return `The request has no Origin header: only the platform's own pages${own} may sign in or make changes with the session cookie.`;
  if (!expected || origin.toLowerCase() !== expected) return `The request comes from another origin (${origin.slice(0, 200)}), not the platform's own pages${own}.`;
  return undefined;
}

/**
 * Why a cookie-authenticated change is refused, or undefined when it may go on.
 * Every missing piece is named at once, with the way around for scripts.
 */
export function csrfProblem(req: IncomingMessage, secure: boolean, sessionCsrf: string): string | undefined {
  const problems: string[] = [];
  const origin = originProblem(req, secure);
  if (origin) problems.push(origin);
  const sent = req.headers[CSRF_HEADER];
  if (typeof sent !== 'string' || sent === '') problems.push("The CSRF token is missing: send the session's token in the X-CSRF-Token header.");
  else if (!constantTimeEqual(sent, sessionCsrf)) problems.push("The CSRF token is wrong: send the session's token in the X-CSRF-Token header.");
  if (!problems.length) return undefined;
  return `${problems.join(' ')} Scripts should send "Authorization: Bearer <token>" instead of the cookie.`;
}
