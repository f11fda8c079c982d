// The newsletter's state for one tenant: its own SQLite file in the plugin's
// data folder (WAL, synchronous=FULL so that a committed claim or outcome is on
// disk before the next step), with numbered migrations.
import crypto from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';

export type SubscriberStatus = 'pending' | 'confirmed' | 'unsubscribed' | 'bounced';
export const SUBSCRIBER_STATUSES: readonly SubscriberStatus[] = ['pending', 'confirmed', 'unsubscribed', 'bounced'];
export type SuppressionReason = 'unsubscribed' | 'bounced' | 'erased';
export type IssueStatus = 'draft' | 'sending' | 'sent';
/** "sending" = claimed: the mail may be on its way; after a crash it becomes "unknown". */
export type DeliveryStatus = 'queued' | 'sending' | 'sent' | 'failed' | 'unknown' | 'skipped';

export interface Subscriber {
  readonly id: string;
  readonly email: string;
  readonly name: string | null;
  readonly status: SubscriberStatus;
  readonly created_at: number;
  readonly confirmed_at: number | null;
  readonly confirm_nonce: string | null;
  readonly confirm_expires_at: number | null;
  readonly last_confirm_mail_at: number | null;
  readonly unsubscribe_nonce: string;
}

export interface Issue {
  readonly id: string;
  readonly subject: string;
  readonly html: string;
  readonly text: string | null;
  readonly status: IssueStatus;
  readonly created_at: number;
  readonly send_started_at: number | null;
  readonly finished_at: number | null;
}

export interface Delivery {
  readonly issue_id: string;
  readonly subscriber_id: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly next_attempt_at: number;
}

