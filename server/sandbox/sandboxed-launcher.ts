// WorkerLauncher that starts each worker in its sandbox (sandbox-command.ts)
// inside its own cgroup, and kills it through that cgroup so nothing the
// worker detached (setsid, double fork) outlives it. The worker's listening
// socket is made here, in a folder the worker cannot write or see, and
// inherited as a descriptor (worker-socket.ts).
import crypto from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { Duplex, Writable } from 'node:stream';
import type { Logger } from '../log.js';
import { LISTEN_FD_OPTION, type LaunchedWorker, type WorkerExit, type WorkerLaunchSpec, type WorkerLauncher } from '../launch/worker-launch.js';
import type { CgroupDriver, WorkerCgroup } from './cgroups.js';
import type { PlatformIdentity } from './file-modes.js';
import { buildSandboxCommand, filterWorkerEnv, TMP_STEP_FAILED, type HostPathKind, type SandboxTools } from './sandbox-command.js';
import { lookupUser, tenantUserName, type UnixIdentity } from './unix-users.js';
import { mkdirBeneath, openBeneath, removeBeneath } from './safe-path.js';
import { LIMITS_IN_FORCE, LIMITS_REQUEST } from '../launch/startup-handshake.js';
import { bindWorkerSocket, removeWorkerSocket, socketPlace, type WorkerSocket } from './worker-socket.js';
import type { TenantDisks, WorkerDisk } from './tenant-disks.js';

export interface SandboxedLauncherOptions {
  /** The data folder: every path of a spec lies below it, and is reached without following links. */
  readonly dataRoot: string;
  readonly tools: SandboxTools;
  readonly namespaces: 'bwrap' | 'unshare' | 'none';
  /** Switch to the tenant's user (root only). */
  readonly users: boolean;
  readonly cgroups: CgroupDriver | undefined;
  /** The seccomp program bwrap loads (bwrap only). */
  readonly seccompProgram: Buffer | undefined;
  readonly platformCode: readonly string[];
  readonly nodeBinary: string;
  readonly nodePermissions: boolean;
  readonly platform: PlatformIdentity;
  readonly log: Logger;
  /** The tenants' disk images (data folder and /tmp under diskMB); none where the host cannot mount them. */
  readonly disks?: TenantDisks;
}

/** Child fd that carries the seccomp program to bwrap. */
const SECCOMP_FD = 3;
const SHIM_CGROUP_JOIN_FAILED = 97;
/** A worker that has not asked for its CPU quota by then gets it anyway. */
const CPU_DEFER_MAX_MS = 5000;

const isRoot = () => process.getuid?.() === 0;

export const hostPathKind: HostPathKind = (p) => {
  try {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) return { kind: 'symlink', target: fs.readlinkSync(p) };
    return { kind: st.isDirectory() ? 'dir' : 'file' };
  } catch {
    return undefined;
  }
};

export class SandboxedLauncher implements WorkerLauncher {
  private readonly running = new Set<LaunchedWorker>();

  constructor(private readonly o: SandboxedLauncherOptions) {}

