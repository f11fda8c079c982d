// A tenant's worker over time: started by the first dynamic request, stopped
// when idle, replaced without a single failed request when a release with
// api/ is deployed (in-flight requests finish on the old one), stopped when
// the tenant is deleted and when the platform stops.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServerProcess, startTestPlatform, tempDir, type TestPlatform } from './helpers/harness.js';
import { api, createTenant, deployOk, eventually, isAlive, logLine, site, steadyLoad } from './helpers/worker-sites.js';

/** A hang fails the test that hung instead of stalling the suite. */
const LIMIT_MS = 120_000;

let p: TestPlatform;

const versioned = (v: number) => ({
  'index.html': `<h1>version ${v}</h1>`,
  'api/version.js': `module.exports = (req, res) => res.json({ v: ${v}, pid: process.pid });`,
  'api/slow.js': `module.exports = (req, res) => setTimeout(() => res.json({ v: ${v}, slow: true }), 1500);`,
});

before(async () => {
  p = await startTestPlatform({ TENANTRY_WORKER_IDLE_SECONDS: '2' });
}, { timeout: LIMIT_MS });

after(async () => {
  await p?.cleanup();
}, { timeout: LIMIT_MS });

test('an idle worker stops; the next request starts one on demand and is served', { timeout: LIMIT_MS }, async () => {
  const T = 'wk-life-idle';
  await createTenant(p, T);
  await deployOk(p, T, versioned(1));
  const first = await site(p, T, '/api/version');
  assert.equal(first.status, 200);
  const pid = JSON.parse(first.body).pid as number;
  await eventually(() => p.platform.workers.runningPid(T) === undefined && !isAlive(pid), 15_000, 'the idle worker to stop');
  const again = await site(p, T, '/api/version');
  assert.equal(again.status, 200, 'the request waited for a new worker');
  assert.notEqual(JSON.parse(again.body).pid, pid);
  assert.equal(p.platform.workers.runningPid(T), JSON.parse(again.body).pid);
  await logLine(p, T, /stopping the worker .*idle/, 50);
});

test('no request fails while releases with api/ are deployed; in-flight requests finish on the old release', { timeout: LIMIT_MS }, async () => {
  const T = 'wk-life-deploy';
  await createTenant(p, T);
  await deployOk(p, T, versioned(1));
  const load = steadyLoad(p, T, [
    { path: '/api/version', expect: /"v":\d/ },
    { path: '/', expect: /version \d/ },
  ]);
  try {
    await load.waitFor(6);
    const slow = site(p, T, '/api/slow');
    await new Promise((r) => setTimeout(r, 200));
    await deployOk(p, T, versioned(2));
    const oldPid = JSON.parse((await site(p, T, '/api/version')).body).pid as number;
    await load.waitFor(6);
    const inFlight = await slow;
    assert.equal(inFlight.status, 200);
    assert.deepEqual(JSON.parse(inFlight.body), { v: 1, slow: true }, 'the old worker finished its request');
    for (let v = 3; v <= 5; v++) {
      await deployOk(p, T, versioned(v));
      await load.waitFor(4);
    }
    assert.deepEqual(JSON.parse((await site(p, T, '/api/version')).body).v, 5);
    await eventually(() => !isAlive(oldPid), 10_000, 'replaced workers to stop');
  } finally {
    const { total, failures } = await load.stop();
    assert.deepEqual(failures, [], `failures among ${total} requests`);
  }
  // Rollback goes through the same switch.
  const deploys = JSON.parse((await api(p, 'GET', `/api/v1/tenants/${T}/deploys`)).body);
  const list = (deploys.deploys ?? deploys) as { id: string }[];
  const v4 = list[1]!.id;
  const back = await api(p, 'POST', `/api/v1/tenants/${T}/deploys/${v4}/activate`);
  assert.equal(back.status, 200, back.body);
  assert.equal(JSON.parse((await site(p, T, '/api/version')).body).v, 4);
});

test('deleting a tenant stops its worker; stopping the platform stops every worker', { timeout: LIMIT_MS }, async () => {
  const gone = 'wk-life-gone';
  const stays = 'wk-life-stays';
  await createTenant(p, gone);
  await createTenant(p, stays);
  await deployOk(p, gone, versioned(1));
  await deployOk(p, stays, versioned(1));
  const gonePid = JSON.parse((await site(p, gone, '/api/version')).body).pid as number;
  const staysPid = JSON.parse((await site(p, stays, '/api/version')).body).pid as number;
  const del = await api(p, 'DELETE', `/api/v1/tenants/${gone}`);
  assert.equal(del.status, 204);
  assert.equal(isAlive(gonePid), false, 'the worker is gone when the delete answers');
  assert.equal(isAlive(staysPid), true);

  const second = await startTestPlatform();
  await createTenant(second, 'wk-life-close');
  await deployOk(second, 'wk-life-close', versioned(1));
  const pid = JSON.parse((await site(second, 'wk-life-close', '/api/version')).body).pid as number;
  await second.cleanup();
  assert.equal(isAlive(pid), false, 'close() stopped the worker');
});

test('the starter site of a new tenant answers /api/hello from a worker started on demand', { timeout: LIMIT_MS }, async () => {
  const T = 'wk-life-starter';
  await createTenant(p, T);
  assert.equal(p.platform.workers.runningPid(T), undefined, 'creating a tenant starts no process');
  const res = await site(p, T, '/api/hello?name=you');
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.body), { hello: 'you', tenant: T });
});

test('a platform killed with SIGKILL leaves no worker behind', { timeout: LIMIT_MS }, async () => {
  const dataDir = tempDir();
  const server = await startServerProcess(dataDir);
  try {
    const target = { url: server.url, adminToken: fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim() };
    await createTenant(target, 'wk-life-orphan');
    await deployOk(target, 'wk-life-orphan', versioned(1));
    const pid = JSON.parse((await site(target, 'wk-life-orphan', '/api/version')).body).pid as number;
    assert.equal(isAlive(pid), true);
    await server.stop('SIGKILL');
    await eventually(() => !isAlive(pid), 10_000, 'the orphaned worker to exit');
  } finally {
    await server.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
