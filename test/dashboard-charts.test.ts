// The tenant page's charts in a real browser: after real traffic (pages,
// api routes answering 200 and 500, a 404), the bars are drawn and the
// charts' text states the same counts as GET /metrics, which they are taken
// from; GET /api/v1/tenants/:id/stats answers them to the tenant's read scope.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, startServerProcess, startTestPlatform, tempDir, type TestPlatform } from './helpers/harness.js';
import { probeCgroups } from '../server/sandbox/cgroups.js';
import { lookupUser, removeSystemUser } from '../server/sandbox/unix-users.js';
import { PLATFORM_USER } from '../server/supervisor/supervisor.js';
import { api, createTenant, deployOk, site } from './helpers/worker-sites.js';
import { browserSkipReason, launchBrowser, type Browser } from './helpers/browser.js';

const skip = await browserSkipReason();
if (skip) console.log(`# SKIPPED dashboard chart tests: ${skip}`);

const TENANT = 'chart-acme';
let p: TestPlatform;
let browser: Browser | undefined;
let page: Page;

interface Stats {
  tenant: string;
  minutes: { start: string; requests: number; errors4xx: number; errors5xx: number; memoryBytes: number | null }[];
  totals: { requests: number; errors4xx: number; errors5xx: number };
  memory: { readable: boolean; reason?: string };
}

before(async () => {
  p = await startTestPlatform();
  await createTenant(p, TENANT);
  await createTenant(p, 'chart-other');
  await deployOk(p, TENANT, {
    'index.html': '<h1>charts</h1>',
    'api/ok.js': `module.exports = (req, res) => res.json({ ok: true });`,
    'api/boom.js': `module.exports = (req, res) => res.status(500).json({ error: 'boom' });`,
  });
  if (!skip) {
    browser = await launchBrowser();
    page = await browser.context.newPage();
  }
});
after(async () => {
  await browser?.close();
  await p?.cleanup();
});

/** The tenant's request counts as /metrics prints them: all, 4xx, 5xx (every kind). */
async function countsFromMetrics(): Promise<{ requests: number; errors4xx: number; errors5xx: number; memory?: number }> {
  const res = await httpRequest(p.url, { host: 'localhost', path: '/metrics', headers: { Authorization: `Bearer ${p.adminToken}` } });
  assert.equal(res.status, 200);
  const out = { requests: 0, errors4xx: 0, errors5xx: 0, memory: undefined as number | undefined };
  for (const m of res.body.matchAll(/^tenantry_http_requests_total\{([^}]*)\} (\S+)$/gm)) {
    if (!m[1]!.includes(`tenant="${TENANT}"`)) continue;
    const n = Number(m[2]);
    out.requests += n;
    if (m[1]!.includes('status_class="4xx"')) out.errors4xx += n;
    if (m[1]!.includes('status_class="5xx"')) out.errors5xx += n;
  }
  const mem = new RegExp(`^tenantry_worker_memory_bytes\\{tenant="${TENANT}"\\} (\\S+)$`, 'm').exec(res.body);
  if (mem) out.memory = Number(mem[1]);
  return out;
}

async function stats(token = p.adminToken, tenant = TENANT): Promise<{ status: number; json: Stats }> {
  const res = await api(p, 'GET', `/api/v1/tenants/${tenant}/stats`, undefined, token);
  return { status: res.status, json: JSON.parse(res.body) as Stats };
}

async function makeTraffic(): Promise<void> {
  for (let i = 0; i < 5; i++) assert.equal((await site(p, TENANT, '/')).status, 200);
  for (let i = 0; i < 3; i++) assert.equal((await site(p, TENANT, '/api/ok')).status, 200);
  for (let i = 0; i < 4; i++) assert.equal((await site(p, TENANT, '/api/boom')).status, 500);
  for (let i = 0; i < 2; i++) assert.equal((await site(p, TENANT, '/no-such-page')).status, 404);
}

test('the stats endpoint gives the last hour by minute, summing to what /metrics counts', async () => {
  await makeTraffic();
  const fromMetrics = await countsFromMetrics();
  assert.ok(fromMetrics.requests >= 14 && fromMetrics.errors5xx === 4 && fromMetrics.errors4xx === 2, JSON.stringify(fromMetrics));
  const { status, json } = await stats();
  assert.equal(status, 200);
  assert.equal(json.tenant, TENANT);
  assert.equal(json.minutes.length, 60, 'one entry per minute of the last hour');
  const starts = json.minutes.map((m) => Date.parse(m.start));
  assert.ok(starts.every((t, i) => i === 0 || t - starts[i - 1]! === 60_000), 'consecutive minutes, oldest first');
  assert.ok(Date.now() - starts[59]! < 61_000, 'the last one is the running minute');
  assert.deepEqual(json.totals, { requests: fromMetrics.requests, errors4xx: fromMetrics.errors4xx, errors5xx: fromMetrics.errors5xx });
  const sum = json.minutes.reduce((a, m) => a + m.requests, 0);
  assert.equal(sum, json.totals.requests);
  if (fromMetrics.memory !== undefined) {
    assert.ok(json.memory.readable);
    assert.ok((json.minutes[59]!.memoryBytes ?? 0) > 0, 'the running worker\'s memory is read');
  } else {
    console.log(`# worker memory not readable here: ${json.memory.reason ?? 'no reading'}`);
  }
  // The other tenant had none of it.
  assert.equal((await stats(p.adminToken, 'chart-other')).json.totals.requests, 0);
});

