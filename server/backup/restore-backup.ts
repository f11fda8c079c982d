// `tenantry restore <file>`: a backup into an empty (or new) data folder.
// Every entry is judged before it is written (restore-rules.ts): no absolute
// paths, no `..`, nothing outside the backup's known names, no hard links or
// devices, no entry beneath a link, no link leaving the folder; after all is
// written each link is resolved once more on disk. A refused archive leaves
// the folder as empty as it was. Owners are not restored: files belong to
// whoever restores; the next `tenantry serve` as root gives the platform's
// folders to its user and each tenant's data folder to the tenant's user
// (marked here with data-owner-pending; see sandbox/file-modes.ts).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import { Parser, type ReadEntry } from 'tar';
import { DataPaths } from '../paths.js';
import { fsyncFolder, syncTree } from '../disk/durable.js';
import { resolveConfined } from '../deploy/archive-links.js';
import { isBackupSummary, DATABASE_FILE, SUMMARY_FILE, type BackupSummary } from './backup-format.js';
import { RestoreJudge, RestoreRuleError, type RestorePlan } from './restore-rules.js';

export class RestoreError extends Error {
  override readonly name = 'RestoreError';
}

export interface RestoreOptions {
  readonly file: string;
  readonly dataDir: string;
}

export interface RestoreResult {
  readonly dataDir: string;
  readonly summary: BackupSummary;
  readonly tenants: readonly string[];
}

/** fs errors that mean "this archive's names do not fit together". */
const ENTRY_FS_ERRORS = new Set(['EEXIST', 'ENOTDIR', 'EISDIR', 'ELOOP', 'ENAMETOOLONG', 'EINVAL']);

const notABackup = (detail: string) => new RestoreRuleError('not a valid tar.gz backup', undefined, detail);

interface FolderMeta {
  readonly mode: number;
  readonly mtime: Date | undefined;
}

/** What was written: folders (their modes and times are set last, deepest first). */
interface Written {
  readonly folders: Map<string, FolderMeta>;
}

async function checkTarget(dir: string): Promise<{ created: boolean }> {
  const st = await fsp.stat(dir).catch(() => undefined);
  if (st && !st.isDirectory()) throw new RestoreError(`${dir} is not a folder`);
  if (st) {
    const names = await fsp.readdir(dir);
    if (names.length > 0) {
      const shown = names.slice(0, 3).join(', ') + (names.length > 3 ? ', ...' : '');
      throw new RestoreError(`${dir} is not empty (it holds ${shown}); restore only into an empty or new folder`);
    }
    return { created: false };
  }
  await fsp.mkdir(dir, { recursive: true, mode: 0o711 });
  return { created: true };
}

/** The archive file as tar bytes (gunzipped when it starts with the gzip magic). */
async function openArchive(file: string): Promise<Readable> {
  const fh = await fsp.open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new RestoreError(`cannot read ${file} (${err.code ?? err.message})`);
  });
  const head = Buffer.alloc(2);
  const { bytesRead } = await fh.read(head, 0, 2, 0);
  await fh.close();
  const raw = fs.createReadStream(file);
  if (bytesRead < 2 || head[0] !== 0x1f || head[1] !== 0x8b) return raw;
  const gunzip = zlib.createGunzip();
  raw.on('error', (err) => gunzip.destroy(err));
  return raw.pipe(gunzip);
}

function entryError(err: unknown, name: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new RestoreError('the disk is full');
  return code && ENTRY_FS_ERRORS.has(code) ? new RestoreRuleError('the entry cannot be written', name, code) : err;
}

async function writeEntry(root: string, entry: ReadEntry, plan: RestorePlan, written: Written): Promise<void> {
  if (plan.kind === 'skip') return;
  const abs = path.join(root, plan.path);
  // Parents the archive did not list are made private; listed ones get their modes at the end.
  await fsp.mkdir(path.dirname(abs), { recursive: true, mode: 0o700 });
  switch (plan.kind) {
    case 'directory':
      await fsp.mkdir(abs, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST' || !fs.lstatSync(abs).isDirectory()) throw err;
      });
      written.folders.set(plan.path, { mode: plan.mode, mtime: entry.mtime });
      return;
    case 'symlink':
      await fsp.symlink(plan.target, abs);
      return;
    case 'file': {
      const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
      const fh = await fsp.open(abs, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      try {
        for await (const chunk of entry as AsyncIterable<Buffer>) await fh.write(chunk);
        await fh.chmod(plan.mode);
        if (entry.mtime) await fh.utimes(entry.mtime, entry.mtime);
      } finally {
        await fh.close();
      }
      return;
    }
  }
}

