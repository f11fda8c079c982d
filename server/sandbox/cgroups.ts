// Per-tenant cgroups on whichever hierarchy the host has. Layout:
//   v1: /sys/fs/cgroup/{memory,pids,cpu,freezer}/tenantry/<tenant>/<worker>/
//   v2: /sys/fs/cgroup/tenantry/<tenant>/<worker>/
// Limits sit on the worker's group (a deploy briefly runs the old and the new
// worker side by side; each gets the tenant's limits). The tenant's group
// holds all of them, so deleting a tenant kills everything it ever started.
// The launcher's shell shim writes its own pid into `procFiles` before it
// executes anything of the tenant's, so nothing escapes the limits.
import fs from 'node:fs';
import { readPids } from './process-state.js';
import path from 'node:path';

export interface CgroupLimits {
  readonly memoryMB: number;
  readonly cpuPercent: number;
  readonly pids: number;
}

export interface WorkerGroupOptions {
  readonly cpuDeferred?: boolean;
  readonly moveCharges?: boolean;
}

export interface WorkerCgroup {
  readonly name: string;
  /** Files the shim writes its pid into (one per v1 hierarchy, one on v2). */
  readonly procFiles: readonly string[];
  /** Puts the CPU quota in force (when the group was created with `cpuDeferred`); idempotent. */
  limitCpu(): void;
  /** Kills every process in the group (also those that detached) and waits until it is empty. */
  kill(): Promise<void>;
  /** Kills what is left, then removes the group's folders. */
  remove(): Promise<void>;
}

export interface CgroupDriver {
  readonly kind: 'v1' | 'v2';
  /** Human summary for the isolation report, e.g. "v1 memory,pids,cpu,freezer at /sys/fs/cgroup". */
  readonly description: string;
  /**
   * Memory and pids limits are in force from the start; the CPU quota too,
   * unless `cpuDeferred`: then it waits for limitCpu() (the worker runtime's
   * own start, before any tenant code, runs at full speed).
   */
  /**
   * `cpuDeferred`: the CPU quota waits for limitCpu(). `moveCharges`: memory
   * already used by a process moved in later counts here too (v1; v2 cannot
   * move charges: what a warm worker used before it was given its tenant stays
   * with the platform's group).
   */
  createWorkerGroup(tenantId: string, workerName: string, limits: CgroupLimits, options?: WorkerGroupOptions): WorkerCgroup;
  /** Kills everything in the tenant's groups and removes them. */
  removeTenant(tenantId: string): Promise<void>;
  /** Kills and removes those of the tenant's worker groups `stale` picks (by name); returns how many. */
  removeWorkerGroups(tenantId: string, stale: (workerName: string) => boolean): Promise<number>;
  /** Pids currently in the tenant's groups (all workers). */
  tenantPids(tenantId: string): number[];
  /** The limits in force on each of the tenant's running workers, read back from the kernel. */
  workerLimits(tenantId: string): CgroupLimits[];
  /**
   * Moves a deploy worker into the platform's deploy group, whose CPU (and on
   * v2 I/O) weight is a tenth of the default: when the edge wants the CPU, it
   * gets it. Returns the group's folder.
   */
  placeDeployWorker(pid: number): string;
}

/** The deploy workers' group, beside the tenants' (tenant ids never start with "_"). */
const DEPLOY_GROUP = '_deploy';
/** A tenth of the default weight (v2 cpu.weight/io.weight 100; v1 cpu.shares 1024). */
const DEPLOY_WEIGHT_V2 = 10;
const DEPLOY_SHARES_V1 = 102;

function readNumber(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim().split(/\s+/)[0]);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

const MiB = 1024 * 1024;

const ROOT_NAME = 'tenantry';
const CPU_PERIOD_US = 100_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


function writeIfPresent(file: string, value: string): void {
  if (fs.existsSync(file)) fs.writeFileSync(file, value);
}

