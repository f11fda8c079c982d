// The `live` pointer of a tenant: a symlink to releases/<deployId>, replaced by
// rename(2), which is atomic: a reader sees the old release or the new, never none.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

export function readLiveDeployId(liveLink: string): string | undefined {
  try {
    return path.basename(fs.readlinkSync(liveLink));
  } catch {
    return undefined;
  }
}

export function pointLiveAt(liveLink: string, deployId: string): void {
  const tmp = `${liveLink}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.symlinkSync(path.join('releases', deployId), tmp);
  try {
    fs.renameSync(tmp, liveLink);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  // Make the rename durable before the database says the release is live.
  const dirFd = fs.openSync(path.dirname(liveLink), 'r');
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}
