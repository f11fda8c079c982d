// Helpers for dynamic-route tests: deploy a site given as {path: content}
// through the real upload API, and keep a steady stream of requests on a
// tenant to prove another tenant's trouble never reaches it.
import fs from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';
import { httpRequest, tempDir, type HttpAnswer, type TestPlatform } from './harness.js';

export type SiteFiles = Record<string, string>;

/** Packs the files into a tar.gz and uploads it; returns the API's answer (201 when live). */
export async function deploySite(p: Pick<TestPlatform, 'url' | 'adminToken'>, tenantId: string, files: SiteFiles): Promise<HttpAnswer> {
  const dir = tempDir('tenantry-wk-site-');
  try {
    for (const [rel, content] of Object.entries(files)) {
      const abs = path.join(dir, 'site', rel);
      fs.mkdirSync(path.dirname(abs), { recursive: true });
      fs.writeFileSync(abs, content);
    }
    const archive = path.join(dir, 'site.tar.gz');
    await tar.c({ gzip: true, cwd: path.join(dir, 'site'), file: archive }, fs.readdirSync(path.join(dir, 'site')));
    return await httpRequest(p.url, {
      host: 'localhost',
      method: 'POST',
      path: `/api/v1/tenants/${tenantId}/deploys`,
      headers: { Authorization: `Bearer ${p.adminToken}`, 'Content-Type': 'application/gzip' },
      body: fs.readFileSync(archive),
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Deploys and insists on success; returns the deploy id. */
export async function deployOk(p: Pick<TestPlatform, 'url' | 'adminToken'>, tenantId: string, files: SiteFiles): Promise<string> {
  const res = await deploySite(p, tenantId, files);
  if (res.status !== 201) throw new Error(`deploy of ${tenantId} failed: HTTP ${res.status} ${res.body}`);
  return (JSON.parse(res.body) as { id: string }).id;
}

export async function createTenant(p: Pick<TestPlatform, 'url' | 'adminToken'>, id: string, extra: Record<string, unknown> = {}): Promise<void> {
  const res = await api(p, 'POST', '/api/v1/tenants', { id, ...extra });
  if (res.status !== 201) throw new Error(`cannot create ${id}: HTTP ${res.status} ${res.body}`);
}

/** A control-API call with the admin token (or the one given). */
export function api(p: Pick<TestPlatform, 'url' | 'adminToken'>, method: string, apiPath: string, json?: unknown, token = p.adminToken): Promise<HttpAnswer> {
  return httpRequest(p.url, {
    host: 'localhost',
    method,
    path: apiPath,
    headers: { Authorization: `Bearer ${token}`, ...(json !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    body: json !== undefined ? JSON.stringify(json) : undefined,
  });
}

/** A request to a tenant's site; one that hangs fails after a minute (instead of hanging the test). */
export function site(
  p: Pick<TestPlatform, 'url'>,
  tenantId: string,
  urlPath: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<HttpAnswer> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${opts.method ?? 'GET'} ${urlPath} on ${tenantId} got no answer within 60 s`)), 60_000);
  });
  return Promise.race([httpRequest(p.url, { host: `${tenantId}.localhost`, path: urlPath, ...opts }), hung]).finally(() => clearTimeout(timer));
}

export interface SteadyLoad {
  /** Requests answered so far (any status). */
  readonly count: () => number;
  /** Waits until at least n more requests were answered. */
  readonly waitFor: (n: number) => Promise<void>;
  /** Stops the loop; resolves with every request that did not get its expected answer. */
  readonly stop: () => Promise<{ total: number; failures: string[] }>;
}

/**
 * Sequential requests to each of `checks` in turn, for as long as it runs.
 * Each check names a path and what its body must contain.
 */
export function steadyLoad(p: TestPlatform, tenantId: string, checks: { path: string; expect: RegExp }[]): SteadyLoad {
  let running = true;
  let total = 0;
  const failures: string[] = [];
  const waiters: { until: number; resolve: () => void }[] = [];
  const loop = (async () => {
    while (running) {
      for (const c of checks) {
        const started = Date.now();
        try {
          const res = await site(p, tenantId, c.path);
          if (res.status !== 200 || !c.expect.test(res.body)) {
            failures.push(`${c.path}: HTTP ${res.status} after ${Date.now() - started} ms: ${res.body.slice(0, 200)}`);
          }
        } catch (err) {
          failures.push(`${c.path}: ${(err as Error).message}`);
        }
        total++;
        for (const w of waiters.filter((w) => total >= w.until)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    }
  })();
  return {
    count: () => total,
    waitFor: (n) => new Promise((resolve) => waiters.push({ until: total + n, resolve })),
    stop: async () => {
      running = false;
      await loop;
      return { total, failures };
    },
  };
}

/** Polls until `check` is true (or fails after `ms`). */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Waits until the last `lines` lines of the tenant's site log have one matching `re`, and
 * returns them. The platform writes its lines (access, worker exits) a moment after the
 * event, so a test never assumes a line is already there.
 */
export async function logLine(p: Pick<TestPlatform, 'url' | 'adminToken'>, tenantId: string, re: RegExp, lines = 200): Promise<string> {
  let log = '';
  await eventually(
    async () => {
      log = (JSON.parse((await api(p, 'GET', `/api/v1/tenants/${tenantId}/logs?lines=${lines}`)).body).lines as string[]).join('\n');
      return re.test(log);
    },
    10_000,
    `a line matching ${re} in the site log of ${tenantId}`,
  );
  return log;
}

/** Running, not merely a zombie waiting for its parent to collect it. */
export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
