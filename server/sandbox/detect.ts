// Which isolation layers this host gives us, each tried for real at start
// (a tool on disk is not proof: the kernel may refuse namespaces, a cgroup
// mount may be read-only). The result is logged line by line, served by
// GET /api/v1/isolation and summarised in /healthz.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import type { IsolationMode, SandboxMode } from '../config.js';
import { probeCgroups, type CgroupDriver } from './cgroups.js';
import { hostSeccompArch, seccompFilterBytes } from './seccomp-filter.js';
import type { SandboxTools } from './sandbox-command.js';
import { findTool } from './unix-users.js';
import { probeTenantDisks, type DiskTools } from './tenant-disks.js';

export const LAYER_NAMES = [
  'users',
  'namespaces',
  'filesystem-view',
  'network',
  'seccomp',
  'cgroups',
  'rlimits',
  'node-permissions',
  'privilege-separation',
  'disk-quota',
] as const;
export type LayerName = (typeof LAYER_NAMES)[number];

export interface IsolationLayer {
  readonly name: LayerName;
  readonly active: boolean;
  /** What is used when active; why not when missing. */
  readonly detail: string;
}

export interface IsolationReport {
  readonly mode: IsolationMode;
  /** True when users, namespaces or resource limits are missing. */
  readonly degraded: boolean;
  readonly layers: readonly IsolationLayer[];
}

/** What the launcher may use; only meaningful when mode is not off. */
export interface SandboxCapabilities {
  readonly tools: SandboxTools;
  readonly root: boolean;
  readonly users: boolean;
  readonly namespaces: 'bwrap' | 'unshare' | 'none';
  /** The seccomp program, when bwrap loads it here; kept in memory, never in a file others could swap. */
  readonly seccompProgram: Buffer | undefined;
  readonly cgroups: CgroupDriver | undefined;
  readonly nodePermissions: boolean;
  /** Tools for the tenants' disk images, when they work here (root, per-tenant users, loop devices). */
  readonly disks: DiskTools | undefined;
}

export interface Detection {
  readonly report: IsolationReport;
  readonly capabilities: SandboxCapabilities;
}

/** The layers `strict` insists on. */
export const REQUIRED_FOR_STRICT: readonly LayerName[] = ['users', 'namespaces', 'cgroups'];

const TRIAL_TIMEOUT_MS = 10_000;

function trial(file: string, args: string[], input?: Buffer): { ok: boolean; why: string } {
  const r = spawnSync(file, args, {
    stdio: [input ? 'pipe' : 'ignore', 'ignore', 'pipe'],
    input,
    timeout: TRIAL_TIMEOUT_MS,
    env: { PATH: '/usr/bin:/bin' },
  });
  if (r.error) return { ok: false, why: r.error.message };
  if (r.status !== 0) return { ok: false, why: String(r.stderr ?? '').trim().split('\n').pop() || `exit ${r.status}` };
  return { ok: true, why: '' };
}

function layer(name: LayerName, active: boolean, detail: string): IsolationLayer {
  return { name, active, detail };
}

export interface DetectOptions {
  readonly mode: IsolationMode;
  /** True once the edge runs as its own unprivileged user (set by the supervisor). */
  readonly privilegeSeparated: boolean;
  /** `unshare`: skip bubblewrap even where it works (TENANTRY_SANDBOX). Default `auto`. */
  readonly sandbox?: SandboxMode;
}

