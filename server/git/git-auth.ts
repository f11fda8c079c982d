// Who may use a tenant's git repository. git clients send HTTP Basic auth: the
// user name is ignored, the password is a token. Pushing needs the `deploy`
// scope; cloning and fetching need `read` (or `deploy`). The admin token may do both.
import type { Actor } from '../model/actor.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { Scope } from '../db/store.js';
import { actorFor, allowedFor, bearerFrom, type Principal, type TokenCheck } from '../auth/principal.js';

export type GitAccess = 'push' | 'fetch';

export type GitAuthDecision =
  | { readonly ok: true; readonly principal: Principal; readonly userName: string; readonly actor: Actor }
  | {
      readonly ok: false;
      readonly status: 401 | 403 | 429;
      readonly message: string;
      readonly retryAfterSeconds?: number;
      /** No credentials at all: the first request of every git client, before it sends its token. */
      readonly noCredentials?: boolean;
      /** Who was refused, when the token was valid (403). */
      readonly actor?: Actor;
    };

export interface BasicCredentials {
  readonly user: string;
  readonly password: string;
}

export function basicCredentialsFrom(header: string | undefined): BasicCredentials | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Which access a smart-HTTP request asks for, from its path tail and query. */
export function accessFor(tail: string, query: string): GitAccess {
  if (tail === '/git-receive-pack') return 'push';
  if (tail === '/info/refs' && new URLSearchParams(query).get('service') === 'git-receive-pack') return 'push';
  return 'fetch';
}

export function authorizeGit(
  headers: IncomingHttpHeaders,
  tenantId: string,
  access: GitAccess,
  checkToken: TokenCheck,
  clientAddress: string,
): GitAuthDecision {
  const basic = basicCredentialsFrom(headers.authorization);
  const token = basic?.password || bearerFrom(headers.authorization);
  if (!token) return { ok: false, status: 401, message: 'A token is required: use a deploy token as the password.', noCredentials: true };
  const outcome = checkToken(token, clientAddress);
  if (!outcome.ok && outcome.reason === 'throttled') {
    return { ok: false, status: 429, message: `Too many wrong tokens from this address; try again in ${outcome.retryAfterSeconds} s.`, retryAfterSeconds: outcome.retryAfterSeconds };
  }
  if (!outcome.ok) return { ok: false, status: 401, message: 'The token is not valid.' };
  const principal = outcome.principal;
  const actor = actorFor(principal, clientAddress);
  const userName = actor.id;
  if (principal.kind === 'admin') return { ok: true, principal, userName, actor };
  if (principal.tenantId !== tenantId) return { ok: false, status: 403, message: 'This token belongs to another tenant.', actor };
  const needed: readonly Scope[] = access === 'push' ? ['deploy'] : ['read', 'deploy'];
  if (!allowedFor(principal, tenantId, needed)) {
    const what = access === 'push' ? 'push: it needs the "deploy" scope' : 'fetch: it needs the "read" or "deploy" scope';
    return { ok: false, status: 403, message: `This token may not ${what}.`, actor };
  }
  return { ok: true, principal, userName, actor };
}
