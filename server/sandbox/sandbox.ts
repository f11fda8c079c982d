// The isolation layers put together: detection at start, the per-tenant
// provisioning (user, folders, modes) and the sandboxed worker launcher.
// In the split process model this object lives in the root supervisor and
// the edge reaches it over IPC; in one process, the platform calls it directly.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IsolationMode, SandboxMode } from '../config.js';
import type { Logger } from '../log.js';
import type { DataPaths } from '../paths.js';
import type { WorkerLauncher } from '../launch/worker-launch.js';
import { describeReport, detectIsolation, strictRefusal, type IsolationReport, type SandboxCapabilities } from './detect.js';
import { applyTenantFileModes, hardenDataFolder, sealRelease, sealReleaseAsPlatform, type PlatformIdentity } from './file-modes.js';
import { clearStaleWarmSlots } from './warm-slots.js';
import { SandboxedLauncher } from './sandboxed-launcher.js';
import { ReleaseSealer } from './release-sealer.js';
import { removeBeneath } from './safe-path.js';
import type { CgroupLimits } from './cgroups.js';
import { ensureTenantUser, lookupUser, removeSystemUser, tenantUserName } from './unix-users.js';
import { TenantDisks } from './tenant-disks.js';

/** The repository root, from dist/server/sandbox/sandbox.js. */
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * What the worker runtime loads from the platform, bound read-only into every
 * sandbox and readable under Node's permission model. dist/ includes
 * dist/plugins/, the only place plugin code is loaded from. A path that is a
 * symbolic link (node_modules shared between checkouts) comes with its target:
 * Node loads modules by their real path, which the permission model must allow
 * where the worker sees the host's files (no bubblewrap).
 */
export function platformCodePaths(root = REPO_ROOT): string[] {
  const out = new Set<string>();
  for (const p of ['dist', 'node_modules', 'package.json', 'plugins'].map((n) => path.join(root, n))) {
    if (!fs.existsSync(p)) continue;
    out.add(p);
    out.add(fs.realpathSync(p));
  }
  return [...out];
}

/** Operations on a tenant's operating environment, performed with root rights. */
export interface TenantProvisioner {
  /** Creates the tenant's user and group and sets its folders' owners and modes. Idempotent. */
  provisionTenant(tenantId: string): Promise<void>;
  /** Kills everything the tenant runs, removes its cgroups, socket folder, user and group. */
  removeTenant(tenantId: string): Promise<void>;
  /** Makes a release readable, not writable, by the tenant. */
  sealRelease(tenantId: string, deployId: string): Promise<void>;
}

export class IsolationRefusedError extends Error {
  override readonly name = 'IsolationRefusedError';
}

export interface Sandbox extends TenantProvisioner {
  readonly report: IsolationReport;
  /** The sandboxed launcher; undefined when workers are plain child processes (off, or nothing to use). */
  readonly launcher: (WorkerLauncher & { killAll(): Promise<void> }) | undefined;
  /** Pids in the tenant's cgroups (empty without cgroups, or where the cgroups belong to another process). */
  tenantPids(tenantId: string): number[];
  /** Limits in force on the tenant's running workers, as the kernel holds them. */
  workerLimits(tenantId: string): CgroupLimits[];
  /**
   * Moves a deploy worker (a child of the edge, as the edge's user) into the
   * low-weight deploy cgroup. Resolves with the group, or undefined without
   * cgroups. `edgePid`: the edge it must be a child of (default: this process).
   */
  placeDeployWorker(pid: number, edgePid?: number): Promise<string | undefined>;
  close(): Promise<void>;
}

export interface SandboxOptions {
  readonly mode: IsolationMode;
  readonly paths: DataPaths;
  readonly log: Logger;
  /** Owner of releases and platform files: the user the edge runs as. Default: this process. */
  readonly platform?: PlatformIdentity;
  readonly privilegeSeparated?: boolean;
  /** TENANTRY_SANDBOX: `unshare` forces the fallback sandbox. Default `auto`. */
  readonly sandbox?: SandboxMode;
  /** TENANTRY_WARM_WORKERS: workers started ahead of need (bwrap, root and cgroups only). Default none. */
  readonly warmWorkers?: number;
}

/**
 * Detects the layers, logs each, and in strict mode throws IsolationRefusedError
 * (one line) when users, namespaces or limits are missing.
 */
