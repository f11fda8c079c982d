// Who may read and write what on disk (README, "Security model", "A Unix user and group per tenant"):
//   <data>/                      platform 0711 (others may pass through, not list)
//   platform.db*, secret, admin-token   platform 0600
//   git/, outbox/                platform 0700
//   tenants/, run/               platform 0711
//   tenants/<id>/                platform:tn-<id> 0750
//     releases/<deploy>/...      platform:tn-<id> 0750 dirs, 0640 files (read, never write)
//     data/                      tn-<id>:tn-<id> 0700 (the tenant's own; after a restore, its contents too)
//     logs/, staging/            platform 0700 (the worker writes its log through an inherited fd)
//   run/<id>/                    root:platform 0750 (the workers' sockets, made by root, platform 0600;
//                                the edge connects, tenants cannot enter: a worker gets its socket as a descriptor)
//   mail/                        platform 0711
//   mail/<id>/                   platform:tn-<id> 0750 (the capability socket: the edge listens, only the tenant connects)
//   disks/                       root 0700 (the tenants' disk images and mount points; tenant-disks.ts)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { DataPaths } from '../paths.js';
import type { UnixIdentity } from './unix-users.js';
import { giveContentsTo, mkdirBeneath, openBeneath } from './safe-path.js';

export interface PlatformIdentity {
  readonly uid: number;
  readonly gid: number;
}

/**
 * Root changes owners and modes of folders an unprivileged edge could rename:
 * through a descriptor opened beneath the data folder without following any link.
 */
function setOwnerAndMode(root: string, p: string, uid: number, gid: number, mode: number): void {
  const fd = openBeneath(root, p);
  try {
    fs.fchownSync(fd, uid, gid);
    fs.fchmodSync(fd, mode);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Gives the platform user (the edge) everything of the data folder except the
 * tenants' own data folders and the socket folders (root's). Run by root before the edge starts.
 */
export function handDataFolderTo(paths: DataPaths, platform: PlatformIdentity): void {
  const skip = (p: string) => p === paths.disksRoot || path.dirname(p) === paths.runRoot || (path.basename(p) === 'data' && path.dirname(path.dirname(p)) === paths.tenantsRoot);
  const walk = (p: string) => {
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st || skip(p)) return;
    if (st.uid !== platform.uid || (st.gid !== platform.gid && st.gid === 0)) fs.lchownSync(p, platform.uid, st.gid === 0 ? platform.gid : st.gid);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(paths.root);
}

/** The platform's own files and folders: nothing in them is readable by a tenant. */
export function hardenDataFolder(paths: DataPaths, platform: PlatformIdentity): void {
  const root = paths.root;
  setOwnerAndMode(root, root, platform.uid, platform.gid, 0o711);
  for (const dir of [paths.tenantsRoot, paths.runRoot, paths.capabilitiesRoot]) {
    mkdirBeneath(root, dir);
    setOwnerAndMode(root, dir, platform.uid, platform.gid, 0o711);
  }
  for (const dir of [paths.gitRoot, paths.outbox]) {
    mkdirBeneath(root, dir);
    setOwnerAndMode(root, dir, platform.uid, platform.gid, 0o700);
  }
  for (const name of ['platform.db', 'platform.db-wal', 'platform.db-shm', 'secret', 'admin-token']) {
    const file = path.join(root, name);
    if (fs.existsSync(file)) setOwnerAndMode(root, file, platform.uid, platform.gid, 0o600);
  }
}

/** The tenant's folders with their owners and modes; creates what is missing. */
export function applyTenantFileModes(
  paths: DataPaths,
  tenantId: string,
  tenant: UnixIdentity,
  platform: PlatformIdentity,
  seal: (releaseDir: string, tenantGid: number) => void = (dir, gid) => sealRelease(dir, gid, platform),
): void {
  const root = paths.root;
  const tenantDir = paths.tenant(tenantId);
  for (const dir of [tenantDir, paths.releases(tenantId), paths.tenantData(tenantId), paths.logs(tenantId), paths.run(tenantId)]) {
    mkdirBeneath(root, dir);
  }
  setOwnerAndMode(root, tenantDir, platform.uid, tenant.gid, 0o750);
  setOwnerAndMode(root, paths.releases(tenantId), platform.uid, tenant.gid, 0o750);
  setOwnerAndMode(root, paths.tenantData(tenantId), tenant.uid, tenant.gid, 0o700);
  // A restore wrote the data folder's contents as whoever ran it: they become the tenant's, once.
  const pending = paths.dataOwnerPending(tenantId);
  if (fs.lstatSync(pending, { throwIfNoEntry: false })?.isFile()) {
    giveContentsTo(root, paths.tenantData(tenantId), tenant.uid, tenant.gid);
    fs.unlinkSync(pending);
  }
  setOwnerAndMode(root, paths.logs(tenantId), platform.uid, platform.gid, 0o700);
  if (fs.existsSync(paths.staging(tenantId))) setOwnerAndMode(root, paths.staging(tenantId), platform.uid, platform.gid, 0o700);
  // Never the tenant's: a worker that could rename or link its socket would make the edge connect anywhere.
  setOwnerAndMode(root, paths.run(tenantId), process.getuid?.() ?? 0, platform.gid, 0o750);
  mkdirBeneath(root, paths.capabilitiesRoot);
  mkdirBeneath(root, paths.capabilities(tenantId));
  setOwnerAndMode(root, paths.capabilities(tenantId), platform.uid, tenant.gid, 0o750);
  for (const entry of fs.readdirSync(paths.releases(tenantId))) {
    seal(path.join(paths.releases(tenantId), entry), tenant.gid);
  }
}

/**
 * sealRelease for a release the unprivileged edge wrote: done with the edge's
 * own rights plus the tenant's group (chgrp to a group one belongs to needs no
 * privilege), so a link swapped in during the walk cannot make root touch
 * anything outside the release.
 */
export function sealReleaseAsPlatform(dir: string, tenantGid: number, platform: PlatformIdentity, setpriv: string): void {
  execFileSync(
    setpriv,
    [`--reuid=${platform.uid}`, `--regid=${tenantGid}`, '--clear-groups', '--', '/bin/sh', '-c', 'chgrp -R -h "$0" "$1" && chmod -R u=rwX,g=rX,o= "$1"', String(tenantGid), dir],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
}

/**
 * A release as the tenant sees it: readable through its group, never writable.
 * Symlinks are re-owned, not followed (lchown); their modes mean nothing on Linux.
 * What is already right is left alone: a release built from the content store
 * is mostly hard links to files an earlier seal already set (only its folders
 * and new files change).
 */
export function sealRelease(dir: string, tenantGid: number, platform: PlatformIdentity): void {
  const owned = (st: fs.Stats) => st.uid === platform.uid && st.gid === tenantGid;
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) {
      if (!owned(st)) fs.lchownSync(p, platform.uid, tenantGid);
      return;
    }
    if (!owned(st)) fs.chownSync(p, platform.uid, tenantGid);
    const mode = st.isDirectory() ? 0o750 : 0o640;
    if ((st.mode & 0o7777) !== mode) fs.chmodSync(p, mode);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
}
