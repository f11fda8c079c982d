// Creating, changing and deleting tenants: the database rows, the folder on
// disk, the default domain and the starter release, kept in step.
import { actorId, type ActorRef } from '../model/actor.js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Config } from '../config.js';
import type { HttpsOptions, Store, TenantRecord, Network } from '../db/store.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DataPaths } from '../paths.js';
import type { ReleaseManager } from '../releases/release-manager.js';
import { copyStarterSite } from '../releases/starter-site.js';
import { newDeployId } from '../auth/token-hash.js';
import { fsyncFolders, syncTree } from '../disk/durable.js';
import type { DomainMap } from './domain-map.js';
import { checkDomainClaim } from '../model/domain-name.js';
import type { LimitsPatch } from '../model/limits.js';
import { isValidTenantId } from '../model/tenant-id.js';
import type { SiteRegistry } from '../static/site-registry.js';

/**
 * Lifecycle steps other subsystems attach to (Unix users, git repositories,
 * workers). `onTenantCreated` runs before the starter release goes live; a
 * throw there undoes the creation. `onTenantDeleting` runs before the folder goes.
 */
export interface TenantLifecycleHooks {
  onTenantCreated?(tenant: TenantRecord): Promise<void>;
  onTenantDeleting?(tenantId: string): Promise<void>;
  /** After its rows (domains, tokens, certificates) are gone. */
  onTenantDeleted?(tenantId: string): void;
  /** Settings (limits, network, branch) changed: e.g. restart the worker with new limits. */
  onTenantChanged?(tenant: TenantRecord): Promise<void>;
}

export interface TenantPatch {
  limits?: LimitsPatch;
  network?: Network;
  deployBranch?: string;
  keepReleases?: number;
  https?: Partial<HttpsOptions>;
}

export interface CreateTenantInput {
  id: string;
  domains?: string[];
  limits?: LimitsPatch;
  network?: Network;
}

export class TenantService {
  private readonly hooks: TenantLifecycleHooks[] = [];

  constructor(
    private readonly config: Config,
    private readonly paths: DataPaths,
    private readonly store: Store,
    private readonly domainMap: DomainMap,
    private readonly releases: ReleaseManager,
    private readonly sites: SiteRegistry,
    private readonly log: Logger,
  ) {}

  addHooks(h: TenantLifecycleHooks): void {
    this.hooks.push(h);
  }

  defaultDomain(id: string): string {
    return `${id}.${this.config.baseDomain}`;
  }

  /** The public URL of a tenant's default domain. */
  /** The port the listener really got (differs from the setting when that is 0). */
  private listeningPort: number | undefined;

  setListeningPort(port: number): void {
    this.listeningPort = port;
  }

  /** The HTTP port visitors reach (the listener's real port once it listens). */
  httpPort(): number {
    return this.listeningPort ?? this.config.port;
  }

  urlOf(id: string): string {
    const actual = this.httpPort();
    const port = actual === 80 ? '' : `:${actual}`;
    return `http://${this.defaultDomain(id)}${port}/`;
  }

  /** The HTTPS listener's real port, when the platform serves HTTPS. */
  private httpsListeningPort: number | undefined;

  setHttpsListeningPort(port: number | undefined): void {
    this.httpsListeningPort = port;
  }

  /**
   * The URL links in mail should use (plugins' siteUrl): the default domain
   * over HTTPS when the platform serves HTTPS (RFC 8058 one-click unsubscribe
   * needs an https List-Unsubscribe), else over HTTP.
   */
  linkUrlOf(id: string): string {
    const https = this.httpsListeningPort;
    if (https === undefined) return this.urlOf(id);
    return `https://${this.defaultDomain(id)}${https === 443 ? '' : `:${https}`}/`;
  }

