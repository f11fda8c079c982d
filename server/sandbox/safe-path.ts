// Root touching folders an unprivileged process can rename: walk from a
// trusted folder one component at a time, never following a symbolic link,
// and act on what was opened (a descriptor, or /proc/self/fd/N/... which
// resolves through the pinned folder). A link or a rename swapped in
// mid-walk then fails the walk instead of redirecting root elsewhere.
import fs from 'node:fs';
import path from 'node:path';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;

function components(root: string, target: string): string[] {
  const rel = path.relative(root, target);
  if (rel === '' ) return [];
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`${target} is not inside ${root}`);
  return rel.split(path.sep);
}

/**
 * Opens `target` (inside `root`) without following links at any step below
 * `root`. `flags` apply to the last component (O_NOFOLLOW is always added).
 * The caller owns the returned descriptor.
 */
export function openBeneath(root: string, target: string, flags = O_RDONLY, mode = 0o640): number {
  const parts = components(root, target);
  let fd = fs.openSync(root, O_RDONLY | O_DIRECTORY);
  try {
    for (const [i, part] of parts.entries()) {
      const last = i === parts.length - 1;
      const next = fs.openSync(`/proc/self/fd/${fd}/${part}`, (last ? flags : O_RDONLY | O_DIRECTORY) | O_NOFOLLOW, mode);
      fs.closeSync(fd);
      fd = next;
    }
    return fd;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/** Runs `fn` with a path that names `dir` (inside `root`) as it was opened, immune to later renames. */
export function inPinnedFolder<T>(root: string, dir: string, fn: (pinned: string) => T): T {
  let fd: number;
  try {
    fd = openBeneath(root, dir, O_RDONLY | O_DIRECTORY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fn('/nonexistent-folder-' + process.pid);
    throw err;
  }
  try {
    return fn(`/proc/self/fd/${fd}`);
  } finally {
    fs.closeSync(fd);
  }
}

/** mkdir -p below `root` without following links; returns nothing, throws if a component is a link. */
export function mkdirBeneath(root: string, target: string, mode = 0o750): void {
  let current = root;
  for (const part of components(root, target)) {
    inPinnedFolder(root, current, (pinned) => {
      try {
        fs.mkdirSync(`${pinned}/${part}`, { mode });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    });
    current = path.join(current, part);
  }
}

/** rm -rf of `target` (inside `root`); rm never follows links inside, and the parents are pinned. */
export function removeBeneath(root: string, target: string): void {
  inPinnedFolder(root, path.dirname(target), (pinned) => fs.rmSync(`${pinned}/${path.basename(target)}`, { recursive: true, force: true }));
}

/**
 * chown -R of what `dir` (inside `root`) holds, for a tree an unprivileged
 * user may change meanwhile: every step goes through a descriptor of its
 * folder, links are re-owned themselves (never followed), and a file with more
 * than one name is left alone (a hard link may name a file from elsewhere).
 */
export function giveContentsTo(root: string, dir: string, uid: number, gid: number): void {
  const walk = (dirFd: number) => {
    for (const name of fs.readdirSync(`/proc/self/fd/${dirFd}`)) {
      const p = `/proc/self/fd/${dirFd}/${name}`;
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isSymbolicLink()) {
        fs.lchownSync(p, uid, gid);
        continue;
      }
      if (!st.isFile() && !st.isDirectory()) continue;
      let fd: number;
      try {
        fd = fs.openSync(p, O_RDONLY | O_NOFOLLOW | fs.constants.O_NONBLOCK | (st.isDirectory() ? O_DIRECTORY : 0));
      } catch {
        continue; // gone or swapped since the lstat
      }
      try {
        const now = fs.fstatSync(fd);
        if (now.isFile() && now.nlink > 1) continue;
        if (!now.isFile() && !now.isDirectory()) continue;
        fs.fchownSync(fd, uid, gid);
        if (now.isDirectory()) walk(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
  };
  const top = openBeneath(root, dir, O_RDONLY | O_DIRECTORY);
  try {
    walk(top);
  } finally {
    fs.closeSync(top);
  }
}
