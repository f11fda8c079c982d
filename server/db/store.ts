// Typed queries over the platform database, one small section per table.
// Each statement is prepared on its first use and reused after. Nothing here
// knows about HTTP or policy: rows come back as stored (a tenant's limits are
// its overrides; model/limits.ts merges them over the defaults).
import { actorOf, type ActorRef } from '../model/actor.js';
import type { Statement } from 'better-sqlite3';
import type { Db } from './database.js';
import type { LimitsPatch } from '../model/limits.js';

export type Network = 'none' | 'all';

export interface TenantRecord {
  id: string;
  createdAt: string;
  /** Only the limits set for this tenant; effectiveLimits() gives the values in force. */
  limitOverrides: LimitsPatch;
  network: Network;
  deployBranch: string;
  keepReleases: number;
  liveDeployId: string | null;
  https: HttpsOptions;
}

/** Per tenant: send plain HTTP visitors to HTTPS; send Strict-Transport-Security over HTTPS. */
export interface HttpsOptions {
  redirect: boolean;
  hsts: boolean;
}

/** `to-apex`: www.<name> redirects to <name>; `to-www`: the reverse. */
export type DomainRedirect = 'none' | 'to-apex' | 'to-www';

/** One tenant's claim on a name; at most one claim per name is verified. */
export interface DomainRecord {
  /** Lower case, punycode; `*.name` for a wildcard. */
  domain: string;
  tenantId: string;
  verified: boolean;
  verificationToken: string;
  isDefault: boolean;
  createdAt: string;
  verifiedAt: string | null;
  redirect: DomainRedirect;
}

export type CertificateStatus = 'pending' | 'issued' | 'uploaded' | 'failed';

/** The certificate state of a verified domain (its PEM files live under <data>/certs/). */
export interface CertificateRecord {
  domain: string;
  tenantId: string;
  status: CertificateStatus;
  notBefore: string | null;
  notAfter: string | null;
  /** Why the last issuance failed (kept while an older certificate still serves). */
  error: string | null;
  /** Failed attempts in a row, for the back-off. */
  failures: number;
  /** When to try (or renew) next; null: nothing planned. */
  retryAt: string | null;
  updatedAt: string;
}

export type Scope = 'deploy' | 'read' | 'plugins';
export const ALL_SCOPES: readonly Scope[] = ['deploy', 'read', 'plugins'];

export interface TokenRecord {
  id: string;
  tenantId: string;
  name: string;
  scopes: Scope[];
  createdAt: string;
  lastUsedAt: string | null;
}

/** A dashboard session row; `tokenHash` is the keyed hash of the token it was opened with. */
export interface SessionRecord {
  idHash: string;
  tokenHash: string;
  csrfToken: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
}

export type DeployStatus = 'staging' | 'ready' | 'failed' | 'pruned';
export interface DeployRecord {
  id: string;
  tenantId: string;
  createdAt: string;
  source: string;
  message: string | null;
  actor: string;
  status: DeployStatus;
  files: number;
  bytes: number;
  error: string | null;
}

export interface AuditEntry {
  id: number;
  at: string;
  /** `admin`, `token:<id>`, `anonymous`, or a platform job (`acme`, `system`). */
  actor: string;
  /** The token's name, when a token acted. */
  actorName: string | null;
  /** The client's address, when a request made the change. */
  address: string | null;
  action: string;
  tenantId: string | null;
  outcome: 'success' | 'failure';
  /** The error code of a failure. */
  code: string | null;
  detail: Record<string, unknown>;
}

export interface AuditInput {
  actor: ActorRef;
  action: string;
  tenantId?: string | null;
  outcome?: 'success' | 'failure';
  code?: string | null;
  detail?: Record<string, unknown>;
}

