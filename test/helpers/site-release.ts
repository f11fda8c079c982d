// Makes a release out of files written by the test, and makes it live through
// the real ReleaseManager (as the deploy pipeline does after unpacking).
import fs from 'node:fs';
import path from 'node:path';
import type { Platform } from '../../server/app/platform.js';
import { newDeployId } from '../../server/auth/token-hash.js';

export type SiteFiles = Record<string, string | Buffer>;

/** Writes `files` (relative paths) into a new release and activates it. Returns the deploy id. */
export async function publishSite(p: Platform, tenantId: string, files: SiteFiles, opts: { mtime?: Date } = {}): Promise<string> {
  const deployId = newDeployId();
  p.store.deploys.insert({ id: deployId, tenantId, source: 'upload', message: 'test site', actor: 'test' });
  const dir = p.paths.release(tenantId, deployId);
  let bytes = 0;
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
    if (opts.mtime) fs.utimesSync(file, opts.mtime, opts.mtime);
    bytes += Buffer.byteLength(content);
  }
  p.store.deploys.markReady(deployId, { files: Object.keys(files).length, bytes });
  await p.releases.activateRelease(tenantId, deployId);
  return deployId;
}
