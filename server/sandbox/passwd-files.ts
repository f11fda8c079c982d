// Tenant users written straight into /etc/passwd, /etc/group, /etc/shadow and
// /etc/gshadow: groupadd + useradd cost two process starts and four file
// rewrites each (~200 ms a tenant, more on a busy machine), and their system
// id range (100-999) runs out below a thousand tenants.
//
// Safe next to useradd & co: every file is locked the way shadow-utils locks
// it (commonio: `<file>.lock` made by link(), holding the owner's pid, stale
// when that process is gone), in useradd's order, and replaced by rename, so
// readers see the old file or the new one. glibc's lckpwdf (an fcntl lock on
// /etc/.pwd.lock) is not taken: Node has no fcntl; shadow-utils tools take the
// commonio locks as well, so they still wait for us.
import fs from 'node:fs';
import { processAlive } from './process-state.js';
import path from 'node:path';

export interface AccountFiles {
  /** Folder holding passwd, group, shadow, gshadow (/etc; another folder in tests). */
  readonly dir: string;
}

export const ETC: AccountFiles = { dir: '/etc' };

/** Tenant ids (uid = gid) come from here: far above login users, system users and the usual subordinate ranges. */
export const TENANT_ID_MIN = 1_900_000_000;
export const TENANT_ID_MAX = 1_999_999_999;

/** useradd's order: passwd, shadow, group, gshadow. */
const FILES = ['passwd', 'shadow', 'group', 'gshadow'] as const;
type AccountFile = (typeof FILES)[number];

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);


/** One commonio lock: link a file holding our pid to `<file>.lock`; a lock whose owner is gone is removed. */
function tryLock(file: string): boolean {
  const lock = `${file}.lock`;
  const mine = `${file}.${process.pid}`;
  fs.writeFileSync(mine, String(process.pid));
  try {
    fs.linkSync(mine, lock);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    let owner: number;
    try {
      owner = Number(fs.readFileSync(lock, 'utf8').trim());
    } catch (e) {
      // Released between our link() and this read: try again.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) return false;
    // Stale (its process died): shadow-utils removes it the same way.
    fs.rmSync(lock, { force: true });
    return false;
  } finally {
    fs.rmSync(mine, { force: true });
  }
}

/** Runs `fn` holding the locks of every account file that exists; waits up to 15 s for another tool's locks. */
export function withAccountLocks<T>(files: AccountFiles, fn: () => T): T {
  const present = FILES.map((f) => path.join(files.dir, f)).filter((f) => fs.existsSync(f));
  const held: string[] = [];
  const deadline = Date.now() + 15_000;
  try {
    for (const file of present) {
      while (!tryLock(file)) {
        if (Date.now() > deadline) throw new Error(`${file} is locked by another process (${file}.lock)`);
        sleepSync(20);
      }
      held.push(file);
    }
    return fn();
  } finally {
    for (const file of held.reverse()) fs.rmSync(`${file}.lock`, { force: true });
  }
}

function read(files: AccountFiles, name: AccountFile): string | undefined {
  try {
    return fs.readFileSync(path.join(files.dir, name), 'utf8');
  } catch {
    return undefined;
  }
}

/** Replaces the file by rename, with the old one's mode and owner, on disk before it is visible. */
function replace(files: AccountFiles, name: AccountFile, text: string): void {
  const file = path.join(files.dir, name);
  const st = fs.statSync(file);
  const tmp = `${file}.tenantry-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', st.mode & 0o7777);
  try {
    fs.writeSync(fd, text);
    fs.fchownSync(fd, st.uid, st.gid);
    fs.fchmodSync(fd, st.mode & 0o7777);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

function withLine(text: string, line: string): string {
  return text.length === 0 || text.endsWith('\n') ? `${text}${line}\n` : `${text}\n${line}\n`;
}

function withoutName(text: string, name: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith(`${name}:`))
    .join('\n');
}

/** Ids in use as a uid or gid, or inside a subordinate range (/etc/subuid, /etc/subgid). */
function usedIds(files: AccountFiles, passwd: string, group: string): (id: number) => boolean {
  const used = new Set<number>();
  for (const l of passwd.split('\n')) {
    const f = l.split(':');
    if (f.length > 3) used.add(Number(f[2])).add(Number(f[3]));
  }
  for (const l of group.split('\n')) {
    const f = l.split(':');
    if (f.length > 2) used.add(Number(f[2]));
  }
  const ranges: [number, number][] = [];
  for (const sub of ['subuid', 'subgid']) {
    let text = '';
    try {
      text = fs.readFileSync(path.join(files.dir, sub), 'utf8');
    } catch {
      continue;
    }
    for (const l of text.split('\n')) {
      const [, start, count] = l.split(':');
      if (start && count) ranges.push([Number(start), Number(start) + Number(count)]);
    }
  }
  return (id) => used.has(id) || ranges.some(([a, b]) => id >= a && id < b);
}

/**
 * Adds a no-login user with its own group of the same id, unless the name is
 * already there (then its ids). Call under withAccountLocks.
 */
export function addUserLocked(files: AccountFiles, name: string): { uid: number; gid: number } {
  const passwd = read(files, 'passwd') ?? '';
  const group = read(files, 'group') ?? '';
  const existing = passwd.split('\n').find((l) => l.startsWith(`${name}:`));
  if (existing) {
    const f = existing.split(':');
    return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  const isUsed = usedIds(files, passwd, group);
  let id = TENANT_ID_MIN;
  while (isUsed(id)) if (++id > TENANT_ID_MAX) throw new Error('no free tenant user id left');
  const days = Math.floor(Date.now() / 86_400_000);
  // Group first, as groupadd then useradd would leave them.
  const groupLine = group.split('\n').some((l) => l.startsWith(`${name}:`)) ? undefined : `${name}:x:${id}:`;
  if (groupLine) replace(files, 'group', withLine(group, groupLine));
  const gshadow = read(files, 'gshadow');
  if (groupLine && gshadow !== undefined) replace(files, 'gshadow', withLine(withoutName(gshadow, name), `${name}:!::`));
  const gid = groupLine ? id : Number(group.split('\n').find((l) => l.startsWith(`${name}:`))!.split(':')[2]);
  replace(files, 'passwd', withLine(passwd, `${name}:x:${id}:${gid}::/nonexistent:/usr/sbin/nologin`));
  const shadow = read(files, 'shadow');
  if (shadow !== undefined) replace(files, 'shadow', withLine(withoutName(shadow, name), `${name}:!:${days}::::::`));
  return { uid: id, gid };
}

/** Removes the user and its group from every account file that names them. Call under withAccountLocks. */
export function removeUserLocked(files: AccountFiles, name: string): void {
  for (const f of FILES) {
    const text = read(files, f);
    if (text === undefined) continue;
    const next = withoutName(text, name);
    if (next !== text) replace(files, f, next);
  }
}
