// The command line that starts one worker in its sandbox. Pure: given the
// tools found, the spec and the tenant's identity, it returns argv and env;
// the launcher spawns it. The chain, each step exec'ing the next:
//
//   sh shim (root)   joins the worker's cgroups, umask 007         <- before any tenant code
//   prlimit          nofile / nproc / core
//   bwrap (root)     mount, pid, ipc, uts (+ net) namespaces, file view,
//                    private /tmp, seccomp filter from fd 3, die-with-parent
//   setpriv          becomes tn-<id>, no groups, no capabilities, no-new-privs
//   node             the worker runtime, heap capped below the memory limit
//
// Without bwrap, `unshare` gives the namespaces (no file view, no seccomp).
// The worker's listening socket rides along as an inherited descriptor (after
// the seccomp pipe and the start channel): no step closes inherited
// descriptors, and the socket's folder is not in the sandbox's file view.
import path from 'node:path';
import type { WorkerLaunchSpec } from '../launch/worker-launch.js';
import type { UnixIdentity } from './unix-users.js';
import { workerNodeFlags } from '../launch/node-flags.js';
import { runtimeEnv } from '../launch/plugin-launch.js';

export interface SandboxTools {
  readonly sh: string;
  readonly setpriv?: string;
  readonly prlimit?: string;
  readonly bwrap?: string;
  readonly unshare?: string;
  /** mount(8) and umount(8): the tenant's disk folder on /tmp in the unshare fallback, other tenants' disks out of its namespace. */
  readonly mount?: string;
  readonly umount?: string;
}

export interface SandboxPlan {
  readonly tools: SandboxTools;
  /** Namespaces through bwrap, through unshare, or none. */
  readonly namespaces: 'bwrap' | 'unshare' | 'none';
  /** The tenant's user; undefined when the platform cannot switch users (not root). */
  readonly identity: UnixIdentity | undefined;
  /** cgroup.procs files the shim joins. */
  readonly cgroupProcFiles: readonly string[];
  /** File descriptor (in the child) carrying the seccomp program, when there is one. */
  readonly seccompFd: number | undefined;
  /** Read-only folders and files of the platform the worker runtime needs (dist/, node_modules/, ...). */
  readonly platformCode: readonly string[];
  readonly nodeBinary: string;
  /** Add Node's permission model (fs allow-list) as an extra layer. */
  readonly nodePermissions: boolean;
  /** This Node knows --allow-addons (else the permission model refuses native addons). */
  readonly nodeAllowAddons?: boolean;
  /** Size of the private /tmp, in MiB (a tmpfs, where the tenant has no disk image). */
  readonly tmpSizeMB: number;
  /** The worker's /tmp: a folder on the tenant's disk image (tenant-disks.ts), under its diskMB. */
  readonly tmpDir?: string;
  /**
   * Other tenants' disk mounts, detached inside the unshare fallback's mount
   * namespace (a copy of the host's): else that namespace would hold their
   * images mounted for as long as this worker lives.
   */
  readonly foreignMounts?: readonly string[];
}

export interface SandboxCommand {
  readonly file: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** Joins each cgroup given before `--`, then execs the rest. A failed join stops the start (exit 97). */
const SHIM = [
  // bwrap creates the sandbox's folders with this umask: they must stay traversable.
  'umask 022',
  'while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do printf "%s\\n" "$$" > "$1" || exit 97; shift; done',
  'shift',
  'exec "$@"',
].join('\n');

/**
 * Variables that change how the dynamic loader, libc or a shell behave. The
 * tools before setpriv run as root and inherit the worker's environment, so a
 * tenant-set `LD_PRELOAD` would run its code as root: these never pass.
 */
const UNSAFE_ENV = /^(LD_.*|GCONV_PATH|GLIBC_TUNABLES|MALLOC_.*|NLSPATH|LOCPATH|HOSTALIASES|LOCALDOMAIN|RES_OPTIONS|TZDIR|BASH_ENV|ENV|IFS|CDPATH|PS4|SHELLOPTS|NODE_OPTIONS)$/;

export function filterWorkerEnv(env: Readonly<Record<string, string>>): { env: Record<string, string>; dropped: string[] } {
  const out: Record<string, string> = {};
  const dropped: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (UNSAFE_ENV.test(k) || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) dropped.push(k);
    else out[k] = v;
  }
  return { env: out, dropped };
}