  async launch(spec: WorkerLaunchSpec): Promise<LaunchedWorker> {
    const identity = this.o.users ? this.tenantIdentity(spec.tenantId) : undefined;
    this.prepareRunDir(spec);
    const disk = this.o.disks && identity ? await this.o.disks.prepareWorker(spec.tenantId, spec.limits.diskMB, identity) : undefined;
    const { dropped } = filterWorkerEnv(spec.env);
    if (dropped.length) this.o.log.warn('worker environment variables dropped (unsafe for the loader or the shell)', { tenant: spec.tenantId, dropped });

    // Never follow a link here: whoever can write the logs folder must not make root append elsewhere.
    const logFd = openBeneath(this.o.dataRoot, spec.logFile, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o640);
    const place = socketPlace(this.o.dataRoot, spec.socketPath);
    let cgroup: WorkerCgroup | undefined;
    let socket: WorkerSocket | undefined;
    let child;
    try {
      if (this.o.users) fs.fchownSync(logFd, this.o.platform.uid, this.o.platform.gid);
      // Connectable by the platform's user alone (root made it; the edge connects).
      socket = await bindWorkerSocket(place, isRoot() ? this.o.platform : undefined);
      // The CPU quota waits for the worker runtime's start handshake (startup-handshake.ts).
      cgroup = this.o.cgroups?.createWorkerGroup(spec.tenantId, `w-${crypto.randomBytes(4).toString('hex')}`, spec.limits, { cpuDeferred: true });
      try {
        child = this.spawnSandboxed(spec, identity, cgroup, logFd, socket.fd, disk);
      } finally {
        // Synchronously after the spawn: this process never accepts on the worker's socket.
        socket.release();
      }
      await new Promise<void>((resolve, reject) => {
        child!.once('spawn', resolve);
        child!.once('error', reject);
      });
      // bwrap reads the program to its end before it runs anything.
      if (this.o.seccompProgram) {
        const seccompPipe = child.stdio[SECCOMP_FD] as Writable;
        seccompPipe.on('error', () => {}); // bwrap gone before reading: its exit is reported below
        seccompPipe.end(this.o.seccompProgram);
      }
      if (cgroup) this.answerStartHandshake(spec, child, cgroup);
    } catch (err) {
      socket?.release();
      removeWorkerSocket(place);
      await cgroup?.remove().catch(() => {});
      disk?.release();
      throw err;
    } finally {
      fs.closeSync(logFd);
    }
    return this.track(spec, child, cgroup, disk);
  }

  private startFd(): number {
    return this.o.seccompProgram ? SECCOMP_FD + 1 : SECCOMP_FD;
  }

  /** The child's descriptor for its listening socket: after the seccomp pipe and the start channel, when there are. */
  private listenFd(cgroup: WorkerCgroup | undefined): number {
    return this.startFd() + (cgroup ? 1 : 0);
  }

  /**
   * The worker asks once, before it loads any module of the tenant's: the CPU
   * quota goes in force, then the worker is told to go on. Anything else on
   * the channel is ignored; no answer (and so no tenant code) if the quota
   * could not be set. A worker that never asks gets the quota after a while.
   */
  private answerStartHandshake(spec: WorkerLaunchSpec, child: ChildProcess, cgroup: WorkerCgroup): void {
    const channel = child.stdio[this.startFd()] as Duplex;
    const log = this.o.log.child({ tenant: spec.tenantId, pid: child.pid });
    let settled = false;
    const limit = (): boolean => {
      try {
        cgroup.limitCpu();
        return true;
      } catch (err) {
        log.error('could not set the worker CPU quota; stopping it', { err });
        void cgroup.kill().catch(() => {});
        return false;
      }
    };
    const timer = setTimeout(() => {
      if (!settled) limit();
    }, CPU_DEFER_MAX_MS);
    timer.unref();
    child.once('exit', () => clearTimeout(timer));
    channel.on('error', () => {});
    let asked = '';
    channel.on('data', (chunk: Buffer) => {
      if (settled) return;
      asked += chunk.toString('latin1');
      if (asked.length < LIMITS_REQUEST.length) return;
      settled = true;
      clearTimeout(timer);
      if (asked === LIMITS_REQUEST && limit()) channel.end(LIMITS_IN_FORCE);
      else {
        if (asked !== LIMITS_REQUEST) limit();
        channel.destroy();
      }
    });
  }

