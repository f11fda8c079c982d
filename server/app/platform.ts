// The platform's parts, built once and wired together. Everything that serves
// requests or runs commands receives this object instead of reaching for globals.
import fs from 'node:fs';
import type { Config } from '../config.js';
import { openDatabase } from '../db/database.js';
import { Store } from '../db/store.js';
import { loadSecrets, type PlatformSecrets } from '../auth/secrets.js';
import type { Logger } from '../log.js';
import { DataPaths } from '../paths.js';
import { DomainMap } from '../tenants/domain-map.js';
import { SiteRegistry } from '../static/site-registry.js';
import { ReleaseManager } from '../releases/release-manager.js';
import { TenantService } from '../tenants/tenant-service.js';
import { GitService } from '../git/git-service.js';
import { DeployService } from '../deploy/deploy-service.js';
import { ManifestDeploys } from '../deploy/manifest-deploys.js';
import { LocalContentStore } from '../deploy/local-content-store.js';
import { DeployWorkers } from '../deploy/deploy-worker.js';
import { DEFAULT_FILE_CACHE } from '../static/serve/file-cache.js';
import { TenantLogs } from '../tenants/tenant-logs.js';
import { WorkerPool } from '../pool/worker-pool.js';
import type { PluginSettingsSource } from '../pool/plugin-settings.js';
import { PluginCatalogue } from '../plugins/catalogue.js';
import { PluginService } from '../plugins/plugin-service.js';
import { storedPluginSettings } from '../plugins/store-settings.js';
import { BackgroundWorkKeeper } from '../plugins/background-work.js';
import { CapabilityServer } from '../mail/capability-server.js';
import { outboxTransport, smtpTransport } from '../mail/mail-transport.js';
import { PlainWorkerLauncher } from '../sandbox/plain-launcher.js';
import { createSandbox, type Sandbox } from '../sandbox/sandbox.js';
import { DomainService } from '../domains/domain-service.js';
import { ProofResponder } from '../domains/proof-responder.js';
import { createDnsLookup } from '../domains/dns-lookup.js';
import { CertificateFiles } from '../tls/certificate-files.js';
import { SniContexts } from '../tls/sni-contexts.js';
import { AcmeChallenges } from '../tls/acme-challenges.js';
import { createAcmeIssuer } from '../tls/acme-issuer.js';
import { CertificateManager } from '../tls/certificate-manager.js';
import { PlatformMetrics } from '../metrics/platform-metrics.js';
import { AuditRetention } from '../audit/audit-retention.js';

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
  /** Manifest (incremental) deploys and the content store. */
  readonly manifestDeploys: ManifestDeploys;
  /** Each tenant's site log (worker output, access lines). */
  readonly siteLogs: TenantLogs;
  /** Tenants' worker processes; stop them with `await workers.close()` before close(). */
  readonly workers: WorkerPool;
  /** Isolation layers found at start, tenant users and the sandboxed launcher. */
  readonly sandbox: Sandbox;
  /** Custom domains: claims, proof, options. */
  readonly customDomains: DomainService;
  /** The HTTP proof's answers, for the edge. */
  readonly proofs: ProofResponder;
  /** Certificate files on disk (the platform's own, 0600). */
  readonly certFiles: CertificateFiles;
  /** The HTTPS listener's certificates by SNI. */
  readonly sni: SniContexts;
  /** Pending ACME HTTP-01 answers, for the edge. */
  readonly acmeChallenges: AcmeChallenges;
  /** Uploaded and issued certificates; call start() once listening. */
  readonly certificates: CertificateManager;
  /** Installed plugins (their manifests). */
  readonly pluginCatalogue: PluginCatalogue;
  /** Tenants' plugin settings: enable, configure, disable. */
  readonly plugins: PluginService;
  /** Tenants' capability channels (mail, plugin keys); closed by close(). */
  readonly capabilities: CapabilityServer;
  /** Starts workers of tenants whose plugins have work pending; call start() once listening. */
  readonly background: BackgroundWorkKeeper;
  /** The platform's own Prometheus registry and counters (GET /metrics). */
  readonly metrics: PlatformMetrics;
  close(): void;
}

export interface PlatformOptions {
  /** Isolation done elsewhere (the root supervisor); default: detected and done in this process. */
  readonly sandbox?: Sandbox;
  /** Which plugins each tenant has enabled; default: the tenant_plugins table. */
  readonly pluginSettings?: PluginSettingsSource;
  /** Offer the "_" test fixture plugins through the API (tests only). */
  readonly offerHiddenPlugins?: boolean;
}

