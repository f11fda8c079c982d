// Who may read and write what on disk (DESIGN.md, "Isolation layers" 1):
//   <data>/                      platform 0711 (others may pass through, not list)
//   platform.db*, secret, admin-token   platform 0600
//   git/, outbox/                platform 0700
//   tenants/, run/               platform 0711
//   tenants/<id>/                platform:tn-<id> 0750
//     releases/<deploy>/...      platform:tn-<id> 0750 dirs, 0640 files (read, never write)
//     data/                      tn-<id>:tn-<id> 0700 (the tenant's own)
//     logs/, staging/            platform 0700 (the worker writes its log through an inherited fd)
//   run/<id>/                    tn-<id>:platform 2770 (the worker's socket; the edge connects)
import fs from 'node:fs';
import path from 'node:path';
import type { DataPaths } from '../paths.js';
import type { UnixIdentity } from './unix-users.js';

export interface PlatformIdentity {
  readonly uid: number;
  readonly gid: number;
}

function setOwnerAndMode(p: string, uid: number, gid: number, mode: number): void {
  fs.chownSync(p, uid, gid);
  fs.chmodSync(p, mode);
}

/** The platform's own files and folders: nothing in them is readable by a tenant. */
export function hardenDataFolder(paths: DataPaths, platform: PlatformIdentity): void {
  setOwnerAndMode(paths.root, platform.uid, platform.gid, 0o711);
  for (const dir of [paths.tenantsRoot, paths.runRoot]) {
    fs.mkdirSync(dir, { recursive: true });
    setOwnerAndMode(dir, platform.uid, platform.gid, 0o711);
  }
  for (const dir of [paths.gitRoot, paths.outbox]) {
    fs.mkdirSync(dir, { recursive: true });
    setOwnerAndMode(dir, platform.uid, platform.gid, 0o700);
  }
  for (const name of ['platform.db', 'platform.db-wal', 'platform.db-shm', 'secret', 'admin-token']) {
    const file = path.join(paths.root, name);
    if (fs.existsSync(file)) setOwnerAndMode(file, platform.uid, platform.gid, 0o600);
  }
}

/** The tenant's folders with their owners and modes; creates what is missing. */
export function applyTenantFileModes(paths: DataPaths, tenantId: string, tenant: UnixIdentity, platform: PlatformIdentity): void {
  const tenantDir = paths.tenant(tenantId);
  for (const dir of [tenantDir, paths.releases(tenantId), paths.tenantData(tenantId), paths.logs(tenantId), paths.run(tenantId)]) {
    fs.mkdirSync(dir, { recursive: true });
  }
  setOwnerAndMode(tenantDir, platform.uid, tenant.gid, 0o750);
  setOwnerAndMode(paths.releases(tenantId), platform.uid, tenant.gid, 0o750);
  setOwnerAndMode(paths.tenantData(tenantId), tenant.uid, tenant.gid, 0o700);
  setOwnerAndMode(paths.logs(tenantId), platform.uid, platform.gid, 0o700);
  if (fs.existsSync(paths.staging(tenantId))) setOwnerAndMode(paths.staging(tenantId), platform.uid, platform.gid, 0o700);
  setOwnerAndMode(paths.run(tenantId), tenant.uid, platform.gid, 0o2770);
  for (const entry of fs.readdirSync(paths.releases(tenantId))) {
    sealRelease(path.join(paths.releases(tenantId), entry), tenant.gid, platform);
  }
}

/**
 * A release as the tenant sees it: readable through its group, never writable.
 * Symlinks are re-owned, not followed (lchown); their modes mean nothing on Linux.
 */
export function sealRelease(dir: string, tenantGid: number, platform: PlatformIdentity): void {
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) {
      fs.lchownSync(p, platform.uid, tenantGid);
      return;
    }
    fs.chownSync(p, platform.uid, tenantGid);
    if (st.isDirectory()) {
      fs.chmodSync(p, 0o750);
      for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    } else {
      fs.chmodSync(p, 0o640);
    }
  };
  walk(dir);
}
