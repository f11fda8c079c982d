// Tenant id -> the loaded index of its live release. Swapped in one assignment
// when a release is activated, so a request sees either the old site or the new.
// Also owns what outlives one release: the memory cache of small files and the
// deploy-time compression queue.
import fs from 'node:fs';
import type { DataPaths } from '../paths.js';
import { silentLogger, type Logger } from '../log.js';
import { assembleSiteIndex, loadSiteIndex, type SiteIndex } from './index/site-index.js';
import { readManifest, scanReleaseAsync, writeManifest } from './index/release-manifest.js';
import { DEFAULT_FILE_CACHE, FileCache, type FileCacheOptions } from './serve/file-cache.js';
import { adoptCompressedCopies, needsCompression, precompressSite } from './index/precompress.js';
import { formatRuleWarning } from './index/rule-warning.js';

/** How long a release that failed to load is left alone before the next try. */
const LOAD_RETRY_MS = 30_000;
/**
 * A release with no more text than this to compress (a starter site, a small
 * page) is compressed here: a few milliseconds on the thread pool, where a
 * deploy worker would cost a whole Node start. Larger ones go to the compressor.
 */
const COMPRESS_HERE_UP_TO = 64 * 1024;

function compressibleBytes(site: SiteIndex): number {
  let sum = 0;
  for (const f of site.files.values()) if (needsCompression(f)) sum += f.size;
  return sum;
}

/**
 * Makes a release's compressed copies in another process and records them in
 * its manifest (the deploy workers), so that brotli does not share the edge's
 * CPU and thread pool with requests.
 */
export type ReleaseCompressor = (releaseDir: string) => Promise<void>;

export interface SiteRegistryOptions {
  /**
   * Make the compressed copies of a release that goes live (default true).
   * Off in the sibling edges: one edge compresses and the others reload
   * the release once its manifest lists them.
   */
  readonly precompress?: boolean;
  /** Who makes them; default: this process. */
  readonly compressor?: ReleaseCompressor;
}

export class SiteRegistry {
  private readonly sites = new Map<string, SiteIndex>();
  /** Tenants whose live release could not be loaded, and when: not retried on every request. */
  private readonly loadFailures = new Map<string, number>();
  readonly fileCache: FileCache;
  /** Compression runs one release at a time, in this order. */
  private compressQueue: Promise<void> = Promise.resolve();
  private readonly compressing = new Map<string, Promise<void>>();
  /** Called when a tenant's live site was set, forgotten or got its compressed copies (the sibling edges follow). */
  private readonly changeListeners: ((tenantId: string) => void)[] = [];
  private readonly precompress: boolean;
  private readonly compressor: ReleaseCompressor | undefined;

  constructor(
    private readonly paths: DataPaths,
    private readonly log: Logger = silentLogger,
    cache: FileCacheOptions = DEFAULT_FILE_CACHE,
    options: SiteRegistryOptions = {},
  ) {
    this.fileCache = new FileCache(cache);
    this.precompress = options.precompress ?? true;
    this.compressor = options.compressor;
  }

  onChange(listener: (tenantId: string) => void): void {
    this.changeListeners.push(listener);
  }

