// The deploy pipeline: archive -> staging (every entry judged and the files
// indexed, in a deploy worker process: deploy-worker.ts) -> release folder ->
// live (ReleaseManager.activateRelease, with its hooks) -> retention.
// Durable in that order: the release's files and folders are fsynced as they are
// unpacked, its name in releases/ after the rename, then the manifest, the
// `live` switch and the database row (README, "Durability").
// Uploads, git pushes and rollbacks all come through here, one at a time per
// tenant (TenantLocks). A failure at any step leaves the live release serving.
import type { DeployMetrics } from '../metrics/platform-metrics.js';
import { actorId, type ActorRef } from '../model/actor.js';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { DeployRecord, Store } from '../db/store.js';
import { AppError, isAppError } from '../errors.js';
import type { Logger } from '../log.js';
import { effectiveLimits } from '../model/limits.js';
import type { DataPaths } from '../paths.js';
import type { ReleaseManager } from '../releases/release-manager.js';
import type { TenantLifecycleHooks, TenantService } from '../tenants/tenant-service.js';
import { newDeployId } from '../auth/token-hash.js';
import { ArchiveRuleError, type ArchiveLimits } from './archive-rules.js';
import { DeployWorkers } from './deploy-worker.js';
import type { StageOutcome } from './deploy-work-protocol.js';
import { releasesToPrune } from '../releases/retention.js';
import { TenantLocks } from './tenant-lock.js';
import type { RuleWarning } from '../static/index/rule-warning.js';
import { fsyncFolder, makeFolderDurably } from '../disk/durable.js';
import { adoptStagedManifest } from '../static/index/release-manifest.js';

export type DeploySource = 'upload' | 'git';

/** What a build step made in the staging folder: the folder to become the release, all of it on disk. */
export interface BuiltRelease {
  readonly releaseRoot: string;
  readonly files: number;
  readonly bytes: number;
}

/** The content store's steps in the pipeline (manifest-deploys.ts); both run with the tenant's lock held. */
export interface ContentStoreHooks {
  /**
   * An archive deploy is live: its files go into the store. `contents`: each
   * regular file's SHA-256 by its path in the release, as the deploy worker
   * took them while unpacking (else the files are hashed again).
   */
  afterArchiveLive(tenantId: string, releaseDir: string, contents?: ReadonlyArray<readonly [string, string]>): Promise<void>;
  /** Retention ran (and removed releases, or not): objects nothing needs any more may go. */
  afterPrune(tenantId: string, releasesRemoved: boolean): Promise<void>;
}

export interface DeployOptions {
  source: DeploySource;
  message?: string;
  /** Who asked: `admin`, `token:<id>`, ... (goes into the audit log). */
  actor: ActorRef;
}

export interface DeployResult {
  id: string;
  live: true;
  url: string;
  files: number;
  bytes: number;
  /** Rules in force in the new release: `_redirects` rules and `_headers` blocks. */
  rules: { redirects: number; headers: number };
  /** Lines of `_redirects`/`_headers` that were left out, and why (the release is live without them). */
  warnings: RuleWarning[];
}

export interface DeployView {
  id: string;
  createdAt: string;
  source: string;
  message: string | null;
  actor: ActorRef;
  status: DeployRecord['status'];
  files: number;
  bytes: number;
  error: string | null;
  live: boolean;
}

const MiB = 1024 * 1024;
/** No single file may be larger than this, whatever the tenant's archive cap. */
export const MAX_FILE_MB = 256;
/** How long a deploy waits for the tenant's previous one before answering 409. */
export const DEFAULT_LOCK_WAIT_MS = 120_000;

export interface DeployServiceDeps {
  paths: DataPaths;
  store: Store;
  releases: ReleaseManager;
  tenants: TenantService;
  log: Logger;
  lockWaitMs?: number;
  /** Deploys by outcome and duration; default: not counted. */
  metrics?: DeployMetrics;
  /** The content store (incremental deploys); default: none. Set once at start with useContentStore. */
  contentStore?: ContentStoreHooks;
  /** Where archives are unpacked and indexed; default: deploy workers without a cgroup. */
  workers?: DeployWorkers;
}

export class DeployService {
  /** Shared with anything else that must not overlap a tenant's deploys. */
  readonly locks = new TenantLocks();
  /** The processes that unpack archives, outside the edge. */
  readonly workers: DeployWorkers;
  private readonly lockWaitMs: number;
  /** Work following a tenant's last deploy, running after its answer (afterAnswer). */
  private readonly followUps = new Map<string, Promise<void>>();

  constructor(private readonly deps: DeployServiceDeps) {
    this.lockWaitMs = deps.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS;
    this.workers = deps.workers ?? new DeployWorkers({ log: deps.log });
  }