  private spawnSandboxed(
    spec: WorkerLaunchSpec,
    identity: UnixIdentity | undefined,
    cgroup: WorkerCgroup | undefined,
    logFd: number,
    listenFd: number,
    disk: WorkerDisk | undefined,
  ): ChildProcess {
    // Only a worker with a cgroup takes part in the start handshake. Our option last: it wins over any in spec.args.
    const startup = cgroup ? ['--startup-fd', String(this.startFd())] : [];
    spec = { ...spec, args: [...spec.args, ...startup, LISTEN_FD_OPTION, String(this.listenFd(cgroup))] };
    const command = buildSandboxCommand(
      spec,
      {
        tools: this.o.tools,
        namespaces: this.o.namespaces,
        identity,
        cgroupProcFiles: cgroup?.procFiles ?? [],
        seccompFd: this.o.seccompProgram ? SECCOMP_FD : undefined,
        platformCode: this.o.platformCode,
        nodeBinary: this.o.nodeBinary,
        nodePermissions: this.o.nodePermissions,
        nodeAllowAddons: process.allowedNodeEnvironmentFlags.has('--allow-addons'),
        tmpSizeMB: Math.max(16, Math.floor(spec.limits.memoryMB / 4)),
        ...(disk ? { tmpDir: disk.tmpDir, foreignMounts: disk.foreignMounts } : {}),
      },
      hostPathKind,
    );
    return spawn(command.file, command.args, {
      env: command.env,
      cwd: '/',
      // Every tool in the chain (sh, prlimit, bwrap, setpriv, unshare) passes inherited descriptors on.
      stdio: ['ignore', logFd, logFd, ...(this.o.seccompProgram ? ['pipe' as const] : []), ...(cgroup ? ['pipe' as const] : []), listenFd],
    });
  }

  /** The worker as the pool sees it; its exit settles only once its cgroup is gone. */
  private track(spec: WorkerLaunchSpec, child: ChildProcess, cgroup: WorkerCgroup | undefined, disk: WorkerDisk | undefined): LaunchedWorker {
    const pid = child.pid!;
    const log = this.o.log.child({ tenant: spec.tenantId, pid });

    const exited = new Promise<WorkerExit>((resolve) => {
      child.once('exit', (code, signal) => {
        if (code === SHIM_CGROUP_JOIN_FAILED) log.error('worker could not join its cgroup; not started');
        if (code === TMP_STEP_FAILED && this.o.namespaces === 'unshare' && disk) log.error('worker could not mount its /tmp; not started');
        removeWorkerSocket(socketPlace(this.o.dataRoot, spec.socketPath));
        // Whatever the worker left behind (detached children) goes with its group.
        const cleanup = cgroup ? cgroup.remove() : Promise.resolve();
        cleanup
          .then(() => disk?.release())
          .catch((err) => log.warn('worker cgroup cleanup failed', { err }))
          .finally(() => {
            this.running.delete(worker);
            resolve({ code, signal });
          });
      });
    });
    const worker: LaunchedWorker = {
      pid,
      exited,
      kill: async () => {
        if (cgroup) await cgroup.kill();
        else if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      },
    };
    this.running.add(worker);
    return worker;
  }

  /** Kills every worker this launcher started (platform shutdown). */
  async killAll(): Promise<void> {
    await Promise.all([...this.running].map((w) => w.kill().catch(() => {})));
  }

  private tenantIdentity(tenantId: string): UnixIdentity {
    const identity = lookupUser(tenantUserName(tenantId));
    if (!identity) throw new Error(`the Unix user ${tenantUserName(tenantId)} does not exist; the tenant was not provisioned`);
    return identity;
  }

  /**
   * The socket folder: written by this process alone (root, as the supervisor),
   * passable by the platform's group (the edge connects), closed to tenants.
   * Set on every launch, so a folder of an older layout (the tenant's) is taken back.
   */
  private prepareRunDir(spec: WorkerLaunchSpec): void {
    const root = this.o.dataRoot;
    mkdirBeneath(root, spec.runDir);
    const fd = openBeneath(root, spec.runDir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      if (isRoot()) fs.fchownSync(fd, 0, this.o.platform.gid);
      fs.fchmodSync(fd, isRoot() ? 0o750 : 0o700);
    } finally {
      fs.closeSync(fd);
    }
    removeBeneath(root, spec.socketPath);
  }
}
