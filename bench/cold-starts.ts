// The first request to a tenant whose worker is not running, over 20 tenants
// with a small api/ route, in four passes:
//   after a restart   the platform just started (tenant disk images not mounted yet)
//   idle              the platform running, each worker stopped by the idle timeout
//   idle, in a burst  the same, 20 first requests back to back (more than the warm pool holds)
//   idle, no warm     the same as "idle" with TENANTRY_WARM_WORKERS=0: every worker started cold
// Requests of the spaced passes are 1.5 s apart, as first requests to idle
// sites arrive; the warm pool refills in between.
import fs from 'node:fs';
import path from 'node:path';
import { startTenantry, type TenantryServer } from './servers.js';
import { packDir, request, TenantryApi } from './tenantry-api.js';

export const COLD_TENANTS = 20;
const SPACING_MS = 1500;
/** TENANTRY_WORKER_IDLE_SECONDS during the passes; workers are gone a few seconds after it. */
const IDLE_SECONDS = 2;
const IDLE_WAIT_MS = (IDLE_SECONDS + 6) * 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ColdPass {
  readonly name: string;
  /** Time to first byte of each first request that answered 200, in ms. */
  readonly ms: number[];
  readonly failures: string[];
}

export interface ColdStartOptions {
  readonly dataDir: string;
  readonly work: string;
  readonly token: string;
  readonly cpu: number | undefined;
  /** The environment the bench runs Tenantry with. */
  readonly env: Record<string, string>;
  readonly log: (line: string) => void;
}

/** Nearest-rank percentile (p in 0..100) of the samples. */
export function percentile(xs: readonly number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const tenantIds = Array.from({ length: COLD_TENANTS }, (_, i) => `cold-${i + 1}`);

async function deployTenants(api: TenantryApi, work: string): Promise<void> {
  const site = path.join(work, 'cold-site');
  fs.mkdirSync(path.join(site, 'api'), { recursive: true });
  fs.writeFileSync(path.join(site, 'api/hello.js'), "module.exports = (req, res) => res.json({ hello: 'world' });\n");
  fs.writeFileSync(path.join(site, 'index.html'), '<h1>cold</h1>\n');
  const archive = await packDir(site);
  for (const id of tenantIds) {
    await api.createTenant(id);
    await api.deployArchive(id, archive);
  }
}

async function pass(t: TenantryServer, name: string, spacingMs: number): Promise<ColdPass> {
  const ms: number[] = [];
  const failures: string[] = [];
  for (const id of tenantIds) {
    try {
      const r = await request(t.origin, { host: `${id}.localhost`, path: '/api/hello' });
      if (r.status === 200) ms.push(r.firstByteMs);
      else failures.push(`${id}: ${r.status}`);
    } catch (err) {
      failures.push(`${id}: ${(err as Error).message}`);
    }
    if (spacingMs) await sleep(spacingMs);
  }
  return { name, ms, failures };
}

/** Runs the passes; leaves no Tenantry running (the caller starts its own again). */
export async function coldStartPasses(o: ColdStartOptions): Promise<ColdPass[]> {
  const env = { ...o.env, TENANTRY_WORKER_IDLE_SECONDS: String(IDLE_SECONDS) };
  const passes: ColdPass[] = [];
  let t = await startTenantry(o.dataDir, o.cpu, env);
  try {
    const api = new TenantryApi(t.origin, o.token);
    o.log(`cold starts: deploying ${COLD_TENANTS} tenants with an api/ route ...`);
    await deployTenants(api, o.work);
    await t.stop();
    t = await startTenantry(o.dataDir, o.cpu, env);
    // The warm pool fills at start.
    await sleep(3000);
    passes.push(await pass(t, 'after a restart', SPACING_MS));
    await sleep(IDLE_WAIT_MS);
    passes.push(await pass(t, 'idle', SPACING_MS));
    await sleep(IDLE_WAIT_MS);
    passes.push(await pass(t, 'idle, 20 in a burst', 0));
    await t.stop();
    t = await startTenantry(o.dataDir, o.cpu, { ...env, TENANTRY_WARM_WORKERS: '0' });
    // Every worker started once (disk images mounted), then idle, as in the "idle" pass.
    await pass(t, 'warm-up', 0);
    await sleep(IDLE_WAIT_MS);
    passes.push(await pass(t, 'idle, no warm workers', SPACING_MS));
    for (const id of tenantIds) await new TenantryApi(t.origin, o.token).deleteTenant(id).catch(() => {});
  } finally {
    await t.stop();
  }
  return passes;
}
