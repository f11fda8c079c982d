// The `diskMB` limit on a tenant's data folder and its workers' /tmp: each
// tenant gets a sparse ext4 image of diskMB, loop-mounted by root at the
// tenant's first worker start (tenant creation stays fast), so the kernel
// answers ENOSPC past the limit and the host's disk stays untouched.
//
//   <data>/disks/                  root 0700 (neither the edge nor a tenant can enter)
//     <id>.img                     root 0600, sparse; its size is the limit
//     <id>/                        the image's mount point
//       data/                      tn-<id> 0700, bind-mounted on <data>/tenants/<id>/data
//       tmp/w-<n>/                 tn-<id> 0700, one worker's /tmp; removed when it exits
//
// Data folder and /tmp share the one budget. Everything else keeps using the
// data folder's usual path (backups, deletion, plugins): the bind mount puts
// the image's contents there. Root reaches every path through descriptors
// opened without following links (safe-path.ts) and hands them to mount and
// losetup as /proc/<pid>/fd/<n>, so a folder renamed or swapped by the edge
// cannot point root elsewhere. Nothing is mounted once the platform stops.
import { execFile, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';
import type { DataPaths } from '../paths.js';
import { mkdirBeneath, openBeneath, removeBeneath } from './safe-path.js';
import { findTool, type UnixIdentity } from './unix-users.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const { O_RDONLY, O_RDWR, O_DIRECTORY, O_CREAT, O_EXCL } = fs.constants;
const MOUNT_OPTIONS = 'nosuid,nodev,discard';

export interface DiskTools {
  readonly mkfs: string;
  readonly losetup: string;
  readonly mount: string;
  readonly umount: string;
  readonly resize2fs: string;
  readonly e2fsck: string;
  readonly cp: string;
}

export type DiskProbe = { readonly tools: DiskTools; readonly reason?: undefined } | { readonly tools?: undefined; readonly reason: string };

let probed: DiskProbe | undefined;

/**
 * Whether this host can give tenants disk images: the tools, then a real
 * image made, mounted and unmounted (about half a second: done once per process).
 */
export function probeTenantDisks(): DiskProbe {
  probed ??= probeOnce();
  return probed;
}

function probeOnce(): DiskProbe {
  if (process.getuid?.() !== 0) return { reason: 'not running as root: disk images cannot be mounted' };
  const names = { mkfs: 'mkfs.ext4', losetup: 'losetup', mount: 'mount', umount: 'umount', resize2fs: 'resize2fs', e2fsck: 'e2fsck', cp: 'cp' } as const;
  const found = Object.fromEntries(Object.entries(names).map(([k, n]) => [k, findTool(n)]));
  const missing = Object.entries(names).filter(([k]) => !found[k]).map(([, n]) => n);
  if (missing.length) return { reason: `missing ${missing.join(', ')} (e2fsprogs, util-linux)` };
  const tools = found as unknown as DiskTools;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantry-disk-probe-'));
  const img = path.join(dir, 'probe.img');
  const mnt = path.join(dir, 'mnt');
  const step = (file: string, args: string[]) => {
    const r = spawnSync(file, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error(String(r.stderr ?? '').trim().split('\n').pop() || `${path.basename(file)} exit ${r.status}`);
  };
  let mounted = false;
  try {
    fs.mkdirSync(mnt);
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 8 * MiB);
    step(tools.mkfs, ['-q', '-F', img]);
    step(tools.mount, ['-t', 'ext4', '-o', `loop,${MOUNT_OPTIONS}`, img, mnt]);
    mounted = true;
    step(tools.umount, [mnt]);
    mounted = false;
    return { tools };
  } catch (err) {
    return { reason: `a loop-mounted disk image does not work here (${(err as Error).message})` };
  } finally {
    if (mounted) spawnSync(tools.umount, ['-l', mnt]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Unmounts the tenant disks a platform left mounted below `paths` when it was
 * killed without a chance to clean up (its next start does the same).
 */
export async function unmountLeftoverDisks(paths: DataPaths, log: Logger): Promise<void> {
  const umount = findTool('umount');
  if (!umount || process.getuid?.() !== 0) return;
  // Only unmountAll's tools are used.
  const tools = { umount } as unknown as DiskTools;
  await new TenantDisks(paths, tools, log).unmountAll();
}

/** A worker's share of its tenant's disk: its private /tmp. */
export interface WorkerDisk {
  /** Host path of the folder that becomes the worker's /tmp. */
  readonly tmpDir: string;
  /** Other tenants' disk mounts at this moment (a namespace copied from the host's holds them: detach them there). */
  readonly foreignMounts: readonly string[];
  /** Removes that folder (the worker has exited). */
  release(): void;
}

/** Whether a loop device is still bound to the image (a mount of it, perhaps lazily detached, lives on). */
async function attached(losetup: string, image: string): Promise<boolean> {
  const { stdout } = await run(losetup, ['-j', image]);
  return stdout.trim() !== '';
}

/** Mount points in this process's mount table, decoded (mountinfo escapes spaces and the like as octal). */
function mountPoints(): string[] {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

export class TenantDisks {
  /** Per tenant, the preparation in progress or done: one at a time. */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Tenants whose image this process mounted. */
  private readonly mounted = new Set<string>();
  /** Workers using each tenant's disk now. */
  private readonly active = new Map<string, number>();

  constructor(
    private readonly paths: DataPaths,
    private readonly tools: DiskTools,
    private readonly log: Logger,
  ) {}

  /** Runs `fn` after whatever is under way for the tenant. */
  private serial<T>(tenantId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(tenantId) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.chains.set(tenantId, next);
    void next.catch(() => {}).finally(() => {
      if (this.chains.get(tenantId) === next) this.chains.delete(tenantId);
    });
    return next;
  }

  /**
   * The tenant's disk mounted at diskMB (made on first use, grown when the
   * limit went up) and a fresh /tmp folder for one worker. Undefined when the
   * data folder cannot be put under the limit (it holds more than diskMB
   * already): the worker then runs uncapped, and the log says why.
   */
  prepareWorker(tenantId: string, diskMB: number, owner: UnixIdentity): Promise<WorkerDisk | undefined> {
    return this.serial(tenantId, async () => {
      if (!(await this.mount(tenantId, diskMB, owner))) return undefined;
      const tmpRoot = path.join(this.paths.diskMount(tenantId), 'tmp');
      const tmpDir = path.join(tmpRoot, `w-${crypto.randomBytes(6).toString('hex')}`);
      mkdirBeneath(this.paths.root, tmpDir, 0o700);
      this.own(tmpDir, owner, 0o700);
      this.active.set(tenantId, (this.active.get(tenantId) ?? 0) + 1);
      let released = false;
      const own = [this.paths.tenantData(tenantId), this.paths.diskMount(tenantId)];
      const foreignMounts = mountPoints().filter((p) => this.tenantOfMountPoint(p) !== undefined && !own.includes(p));
      return {
        tmpDir,
        foreignMounts,
        release: () => {
          if (released) return;
          released = true;
          this.active.set(tenantId, (this.active.get(tenantId) ?? 1) - 1);
          removeBeneath(this.paths.root, tmpDir);
        },
      };
    });
  }

  /** Unmounts the tenant's disk (its workers are gone), keeping the image. */
  unmount(tenantId: string): Promise<void> {
    return this.serial(tenantId, async () => this.unmountNow(tenantId));
  }

  /** Unmounts and deletes the tenant's disk: its data goes with it (tenant deleted). */
  remove(tenantId: string): Promise<void> {
    return this.serial(tenantId, async () => {
      await this.unmountNow(tenantId);
      if (!fs.existsSync(this.paths.disksRoot)) return;
      removeBeneath(this.paths.root, this.paths.diskImage(tenantId));
      removeBeneath(this.paths.root, this.paths.diskMount(tenantId));
    });
  }

  /** Unmounts every tenant disk below this data folder, this process's and any a crashed run left (platform stop and start). */
  async unmountAll(): Promise<void> {
    const ids = new Set(this.mounted);
    for (const p of mountPoints()) {
      const m = this.tenantOfMountPoint(p);
      if (m) ids.add(m);
    }
    await Promise.all([...ids].map((id) => this.unmount(id).catch((err) => this.log.warn('could not unmount a tenant disk', { tenant: id, err }))));
  }

  private tenantOfMountPoint(p: string): string | undefined {
    const inDisks = path.dirname(p) === this.paths.disksRoot ? path.basename(p) : undefined;
    const inData = path.basename(p) === 'data' && path.dirname(path.dirname(p)) === this.paths.tenantsRoot ? path.basename(path.dirname(p)) : undefined;
    return inDisks ?? inData;
  }

  private isMounted(p: string): boolean {
    return mountPoints().includes(p);
  }

  /** /proc/<pid>/fd/<n>: the folder or file as opened, for a tool run as a child. */
  private static pinned(fd: number): string {
    return `/proc/${process.pid}/fd/${fd}`;
  }

  private own(p: string, owner: UnixIdentity, mode: number): void {
    const fd = openBeneath(this.paths.root, p, O_RDONLY | O_DIRECTORY);
    try {
      fs.fchownSync(fd, owner.uid, owner.gid);
      fs.fchmodSync(fd, mode);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** The root-only folder of the images; refused if anyone else owns it. */
  private disksFolder(): void {
    const root = this.paths.root;
    mkdirBeneath(root, this.paths.disksRoot, 0o700);
    const fd = openBeneath(root, this.paths.disksRoot, O_RDONLY | O_DIRECTORY);
    try {
      const st = fs.fstatSync(fd);
      if (st.uid !== 0) throw new Error(`${this.paths.disksRoot} does not belong to root`);
      fs.fchmodSync(fd, 0o700);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Mounts the tenant's disk unless this process already has; false when it stays unmounted (too much data to move in). */
  private async mount(tenantId: string, diskMB: number, owner: UnixIdentity): Promise<boolean> {
    const dataDir = this.paths.tenantData(tenantId);
    const mountDir = this.paths.diskMount(tenantId);
    if (this.mounted.has(tenantId) && this.isMounted(dataDir)) {
      if (await this.grow(tenantId, diskMB)) return true;
      // No online resizing here: once no worker uses the disk, it is unmounted and grown before the next mount.
      if (!(await this.idle(tenantId))) {
        this.log.warn('tenant disk not grown yet: online resizing is not permitted here, and a worker still uses the disk; it grows at a later worker start', { tenant: tenantId, diskMB });
        return true;
      }
      await this.unmountNow(tenantId);
      await this.detached(tenantId);
    }
    // Whatever a crashed run left mounted goes first: the image is mounted once, by us.
    await this.unmountNow(tenantId);
    this.disksFolder();
    const root = this.paths.root;
    const image = this.paths.diskImage(tenantId);
    let created = false;
    let fd: number;
    try {
      fd = openBeneath(root, image, O_RDWR);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fd = openBeneath(root, image, O_RDWR | O_CREAT | O_EXCL, 0o600);
      created = true;
    }
    let loop: string | undefined;
    try {
      // Two mounts of one ext4 image would corrupt it: an earlier one (lazily unmounted) must be gone entirely.
      await this.detached(tenantId);
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.uid !== 0 || st.nlink !== 1) throw new Error(`${image} is not a disk image of the platform's`);
      if (created) {
        fs.ftruncateSync(fd, diskMB * MiB);
        // No blocks kept for root (the tenant is never root), one inode per 32 KiB. Inode tables and the
        // journal are not zeroed now (the kernel does the tables in the background): a new 1 GiB image takes < 1 MiB.
        await run(this.tools.mkfs, ['-q', '-F', '-m', '0', '-i', '32768', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', TenantDisks.pinned(fd)]);
      } else if (st.size !== diskMB * MiB) {
        await this.resizeOffline(tenantId, fd, diskMB);
      }
      loop = (await run(this.tools.losetup, ['--find', '--show', TenantDisks.pinned(fd)])).stdout.trim();
    } catch (err) {
      // A half-made image would fail every later start: the next one makes it anew.
      if (created) removeBeneath(root, image);
      throw err;
    } finally {
      fs.closeSync(fd);
    }
    try {
      mkdirBeneath(root, mountDir, 0o700);
      await this.mountOn(mountDir, ['-t', 'ext4', '-o', MOUNT_OPTIONS, loop]);
    } finally {
      // Detached once unmounted (autoclear); straight away if the mount failed.
      await run(this.tools.losetup, ['-d', loop]).catch(() => {});
    }
    this.mounted.add(tenantId);
    try {
      const inside = path.join(mountDir, 'data');
      mkdirBeneath(root, inside, 0o700);
      // A fresh mount: no worker uses the /tmp folders of an earlier one.
      removeBeneath(root, path.join(mountDir, 'tmp'));
      mkdirBeneath(root, path.join(mountDir, 'tmp'), 0o711);
      if (created && !(await this.moveIn(tenantId, inside, diskMB))) {
        await this.unmountNow(tenantId);
        removeBeneath(root, image);
        return false;
      }
      this.own(inside, owner, 0o700);
      mkdirBeneath(root, dataDir, 0o700);
      const from = openBeneath(root, inside, O_RDONLY | O_DIRECTORY);
      try {
        await this.mountOn(dataDir, ['--bind', TenantDisks.pinned(from)]);
      } finally {
        fs.closeSync(from);
      }
    } catch (err) {
      await this.unmountNow(tenantId).catch(() => {});
      throw err;
    }
    return true;
  }

  /** mount(8) onto `dir` as opened without following links; paths taken as given (-c). */
  private async mountOn(dir: string, args: string[]): Promise<void> {
    const fd = openBeneath(this.paths.root, dir, O_RDONLY | O_DIRECTORY);
    try {
      await run(this.tools.mount, ['-c', ...args, TenantDisks.pinned(fd)]);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * A tenant's first image: what its data folder holds already (data from
   * before the limit, or from a restore) moves in, owners and modes kept. More
   * than fits: nothing moves, and the caller leaves the folder as it was.
   */
  private async moveIn(tenantId: string, inside: string, diskMB: number): Promise<boolean> {
    const root = this.paths.root;
    const dataDir = this.paths.tenantData(tenantId);
    if (!fs.existsSync(dataDir) || fs.readdirSync(dataDir).length === 0) return true;
    const from = openBeneath(root, dataDir, O_RDONLY | O_DIRECTORY);
    const to = openBeneath(root, inside, O_RDONLY | O_DIRECTORY);
    try {
      // cp never follows links inside the tree (-a implies -P); both tops are pinned.
      await run(this.tools.cp, ['-a', '--', `${TenantDisks.pinned(from)}/.`, `${TenantDisks.pinned(to)}/`]);
    } catch (err) {
      this.log.warn(`the data folder of ${tenantId} holds more than its disk limit of ${diskMB} MiB: it stays uncapped until diskMB is raised or the folder shrinks`, {
        tenant: tenantId,
        err: (err as { stderr?: string }).stderr?.trim() || (err as Error).message,
      });
      return false;
    } finally {
      fs.closeSync(from);
      fs.closeSync(to);
    }
    // Copied whole: the originals go, under the mount they would only hide and take room.
    for (const name of fs.readdirSync(dataDir)) removeBeneath(root, path.join(dataDir, name));
    return true;
  }

  /** The limit went up while mounted: the image grows (sparse) and its file system with it. False where the kernel refuses online resizing (no CAP_SYS_RESOURCE, as in many containers). */
  private async grow(tenantId: string, diskMB: number): Promise<boolean> {
    const fd = openBeneath(this.paths.root, this.paths.diskImage(tenantId), O_RDWR);
    try {
      const was = fs.fstatSync(fd).size;
      if (was >= diskMB * MiB) return true;
      fs.ftruncateSync(fd, diskMB * MiB);
      try {
        const dev = this.loopOf(tenantId);
        await run(this.tools.losetup, ['--set-capacity', dev]);
        await run(this.tools.resize2fs, [dev]);
        this.log.info('tenant disk grown', { tenant: tenantId, diskMB });
        return true;
      } catch (err) {
        // Back to the file system's size: the offline resize at the next mount sees what is left to do.
        fs.ftruncateSync(fd, was);
        this.log.info('tenant disk: online resizing refused', { tenant: tenantId, err: (err as { stderr?: string }).stderr?.trim() || (err as Error).message });
        return false;
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  /** The loop device behind the tenant's mounted image (from the mount table). */
  private loopOf(tenantId: string): string {
    const mountDir = this.paths.diskMount(tenantId);
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const f = line.split(' ');
      const sep = f.indexOf('-');
      if (f[4] === mountDir && sep > 0 && f[sep + 2]?.startsWith('/dev/loop')) return f[sep + 2]!;
    }
    throw new Error(`the disk of ${tenantId} is not mounted`);
  }

  /** Waits (a few seconds at most) until no worker uses the tenant's disk: an old one may still be stopping. */
  private async idle(tenantId: string): Promise<boolean> {
    for (let i = 0; i < 50 && (this.active.get(tenantId) ?? 0) > 0; i++) await new Promise((r) => setTimeout(r, 100));
    return (this.active.get(tenantId) ?? 0) === 0;
  }

  /** After a lazy unmount, the file system lets go of the image when its last user does: wait for the loop device to detach. */
  private async detached(tenantId: string): Promise<void> {
    const image = this.paths.diskImage(tenantId);
    for (let i = 0; i < 50; i++) {
      if (!(await attached(this.tools.losetup, image))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the disk image of ${tenantId} is still in use by an earlier mount (a process of the tenant still running?); try again shortly`);
  }

  /**
   * The limit changed while unmounted (or could not grow online): resized
   * before it is mounted. Data that does not fit a lower limit keeps the
   * image at its size, and the log says so.
   */
  private async resizeOffline(tenantId: string, fd: number, diskMB: number): Promise<void> {
    const img = TenantDisks.pinned(fd);
    const was = fs.fstatSync(fd).size;
    try {
      await run(this.tools.e2fsck, ['-f', '-p', img]).catch((err: { code?: number }) => {
        if (err.code !== 1) throw err; // 1: errors corrected
      });
      if (was < diskMB * MiB) fs.ftruncateSync(fd, diskMB * MiB);
      await run(this.tools.resize2fs, [img, `${diskMB * 1024}K`]);
      if (was > diskMB * MiB) fs.ftruncateSync(fd, diskMB * MiB);
      this.log.info('tenant disk resized', { tenant: tenantId, diskMB });
    } catch (err) {
      if (was < diskMB * MiB) fs.ftruncateSync(fd, was);
      this.log.warn(`the disk of ${tenantId} stays at ${Math.round(was / MiB)} MiB: resizing to ${diskMB} MiB failed (a lower limit than its data needs?)`, {
        tenant: tenantId,
        err: (err as { stderr?: string }).stderr?.trim() || (err as Error).message,
      });
    }
  }

  /**
   * Lazy unmount through a descriptor of the mount point: exact (no path
   * looked up again) and never refused as busy; the loop device detaches
   * itself once the last user is gone. The bind mount first, then the image.
   */
  private async unmountNow(tenantId: string): Promise<void> {
    this.mounted.delete(tenantId);
    for (const p of [this.paths.tenantData(tenantId), this.paths.diskMount(tenantId)]) {
      for (let i = 0; i < 8 && this.isMounted(p); i++) {
        const fd = openBeneath(this.paths.root, p, O_RDONLY | O_DIRECTORY);
        try {
          await run(this.tools.umount, ['-l', '-c', TenantDisks.pinned(fd)]);
        } finally {
          fs.closeSync(fd);
        }
      }
    }
  }
}

/**
 * For a backup taken while the platform is stopped (nothing mounted): runs
 * `fn` on the tenant's data as its disk image holds it, mounted read-only in
 * a private folder for that time. Undefined (and `fn` not run) when the data
 * folder holds the data itself: no image, or the image is mounted there now.
 */
export async function withDiskDataUnmounted<T>(paths: DataPaths, tenantId: string, fn: (dataDir: string) => Promise<T>): Promise<{ value: T } | undefined> {
  const image = paths.diskImage(tenantId);
  if (!fs.existsSync(image) || mountPoints().includes(paths.tenantData(tenantId))) return undefined;
  if (process.getuid?.() !== 0) throw new Error(`the data of tenant ${tenantId} is in its disk image (${image}), which only root can mount: run the backup as root, or while the platform runs`);
  const tool = (n: string) => {
    const t = findTool(n);
    if (!t) throw new Error(`${n} is not installed; it is needed to read the disk image of tenant ${tenantId}`);
    return t;
  };
  const [losetup, mount, umount] = [tool('losetup'), tool('mount'), tool('umount')];
  if (await attached(losetup, image)) throw new Error(`the disk image of tenant ${tenantId} is in use (the platform is starting or stopping?); run the backup again`);
  const where = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantry-backup-disk-'));
  const fd = openBeneath(paths.root, image, O_RDWR);
  let loop: string | undefined;
  let mounted = false;
  try {
    // The loop device writable, the file system read-only: a journal left by a crash is replayed, nothing else written.
    loop = (await run(losetup, ['--find', '--show', `/proc/${process.pid}/fd/${fd}`])).stdout.trim();
    await run(mount, ['-t', 'ext4', '-o', 'ro,nosuid,nodev,noexec', loop, where]);
    mounted = true;
    return { value: await fn(path.join(where, 'data')) };
  } finally {
    if (mounted) await run(umount, [where]).catch(() => run(umount, ['-l', where]));
    if (loop) await run(losetup, ['-d', loop]).catch(() => {});
    fs.closeSync(fd);
    fs.rmSync(where, { recursive: true, force: true });
  }
}
