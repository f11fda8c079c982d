// Host name -> the tenant it serves, held in memory so that routing a request
// costs one or two Map lookups and no query. Only verified domains are in it
// (a pending claim serves nothing). Rebuilt from the database whenever
// domains or a tenant's HTTPS options change.
import type { DomainRedirect, HttpsOptions, Store } from '../db/store.js';
import { wildcardFor } from '../model/domain-name.js';

export interface DomainRoute {
  readonly tenantId: string;
  /** The name that matched: the host itself, or the `*.parent` entry that covers it. */
  readonly domain: string;
  readonly redirect: DomainRedirect;
  readonly https: Readonly<HttpsOptions>;
}

export class DomainMap {
  private byHost = new Map<string, DomainRoute>();
  /** Called after each rebuild (the sibling edges rebuild theirs). */
  private readonly rebuildListeners: (() => void)[] = [];

  constructor(private readonly store: Store) {
    this.rebuild();
  }

  rebuild(): void {
    const https = new Map<string, HttpsOptions>();
    for (const t of this.store.tenants.list()) https.set(t.id, t.https);
    const next = new Map<string, DomainRoute>();
    for (const d of this.store.domains.allVerified()) {
      next.set(d.domain, { tenantId: d.tenantId, domain: d.domain, redirect: d.redirect, https: https.get(d.tenantId) ?? { redirect: false, hsts: false } });
    }
    this.byHost = next;
    for (const l of this.rebuildListeners) l();
  }

  onRebuild(listener: () => void): void {
    this.rebuildListeners.push(listener);
  }

  /** `host` is already lowercased and without a port; an exact name wins over the wildcard that covers it. */
  route(host: string): DomainRoute | undefined {
    const exact = this.byHost.get(host);
    if (exact !== undefined) return exact;
    const wildcard = wildcardFor(host);
    return wildcard === undefined ? undefined : this.byHost.get(wildcard);
  }

  /** Whether `name` is itself a verified domain (not merely covered by a wildcard). */
  isVerified(name: string): boolean {
    return this.byHost.has(name);
  }

  get size(): number {
    return this.byHost.size;
  }
}