test('stats need the tenant\'s read scope', async () => {
  const mk = async (tenant: string, scopes: string[]) =>
    (JSON.parse((await api(p, 'POST', `/api/v1/tenants/${tenant}/tokens`, { name: `t-${scopes.join('-')}`, scopes })).body) as { token: string }).token;
  assert.equal((await stats(await mk(TENANT, ['read']))).status, 200);
  assert.equal((await stats(await mk(TENANT, ['plugins']))).status, 403);
  assert.equal((await stats(await mk('chart-other', ['read']))).status, 403);
  const none = await httpRequest(p.url, { host: 'localhost', path: `/api/v1/tenants/${TENANT}/stats` });
  assert.equal(none.status, 401);
  assert.equal((await stats(p.adminToken, 'chart-nobody')).status, 404);
});

test('the tenant page draws the charts, their text stating the counts /metrics gives', { skip }, async () => {
  await makeTraffic();
  const counts = await countsFromMetrics();
  await page.goto(`http://localhost:${p.port}/`);
  await page.getByLabel('Token').fill(p.adminToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  await page.goto(`http://localhost:${p.port}/deploys?t=${TENANT}`);
  // The figure's accessible name is its caption: the numbers a screen reader hears.
  const chart = page.getByRole('figure', { name: /Requests per minute/ });
  await chart.waitFor();
  const name = (await chart.locator('figcaption').textContent()) ?? '';
  assert.match(name, new RegExp(`\\b${counts.requests} requests in the last hour`), name);
  assert.match(name, new RegExp(`\\b${counts.errors5xx} server errors \\(5xx\\)`), name);
  assert.match(name, new RegExp(`\\b${counts.errors4xx} client errors \\(4xx\\)`), name);
  // Bars are drawn, and what they stand for adds up to the same counts.
  const valuesOf = (cls: string) => chart.locator(`rect.bar.${cls}`).evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('data-value'))));
  const [ok, e4, e5] = await Promise.all([valuesOf('ok'), valuesOf('e4xx'), valuesOf('e5xx')]);
  assert.ok(e5.length > 0 && ok.length > 0, 'bars for successes and server errors are drawn');
  for (const rect of await chart.locator('rect.bar').all()) assert.ok(Number(await rect.getAttribute('height')) > 0);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  assert.equal(sum(e5), counts.errors5xx);
  assert.equal(sum(e4), counts.errors4xx);
  assert.equal(sum(ok) + sum(e4) + sum(e5), counts.requests);
  // The numbers by minute, as a table, for anyone who would rather read.
  await chart.getByText('Numbers by minute').click();
  const cells = await chart.locator('tbody tr').evaluateAll((rows) => rows.map((r) => [...r.children].slice(1).map((c) => Number(c.textContent))));
  assert.equal(sum(cells.map((c) => c[2]!)), counts.errors5xx);
  assert.equal(sum(cells.map((c) => c[0]!)), counts.requests);

  const memory = page.getByRole('figure', { name: /Worker memory/ });
  const memText = (await memory.locator('figcaption').textContent()) ?? '';
  if (counts.memory !== undefined) {
    assert.match(memText, /now, at most [\d.]+ (MiB|KiB)/, memText);
    assert.ok((await memory.locator('rect.bar.memory').count()) > 0, 'a memory bar is drawn');
  } else {
    assert.match(memText, /Not available|No worker/, memText);
  }
});

test('worker memory comes from the tenant\'s cgroup, as the /metrics gauge reads it', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root: workers run in cgroups only when root starts the platform');
  const cg = probeCgroups().driver;
  if (!cg) return t.skip(`no usable cgroups: ${probeCgroups().reason}`);
  const dataDir = tempDir();
  const tenant = 'chart-mem';
  const platformUserExisted = lookupUser(PLATFORM_USER) !== undefined;
  const server = await startServerProcess(dataDir, { TENANTRY_ISOLATION: 'auto' });
  try {
    const q = { url: server.url, adminToken: fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim() };
    await createTenant(q, tenant);
    await deployOk(q, tenant, { 'index.html': 'mem', 'api/hold.js': `const kept = Buffer.alloc(32 * 1024 * 1024, 1); module.exports = (req, res) => res.json({ kept: kept.length });` });
    assert.equal((await site(q, tenant, '/api/hold')).status, 200);
    const scrape = await httpRequest(server.url, { host: 'localhost', path: '/metrics', headers: { Authorization: `Bearer ${q.adminToken}` } });
    const gauge = Number(new RegExp(`^tenantry_worker_memory_bytes\\{tenant="${tenant}"\\} (\\S+)$`, 'm').exec(scrape.body)?.[1] ?? NaN);
    if (!(gauge > 0)) return t.skip(`the cgroups are not readable by the edge here: ${/^tenantry_worker_resources_readable\{reason="([^"]*)"/m.exec(scrape.body)?.[1]}`);
    const res = await api(q, 'GET', `/api/v1/tenants/${tenant}/stats`);
    const json = JSON.parse(res.body) as Stats;
    assert.equal(json.memory.readable, true);
    const now = json.minutes[59]!.memoryBytes ?? 0;
    assert.ok(now >= 32 * 1024 * 1024, `the worker holds 32 MiB and more: ${now}`);
    assert.ok(now > gauge / 2 && now < gauge * 2, `the same reading as the gauge (${gauge}), a moment later: ${now}`);
  } finally {
    await server.stop();
    await cg.removeTenant(tenant);
    await cg.removeTenant('demo');
    for (const user of [`tn-${tenant}`, 'tn-demo', ...(platformUserExisted ? [] : [PLATFORM_USER])]) {
      try {
        removeSystemUser(user);
      } catch {
        /* not made */
      }
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
