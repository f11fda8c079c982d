// The HTTPS listener's certificates, chosen per connection by SNI from memory:
// the exact name, else the wildcard that covers it, else the platform's
// self-signed fallback. Updated live as certificates are uploaded, issued or removed.
import tls from 'node:tls';
import { wildcardFor } from '../model/domain-name.js';
import type { PemPair } from './self-signed.js';

export class SniContexts {
  private readonly byName = new Map<string, tls.SecureContext>();
  private fallbackContext: tls.SecureContext | undefined;
  private fallbackPair: PemPair | undefined;

  setFallback(pair: PemPair): void {
    this.fallbackPair = pair;
    this.fallbackContext = tls.createSecureContext(pair);
  }

  /** The fallback's PEM, for the server's own default (clients that send no SNI). */
  get fallback(): PemPair | undefined {
    return this.fallbackPair;
  }

  set(name: string, pair: PemPair): void {
    this.byName.set(name, tls.createSecureContext(pair));
  }

  delete(name: string): void {
    this.byName.delete(name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  contextFor(servername: string): tls.SecureContext | undefined {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const exact = this.byName.get(name);
    if (exact) return exact;
    const wildcard = wildcardFor(name);
    return (wildcard && this.byName.get(wildcard)) || this.fallbackContext;
  }

  /** For tls.createServer / https.createServer. */
  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
    cb(null, this.contextFor(servername));
  };
}