function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Child folders first (rmdir works only on empty cgroups), ignoring what is already gone. */
function removeTree(dir: string): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) removeTree(path.join(dir, e.name));
  try {
    fs.rmdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function subgroups(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => path.join(dir, e.name));
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- v1

const V1_CONTROLLERS = ['memory', 'pids', 'cpu', 'freezer'] as const;
type V1Controller = (typeof V1_CONTROLLERS)[number];

class CgroupV1 implements CgroupDriver {
  readonly kind = 'v1' as const;
  readonly description: string;

  constructor(private readonly mounts: Readonly<Record<V1Controller, string>>) {
    this.description = `v1 (${V1_CONTROLLERS.map((c) => `${c} at ${mounts[c]}`).join(', ')})`;
    for (const c of V1_CONTROLLERS) fs.mkdirSync(path.join(mounts[c], ROOT_NAME), { recursive: true });
  }

  private dir(c: V1Controller, ...parts: string[]): string {
    return path.join(this.mounts[c], ROOT_NAME, ...parts);
  }

  createWorkerGroup(tenantId: string, workerName: string, limits: CgroupLimits, options: WorkerGroupOptions = {}): WorkerCgroup {
    const dirs = V1_CONTROLLERS.map((c) => this.dir(c, tenantId, workerName));
    for (const d of dirs) fs.mkdirSync(d, { recursive: true });
    const mem = this.dir('memory', tenantId, workerName);
    const bytes = String(limits.memoryMB * 1024 * 1024);
    fs.writeFileSync(path.join(mem, 'memory.limit_in_bytes'), bytes);
    // Memory + swap at the same figure: no swapping past the limit.
    writeIfPresent(path.join(mem, 'memory.memsw.limit_in_bytes'), bytes);
    writeIfPresent(path.join(mem, 'memory.swappiness'), '0');
    if (options.moveCharges) {
      try {
        // Anonymous and file pages (1 | 2) follow a task moved in.
        writeIfPresent(path.join(mem, 'memory.move_charge_at_immigrate'), '3');
      } catch {
        // kernels that dropped charge moving: the pages stay with the group they were charged to
      }
    }
    fs.writeFileSync(path.join(this.dir('pids', tenantId, workerName), 'pids.max'), String(limits.pids));
    const cpu = this.dir('cpu', tenantId, workerName);
    let cpuLimited = false;
    const limitCpu = () => {
      if (cpuLimited) return;
      fs.writeFileSync(path.join(cpu, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
      fs.writeFileSync(path.join(cpu, 'cpu.cfs_quota_us'), String(Math.round((CPU_PERIOD_US * limits.cpuPercent) / 100)));
      cpuLimited = true;
    };
    if (!options.cpuDeferred) limitCpu();
    const kill = () => this.killGroup(this.dir('freezer', tenantId, workerName), dirs);
    return {
      name: workerName,
      procFiles: dirs.map((d) => path.join(d, 'cgroup.procs')),
      limitCpu,
      kill,
      remove: async () => {
        await kill();
        for (const d of dirs) removeTree(d);
      },
    };
  }

  placeDeployWorker(pid: number): string {
    const dir = this.dir('cpu', DEPLOY_GROUP);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'cpu.shares'), String(DEPLOY_SHARES_V1));
    fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
    return dir;
  }

  /**
   * Freeze, kill every task, thaw: a frozen group cannot fork new processes
   * between our reading the list and the kill. Repeats until all are empty.
   */
  private async killGroup(freezerDir: string, dirs: readonly string[]): Promise<void> {
    const state = path.join(freezerDir, 'freezer.state');
    for (let round = 0; round < 100; round++) {
      const pids = [...new Set(dirs.flatMap((d) => readPids(path.join(d, 'cgroup.procs'))))];
      if (pids.length === 0) return;
      writeIfPresent(state, 'FROZEN');
      for (let i = 0; i < 50 && fs.existsSync(state) && fs.readFileSync(state, 'utf8').trim() === 'FREEZING'; i++) await sleep(2);
      killAll(dirs.flatMap((d) => readPids(path.join(d, 'tasks'))));
      writeIfPresent(state, 'THAWED');
      await sleep(round < 10 ? 5 : 20);
    }
    throw new Error(`processes survive in ${freezerDir} after repeated kills`);
  }

  async removeWorkerGroups(tenantId: string, stale: (workerName: string) => boolean): Promise<number> {
    let removed = 0;
    for (const freezer of subgroups(this.dir('freezer', tenantId))) {
      const name = path.basename(freezer);
      if (!stale(name)) continue;
      const dirs = V1_CONTROLLERS.map((c) => this.dir(c, tenantId, name));
      // A platform killed between freezing and thawing a group leaves it frozen: the kill thaws it.
      await this.killGroup(freezer, dirs);
      for (const d of dirs) removeTree(d);
      removed++;
    }
    return removed;
  }

  async removeTenant(tenantId: string): Promise<void> {
    await this.removeWorkerGroups(tenantId, () => true);
    for (const c of V1_CONTROLLERS) removeTree(this.dir(c, tenantId));
  }

  workerLimits(tenantId: string): CgroupLimits[] {
    return subgroups(this.dir('memory', tenantId)).map((mem) => {
      const name = path.basename(mem);
      const quota = readNumber(path.join(this.dir('cpu', tenantId, name), 'cpu.cfs_quota_us')) ?? -1;
      const period = readNumber(path.join(this.dir('cpu', tenantId, name), 'cpu.cfs_period_us')) ?? CPU_PERIOD_US;
      return {
        memoryMB: Math.round((readNumber(path.join(mem, 'memory.limit_in_bytes')) ?? 0) / MiB),
        pids: readNumber(path.join(this.dir('pids', tenantId, name), 'pids.max')) ?? 0,
        cpuPercent: quota < 0 ? 0 : Math.round((quota * 100) / period),
      };
    });
  }

  tenantPids(tenantId: string): number[] {
    const all = V1_CONTROLLERS.flatMap((c) => [this.dir(c, tenantId), ...subgroups(this.dir(c, tenantId))].flatMap((d) => readPids(path.join(d, 'cgroup.procs'))));
    return [...new Set(all)];
  }
}

// ---------------------------------------------------------------- v2

const V2_CONTROLLERS = ['memory', 'pids', 'cpu'] as const;

class CgroupV2 implements CgroupDriver {
  readonly kind = 'v2' as const;
  readonly description: string;
  private readonly root: string;

  constructor(mount: string) {
    this.root = path.join(mount, ROOT_NAME);
    this.description = `v2 (${V2_CONTROLLERS.join(', ')} at ${this.root})`;
    fs.mkdirSync(this.root, { recursive: true });
    enableControllersAtTop(mount);
    enableControllers(this.root);
  }

  createWorkerGroup(tenantId: string, workerName: string, limits: CgroupLimits, options: WorkerGroupOptions = {}): WorkerCgroup {
    const tenantDir = path.join(this.root, tenantId);
    fs.mkdirSync(tenantDir, { recursive: true });
    enableControllers(tenantDir);
    const dir = path.join(tenantDir, workerName);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'memory.max'), String(limits.memoryMB * 1024 * 1024));
    writeIfPresent(path.join(dir, 'memory.swap.max'), '0');
    fs.writeFileSync(path.join(dir, 'pids.max'), String(limits.pids));
    let cpuLimited = false;
    const limitCpu = () => {
      if (cpuLimited) return;
      fs.writeFileSync(path.join(dir, 'cpu.max'), `${Math.round((CPU_PERIOD_US * limits.cpuPercent) / 100)} ${CPU_PERIOD_US}`);
      cpuLimited = true;
    };
    if (!options.cpuDeferred) limitCpu();
    const kill = () => killV2(dir);
    return {
      name: workerName,
      procFiles: [path.join(dir, 'cgroup.procs')],
      limitCpu,
      kill,
      remove: async () => {
        await kill();
        removeTree(dir);
      },
    };
  }

  async removeWorkerGroups(tenantId: string, stale: (workerName: string) => boolean): Promise<number> {
    let removed = 0;
    for (const d of subgroups(path.join(this.root, tenantId))) {
      if (!stale(path.basename(d))) continue;
      await killV2(d);
      removeTree(d);
      removed++;
    }
    return removed;
  }

  async removeTenant(tenantId: string): Promise<void> {
    const tenantDir = path.join(this.root, tenantId);
    await this.removeWorkerGroups(tenantId, () => true);
    await killV2(tenantDir);
    removeTree(tenantDir);
  }

  workerLimits(tenantId: string): CgroupLimits[] {
    return subgroups(path.join(this.root, tenantId)).map((dir) => {
      const [quota = 'max', period = String(CPU_PERIOD_US)] = fs.readFileSync(path.join(dir, 'cpu.max'), 'utf8').trim().split(/\s+/);
      return {
        memoryMB: Math.round((readNumber(path.join(dir, 'memory.max')) ?? 0) / MiB),
        pids: readNumber(path.join(dir, 'pids.max')) ?? 0,
        cpuPercent: quota === 'max' ? 0 : Math.round((Number(quota) * 100) / Number(period)),
      };
    });
  }

  placeDeployWorker(pid: number): string {
    const dir = path.join(this.root, DEPLOY_GROUP);
    fs.mkdirSync(dir, { recursive: true });
    // io is not among the controllers the tenants need; offered to this group when the host has it.
    try {
      if (fs.readFileSync(path.join(this.root, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('io')) fs.writeFileSync(path.join(this.root, 'cgroup.subtree_control'), '+io');
    } catch {
      // no io weight then; the CPU weight still applies
    }
    fs.writeFileSync(path.join(dir, 'cpu.weight'), String(DEPLOY_WEIGHT_V2));
    writeIfPresent(path.join(dir, 'io.weight'), `default ${DEPLOY_WEIGHT_V2}`);
    fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
    return dir;
  }

  tenantPids(tenantId: string): number[] {
    const tenantDir = path.join(this.root, tenantId);
    return [tenantDir, ...subgroups(tenantDir)].flatMap((d) => readPids(path.join(d, 'cgroup.procs')));
  }
}

function enableControllers(dir: string): void {
  const available = fs.readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8').split(/\s+/);
  const wanted = V2_CONTROLLERS.filter((c) => available.includes(c));
  if (wanted.length) fs.writeFileSync(path.join(dir, 'cgroup.subtree_control'), wanted.map((c) => '+' + c).join(' '));
}

/**
 * In a container the top of the cgroup namespace holds the container's own
 * processes, and v2 enables controllers for children only in a group without
 * processes (EBUSY). Move them into a leaf of their own first, as container
 * init systems do.
 */
function enableControllersAtTop(mount: string): void {
  try {
    enableControllers(mount);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
    const leaf = path.join(mount, 'tenantry-host');
    fs.mkdirSync(leaf, { recursive: true });
    for (const pid of readPids(path.join(mount, 'cgroup.procs'))) {
      try {
        fs.writeFileSync(path.join(leaf, 'cgroup.procs'), String(pid));
      } catch {
        // kernel threads and exiting processes stay where they are
      }
    }
    enableControllers(mount);
  }
}

/** cgroup.kill (Linux 5.14+) kills the whole group at once; else freeze and kill pid by pid. */
async function killV2(dir: string): Promise<void> {
  const procs = path.join(dir, 'cgroup.procs');
  if (!fs.existsSync(procs)) return;
  for (let round = 0; round < 100; round++) {
    if (readPids(procs).length === 0) return;
    if (fs.existsSync(path.join(dir, 'cgroup.kill'))) {
      fs.writeFileSync(path.join(dir, 'cgroup.kill'), '1');
    } else {
      writeIfPresent(path.join(dir, 'cgroup.freeze'), '1');
      killAll(readPids(procs));
      writeIfPresent(path.join(dir, 'cgroup.freeze'), '0');
    }
    await sleep(round < 10 ? 5 : 20);
  }
  throw new Error(`processes survive in ${dir} after repeated kills`);
}

// ---------------------------------------------------------------- detection

export interface CgroupProbe {
  readonly driver?: CgroupDriver;
  /** Why there is no driver, when there is none. */
  readonly reason?: string;
}

export interface MountEntry {
  readonly mountPoint: string;
  readonly type: string;
  readonly options: readonly string[];
}

export function readMounts(): MountEntry[] {
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [, mountPoint = '', type = '', opts = ''] = line.split(' ');
      return { mountPoint: mountPoint.replace(/\\040/g, ' '), type, options: opts.split(',') };
    });
}

