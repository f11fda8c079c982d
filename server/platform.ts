// The platform's parts, built once and wired together. Everything that serves
// requests or runs commands receives this object instead of reaching for globals.
import fs from 'node:fs';
import type { Config } from './config.js';
import { openDatabase } from './db/database.js';
import { Store } from './db/store.js';
import { loadSecrets, type PlatformSecrets } from './auth/secrets.js';
import type { Logger } from './log.js';
import { DataPaths } from './paths.js';
import { DomainMap } from './tenants/domain-map.js';
import { SiteRegistry } from './site/site-registry.js';
import { ReleaseManager } from './releases/release-manager.js';
import { TenantService } from './tenants/tenant-service.js';
import { GitService } from './git/git-service.js';
import { DeployService } from './deploy/deploy-service.js';
import { TenantLogs } from './workers/tenant-logs.js';
import { WorkerPool } from './workers/worker-pool.js';
import { PlainWorkerLauncher } from './supervisor/plain-launcher.js';

export interface Platform {
  readonly config: Config;
  readonly log: Logger;
  readonly paths: DataPaths;
  readonly store: Store;
  readonly secrets: PlatformSecrets;
  readonly domains: DomainMap;
  readonly sites: SiteRegistry;
  readonly releases: ReleaseManager;
  readonly tenants: TenantService;
  readonly git: GitService;
  readonly deploys: DeployService;
  /** Each tenant's site log (worker output, access lines). */
  readonly siteLogs: TenantLogs;
  /** Tenants' worker processes; stop them with `await workers.close()` before close(). */
  readonly workers: WorkerPool;
  close(): void;
}

export function createPlatform(config: Config, log: Logger): Platform {
  const paths = new DataPaths(config.dataDir);
  for (const dir of [paths.root, paths.tenantsRoot, paths.runRoot, paths.gitRoot, paths.outbox]) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
  }
  fs.chmodSync(paths.root, 0o711);
  const secrets = loadSecrets(paths.root, { secret: config.secret, adminToken: config.adminToken });
  const db = openDatabase(paths.database);
  for (const f of [paths.database, paths.database + '-wal', paths.database + '-shm']) {
    if (fs.existsSync(f)) fs.chmodSync(f, 0o600);
  }
  const store = new Store(db);
  const domains = new DomainMap(store);
  const sites = new SiteRegistry(paths);
  const releases = new ReleaseManager(paths, store, sites, log);
  const tenants = new TenantService(config, paths, store, domains, releases, sites, log);
  const deploys = new DeployService({ paths, store, releases, tenants, log });
  // Pushes deploy through the same pipeline as uploads.
  const git = new GitService(paths, store, deploys, log);
  tenants.addHooks(git.repositories.lifecycleHooks());
  const siteLogs = new TenantLogs(paths);
  const workers = new WorkerPool({ config, paths, store, log, logs: siteLogs, launcher: new PlainWorkerLauncher() });
  releases.addHooks(workers.activationHooks());
  tenants.addHooks(workers.tenantHooks());
  releases.reconcile();
  const self: Platform = {
    config,
    log,
    paths,
    store,
    secrets,
    domains,
    sites,
    releases,
    tenants,
    git,
    deploys,
    siteLogs,
    workers,
    close: () => {
      git.close();
      db.close();
    },
  };
  return self;
}
