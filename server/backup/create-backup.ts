// `tenantry backup <file>`: an online copy of a data folder while the platform
// serves from it. Run against the folder directly (no API): SQLite's online
// backup API copies the database in one step inside one read transaction, and
// in WAL mode that neither blocks the platform's writers nor sees half of one.
// What follows is read after that snapshot and made to agree with it:
//   - the `live` links are read after it: a deploy that went live since is
//     copied with its release (at start the link is the truth; see
//     ReleaseManager.reconcile);
//   - releases are immutable: the live one and the kept ones are copied; one
//     pruned while copied is marked pruned in the copy of the database (the
//     start then removes its leftovers); the live one must copy whole;
//   - a tenant deleted meanwhile is left out, and removed from the copy;
//   - data folders may change while copied: each file is copied as it is
//     when opened (see tar-writer.ts), so the folder is not a snapshot;
//   - git repositories: refs are copied before objects, so the copy's refs
//     name objects it holds (unless a `git gc` runs at that very moment).
// The database copy goes in last, after these corrections.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Store } from '../db/store.js';
import { DataPaths } from '../paths.js';
import { fsyncFile, fsyncFolder } from '../disk/durable.js';
import { TarWriter } from './tar-writer.js';
import { withDiskDataUnmounted } from '../sandbox/tenant-disks.js';
import { BACKUP_FORMAT, DATABASE_FILE, KEY_FOLDERS, SECRET_FILES, SUMMARY_FILE, type BackupSummary, type TenantSummary } from './backup-format.js';

export class BackupError extends Error {
  override readonly name = 'BackupError';
}

export interface BackupOptions {
  readonly dataDir: string;
  /** The archive to write; must not exist yet. */
  readonly file: string;
}

export interface BackupResult {
  readonly file: string;
  /** Size of the archive on disk. */
  readonly bytes: number;
  readonly summary: BackupSummary;
}

const MAX_NOTES = 50;

class Notes {
  readonly lines: string[] = [];
  private dropped = 0;
  add(line: string): void {
    if (this.lines.length < MAX_NOTES) this.lines.push(line);
    else this.dropped++;
  }
  all(): string[] {
    return this.dropped ? [...this.lines, `... and ${this.dropped} more`] : this.lines;
  }
}

interface CopyCount {
  changed: number;
  gone: number;
}

interface TreeCopy {
  readonly writer: TarWriter;
  readonly notes: Notes;
  /** Symlinks must resolve inside this folder; others are left out (restore would refuse them). */
  readonly linkRoot: string;
  /** Folder names copied after their siblings (git: objects after refs). */
  readonly last?: ReadonlySet<string>;
  /** Entries that may be rewritten while copied without making the copy unusable (not counted). */
  readonly volatile?: (name: string) => boolean;
}

function isInside(root: string, p: string): boolean {
  return p === root || p.startsWith(root + path.sep);
}

function missing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function unreadable(err: unknown, abs: string): Error {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EACCES' || e.code === 'EPERM') {
    return new BackupError(`cannot read ${abs} (${e.code}): run the backup as root (with isolation on, each tenant's data folder belongs to the tenant's own user)`);
  }
  return err as Error;
}

/**
 * Copies a file or folder tree into the archive under `name`. Within a folder,
 * files and links come before subfolders: a release's manifest
 * (.tenantry/index.json) is copied before the compressed copies it may list.
 */