function toAudit(r: Row): AuditEntry {
  return {
    id: Number(r.id),
    at: String(r.at),
    actor: String(r.actor),
    actorName: (r.actor_name as string | null) ?? null,
    address: (r.address as string | null) ?? null,
    action: String(r.action),
    tenantId: (r.tenant_id as string | null) ?? null,
    outcome: r.outcome === 'failure' ? 'failure' : 'success',
    code: (r.code as string | null) ?? null,
    detail: JSON.parse(String(r.detail)) as Record<string, unknown>,
  };
}

type Row = Record<string, unknown>;
const now = () => new Date().toISOString();

function toTenant(r: Row): TenantRecord {
  return {
    id: String(r.id),
    createdAt: String(r.created_at),
    limitOverrides: JSON.parse(String(r.limits_json)) as LimitsPatch,
    network: r.network as Network,
    deployBranch: String(r.deploy_branch),
    keepReleases: Number(r.keep_releases),
    liveDeployId: (r.live_deploy_id as string | null) ?? null,
    https: { redirect: r.https_redirect === 1, hsts: r.hsts === 1 },
  };
}
function toDomain(r: Row): DomainRecord {
  return {
    domain: String(r.domain),
    tenantId: String(r.tenant_id),
    verified: r.verified === 1,
    verificationToken: String(r.verification_token),
    isDefault: r.is_default === 1,
    createdAt: String(r.created_at),
    verifiedAt: (r.verified_at as string | null) ?? null,
    redirect: r.redirect as DomainRedirect,
  };
}
function toCertificate(r: Row): CertificateRecord {
  return {
    domain: String(r.domain),
    tenantId: String(r.tenant_id),
    status: r.status as CertificateStatus,
    notBefore: (r.not_before as string | null) ?? null,
    notAfter: (r.not_after as string | null) ?? null,
    error: (r.error as string | null) ?? null,
    failures: Number(r.failures),
    retryAt: (r.retry_at as string | null) ?? null,
    updatedAt: String(r.updated_at),
  };
}
function toToken(r: Row): TokenRecord {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    name: String(r.name),
    scopes: String(r.scopes).split(',').filter(Boolean) as Scope[],
    createdAt: String(r.created_at),
    lastUsedAt: (r.last_used_at as string | null) ?? null,
  };
}
function toDeploy(r: Row): DeployRecord {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    createdAt: String(r.created_at),
    source: String(r.source),
    message: (r.message as string | null) ?? null,
    actor: String(r.actor),
    status: r.status as DeployStatus,
    files: Number(r.files),
    bytes: Number(r.bytes),
    error: (r.error as string | null) ?? null,
  };
}

/** A plugin a tenant has enabled (or had: `enabled` false keeps its config). */
export interface TenantPluginRecord {
  readonly tenantId: string;
  readonly name: string;
  readonly config: unknown;
  readonly enabled: boolean;
  readonly updatedAt: string;
}

function pluginRow(r: Row): TenantPluginRecord {
  return { tenantId: String(r.tenant_id), name: String(r.name), config: JSON.parse(String(r.config_json)) as unknown, enabled: Number(r.enabled) === 1, updatedAt: String(r.updated_at) };
}

export class Store {
  /** Prepared statements by their SQL text (a fixed set: every SQL string here is a literal). */
  private readonly statements = new Map<string, Statement>();

  constructor(readonly db: Db) {}

