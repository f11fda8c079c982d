// A tenant's custom domains: claims, proof of ownership, options and removal,
// live without a restart (the domain map and the proof answers are rebuilt on
// every change). A name added by the admin is verified at once; one added with
// a tenant's token stays pending, serving nothing of the tenant, until its
// TXT record or HTTP proof is found. A verified name belongs to one tenant:
// nobody else can claim it, so nobody can knock its owner offline by asking.
import type { ActorRef } from '../model/actor.js';
import type { DomainRecord, DomainRedirect, Store } from '../db/store.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { checkDomainClaim, normalizeDomain, type ReservedNames } from '../model/domain-name.js';
import type { DomainMap } from '../tenants/domain-map.js';
import type { DnsLookup } from './dns-lookup.js';
import { checkHttpProof, checkTxtProof } from './proof-check.js';
import type { ProofResponder } from './proof-responder.js';
import { HTTP_PROOF_PATH, proofValues } from './proof-values.js';

/** Other subsystems follow verified names (certificates). */
export interface DomainHooks {
  onDomainVerified?(d: DomainRecord): void;
  onDomainRemoved?(d: DomainRecord): void;
}

export interface Verification {
  readonly txt: { readonly name: string; readonly value: string };
  readonly http: { readonly url: string; readonly body: string };
}

export type ProofMethod = 'txt' | 'http';

/** Claims a tenant may hold (pending or verified, default domain included); the admin is not bound by it. */
export const MAX_DOMAINS_PER_TENANT = 100;

export interface DomainServiceDeps {
  readonly store: Store;
  readonly domainMap: DomainMap;
  readonly proofs: ProofResponder;
  /** The master secret the proof values are derived from. */
  readonly secret: string;
  readonly reserved: ReservedNames;
  readonly dns: DnsLookup;
  /** The HTTP port visitors reach the platform on (the HTTP proof is fetched there). */
  readonly httpPort: () => number;
  readonly log: Logger;
}

export interface AddOptions {
  /** The admin adds verified names, and may add wildcards. */
  readonly admin: boolean;
  readonly redirect?: DomainRedirect;
}

export class DomainService {
  private readonly hooks: DomainHooks[] = [];
  /** Proof checks under way, by tenant and name: a second ask waits for the first instead of asking DNS again. */
  private readonly checking = new Map<string, Promise<DomainRecord>>();

  constructor(private readonly d: DomainServiceDeps) {}

  addHooks(h: DomainHooks): void {
    this.hooks.push(h);
  }

  list(tenantId: string): DomainRecord[] {
    return this.d.store.domains.forTenant(tenantId);
  }

  /** The claim named in a URL (any spelling of it), or 404. */
  get(tenantId: string, input: string): DomainRecord {
    const name = input.startsWith('*.') ? `*.${normalizeDomain(input.slice(2)) ?? ''}` : normalizeDomain(input);
    const rec = name ? this.d.store.domains.claim(name, tenantId) : undefined;
    if (!rec) throw new AppError('domain_not_found', `The tenant ${tenantId} has no domain ${input}.`);
    return rec;
  }

  verification(d: DomainRecord): Verification {
    const p = proofValues(this.d.secret, d.tenantId, d.domain);
    const port = this.d.httpPort();
    return {
      txt: { name: p.txtName, value: p.value },
      http: { url: `http://${d.domain}${port === 80 ? '' : `:${port}`}${HTTP_PROOF_PATH}${p.httpToken}`, body: p.value },
    };
  }

  /** Adds a claim; `created` is false when the tenant already had it (the answer is then its current state). */
  add(tenantId: string, input: unknown, o: AddOptions, actor: ActorRef): { record: DomainRecord; created: boolean } {
    const c = checkDomainClaim(input, this.d.reserved);
    if (!c.ok) throw new AppError(c.reason === 'reserved' ? 'domain_reserved' : 'invalid_domain', c.message);
    if (c.wildcard && !o.admin) throw new AppError('forbidden', 'Only the admin may add a wildcard domain.');
    const redirect = o.redirect ?? 'none';
    checkRedirect(c.domain, redirect);
    const owner = this.d.store.domains.verified(c.domain);
    if (owner && owner.tenantId !== tenantId) throw new AppError('domain_taken', `The domain ${c.domain} belongs to another tenant.`);
    const existing = this.d.store.domains.claim(c.domain, tenantId);
    if (existing) {
      if (o.admin && !existing.verified) return { record: this.markVerified(existing, actor, 'admin'), created: false };
      return { record: existing, created: false };
    }
    if (!o.admin && this.d.store.domains.forTenant(tenantId).length >= MAX_DOMAINS_PER_TENANT) {
      throw new AppError('conflict', `A tenant may hold at most ${MAX_DOMAINS_PER_TENANT} domains; remove one first.`);
    }
    this.d.store.domains.insert({
      domain: c.domain,
      tenantId,
      verified: o.admin,
      verificationToken: proofValues(this.d.secret, tenantId, c.domain).httpToken,
      isDefault: false,
      redirect,
    });
    const record = this.d.store.domains.claim(c.domain, tenantId)!;
    this.d.store.audit.record({ actor, action: 'domain.add', tenantId, detail: { domain: c.domain, verified: o.admin, redirect } });
    this.changed();
    if (record.verified) for (const h of this.hooks) h.onDomainVerified?.(record);
    return { record, created: true };
  }

