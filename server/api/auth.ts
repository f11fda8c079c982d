// Bearer tokens -> who is asking. The admin token may do everything; a tenant
// token is bound to one tenant and carries scopes.
import type { NextFunction, Request, Response } from 'express';
import { AppError } from '../errors.js';
import type { Scope, Store } from '../db/store.js';
import { constantTimeEqual, hashToken } from '../auth/token-hash.js';

export type Principal =
  | { readonly kind: 'admin' }
  | { readonly kind: 'tenant'; readonly tenantId: string; readonly scopes: readonly Scope[]; readonly tokenId: string };

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      principal?: Principal;
    }
  }
}

export function actorName(p: Principal | undefined): string {
  if (!p) return 'anonymous';
  return p.kind === 'admin' ? 'admin' : `token:${p.tokenId}`;
}

export function bearerFrom(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

export function createAuthenticator(store: Store, secrets: { secret: string; adminToken: string }) {
  const adminHash = hashToken(secrets.secret, secrets.adminToken);
  /** Resolves a token value; undefined when it matches nothing. */
  function principalFor(value: string): Principal | undefined {
    const h = hashToken(secrets.secret, value);
    if (constantTimeEqual(h, adminHash)) return { kind: 'admin' };
    const t = store.tokens.byHash(h);
    if (!t) return undefined;
    store.tokens.touch(t.id);
    return { kind: 'tenant', tenantId: t.tenantId, scopes: t.scopes, tokenId: t.id };
  }
  function authenticate(req: Request, _res: Response, next: NextFunction): void {
    const value = bearerFrom(req.headers.authorization);
    if (!value) throw new AppError('unauthorized');
    const p = principalFor(value);
    if (!p) throw new AppError('unauthorized', 'The token is not valid.');
    req.principal = p;
    next();
  }
  return { authenticate, principalFor };
}

export function requireAdmin(req: Request, _res: Response, next: NextFunction): void {
  if (req.principal?.kind !== 'admin') throw new AppError('forbidden', 'Only the admin token may do this.');
  next();
}

/** Admin, or a token of the tenant named by `:id` with the scope. */
export function requireScope(scope: Scope) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    assertScope(req.principal, String(req.params.id), scope);
    next();
  };
}

export function assertScope(p: Principal | undefined, tenantId: string, scope: Scope): void {
  if (!p) throw new AppError('unauthorized');
  if (p.kind === 'admin') return;
  if (p.tenantId !== tenantId) throw new AppError('forbidden', 'This token belongs to another tenant.');
  if (!p.scopes.includes(scope)) throw new AppError('forbidden', `This token lacks the "${scope}" scope.`);
}

/** Admin, or any token of the tenant named by `:id` (used where any scope will do). */
export function allowedFor(p: Principal | undefined, tenantId: string, scopes: readonly Scope[]): boolean {
  if (!p) return false;
  return p.kind === 'admin' || (p.tenantId === tenantId && scopes.some((s) => p.scopes.includes(s)));
}
