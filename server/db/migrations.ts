// Numbered schema migrations. Append only: never edit a migration that has shipped.
// The database's `user_version` records how many have run.

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE tenants (
        id             TEXT PRIMARY KEY,
        created_at     TEXT NOT NULL,
        limits_json    TEXT NOT NULL DEFAULT '{}',
        network        TEXT NOT NULL DEFAULT 'none' CHECK (network IN ('none', 'all')),
        deploy_branch  TEXT NOT NULL DEFAULT 'main',
        keep_releases  INTEGER NOT NULL DEFAULT 10,
        live_deploy_id TEXT
      );
      CREATE TABLE domains (
        domain             TEXT PRIMARY KEY,
        tenant_id          TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        verified           INTEGER NOT NULL DEFAULT 0,
        verification_token TEXT NOT NULL,
        is_default         INTEGER NOT NULL DEFAULT 0,
        created_at         TEXT NOT NULL
      );
      CREATE INDEX domains_tenant ON domains(tenant_id);
      CREATE TABLE tokens (
        id           TEXT PRIMARY KEY,
        tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name         TEXT NOT NULL,
        hash         TEXT NOT NULL UNIQUE,
        scopes       TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        last_used_at TEXT
      );
      CREATE INDEX tokens_tenant ON tokens(tenant_id);
      CREATE TABLE deploys (
        id         TEXT PRIMARY KEY,
        tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        source     TEXT NOT NULL,
        message    TEXT,
        actor      TEXT NOT NULL,
        status     TEXT NOT NULL CHECK (status IN ('staging', 'ready', 'failed', 'pruned')),
        files      INTEGER NOT NULL DEFAULT 0,
        bytes      INTEGER NOT NULL DEFAULT 0,
        error      TEXT
      );
      CREATE INDEX deploys_tenant ON deploys(tenant_id, created_at);
      CREATE TABLE tenant_env (
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        key       TEXT NOT NULL,
        value     TEXT NOT NULL,
        PRIMARY KEY (tenant_id, key)
      );
      CREATE TABLE tenant_plugins (
        tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name        TEXT NOT NULL,
        config_json TEXT NOT NULL DEFAULT '{}',
        enabled     INTEGER NOT NULL DEFAULT 1,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (tenant_id, name)
      );
      CREATE TABLE audit_log (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        at         TEXT NOT NULL,
        actor      TEXT NOT NULL,
        action     TEXT NOT NULL,
        tenant_id  TEXT,
        detail     TEXT NOT NULL DEFAULT '{}'
      );
      CREATE INDEX audit_tenant ON audit_log(tenant_id, id);
    `,
  },
  {
    version: 2,
    name: 'domain claims, tenant https options, certificates',
    // A domain row is one tenant's claim: several tenants may claim a name
    // while it is pending, at most one holds it verified (partial unique index).
    sql: `
      CREATE TABLE domains_v2 (
        domain             TEXT NOT NULL,
        tenant_id          TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        verified           INTEGER NOT NULL DEFAULT 0,
        verification_token TEXT NOT NULL,
        is_default         INTEGER NOT NULL DEFAULT 0,
        created_at         TEXT NOT NULL,
        verified_at        TEXT,
        redirect           TEXT NOT NULL DEFAULT 'none' CHECK (redirect IN ('none', 'to-apex', 'to-www')),
        PRIMARY KEY (domain, tenant_id)
      );
      INSERT INTO domains_v2 (domain, tenant_id, verified, verification_token, is_default, created_at, verified_at)
        SELECT domain, tenant_id, verified, verification_token, is_default, created_at, CASE WHEN verified = 1 THEN created_at END FROM domains;
      DROP TABLE domains;
      ALTER TABLE domains_v2 RENAME TO domains;
      CREATE INDEX domains_tenant ON domains(tenant_id);
      CREATE UNIQUE INDEX domains_verified_once ON domains(domain) WHERE verified = 1;
      ALTER TABLE tenants ADD COLUMN https_redirect INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE tenants ADD COLUMN hsts INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE certificates (
        domain      TEXT PRIMARY KEY,
        tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        status      TEXT NOT NULL CHECK (status IN ('pending', 'issued', 'uploaded', 'failed')),
        not_before  TEXT,
        not_after   TEXT,
        error       TEXT,
        failures    INTEGER NOT NULL DEFAULT 0,
        retry_at    TEXT,
        updated_at  TEXT NOT NULL
      );
      CREATE INDEX certificates_tenant ON certificates(tenant_id);
    `,
  },
  {
    version: 3,
    name: 'dashboard sessions',
    // A signed-in dashboard. The cookie's value is never stored, only its keyed
    // hash; the session names the token it was opened with by that token's hash,
    // so it resolves to the same principal and ends when the token is revoked.
    sql: `
      CREATE TABLE dashboard_sessions (
        id_hash      TEXT PRIMARY KEY,
        token_hash   TEXT NOT NULL,
        csrf_token   TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        expires_at   TEXT NOT NULL
      );
      CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions(expires_at);
    `,
  },
  {
    version: 4,
    name: 'audit trail: who (token name), from where, outcome',
    // Rows written before keep their values: outcome defaults to success,
    // the new columns stay empty where nothing was known.
    sql: `
      ALTER TABLE audit_log ADD COLUMN actor_name TEXT;
      ALTER TABLE audit_log ADD COLUMN address TEXT;
      ALTER TABLE audit_log ADD COLUMN outcome TEXT NOT NULL DEFAULT 'success' CHECK (outcome IN ('success', 'failure'));
      ALTER TABLE audit_log ADD COLUMN code TEXT;
      CREATE INDEX audit_at ON audit_log(at);
    `,
  },
  {
    version: 5,
    name: 'plugins: background work pending',
    // Set while a tenant's plugin has work to finish without requests (a
    // newsletter issue sending): the platform keeps that tenant's worker
    // running and starts it again after a restart.
    sql: `
      ALTER TABLE tenant_plugins ADD COLUMN background_work INTEGER NOT NULL DEFAULT 0;
    `,
  },
];