/** Folders the worker needs from the host, read-only. Merged-/usr hosts have /bin, /lib... as symlinks. */
export const HOST_SYSTEM_PATHS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'] as const;

/** What a networked worker needs from /etc (name resolution, CA certificates). */
const NETWORK_ETC = ['/etc/resolv.conf', '/etc/hosts', '/etc/nsswitch.conf', '/etc/host.conf', '/etc/gai.conf', '/etc/ssl', '/etc/ca-certificates'];

export interface HostPathKind {
  (p: string): { kind: 'dir' | 'file'; } | { kind: 'symlink'; target: string } | undefined;
}

/** Every folder above the given mount points, parents first, except those the sandbox already has. */
export function mountPointParents(mountPoints: readonly string[]): string[] {
  const premade = ['/', '/tmp', '/proc', '/dev', ...HOST_SYSTEM_PATHS];
  const out = new Set<string>();
  for (const m of mountPoints) {
    const chain: string[] = [];
    for (let d = path.dirname(m); !premade.includes(d); d = path.dirname(d)) chain.unshift(d);
    if (HOST_SYSTEM_PATHS.some((h) => m.startsWith(h + '/'))) continue;
    for (const d of chain) out.add(d);
  }
  return [...out];
}

/**
 * A warm worker's view (warm-slots.ts): its slot folder bound where the
 * tenants' folders are (`<data>/tenants`), empty until the worker is given a
 * tenant; then the tenant's release and data folder appear at the very paths
 * a cold start shows them. /tmp is a link to a folder in the slot.
 */
export interface WarmView {
  /** The slot on the host. */
  readonly slotDir: string;
  /** Where the sandbox sees it: the tenants' folder. */
  readonly tenantsRoot: string;
  /**
   * The /tmp folder as the sandbox sees it (in the slot), for /tmp to link to;
   * undefined: /tmp is a private tmpfs, as without a disk image (when other
   * binds of the sandbox lie below /tmp, a link there would swallow them).
   */
  readonly tmp?: string;
}

function bwrapArgs(spec: WorkerLaunchSpec, plan: SandboxPlan, hostPath: HostPathKind, warm?: WarmView): string[] {
  const a: string[] = ['--unshare-ipc', '--unshare-pid', '--unshare-uts', '--unshare-cgroup-try'];
  if (plan.identity === undefined && !warm) a.push('--unshare-user', '--disable-userns');
  if (spec.network !== 'all') a.push('--unshare-net');
  a.push('--die-with-parent', '--new-session', '--hostname', warm ? 'tenantry-worker' : spec.tenantId);
  for (const p of HOST_SYSTEM_PATHS) {
    const k = hostPath(p);
    if (!k) continue;
    if (k.kind === 'symlink') a.push('--symlink', k.target, p);
    else a.push('--ro-bind', p, p);
  }
  a.push('--proc', '/proc', '--dev', '/dev');
  // Private /tmp first: binds of paths below /tmp (test data folders) must land on top of it.
  if (warm?.tmp) a.push('--symlink', warm.tmp, '/tmp');
  else if (plan.tmpDir) a.push('--bind', plan.tmpDir, '/tmp');
  else a.push('--perms', '1777', '--size', String(plan.tmpSizeMB * 1024 * 1024), '--tmpfs', '/tmp');
  const binds: Array<[flag: string, p: string]> = [['--ro-bind-try', '/etc/localtime']];
  if (spec.network === 'all') for (const p of NETWORK_ETC) binds.push(['--ro-bind-try', p]);
  if (!plan.nodeBinary.startsWith('/usr/')) binds.push(['--ro-bind', plan.nodeBinary]);
  for (const p of plan.platformCode) binds.push(['--ro-bind', p]);
  const entryDir = path.dirname(spec.entry);
  if (!plan.platformCode.some((p) => entryDir === p || entryDir.startsWith(p + '/'))) binds.push(['--ro-bind', entryDir]);
  // Not the socket folder: the worker gets its listening socket as a descriptor, never by path.
  if (!warm) binds.push(['--ro-bind', spec.releaseDir], ['--bind', spec.dataDir]);
  // The capability socket's folder: connectable, never writable (the platform's; see launch/capability-channel.ts).
  if (spec.capabilityDir) binds.push(['--ro-bind', spec.capabilityDir]);
  // bwrap would create the folders leading to each mount point as 0700: make them passable.
  for (const dir of mountPointParents([...binds.map(([, p]) => p), ...(warm ? [warm.tenantsRoot] : [])])) a.push('--perms', '0755', '--dir', dir);
  for (const [flag, p] of binds) a.push(flag, p, p);
  if (warm) a.push('--bind', warm.slotDir, warm.tenantsRoot);
  a.push('--chdir', warm ? warm.tenantsRoot : spec.releaseDir);
  // setpriv (or, warm, the runtime itself once given its tenant) needs these two to become the tenant.
  if (plan.identity || warm) a.push('--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID');
  if (plan.seccompFd !== undefined) a.push('--seccomp', String(plan.seccompFd));
  return a;
}