  // Reuse is safe: the store only calls get/all/run, which finish before they
  // return (only an unfinished iterate() leaves a statement busy), and the
  // schema is migrated by openDatabase() before any store exists.
  private prepare(sql: string): Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  // ---- tenants
  readonly tenants = {
    get: (id: string): TenantRecord | undefined => {
      const r = this.prepare('SELECT * FROM tenants WHERE id = ?').get(id) as Row | undefined;
      return r && toTenant(r);
    },
    list: (): TenantRecord[] => (this.prepare('SELECT * FROM tenants ORDER BY id').all() as Row[]).map(toTenant),
    insert: (t: { id: string; limits?: LimitsPatch; network?: Network }): void => {
      this
        .prepare('INSERT INTO tenants (id, created_at, limits_json, network) VALUES (?, ?, ?, ?)')
        .run(t.id, now(), JSON.stringify(t.limits ?? {}), t.network ?? 'none');
    },
    update: (
      id: string,
      patch: { limits?: LimitsPatch; network?: Network; deployBranch?: string; keepReleases?: number; https?: Partial<HttpsOptions> },
    ): void => {
      const cur = this.tenants.get(id);
      if (!cur) return;
      const https = { ...cur.https, ...(patch.https ?? {}) };
      this
        .prepare('UPDATE tenants SET limits_json = ?, network = ?, deploy_branch = ?, keep_releases = ?, https_redirect = ?, hsts = ? WHERE id = ?')
        .run(
          JSON.stringify({ ...cur.limitOverrides, ...(patch.limits ?? {}) }),
          patch.network ?? cur.network,
          patch.deployBranch ?? cur.deployBranch,
          patch.keepReleases ?? cur.keepReleases,
          https.redirect ? 1 : 0,
          https.hsts ? 1 : 0,
          id,
        );
    },
    setLive: (id: string, deployId: string | null): void => {
      this.prepare('UPDATE tenants SET live_deploy_id = ? WHERE id = ?').run(deployId, id);
    },
    delete: (id: string): void => {
      this.prepare('DELETE FROM tenants WHERE id = ?').run(id);
    },
  };