  /**
   * Looks for the proof (the TXT record first, then the HTTP URL, unless one is
   * named) and marks the claim verified; 409 with both reasons when neither is found.
   */
  async verify(tenantId: string, input: string, actor: ActorRef, method?: ProofMethod): Promise<DomainRecord> {
    const claim = this.get(tenantId, input);
    if (claim.verified) return claim;
    this.refuseIfTaken(claim);
    const key = `${tenantId}\0${claim.domain}\0${method ?? ''}`;
    const running = this.checking.get(key);
    if (running) return running;
    const check = this.checkProof(claim, actor, method).finally(() => this.checking.delete(key));
    this.checking.set(key, check);
    return check;
  }

  private async checkProof(claim: DomainRecord, actor: ActorRef, method: ProofMethod | undefined): Promise<DomainRecord> {
    const tenantId = claim.tenantId;
    const p = proofValues(this.d.secret, tenantId, claim.domain);
    const reasons: string[] = [];
    let proved: ProofMethod | undefined;
    if (method !== 'http') {
      const txt = await checkTxtProof(this.d.dns, p.txtName, p.value);
      if (txt.ok) proved = 'txt';
      else reasons.push(`TXT: ${txt.why}`);
    }
    if (!proved && method !== 'txt') {
      const web = await checkHttpProof(this.d.dns, claim.domain, this.d.httpPort(), HTTP_PROOF_PATH + p.httpToken, p.value);
      if (web.ok) proved = 'http';
      else reasons.push(`HTTP: ${web.why}`);
    }
    if (!proved) {
      this.d.store.audit.record({ actor, action: 'domain.verify.failed', tenantId, detail: { domain: claim.domain, reasons } });
      throw new AppError('verification_failed', `${claim.domain} is not proven yet: ${reasons.join('; ')}.`, { reasons });
    }
    // Looked up again: another tenant may have proven the name while we waited on DNS.
    const current = this.get(tenantId, claim.domain);
    if (current.verified) return current;
    this.refuseIfTaken(current);
    return this.markVerified(current, actor, proved);
  }

  setRedirect(tenantId: string, input: string, redirect: DomainRedirect, actor: ActorRef): DomainRecord {
    const claim = this.get(tenantId, input);
    checkRedirect(claim.domain, redirect);
    this.d.store.domains.setRedirect(claim.domain, tenantId, redirect);
    this.d.store.audit.record({ actor, action: 'domain.update', tenantId, detail: { domain: claim.domain, redirect } });
    this.changed();
    return this.get(tenantId, claim.domain);
  }

  remove(tenantId: string, input: string, actor: ActorRef): void {
    const claim = this.get(tenantId, input);
    if (claim.isDefault) throw new AppError('conflict', `${claim.domain} is the tenant's default domain; it goes only with the tenant.`);
    this.d.store.domains.delete(claim.domain, tenantId);
    this.d.store.audit.record({ actor, action: 'domain.remove', tenantId, detail: { domain: claim.domain, wasVerified: claim.verified } });
    this.changed();
    if (claim.verified) for (const h of this.hooks) h.onDomainRemoved?.(claim);
  }

  /** After a tenant's rows went (tenant deleted): the proof answers follow. */
  refresh(): void {
    this.changed();
  }

  private refuseIfTaken(claim: DomainRecord): void {
    const owner = this.d.store.domains.verified(claim.domain);
    if (owner && owner.tenantId !== claim.tenantId) throw new AppError('domain_taken', `The domain ${claim.domain} is already verified by another tenant.`);
  }

  private markVerified(claim: DomainRecord, actor: ActorRef, how: ProofMethod | 'admin'): DomainRecord {
    try {
      this.d.store.domains.setVerified(claim.domain, claim.tenantId);
    } catch (err) {
      // The partial unique index: someone else's claim was verified in between.
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new AppError('domain_taken', `The domain ${claim.domain} is already verified by another tenant.`);
      throw err;
    }
    const record = this.d.store.domains.claim(claim.domain, claim.tenantId)!;
    this.d.store.audit.record({ actor, action: 'domain.verify', tenantId: claim.tenantId, detail: { domain: claim.domain, proof: how } });
    this.d.log.info('domain verified', { tenant: claim.tenantId, domain: claim.domain, proof: how });
    this.changed();
    for (const h of this.hooks) h.onDomainVerified?.(record);
    return record;
  }

  private changed(): void {
    this.d.domainMap.rebuild();
    this.d.proofs.rebuild();
  }
}

/** `to-apex` only on a www. name with an apex of two labels or more; `to-www` only on a plain name. */
function checkRedirect(domain: string, redirect: DomainRedirect): void {
  if (redirect === 'none') return;
  if (domain.startsWith('*.')) throw new AppError('invalid_request', 'A wildcard domain cannot redirect.');
  const isWww = domain.startsWith('www.') && domain.split('.').length >= 3;
  if (redirect === 'to-apex' && !isWww) throw new AppError('invalid_request', `redirect "to-apex" is for www. names; ${domain} is not one.`);
  if (redirect === 'to-www' && domain.startsWith('www.')) throw new AppError('invalid_request', `redirect "to-www" is for names without www.; ${domain} has it.`);
}