/**
 * The unshare fallback has no file view: inside its own mount namespace (root
 * still, before setpriv), the tenant's disk folder goes on /tmp. The worker's
 * own paths below /tmp (a data folder there) are bound into it first, at the
 * same place, so covering /tmp hides none of them. Mounts made here stay in
 * the namespace (unshare makes its mounts private).
 */
/** Exit status of the step below when /tmp could not be put in place (the worker never started). */
export const TMP_STEP_FAILED = 96;
const TMP_STEP = [
  'M=$1; U=$2; T=$3; shift 3',
  'while [ "$1" != "--" ]; do',
  '  p=$1; r=${p#/tmp}; shift',
  '  if [ -d "$p" ]; then mkdir -p "$T$r"; else mkdir -p "$T${r%/*}" && : > "$T$r"; fi || exit 96',
  '  "$M" --bind "$p" "$T$r" || exit 96',
  'done',
  'shift',
  'while [ "$1" != "--" ]; do "$U" -l "$1" 2>/dev/null; shift; done',
  'shift',
  '"$M" --rbind "$T" /tmp || exit 96',
  'exec "$@"',
].join('\n');

/** What the worker needs to see: the platform code, its release and data folder, the capability folder. */
function workerPaths(spec: WorkerLaunchSpec, plan: SandboxPlan): string[] {
  return [plan.nodeBinary, ...plan.platformCode, path.dirname(spec.entry), spec.releaseDir, spec.dataDir, ...(spec.capabilityDir ? [spec.capabilityDir] : [])];
}

function unshareTmpStep(spec: WorkerLaunchSpec, plan: SandboxPlan): string[] {
  const below = [...new Set(workerPaths(spec, plan).filter((p) => p.startsWith('/tmp/')))];
  return [plan.tools.sh, '-c', TMP_STEP, 'tenantry-tmp', plan.tools.mount!, plan.tools.umount!, plan.tmpDir!, ...below, '--', ...(plan.foreignMounts ?? []), '--'];
}

function setprivArgs(plan: SandboxPlan, identity: UnixIdentity): string[] {
  return [
    plan.tools.setpriv!,
    `--reuid=${identity.uid}`,
    `--regid=${identity.gid}`,
    '--clear-groups',
    '--inh-caps=-all',
    '--bounding-set=-all',
    '--no-new-privs',
    '--pdeathsig=SIGKILL',
    '--',
  ];
}

function nodeArgs(spec: WorkerLaunchSpec, plan: SandboxPlan, warm?: WarmView): string[] {
  const a = [plan.nodeBinary, ...workerNodeFlags(spec.limits)];
  if (plan.nodePermissions) {
    // Warm: the tenants' folder, which in its view will hold only its own tenant's release and data folder.
    const own = warm ? [warm.tenantsRoot] : [spec.releaseDir, spec.dataDir];
    const read = [...plan.platformCode, path.dirname(spec.entry), ...own, '/tmp', ...(spec.capabilityDir ? [spec.capabilityDir] : [])];
    const write = warm ? [warm.tenantsRoot, '/tmp'] : [spec.dataDir, '/tmp'];
    // Child processes, threads and native addons (vendored node_modules) stay allowed: the sandbox,
    // seccomp and the cgroup hold them. One flag per path (Node 20.16+).
    a.push('--experimental-permission', '--disable-warning=ExperimentalWarning', '--disable-warning=SecurityWarning', '--allow-child-process', '--allow-worker');
    if (plan.nodeAllowAddons) a.push('--allow-addons');
    for (const p of read) a.push(`--allow-fs-read=${p}`);
    for (const p of write) a.push(`--allow-fs-write=${p}`);
  }
  a.push(spec.entry, ...spec.args);
  return a;
}

