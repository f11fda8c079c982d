// The pure rules behind dynamic routes: file path -> route, route order,
// export shapes, crash backoff and hold, and the site log's rotation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { buildRouteTable, routeForFile } from '../server/runtime/route-table.js';
import { handlersOf } from '../server/runtime/route-loader.js';
import { CrashHistory, CRASH_LOOP_HOLD_MS } from '../server/pool/crash-history.js';
import { TenantLogs } from '../server/tenants/tenant-logs.js';
import { DataPaths } from '../server/paths.js';
import { buildWorkerEnv, envKeyProblem } from '../server/pool/worker-env.js';
import { tempDir } from './helpers/harness.js';

test('route files map to paths', () => {
  const cases: [string, string | undefined][] = [
    ['api/index.js', '/api'],
    ['api/hello.js', '/api/hello'],
    ['api/hello.cjs', '/api/hello'],
    ['api/users/[id].js', '/api/users/:id'],
    ['api/users/index.mjs', '/api/users'],
    ['api/a/[x]/b/[y].mjs', '/api/a/:x/b/:y'],
    ['api/v1.2/x-y_z.js', '/api/v1.2/x-y_z'],
    ['api/_lib/db.js', undefined],
    ['api/.hidden.js', undefined],
    ['api/node_modules/x/index.js', undefined],
    ['api/readme.md', undefined],
    ['api/data.json', undefined],
    ['public/api/x.js', undefined],
  ];
  for (const [file, want] of cases) assert.equal(routeForFile(file)?.path, want, file);
  assert.throws(() => routeForFile('api/[a]/[a].js'), /appears twice/);
  assert.throws(() => routeForFile('api/a b.js'), /not a valid route segment/);
  assert.throws(() => routeForFile('api/(x).js'), /not a valid route segment/);
});

test('fixed segments are tried before parameters; duplicates are refused', () => {
  const order = buildRouteTable(['api/users/[id].js', 'api/users/me.js', 'api/[x]/me.js', 'api/index.js', 'api/users/[id]/posts.js']).map(
    (r) => r.path,
  );
  assert.deepEqual(order, ['/api/users/me', '/api/users/:id/posts', '/api/users/:id', '/api/:x/me', '/api']);
  assert.throws(() => buildRouteTable(['api/users.js', 'api/users/index.js']), /both answer \/api\/users/);
  assert.throws(() => buildRouteTable(['api/u/[id].js', 'api/u/[name].mjs']), /both answer/);
});

test('module exports: a function, an object of methods, an ESM namespace', () => {
  const fn = () => {};
  assert.equal(handlersOf(fn, 'f').default, fn);
  assert.deepEqual(Object.keys(handlersOf({ GET: fn, POST: fn }, 'f').methods), ['GET', 'POST']);
  assert.equal(handlersOf({ default: fn, PUT: fn }, 'f').methods.PUT, fn);
  assert.equal(handlersOf({ default: { GET: fn } }, 'f').methods.GET, fn, 'module.exports = {GET} imported as ESM');
  assert.throws(() => handlersOf({}, 'api/x.js'), /api\/x\.js: exports no handler/);
  assert.throws(() => handlersOf({ GET: 'nope' }, 'api/x.js'), /GET is not a function/);
});

test('crashes: no delay after the first, then growing; five in a minute hold the tenant until cleared', () => {
  const h = new CrashHistory();
  let now = 1_000_000;
  assert.equal(h.record(now, 'exit 1'), false);
  assert.equal(h.backoffMs(now), 0);
  h.record(now, 'exit 1');
  assert.equal(h.backoffMs(now), 250);
  h.record(now, 'exit 1');
  assert.equal(h.backoffMs(now), 500);
  h.record(now, 'exit 1');
  assert.equal(h.isHeld(now), false);
  assert.equal(h.record(now, 'exit 1'), true);
  assert.equal(h.isHeld(now), true);
  assert.match(h.reason, /crashed 5 times/);
  assert.equal(h.retryAfterSeconds(now), CRASH_LOOP_HOLD_MS / 1000);
  now += CRASH_LOOP_HOLD_MS;
  assert.equal(h.isHeld(now), false, 'the hold ends by itself');
  h.record(now, 'x');
  h.clear();
  assert.equal(h.backoffMs(now), 0);

  const spread = new CrashHistory();
  for (let i = 0; i < 10; i++) assert.equal(spread.record(i * 20_000, 'x'), false, 'crashes spread over minutes are no loop');
});

test('worker environment: allow-list, API over tenant.json, platform keys last', () => {
  const env = buildWorkerEnv({
    tenantId: 't1',
    dataDir: '/d',
    releaseEnv: { A: 'json', B: 'json', TENANTRY_TENANT: 'spoof', NODE_OPTIONS: '--x' },
    tenantEnv: { B: 'api' },
  });
  assert.equal(env.A, 'json');
  assert.equal(env.B, 'api');
  assert.equal(env.TENANTRY_TENANT, 't1');
  assert.equal(env.NODE_OPTIONS, undefined);
  assert.equal(env.NODE_ENV, 'production');
  assert.equal(envKeyProblem('GOOD_1'), undefined);
  assert.ok(envKeyProblem('tenantry_x'));
});

test('site log lines are in the file after the tick, whole and in order with the worker\'s; a removed log folder costs lines, never an exception', async () => {
  const dir = tempDir();
  try {
    const logs = new TenantLogs(new DataPaths(dir));
    const file = logs.file('t2');
    logs.append('t2', 'access GET /api/a 200 1ms 127.0.0.1');
    logs.append('t2', 'two\nlines');
    await new Promise((r) => setImmediate(r));
    const written = fs.readFileSync(file, 'utf8').split('\n');
    assert.match(written[0]!, /^\S+ access GET \/api\/a 200 1ms 127\.0\.0\.1$/);
    assert.match(written[1]!, /^\S+ two lines$/);
    // Another writer (the worker) appends to the same file: lines stay whole and in order.
    fs.appendFileSync(file, 'from the worker\n');
    logs.append('t2', 'after the worker');
    await new Promise((r) => setImmediate(r));
    assert.match(fs.readFileSync(file, 'utf8'), /from the worker\n\S+ after the worker\n$/);
    // The folder goes away (tenant deletion racing a request): the append must not throw.
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    logs.append('t2', 'lost');
    await new Promise((r) => setImmediate(r));
    // As a tenant's deletion does: the next line starts a new file.
    logs.close('t2');
    logs.append('t2', 'back');
    await logs.closeAll();
    assert.match(fs.readFileSync(file, 'utf8'), /^\S+ back\n$/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the site log rotates past its cap, keeping one older file, and tail spans both', async () => {
  const dir = tempDir();
  try {
    const logs = new TenantLogs(new DataPaths(dir), 10_000);
    for (let i = 0; i < 300; i++) logs.append('t1', `line ${i} ${'x'.repeat(40)}`);
    await logs.closeAll();
    logs.rotateIfLarge('t1');
    const file = logs.file('t1');
    assert.equal(fs.statSync(file).size, 0);
    assert.ok(fs.statSync(file + '.1').size > 10_000);
    logs.append('t1', 'after rotation');
    await logs.closeAll();
    const tail = logs.tail('t1', 3);
    assert.equal(tail.length, 3);
    assert.match(tail[0]!, /line 298 /);
    assert.match(tail[2]!, /after rotation$/);
    assert.deepEqual(fs.readdirSync(path.dirname(file)).sort(), ['app.log', 'app.log.1']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
