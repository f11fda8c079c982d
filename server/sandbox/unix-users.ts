// One system user and group per tenant, `tn-<id>`: no login shell, no home,
// no supplementary groups. Created with the tenant, removed with it.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { addUserLocked, ETC, removeUserLocked, withAccountLocks, type AccountFiles } from './passwd-files.js';

export interface UnixIdentity {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** Longest user name useradd accepts. */
const MAX_USER_NAME = 32;

/**
 * `tn-<id>`; ids too long for a user name (over 29 characters) keep their
 * first 20 characters and gain a short hash of the whole id, so names stay unique.
 */
export function tenantUserName(tenantId: string): string {
  const plain = `tn-${tenantId}`;
  if (plain.length <= MAX_USER_NAME) return plain;
  return `tn-${tenantId.slice(0, 20)}-${crypto.createHash('sha256').update(tenantId).digest('hex').slice(0, 8)}`;
}

/** Absolute path of a system tool, or undefined. Looked up in the usual sbin/bin folders only. */
export function findTool(name: string): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin']) {
    const file = `${dir}/${name}`;
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // try the next folder
    }
  }
  return undefined;
}

/** The entry in /etc/passwd or /etc/group (where useradd and groupadd put it). */
function localEntry(db: 'passwd' | 'group', name: string): string[] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/etc/${db}`, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) if (line.startsWith(`${name}:`)) return line.split(':');
  return undefined;
}

/** The local files first (every worker start looks its user up; a getent process costs ~15 ms), then NSS. */
function getent(db: 'passwd' | 'group', name: string): string[] | undefined {
  const local = localEntry(db, name);
  if (local) return local;
  try {
    return execFileSync('getent', [db, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split(':');
  } catch {
    return undefined;
  }
}

export function lookupUser(name: string): UnixIdentity | undefined {
  const row = getent('passwd', name);
  if (!row) return undefined;
  return { name, uid: Number(row[2]), gid: Number(row[3]) };
}

export function lookupGroupId(name: string): number | undefined {
  const row = getent('group', name);
  return row ? Number(row[2]) : undefined;
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Runs a shadow-utils tool; retries while another process holds the /etc/passwd lock. */
function run(tool: string, args: string[]): void {
  const file = findTool(tool);
  if (!file) throw new Error(`${tool} is not installed`);
  for (let attempt = 0; ; attempt++) {
    try {
      execFileSync(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      return;
    } catch (err) {
      const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim();
      if (/lock/i.test(stderr) && attempt < 50) {
        sleepSync(100);
        continue;
      }
      throw new Error(`${tool} ${args.join(' ')} failed: ${stderr || (err as Error).message}`);
    }
  }
}

/** Creates the user and its own group when missing; returns the ids either way. */
export function ensureSystemUser(name: string): UnixIdentity {
  const existing = lookupUser(name);
  if (existing) return existing;
  // Another process may create the same name at the same moment: what exists afterwards is what counts.
  try {
    if (lookupGroupId(name) === undefined) run('groupadd', ['--system', name]);
  } catch (err) {
    if (lookupGroupId(name) === undefined) throw err;
  }
  try {
    run('useradd', ['--system', '--gid', name, '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--no-user-group', name]);
  } catch (err) {
    if (!lookupUser(name)) throw err;
  }
  const made = lookupUser(name);
  if (!made) throw new Error(`user ${name} was created but cannot be looked up`);
  return made;
}

/**
 * A tenant's user and group (uid = gid, from the tenant id range), written
 * into the account files in one locked step without spawning useradd; the
 * ids of an existing entry otherwise. Safe against concurrent creations:
 * the id is chosen and written under the account-file locks.
 */
export function ensureTenantUser(name: string, files: AccountFiles = ETC): UnixIdentity {
  const local = files === ETC ? localEntry('passwd', name) : undefined;
  if (local) return { name, uid: Number(local[2]), gid: Number(local[3]) };
  const ids = withAccountLocks(files, () => addUserLocked(files, name));
  return { name, ...ids };
}

/** Removes the user and its group; what is already gone is fine. */
export function removeSystemUser(name: string, files: AccountFiles = ETC): void {
  // Entries in the local files (tenant users, and those useradd made) go in one locked rewrite.
  withAccountLocks(files, () => removeUserLocked(files, name));
  // Anything still known (another NSS source): the shadow-utils tools decide.
  if (files === ETC && lookupUser(name)) run('userdel', [name]);
  if (files === ETC && lookupGroupId(name) !== undefined) run('groupdel', [name]);
}