export function createPlatform(config: Config, log: Logger, options: PlatformOptions = {}): Platform {
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
  // Detects (and in strict mode insists on) the isolation layers before anything is served.
  let sandbox: Sandbox;
  try {
    sandbox = options.sandbox ?? createSandbox({ mode: config.isolation, sandbox: config.sandbox, warmWorkers: config.warmWorkers, paths, log });
  } catch (err) {
    db.close();
    throw err;
  }
  const domains = new DomainMap(store);
  // Unpacking, hashing and brotli run in deploy workers (own processes, lower priority, a low-weight cgroup when there is one).
  const deployWorkers = new DeployWorkers({ log, place: (pid) => sandbox.placeDeployWorker(pid) });
  const sites = new SiteRegistry(paths, log, DEFAULT_FILE_CACHE, { compressor: (releaseDir) => deployWorkers.compress(releaseDir) });
  const releases = new ReleaseManager(paths, store, sites, log);
  const tenants = new TenantService(config, paths, store, domains, releases, sites, log);
  // The tenant's user exists before anything else is made for it; releases are sealed before a worker reads them.
  tenants.addHooks({ onTenantCreated: (t) => sandbox.provisionTenant(t.id) });
  releases.addHooks({ beforeActivate: (tenantId, deployId) => sandbox.sealRelease(tenantId, deployId) });
  const metrics = new PlatformMetrics();
  const deploys = new DeployService({ paths, store, releases, tenants, log, metrics, workers: deployWorkers });
  tenants.addHooks(deploys.lifecycleHooks());
  // Incremental deploys: a content store per tenant, filled by every deploy, swept by retention.
  const manifestDeploys = new ManifestDeploys({ deploys, objects: new LocalContentStore(paths), store, paths, releases, log });
  deploys.useContentStore(manifestDeploys);
  tenants.addHooks({ onTenantDeleting: async (id) => manifestDeploys.dropTenant(id) });
  // Pushes deploy through the same pipeline as uploads.
  const git = new GitService(paths, store, deploys, log, metrics);
  tenants.addHooks(git.repositories.lifecycleHooks());
  const siteLogs = new TenantLogs(paths);
  const capabilities = new CapabilityServer({
    dirOf: (id) => paths.capabilities(id),
    secret: secrets.secret,
    siteUrlOf: (id) => tenants.linkUrlOf(id),
    transport: config.smtpUrl ? smtpTransport(config.smtpUrl) : outboxTransport(paths.outbox),
    mailFrom: config.mailFrom,
    hourlyCap: config.mailHourlyCap,
    log: log.child({ part: 'mail' }),
    siteLog: (id, line) => siteLogs.append(id, line),
    metrics,
    backgroundWork: (id, plugin, pending) => store.plugins.setBackgroundWork(id, plugin, pending),
  });
  tenants.addHooks({
    onTenantDeleted: (id) => {
      void capabilities.closeTenant(id).then(() => fs.rmSync(paths.capabilities(id), { recursive: true, force: true }));
    },
  });
  const workers = new WorkerPool({
    config,
    paths,
    store,
    log,
    logs: siteLogs,
    launcher: sandbox.launcher ?? new PlainWorkerLauncher(),
    plugins: options.pluginSettings ?? storedPluginSettings(store),
    capabilities,
    metrics,
    keepRunning: (id) => store.plugins.hasBackgroundWork(id),
  });
  const background = new BackgroundWorkKeeper({ store, workers, sites, log });
  const pluginCatalogue = new PluginCatalogue({ includeHidden: options.offerHiddenPlugins });
  const plugins = new PluginService({ store, catalogue: pluginCatalogue, workers, sites });
  releases.addHooks(workers.activationHooks());
  tenants.addHooks(workers.tenantHooks());
  // Last: after the pool has stopped the tenant's workers, kill whatever is left in its cgroups, then its user.
  tenants.addHooks({ onTenantDeleting: (id) => sandbox.removeTenant(id) });
  const proofs = new ProofResponder(store, secrets.secret);
  const customDomains = new DomainService({
    store,
    domainMap: domains,
    proofs,
    secret: secrets.secret,
    reserved: { platformHost: config.platformHost, baseDomain: config.baseDomain },
    dns: createDnsLookup(config.dnsServers),
    httpPort: () => tenants.httpPort(),
    log,
  });
  const certFiles = new CertificateFiles(paths.certsRoot);
  const sni = new SniContexts();
  const acmeChallenges = new AcmeChallenges();
  const issuer = config.acmeDirectoryUrl
    ? createAcmeIssuer({ directoryUrl: config.acmeDirectoryUrl, email: config.acmeEmail, caFile: config.acmeCaFile, files: certFiles, challenges: acmeChallenges, log })
    : undefined;
  const certificates = new CertificateManager({ store, files: certFiles, contexts: sni, issuer, log });
  customDomains.addHooks(certificates.domainHooks());
  tenants.addHooks(certificates.tenantHooks());
  tenants.addHooks({ onTenantDeleted: () => customDomains.refresh() });
  tenants.addHooks({ onTenantDeleted: (id) => metrics.forgetTenant(id) });
  for (const t of store.tenants.list()) void sandbox.provisionTenant(t.id).catch((err) => log.error('tenant provisioning failed', { tenant: t.id, err }));
  releases.reconcile();
  // Old audit rows go at start and then daily.
  const auditRetention = new AuditRetention(store, config.auditDays, log);
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
    manifestDeploys,
    siteLogs,
    workers,
    sandbox,
    customDomains,
    proofs,
    certFiles,
    sni,
    acmeChallenges,
    certificates,
    pluginCatalogue,
    plugins,
    capabilities,
    background,
    metrics,
    close: () => {
      background.close();
      void capabilities.close();
      auditRetention.close();
      metrics.close();
      void certificates.close();
      git.close();
      db.close();
    },
  };
  return self;
}
