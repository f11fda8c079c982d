// Several edges on one listening socket (TENANTRY_EDGES). On a 2-core machine
// this can only show the mechanism, not the gain: the load generator needs a
// core too. Measured here: one 14 KB file with 1 edge and with 2 (nothing
// pinned), how the CPU time of the two edges splits, and that after each
// deploy's 201 every new connection, whichever edge takes it, gets the new release.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { processTree, runLoad, type LoadResult } from './load.js';
import { startTenantry } from './servers.js';
import { packDir, request, TenantryApi } from './tenantry-api.js';

export const EDGES_TENANT = 'bench-edges';
const PAGE_BYTES = 14 * 1024;
const DEPLOYS = 5;
const CHECKS_PER_DEPLOY = 40;

export interface EdgesResult {
  readonly single: LoadResult;
  readonly double: LoadResult;
  /** Share of the edges' CPU time each edge used under load (2 edges). */
  readonly cpuShares: readonly number[];
  readonly checks: number;
  readonly stale: number;
  readonly edgesSeen: number;
}

function site(work: string, marker: string): Promise<Buffer> {
  const dir = path.join(work, `edges-site-${marker}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'index.html'), `<!doctype html><title>${marker}</title>\n` + 'x'.repeat(PAGE_BYTES - 40) + '\n');
  return packDir(dir);
}

/** utime + stime in clock ticks. */
function cpuTicks(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

function edgePids(root: number): number[] {
  return processTree(root).filter((pid) => {
    try {
      return /(?:^|\/)(?:sibling-)?edge-process\.js/.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '));
    } catch {
      return false;
    }
  });
}

async function oneRun(work: string, edges: number, o: { isolation: string; durationSec: number; connections: number }) {
  const token = crypto.randomBytes(24).toString('hex');
  const dataDir = path.join(work, `edges-${edges}`);
  const server = await startTenantry(dataDir, undefined, { TENANTRY_ADMIN_TOKEN: token, TENANTRY_ISOLATION: o.isolation, TENANTRY_EDGES: String(edges), TENANTRY_EDGE_HEADER: 'on' });
  const api = new TenantryApi(server.origin, token);
  try {
    await api.createTenant(EDGES_TENANT);
    await api.deployArchive(EDGES_TENANT, await site(work, 'first'));
    const spec = { origin: server.origin, targets: [{ host: `${EDGES_TENANT}.localhost`, path: '/' }], connections: o.connections, durationSec: 1 };
    await runLoad(spec);
    const pids = edgePids(server.child.pid!);
    const before = pids.map(cpuTicks);
    const load = await runLoad({ ...spec, durationSec: o.durationSec });
    const used = pids.map((pid, i) => cpuTicks(pid) - before[i]!);
    const total = used.reduce((a, b) => a + b, 0) || 1;
    let checks = 0;
    let stale = 0;
    const seen = new Set<string>();
    if (edges > 1) {
      for (let d = 0; d < DEPLOYS; d++) {
        const marker = `release-${d}`;
        await api.deployArchive(EDGES_TENANT, await site(work, marker));
        const answers = await Promise.all(Array.from({ length: CHECKS_PER_DEPLOY }, () => request(server.origin, { path: '/', host: `${EDGES_TENANT}.localhost` })));
        for (const a of answers) {
          checks++;
          if (!a.body.includes(`<title>${marker}</title>`)) stale++;
          seen.add(String(a.headers?.['x-tenantry-edge']));
        }
      }
    }
    await api.deleteTenant(EDGES_TENANT);
    return { load, shares: used.map((u) => u / total), checks, stale, edgesSeen: seen.size };
  } finally {
    await server.stop();
  }
}

export async function edgesOnOneSocket(work: string, o: { isolation: string; durationSec: number; connections: number }): Promise<EdgesResult> {
  const single = await oneRun(work, 1, o);
  const double = await oneRun(work, 2, o);
  return { single: single.load, double: double.load, cpuShares: double.shares, checks: double.checks, stale: double.stale, edgesSeen: double.edgesSeen };
}