  private changed(tenantId: string): void {
    for (const l of this.changeListeners) l(tenantId);
  }

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
    const failedAt = this.loadFailures.get(tenantId);
    if (failedAt !== undefined && Date.now() - failedAt < LOAD_RETRY_MS) return undefined;
    let loaded: ReturnType<typeof loadSiteIndex>;
    try {
      loaded = loadSiteIndex(releaseDir);
    } catch (err) {
      this.loadFailures.set(tenantId, Date.now());
      this.log.error('cannot load the live release; retrying in 30 s', { tenant: tenantId, release: releaseDir, err });
      return undefined;
    }
    this.loadFailures.delete(tenantId);
    const { site, fromManifest } = loaded;
    if (!fromManifest) void this.storeManifest(site);
    this.logWarnings(site);
    // Read from the live link as it is: nothing changed that other edges must follow.
    this.install(tenantId, site);
    return site;
  }

  /**
   * Builds the index of a release that is about to go live (rejects if it is
   * broken: tenant.json invalid). Hashes every file (without blocking the
   * event loop) and writes the manifest the first time; a release prepared
   * before (a rollback) loads its manifest.
   */
  async prepare(releaseDir: string): Promise<SiteIndex> {
    const stored = readManifest(releaseDir);
    const site = assembleSiteIndex(releaseDir, stored ?? (await scanReleaseAsync(releaseDir)));
    // Nothing to compress: said in the first manifest, so no second write follows the deploy.
    if (!site.manifest.compressed && !this.needsCompressing(site)) site.manifest = { ...site.manifest, compressed: true };
    if (!stored) await this.storeManifest(site);
    this.logWarnings(site);
    return site;
  }

  set(tenantId: string, site: SiteIndex): void {
    this.install(tenantId, site);
    this.changed(tenantId);
  }

  private install(tenantId: string, site: SiteIndex): void {
    this.loadFailures.delete(tenantId);
    const previous = this.sites.get(tenantId);
    this.sites.set(tenantId, site);
    if (previous && previous !== site) this.release(previous);
    this.scheduleCompression(site);
  }

  forget(tenantId: string): void {
    const previous = this.sites.get(tenantId);
    this.sites.delete(tenantId);
    if (previous) this.release(previous);
    this.changed(tenantId);
  }

  /** Resolves when the live release's compressed copies are made (or could not be). */
  async whenCompressed(tenantId: string): Promise<void> {
    const site = this.sites.get(tenantId) ?? this.get(tenantId);
    if (site) await this.compressing.get(site.releaseDir);
  }

  private isLive(site: SiteIndex): boolean {
    for (const s of this.sites.values()) if (s === site) return true;
    return false;
  }

  private release(site: SiteIndex): void {
    if (this.isLive(site)) return;
    for (const f of site.files.values()) {
      this.fileCache.drop(f.identity);
      if (f.br) this.fileCache.drop(f.br);
      if (f.gzip) this.fileCache.drop(f.gzip);
    }
    if (site.notFoundPage) this.fileCache.drop(site.notFoundPage.identity);
  }

  private logWarnings(site: SiteIndex): void {
    for (const w of site.warnings) this.log.warn('site rule ignored', { release: site.releaseDir, warning: formatRuleWarning(w) });
  }

  /** Never rejects. */
  private async storeManifest(site: SiteIndex): Promise<void> {
    try {
      await writeManifest(site.releaseDir, site.manifest);
    } catch (err) {
      // A read-only release still serves; it is hashed again after a restart.
      this.log.warn('cannot write the release manifest', { release: site.releaseDir, err });
    }
  }

  private needsCompressing(site: SiteIndex): boolean {
    return [...site.files.values()].some(needsCompression) || (site.notFoundPage !== undefined && needsCompression(site.notFoundPage));
  }

  private scheduleCompression(site: SiteIndex): void {
    if (!this.precompress || site.manifest.compressed || this.compressing.has(site.releaseDir)) return;
    if (!this.needsCompressing(site)) {
      site.manifest = { ...site.manifest, compressed: true };
      void this.storeManifest(site);
      return;
    }
    const elsewhere = this.compressor !== undefined && compressibleBytes(site) > COMPRESS_HERE_UP_TO;
    const job = this.compressQueue.then(() => (elsewhere ? this.compressElsewhere(site, this.compressor!) : precompressSite(site, this.log, () => this.isLive(site))));
    const tracked = job
      .catch((err) => this.log.warn('precompression failed', { release: site.releaseDir, err }))
      .finally(() => {
        this.compressing.delete(site.releaseDir);
        for (const [tenantId, live] of this.sites) if (live === site) this.changed(tenantId);
      });
    this.compressing.set(site.releaseDir, tracked);
    this.compressQueue = tracked;
  }

  /** The copies made by the compressor are served from the moment its manifest lists them. */
  private async compressElsewhere(site: SiteIndex, compressor: ReleaseCompressor): Promise<void> {
    if (!this.isLive(site)) return;
    await compressor(site.releaseDir);
    adoptCompressedCopies(site);
  }
}