export function createSandbox(o: SandboxOptions): Sandbox {
  const { report, capabilities: caps } = detectIsolation({
    mode: o.mode,
    privilegeSeparated: o.privilegeSeparated ?? false,
    sandbox: o.sandbox,
  });
  for (const line of describeReport(report)) {
    if (line.startsWith('isolation degraded')) o.log.warn(line);
    else o.log.info(line);
  }
  const refusal = strictRefusal(report);
  if (refusal) throw new IsolationRefusedError(refusal);

  const platform: PlatformIdentity = o.platform ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const enabled = o.mode !== 'off';
  if (enabled && caps.root) hardenDataFolder(o.paths, platform);
  // The tenants' disk images: mounted at their first worker start, none left mounted by an earlier run.
  // Slots of warm workers a killed platform left hold binds of tenant disks: they go first.
  if (enabled && caps.root && caps.tools.umount) {
    const cleared = clearStaleWarmSlots({ sh: caps.tools.sh, umount: caps.tools.umount });
    if (cleared) o.log.info('warm worker slots left by an earlier run removed', { slots: cleared });
  }
  const disks = enabled && caps.users && caps.disks ? new TenantDisks(o.paths, caps.disks, o.log) : undefined;
  void disks?.unmountAll();
  const launcher = enabled && hasAnyLayer(caps) ? newLauncher(caps, platform, o.paths.root, o.log, disks, o.warmWorkers ?? 0) : undefined;
  launcher?.warmUp();

  /** A separate platform user means an unprivileged edge wrote the release: seal it with that user's rights. */
  const separated = platform.uid !== process.getuid?.();
  const seal = (dir: string, gid: number) => (separated ? sealReleaseAsPlatform(dir, gid, platform, caps.tools.setpriv!) : sealRelease(dir, gid, platform));
  // Per deploy, the same with no process started: a sealer kept running beside the supervisor.
  const sealer = separated && enabled && caps.users ? new ReleaseSealer(platform.uid) : undefined;
  const sealDeploy = async (dir: string, gid: number) => (sealer ? sealer.seal(dir, gid) : seal(dir, gid));
  const provisionTenant = async (tenantId: string) => {
    if (!enabled || !caps.users) return;
    const identity = ensureTenantUser(tenantUserName(tenantId));
    applyTenantFileModes(o.paths, tenantId, identity, platform, seal);
  };

  // A tenant user removed behind the platform's back (by hand, or a clean-up script) is made
  // again, with its folders re-owned, rather than leaving the tenant's routes down until a deploy.
  const selfHealingLauncher: Sandbox['launcher'] = launcher && {
    launch: async (spec) => {
      if (caps.users && !lookupUser(tenantUserName(spec.tenantId))) {
        o.log.warn('the tenant\'s Unix user was missing; provisioning it again', { tenant: spec.tenantId });
        await provisionTenant(spec.tenantId);
      }
      return launcher.launch(spec);
    },
    killAll: () => launcher.killAll(),
  };

  return {
    report,
    launcher: selfHealingLauncher,
    provisionTenant,
    removeTenant: async (tenantId) => {
      if (!enabled) return;
      await caps.cgroups?.removeTenant(tenantId);
      // Its disk image goes with it (and the data it held), before its folders.
      await disks?.remove(tenantId);
      removeBeneath(o.paths.root, o.paths.run(tenantId));
      if (caps.users) {
        // The data folder belongs to the tenant's uid: remove it before the uid can be reused.
        removeBeneath(o.paths.root, o.paths.tenantData(tenantId));
        removeSystemUser(tenantUserName(tenantId));
      }
    },
    sealRelease: async (tenantId, deployId) => {
      if (!enabled || !caps.users) return;
      if (!lookupUser(tenantUserName(tenantId))) await provisionTenant(tenantId);
      const gid = lookupUser(tenantUserName(tenantId))!.gid;
      await sealDeploy(o.paths.release(tenantId, deployId), gid);
    },
    tenantPids: (tenantId) => caps.cgroups?.tenantPids(tenantId) ?? [],
    workerLimits: (tenantId) => caps.cgroups?.workerLimits(tenantId) ?? [],
    placeDeployWorker: async (pid, edgePid) => {
      if (!enabled || !caps.cgroups) return undefined;
      const problem = deployWorkerProblem(pid, platform.uid, edgePid);
      if (problem) throw new Error(`deploy worker ${pid} not placed: ${problem}`);
      return caps.cgroups.placeDeployWorker(pid);
    },
    close: async () => {
      await launcher?.killAll();
      await sealer?.close();
      // Nothing stays mounted once the platform stops (the images stay, for the next start).
      await disks?.unmountAll();
    },
  };
}

/**
 * Why a pid may not be moved into the deploy group: only a direct child of
 * the edge (this process, or the supervisor's edge child), running as the
 * platform's user, qualifies; a subverted edge cannot move anything else.
 */
export function deployWorkerProblem(pid: number, platformUid: number, edgePid: number = process.pid): string | undefined {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return 'no such process';
  }
  const field = (name: string) => new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(status)?.[1];
  if (Number(field('PPid')) !== edgePid) return 'not a child of the edge';
  if (Number(field('Uid')) !== platformUid) return 'not running as the platform user';
  return undefined;
}

function hasAnyLayer(c: SandboxCapabilities): boolean {
  return c.users || c.namespaces !== 'none' || !!c.cgroups;
}

function newLauncher(c: SandboxCapabilities, platform: PlatformIdentity, dataRoot: string, log: Logger, disks: TenantDisks | undefined, warmWorkers: number): SandboxedLauncher {
  return new SandboxedLauncher({
    dataRoot,
    tools: c.tools,
    namespaces: c.namespaces,
    users: c.users,
    cgroups: c.cgroups,
    seccompProgram: c.seccompProgram,
    platformCode: platformCodePaths(),
    nodeBinary: process.execPath,
    nodePermissions: c.nodePermissions,
    platform,
    log,
    disks,
    warmWorkers,
  });
}
