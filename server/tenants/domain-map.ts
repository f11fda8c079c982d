// Host name -> tenant id, held in memory so that routing a request costs one
// Map lookup and no query. Rebuilt from the database whenever domains change.
import type { Store } from '../db/store.js';

export class DomainMap {
  private byHost = new Map<string, string>();

  constructor(private readonly store: Store) {
    this.rebuild();
  }

  rebuild(): void {
    const next = new Map<string, string>();
    for (const d of this.store.domains.allVerified()) next.set(d.domain, d.tenantId);
    this.byHost = next;
  }

  /** `host` is already lowercased and without a port. */
  lookup(host: string): string | undefined {
    return this.byHost.get(host);
  }

  get size(): number {
    return this.byHost.size;
  }
}

/** Host header -> lowercase name without port or trailing dot; '' when absent or malformed. */
export function normalizeHost(header: string | undefined): string {
  if (!header) return '';
  let h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(0, end + 1) : '';
  }
  const colon = h.indexOf(':');
  if (colon >= 0) h = h.slice(0, colon);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}
