// How much disk a tenant's repository takes, and how much a push may add:
// pushes count toward the tenant's `diskMB` limit, and one pack may not be
// larger than an archive upload (`archiveMB`).
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Limits } from '../model/limits.js';

const MiB = 1024 * 1024;

/** Bytes on disk under `dir` (allocated blocks; links not followed); 0 when it does not exist. */
export async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  const pending = [dir];
  while (pending.length > 0) {
    const d = pending.pop()!;
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fsp.readdir(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) pending.push(p);
      else if (e.isFile()) {
        const st = await fsp.lstat(p).catch(() => undefined);
        if (st) total += st.blocks * 512;
      }
    }
  }
  return total;
}

/** The largest pack a push may send now: one archive's worth, and no more than the room left under diskMB. */
export function maxPushBytes(limits: Pick<Limits, 'archiveMB' | 'diskMB'>, repositoryBytes: number): number {
  return Math.max(0, Math.min(limits.archiveMB * MiB, limits.diskMB * MiB - repositoryBytes));
}

/** Why a repository of `bytes` is refused, or undefined when it fits. */
export function overDiskLimit(limits: Pick<Limits, 'diskMB'>, bytes: number): string | undefined {
  if (bytes <= limits.diskMB * MiB) return undefined;
  return `This push would make the repository ${Math.ceil(bytes / MiB)} MiB, over this tenant's disk limit of ${limits.diskMB} MiB; refused.`;
}
