// Making writes survive a power cut: fsync of each file, then of the folders
// that hold their names (a new file's name lives in its folder, and a folder's
// own name in its parent). fsync waits for the disk, so many are issued at once
// on libuv's thread pool (the file system's journal commits them together)
// instead of one after another on the event loop.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

/** fsyncs in flight at once: enough to keep the pool's threads busy; the rest wait in its queue, not in memory. */
export const FSYNC_BATCH = 32;

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;

/** fsync of an open handle's file, then close (both even when the sync fails). */
async function syncAndClose(fh: fsp.FileHandle): Promise<void> {
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A file's data and metadata on disk (not its name: that is its folder's fsync). */
export async function fsyncFile(file: string): Promise<void> {
  await syncAndClose(await fsp.open(file, O_RDONLY | O_NOFOLLOW));
}

/** A folder's entries (the names of what was created, renamed or removed in it) on disk. */
export async function fsyncFolder(dir: string): Promise<void> {
  await syncAndClose(await fsp.open(dir, O_RDONLY | O_DIRECTORY));
}

/** Runs `fn` over `items`, at most `width` at a time; the first failure rejects (after the others started have settled). */
export async function inBatches<T>(items: readonly T[], fn: (item: T) => Promise<void>, width = FSYNC_BATCH): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const runner = async () => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, runner));
  if (failure) throw failure.err;
}

export async function fsyncFiles(files: readonly string[]): Promise<void> {
  await inBatches(files, fsyncFile);
}

/**
 * fsync of folders, deepest first: a folder is synced only after every folder
 * below it, so when a parent's entry is on disk, what it names is too.
 */
export async function fsyncFolders(dirs: Iterable<string>): Promise<void> {
  const byDepth = new Map<number, string[]>();
  for (const d of new Set(dirs)) {
    const depth = path.resolve(d).split(path.sep).length;
    const row = byDepth.get(depth);
    if (row) row.push(d);
    else byDepth.set(depth, [d]);
  }
  for (const depth of [...byDepth.keys()].sort((a, b) => b - a)) await inBatches(byDepth.get(depth)!, fsyncFolder);
}

/** Every folder from `top` down to each of `dirs` (the folders `mkdir -p` may have made on the way). */
export function foldersBetween(top: string, dirs: Iterable<string>): Set<string> {
  const out = new Set<string>([top]);
  for (const d of dirs) {
    for (let cur = d; cur !== top && cur.startsWith(top + path.sep) && !out.has(cur); cur = path.dirname(cur)) out.add(cur);
  }
  return out;
}

/**
 * Walks a tree (symlinks are not followed) and puts all of it on disk: every
 * regular file, then every folder bottom-up. Symlinks need no fsync of their
 * own: a symlink is made with its name, which its folder's fsync covers.
 */
export async function syncTree(root: string): Promise<{ files: number; folders: number }> {
  const files: string[] = [];
  const folders: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    folders.push(dir);
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
      const abs = path.join(dir, e.name);
      if (e.isDirectory()) await walk(abs);
      else if (e.isFile()) files.push(abs);
    }
  };
  await walk(root);
  await fsyncFiles(files);
  await fsyncFolders(folders);
  return { files: files.length, folders: folders.length };
}

/**
 * mkdir -p that leaves the new folders' names on disk: when something was
 * created, every folder from the parent of the first new one down is fsynced.
 */
export async function makeFolderDurably(dir: string, mode = 0o750): Promise<void> {
  const first = await fsp.mkdir(dir, { recursive: true, mode });
  if (first === undefined) return;
  await fsyncFolders(foldersBetween(path.dirname(first), [dir]));
}

/**
 * Replaces `file` with `data` so that a power cut leaves the old content or
 * the new, never a torn or empty file: temporary file, fsync, rename, fsync
 * of the folder.
 */
export async function writeFileDurably(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
  try {
    const fh = await fsp.open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fsyncFolder(path.dirname(file));
}