async function copyTree(c: TreeCopy, abs: string, name: string, count: CopyCount = { changed: 0, gone: 0 }): Promise<CopyCount> {
  const gone = () => {
    if (!c.volatile?.(name)) count.gone++;
    return count;
  };
  let st: fs.Stats;
  try {
    st = await fsp.lstat(abs);
  } catch (err) {
    if (missing(err)) return gone();
    throw unreadable(err, abs);
  }
  if (st.isDirectory()) {
    let entries: fs.Dirent[];
    try {
      entries = await fsp.readdir(abs, { withFileTypes: true });
    } catch (err) {
      if (missing(err)) return gone();
      throw unreadable(err, abs);
    }
    await c.writer.directory(name, st);
    const rank = (e: fs.Dirent) => (!e.isDirectory() ? 0 : c.last?.has(e.name) ? 2 : 1);
    entries.sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) await copyTree(c, path.join(abs, e.name), `${name}/${e.name}`, count);
  } else if (st.isFile()) {
    let outcome;
    try {
      outcome = await c.writer.file(name, abs);
    } catch (err) {
      throw unreadable(err, abs);
    }
    if (outcome === 'gone') gone();
    if (outcome === 'changed' && !c.volatile?.(name)) {
      count.changed++;
      c.notes.add(`${name}: changed while it was copied`);
    }
  } else if (st.isSymbolicLink()) {
    let target: string;
    try {
      target = await fsp.readlink(abs);
    } catch (err) {
      if (missing(err)) return gone();
      throw err;
    }
    if (!path.isAbsolute(target) && isInside(c.linkRoot, path.resolve(path.dirname(abs), target))) await c.writer.symlink(name, target, st);
    else c.notes.add(`${name}: symbolic link to ${target} left out (it points outside ${path.basename(c.linkRoot)}/)`);
  } else {
    c.notes.add(`${name}: left out (not a file, folder or link)`);
  }
  return count;
}

async function exists(p: string): Promise<boolean> {
  return (await fsp.lstat(p).catch(() => undefined)) !== undefined;
}

/** The database as one consistent copy (one backup step: one read transaction). */
async function snapshotDatabase(source: string, dest: string): Promise<void> {
  const db = new Database(source, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    await db.backup(dest, { progress: () => 0x7fffffff });
  } finally {
    db.close();
  }
}

