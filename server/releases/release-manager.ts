// Releases of a tenant: immutable folders under releases/, one of them live.
// activateRelease() is the single way a release goes live, for uploads, git
// pushes, rollbacks and the starter site alike.
import fs from 'node:fs';
import path from 'node:path';
import type { Store } from '../db/store.js';
import type { DataPaths } from '../paths.js';
import type { SiteRegistry } from '../static/site-registry.js';
import type { SiteIndex } from '../static/index/site-index.js';
import type { Logger } from '../log.js';
import { pointLiveAt, readLiveDeployId } from './live-link.js';
import { ensureModuleBoundary } from './module-boundary.js';

/**
 * Steps other subsystems hang on a release switch. `beforeActivate` may refuse
 * (throw) and the old release stays live; e.g. the worker pool starts and
 * health-checks the new release's worker there.
 */
export interface ActivationHooks {
  beforeActivate?(tenantId: string, deployId: string, site: SiteIndex): Promise<void>;
  afterActivate?(tenantId: string, deployId: string, site: SiteIndex): Promise<void>;
}

export class ReleaseManager {
  private readonly hooks: ActivationHooks[] = [];

  constructor(
    private readonly paths: DataPaths,
    private readonly store: Store,
    private readonly sites: SiteRegistry,
    private readonly log: Logger,
  ) {}

  addHooks(h: ActivationHooks): void {
    this.hooks.push(h);
  }

  liveDeployId(tenantId: string): string | undefined {
    return readLiveDeployId(this.paths.live(tenantId));
  }

  /** Makes an existing, complete release folder live. Throws and changes nothing if it cannot. */
  async activateRelease(tenantId: string, deployId: string): Promise<SiteIndex> {
    const dir = this.paths.release(tenantId, deployId);
    if (!fs.existsSync(dir)) throw new Error(`release ${deployId} is no longer on disk`);
    // Before the seal and the first worker: the release's own module type, not the data folder's surroundings.
    ensureModuleBoundary(dir);
    const site = await this.sites.prepare(dir);
    for (const h of this.hooks) await h.beforeActivate?.(tenantId, deployId, site);
    await pointLiveAt(this.paths.live(tenantId), deployId);
    this.store.tenants.setLive(tenantId, deployId);
    this.sites.set(tenantId, site);
    for (const h of this.hooks) {
      try {
        await h.afterActivate?.(tenantId, deployId, site);
      } catch (err) {
        this.log.warn('after-activate step failed', { tenant: tenantId, deploy: deployId, err });
      }
    }
    return site;
  }

  /**
   * At start: the `live` link is the truth (it is switched first, atomically);
   * the database follows it. Staging left by a crash is removed.
   */
  reconcile(): void {
    for (const t of this.store.tenants.list()) {
      const onDisk = readLiveDeployId(this.paths.live(t.id));
      if (onDisk && onDisk !== t.liveDeployId) {
        this.log.warn('live release differs from database; following the disk', { tenant: t.id, disk: onDisk, db: t.liveDeployId });
        this.store.tenants.setLive(t.id, onDisk);
      }
      fs.rmSync(this.paths.staging(t.id), { recursive: true, force: true });
      // A release made live by an earlier version of the platform may lack its module boundary.
      if (onDisk) {
        try {
          if (ensureModuleBoundary(this.paths.release(t.id, onDisk))) this.log.info('module boundary added to the live release', { tenant: t.id, deploy: onDisk });
        } catch (err) {
          this.log.warn('cannot add the module boundary to the live release; its .js files may not load as CommonJS', { tenant: t.id, deploy: onDisk, err });
        }
      }
    }
    // A deploy cut off after its live switch is live: it succeeded. Any other
    // unfinished one failed, and its half-made release folder goes.
    for (const d of this.store.deploys.byStatus('staging')) {
      if (readLiveDeployId(this.paths.live(d.tenantId)) === d.id) {
        this.store.deploys.markReady(d.id, { files: d.files, bytes: d.bytes });
        continue;
      }
      this.store.deploys.markFailed(d.id, 'interrupted: the platform stopped during this deploy');
      fs.rmSync(this.paths.release(d.tenantId, d.id), { recursive: true, force: true });
    }
    // Release folders whose deploy failed or was pruned (a crash mid-removal) go too; never the live one.
    for (const t of this.store.tenants.list()) {
      const live = readLiveDeployId(this.paths.live(t.id));
      const dir = this.paths.releases(t.id);
      if (!fs.existsSync(dir)) continue;
      for (const name of fs.readdirSync(dir)) {
        const status = this.store.deploys.get(t.id, name)?.status;
        if (name !== live && (status === 'failed' || status === 'pruned')) {
          fs.rmSync(path.join(dir, name), { recursive: true, force: true });
        }
      }
    }
  }
}
