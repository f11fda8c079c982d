// Deploy-time compression: brotli and gzip copies of a release's text files,
// written under `<release>/.tenantry/compressed/`, never made per request.
// It runs after the release is live (a deploy does not wait for it), one
// release at a time; in the platform, in a deploy worker (its own process and
// thread pool), whose manifest the edge then takes up (adoptCompressedCopies).
// The manifest records the copies so a restart does not redo them.
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import type { Logger } from '../../log.js';
import { syncTree } from '../../disk/durable.js';
import { MANIFEST_DIR, readManifest, writeManifest, type ManifestEntry, type ReleaseManifest } from './release-manifest.js';
import { makeVariant, type SiteFile, type SiteIndex } from './site-index.js';

const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);

/** Below this, the bytes saved are less than the headers cost. */
export const MIN_COMPRESS_BYTES = 1024;
const MAX_COMPRESS_BYTES = 64 * 1024 * 1024;
/**
 * Brotli's densest setting (11) runs at about 1 MB/s; setting 5 at about 20-30 MB/s
 * and 10-12% larger. A site with up to this much text gets 11; a larger one gets
 * 5, so its compression ends in seconds instead of minutes of CPU.
 */
const DENSEST_UP_TO = 4 * 1024 * 1024;

export function needsCompression(f: SiteFile): boolean {
  return f.compressible && f.size >= MIN_COMPRESS_BYTES && f.size <= MAX_COMPRESS_BYTES && (f.br === undefined || f.gzip === undefined);
}

/** The manifest of a site as it stands (with the compressed copies made so far). */
export function manifestOf(site: SiteIndex, compressed: boolean): ReleaseManifest {
  const rel = (abs: string) => path.relative(site.releaseDir, abs);
  const generated = (abs: string) => rel(abs).startsWith(MANIFEST_DIR + path.sep);
  const byPath = new Map<string, SiteFile>();
  for (const f of site.files.values()) byPath.set(f.urlPath, f);
  const files: ManifestEntry[] = site.manifest.files.map((e) => {
    const f = e.hidden ? site.notFoundPage : byPath.get(e.path);
    if (!f) return e;
    // Only copies we made go into the manifest; shipped siblings (app.js.br) are found again at load.
    const br = f.br && generated(f.br.absPath) ? { size: f.br.size, file: rel(f.br.absPath) } : undefined;
    const gz = f.gzip && generated(f.gzip.absPath) ? { size: f.gzip.size, file: rel(f.gzip.absPath) } : undefined;
    return { path: e.path, size: e.size, mtimeMs: e.mtimeMs, hash: e.hash, ...(br ? { br } : {}), ...(gz ? { gzip: gz } : {}), ...(e.hidden ? { hidden: true } : {}) };
  });
  return { ...site.manifest, compressed, files };
}

async function compressFile(site: SiteIndex, f: SiteFile, quality: number): Promise<void> {
  const data = await fsp.readFile(f.absPath);
  if (data.length !== f.size) return; // not the file the index describes: leave it alone
  const [br, gz] = await Promise.all([
    f.br
      ? undefined
      : brotli(data, {
          params: {
            [zlib.constants.BROTLI_PARAM_QUALITY]: quality,
            [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length,
            [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
          },
        }),
    f.gzip ? undefined : gzip(data, { level: 9 }),
  ]);
  const base = path.join(site.releaseDir, MANIFEST_DIR, 'compressed', f.urlPath);
  await fsp.mkdir(path.dirname(base), { recursive: true });
  // A copy is kept only when it saves something worth a header.
  if (br && br.length < f.size * 0.95) {
    await fsp.writeFile(base + '.br', br);
    f.br = makeVariant('br', base + '.br', br.length, f.hash);
  }
  if (gz && gz.length < f.size * 0.95) {
    await fsp.writeFile(base + '.gz', gz);
    f.gzip = makeVariant('gzip', base + '.gz', gz.length, f.hash);
  }
}

/**
 * Makes the missing compressed copies of a site, then records them in its
 * manifest. Stops early (without error) when `stillWanted` turns false.
 */
export async function precompressSite(site: SiteIndex, log: Logger, stillWanted: () => boolean = () => true): Promise<void> {
  const todo = [...site.files.values()].filter(needsCompression);
  if (site.notFoundPage && !site.files.has(site.notFoundPage.urlPath) && needsCompression(site.notFoundPage)) todo.push(site.notFoundPage);
  const textBytes = todo.reduce((sum, f) => sum + f.size, 0);
  const quality = textBytes <= DENSEST_UP_TO ? 11 : 5;
  for (const f of todo) {
    if (!stillWanted()) return;
    try {
      await compressFile(site, f, quality);
    } catch (err) {
      log.warn('cannot precompress a file; it is served uncompressed', { release: site.releaseDir, file: f.urlPath, err });
      return;
    }
  }
  site.manifest = manifestOf(site, true);
  try {
    // The copies reach the disk before the manifest that lists them.
    const copies = path.join(site.releaseDir, MANIFEST_DIR, 'compressed');
    if (todo.length > 0 && (await fsp.stat(copies).catch(() => undefined))) await syncTree(copies);
    await writeManifest(site.releaseDir, site.manifest);
  } catch (err) {
    log.warn('cannot record compressed copies in the release manifest', { release: site.releaseDir, err });
  }
}

/**
 * Takes up the compressed copies another process made and recorded in the
 * release's manifest (a deploy worker): each becomes servable in `site`.
 * Returns how many copies were taken up.
 */
export function adoptCompressedCopies(site: SiteIndex): number {
  const stored = readManifest(site.releaseDir);
  if (!stored) return 0;
  const byPath = new Map<string, SiteFile>();
  for (const f of site.files.values()) byPath.set(f.urlPath, f);
  let adopted = 0;
  for (const e of stored.files) {
    const f = e.hidden ? site.notFoundPage : byPath.get(e.path);
    // Only for the very file this index serves (same size and hash).
    if (!f || f.size !== e.size || f.hash !== e.hash) continue;
    if (e.br && !f.br) {
      f.br = makeVariant('br', path.join(site.releaseDir, e.br.file), e.br.size, f.hash);
      adopted++;
    }
    if (e.gzip && !f.gzip) {
      f.gzip = makeVariant('gzip', path.join(site.releaseDir, e.gzip.file), e.gzip.size, f.hash);
      adopted++;
    }
  }
  site.manifest = stored;
  return adopted;
}
