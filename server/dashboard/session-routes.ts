// /api/v1/session: the dashboard's sign-in (POST {token}), who is signed in
// with the session's CSRF token (GET), and sign-out (DELETE). Mounted ahead of
// the API's token check: signing in is how a browser gets past it.
import { Router, type Request, type Response } from 'express';
import type { IncomingMessage } from 'node:http';
import { AppError } from '../errors.js';
import type { Principal, TokenCheck } from '../auth/principal.js';
import type { TrustedProxies } from '../model/client-origin.js';
import type { ActiveSession, DashboardSessions } from './sessions.js';
import { clearedCookie, sessionCookie, sessionValues } from './session-cookie.js';
import { csrfProblem, originProblem } from './csrf.js';

/** What the page is told about who is signed in (never the token). */
export type PrincipalView = { kind: 'admin' } | { kind: 'tenant'; tenantId: string; scopes: readonly string[] };

export function principalView(p: Principal): PrincipalView {
  return p.kind === 'admin' ? { kind: 'admin' } : { kind: 'tenant', tenantId: p.tenantId, scopes: p.scopes };
}

/** The live session a request's cookie names, with the scheme it came in on. */
export function sessionOf(req: IncomingMessage, sessions: DashboardSessions, proxies: TrustedProxies): { session: ActiveSession | undefined; secure: boolean } {
  const secure = proxies.originOf(req).secure;
  const live = sessionValues(req, secure)
    .map((v) => sessions.resolve(v))
    .filter((s): s is ActiveSession => s !== undefined);
  // Two live sessions at once: one was planted (another account's); trust neither.
  return { session: live.length === 1 ? live[0] : undefined, secure };
}

export interface SessionRouterDeps {
  readonly sessions: DashboardSessions;
  readonly checkToken: TokenCheck;
  readonly trustedProxies: TrustedProxies;
}

/** Mounted at /api/v1/session. */
export function sessionRouter(p: SessionRouterDeps): Router {
  const r = Router();
  const noStore = (res: Response) => res.setHeader('Cache-Control', 'no-store');

  r.post('/', (req: Request, res: Response) => {
    noStore(res);
    const origin = p.trustedProxies.originOf(req);
    // Login CSRF: only a page of the platform host itself may open a session.
    const bad = originProblem(req, origin.secure);
    if (bad) throw new AppError('forbidden', bad);
    const token = readToken(req);
    const outcome = p.checkToken(token, origin.address);
    if (!outcome.ok) {
      if (outcome.reason === 'invalid') throw new AppError('unauthorized', 'The token is not valid.');
      res.setHeader('Retry-After', String(outcome.retryAfterSeconds));
      throw new AppError('rate_limited', `Too many wrong tokens from this address; try again in ${outcome.retryAfterSeconds} s.`);
    }
    // Always a new id: a session id known before sign-in (fixation) is never promoted.
    const previous = sessionOf(req, p.sessions, p.trustedProxies).session;
    if (previous) p.sessions.end(previous.idHash);
    const opened = p.sessions.open(token);
    res.setHeader('Set-Cookie', sessionCookie(opened.id, origin.secure));
    res.status(201).json({ principal: principalView(outcome.principal), csrfToken: opened.csrfToken });
  });

  r.get('/', (req, res) => {
    noStore(res);
    const { session } = sessionOf(req, p.sessions, p.trustedProxies);
    if (!session) throw new AppError('unauthorized', 'Not signed in.');
    res.json({ principal: principalView(session.principal), csrfToken: session.csrfToken });
  });

  r.delete('/', (req, res) => {
    noStore(res);
    const { session, secure } = sessionOf(req, p.sessions, p.trustedProxies);
    if (!session) {
      res.setHeader('Set-Cookie', clearedCookie(secure));
      res.status(204).end();
      return;
    }
    const bad = csrfProblem(req, secure, session.csrfToken);
    if (bad) throw new AppError('forbidden', bad);
    p.sessions.end(session.idHash);
    res.setHeader('Set-Cookie', clearedCookie(secure));
    res.status(204).end();
  });

  return r;
}

/** The token from a small JSON or form body; read here since this route sits before the API's body parsers. */
function readToken(req: Request): string {
  const body = req.body as { token?: unknown } | undefined;
  const token = typeof body?.token === 'string' ? body.token.trim() : '';
  if (!token) throw new AppError('invalid_request', 'Give the token as {"token": "..."}.');
  if (token.length > 512) throw new AppError('invalid_request', 'The token is too long.');
  return token;
}
