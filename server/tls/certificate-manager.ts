// Each verified domain's certificate: uploaded by its tenant, or issued over
// ACME when TENANTRY_ACME_DIRECTORY_URL is set, renewed a third of its life
// before it expires. The state of each is a row (certificates table); the PEM
// files are under <data>/certs/; what the HTTPS listener serves is the SNI map.
//
// Rules kept here: a certificate is requested only for a name that is, at that
// moment, a verified domain of the tenant it is for (checked again when the
// CA answers); one issuance runs at a time (so at most one per domain); a
// failure is logged and retried after a back-off that doubles up to a cap, so
// the CA is never hammered; a failed renewal keeps the old certificate serving.
import type { ActorRef } from '../model/actor.js';
import type { CertificateRecord, DomainRecord, Store } from '../db/store.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CertificateIssuer } from './acme-issuer.js';
import { checkUploadedCertificate, datesOf, leafOf, type CertificateDates } from './certificate-check.js';
import type { CertificateFiles } from './certificate-files.js';
import type { SniContexts } from './sni-contexts.js';

export type CertificateView =
  | { readonly status: 'none' }
  | { readonly status: 'pending' }
  | { readonly status: 'issued'; readonly expiresAt: string; readonly renewAt: string | null; readonly error?: string }
  | { readonly status: 'uploaded'; readonly expiresAt: string }
  | { readonly status: 'failed'; readonly error: string; readonly retryAt: string | null };

export interface Backoff {
  /** Wait after the first failure; doubled after each further one. */
  readonly firstMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { firstMs: 10 * 60_000, maxMs: 12 * 3600_000 };
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface CertificateManagerDeps {
  readonly store: Store;
  readonly files: CertificateFiles;
  readonly contexts: SniContexts;
  /** Undefined: no ACME; only uploaded certificates. */
  readonly issuer: CertificateIssuer | undefined;
  readonly log: Logger;
  readonly backoff?: Backoff;
  /** The clock (tests drive it). */
  readonly now?: () => number;
}

/** Names no public CA will issue for: the self-signed fallback covers them. */
function isLocalName(domain: string): boolean {
  return domain === 'localhost' || domain.endsWith('.localhost');
}

/** When to renew: a third of the certificate's life before it ends. */
export function renewalTime(dates: CertificateDates): Date {
  const life = dates.notAfter.getTime() - dates.notBefore.getTime();
  return new Date(dates.notAfter.getTime() - life / 3);
}

export class CertificateManager {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly backoff: Backoff;
  private readonly now: () => number;

  constructor(private readonly d: CertificateManagerDeps) {
    this.backoff = d.backoff ?? DEFAULT_BACKOFF;
    this.now = d.now ?? Date.now;
  }

  get acme(): boolean {
    return this.d.issuer !== undefined;
  }

  /** Loads the stored certificates into the SNI map and plans what is due (first issuance of verified names). */
  start(): void {
    for (const row of this.d.store.certificates.all()) {
      if (!this.stillOwned(row)) {
        this.drop(row.domain);
        continue;
      }
      const pair = this.d.files.read(row.domain);
      if (pair && (row.status === 'issued' || row.status === 'uploaded')) this.d.contexts.set(row.domain, pair);
    }
    for (const dom of this.d.store.domains.allVerified()) this.planFirst(dom);
    this.schedule();
  }

  /**
   * Plans nothing more. The request already with the CA is left to finish (its
   * answer is thrown away): the promise says when, so a caller that also
   * stops the CA (a test) or the process waits for it first. acme-client
   * retries a CA that stopped answering for minutes, on timers of its own.
   */
  close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    return this.running ?? Promise.resolve();
  }

  view(domain: string): CertificateView {
    const row = this.d.store.certificates.get(domain);
    if (!row) return { status: 'none' };
    switch (row.status) {
      case 'pending':
        return { status: 'pending' };
      case 'uploaded':
        return { status: 'uploaded', expiresAt: row.notAfter ?? '' };
      case 'issued':
        return { status: 'issued', expiresAt: row.notAfter ?? '', renewAt: row.retryAt, ...(row.error ? { error: row.error } : {}) };
      case 'failed':
        return { status: 'failed', error: row.error ?? 'unknown', retryAt: row.retryAt };
    }
  }

  /** A tenant's own certificate for one of its verified domains (replaces any issued one; never renewed here). */
  upload(claim: DomainRecord, certPem: string, keyPem: string, actor: ActorRef): CertificateView {
    if (!claim.verified) throw new AppError('domain_not_verified', `${claim.domain} is not verified yet; prove it before uploading a certificate.`);
    const dates = checkUploadedCertificate(certPem, keyPem, claim.domain, new Date(this.now()));
    this.d.files.write(claim.domain, { cert: certPem, key: keyPem });
    this.d.contexts.set(claim.domain, { cert: certPem, key: keyPem });
    this.d.store.certificates.put({
      domain: claim.domain,
      tenantId: claim.tenantId,
      status: 'uploaded',
      notBefore: dates.notBefore.toISOString(),
      notAfter: dates.notAfter.toISOString(),
      error: null,
      failures: 0,
      retryAt: null,
    });
    this.d.store.audit.record({ actor, action: 'certificate.upload', tenantId: claim.tenantId, detail: { domain: claim.domain, notAfter: dates.notAfter.toISOString() } });
    return this.view(claim.domain);
  }

  /** Drops a domain's certificate (uploaded or issued); ACME issues a new one when it can. */
  remove(claim: DomainRecord, actor: ActorRef): CertificateView {
    if (!this.d.store.certificates.get(claim.domain)) throw new AppError('not_found', `${claim.domain} has no certificate.`);
    this.drop(claim.domain);
    this.d.store.audit.record({ actor, action: 'certificate.remove', tenantId: claim.tenantId, detail: { domain: claim.domain } });
    if (claim.verified) this.planFirst(claim);
    this.schedule();
    return this.view(claim.domain);
  }

