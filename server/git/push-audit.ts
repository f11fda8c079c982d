// Audit rows for pushes that end before a deploy could run: refused at the
// door (a wrong token, a token of another tenant or without `deploy`, too
// many wrong tokens, no such tenant) or refused by git itself while it read
// the pack (over receive.maxInputSize, or not whole). The pre-receive hook's
// own refusals and the deploys are recorded by PushReceiver. Refusals that
// name no one go through the RefusalSampler, so a flood of wrong tokens
// cannot fill the trail.
import type { Store } from '../db/store.js';
import type { Actor } from '../model/actor.js';
import { actorFor } from '../auth/principal.js';
import { RefusalSampler } from '../audit/refusal-sampler.js';
import type { GitAuthDecision } from './git-auth.js';
import type { PushCommand } from './push-commands.js';

type Refusal = Extract<GitAuthDecision, { ok: false }>;

const CODE_OF_STATUS = { 401: 'unauthorized', 403: 'forbidden', 429: 'rate_limited' } as const;

export class PushAudit {
  constructor(
    private readonly store: Store,
    private readonly sampler: RefusalSampler = new RefusalSampler(),
  ) {}

  /**
   * A push refused before git ran. `repository` is the tenant id the URL
   * names; it is the row's tenant only when such a tenant exists.
   */
  refusedAtDoor(refusal: Refusal, repository: string, address: string): void {
    // The request without credentials that every git client makes first is not a refusal of anyone.
    if (refusal.noCredentials) return;
    let detail: Record<string, unknown> = { reason: refusal.message };
    const actor: Actor = refusal.actor ?? actorFor(undefined, address);
    if (!refusal.actor) {
      const row = this.sampler.admit(address);
      if (!row) return;
      detail = { ...detail, refusals: row.refusals, ...(row.heldElsewhere ? { heldElsewhere: row.heldElsewhere } : {}) };
    }
    this.write(actor, repository, CODE_OF_STATUS[refusal.status], detail);
  }

  /** A valid token (the admin's) pushed to a tenant that does not exist. */
  noSuchTenant(actor: Actor, repository: string): void {
    this.write(actor, repository, 'tenant_not_found', {});
  }

  /**
   * receive-pack ended without asking the pre-receive hook: git refused the
   * pack. Over the size cap when more than `maxBytes` came in; otherwise the
   * pack was not whole (a client gone mid-push, a broken pack).
   */
  packRefused(o: { actor: Actor; tenantId: string; commands: readonly PushCommand[]; bytesIn: number; maxBytes: number; exitCode: number | null }): void {
    const tooLarge = o.bytesIn > o.maxBytes;
    this.store.audit.record({
      actor: o.actor,
      action: 'git.push',
      tenantId: o.tenantId,
      outcome: 'failure',
      code: tooLarge ? 'payload_too_large' : 'pack_refused',
      detail: {
        refs: o.commands.map((c) => c.ref),
        receivedBytes: o.bytesIn,
        maxPackBytes: o.maxBytes,
        ...(tooLarge ? {} : { exitCode: o.exitCode }),
      },
    });
  }

  private write(actor: Actor, repository: string, code: string, detail: Record<string, unknown>): void {
    const exists = this.store.tenants.get(repository) !== undefined;
    this.store.audit.record({
      actor,
      action: 'git.push',
      tenantId: exists ? repository : null,
      outcome: 'failure',
      code,
      detail: exists ? detail : { ...detail, repository },
    });
  }
}