  /** Hooks the content store into the pipeline (set once, when the platform is built). */
  useContentStore(hooks: ContentStoreHooks): void {
    this.deps.contentStore = hooks;
  }

  /** The archive caps of a tenant (its `archiveMB` and `files` limits). */
  limitsFor(tenantId: string): ArchiveLimits {
    const limits = effectiveLimits(this.deps.tenants.get(tenantId).limitOverrides);
    const maxBytes = limits.archiveMB * MiB;
    return { maxBytes, maxFileBytes: Math.min(maxBytes, MAX_FILE_MB * MiB), maxEntries: limits.files };
  }

  /** Largest upload (compressed or not) accepted before unpacking: the unpacked cap plus tar overhead. */
  uploadCapBytes(tenantId: string): number {
    const l = this.limitsFor(tenantId);
    return l.maxBytes + l.maxEntries * 2048 + 16 * MiB;
  }

  /** Where uploads wait, on the same file system as the releases; emptied at every start. */
  async uploadDir(tenantId: string): Promise<string> {
    const dir = path.join(this.deps.paths.staging(tenantId), 'uploads');
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** A tenant being deleted first waits for its running deploy, so no deploy writes into a folder being removed. */
  lifecycleHooks(): TenantLifecycleHooks {
    return { onTenantDeleting: (tenantId) => this.withTenantLock(tenantId, async () => {}) };
  }

  /** Runs `fn` holding the tenant's deploy lock (waits up to the bound, then 409). */
  withTenantLock<T>(tenantId: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(tenantId, this.lockWaitMs, fn);
  }

  /**
   * Unpacks a tar or tar.gz (a stream, or the path of a file) into a new
   * release and makes it live. Resolves once the release serves. Throws
   * AppError: 404 tenant_not_found, 409 deploy_in_progress, 422
   * archive_invalid (with the rule and the entry) or deploy_failed.
   */
  async deployArchive(tenantId: string, archive: NodeJS.ReadableStream | string, opts: DeployOptions): Promise<DeployResult> {
    try {
      this.deps.tenants.get(tenantId);
    } catch (err) {
      discard(archive);
      throw err;
    }
    try {
      return await this.withTenantLock(tenantId, () => this.timed(tenantId, () => this.deployUnlocked(tenantId, archive, opts)));
    } catch (err) {
      discard(archive);
      throw err;
    }
  }

  /** Counts a deploy by outcome, timed from taking the lock to live (or refused). */
  private async timed<T>(tenantId: string, fn: () => Promise<T>): Promise<T> {
    const metrics = this.deps.metrics;
    if (!metrics) return fn();
    const started = performance.now();
    try {
      const result = await fn();
      metrics.deployFinished(tenantId, 'success', (performance.now() - started) / 1000);
      return result;
    } catch (err) {
      metrics.deployFinished(tenantId, 'failure', (performance.now() - started) / 1000);
      throw err;
    }
  }

  private async deployUnlocked(tenantId: string, archive: NodeJS.ReadableStream | string, opts: DeployOptions): Promise<DeployResult> {
    const limits = this.limitsFor(tenantId);
    const id = this.begin(tenantId, opts);
    let contents: StageOutcome['contents'] | undefined;
    const result = await this.goLive(tenantId, id, opts, async (stagingDir) => {
      const staged = await this.stageRelease(archive, path.join(stagingDir, 'tree'), limits);
      contents = staged.contents;
      return staged;
    });
    // Links only (the hashes were taken while unpacking): the store holds the release's files before the answer.
    await this.fillStore(tenantId, id, contents);
    await this.pruneUnlocked(tenantId, opts.actor);
    return result;
  }

  /**
   * Runs `fn` with the tenant's lock once the current holder (the deploy that
   * is answering) lets go: work that follows a deploy but is not part of going
   * live. The tenant's next deploy, and settled(), wait for it.
   */
  afterAnswer(tenantId: string, what: string, fn: () => Promise<void>): void {
    const job = this.withTenantLock(tenantId, fn).catch((err: unknown) => this.deps.log.warn(`${what} after a deploy failed`, { tenant: tenantId, err }));
    this.followUps.set(tenantId, job);
    void job.finally(() => {
      if (this.followUps.get(tenantId) === job) this.followUps.delete(tenantId);
    });
  }

  /** Resolves when the work following the tenant's last deploy (afterAnswer) is done. */
  async settled(tenantId: string): Promise<void> {
    await this.followUps.get(tenantId);
  }

  /** Records a new deploy (status `staging`) and returns its id. */
  begin(tenantId: string, opts: DeployOptions): string {
    const id = newDeployId();
    const message = opts.message?.trim() ? opts.message.trim().slice(0, 500) : null;
    this.deps.store.deploys.insert({ id, tenantId, source: opts.source, message, actor: actorId(opts.actor) });
    return id;
  }

  /** Marks a deploy failed (row, audit, log) and returns the error to answer with. */
  refused(tenantId: string, id: string, opts: DeployOptions, err: unknown): AppError {
    const { store, log } = this.deps;
    const appErr = toAppError(err);
    store.deploys.markFailed(id, appErr.message);
    store.audit.record({ actor: opts.actor, action: 'deploy.fail', tenantId, outcome: 'failure', code: appErr.code, detail: { id, source: opts.source, code: appErr.code, error: appErr.message } });
    if (appErr.status >= 500) log.error('deploy failed', { tenant: tenantId, deploy: id, err, stack: (err as Error)?.stack });
    else log.info('deploy refused', { tenant: tenantId, deploy: id, reason: appErr.message });
    return appErr;
  }

  /**
   * Builds deploy `id` (already begun) in its staging folder with `build`,
   * moves it into releases/ and makes it live. The caller holds the tenant's
   * lock. Any failure marks the deploy failed and leaves the live release serving.
   */
  async goLive(
    tenantId: string,
    id: string,
    opts: DeployOptions,
    build: (stagingDir: string) => Promise<BuiltRelease>,
    auditDetail: Record<string, unknown> = {},
  ): Promise<DeployResult> {
    const { paths, store, log } = this.deps;
    const stagingDir = path.join(paths.staging(tenantId), id);
    const releaseDir = paths.release(tenantId, id);
    const refuse = async (err: unknown): Promise<never> => {
      await fsp.rm(stagingDir, { recursive: true, force: true });
      await fsp.rm(releaseDir, { recursive: true, force: true });
      throw this.refused(tenantId, id, opts, err);
    };

    let stats: { files: number; bytes: number };
    try {
      await fsp.mkdir(stagingDir, { recursive: true, mode: 0o750 });
      const built = await build(stagingDir);
      stats = { files: built.files, bytes: built.bytes };
      await makeFolderDurably(paths.releases(tenantId), 0o750);
      await fsp.rename(built.releaseRoot, releaseDir);
      await fsyncFolder(paths.releases(tenantId));
      await adoptStagedManifest(releaseDir);
      await fsp.rm(stagingDir, { recursive: true, force: true });
      store.deploys.setStats(id, stats);
    } catch (err) {
      return refuse(err);
    }

    let site: Awaited<ReturnType<ReleaseManager['activateRelease']>>;
    try {
      site = await this.deps.releases.activateRelease(tenantId, id);
    } catch (err) {
      return refuse(isAppError(err) && err.code === 'deploy_failed' ? err : new AppError('deploy_failed', `The release could not be made live: ${reasonOf(err)}`));
    }
    const message = store.deploys.get(tenantId, id)?.message ?? null;
    store.deploys.markReady(id, stats);
    store.audit.record({ actor: opts.actor, action: 'deploy.create', tenantId, detail: { id, source: opts.source, message, ...stats, ...auditDetail } });
    log.info('deploy live', { tenant: tenantId, deploy: id, source: opts.source, ...stats, ruleWarnings: site.warnings.length });
    return {
      id,
      live: true,
      url: this.deps.tenants.urlOf(tenantId),
      files: stats.files,
      bytes: stats.bytes,
      rules: { ...site.ruleCounts },
      warnings: site.warnings.map((w) => ({ file: w.file, line: w.line, message: w.message })),
    };
  }

  /** Counts a deploy by outcome, holding the tenant's lock: what a deploy other than an archive runs in. */
  runLocked<T>(tenantId: string, fn: () => Promise<T>): Promise<T> {
    return this.withTenantLock(tenantId, () => this.timed(tenantId, fn));
  }

  /** Puts an unpacked release's files into the content store, so a later manifest deploy sends none of them again. Never throws. */
  private async fillStore(tenantId: string, id: string, contents: StageOutcome['contents'] | undefined): Promise<void> {
    const hook = this.deps.contentStore;
    if (!hook) return;
    try {
      await hook.afterArchiveLive(tenantId, this.deps.paths.release(tenantId, id), contents);
    } catch (err) {
      this.deps.log.warn('cannot add the release to the content store; the next manifest deploy uploads its files again', { tenant: tenantId, deploy: id, err });
    }
  }

  /**
   * Unpacks, checks, fsyncs and indexes an archive into `treeDir`, in a deploy
   * worker (its own process, lower priority), so that serving does not feel it.
   * Throws ArchiveRuleError for a refused archive.
   */
  private stageRelease(archive: NodeJS.ReadableStream | string, treeDir: string, limits: ArchiveLimits) {
    const input = typeof archive === 'string' ? fs.createReadStream(archive) : archive;
    return this.workers.stage(input, treeDir, limits);
  }

  /** Makes an earlier (or later) release live again: rollback and forward. */
  async activate(tenantId: string, deployId: string, actor: ActorRef): Promise<DeployView & { url: string }> {
    this.deps.tenants.get(tenantId);
    return this.withTenantLock(tenantId, async () => {
      const { store, releases, paths, log } = this.deps;
      const d = store.deploys.get(tenantId, deployId);
      if (!d) throw new AppError('deploy_not_found', `Tenant "${tenantId}" has no deploy "${deployId}".`);
      if (d.status === 'pruned') throw new AppError('conflict', `Deploy ${deployId} was removed by release retention and cannot be made live.`);
      if (d.status !== 'ready') throw new AppError('conflict', `Deploy ${deployId} did not succeed (${d.status}) and cannot be made live.`);
      const previous = releases.liveDeployId(tenantId) ?? null;
      if (previous !== deployId) {
        if (!fs.existsSync(paths.release(tenantId, deployId))) {
          throw new AppError('conflict', `The release of deploy ${deployId} is no longer on disk.`);
        }
        try {
          await releases.activateRelease(tenantId, deployId);
        } catch (err) {
          throw isAppError(err) && err.code === 'deploy_failed' ? err : new AppError('deploy_failed', `The release could not be made live: ${reasonOf(err)}`);
        }
        store.audit.record({ actor, action: 'deploy.activate', tenantId, detail: { id: deployId, previous } });
        log.info('release activated', { tenant: tenantId, deploy: deployId, previous });
      }
      return { ...this.view(store.deploys.get(tenantId, deployId)!, deployId), url: this.deps.tenants.urlOf(tenantId) };
    });
  }

  /** Newest first; the live one has `live: true`. */
  list(tenantId: string): DeployView[] {
    this.deps.tenants.get(tenantId);
    const live = this.deps.releases.liveDeployId(tenantId) ?? this.deps.store.tenants.get(tenantId)?.liveDeployId ?? null;
    return this.deps.store.deploys.forTenant(tenantId).map((d) => this.view(d, live));
  }

  private view(d: DeployRecord, liveId: string | null): DeployView {
    return {
      id: d.id,
      createdAt: d.createdAt,
      source: d.source,
      message: d.message,
      actor: d.actor,
      status: d.status,
      files: d.files,
      bytes: d.bytes,
      error: d.error,
      live: d.id === liveId,
    };
  }

  /**
   * Keeps the tenant's `keepReleases` newest ready releases (the live one
   * always), then lets the content store drop what no release holds. Lock held.
   */
  async pruneUnlocked(tenantId: string, actor: ActorRef): Promise<void> {
    const { store, paths, releases, log } = this.deps;
    const tenant = store.tenants.get(tenantId);
    if (!tenant) return;
    const live = releases.liveDeployId(tenantId) ?? tenant.liveDeployId;
    const doomed = releasesToPrune(store.deploys.forTenant(tenantId), live, tenant.keepReleases);
    if (doomed.length === 0) {
      await this.sweepStore(tenantId, false);
      return;
    }
    for (const d of doomed) {
      // Marked first: a crash half-way leaves a pruned row and some stray files, never a listed release without files.
      store.deploys.markPruned(d.id);
      await fsp.rm(paths.release(tenantId, d.id), { recursive: true, force: true });
    }
    store.audit.record({ actor, action: 'deploy.prune', tenantId, detail: { ids: doomed.map((d) => d.id), keep: tenant.keepReleases } });
    log.info('old releases removed', { tenant: tenantId, count: doomed.length });
    await this.sweepStore(tenantId, true);
  }

  /** Never throws: an object left behind is collected at the next sweep. */
  private async sweepStore(tenantId: string, releasesRemoved: boolean): Promise<void> {
    try {
      await this.deps.contentStore?.afterPrune(tenantId, releasesRemoved);
    } catch (err) {
      this.deps.log.warn('cannot collect unused files of the content store', { tenant: tenantId, err });
    }
  }
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function toAppError(err: unknown): AppError {
  if (isAppError(err)) return err;
  if (err instanceof ArchiveRuleError) {
    return new AppError('archive_invalid', `The archive was refused: ${err.message}.`, { rule: err.rule, ...(err.entry !== undefined ? { entry: err.entry } : {}) });
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new AppError('deploy_failed', 'The release could not be written: the disk is full.');
  return new AppError('internal_error');
}

/** A stream nobody will read any more is closed, so its writer stops. */
function discard(archive: NodeJS.ReadableStream | string): void {
  if (typeof archive !== 'string' && archive instanceof Readable && !archive.destroyed) archive.destroy();
}
