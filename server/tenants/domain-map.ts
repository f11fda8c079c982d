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