export interface IssueCounts {
  queued: number;
  sent: number;
  failed: number;
  unknown: number;
  skipped: number;
}

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE subscribers (
     id TEXT PRIMARY KEY,
     email TEXT NOT NULL UNIQUE,
     name TEXT,
     status TEXT NOT NULL CHECK (status IN ('pending','confirmed','unsubscribed','bounced')),
     created_at INTEGER NOT NULL,
     confirmed_at INTEGER,
     confirm_nonce TEXT,
     confirm_expires_at INTEGER,
     last_confirm_mail_at INTEGER,
     unsubscribe_nonce TEXT NOT NULL
   );
   CREATE INDEX subscribers_status ON subscribers(status);
   CREATE TABLE suppression (
     hash TEXT PRIMARY KEY,
     reason TEXT NOT NULL CHECK (reason IN ('unsubscribed','bounced','erased')),
     created_at INTEGER NOT NULL
   );
   CREATE TABLE confirm_mail_log (at INTEGER NOT NULL);
   CREATE INDEX confirm_mail_log_at ON confirm_mail_log(at);
   CREATE TABLE issues (
     id TEXT PRIMARY KEY,
     subject TEXT NOT NULL,
     html TEXT NOT NULL,
     text TEXT,
     status TEXT NOT NULL CHECK (status IN ('draft','sending','sent')),
     created_at INTEGER NOT NULL,
     send_started_at INTEGER,
     finished_at INTEGER
   );
   CREATE TABLE deliveries (
     issue_id TEXT NOT NULL REFERENCES issues(id),
     subscriber_id TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('queued','sending','sent','failed','unknown','skipped')),
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL DEFAULT 0,
     claim_owner TEXT,
     claimed_at INTEGER,
     message_id TEXT,
     last_error TEXT,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (issue_id, subscriber_id)
   );
   CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
   CREATE TABLE sender_lease (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     owner TEXT NOT NULL,
     heartbeat_at INTEGER NOT NULL
   );`,
];

export const newId = (): string => crypto.randomBytes(12).toString('base64url');

export class NewsletterStore {
  readonly db: Database.Database;

  constructor(
    dataDir: string,
    /** Keyed hash of a normalised address, for the suppression list (no address kept there). */
    private readonly hashKey: Buffer,
  ) {
    this.db = new Database(path.join(dataDir, 'newsletter.sqlite3'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      }).immediate();
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  addressHash(email: string): string {
    return crypto.createHmac('sha256', this.hashKey).update(email).digest('base64url');
  }

  // --- subscribers ---

  subscriberById(id: string): Subscriber | undefined {
    return this.db.prepare('SELECT * FROM subscribers WHERE id = ?').get(id) as Subscriber | undefined;
  }

  subscriberByEmail(email: string): Subscriber | undefined {
    return this.db.prepare('SELECT * FROM subscribers WHERE email = ?').get(email) as Subscriber | undefined;
  }

  listSubscribers(status?: SubscriberStatus): Subscriber[] {
    return (status
      ? this.db.prepare('SELECT * FROM subscribers WHERE status = ? ORDER BY created_at, rowid').all(status)
      : this.db.prepare('SELECT * FROM subscribers ORDER BY created_at, rowid').all()) as Subscriber[];
  }

  suppression(email: string): SuppressionReason | undefined {
    const row = this.db.prepare('SELECT reason FROM suppression WHERE hash = ?').get(this.addressHash(email)) as { reason: SuppressionReason } | undefined;
    return row?.reason;
  }

  suppress(email: string, reason: SuppressionReason, now: number): void {
    // A bounce is never downgraded to a mere unsubscribe.
    this.db.prepare(
      `INSERT INTO suppression (hash, reason, created_at) VALUES (?, ?, ?)
       ON CONFLICT(hash) DO UPDATE SET reason = CASE WHEN suppression.reason = 'bounced' THEN 'bounced' ELSE excluded.reason END, created_at = excluded.created_at`,
    ).run(this.addressHash(email), reason, now);
  }

  /** Ends a suppression the address's owner lifted by confirming again (never a bounce). */
  liftSuppression(email: string): void {
    this.db.prepare(`DELETE FROM suppression WHERE hash = ? AND reason IN ('unsubscribed','erased')`).run(this.addressHash(email));
  }

  /**
   * Records a subscription request: a new pending subscriber, or a new confirm
   * nonce for a pending/unsubscribed one. Returns the subscriber and whether a
   * confirmation mail may go now (at most one per address per `mailIntervalMs`).
   */
  requestSubscription(email: string, name: string | null, now: number, confirmTtlMs: number, mailIntervalMs: number):
    { subscriber: Subscriber; mayMail: boolean } | null {
    return this.db.transaction(() => {
      const existing = this.subscriberByEmail(email);
      if (existing && (existing.status === 'confirmed' || existing.status === 'bounced')) return null;
      const mayMail = !existing?.last_confirm_mail_at || now - existing.last_confirm_mail_at >= mailIntervalMs;
      if (!existing) {
        const id = newId();
        this.db.prepare(
          `INSERT INTO subscribers (id, email, name, status, created_at, confirm_nonce, confirm_expires_at, last_confirm_mail_at, unsubscribe_nonce)
           VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?)`,
        ).run(id, email, name, now, newId(), now + confirmTtlMs, now, newId());
      } else if (mayMail) {
        // A fresh link (the older one stops working); an unsubscribed reader stays out until they confirm.
        this.db.prepare(
          `UPDATE subscribers SET confirm_nonce = ?, confirm_expires_at = ?, last_confirm_mail_at = ?, name = COALESCE(?, name) WHERE id = ?`,
        ).run(newId(), now + confirmTtlMs, now, name, existing.id);
      }
      return { subscriber: this.subscriberByEmail(email)!, mayMail };
    }).immediate();
  }

  /** A confirmation mail that did not go (deferred, refused) does not count against the address's daily one. */
  forgetConfirmMail(id: string, at: number): void {
    this.db.prepare('UPDATE subscribers SET last_confirm_mail_at = NULL WHERE id = ? AND last_confirm_mail_at = ?').run(id, at);
  }

  confirm(id: string, now: number): boolean {
    return this.db.transaction(() => {
      const s = this.subscriberById(id);
      if (!s || s.status === 'bounced' || s.status === 'confirmed') return s?.status === 'confirmed';
      this.db.prepare(
        `UPDATE subscribers SET status = 'confirmed', confirmed_at = ?, confirm_nonce = NULL, confirm_expires_at = NULL WHERE id = ?`,
      ).run(now, id);
      this.liftSuppression(s.email);
      return true;
    }).immediate();
  }

  unsubscribe(id: string, now: number): boolean {
    return this.db.transaction(() => {
      const s = this.subscriberById(id);
      if (!s) return false;
      if (s.status !== 'bounced') {
        this.db.prepare(`UPDATE subscribers SET status = 'unsubscribed', confirm_nonce = NULL, confirm_expires_at = NULL WHERE id = ?`).run(id);
      }
      this.suppress(s.email, s.status === 'bounced' ? 'bounced' : 'unsubscribed', now);
      return true;
    }).immediate();
  }

  markBounced(id: string, now: number): void {
    this.db.transaction(() => {
      const s = this.subscriberById(id);
      if (!s) return;
      this.db.prepare(`UPDATE subscribers SET status = 'bounced' WHERE id = ?`).run(id);
      this.suppress(s.email, 'bounced', now);
    }).immediate();
  }

  /** Erases a subscriber; a keyed hash of the address stays in the suppression list. */
  erase(id: string, now: number): boolean {
    return this.db.transaction(() => {
      const s = this.subscriberById(id);
      if (!s) return false;
      this.suppress(s.email, 'erased', now);
      this.db.prepare('DELETE FROM subscribers WHERE id = ?').run(id);
      // An SMTP answer may quote the address: keep the delivery rows (for the counts), not their text.
      this.db.prepare('UPDATE deliveries SET last_error = NULL, message_id = NULL WHERE subscriber_id = ?').run(id);
      return true;
    }).immediate();
  }

  /** Adds confirmed subscribers moved from another list; suppressed, known and invalid addresses are skipped. */
  importConfirmed(rows: readonly { email: string | null; name: string | null }[], now: number): { added: number; skipped: number } {
    return this.db.transaction(() => {
      let added = 0;
      let skipped = 0;
      const insert = this.db.prepare(
        `INSERT INTO subscribers (id, email, name, status, created_at, confirmed_at, unsubscribe_nonce)
         VALUES (?, ?, ?, 'confirmed', ?, ?, ?) ON CONFLICT(email) DO NOTHING`,
      );
      for (const row of rows) {
        if (!row.email || this.suppression(row.email)) { skipped++; continue; }
        const r = insert.run(newId(), row.email, row.name, now, now, newId());
        if (r.changes === 1) added++; else skipped++;
      }
      return { added, skipped };
    }).immediate();
  }

  /** Deletes pending subscriptions whose confirmation link has expired. */
  expirePending(now: number): number {
    return this.db.prepare(`DELETE FROM subscribers WHERE status = 'pending' AND confirm_expires_at <= ?`).run(now).changes;
  }

  /** Confirmation mails sent for this tenant since `since` (the per-tenant cap), logging one more if under `cap`. */
  takeConfirmMailSlot(now: number, windowMs: number, cap: number): boolean {
    return this.db.transaction(() => {
      this.db.prepare('DELETE FROM confirm_mail_log WHERE at <= ?').run(now - windowMs);
      const { n } = this.db.prepare('SELECT count(*) AS n FROM confirm_mail_log').get() as { n: number };
      if (n >= cap) return false;
      this.db.prepare('INSERT INTO confirm_mail_log (at) VALUES (?)').run(now);
      return true;
    }).immediate();
  }

  // --- issues ---

  createIssue(subject: string, html: string, text: string | null, now: number): Issue {
    const id = newId();
    this.db.prepare(`INSERT INTO issues (id, subject, html, text, status, created_at) VALUES (?, ?, ?, ?, 'draft', ?)`).run(id, subject, html, text, now);
    return this.issue(id)!;
  }

  issue(id: string): Issue | undefined {
    return this.db.prepare('SELECT * FROM issues WHERE id = ?').get(id) as Issue | undefined;
  }

  listIssues(): Issue[] {
    return this.db.prepare('SELECT * FROM issues ORDER BY created_at, rowid').all() as Issue[];
  }

  /** Moves a draft to sending with one queued delivery per confirmed subscriber; false if it was not a draft. */
  startSending(id: string, now: number): boolean {
    return this.db.transaction(() => {
      const r = this.db.prepare(`UPDATE issues SET status = 'sending', send_started_at = ? WHERE id = ? AND status = 'draft'`).run(now, id);
      if (r.changes !== 1) return false;
      this.db.prepare(
        `INSERT INTO deliveries (issue_id, subscriber_id, status, updated_at)
         SELECT ?, id, 'queued', ? FROM subscribers WHERE status = 'confirmed' ORDER BY created_at, rowid`,
      ).run(id, now);
      return true;
    }).immediate();
  }

  counts(issueId: string): IssueCounts {
    const counts: IssueCounts = { queued: 0, sent: 0, failed: 0, unknown: 0, skipped: 0 };
    const rows = this.db.prepare('SELECT status, count(*) AS n FROM deliveries WHERE issue_id = ? GROUP BY status').all(issueId) as { status: DeliveryStatus; n: number }[];
    for (const { status, n } of rows) {
      // In flight counts as queued: it has no outcome yet.
      counts[status === 'sending' ? 'queued' : status] += n;
    }
    return counts;
  }
}
