// The sender loop: takes one due delivery at a time and sends it at most once.
//
// For each delivery, in one transaction: check that this loop still holds the
// sender lease, check the subscriber is still confirmed and the address is not
// in the suppression list (checked the moment before the mail goes), and claim
// it (queued -> sending, committed with synchronous=FULL). Only then is the
// mail handed to the platform. The outcome is recorded afterwards:
//   sent -> sent; failed (5xx) -> failed and the address suppressed as bounced;
//   deferred (4xx, no connection) or refused (the platform's own cap) -> queued
//   again with backoff, failed after `maxAttempts`.
// A delivery left "sending" (the process died between claim and record) is
// turned into "unknown" by the next lease holder and never sent again.
//
// While an issue is sending, the loop tells the platform it has background
// work (ctx.background), so the worker is not stopped for idleness and is
// started again after a restart of the platform; it says so no longer when
// nothing is left sending.
//
// The lease (one row, heartbeat) keeps two workers of the same tenant (an old
// one draining, a new one starting) from sending at once; a lease whose holder
// stopped heart-beating for `leaseTtlMs` is taken over.
import crypto from 'node:crypto';
import type { BackgroundWork, MailCapability, MailResult, PluginLogger } from '../plugin-api.js';
import type { ComposeIssueMail } from './compose.js';
import type { Issue, NewsletterStore, Subscriber } from './store.js';

export interface SenderOptions {
  readonly leaseTtlMs: number;
  readonly maxAttempts: number;
  /** Backoff after attempt n (1-based): baseBackoffMs * 4^(n-1), capped at an hour. */
  readonly baseBackoffMs: number;
  /** How often an idle loop looks for work it was not woken for. */
  readonly idlePollMs: number;
}

export const DEFAULT_SENDER_OPTIONS: SenderOptions = {
  leaseTtlMs: 30_000,
  maxAttempts: 5,
  baseBackoffMs: 60_000,
  idlePollMs: 5_000,
};

/** How often a sending loop repeats that it has work. */
const RETELL_MS = 60_000;

interface Claimed {
  readonly issue: Issue;
  readonly subscriber: Subscriber;
}

export class Sender {
  private readonly owner = crypto.randomBytes(9).toString('base64url');
  private stopped = false;
  private running: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private holdsLease = false;
  private inFlight = false;
  /** What the platform was last told about background work (undefined: not yet, or the telling failed). */
  private said: boolean | undefined;
  private toldAt = 0;

  constructor(
    private readonly store: NewsletterStore,
    private readonly mail: MailCapability,
    private readonly compose: ComposeIssueMail,
    private readonly log: PluginLogger,
    private readonly options: SenderOptions = DEFAULT_SENDER_OPTIONS,
    private readonly now: () => number = Date.now,
    private readonly background?: BackgroundWork,
  ) {}

  /** Tells the platform an issue is sending, and waits until it has recorded it (before a send is acknowledged). */
  async announce(): Promise<void> {
    if (!this.background) return;
    this.said = true;
    if (!(await this.background.setPending(true))) this.said = undefined;
  }

  /** Says it on a change, and again now and then while sending (the platform may have dropped it, e.g. a settings roll-back). */
  private tell(pending: boolean): void {
    const now = Date.now();
    if (!this.background || (this.said === pending && (!pending || now - this.toldAt < RETELL_MS))) return;
    this.said = pending;
    this.toldAt = now;
    void this.background.setPending(pending).then((recorded) => {
      if (!recorded && this.said === pending) this.said = undefined;
    });
  }

  /** Starts the loop (it resumes any issue left sending). */
  start(): void {
    if (this.running) return;
    this.stopped = false;
    this.running = this.loop().catch((err: unknown) => {
      this.log.error(`sender stopped: ${err instanceof Error ? err.message : String(err)}`);
    });
    // The heartbeat goes on while a slow send is in flight.
    this.timer = setInterval(() => this.heartbeat(), Math.max(100, Math.floor(this.options.leaseTtlMs / 4)));
    this.timer.unref();
  }

  /** Tells an idle loop there is new work. */
  wake(): void {
    this.wakeUp?.();
  }

