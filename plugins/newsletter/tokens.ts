// Signed link tokens. A token names a subscriber by its random id (never the
// address), carries its purpose and expiry, and is an HMAC-SHA256 over
// purpose, tenant, subscriber, expiry and a per-purpose nonce kept in the
// store, under a key derived for this tenant, plugin and purpose. So a token
// made for one purpose, tenant or (re-)subscription does nothing for another,
// and is checked in constant time.
import crypto from 'node:crypto';

export type TokenPurpose = 'confirm' | 'unsubscribe';

export interface TokenClaims {
  readonly subscriberId: string;
  /** Unix seconds; 0 = no expiry. */
  readonly expiresAt: number;
}

const ID = /^[A-Za-z0-9_-]{8,64}$/;
const MAC_BYTES = 32;

export class TokenSigner {
  constructor(
    private readonly tenantId: string,
    private readonly keyFor: (purpose: TokenPurpose) => Buffer,
  ) {}

  private mac(purpose: TokenPurpose, subscriberId: string, expiresAt: number, nonce: string): Buffer {
    const h = crypto.createHmac('sha256', this.keyFor(purpose));
    // Length-prefixed fields: no two different tuples serialise alike.
    for (const field of ['tenantry-newsletter-v1', purpose, this.tenantId, subscriberId, String(expiresAt), nonce]) {
      const b = Buffer.from(field, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      h.update(len).update(b);
    }
    return h.digest();
  }

  sign(purpose: TokenPurpose, subscriberId: string, expiresAt: number, nonce: string): string {
    const mac = this.mac(purpose, subscriberId, expiresAt, nonce).toString('base64url');
    return `${subscriberId}.${expiresAt.toString(36)}.${mac}`;
  }

  /** The claims a token carries, before its MAC is checked (to find the nonce). */
  static parse(token: unknown): (TokenClaims & { readonly mac: Buffer }) | null {
    if (typeof token !== 'string' || token.length > 200) return null;
    const parts = token.split('.');
    if (parts.length !== 3) return null;
    const [subscriberId, exp, macText] = parts as [string, string, string];
    if (!ID.test(subscriberId) || !/^[0-9a-z]{1,12}$/.test(exp) || !/^[A-Za-z0-9_-]+$/.test(macText)) return null;
    const mac = Buffer.from(macText, 'base64url');
    if (mac.length !== MAC_BYTES) return null;
    return { subscriberId, expiresAt: parseInt(exp, 36), mac };
  }

  /** True when the MAC matches (constant time) and the token has not expired. */
  verify(purpose: TokenPurpose, parsed: TokenClaims & { readonly mac: Buffer }, nonce: string, nowSeconds: number): boolean {
    const expected = this.mac(purpose, parsed.subscriberId, parsed.expiresAt, nonce);
    const ok = crypto.timingSafeEqual(expected, parsed.mac);
    return ok && (parsed.expiresAt === 0 || parsed.expiresAt > nowSeconds);
  }
}
