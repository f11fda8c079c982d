// Many tenants on one platform: create N through the API, one after another
// (as an admin script would), read the edge's memory, ask each for its
// starter page once, then delete them all (their Unix users go with them).
import fs from 'node:fs';
import { request, type TenantryApi } from './tenantry-api.js';

export interface TenantScaleResult {
  count: number;
  createMs: number;
  /** Per tenant: median and slowest creation. */
  medianMs: number;
  maxMs: number;
  /** Processes of the platform (its whole tree) before the tenants were made, and after each served its page once. */
  processesBefore: number;
  processesAfter: number;
  /** Resident memory of the process that serves requests (the edge), after all were created and each served once. */
  edgeRssMiB: number;
  served: number;
  serveMs: number;
  deleteMs: number;
}

/** Pids of a process and all its descendants (from /proc). */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(root);
  return out;
}

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The edge is the process running the edge entry (split as root), else the server process itself. */
export function edgeRssMiB(serverPid: number): number {
  const tree = processTree(serverPid);
  const edge = tree.find((p) => {
    try {
      return /edge/.test(fs.readFileSync(`/proc/${p}/cmdline`, 'utf8'));
    } catch {
      return false;
    }
  });
  return rssKiB(edge ?? serverPid) / 1024;
}

export async function tenantsAtScale(api: TenantryApi, origin: string, serverPid: number, count: number, prefix = 'bt'): Promise<TenantScaleResult> {
  const ids = Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`);
  const each: number[] = [];
  const started = performance.now();
  const processesBefore = processTree(serverPid).length;
  try {
    for (const id of ids) {
      const t0 = performance.now();
      await api.createTenant(id);
      each.push(performance.now() - t0);
    }
    const createMs = performance.now() - started;
    const s0 = performance.now();
    let served = 0;
    for (const id of ids) {
      const r = await request(origin, { host: `${id}.localhost`, path: '/' });
      if (r.status === 200) served++;
    }
    const serveMs = performance.now() - s0;
    const rss = edgeRssMiB(serverPid);
    // Deploy workers of the last starter releases may still be finishing: a moment for them.
    await new Promise((r) => setTimeout(r, 2000));
    const processesAfter = processTree(serverPid).length;
    const sorted = [...each].sort((a, b) => a - b);
    const d0 = performance.now();
    for (const id of ids) await api.deleteTenant(id);
    return {
      count,
      createMs,
      medianMs: sorted[Math.floor(sorted.length / 2)]!,
      maxMs: sorted[sorted.length - 1]!,
      edgeRssMiB: rss,
      processesBefore,
      processesAfter,
      served,
      serveMs,
      deleteMs: performance.now() - d0,
    };
  } catch (err) {
    // Whatever was made goes, even when the run failed half way.
    for (const id of ids) await api.deleteTenant(id).catch(() => {});
    throw err;
  }
}