  // ---- domains (claims: one row per name and tenant)
  readonly domains = {
    /** One tenant's claim on a name. */
    claim: (domain: string, tenantId: string): DomainRecord | undefined => {
      const r = this.prepare('SELECT * FROM domains WHERE domain = ? AND tenant_id = ?').get(domain, tenantId) as Row | undefined;
      return r && toDomain(r);
    },
    /** The verified claim on a name, if any (at most one exists). */
    verified: (domain: string): DomainRecord | undefined => {
      const r = this.prepare('SELECT * FROM domains WHERE domain = ? AND verified = 1').get(domain) as Row | undefined;
      return r && toDomain(r);
    },
    forTenant: (tenantId: string): DomainRecord[] =>
      (this.prepare('SELECT * FROM domains WHERE tenant_id = ? ORDER BY is_default DESC, domain').all(tenantId) as Row[]).map(
        toDomain,
      ),
    allVerified: (): DomainRecord[] =>
      (this.prepare('SELECT * FROM domains WHERE verified = 1').all() as Row[]).map(toDomain),
    allPending: (): DomainRecord[] =>
      (this.prepare('SELECT * FROM domains WHERE verified = 0').all() as Row[]).map(toDomain),
    insert: (d: Omit<DomainRecord, 'createdAt' | 'verifiedAt' | 'redirect'> & { redirect?: DomainRedirect }): void => {
      this
        .prepare(
          'INSERT INTO domains (domain, tenant_id, verified, verification_token, is_default, created_at, verified_at, redirect) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        )
        .run(d.domain, d.tenantId, d.verified ? 1 : 0, d.verificationToken, d.isDefault ? 1 : 0, now(), d.verified ? now() : null, d.redirect ?? 'none');
    },
    /** Throws (unique index) when another tenant holds the name verified. */
    setVerified: (domain: string, tenantId: string): void => {
      this.prepare('UPDATE domains SET verified = 1, verified_at = ? WHERE domain = ? AND tenant_id = ?').run(now(), domain, tenantId);
    },
    setRedirect: (domain: string, tenantId: string, redirect: DomainRedirect): void => {
      this.prepare('UPDATE domains SET redirect = ? WHERE domain = ? AND tenant_id = ?').run(redirect, domain, tenantId);
    },
    delete: (domain: string, tenantId: string): boolean =>
      this.prepare('DELETE FROM domains WHERE domain = ? AND tenant_id = ?').run(domain, tenantId).changes > 0,
  };

  // ---- certificates (state only; the PEM files are under <data>/certs/)
  readonly certificates = {
    get: (domain: string): CertificateRecord | undefined => {
      const r = this.prepare('SELECT * FROM certificates WHERE domain = ?').get(domain) as Row | undefined;
      return r && toCertificate(r);
    },
    all: (): CertificateRecord[] => (this.prepare('SELECT * FROM certificates').all() as Row[]).map(toCertificate),
    forTenant: (tenantId: string): CertificateRecord[] =>
      (this.prepare('SELECT * FROM certificates WHERE tenant_id = ?').all(tenantId) as Row[]).map(toCertificate),
    put: (c: Omit<CertificateRecord, 'updatedAt'>): void => {
      this
        .prepare(
          `INSERT INTO certificates (domain, tenant_id, status, not_before, not_after, error, failures, retry_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(domain) DO UPDATE SET tenant_id = excluded.tenant_id, status = excluded.status, not_before = excluded.not_before,
             not_after = excluded.not_after, error = excluded.error, failures = excluded.failures, retry_at = excluded.retry_at, updated_at = excluded.updated_at`,
        )
        .run(c.domain, c.tenantId, c.status, c.notBefore, c.notAfter, c.error, c.failures, c.retryAt, now());
    },
    delete: (domain: string): void => {
      this.prepare('DELETE FROM certificates WHERE domain = ?').run(domain);
    },
  };

  // ---- tokens (only hashes are stored)
  readonly tokens = {
    insert: (t: { id: string; tenantId: string; name: string; hash: string; scopes: readonly Scope[] }): void => {
      this
        .prepare('INSERT INTO tokens (id, tenant_id, name, hash, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(t.id, t.tenantId, t.name, t.hash, t.scopes.join(','), now());
    },
    byHash: (hash: string): TokenRecord | undefined => {
      const r = this.prepare('SELECT * FROM tokens WHERE hash = ?').get(hash) as Row | undefined;
      return r && toToken(r);
    },
    forTenant: (tenantId: string): TokenRecord[] =>
      (this.prepare('SELECT * FROM tokens WHERE tenant_id = ? ORDER BY created_at').all(tenantId) as Row[]).map(toToken),
    touch: (id: string): void => {
      this.prepare('UPDATE tokens SET last_used_at = ? WHERE id = ?').run(now(), id);
    },
    delete: (tenantId: string, id: string): boolean =>
      this.prepare('DELETE FROM tokens WHERE tenant_id = ? AND id = ?').run(tenantId, id).changes > 0,
  };

  // ---- dashboard sessions (keyed hashes of the cookie value only)
  readonly sessions = {
    insert: (s: SessionRecord): void => {
      this
        .prepare('INSERT INTO dashboard_sessions (id_hash, token_hash, csrf_token, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(s.idHash, s.tokenHash, s.csrfToken, s.createdAt, s.lastSeenAt, s.expiresAt);
    },
    get: (idHash: string): SessionRecord | undefined => {
      const r = this.prepare('SELECT * FROM dashboard_sessions WHERE id_hash = ?').get(idHash) as Row | undefined;
      return (
        r && {
          idHash: String(r.id_hash),
          tokenHash: String(r.token_hash),
          csrfToken: String(r.csrf_token),
          createdAt: String(r.created_at),
          lastSeenAt: String(r.last_seen_at),
          expiresAt: String(r.expires_at),
        }
      );
    },
    touch: (idHash: string, at: string): void => {
      this.prepare('UPDATE dashboard_sessions SET last_seen_at = ? WHERE id_hash = ?').run(at, idHash);
    },
    delete: (idHash: string): boolean => this.prepare('DELETE FROM dashboard_sessions WHERE id_hash = ?').run(idHash).changes > 0,
    /** Sessions past their absolute end or idle since before `idleBefore`. */
    deleteStale: (nowIso: string, idleBefore: string): number =>
      this.prepare('DELETE FROM dashboard_sessions WHERE expires_at <= ? OR last_seen_at <= ?').run(nowIso, idleBefore).changes,
  };

  // ---- deploys
  readonly deploys = {
    get: (tenantId: string, id: string): DeployRecord | undefined => {
      const r = this.prepare('SELECT * FROM deploys WHERE tenant_id = ? AND id = ?').get(tenantId, id) as Row | undefined;
      return r && toDeploy(r);
    },
    /** Newest first. */
    forTenant: (tenantId: string): DeployRecord[] =>
      (
        this.prepare('SELECT * FROM deploys WHERE tenant_id = ? ORDER BY created_at DESC, rowid DESC').all(tenantId) as Row[]
      ).map(toDeploy),
    byStatus: (status: DeployStatus): DeployRecord[] =>
      (this.prepare('SELECT * FROM deploys WHERE status = ?').all(status) as Row[]).map(toDeploy),
    insert: (d: { id: string; tenantId: string; source: string; message: string | null; actor: string }): void => {
      this
        .prepare("INSERT INTO deploys (id, tenant_id, created_at, source, message, actor, status) VALUES (?, ?, ?, ?, ?, ?, 'staging')")
        .run(d.id, d.tenantId, now(), d.source, d.message, d.actor);
    },
    /** Counts of a release still being made live (so a crash mid-activation keeps them). */
    setStats: (id: string, stats: { files: number; bytes: number }): void => {
      this.prepare('UPDATE deploys SET files = ?, bytes = ? WHERE id = ?').run(stats.files, stats.bytes, id);
    },
    markReady: (id: string, stats: { files: number; bytes: number }): void => {
      this.prepare("UPDATE deploys SET status = 'ready', files = ?, bytes = ?, error = NULL WHERE id = ?").run(stats.files, stats.bytes, id);
    },
    markFailed: (id: string, error: string): void => {
      this.prepare("UPDATE deploys SET status = 'failed', error = ? WHERE id = ?").run(error, id);
    },
    markPruned: (id: string): void => {
      this.prepare("UPDATE deploys SET status = 'pruned' WHERE id = ?").run(id);
    },
  };

  // ---- tenant environment variables
  readonly env = {
    get: (tenantId: string): Record<string, string> => {
      const rows = this.prepare('SELECT key, value FROM tenant_env WHERE tenant_id = ? ORDER BY key').all(tenantId) as Row[];
      return Object.fromEntries(rows.map((r) => [String(r.key), String(r.value)]));
    },
    /** Replaces the whole set in one transaction. */
    replace: (tenantId: string, vars: Record<string, string>): void => {
      this.db.transaction(() => {
        this.prepare('DELETE FROM tenant_env WHERE tenant_id = ?').run(tenantId);
        const ins = this.prepare('INSERT INTO tenant_env (tenant_id, key, value) VALUES (?, ?, ?)');
        for (const [k, v] of Object.entries(vars)) ins.run(tenantId, k, v);
      })();
    },
  };

  // ---- plugins a tenant has enabled (table from the initial schema; rows stay when disabled: the config is kept)
  readonly plugins = {
    forTenant: (tenantId: string): TenantPluginRecord[] =>
      (this.prepare('SELECT * FROM tenant_plugins WHERE tenant_id = ? ORDER BY name').all(tenantId) as Row[]).map(pluginRow),
    get: (tenantId: string, name: string): TenantPluginRecord | undefined => {
      const row = this.prepare('SELECT * FROM tenant_plugins WHERE tenant_id = ? AND name = ?').get(tenantId, name) as Row | undefined;
      return row ? pluginRow(row) : undefined;
    },
    /** Enables (or reconfigures) a plugin; `config` is stored as JSON. */
    put: (tenantId: string, name: string, config: unknown, enabled = true): void => {
      this
        .prepare(
          `INSERT INTO tenant_plugins (tenant_id, name, config_json, enabled, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (tenant_id, name) DO UPDATE SET config_json = excluded.config_json, enabled = excluded.enabled, updated_at = excluded.updated_at`,
        )
        .run(tenantId, name, JSON.stringify(config), enabled ? 1 : 0, now());
    },
    /** Puts a row back exactly as it was (undo of a change whose worker failed to start); undefined deletes it. */
    restore: (tenantId: string, name: string, previous: TenantPluginRecord | undefined): void => {
      if (!previous) this.prepare('DELETE FROM tenant_plugins WHERE tenant_id = ? AND name = ?').run(tenantId, name);
      else
        this
          .prepare('UPDATE tenant_plugins SET config_json = ?, enabled = ?, updated_at = ? WHERE tenant_id = ? AND name = ?')
          .run(JSON.stringify(previous.config), previous.enabled ? 1 : 0, previous.updatedAt, tenantId, name);
    },
    /** Disables; its word about background work goes with it (enabled again, it says so anew). */
    disable: (tenantId: string, name: string): boolean =>
      this.prepare('UPDATE tenant_plugins SET enabled = 0, background_work = 0, updated_at = ? WHERE tenant_id = ? AND name = ? AND enabled = 1').run(now(), tenantId, name).changes > 0,
    /** Records an enabled plugin's word that it has (or no longer has) background work; false: not enabled. */
    setBackgroundWork: (tenantId: string, name: string, pending: boolean): boolean =>
      this.prepare('UPDATE tenant_plugins SET background_work = ? WHERE tenant_id = ? AND name = ? AND enabled = 1').run(pending ? 1 : 0, tenantId, name).changes > 0,
    /** Whether an enabled plugin of the tenant has background work pending. */
    hasBackgroundWork: (tenantId: string): boolean =>
      this.prepare('SELECT 1 FROM tenant_plugins WHERE tenant_id = ? AND enabled = 1 AND background_work = 1 LIMIT 1').get(tenantId) !== undefined,
    /** Tenants with an enabled plugin that has background work pending. */
    tenantsWithBackgroundWork: (): string[] =>
      (this.prepare('SELECT DISTINCT tenant_id FROM tenant_plugins WHERE enabled = 1 AND background_work = 1 ORDER BY tenant_id').all() as Row[]).map((r) => String(r.tenant_id)),
  };

  // ---- audit log
  readonly audit = {
    record: (e: AuditInput): void => {
      const who = actorOf(e.actor);
      this.prepare('INSERT INTO audit_log (at, actor, actor_name, address, action, tenant_id, outcome, code, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
        now(),
        who.id,
        who.name ?? null,
        who.address ?? null,
        e.action,
        e.tenantId ?? null,
        e.outcome ?? 'success',
        e.code ?? null,
        JSON.stringify(e.detail ?? {}),
      );
      if (who.trail) who.trail.rows++;
    },
    forTenant: (tenantId: string, limit = 100): AuditEntry[] =>
      (this.prepare('SELECT * FROM audit_log WHERE tenant_id = ? ORDER BY id DESC LIMIT ?').all(tenantId, limit) as Row[]).map(toAudit),
    /** Newest first; every tenant's when `tenantId` is undefined. */
    list: (o: { tenantId?: string; limit: number }): AuditEntry[] =>
      (o.tenantId === undefined
        ? (this.prepare('SELECT * FROM audit_log ORDER BY id DESC LIMIT ?').all(o.limit) as Row[])
        : (this.prepare('SELECT * FROM audit_log WHERE tenant_id = ? ORDER BY id DESC LIMIT ?').all(o.tenantId, o.limit) as Row[])
      ).map(toAudit),
    /** Removes rows written before `before` (ISO time); returns how many. */
    pruneBefore: (before: string): number => Number(this.prepare('DELETE FROM audit_log WHERE at < ?').run(before).changes),
  };

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}
