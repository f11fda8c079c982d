// A warm worker: started ahead of need through the same sandbox as any worker
// (namespaces, seccomp, Node's permission model), with Node and the worker
// runtime (Express) loaded, but belonging to no tenant yet. It waits, running
// platform code only, until the launcher gives it a tenant over its start
// channel: one JSON line with the tenant's user, environment and release.
// It then becomes that user for good (no groups, no capabilities left) and
// goes on exactly as a worker started for that tenant would: the start
// handshake (CPU quota), plugins, routes. The launcher has by then put the
// tenant's release, data folder and /tmp where the sandbox sees them, and the
// process into the tenant's cgroups (sandbox/warm-workers.ts).
import fs from 'node:fs';

/** The runtime's flag for a warm start; the assignment comes on the --startup-fd channel. */
export const WARM_OPTION = '--warm';

export interface WarmAssignment {
  readonly uid: number;
  readonly gid: number;
  /** Exactly the environment the worker gets (as for a worker started for the tenant). */
  readonly env: Readonly<Record<string, string>>;
  /** The release folder as the sandbox sees it. */
  readonly release: string;
}

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

export function encodeAssignment(a: WarmAssignment): string {
  return JSON.stringify(a) + '\n';
}

function parseAssignment(line: string): WarmAssignment {
  const v = JSON.parse(line) as Partial<WarmAssignment>;
  const okId = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n > 0;
  if (!okId(v.uid) || !okId(v.gid)) throw new Error('the assignment names no unprivileged user');
  if (typeof v.release !== 'string' || !v.release.startsWith('/')) throw new Error('the assignment names no release');
  if (typeof v.env !== 'object' || v.env === null) throw new Error('the assignment has no environment');
  for (const [k, val] of Object.entries(v.env)) if (typeof val !== 'string') throw new Error(`environment variable ${k} is not a string`);
  return v as WarmAssignment;
}

/** Blocks until the launcher sends the assignment line on `fd` (the start channel, kept open for the handshake). */
export function awaitAssignment(fd: number): WarmAssignment {
  const chunk = Buffer.alloc(64 * 1024);
  let text = '';
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(fd, chunk, 0, chunk.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      pause(2);
      continue;
    }
    if (n === 0) throw new Error('the launcher closed the start channel before giving a tenant');
    text += chunk.toString('utf8', 0, n);
    const end = text.indexOf('\n');
    if (end >= 0) return parseAssignment(text.slice(0, end));
    if (text.length > 4 * 1024 * 1024) throw new Error('the assignment is too long');
  }
}

/**
 * Becomes the tenant's user for good: no supplementary groups, its group, its
 * user (which clears every capability: the permitted set empties when the
 * last id leaves 0). Checked afterwards; the caller exits on any throw.
 */
export function becomeTenant(a: WarmAssignment): void {
  process.setgroups!([]);
  process.setgid!(a.gid);
  process.setuid!(a.uid);
  const ids = [process.getuid!(), process.geteuid!()];
  const gids = [process.getgid!(), process.getegid!()];
  if (ids.some((id) => id !== a.uid) || gids.some((id) => id !== a.gid) || process.getgroups!().some((g) => g !== a.gid)) {
    throw new Error('the user switch did not take');
  }
  let regained = false;
  try {
    process.setuid!(0);
    regained = true;
  } catch {
    // EPERM: as it must be
  }
  if (regained) throw new Error('the worker could take back root after the switch');
  // Under Node's permission model /proc is not readable; the kernel has cleared the sets anyway
  // (setuid from 0 to a non-zero id empties them), and setuid(0) failing above shows it.
  const permission = (process as { permission?: { has(scope: string, ref: string): boolean } }).permission;
  if (permission && !permission.has('fs.read', '/proc/self/status')) return finish(a);
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  for (const set of ['CapPrm', 'CapEff', 'CapAmb']) {
    const m = new RegExp(`^${set}:\\s*([0-9a-f]+)$`, 'm').exec(status);
    if (m && /[1-9a-f]/.test(m[1]!)) throw new Error(`capabilities left after the switch (${set} ${m[1]})`);
  }
  finish(a);
}

function finish(a: WarmAssignment): void {
  // As the sandbox chain's last shell does for a worker started for its tenant.
  process.umask(0o007);
  for (const k of Object.keys(process.env)) delete process.env[k];
  Object.assign(process.env, a.env);
  process.chdir(a.release);
}