  /**
   * Stops the loop. Waits up to `graceMs` for the send in flight (a worker gets
   * about a second after SIGTERM); one still in flight then stays claimed and
   * becomes "unknown" for the next holder. Hands the lease back if nothing is
   * left claimed, so the next worker need not wait for it to expire.
   */
  async stop(graceMs = 700): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.wake();
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise<void>((r) => { timeout = setTimeout(r, graceMs); })]);
    clearTimeout(timeout);
    this.running = null;
    if (this.holdsLease && !this.inFlight && this.store.db.open) {
      this.store.db.prepare('DELETE FROM sender_lease WHERE owner = ?').run(this.owner);
      this.holdsLease = false;
    }
  }

  /** Resolves when no issue is sending any more (for tests and tools). */
  async idle(pollMs = 50): Promise<void> {
    while (this.store.db.prepare(`SELECT 1 FROM issues WHERE status = 'sending' LIMIT 1`).get()) {
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  private heartbeat(): void {
    if (!this.holdsLease || !this.store.db.open) return;
    const r = this.store.db.prepare('UPDATE sender_lease SET heartbeat_at = ? WHERE id = 1 AND owner = ?').run(this.now(), this.owner);
    if (r.changes !== 1) this.holdsLease = false;
  }

  /** Takes the lease if free, ours, or expired; a new holder turns claimed-but-unrecorded deliveries into "unknown". */
  private acquireLease(): boolean {
    const db = this.store.db;
    return db.transaction(() => {
      const now = this.now();
      const row = db.prepare('SELECT owner, heartbeat_at FROM sender_lease WHERE id = 1').get() as { owner: string; heartbeat_at: number } | undefined;
      if (row && row.owner !== this.owner && now - row.heartbeat_at < this.options.leaseTtlMs) return false;
      db.prepare(
        'INSERT INTO sender_lease (id, owner, heartbeat_at) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET owner = excluded.owner, heartbeat_at = excluded.heartbeat_at',
      ).run(this.owner, now);
      if (!row || row.owner !== this.owner) {
        const lost = db.prepare(
          `UPDATE deliveries SET status = 'unknown', last_error = 'claimed but no outcome recorded (the sender stopped mid-send)', updated_at = ?
           WHERE status = 'sending' AND (claim_owner IS NULL OR claim_owner <> ?)`,
        ).run(now, this.owner).changes;
        if (lost > 0) this.log.warn(`${lost} deliveries had no recorded outcome after a stop; marked unknown, never sent again`);
      }
      this.holdsLease = true;
      return true;
    }).immediate();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      if (!this.store.db.open) return;
      // Idle (nothing sending): no lease, no writes; just look again later or when woken.
      if (!this.store.db.prepare(`SELECT 1 FROM issues WHERE status = 'sending' LIMIT 1`).get()) {
        this.tell(false);
        await this.sleep(this.options.idlePollMs);
        continue;
      }
      this.tell(true);
      // While held, the timer keeps the lease alive and claimNext re-checks it in its transaction.
      if (!this.holdsLease && !this.acquireLease()) {
        await this.sleep(Math.max(50, Math.floor(this.options.leaseTtlMs / 2)));
        continue;
      }
      this.finishIssues();
      if (this.stopped) break;
      const claimed = this.claimNext();
      if (claimed === 'none') {
        const next = this.store.db.prepare(
          `SELECT min(d.next_attempt_at) AS t FROM deliveries d JOIN issues i ON i.id = d.issue_id WHERE i.status = 'sending' AND d.status = 'queued'`,
        ).get() as { t: number | null };
        const wait = next.t === null ? this.options.idlePollMs : Math.min(this.options.idlePollMs, Math.max(0, next.t - this.now()));
        await this.sleep(Math.max(10, wait));
        continue;
      }
      if (claimed === 'skipped') continue;
      await this.deliver(claimed);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = null;
        done();
      };
    });
  }

  /** Issues with nothing queued or in flight are sent. */
  private finishIssues(): void {
    this.store.db.prepare(
      `UPDATE issues SET status = 'sent', finished_at = ? WHERE status = 'sending'
       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.issue_id = issues.id AND d.status IN ('queued','sending'))`,
    ).run(this.now());
  }

  private claimNext(): Claimed | 'none' | 'skipped' {
    const db = this.store.db;
    return db.transaction((): Claimed | 'none' | 'skipped' => {
      const now = this.now();
      const lease = db.prepare('SELECT owner FROM sender_lease WHERE id = 1').get() as { owner: string } | undefined;
      if (lease?.owner !== this.owner) {
        this.holdsLease = false;
        return 'none';
      }
      const d = db.prepare(
        `SELECT d.issue_id, d.subscriber_id FROM deliveries d JOIN issues i ON i.id = d.issue_id
         WHERE i.status = 'sending' AND d.status = 'queued' AND d.next_attempt_at <= ?
         ORDER BY i.send_started_at, d.next_attempt_at, d.rowid LIMIT 1`,
      ).get(now) as { issue_id: string; subscriber_id: string } | undefined;
      if (!d) return 'none';
      const subscriber = this.store.subscriberById(d.subscriber_id);
      // The last check before the mail goes: still confirmed, not suppressed.
      const reason = !subscriber ? 'subscriber erased'
        : subscriber.status !== 'confirmed' ? `subscriber ${subscriber.status}`
        : this.store.suppression(subscriber.email) ? 'address suppressed' : null;
      if (reason || !subscriber) {
        db.prepare(`UPDATE deliveries SET status = 'skipped', last_error = ?, updated_at = ? WHERE issue_id = ? AND subscriber_id = ? AND status = 'queued'`)
          .run(reason, now, d.issue_id, d.subscriber_id);
        return 'skipped';
      }
      const r = db.prepare(
        `UPDATE deliveries SET status = 'sending', attempts = attempts + 1, claim_owner = ?, claimed_at = ?, updated_at = ?
         WHERE issue_id = ? AND subscriber_id = ? AND status = 'queued'`,
      ).run(this.owner, now, now, d.issue_id, d.subscriber_id);
      if (r.changes !== 1) return 'skipped';
      this.inFlight = true;
      return { issue: this.store.issue(d.issue_id)!, subscriber };
    }).immediate();
  }

  private async deliver({ issue, subscriber }: Claimed): Promise<void> {
    let result: MailResult | 'threw';
    try {
      result = await this.mail.send(this.compose(issue, subscriber));
    } catch (err) {
      this.log.error(`mail.send threw: ${err instanceof Error ? err.message : String(err)}`);
      result = 'threw';
    }
    try {
      this.record(issue.id, subscriber.id, result);
    } finally {
      this.inFlight = false;
    }
  }

  private record(issueId: string, subscriberId: string, result: MailResult | 'threw'): void {
    const db = this.store.db;
    if (!db.open) return; // closed under us: the row stays "sending" and becomes "unknown"
    db.transaction(() => {
      const now = this.now();
      const where = `WHERE issue_id = ? AND subscriber_id = ? AND status = 'sending' AND claim_owner = ?`;
      const key = [issueId, subscriberId, this.owner] as const;
      if (result === 'threw') {
        db.prepare(`UPDATE deliveries SET status = 'unknown', last_error = 'mail.send threw', updated_at = ? ${where}`).run(now, ...key);
      } else if (result.status === 'sent') {
        db.prepare(`UPDATE deliveries SET status = 'sent', message_id = ?, last_error = NULL, updated_at = ? ${where}`).run(result.messageId, now, ...key);
      } else if (result.status === 'failed') {
        const r = db.prepare(`UPDATE deliveries SET status = 'failed', last_error = ?, updated_at = ? ${where}`).run(`${result.smtpCode ?? ''} ${result.reason}`.trim(), now, ...key);
        if (r.changes === 1) this.store.markBounced(subscriberId, now);
      } else {
        const row = db.prepare(`SELECT attempts FROM deliveries ${where}`).get(...key) as { attempts: number } | undefined;
        if (!row) return;
        const why = `${result.status}: ${result.reason}`;
        if (row.attempts >= this.options.maxAttempts) {
          db.prepare(`UPDATE deliveries SET status = 'failed', last_error = ?, updated_at = ? ${where}`).run(`gave up after ${row.attempts} tries; ${why}`, now, ...key);
        } else {
          const backoff = Math.min(3_600_000, this.options.baseBackoffMs * 4 ** (row.attempts - 1));
          db.prepare(`UPDATE deliveries SET status = 'queued', next_attempt_at = ?, claim_owner = NULL, last_error = ?, updated_at = ? ${where}`)
            .run(now + backoff, why, now, ...key);
        }
      }
    }).immediate();
  }
}
