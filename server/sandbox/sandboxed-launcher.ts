// WorkerLauncher that starts each worker in its sandbox (sandbox-command.ts)
// inside its own cgroup, and kills it through that cgroup so nothing the
// worker detached (setsid, double fork) outlives it. The worker's listening
// socket is made here, in a folder the worker cannot write or see, and
// inherited as a descriptor (worker-socket.ts).
import crypto from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
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
import { buildWarmCommand, type SandboxPlan } from './sandbox-command.js';
import { SLOT_TMP, WarmSlots, type WarmSlot } from './warm-slots.js';
import { profileKey, WarmPool, warmGroupOwner, type WarmWorker } from './warm-workers.js';
import { encodeAssignment, WARM_OPTION } from '../launch/warm-assignment.js';
import { workerNodeFlags } from '../launch/node-flags.js';
import { runtimeEnv } from '../launch/plugin-launch.js';
import { WORKER_ENTRY } from '../launch/entries.js';
import { DEFAULT_LIMITS } from '../model/limits.js';
import { processAlive, readPids } from './process-state.js';

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
  /**
   * Warm workers kept waiting (TENANTRY_WARM_WORKERS); 0 or absent: none.
   * Only with bwrap, tenant users and cgroups (see warm-workers.ts).
   */
  readonly warmWorkers?: number;
}

/** The cgroup "tenant" warm workers wait in (tenant ids never start with "_"). */
const WARM_GROUP = '_warm';

/** RLIMIT_NPROC on a running process (prlimit --pid): what the chain's prlimit sets at a cold start. */
function setNprocLimit(prlimit: string, pid: number, max: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const p = spawn(prlimit, ['--pid', String(pid), `--nproc=${max}:${max}`], { stdio: 'ignore' });
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`prlimit exited with ${code}`))));
  });
}

