// The HTTP proof's answers, held in memory for the edge: for each name with a
// pending claim, the token -> value of every tenant claiming it. The edge
// answers `/.well-known/tenantry/<token>` on that name from here (no query),
// and the platform's own fetch of that URL then finds it if the domain's DNS
// points here.
import type { Store } from '../db/store.js';
import { proofValues } from './proof-values.js';

export class ProofResponder {
  private byHost = new Map<string, Map<string, string>>();

  constructor(
    private readonly store: Store,
    private readonly secret: string,
  ) {
    this.rebuild();
  }

  rebuild(): void {
    const next = new Map<string, Map<string, string>>();
    for (const d of this.store.domains.allPending()) {
      const p = proofValues(this.secret, d.tenantId, d.domain);
      let tokens = next.get(d.domain);
      if (!tokens) next.set(d.domain, (tokens = new Map()));
      tokens.set(p.httpToken, p.value);
    }
    this.byHost = next;
  }

  /** The body to serve for `token` on `host`, if a pending claim on that name has it. */
  answer(host: string, token: string): string | undefined {
    return this.byHost.get(host)?.get(token);
  }
}
