// Incremental deploys, as with Netlify's digest deploys: the client sends a
// manifest of paths and SHA-256s, is told which contents the tenant's store
// lacks, uploads only those (each checked against its hash), then finalizes;
// the release is built from the store and goes live through the same pipeline
// as an archive (DeployService.goLive: the tenant's lock, activation, audit,
// retention). A deploy waiting for its files holds no lock; it is kept in
// memory, pins the contents it counts on against the store's sweep, and is
// abandoned (recorded as failed) after PENDING_TTL_MS or a restart.
import type { Readable } from 'node:stream';
import type { ActorRef } from '../model/actor.js';
import { AppError, isAppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../db/store.js';
import type { DataPaths } from '../paths.js';
import type { ReleaseManager } from '../releases/release-manager.js';
import type { ArchiveLimits } from './archive-rules.js';
import { SHA256_HEX, type ContentStore, type StoredObject } from './content-store.js';
import type { ContentStoreHooks, DeployOptions, DeployResult, DeployService } from './deploy-service.js';
import { buildReleaseFromStore } from './release-from-store.js';
import { checkSizes, readSiteManifest, type SiteFiles } from './site-manifest.js';
import { fillStoreFromRelease } from './store-filling.js';
import path from 'node:path';

/** A deploy that has not received all its files by then is abandoned. */
export const PENDING_TTL_MS = 60 * 60 * 1000;
/** Deploys of one tenant waiting for files at once; a new one past this abandons the oldest. */
export const MAX_PENDING_PER_TENANT = 4;

/** The answer to a manifest: live at once (nothing to send), or waiting for `required`. */
export type ManifestAnswer =
  | { readonly status: 201; readonly body: ManifestDeployResult }
  | { readonly status: 202; readonly body: PendingView };

export interface ManifestDeployResult extends DeployResult {
  /** Contents that were uploaded for this deploy. */
  readonly uploaded: number;
  /** Files whose content the tenant's store already had. */
  readonly reused: number;
}

export interface PendingView {
  readonly id: string;
  readonly status: 'uploading';
  /** SHA-256s still to upload, each once, to PUT .../deploys/:id/files/:sha256. */
  readonly required: string[];
  readonly files: number;
  readonly expiresAt: string;
}

interface PendingDeploy {
  readonly id: string;
  readonly tenantId: string;
  readonly opts: DeployOptions;
  readonly files: SiteFiles;
  /** Paths per content: an upload counts that many times toward the total size. */
  readonly uses: ReadonlyMap<string, number>;
  /** Contents that were missing when the manifest came. */
  requiredAtStart: ReadonlySet<string>;
  /**
   * Every content known to be in the store (found, or received). They stay:
   * the deploy pins all its contents against the sweep from before it looks.
   */
  readonly known: Map<string, StoredObject>;
  readonly expiresAt: number;
  readonly timer: NodeJS.Timeout;
  finalizing: boolean;
}

export interface ManifestDeploysDeps {
  readonly deploys: DeployService;
  readonly objects: ContentStore;
  readonly store: Store;
  readonly paths: DataPaths;
  readonly releases: ReleaseManager;
  readonly log: Logger;
  readonly ttlMs?: number;
}

export class ManifestDeploys implements ContentStoreHooks {
  private readonly pending = new Map<string, PendingDeploy>();
  /** Tenants with an abandoned deploy whose uploads may now be garbage. */
  private readonly abandonedSinceSweep = new Set<string>();
  private readonly ttlMs: number;

  constructor(private readonly deps: ManifestDeploysDeps) {
    this.ttlMs = deps.ttlMs ?? PENDING_TTL_MS;
  }

  /**
   * POST of a manifest. Throws AppError: 404 tenant_not_found, 400 for a body
   * that is not a manifest, 422 archive_invalid for one breaking the archive rules.
   */
  async create(tenantId: string, body: unknown, opts: DeployOptions): Promise<ManifestAnswer> {
    const { deploys, objects } = this.deps;
    const limits = deploys.limitsFor(tenantId);
    // A body that is not a manifest is a bad request (400); one that breaks an archive rule is a refused deploy (422).
    let files: SiteFiles | undefined;
    let ruleBroken: unknown;
    try {
      files = readSiteManifest(body, limits);
    } catch (err) {
      if (isAppError(err)) throw err;
      ruleBroken = err;
    }
    const id = deploys.begin(tenantId, opts);
    if (ruleBroken !== undefined || !files) throw deploys.refused(tenantId, id, opts, ruleBroken);
    const uses = new Map<string, number>();
    for (const h of files.values()) uses.set(h, (uses.get(h) ?? 0) + 1);
    this.abandonOldest(tenantId);
    const expiresAt = Date.now() + this.ttlMs;
    const timer = setTimeout(() => this.abandon(id, `abandoned: not every file was uploaded within ${Math.round(this.ttlMs / 60000)} minutes`), this.ttlMs);
    timer.unref();
    // Registered (and so pinning its contents) before the store is asked what it has.
    const p: PendingDeploy = { id, tenantId, opts, files, uses, requiredAtStart: new Set(), known: new Map(), expiresAt, timer, finalizing: false };
    this.pending.set(id, p);
    try {
      const found = await objects.lookup(tenantId, uses.keys());
      checkSizes(files, sizesOf(found), limits);
      for (const [h, o] of found) p.known.set(h, o);
    } catch (err) {
      this.forget(p);
      throw deploys.refused(tenantId, id, opts, err);
    }
    const required = new Set([...uses.keys()].filter((h) => !p.known.has(h)));
    p.requiredAtStart = required;
    if (required.size === 0) {
      const done = await this.finish(p, opts.actor);
      if (done.status === 201) return done;
      return { status: 202, body: this.view(p, done.required) };
    }
    this.deps.store.audit.record({ actor: opts.actor, action: 'deploy.prepare', tenantId, detail: { id, files: files.size, required: required.size } });
    this.deps.log.info('deploy waiting for files', { tenant: tenantId, deploy: id, files: files.size, required: required.size });
    return { status: 202, body: this.view(p, [...required]) };
  }

  /** PUT of one content. Answers what is still missing. */
  async receive(tenantId: string, deployId: string, sha256: string, body: Readable, declaredLength: number | undefined): Promise<{ sha256: string; size: number; remaining: number }> {
    const p = this.pendingOf(tenantId, deployId);
    const hash = sha256.toLowerCase();
    if (!SHA256_HEX.test(hash)) throw new AppError('invalid_request', `"${sha256.slice(0, 80)}" is not a SHA-256: 64 hex digits.`);
    if (!p.uses.has(hash)) throw new AppError('invalid_request', `Deploy ${deployId} has no file with the SHA-256 ${hash}: upload only the contents its manifest lists.`);
    const cap = this.capFor(p, hash);
    if (declaredLength !== undefined && declaredLength > cap) {
      throw new AppError('payload_too_large', `The file is larger than the ${cap} bytes this deploy still allows (per-file cap and the tenant's archiveMB).`);
    }
    const stored = await this.deps.objects.put(tenantId, hash, body, cap);
    p.known.set(hash, stored);
    return { sha256: hash, size: stored.size, remaining: this.stillMissing(p).length };
  }

  /** POST .../finalize: live, or 409 deploy_files_missing with what is still required. */
  async finalize(tenantId: string, deployId: string, actor: ActorRef): Promise<ManifestDeployResult> {
    const p = this.pendingOf(tenantId, deployId);
    const done = await this.finish(p, actor);
    if (done.status === 201) return done.body;
    throw new AppError('deploy_files_missing', `${done.required.length} file(s) of deploy ${deployId} have not been uploaded yet; PUT each to .../deploys/${deployId}/files/<sha256>, then finalize again.`, {
      required: done.required,
    });
  }

  /** Under the tenant's lock: every content there -> built from the store and live; else what is missing. */
  private async finish(p: PendingDeploy, actor: ActorRef): Promise<{ status: 201; body: ManifestDeployResult } | { status: 409; required: string[] }> {
    const { deploys, objects, paths, releases } = this.deps;
    if (p.finalizing) throw new AppError('conflict', `Deploy ${p.id} is already being made live.`);
    p.finalizing = true;
    try {
      return await deploys.runLocked(p.tenantId, async () => {
        if (this.pending.get(p.id) !== p) throw new AppError('conflict', `Deploy ${p.id} was abandoned; send the manifest again.`);
        // What it found or received is pinned; only what never came is asked for again.
        const missing = this.stillMissing(p);
        if (missing.length > 0) return { status: 409 as const, required: missing };
        this.forget(p);
        const limits = deploys.limitsFor(p.tenantId);
        const live = releases.liveDeployId(p.tenantId);
        const found = p.known;
        // Recorded as the request that made it live (the message stays the manifest's).
        const opts: DeployOptions = { ...p.opts, actor };
        const uploaded = p.requiredAtStart.size;
        const reused = [...p.files.values()].filter((h) => !p.requiredAtStart.has(h)).length;
        const result = await deploys.goLive(p.tenantId, p.id, opts, async (stagingDir) => {
          checkSizes(p.files, sizesOf(found), limits);
          return buildReleaseFromStore(objects, { tenantId: p.tenantId, files: p.files, objects: found, previousRelease: live ? paths.release(p.tenantId, live) : undefined }, path.join(stagingDir, 'tree'));
        }, { uploaded, reused });
        this.pruneSoon(p.tenantId, opts);
        this.deps.log.info('manifest deploy live', { tenant: p.tenantId, deploy: p.id, uploaded, reused });
        return { status: 201 as const, body: { ...result, uploaded, reused } };
      });
    } finally {
      p.finalizing = false;
      // Its time ran out while it was being finalized: it goes now.
      if (this.pending.get(p.id) === p && Date.now() >= p.expiresAt) this.abandon(p.id, 'abandoned: not every file was uploaded in time');
    }
  }

  /**
   * Retention (and the store's sweep) right after the answer, with the lock
   * taken again: removing an old release's files is not part of going live.
   * The tenant's next deploy waits for it like for any other.
   */
  private pruneSoon(tenantId: string, opts: DeployOptions): void {
    this.deps.deploys.afterAnswer(tenantId, 'release retention', () => this.deps.deploys.pruneUnlocked(tenantId, opts.actor));
  }

  /** Resolves when the work that follows the tenant's last deploy (retention, filling the store) is done. */
  async settled(tenantId: string): Promise<void> {
    await this.deps.deploys.settled(tenantId);
  }

  /** The most bytes one upload of `hash` may have: the per-file cap, and what the total cap leaves. */
  private capFor(p: PendingDeploy, hash: string): number {
    const limits: ArchiveLimits = this.deps.deploys.limitsFor(p.tenantId);
    let used = 0;
    for (const [h, n] of p.uses) if (h !== hash) used += (p.known.get(h)?.size ?? 0) * n;
    const left = Math.floor((limits.maxBytes - used) / (p.uses.get(hash) ?? 1));
    return Math.max(0, Math.min(limits.maxFileBytes, left));
  }

  private stillMissing(p: PendingDeploy): string[] {
    return [...p.uses.keys()].filter((h) => !p.known.has(h));
  }

  private pendingOf(tenantId: string, deployId: string): PendingDeploy {
    const p = this.pending.get(deployId);
    if (p && p.tenantId === tenantId) return p;
    const d = this.deps.store.deploys.get(tenantId, deployId);
    if (!d) throw new AppError('deploy_not_found', `Tenant "${tenantId}" has no deploy "${deployId}".`);
    const why = d.status === 'failed' ? `failed (${d.error ?? 'no reason recorded'})` : d.status === 'staging' ? 'not a manifest deploy waiting for files' : d.status;
    throw new AppError('conflict', `Deploy ${deployId} is not waiting for files: it is ${why}.`);
  }

  private view(p: PendingDeploy, required: string[]): PendingView {
    return { id: p.id, status: 'uploading', required, files: p.files.size, expiresAt: new Date(p.expiresAt).toISOString() };
  }

  private forget(p: PendingDeploy): void {
    clearTimeout(p.timer);
    this.pending.delete(p.id);
  }

  /** A deploy that will never go live: recorded as failed; its uploads go at the next sweep. */
  private abandon(id: string, reason: string): void {
    const p = this.pending.get(id);
    if (!p || p.finalizing) return;
    this.forget(p);
    this.abandonedSinceSweep.add(p.tenantId);
    const { store, log } = this.deps;
    if (store.deploys.get(p.tenantId, id)?.status === 'staging') store.deploys.markFailed(id, reason);
    log.info('deploy abandoned', { tenant: p.tenantId, deploy: id, reason });
  }

  private abandonOldest(tenantId: string): void {
    const mine = [...this.pending.values()].filter((p) => p.tenantId === tenantId && !p.finalizing);
    for (const p of mine.slice(0, Math.max(0, mine.length - MAX_PENDING_PER_TENANT + 1))) {
      this.abandon(p.id, `abandoned: a newer deploy came while this one waited for files (at most ${MAX_PENDING_PER_TENANT} wait at once)`);
    }
  }

  /** A tenant's deploys waiting for files are abandoned (the tenant is being deleted). */
  dropTenant(tenantId: string): void {
    for (const p of [...this.pending.values()]) if (p.tenantId === tenantId) this.forget(p);
  }

  // ---- hooks run by DeployService with the tenant's lock held ----

  async afterArchiveLive(tenantId: string, releaseDir: string, contents?: ReadonlyArray<readonly [string, string]>): Promise<void> {
    await fillStoreFromRelease(this.deps.objects, tenantId, releaseDir, contents);
  }

  private isPinned(tenantId: string, sha256: string): boolean {
    for (const p of this.pending.values()) if (p.tenantId === tenantId && p.uses.has(sha256)) return true;
    return false;
  }

  async afterPrune(tenantId: string, releasesRemoved: boolean): Promise<void> {
    if (!releasesRemoved && !this.abandonedSinceSweep.has(tenantId)) return;
    this.abandonedSinceSweep.delete(tenantId);
    const swept = await this.deps.objects.sweep(tenantId, (h) => this.isPinned(tenantId, h));
    if (swept.objects > 0) this.deps.log.info('unused files removed from the content store', { tenant: tenantId, ...swept });
  }
}

function sizesOf(found: ReadonlyMap<string, StoredObject>): Map<string, number> {
  return new Map([...found].map(([h, o]) => [h, o.size]));
}
