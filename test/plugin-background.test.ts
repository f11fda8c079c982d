// A plugin's background work (ctx.background): while a plugin says it has work
// pending, the platform does not stop the tenant's worker for idleness, starts
// a new one by itself when it was killed, and lets it stop once the plugin says
// the work is done. Only an enabled plugin of the tenant may say so. (The
// newsletter's use of it, across a kill -9 of the whole platform, is in
// test/newsletter-platform.test.ts.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startTestPlatform, tempDir, type TestPlatform } from './helpers/harness.js';
import { api, createTenant, eventually, isAlive, site } from './helpers/worker-sites.js';
import { BACKGROUND_CHECK_MS } from '../server/plugins/background-work.js';

const LIMIT_MS = 120_000;
const FIXTURE = '_fixture-echo';
const T = 'bgw-a';

let p: TestPlatform;

before(async () => {
  p = await startTestPlatform({ TENANTRY_WORKER_IDLE_SECONDS: '1' }, tempDir(), { offerHiddenPlugins: true });
  await createTenant(p, T);
  const on = await api(p, 'PUT', `/api/v1/tenants/${T}/plugins/${FIXTURE}`, { config: { greeting: 'bg' } });
  assert.equal(on.status, 200, on.body);
});
after(() => p?.cleanup());

async function setPending(pending: boolean): Promise<boolean> {
  const res = await site(p, T, `/_${FIXTURE}/background`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pending }) });
  assert.equal(res.status, 200, res.body);
  return (JSON.parse(res.body) as { recorded: boolean }).recorded;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('pending work keeps the worker past its idle time and brings it back after a kill; done lets it stop', { timeout: LIMIT_MS }, async () => {
  assert.equal(await setPending(true), true);
  assert.equal(p.platform.store.plugins.hasBackgroundWork(T), true);
  const first = p.platform.workers.runningPid(T);
  assert.ok(first, 'a worker serves the plugin');
  await sleep(3_000); // three times the idle time, no request
  assert.equal(p.platform.workers.runningPid(T), first, 'not stopped for idleness while work is pending');

  process.kill(first, 'SIGKILL');
  await eventually(() => !isAlive(first), 5_000, 'the worker to die');
  await eventually(() => p.platform.workers.runningPid(T) !== undefined && p.platform.workers.runningPid(T) !== first, BACKGROUND_CHECK_MS + 15_000, 'a new worker without any request');

  assert.equal(await setPending(false), true);
  assert.equal(p.platform.store.plugins.hasBackgroundWork(T), false);
  await eventually(() => p.platform.workers.runningPid(T) === undefined, 10_000, 'the worker to stop when idle');
});

test('only an enabled plugin of the tenant may say it has work', { timeout: LIMIT_MS }, async () => {
  const ask = (request: unknown) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const conn = net.connect(p.platform.capabilities.socketOf(T));
      let answer = '';
      conn.on('connect', () => conn.write(JSON.stringify(request) + '\n'));
      conn.on('data', (c: Buffer) => (answer += c.toString()));
      conn.on('end', () => resolve(JSON.parse(answer) as Record<string, unknown>));
      conn.on('error', reject);
    });
  const other = await ask({ op: 'work', plugin: 'newsletter', pending: true });
  assert.equal(other.ok, false);
  assert.match(String(other.error), /not enabled/);
  assert.equal((await ask({ op: 'work', plugin: FIXTURE, pending: 'yes' })).ok, false, 'pending is a boolean');
  assert.equal(p.platform.store.plugins.hasBackgroundWork(T), false);
  // A disabled plugin's word is kept no more: the worker is free to stop.
  assert.equal((await ask({ op: 'work', plugin: FIXTURE, pending: true })).ok, true);
  assert.equal((await api(p, 'DELETE', `/api/v1/tenants/${T}/plugins/${FIXTURE}`)).status, 204);
  assert.equal(p.platform.store.plugins.hasBackgroundWork(T), false);
  assert.deepEqual(p.platform.store.plugins.tenantsWithBackgroundWork(), []);
});
