// Who is asking: a bearer token resolved to the admin or to one tenant's token
// with its scopes, and the checks every entry point (API, git, dashboard) shares.
// No HTTP framework here: the API's middleware and git's Basic auth build on it.
import type { Actor } from '../model/actor.js';
import type { Scope, Store } from '../db/store.js';
import { constantTimeEqual, hashToken } from './token-hash.js';
import type { FailureThrottle } from './failure-throttle.js';

export type Principal =
  | { readonly kind: 'admin' }
  | { readonly kind: 'tenant'; readonly tenantId: string; readonly scopes: readonly Scope[]; readonly tokenId: string; readonly tokenName?: string };

/** Resolves a token value to who it belongs to; undefined when it matches nothing. */
export type PrincipalResolver = (token: string) => Principal | undefined;

/** A token presented by a client: who it is, or why not (throttled: too many wrong tokens from there). */
export type TokenCheck = (token: string, clientAddress: string) => TokenOutcome;
export type TokenOutcome =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly reason: 'invalid' }
  | { readonly ok: false; readonly reason: 'throttled'; readonly retryAfterSeconds: number };

/** A resolver behind the failure throttle: over the limit, the token is not even looked at. */
export function createTokenCheck(resolve: PrincipalResolver, throttle: FailureThrottle): TokenCheck {
  return (token, clientAddress) => {
    const wait = throttle.retryAfter(clientAddress, token);
    if (wait !== undefined) return { ok: false, reason: 'throttled', retryAfterSeconds: wait };
    const principal = resolve(token);
    if (principal) return { ok: true, principal };
    throttle.recordFailure(clientAddress, token);
    return { ok: false, reason: 'invalid' };
  };
}

/** The reason a principal may not act on a tenant, or undefined when it may. */
export type Refusal = { readonly status: 401 | 403; readonly message: string };

export function actorName(p: Principal | undefined): string {
  if (!p) return 'anonymous';
  return p.kind === 'admin' ? 'admin' : `token:${p.tokenId}`;
}

/** The audit trail's actor for a request: who (token id and name, or admin) and from where. */
export function actorFor(p: Principal | undefined, address: string, trail?: { rows: number }): Actor {
  return { id: actorName(p), name: p?.kind === 'tenant' ? p.tokenName : undefined, address, trail };
}

export function bearerFrom(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

export function createPrincipalResolver(store: Store, secrets: { readonly secret: string; readonly adminToken: string }): PrincipalResolver {
  const byHash = createHashResolver(store, secrets);
  return (value) => byHash(hashToken(secrets.secret, value));
}

/**
 * The same resolution from a token's keyed hash: a dashboard session keeps the
 * hash of the token it was opened with (never the token), and is who that token
 * is now (a revoked token or a changed admin token ends its sessions).
 */
export function createHashResolver(store: Store, secrets: { readonly secret: string; readonly adminToken: string }): (tokenHash: string) => Principal | undefined {
  const adminHash = hashToken(secrets.secret, secrets.adminToken);
  return (h) => {
    if (constantTimeEqual(h, adminHash)) return { kind: 'admin' };
    const t = store.tokens.byHash(h);
    if (!t) return undefined;
    store.tokens.touch(t.id);
    return { kind: 'tenant', tenantId: t.tenantId, scopes: t.scopes, tokenId: t.id, tokenName: t.name };
  };
}

/** Admin, or a token of `tenantId` holding `scope`. */
export function refusalFor(p: Principal | undefined, tenantId: string, scope: Scope): Refusal | undefined {
  if (!p) return { status: 401, message: 'A valid token is required.' };
  if (p.kind === 'admin') return undefined;
  if (p.tenantId !== tenantId) return { status: 403, message: 'This token belongs to another tenant.' };
  if (!p.scopes.includes(scope)) return { status: 403, message: `This token lacks the "${scope}" scope.` };
  return undefined;
}

/** Admin, or a token of `tenantId` holding any of `scopes`. */
export function allowedFor(p: Principal | undefined, tenantId: string, scopes: readonly Scope[]): boolean {
  if (!p) return false;
  return p.kind === 'admin' || (p.tenantId === tenantId && scopes.some((s) => p.scopes.includes(s)));
}