/**
 * Picks the hierarchy: v2 when its root offers memory, pids and cpu; else v1
 * when memory, pids, cpu and freezer are mounted. Creating the `tenantry`
 * groups is the real test of whether we may use them (root, writable mount).
 */
export function probeCgroups(): CgroupProbe {
  let mounts: MountEntry[];
  try {
    mounts = readMounts();
  } catch (err) {
    return { reason: `cannot read /proc/self/mounts: ${(err as Error).message}` };
  }
  const reasons: string[] = [];
  const v2 = mounts.find((m) => m.type === 'cgroup2');
  if (v2) {
    let controllers: string[] = [];
    try {
      controllers = fs.readFileSync(path.join(v2.mountPoint, 'cgroup.controllers'), 'utf8').split(/\s+/).filter(Boolean);
    } catch {
      // unreadable: treated as no controllers
    }
    const missing = V2_CONTROLLERS.filter((c) => !controllers.includes(c));
    if (missing.length === 0) {
      try {
        return { driver: new CgroupV2(v2.mountPoint) };
      } catch (err) {
        reasons.push(`cgroup v2 at ${v2.mountPoint} not usable: ${(err as Error).message}`);
      }
    } else {
      reasons.push(`cgroup v2 at ${v2.mountPoint} lacks ${missing.join(', ')}`);
    }
  }
  const v1Mounts: Partial<Record<V1Controller, string>> = {};
  for (const m of mounts) {
    if (m.type !== 'cgroup') continue;
    for (const c of V1_CONTROLLERS) if (m.options.includes(c) && !v1Mounts[c]) v1Mounts[c] = m.mountPoint;
  }
  const missingV1 = V1_CONTROLLERS.filter((c) => !v1Mounts[c]);
  if (missingV1.length === 0) {
    try {
      return { driver: new CgroupV1(v1Mounts as Record<V1Controller, string>) };
    } catch (err) {
      reasons.push(`cgroup v1 not usable: ${(err as Error).message}`);
    }
  } else if (!v2 || Object.keys(v1Mounts).length > 0) {
    reasons.push(`cgroup v1 lacks ${missingV1.join(', ')}`);
  }
  return { reason: reasons.join('; ') || 'no cgroup hierarchy mounted' };
}
