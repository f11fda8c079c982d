// Server-side dashboard sessions, kept in the platform database so they live
// through a restart. The browser holds only a random id (in an HttpOnly
// cookie); the database holds its keyed hash, the hash of the token that
// opened it, and the session's CSRF token. No HTTP here.
import crypto from 'node:crypto';
import type { Store } from '../db/store.js';
import type { Principal } from '../auth/principal.js';
import { hashToken } from '../auth/token-hash.js';

/** A session ends this long after sign-in, whatever happens. */
export const SESSION_LIFETIME_MS = 12 * 60 * 60 * 1000;
/** ... or after this long without a request. */
export const SESSION_IDLE_MS = 2 * 60 * 60 * 1000;
/** last_seen_at is written at most this often (not on every request). */
const TOUCH_EVERY_MS = 60 * 1000;

export interface OpenSession {
  /** The cookie value (only ever sent to the browser in Set-Cookie). */
  readonly id: string;
  readonly csrfToken: string;
}

export interface ActiveSession {
  readonly principal: Principal;
  readonly csrfToken: string;
  readonly idHash: string;
}

export class DashboardSessions {
  constructor(
    private readonly store: Store,
    private readonly secret: string,
    /** Who a token hash belongs to now (auth/principal.ts createHashResolver). */
    private readonly resolveHash: (tokenHash: string) => Principal | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  private idHash(id: string): string {
    // A purpose prefix keeps session hashes apart from token hashes under the same secret.
    return hashToken(this.secret, `dashboard-session:${id}`);
  }

  /** Opens a session for a token already checked by the caller. */
  open(token: string): OpenSession {
    const id = crypto.randomBytes(32).toString('base64url');
    const csrfToken = crypto.randomBytes(32).toString('base64url');
    const at = this.now();
    this.store.sessions.deleteStale(new Date(at).toISOString(), new Date(at - SESSION_IDLE_MS).toISOString());
    this.store.sessions.insert({
      idHash: this.idHash(id),
      tokenHash: hashToken(this.secret, token),
      csrfToken,
      createdAt: new Date(at).toISOString(),
      lastSeenAt: new Date(at).toISOString(),
      expiresAt: new Date(at + SESSION_LIFETIME_MS).toISOString(),
    });
    return { id, csrfToken };
  }

  /** The live session of a cookie value: undefined when unknown, expired, idle too long, or its token is gone. */
  resolve(id: string): ActiveSession | undefined {
    const idHash = this.idHash(id);
    const row = this.store.sessions.get(idHash);
    if (!row) return undefined;
    const at = this.now();
    const lastSeen = Date.parse(row.lastSeenAt);
    if (Date.parse(row.expiresAt) <= at || lastSeen + SESSION_IDLE_MS <= at) {
      this.store.sessions.delete(idHash);
      return undefined;
    }
    const principal = this.resolveHash(row.tokenHash);
    if (!principal) {
      this.store.sessions.delete(idHash);
      return undefined;
    }
    if (at - lastSeen >= TOUCH_EVERY_MS) this.store.sessions.touch(idHash, new Date(at).toISOString());
    return { principal, csrfToken: row.csrfToken, idHash };
  }

  end(idHash: string): void {
    this.store.sessions.delete(idHash);
  }
}
