// Tenant id -> the loaded index of its live release. Swapped in one assignment
// when a release is activated, so a request sees either the old site or the new.
import fs from 'node:fs';
import type { DataPaths } from '../paths.js';
import { buildSiteIndex, type SiteIndex } from './site-index.js';

export class SiteRegistry {
  private readonly sites = new Map<string, SiteIndex>();

  constructor(private readonly paths: DataPaths) {}

  /** The live site, loading it from the `live` link on first use after a start. */
  get(tenantId: string): SiteIndex | undefined {
    const cached = this.sites.get(tenantId);
    if (cached) return cached;
    let releaseDir: string;
    try {
      releaseDir = fs.realpathSync(this.paths.live(tenantId));
    } catch {
      return undefined;
    }
    const site = buildSiteIndex(releaseDir);
    this.sites.set(tenantId, site);
    return site;
  }

  /** Builds the index of a release that is about to go live (throws if it is broken). */
  prepare(releaseDir: string): SiteIndex {
    return buildSiteIndex(releaseDir);
  }

  set(tenantId: string, site: SiteIndex): void {
    this.sites.set(tenantId, site);
  }

  forget(tenantId: string): void {
    this.sites.delete(tenantId);
  }
}