export function detectIsolation(o: DetectOptions): Detection {
  const tools: SandboxTools = {
    sh: findTool('sh') ?? '/bin/sh',
    setpriv: findTool('setpriv'),
    prlimit: findTool('prlimit'),
    bwrap: findTool('bwrap'),
    unshare: findTool('unshare'),
    mount: findTool('mount'),
    umount: findTool('umount'),
  };
  const root = process.getuid?.() === 0;
  if (o.mode === 'off') {
    const why = 'TENANTRY_ISOLATION=off: workers are plain child processes of the platform';
    return {
      report: { mode: o.mode, degraded: true, layers: LAYER_NAMES.map((n) => layer(n, false, why)) },
      capabilities: { tools, root, users: false, namespaces: 'none', seccompProgram: undefined, cgroups: undefined, nodePermissions: false, disks: undefined },
    };
  }
  const layers: IsolationLayer[] = [];

  // 1. users
  const userTools = ['useradd', 'groupadd', 'userdel', 'groupdel', 'getent'].filter((t) => !findTool(t));
  const users = root && userTools.length === 0 && !!tools.setpriv;
  layers.push(
    layer(
      'users',
      users,
      users
        ? 'each tenant runs as its own user and group tn-<id>'
        : !root
          ? 'not running as root: every worker runs as the platform user'
          : `missing ${[...userTools, ...(tools.setpriv ? [] : ['setpriv'])].join(', ')}`,
    ),
  );

  // 2-5. namespaces, file view, network, seccomp
  const arch = hostSeccompArch();
  const program = arch && tools.bwrap ? seccompFilterBytes() : undefined;
  let namespaces: SandboxCapabilities['namespaces'] = 'none';
  let nsWhy = '';
  let seccompActive = false;
  if (o.sandbox === 'unshare') {
    nsWhy = 'TENANTRY_SANDBOX=unshare: bubblewrap is not used';
  } else if (tools.bwrap) {
    const base = ['--unshare-ipc', '--unshare-pid', '--unshare-uts', '--unshare-net', '--die-with-parent', '--ro-bind', '/usr', '/usr'];
    for (const p of ['/bin', '/lib', '/lib64']) if (fs.existsSync(p)) base.push(fs.lstatSync(p).isSymbolicLink() ? '--symlink' : '--ro-bind', fs.lstatSync(p).isSymbolicLink() ? fs.readlinkSync(p) : p, p);
    base.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
    if (!root) base.unshift('--unshare-user');
    const plain = trial(tools.bwrap, [...base, '--', '/bin/true']);
    if (plain.ok) {
      namespaces = 'bwrap';
      if (program) {
        // Proof the filter loads and bites: unshare inside must be refused. The program comes in on fd 0.
        const s = trial(tools.bwrap, [...base, '--seccomp', '0', '--', '/bin/sh', '-c', tools.unshare ? `! ${tools.unshare} --uts /bin/true 2>/dev/null` : 'true'], program);
        seccompActive = s.ok;
        if (!s.ok) nsWhy = `seccomp filter not accepted: ${s.why}`;
      }
    } else {
      nsWhy = `bwrap cannot create namespaces here (${plain.why})`;
    }
  } else {
    nsWhy = 'bubblewrap (bwrap) is not installed';
  }
  if (namespaces === 'none' && tools.unshare && root) {
    const u = trial(tools.unshare, ['--ipc', '--pid', '--uts', '--mount', '--net', '--fork', '--mount-proc', '--', '/bin/true']);
    if (u.ok) namespaces = 'unshare';
    else nsWhy += `; unshare failed (${u.why})`;
  } else if (namespaces === 'none' && !root) {
    nsWhy += '; unshare needs root';
  }
  const seccompProgram = seccompActive ? program : undefined;
  layers.push(
    layer(
      'namespaces',
      namespaces !== 'none',
      namespaces === 'bwrap'
        ? `bubblewrap: mount, pid, ipc, uts and net namespaces${root ? '' : ' inside a user namespace'}`
        : namespaces === 'unshare'
          ? `unshare (util-linux): mount, pid, ipc, uts and net namespaces (${nsWhy.replace(/^; /, '')})`
          : nsWhy.replace(/^; /, ''),
    ),
  );
  layers.push(
    layer(
      'filesystem-view',
      namespaces === 'bwrap',
      namespaces === 'bwrap'
        ? 'workers see only /usr, the platform code, their release (read-only), their data folder, a private size-capped /tmp'
        : `${o.sandbox === 'unshare' ? 'TENANTRY_SANDBOX=unshare' : 'needs bubblewrap'}; workers see the host file system, limited only by Unix permissions`,
    ),
  );
  layers.push(
    layer(
      'network',
      namespaces !== 'none',
      namespaces === 'bwrap'
        ? 'workers get an empty network namespace (loopback only) unless the tenant has network "all"'
        : namespaces === 'unshare'
          ? 'workers get an empty network namespace (not even loopback is up) unless the tenant has network "all"'
          : 'no network namespace: workers reach every network the host reaches',
    ),
  );
  layers.push(
    layer(
      'seccomp',
      seccompActive,
      seccompActive
        ? `BPF filter (${arch}) denies namespace, mount, ptrace, bpf, io_uring, keyring, module and reboot calls`
        : !arch
          ? `no system call table for ${process.arch}`
          : namespaces !== 'bwrap'
            ? 'needs bubblewrap to load the filter'
            : nsWhy,
    ),
  );

  // 6. cgroups
  let cgroups: CgroupDriver | undefined;
  let cgWhy: string;
  if (root) {
    const probe = probeCgroups();
    cgroups = probe.driver;
    cgWhy = probe.driver ? `${probe.driver.description}: memory, pids and CPU limits per worker; stopping a tenant kills its whole group` : probe.reason!;
  } else {
    cgWhy = 'not running as root: cgroups cannot be created';
  }
  layers.push(layer('cgroups', !!cgroups, cgWhy));

  // 7. rlimits
  layers.push(layer('rlimits', !!tools.prlimit, tools.prlimit ? 'prlimit: open files, processes per user, no core dumps' : 'prlimit (util-linux) is not installed'));

  // 8. Node permission model
  const nodePermissions = process.allowedNodeEnvironmentFlags.has('--experimental-permission');
  layers.push(
    layer(
      'node-permissions',
      nodePermissions,
      nodePermissions ? 'Node permission model: file reads and writes limited to the worker\'s own folders (defence in depth)' : `Node ${process.version} has no permission model`,
    ),
  );

  // 9. privilege separation
  layers.push(
    layer(
      'privilege-separation',
      o.privilegeSeparated,
      o.privilegeSeparated
        ? 'the internet-facing edge runs as the unprivileged user tenantry; a root supervisor holds no sockets'
        : 'the edge runs in the same process as the supervisor',
    ),
  );

  // 10. disk quota: a size-capped image per tenant for its data folder and /tmp
  const diskProbe = users ? probeTenantDisks() : { reason: root ? 'needs per-tenant users' : 'not running as root: disk images cannot be mounted' };
  const disks = diskProbe.tools;
  layers.push(
    layer(
      'disk-quota',
      !!disks,
      disks
        ? 'a sparse ext4 image of diskMB per tenant (<data>/disks/<id>.img), loop-mounted on its data folder and holding its workers\' /tmp: writes past the limit fail with ENOSPC'
        : `${diskProbe.reason}; a tenant's data folder and /tmp are not capped`,
    ),
  );

  const missingRequired = REQUIRED_FOR_STRICT.filter((n) => !layers.find((l) => l.name === n)!.active);
  return {
    report: { mode: o.mode, degraded: missingRequired.length > 0, layers },
    capabilities: { tools, root, users, namespaces, seccompProgram, cgroups, nodePermissions, disks },
  };
}

