// The `live` pointer of a tenant: a symlink to releases/<deployId>, replaced by
// rename(2), which is atomic: a reader sees the old release or the new, never none.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import { fsyncFolder } from '../disk/durable.js';

export function readLiveDeployId(liveLink: string): string | undefined {
  try {
    return path.basename(fs.readlinkSync(liveLink));
  } catch {
    return undefined;
  }
}

/**
 * Switches the link, then fsyncs the folder holding it: resolves once the
 * switch is on disk, so the database may say the release is live.
 */
export async function pointLiveAt(liveLink: string, deployId: string): Promise<void> {
  const tmp = `${liveLink}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  await fsp.symlink(path.join('releases', deployId), tmp);
  try {
    await fsp.rename(tmp, liveLink);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fsyncFolder(path.dirname(liveLink));
}
