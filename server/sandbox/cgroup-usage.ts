// Memory and CPU of a tenant's workers, read from its cgroup (the tenant's
// group holds all its workers). Reading needs no privilege: cgroup files are
// world-readable, so the unprivileged edge reads them even when the root
// supervisor created the groups. Nothing is created or written here.
import fs from 'node:fs';
import path from 'node:path';
import { readMounts } from './cgroups.js';

export interface TenantUsage {
  readonly memoryBytes: number;
  readonly cpuSeconds: number;
}

export interface UsageReader {
  /** The tenant's usage, or undefined when it has no group (no worker) or it cannot be read. */
  usage(tenantId: string): TenantUsage | undefined;
  /** Why nothing can be read (no cgroups of ours found, not readable); undefined when readings work. */
  missing(): string | undefined;
}

const ROOT_NAME = 'tenantry';

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function firstNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text.trim().split(/\s+/)[0]);
  return Number.isFinite(n) ? n : undefined;
}

export function createUsageReader(): UsageReader {
  let mounts: ReturnType<typeof readMounts>;
  try {
    mounts = readMounts();
  } catch (err) {
    const why = `cannot read the mount table: ${(err as Error).message}`;
    return { usage: () => undefined, missing: () => why };
  }
  const v2 = mounts.find((m) => m.type === 'cgroup2' && fs.existsSync(path.join(m.mountPoint, ROOT_NAME)));
  if (v2) {
    const root = path.join(v2.mountPoint, ROOT_NAME);
    return {
      usage: (tenantId) => {
        const dir = path.join(root, tenantId);
        const memoryBytes = firstNumber(readText(path.join(dir, 'memory.current')));
        const usec = /^usage_usec (\d+)$/m.exec(readText(path.join(dir, 'cpu.stat')) ?? '')?.[1];
        if (memoryBytes === undefined || usec === undefined) return undefined;
        return { memoryBytes, cpuSeconds: Number(usec) / 1e6 };
      },
      missing: () => (fs.existsSync(path.join(root, 'cgroup.procs')) ? undefined : `${root} is not readable`),
    };
  }
  const v1 = (controller: string) => mounts.find((m) => m.type === 'cgroup' && m.options.includes(controller) && fs.existsSync(path.join(m.mountPoint, ROOT_NAME)));
  const mem = v1('memory');
  if (mem) {
    // The platform makes no cpuacct groups of its own; where cpuacct is co-mounted with cpu it has them.
    const acct = v1('cpuacct');
    return {
      usage: (tenantId) => {
        const memDir = path.join(mem.mountPoint, ROOT_NAME, tenantId);
        const memoryBytes = firstNumber(readText(path.join(memDir, 'memory.usage_in_bytes')));
        if (memoryBytes === undefined) return undefined;
        const ns = acct ? firstNumber(readText(path.join(acct.mountPoint, ROOT_NAME, tenantId, 'cpuacct.usage'))) : undefined;
        return { memoryBytes, cpuSeconds: ns !== undefined ? ns / 1e9 : processCpuSeconds(memDir) };
      },
      missing: () => undefined,
    };
  }
  const why = 'no cgroups of the platform found (isolation off, or without resource limits)';
  return { usage: () => undefined, missing: () => why };
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU time of the processes now in a v1 group and its subgroups, from /proc/<pid>/stat (world-readable). */
function processCpuSeconds(dir: string): number {
  let ticks = 0;
  const walk = (d: string) => {
    for (const line of (readText(path.join(d, 'cgroup.procs')) ?? '').split('\n')) {
      if (!line) continue;
      const stat = readText(`/proc/${line}/stat`);
      // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const rest = stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (rest) ticks += Number(rest[11] ?? 0) + Number(rest[12] ?? 0);
    }
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      /* gone meanwhile */
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
  };
  walk(dir);
  return ticks / TICKS_PER_SECOND;
}
