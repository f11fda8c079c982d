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
  const acct = v1('cpuacct');
  if (mem && acct) {
    return {
      usage: (tenantId) => {
        const memoryBytes = firstNumber(readText(path.join(mem.mountPoint, ROOT_NAME, tenantId, 'memory.usage_in_bytes')));
        const ns = firstNumber(readText(path.join(acct.mountPoint, ROOT_NAME, tenantId, 'cpuacct.usage')));
        if (memoryBytes === undefined || ns === undefined) return undefined;
        return { memoryBytes, cpuSeconds: ns / 1e9 };
      },
      missing: () => undefined,
    };
  }
  const why = mem ? 'no cpuacct cgroup of the platform found' : 'no cgroups of the platform found (isolation without resource limits)';
  return { usage: () => undefined, missing: () => why };
}