/**
 * A warm worker's command: the same chain and layers, bound to a slot instead
 * of a tenant's folders, and without setpriv: it stays root inside the
 * sandbox (with CAP_SETUID and CAP_SETGID only, under the same seccomp filter)
 * until the runtime is given its tenant and switches to that user itself
 * (launch/warm-assignment.ts). It runs platform code only until then. Its
 * environment is the platform's minimal one; the tenant's comes with the
 * assignment. `spec` gives the entry, the network and the limits it is made for.
 */
export function buildWarmCommand(spec: WorkerLaunchSpec, plan: SandboxPlan, hostPath: HostPathKind, warm: WarmView): SandboxCommand {
  if (plan.namespaces !== 'bwrap' || !plan.tools.prlimit) throw new Error('a warm worker needs bwrap and prlimit');
  const chain: string[] = [plan.tools.prlimit, '--nofile=4096:4096', '--core=0:0', '--'];
  chain.push(plan.tools.bwrap!, ...bwrapArgs(spec, plan, hostPath, warm), '--');
  // Root still, with CAP_SETUID and CAP_SETGID only (bwrap's --cap-add): nothing inheritable, and
  // no other capability in the bounding set, as close to setpriv's cold start as a later switch allows.
  if (plan.tools.setpriv) chain.push(plan.tools.setpriv, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all,+setuid,+setgid', '--no-new-privs', '--pdeathsig=SIGKILL', '--');
  chain.push(plan.tools.sh, '-c', 'umask 007 && unset PWD OLDPWD && exec "$@"', 'tenantry-worker');
  chain.push(...nodeArgs(spec, plan, warm));
  const args = ['-c', SHIM, 'tenantry-worker', ...plan.cgroupProcFiles, '--', ...chain];
  return { file: plan.tools.sh, args, env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' } };
}

export function buildSandboxCommand(spec: WorkerLaunchSpec, plan: SandboxPlan, hostPath: HostPathKind): SandboxCommand {
  const { env } = filterWorkerEnv(runtimeEnv(spec.env, spec.plugins));
  const chain: string[] = [];
  if (plan.tools.prlimit) {
    // RLIMIT_NPROC counts every process of the user: meaningful only when the user is the tenant's own.
    const nproc = plan.identity ? [`--nproc=${spec.limits.pids}:${spec.limits.pids}`] : [];
    chain.push(plan.tools.prlimit, '--nofile=4096:4096', ...nproc, '--core=0:0', '--');
  }
  if (plan.namespaces === 'bwrap') {
    chain.push(plan.tools.bwrap!, ...bwrapArgs(spec, plan, hostPath), '--');
  } else if (plan.namespaces === 'unshare') {
    // setpriv first so the unshare process itself dies with the platform.
    if (plan.tools.setpriv) chain.push(plan.tools.setpriv, '--pdeathsig=SIGKILL', '--');
    chain.push(plan.tools.unshare!, '--ipc', '--pid', '--uts', '--mount', '--fork', '--kill-child=SIGKILL', '--mount-proc');
    if (spec.network !== 'all') chain.push('--net');
    chain.push('--');
    if (plan.tmpDir && plan.tools.mount && plan.tools.umount) chain.push(...unshareTmpStep(spec, plan));
  }
  if (plan.identity && plan.tools.setpriv) chain.push(...setprivArgs(plan, plan.identity));
  // The worker's own files: not readable by others.
  chain.push(plan.tools.sh, '-c', 'umask 007 && unset PWD OLDPWD && exec "$@"', 'tenantry-worker');
  chain.push(...nodeArgs(spec, plan));
  const args = ['-c', SHIM, 'tenantry-worker', ...plan.cgroupProcFiles, '--', ...chain];
  return { file: plan.tools.sh, args, env };
}
