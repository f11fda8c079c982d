// The data folder's layout, in one place:
//   <data>/platform.db secret admin-token outbox/ run/<id>/http-<n>.sock mail/<id>/mail.sock git/<id>.git certs/<domain>/
//   <data>/disks/<id>.img disks/<id>/{data/, tmp/} (root's: the tenant's disk image and its mount point)
//   <data>/tenants/<id>/{releases/<deployId>/, live -> releases/<deployId>, staging/, store/, data/, logs/, data-owner-pending}
import path from 'node:path';

export class DataPaths {
  constructor(readonly root: string) {}
  get database() { return path.join(this.root, 'platform.db'); }
  get outbox() { return path.join(this.root, 'outbox'); }
  get tenantsRoot() { return path.join(this.root, 'tenants'); }
  get runRoot() { return path.join(this.root, 'run'); }
  get gitRoot() { return path.join(this.root, 'git'); }
  /** Certificates, keys and the ACME account key (0700, the platform's own). */
  get certsRoot() { return path.join(this.root, 'certs'); }
  tenant(id: string) { return path.join(this.tenantsRoot, id); }
  releases(id: string) { return path.join(this.tenant(id), 'releases'); }
  release(id: string, deployId: string) { return path.join(this.releases(id), deployId); }
  /** Symlink to the live release; renamed over atomically on activation. */
  live(id: string) { return path.join(this.tenant(id), 'live'); }
  staging(id: string) { return path.join(this.tenant(id), 'staging'); }
  /** The tenant's content-addressed store: files by SHA-256, hard-linked into its releases. */
  contentStore(id: string) { return path.join(this.tenant(id), 'store'); }
  tenantData(id: string) { return path.join(this.tenant(id), 'data'); }
  logs(id: string) { return path.join(this.tenant(id), 'logs'); }
  /** Left by a restore: the data folder's contents still need the tenant's user as owner (done at the next start as root). */
  dataOwnerPending(id: string) { return path.join(this.tenant(id), 'data-owner-pending'); }
  run(id: string) { return path.join(this.runRoot, id); }
  socket(id: string) { return path.join(this.run(id), 'http.sock'); }
  /** Per-tenant capability sockets (mail, plugin keys): platform-owned, tn-<id> may only connect. */
  get capabilitiesRoot() { return path.join(this.root, 'mail'); }
  capabilities(id: string) { return path.join(this.capabilitiesRoot, id); }
  /** Tenants' disk images and their mount points (root 0700; sandbox/tenant-disks.ts). */
  get disksRoot() { return path.join(this.root, 'disks'); }
  diskImage(id: string) { return path.join(this.disksRoot, `${id}.img`); }
  diskMount(id: string) { return path.join(this.disksRoot, id); }
  gitRepo(id: string) { return path.join(this.gitRoot, `${id}.git`); }
}