/** One line per layer, for the start-up log. */
export function describeReport(r: IsolationReport): string[] {
  const lines = r.layers.map((l) => `isolation ${l.name}: ${l.active ? 'active' : 'MISSING'} (${l.detail})`);
  if (r.mode !== 'off' && r.degraded) {
    const missing = REQUIRED_FOR_STRICT.filter((n) => !r.layers.find((l) => l.name === n)?.active);
    lines.push(`isolation degraded: ${missing.join(', ')} not available; tenants are NOT fully isolated from each other`);
  }
  return lines;
}

/** The /healthz summary: which layers are on, in one small object. */
export function summarizeReport(r: IsolationReport): { mode: IsolationMode; degraded: boolean; active: string[]; missing: string[] } {
  return {
    mode: r.mode,
    degraded: r.degraded,
    active: r.layers.filter((l) => l.active).map((l) => l.name),
    missing: r.layers.filter((l) => !l.active).map((l) => l.name),
  };
}

/** `strict` refuses to start without these; the message names what is missing and why. */
export function strictRefusal(r: IsolationReport): string | undefined {
  if (r.mode !== 'strict') return undefined;
  const missing = r.layers.filter((l) => REQUIRED_FOR_STRICT.includes(l.name) && !l.active);
  if (missing.length === 0) return undefined;
  return `TENANTRY_ISOLATION=strict: refusing to start without ${missing.map((l) => `${l.name} (${l.detail})`).join(', ')}`;
}
