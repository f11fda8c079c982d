// An archive deploy fills the content store too: once its release is live,
// every regular file of it is hashed and becomes (by a hard link, no copy) the
// store's object for that content, so a manifest deploy that follows sends
// none of them again. `.tenantry/` (the platform's own files) is left out.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { inBatches } from '../disk/durable.js';
import { MANIFEST_DIR } from '../static/index/release-manifest.js';
import type { ContentStore } from './content-store.js';

/** Files up to this size are hashed from one read; larger ones stream. */
const WHOLE_READ_BYTES = 4 * 1024 * 1024;

export async function sha256OfFile(file: string, size: number): Promise<string> {
  const h = crypto.createHash('sha256');
  if (size <= WHOLE_READ_BYTES) return h.update(await fsp.readFile(file)).digest('hex');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Regular files of a release (links and the platform's folder left out), with their sizes. */
async function regularFiles(releaseDir: string): Promise<{ file: string; size: number }[]> {
  const out: { file: string; size: number }[] = [];
  const walk = async (dir: string, top: boolean): Promise<void> => {
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
      if (top && e.name === MANIFEST_DIR) continue;
      const abs = path.join(dir, e.name);
      if (e.isDirectory()) await walk(abs, false);
      else if (e.isFile()) out.push({ file: abs, size: (await fsp.lstat(abs)).size });
    }
  };
  await walk(releaseDir, true);
  return out;
}

/**
 * Adds every file of a (synced) release to the tenant's store; returns how
 * many. With `contents` (path in the release -> SHA-256, taken while
 * unpacking) nothing is read again: each file is only linked.
 */
export async function fillStoreFromRelease(store: ContentStore, tenantId: string, releaseDir: string, contents?: ReadonlyArray<readonly [string, string]>): Promise<number> {
  if (contents) {
    const known = contents.filter(([rel]) => rel.split('/')[0] !== MANIFEST_DIR);
    await inBatches(known, async ([rel, sha256]) => store.adopt(tenantId, sha256, path.join(releaseDir, rel)), 8);
    return known.length;
  }
  const files = await regularFiles(releaseDir);
  await inBatches(files, async ({ file, size }) => store.adopt(tenantId, await sha256OfFile(file, size), file), 8);
  return files.length;
}