function commOf(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
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
  private readonly warm: WarmPool | undefined;
  private readonly slots: WarmSlots | undefined;
  /** Whether a warm worker's /tmp is the tenant's folder mounted into its slot (else a private tmpfs). */
  private readonly tmpInSlot: boolean;

  constructor(private readonly o: SandboxedLauncherOptions) {
    const t = o.tools;
    const size = o.warmWorkers ?? 0;
    // With the code or data below /tmp (a checkout or trial there), the sandbox's /tmp cannot be a link into
    // the slot (the binds below it would go with it): warm workers then get a private tmpfs /tmp, as without a disk image.
    this.tmpInSlot = ![o.dataRoot, o.nodeBinary, ...o.platformCode].some((p) => path.resolve(p).startsWith('/tmp/'));
    if (size > 0 && o.namespaces === 'bwrap' && o.users && o.cgroups && t.prlimit && t.mount && t.umount && isRoot()) {
      this.slots = new WarmSlots({ sh: t.sh, mount: t.mount, umount: t.umount }, path.join(o.dataRoot, 'tenants'));
      const cgroups = o.cgroups;
      this.warm = new WarmPool({
        size,
        profile: profileKey(WORKER_ENTRY, 'none', workerNodeFlags(DEFAULT_LIMITS)),
        limits: DEFAULT_LIMITS,
        dataRoot: o.dataRoot,
        slots: this.slots,
        createGroup: (name, limits) => cgroups.createWorkerGroup(WARM_GROUP, name, limits, { cpuDeferred: true }),
        spawn: (slot, cgroup, listenFd) => this.spawnWarm(slot, cgroup, listenFd),
        socketOwner: this.o.platform,
        log: o.log.child({ component: 'warm-workers' }),
      });
    }
  }

  /** Starts the warm workers (and the read-only view of the tenants' folders they are given releases from). */
  warmUp(): void {
    // Leftovers of an earlier run go whether or not this run keeps warm workers (it may be on the fallback sandbox now).
    const cleared = this.o.cgroups && isRoot() ? this.removeStaleWarmGroups() : Promise.resolve();
    if ((this.o.warmWorkers ?? 0) > 0 && !this.warm) {
      this.o.log.info('warm workers off: they need root, bubblewrap and cgroups; first requests start workers cold');
    }
    if (!this.warm) return;
    this.o.log.info(`warm workers: ${this.o.warmWorkers} kept started ahead of need`, { tmp: this.tmpInSlot ? "the tenant's own folder" : 'a private tmpfs (code or data below /tmp)' });
    void this.slots?.prepare().catch((err: unknown) => this.o.log.warn('warm workers: no read-only view of the releases yet', { err }));
    void cleared.finally(() => this.warm?.fill());
  }

  /**
   * Groups of warm workers a killed platform left (their processes normally die with it, but a
   * platform killed while freezing a group to kill it leaves them frozen there): killed and removed.
   * Other running platforms' groups are left alone; so are groups of names from before the pid was in them.
   */
  private async removeStaleWarmGroups(): Promise<void> {
    const stale = (name: string) => {
      const owner = warmGroupOwner(name);
      return owner !== undefined && owner !== process.pid && !processAlive(owner);
    };
    try {
      const removed = await this.o.cgroups!.removeWorkerGroups(WARM_GROUP, stale);
      if (removed) this.o.log.info('warm worker groups left by an earlier run removed', { groups: removed });
    } catch (err) {
      this.o.log.warn('warm worker groups left by an earlier run could not all be removed', { err });
    }
  }

  /** How many warm workers wait now (for the isolation report and tests). */
  get warmWaiting(): number {
    return this.warm?.waiting ?? 0;
  }

  async launch(spec: WorkerLaunchSpec): Promise<LaunchedWorker> {
    const identity = this.o.users ? this.tenantIdentity(spec.tenantId) : undefined;
    this.prepareRunDir(spec);
    const disk = this.o.disks && identity ? await this.o.disks.prepareWorker(spec.tenantId, spec.limits.diskMB, identity) : undefined;
    const { dropped } = filterWorkerEnv(spec.env);
    if (dropped.length) this.o.log.warn('worker environment variables dropped (unsafe for the loader or the shell)', { tenant: spec.tenantId, dropped });
    // A warm worker with a private tmpfs /tmp cannot give a tenant with a disk image its /tmp on that disk (under diskMB): cold then.
    const warmFits = identity && !spec.plugins?.length && !spec.capabilityDir && (this.tmpInSlot || disk === undefined);
    const warm = warmFits ? this.warm?.take(profileKey(spec.entry, spec.network, workerNodeFlags(spec.limits))) : undefined;
    if (warm && identity) {
      try {
        return await this.assignWarm(spec, warm, identity, disk);
      } catch (err) {
        // The tenant's worker is started the usual way then; the warm one is gone.
        this.o.log.warn('could not give a warm worker its tenant; starting one cold', { tenant: spec.tenantId, err });
        await warm.cgroup.remove().catch(() => {});
        await this.slots?.clear(warm.slot.dir);
      }
    }

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
      await this.started(child);
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
    const tmpSizeMB = Math.max(16, Math.floor(spec.limits.memoryMB / 4));
    const command = buildSandboxCommand(spec, this.plan(identity, cgroup, tmpSizeMB, disk), hostPathKind);
    return this.spawnWithFds(command.file, command.args, command.env, logFd, cgroup !== undefined, listenFd);
  }

  /** The worker as the pool sees it; its exit settles only once its cgroup is gone. */
  private track(spec: WorkerLaunchSpec, child: ChildProcess, cgroup: WorkerCgroup | undefined, disk: WorkerDisk | undefined, slot?: WarmSlot): LaunchedWorker {
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
          // A warm worker's slot holds the tenant's folders mounted: out before the disk image goes.
          .then(() => (slot ? this.slots?.clear(slot.dir) : undefined))
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

  /** Kills every worker this launcher started, and the warm ones (platform shutdown). */
  async killAll(): Promise<void> {
    await Promise.all([...this.running].map((w) => w.kill().catch(() => {})));
    await this.warm?.close();
    await this.slots?.close();
  }

  /** The plan every worker command is built from (sandbox-command.ts). */
  private plan(identity: UnixIdentity | undefined, cgroup: WorkerCgroup | undefined, tmpSizeMB: number, disk: WorkerDisk | undefined): SandboxPlan {
    return {
      tools: this.o.tools,
      namespaces: this.o.namespaces,
      identity,
      cgroupProcFiles: cgroup?.procFiles ?? [],
      seccompFd: this.o.seccompProgram ? SECCOMP_FD : undefined,
      platformCode: this.o.platformCode,
      nodeBinary: this.o.nodeBinary,
      nodePermissions: this.o.nodePermissions,
      nodeAllowAddons: process.allowedNodeEnvironmentFlags.has('--allow-addons'),
      tmpSizeMB,
      ...(disk ? { tmpDir: disk.tmpDir, foreignMounts: disk.foreignMounts } : {}),
    };
  }

  /** Spawns a command with the worker's descriptors: log (or pipes), seccomp program, start channel, listening socket. */
  private spawnWithFds(file: string, args: readonly string[], env: Readonly<Record<string, string>>, out: number | 'pipe', withStart: boolean, listenFd: number): ChildProcess {
    return spawn(file, args, {
      env,
      cwd: '/',
      // Every tool in the chain (sh, prlimit, bwrap, setpriv, unshare) passes inherited descriptors on.
      stdio: ['ignore', out, out, ...(this.o.seccompProgram ? ['pipe' as const] : []), ...(withStart ? ['pipe' as const] : []), listenFd],
    });
  }

  /** Waits for the spawn and hands bwrap its seccomp program. */
  private async started(child: ChildProcess): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    // bwrap reads the program to its end before it runs anything.
    if (this.o.seccompProgram) {
      const seccompPipe = child.stdio[SECCOMP_FD] as Writable;
      seccompPipe.on('error', () => {}); // bwrap gone before reading: its exit is reported below
      seccompPipe.end(this.o.seccompProgram);
    }
  }

  /** A warm worker: the sandbox bound to its slot, Node and the runtime loading, no tenant yet. */
  private async spawnWarm(slot: WarmSlot, cgroup: WorkerCgroup, listenFd: number): Promise<ChildProcess> {
    const tmpSizeMB = Math.max(16, Math.floor(DEFAULT_LIMITS.memoryMB / 4));
    const tenantsRoot = path.join(this.o.dataRoot, 'tenants');
    const spec: WorkerLaunchSpec = {
      tenantId: WARM_GROUP,
      releaseDir: tenantsRoot,
      dataDir: tenantsRoot,
      runDir: slot.dir,
      socketPath: '',
      logFile: '',
      entry: WORKER_ENTRY,
      args: [WARM_OPTION, '--startup-fd', String(this.startFd()), LISTEN_FD_OPTION, String(this.listenFd(cgroup))],
      env: {},
      limits: DEFAULT_LIMITS,
      network: 'none',
    };
    const command = buildWarmCommand(spec, this.plan(undefined, cgroup, tmpSizeMB, undefined), hostPathKind, { slotDir: slot.dir, tenantsRoot, ...(this.tmpInSlot ? { tmp: path.join(tenantsRoot, SLOT_TMP) } : {}) });
    const child = this.spawnWithFds(command.file, command.args, command.env, 'pipe', true, listenFd);
    await this.started(child);
    // Until it has a tenant, what it prints is the platform's (nothing, when all goes well).
    const log = this.o.log.child({ component: 'warm-worker', pid: child.pid });
    for (const s of [child.stdout!, child.stderr!]) s.on('data', (b: Buffer) => log.warn('warm worker output', { line: b.toString('utf8').trimEnd().slice(0, 2000) }));
    return child;
  }

  /**
   * Gives a warm worker its tenant: the tenant's folders mounted into its slot
   * (read-only release), its processes moved into a new group of the tenant's
   * with the tenant's limits, RLIMIT_NPROC set, its output sent to the
   * tenant's log, its socket renamed to the tenant's socket path; then the
   * assignment, after which the runtime becomes the tenant's user, asks for
   * its CPU quota (the usual start handshake) and loads the tenant's code.
   */
  private async assignWarm(spec: WorkerLaunchSpec, warm: WarmWorker, identity: UnixIdentity, disk: WorkerDisk | undefined): Promise<LaunchedWorker> {
    const { child, slot } = warm;
    const tmpSizeMB = Math.max(16, Math.floor(spec.limits.memoryMB / 4));
    let cgroup: WorkerCgroup | undefined;
    const started = performance.now();
    try {
      const pids = readPids(warm.cgroup.procFiles[0] ?? '');
      const node = pids.find((pid) => commOf(pid) === 'node');
      if (node === undefined) throw new Error('the warm worker is gone');
      // RLIMIT_NPROC on the runtime itself (its helpers above it are bwrap's, running no tenant code).
      const limited = setNprocLimit(this.o.tools.prlimit!, node, spec.limits.pids);
      await this.slots!.fill(slot, { releaseDir: spec.releaseDir, dataDir: spec.dataDir, tmp: this.tmpInSlot ? { dir: disk?.tmpDir, sizeMB: tmpSizeMB } : undefined });
      cgroup = this.o.cgroups!.createWorkerGroup(spec.tenantId, `w-${crypto.randomBytes(4).toString('hex')}`, spec.limits, { cpuDeferred: true, moveCharges: true });
      for (const file of cgroup.procFiles) for (const pid of pids) fs.writeFileSync(file, String(pid));
      await limited;
      await warm.cgroup.remove();
      const logFd = openBeneath(this.o.dataRoot, spec.logFile, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o640);
      fs.fchownSync(logFd, this.o.platform.uid, this.o.platform.gid);
      // A cold worker writes its log through an inherited descriptor; a warm one was started before its
      // log was known, so its output pipes are relayed here (the supervisor), in order, with back-pressure.
      const logStream = fs.createWriteStream('', { fd: logFd, flags: 'a' });
      child.stdout!.removeAllListeners('data');
      child.stderr!.removeAllListeners('data');
      let open = 2;
      const ended = () => --open === 0 && logStream.end();
      for (const s of [child.stdout!, child.stderr!]) {
        s.pipe(logStream, { end: false });
        s.once('end', ended);
      }
      fs.renameSync(warm.socketPath, spec.socketPath);
      this.answerStartHandshake(spec, child, cgroup);
      const channel = child.stdio[this.startFd()] as Duplex;
      // The same environment and paths as a cold start: the slot shows the tenant's folders where they are.
      const env = filterWorkerEnv(runtimeEnv(spec.env, spec.plugins)).env;
      channel.write(encodeAssignment({ uid: identity.uid, gid: identity.gid, env, release: spec.releaseDir }));
      this.o.log.debug('warm worker given its tenant', { tenant: spec.tenantId, ms: Math.round(performance.now() - started) });
    } catch (err) {
      await cgroup?.remove().catch(() => {});
      removeWorkerSocket(socketPlace(this.o.dataRoot, spec.socketPath));
      throw err;
    }
    return this.track(spec, child, cgroup, disk, slot);
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