export async function createBackup(o: BackupOptions): Promise<BackupResult> {
  const paths = new DataPaths(path.resolve(o.dataDir));
  const out = path.resolve(o.file);
  if (!fs.existsSync(paths.database)) {
    throw new BackupError(`${paths.root} holds no platform database (${DATABASE_FILE}); give the data folder with --data-dir or TENANTRY_DATA_DIR`);
  }
  if (fs.existsSync(out)) throw new BackupError(`${out} already exists; choose a new file name or remove it first`);
  if (!fs.statSync(path.dirname(out), { throwIfNoEntry: false })?.isDirectory()) throw new BackupError(`the folder ${path.dirname(out)} does not exist`);

  const scratch = await fsp.mkdtemp(path.join(path.dirname(out), '.tenantry-backup-'));
  const partial = `${out}.${process.pid}.partial`;
  let writer: TarWriter | undefined;
  let snap: Database.Database | undefined;
  try {
    await fsp.chmod(scratch, 0o700);
    const snapFile = path.join(scratch, DATABASE_FILE);
    await snapshotDatabase(paths.database, snapFile);
    snap = new Database(snapFile);
    snap.pragma('foreign_keys = ON');
    const check = snap.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new BackupError(`the database copy fails SQLite's check (${String(check)}); the platform database may be damaged`);
    const store = new Store(snap);

    // The archive: never readable by others, and only named `out` once complete.
    writer = new TarWriter(fs.createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
    const notes = new Notes();

    for (const name of SECRET_FILES) {
      const abs = path.join(paths.root, name);
      if (!(await exists(abs))) {
        notes.add(`${name}: not in the data folder (given by the environment?); keep it yourself, the restored platform needs it`);
        continue;
      }
      await copyTree({ writer, notes, linkRoot: paths.root }, abs, name);
    }

    const tenants: TenantSummary[] = [];
    if (await exists(paths.tenantsRoot)) await writer.directory('tenants', await fsp.lstat(paths.tenantsRoot));
    for (const t of store.tenants.list()) {
      const dir = paths.tenant(t.id);
      const name = `tenants/${t.id}`;
      const st = await fsp.lstat(dir).catch(() => undefined);
      if (!st?.isDirectory()) {
        notes.add(`tenant ${t.id}: deleted during the backup; left out`);
        store.tenants.delete(t.id);
        continue;
      }
      await writer.directory(name, st);
      const liveTarget = await fsp.readlink(paths.live(t.id)).catch(() => undefined);
      const live = liveTarget ? path.basename(liveTarget) : null;
      const history = store.deploys.forTenant(t.id);
      // A deploy running at the snapshot: live since (then it is copied, and the start marks it ready) or not in the backup.
      for (const d of history) if (d.status === 'staging' && d.id !== live) store.deploys.markFailed(d.id, 'in progress when the backup was taken; not in the backup');
      const ready = history.filter((d) => d.status === 'ready').map((d) => d.id);
      const wanted = [...new Set([...(live ? [live] : []), ...ready])];
      const copied: string[] = [];
      const releasesDir = paths.releases(t.id);
      if (await exists(releasesDir)) await writer.directory(`${name}/releases`, await fsp.lstat(releasesDir));
      for (const id of wanted) {
        const releaseDir = paths.release(t.id, id);
        const releaseName = `${name}/releases/${id}`;
        // Compressed copies are written beside a live release: the manifest copied first lists only finished ones.
        const copy: TreeCopy = { writer, notes, linkRoot: releaseDir, volatile: (n) => n.startsWith(`${releaseName}/.tenantry/`) };
        const count = (await exists(releaseDir)) ? await copyTree(copy, releaseDir, releaseName) : { changed: 0, gone: 1 };
        if (count.gone === 0 && count.changed === 0) {
          copied.push(id);
          continue;
        }
        if (id === live) throw new BackupError(`the live release of tenant ${t.id} changed while it was copied (a rollback and a prune meanwhile?); run the backup again`);
        // Removed by retention while copied: what was copied goes at the next start (pruned releases are cleaned up).
        store.deploys.markPruned(id);
        notes.add(`tenant ${t.id}: release ${id} was removed during the backup; marked pruned`);
      }
      if (liveTarget) await writer.symlink(`${name}/live`, liveTarget, await fsp.lstat(paths.live(t.id)));
      const copyData = async (data: string) => {
        if (!(await exists(data))) return 0;
        const count = await copyTree({ writer: writer!, notes, linkRoot: data }, data, `${name}/data`);
        return count.changed + count.gone;
      };
      // With the platform stopped, a tenant's data is in its disk image, not mounted: read from the image itself.
      let inImage: { value: number } | undefined;
      try {
        inImage = await withDiskDataUnmounted(paths, t.id, copyData);
      } catch (err) {
        if (err instanceof BackupError) throw err;
        throw new BackupError((err as Error).message);
      }
      const dataChanged = inImage ? inImage.value : await copyData(paths.tenantData(t.id));
      tenants.push({ id: t.id, live, releases: copied, dataChanged });
    }

    if (await exists(paths.gitRoot)) {
      await writer.directory('git', await fsp.lstat(paths.gitRoot));
      for (const t of tenants) {
        const repo = paths.gitRepo(t.id);
        if (await exists(repo)) await copyTree({ writer, notes, linkRoot: repo, last: new Set(['objects']) }, repo, `git/${t.id}.git`);
      }
    }
    for (const folder of KEY_FOLDERS) {
      const abs = path.join(paths.root, folder);
      if (await exists(abs)) await copyTree({ writer, notes, linkRoot: abs }, abs, folder);
    }

    // The corrected database copy, whole (its log folded in), then the summary.
    snap.pragma('wal_checkpoint(TRUNCATE)');
    snap.close();
    snap = undefined;
    await copyTree({ writer, notes, linkRoot: scratch }, snapFile, DATABASE_FILE);
    const summary: BackupSummary = { format: BACKUP_FORMAT, createdAt: new Date().toISOString(), tenants, notes: notes.all() };
    await writer.content(SUMMARY_FILE, Buffer.from(JSON.stringify(summary, null, 2) + '\n'));
    await writer.end();
    await fsp.chmod(partial, 0o600);
    await fsyncFile(partial);
    await fsp.rename(partial, out);
    await fsyncFolder(path.dirname(out));
    return { file: out, bytes: (await fsp.stat(out)).size, summary };
  } catch (err) {
    writer?.destroy(err as Error);
    await writer?.done.catch(() => {});
    await fsp.rm(partial, { force: true });
    throw err;
  } finally {
    snap?.close();
    await fsp.rm(scratch, { recursive: true, force: true });
  }
}