  /** Follows the domain service: a newly verified name gets its first issuance; a removed one loses its certificate. */
  domainHooks() {
    return {
      onDomainVerified: (dom: DomainRecord) => {
        this.planFirst(dom);
        this.schedule();
      },
      onDomainRemoved: (dom: DomainRecord) => this.drop(dom.domain),
    };
  }

  /** Before a tenant's rows go (they cascade): its files and SNI entries. */
  tenantHooks() {
    return {
      onTenantDeleting: async (tenantId: string) => {
        for (const row of this.d.store.certificates.forTenant(tenantId)) this.drop(row.domain);
      },
    };
  }

  /** Issues or renews everything due now, one at a time; resolves when done (tests call it with their clock). */
  runDue(): Promise<void> {
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
      this.schedule();
    });
    return this.running;
  }

  private async drain(): Promise<void> {
    for (;;) {
      if (this.closed) return;
      const due = this.d.store.certificates
        .all()
        .filter((r) => r.status !== 'uploaded' && r.retryAt !== null && Date.parse(r.retryAt) <= this.now())
        .sort((a, b) => Date.parse(a.retryAt!) - Date.parse(b.retryAt!))[0];
      if (!due) return;
      await this.issue(due);
    }
  }

  private async issue(row: CertificateRecord): Promise<void> {
    const issuer = this.d.issuer;
    if (!issuer || !this.stillOwned(row)) {
      this.drop(row.domain);
      return;
    }
    this.d.log.info('requesting a certificate', { domain: row.domain, tenant: row.tenantId, renewal: row.status === 'issued' });
    try {
      const pair = await issuer.issue(row.domain);
      if (this.closed) return;
      // The name may have been removed or handed over while the CA worked: then the certificate is thrown away.
      const current = this.d.store.certificates.get(row.domain);
      if (!current || current.status === 'uploaded') return;
      if (!this.stillOwned(current)) return this.drop(row.domain);
      const dates = datesOf(leafOf(pair.cert));
      // Never due again at once, even for a certificate already past two thirds of its life (a skewed clock).
      const life = dates.notAfter.getTime() - dates.notBefore.getTime();
      const renewAt = Math.max(renewalTime(dates).getTime(), this.now() + Math.min(this.backoff.firstMs, life / 6));
      this.d.files.write(row.domain, pair);
      this.d.contexts.set(row.domain, pair);
      this.d.store.certificates.put({
        domain: row.domain,
        tenantId: row.tenantId,
        status: 'issued',
        notBefore: dates.notBefore.toISOString(),
        notAfter: dates.notAfter.toISOString(),
        error: null,
        failures: 0,
        retryAt: new Date(renewAt).toISOString(),
      });
      this.d.store.audit.record({ actor: 'acme', action: 'certificate.issue', tenantId: row.tenantId, detail: { domain: row.domain, notAfter: dates.notAfter.toISOString() } });
      this.d.log.info('certificate issued', { domain: row.domain, tenant: row.tenantId, notAfter: dates.notAfter.toISOString() });
    } catch (err) {
      if (this.closed) return;
      const current = this.d.store.certificates.get(row.domain);
      if (!current || current.status === 'uploaded') return;
      const failures = current.failures + 1;
      const wait = Math.min(this.backoff.firstMs * 2 ** (failures - 1), this.backoff.maxMs);
      const why = describe(err);
      // A renewal that failed leaves the current certificate serving while it is still valid.
      const stillValid = current.status === 'issued' && current.notAfter !== null && Date.parse(current.notAfter) > this.now();
      this.d.store.certificates.put({ ...current, status: stillValid ? 'issued' : 'failed', error: why, failures, retryAt: new Date(this.now() + wait).toISOString() });
      this.d.store.audit.record({ actor: 'acme', action: 'certificate.fail', tenantId: row.tenantId, detail: { domain: row.domain, error: why, failures, retryInSeconds: Math.round(wait / 1000) } });
      this.d.log.warn('certificate request failed; will retry', { domain: row.domain, tenant: row.tenantId, err: why, failures, retryInSeconds: Math.round(wait / 1000) });
    }
  }

  /** The first issuance of a verified name, when ACME is on and the name is one a CA will sign. */
  private planFirst(dom: DomainRecord): void {
    if (!this.d.issuer || !dom.verified || dom.domain.startsWith('*.') || isLocalName(dom.domain)) return;
    if (this.d.store.certificates.get(dom.domain)) return;
    const at = new Date(this.now()).toISOString();
    this.d.store.certificates.put({ domain: dom.domain, tenantId: dom.tenantId, status: 'pending', notBefore: null, notAfter: null, error: null, failures: 0, retryAt: at });
  }

  private stillOwned(row: CertificateRecord): boolean {
    return this.d.store.domains.verified(row.domain)?.tenantId === row.tenantId;
  }

  private drop(domain: string): void {
    this.d.contexts.delete(domain);
    this.d.files.remove(domain);
    this.d.store.certificates.delete(domain);
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.closed || !this.d.issuer) return;
    let next = Infinity;
    for (const r of this.d.store.certificates.all()) {
      if (r.status !== 'uploaded' && r.retryAt !== null) next = Math.min(next, Date.parse(r.retryAt));
    }
    if (next === Infinity) return;
    this.timer = setTimeout(() => void this.runDue(), Math.min(Math.max(0, next - this.now()), MAX_TIMER_MS));
    this.timer.unref();
  }
}

/** The CA's reason in one line (acme-client puts the problem document's detail in the message). */
function describe(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/\s+/g, ' ').slice(0, 500);
}