  async create(input: CreateTenantInput, actor: ActorRef): Promise<TenantRecord> {
    if (!isValidTenantId(input.id)) throw new AppError('invalid_tenant_id');
    const id = input.id;
    // Given by the admin: verified at once, wildcards allowed; the platform's own names refused.
    const extra = (input.domains ?? []).map((d) => {
      const c = checkDomainClaim(d, { platformHost: this.config.platformHost, baseDomain: this.config.baseDomain });
      if (!c.ok) throw new AppError(c.reason === 'reserved' ? 'domain_reserved' : 'invalid_domain', c.message);
      return c.domain;
    });
    const domains = [...new Set([this.defaultDomain(id), ...extra])];
    if (this.store.tenants.get(id)) throw new AppError('tenant_exists', `A tenant with the id "${id}" already exists.`);
    for (const d of domains) {
      const owner = this.store.domains.verified(d);
      if (owner) throw new AppError('domain_taken', `The domain ${d} belongs to another tenant.`);
    }
    if (fs.existsSync(this.paths.tenant(id))) {
      // A folder without a row: left by a crash during an earlier create or delete.
      fs.rmSync(this.paths.tenant(id), { recursive: true, force: true });
    }

    this.store.transaction(() => {
      this.store.tenants.insert({ id, limits: input.limits, network: input.network });
      domains.forEach((domain, i) =>
        this.store.domains.insert({
          domain,
          tenantId: id,
          verified: true,
          verificationToken: crypto.randomBytes(16).toString('hex'),
          isDefault: i === 0,
        }),
      );
    });
    try {
      for (const sub of [this.paths.releases(id), this.paths.tenantData(id), this.paths.logs(id)]) {
        fs.mkdirSync(sub, { recursive: true, mode: 0o750 });
      }
      const tenant = this.store.tenants.get(id)!;
      for (const h of this.hooks) await h.onTenantCreated?.(tenant);
      await this.installStarter(id, actor);
    } catch (err) {
      this.log.error('tenant creation failed; undoing', { tenant: id, err });
      await this.delete(id, 'system').catch(() => {});
      throw err;
    }
    this.domainMap.rebuild();
    this.store.audit.record({ actor, action: 'tenant.create', tenantId: id, detail: { domains } });
    this.log.info('tenant created', { tenant: id, url: this.urlOf(id) });
    return this.store.tenants.get(id)!;
  }

  private async installStarter(id: string, actor: ActorRef): Promise<void> {
    const deployId = newDeployId();
    this.store.deploys.insert({ id: deployId, tenantId: id, source: 'starter', message: 'Starter site', actor: actorId(actor) });
    const dir = this.paths.release(id, deployId);
    const stats = copyStarterSite(dir, { tenant: id, url: this.urlOf(id) });
    // On disk before it goes live, with the names of the tenant's new folders
    // (their parents only: data/ belongs to the tenant's user by now).
    await syncTree(dir);
    await fsyncFolders([this.paths.tenantsRoot, this.paths.tenant(id), this.paths.releases(id)]);
    this.store.deploys.markReady(deployId, stats);
    await this.releases.activateRelease(id, deployId);
  }

  get(id: string): TenantRecord {
    const t = this.store.tenants.get(id);
    if (!t) throw new AppError('tenant_not_found', `No tenant with the id "${id}".`);
    return t;
  }

  async update(id: string, patch: TenantPatch, actor: ActorRef): Promise<TenantRecord> {
    this.get(id);
    this.store.tenants.update(id, patch);
    // The HTTPS options travel with each route of the domain map.
    if (patch.https) this.domainMap.rebuild();
    this.store.audit.record({ actor, action: 'tenant.update', tenantId: id, detail: { ...patch } });
    const t = this.get(id);
    for (const h of this.hooks) await h.onTenantChanged?.(t);
    return t;
  }

  async delete(id: string, actor: ActorRef): Promise<void> {
    for (const h of this.hooks) await h.onTenantDeleting?.(id);
    this.sites.forget(id);
    this.store.tenants.delete(id);
    fs.rmSync(this.paths.tenant(id), { recursive: true, force: true });
    this.domainMap.rebuild();
    for (const h of this.hooks) h.onTenantDeleted?.(id);
    this.store.audit.record({ actor, action: 'tenant.delete', tenantId: id });
    this.log.info('tenant deleted', { tenant: id });
  }
}
