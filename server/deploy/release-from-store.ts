// A release made from the content store: each file a new name for its stored
// object (no bytes copied), the folders synced deepest first, and the release
// manifest written from the hashes the deploy already knows (no file read to
// hash it). Compressed copies the live release already made for a content are
// linked in too, so deploy-time compression only works on what changed.
import fsp from 'node:fs/promises';
import path from 'node:path';
import fs from 'node:fs';
import { fsyncFolders, foldersBetween } from '../disk/durable.js';
import { makeYielder } from './take-turns.js';
import { etagHashOf, manifestOfListing, MANIFEST_DIR, readManifest, writeManifest, type ManifestEntry, type ManifestVariant } from '../static/index/release-manifest.js';
import type { ContentStore, StoredObject } from './content-store.js';
import type { BuiltRelease } from './deploy-service.js';
import type { SiteFiles } from './site-manifest.js';

const COMPRESSED = path.join(MANIFEST_DIR, 'compressed');

export interface StoreRelease {
  readonly tenantId: string;
  readonly files: SiteFiles;
  readonly objects: ReadonlyMap<string, StoredObject>;
  /** The live release, whose compressed copies may be reused; undefined when there is none. */
  readonly previousRelease: string | undefined;
}

/** Builds the release in `treeDir` (which must not exist yet). Throws if an object is missing. */
export async function buildReleaseFromStore(store: ContentStore, r: StoreRelease, treeDir: string): Promise<BuiltRelease> {
  await fsp.mkdir(treeDir, { mode: 0o755 });
  const dirs = new Set<string>();
  for (const p of r.files.keys()) {
    const dir = path.dirname(path.join(treeDir, p));
    if (dir !== treeDir) dirs.add(dir);
  }
  // Shortest first: each mkdir finds its parent made.
  const pause = makeYielder();
  for (const dir of [...dirs].sort((a, b) => a.length - b.length)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    await pause();
  }

  let bytes = 0;
  const listing = [...r.files].map(([p, h]) => {
    const o = r.objects.get(h);
    if (!o) throw new Error(`the content store has no object ${h} (for ${p})`);
    bytes += o.size;
    return { path: p, size: o.size, mtimeMs: o.mtimeMs, hash: etagHashOf(h) };
  });
  await store.placeAll(r.tenantId, [...r.files].map(([p, h]) => ({ sha256: h, dest: path.join(treeDir, p) })));

  // Every file's size, time and hash are known: the manifest is written without reading the tree again.
  const manifest = manifestOfListing(listing);
  const reused = await reuseCompressedCopies(treeDir, manifest.files, r.previousRelease);
  // The new names (files, reused copies) reach the disk before the manifest that lists them.
  await fsyncFolders(foldersBetween(treeDir, [...dirs, ...reused.dirs]));
  await writeManifest(treeDir, { ...manifest, files: reused.files });
  return { releaseRoot: treeDir, files: r.files.size, bytes };
}

/** A variant file the platform itself wrote: under `.tenantry/compressed/`, no way out. */
function isOwnCopy(v: ManifestVariant | undefined): v is ManifestVariant {
  if (!v) return false;
  const norm = path.normalize(v.file);
  return norm === v.file && norm.startsWith(COMPRESSED + path.sep) && !norm.split(path.sep).includes('..');
}

/**
 * Links the live release's compressed copies of the same contents into the
 * new release and lists them in its entries. Best effort: a copy that cannot
 * be linked is simply made again after the deploy.
 */
async function reuseCompressedCopies(
  treeDir: string,
  entries: readonly ManifestEntry[],
  previousRelease: string | undefined,
): Promise<{ files: ManifestEntry[]; dirs: string[] }> {
  const previous = previousRelease ? readManifest(previousRelease) : undefined;
  if (!previous) return { files: [...entries], dirs: [] };
  const byHash = new Map<string, ManifestEntry>();
  for (const e of previous.files) if (isOwnCopy(e.br) || isOwnCopy(e.gzip)) byHash.set(e.hash, e);
  const dirs = new Set<string>();
  const pause = makeYielder();
  const link = (from: ManifestVariant, urlPath: string, suffix: string): ManifestVariant | undefined => {
    const file = path.join(COMPRESSED, urlPath + suffix);
    const dest = path.join(treeDir, file);
    try {
      const dir = path.dirname(dest);
      if (!dirs.has(dir)) {
        fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
        dirs.add(dir);
      }
      fs.linkSync(path.join(previousRelease!, from.file), dest);
      return { size: from.size, file };
    } catch {
      return undefined;
    }
  };
  const files: ManifestEntry[] = [];
  for (const e of entries) {
    const old = byHash.get(e.hash);
    if (!old || old.size !== e.size) {
      files.push(e);
      continue;
    }
    const br = isOwnCopy(old.br) ? link(old.br, e.path, '.br') : undefined;
    const gzip = isOwnCopy(old.gzip) ? link(old.gzip, e.path, '.gz') : undefined;
    files.push({ ...e, ...(br ? { br } : {}), ...(gzip ? { gzip } : {}) });
    await pause();
  }
  return { files, dirs: [...dirs] };
}
