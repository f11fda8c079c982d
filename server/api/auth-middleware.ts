// The control API's guards: a bearer token (or a dashboard session cookie) on
// every /api/v1 request, then the admin or the right tenant scope per route,
// before any body is read. A change made with the cookie also needs the
// session's CSRF token and the platform's own Origin (dashboard/csrf.ts).
import type { NextFunction, Request, Response } from 'express';
import { AppError } from '../errors.js';
import type { Scope } from '../db/store.js';
import { bearerFrom, refusalFor, type Principal, type TokenCheck } from '../auth/principal.js';
import type { TrustedProxies } from '../model/client-origin.js';
import type { DashboardSessions } from '../dashboard/sessions.js';
import { sessionOf } from '../dashboard/session-routes.js';
import { csrfProblem, isChange } from '../dashboard/csrf.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      principal?: Principal;
      /** Set when the request was authenticated by a dashboard session (its id hash). */
      dashboardSession?: string;
    }
  }
}

/** The throttle counts wrong tokens per client address: the socket's peer, or what a trusted proxy says it is. */
export function authenticate(check: TokenCheck, proxies: TrustedProxies, sessions?: DashboardSessions) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const value = bearerFrom(req.headers.authorization);
    if (!value && sessions && req.headers.authorization === undefined) {
      // No bearer token: the dashboard's session cookie stands for the token it was opened with.
      const { session, secure } = sessionOf(req, sessions, proxies);
      if (session) {
        if (isChange(req.method)) {
          const bad = csrfProblem(req, secure, session.csrfToken);
          if (bad) throw new AppError('forbidden', bad);
        }
        req.principal = session.principal;
        req.dashboardSession = session.idHash;
        next();
        return;
      }
    }
    if (!value) throw new AppError('unauthorized');
    const outcome = check(value, proxies.originOf(req).address);
    if (!outcome.ok) {
      if (outcome.reason === 'invalid') throw new AppError('unauthorized', 'The token is not valid.');
      res.setHeader('Retry-After', String(outcome.retryAfterSeconds));
      throw new AppError('rate_limited', `Too many wrong tokens from this address; try again in ${outcome.retryAfterSeconds} s.`);
    }
    req.principal = outcome.principal;
    next();
  };
}

export function requireAdmin(req: Request, _res: Response, next: NextFunction): void {
  if (req.principal?.kind !== 'admin') throw new AppError('forbidden', 'Only the admin token may do this.');
  next();
}

/** Admin, or a token of the tenant named by `:id` with the scope. */
export function requireScope(scope: Scope) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const refusal = refusalFor(req.principal, String(req.params.id), scope);
    if (refusal) throw new AppError(refusal.status === 401 ? 'unauthorized' : 'forbidden', refusal.message);
    next();
  };
}