/** Streams the archive into `root`, judging each entry first. Throws RestoreRuleError or RestoreError. */
async function extractInto(input: Readable, root: string, judge: RestoreJudge): Promise<Written> {
  const written: Written = { folders: new Map() };
  let failure: unknown;
  let signal!: () => void;
  const failed = new Promise<void>((resolve) => (signal = resolve));
  const fail = (err: unknown) => {
    if (failure) return;
    failure = err;
    signal();
  };
  const parser = new Parser({ strict: true, maxMetaEntrySize: 1024 * 1024 });
  parser.on('error', (err: Error) => fail(err instanceof RestoreRuleError ? err : notABackup(err.message)));
  parser.on('ignoredEntry', (entry: ReadEntry) => fail(new RestoreRuleError('unsupported entry type', entry.path, entry.type)));
  const open = new Set<ReadEntry>();
  let chain: Promise<void> = Promise.resolve();
  parser.on('entry', (entry: ReadEntry) => {
    open.add(entry);
    entry.once('end', () => open.delete(entry));
    chain = chain
      .then(async () => {
        if (failure) return;
        const plan = judge.check({ path: entry.path, type: entry.type, linkpath: entry.linkpath, mode: entry.mode });
        try {
          await writeEntry(root, entry, plan, written);
        } catch (err) {
          throw entryError(err, entry.path);
        }
      })
      .catch(fail)
      .finally(() => {
        if (!entry.emittedEnd) entry.resume();
      });
  });
  input.on('error', () => {});
  let sawData = false;
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      if (failure) break;
      sawData ||= chunk.length > 0;
      if (!parser.write(chunk)) await Promise.race([once(parser, 'drain').catch(() => {}), failed]);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail(typeof code === 'string' && code.startsWith('Z_') ? notABackup(`gzip: ${(err as Error).message}`) : err);
  }
  if (!failure && !sawData) fail(notABackup('the file is empty'));
  if (!failure) {
    const ended = once(parser, 'end').catch(() => {});
    parser.end();
    await Promise.race([ended, failed]);
  }
  if (failure) {
    input.destroy();
    parser.abort(failure as Error);
    for (const e of open) e.end();
  }
  await chain.catch(() => {});
  if (failure) throw failure;
  return written;
}

async function readSummary(root: string): Promise<BackupSummary> {
  let json: unknown;
  try {
    json = JSON.parse(await fsp.readFile(path.join(root, SUMMARY_FILE), 'utf8'));
  } catch {
    throw new RestoreRuleError('not a Tenantry backup', undefined, `${SUMMARY_FILE} is missing or unreadable`);
  }
  if (!isBackupSummary(json)) throw new RestoreRuleError('not a Tenantry backup of a known format', SUMMARY_FILE);
  return json;
}

function checkDatabase(file: string): void {
  if (!fs.existsSync(file)) throw new RestoreRuleError('not a Tenantry backup', undefined, `${DATABASE_FILE} is missing`);
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { fileMustExist: true });
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(String(check));
    db.prepare('SELECT count(*) FROM tenants').get();
  } catch (err) {
    throw new RestoreRuleError('the database in the backup is damaged or not a Tenantry database', DATABASE_FILE, (err as Error).message);
  } finally {
    db?.close();
  }
}

/** Empties the folder (or removes it when the restore made it): a refused restore leaves nothing. */
async function wipe(root: string, created: boolean): Promise<void> {
  if (created) {
    await fsp.rm(root, { recursive: true, force: true });
    return;
  }
  for (const name of await fsp.readdir(root).catch(() => [] as string[])) await fsp.rm(path.join(root, name), { recursive: true, force: true });
}

export async function restoreBackup(o: RestoreOptions): Promise<RestoreResult> {
  const root = path.resolve(o.dataDir);
  const file = path.resolve(o.file);
  if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) throw new RestoreError(`${file} is not a file`);
  const { created } = await checkTarget(root);
  try {
    const judge = new RestoreJudge();
    const written = await extractInto(await openArchive(file), root, judge);
    const summary = await readSummary(root);
    // Names alone can hide an escape (a -> b/.. with b -> ..): each link is resolved on disk.
    for (const rel of judge.symlinks) {
      if (resolveConfined(root, rel) === undefined) throw new RestoreRuleError('symbolic links must stay inside the backup', rel, 'resolves outside it');
    }
    checkDatabase(path.join(root, DATABASE_FILE));
    await fsp.rm(path.join(root, SUMMARY_FILE));

    const paths = new DataPaths(root);
    const tenants = fs.existsSync(paths.tenantsRoot) ? (await fsp.readdir(paths.tenantsRoot)).sort() : [];
    for (const id of tenants) {
      await fsp.mkdir(paths.logs(id), { recursive: true, mode: 0o700 });
      if (fs.existsSync(paths.tenantData(id))) await fsp.writeFile(paths.dataOwnerPending(id), 'restored: the next start as root gives data/ to the tenant\'s user\n', { mode: 0o600 });
    }
    // Folder modes and times last (deepest first): a read-only folder would have refused its own entries.
    const folders = [...written.folders.entries()].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [rel, meta] of folders) {
      const abs = path.join(root, rel);
      await fsp.chmod(abs, meta.mode);
      if (meta.mtime) await fsp.utimes(abs, meta.mtime, meta.mtime);
    }
    await fsp.chmod(root, 0o711);
    await syncTree(root);
    await fsyncFolder(path.dirname(root));
    return { dataDir: root, summary, tenants };
  } catch (err) {
    await wipe(root, created);
    if (err instanceof RestoreRuleError) throw new RestoreError(`the backup was refused, nothing was restored: ${err.message}`);
    throw err;
  }
}
