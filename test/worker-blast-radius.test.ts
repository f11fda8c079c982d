// Blast radius: whatever tenant A's code does (exit, spin, eat memory, throw,
// ship code that does not load), tenant B, under a steady stream of requests
// to its static page and its api route the whole time, sees every single
// request answered, and A itself recovers.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, type TestPlatform } from './helpers/harness.js';
import { api, createTenant, deployOk, deploySite, eventually, isAlive, logLine, site, steadyLoad } from './helpers/worker-sites.js';

/** A hang fails the test that hung instead of stalling the suite. */
const LIMIT_MS = 120_000;

const A = 'wk-blast-a';
const B = 'wk-blast-b';
let p: TestPlatform;

const A_SITE = {
  'index.html': '<h1>tenant a</h1>',
  'api/ok.js': `module.exports = (req, res) => res.json({ ok: true, pid: process.pid });`,
  'api/exit.js': `module.exports = () => process.exit(1);`,
  'api/spin.js': `module.exports = () => { while (true) {} };`,
  'api/hog.js': `module.exports = () => { const keep = []; for (;;) keep.push(new Array(1e6).fill(Math.random())); };`,
  'api/throw.js': `module.exports = () => { throw new Error('boom from tenant a'); };`,
  'api/reject.js': `module.exports = async () => { throw new Error('async boom'); };`,
};

before(async () => {
  p = await startTestPlatform({ TENANTRY_REQUEST_TIMEOUT_SECONDS: '2' });
  await createTenant(p, A, { limits: { memoryMB: 64 } });
  await createTenant(p, B);
  await deployOk(p, A, A_SITE);
  await deployOk(p, B, {
    'index.html': '<h1>tenant b is calm</h1>',
    'api/ping.js': `module.exports = (req, res) => res.json({ pong: process.env.TENANTRY_TENANT });`,
  });
}, { timeout: LIMIT_MS });

after(async () => {
  await p?.cleanup();
}, { timeout: LIMIT_MS });

// Each test starts with A's crash history cleared (a settings change does that).
beforeEach(async () => {
  const res = await api(p, 'PATCH', `/api/v1/tenants/${A}`, {});
  assert.equal(res.status, 200, res.body);
}, { timeout: LIMIT_MS });

/** Runs `misbehave` while B is under steady load; B must not see one failure. */
async function whileBIsBusy(misbehave: () => Promise<void>): Promise<void> {
  const load = steadyLoad(p, B, [
    { path: '/', expect: /tenant b is calm/ },
    { path: '/api/ping', expect: new RegExp(`"pong":"${B}"`) },
  ]);
  try {
    await load.waitFor(6);
    await misbehave();
    await load.waitFor(6);
  } finally {
    const { total, failures } = await load.stop();
    assert.deepEqual(failures, [], `tenant B saw failures (of ${total} requests)`);
    assert.ok(total >= 12, `tenant B was under load (${total} requests)`);
  }
}

async function aRecovers(): Promise<number> {
  let pid = 0;
  await eventually(async () => {
    const res = await site(p, A, '/api/ok');
    if (res.status === 200) pid = JSON.parse(res.body).pid;
    return res.status === 200;
  }, 20_000, 'tenant A to answer again');
  return pid;
}

test("A's route calls process.exit(1): A's request gets 502, A restarts on the next request, B is untouched", { timeout: LIMIT_MS }, async () => {
  const before = JSON.parse((await site(p, A, '/api/ok')).body).pid as number;
  await whileBIsBusy(async () => {
    const res = await site(p, A, '/api/exit');
    assert.equal(res.status, 502);
    assert.equal(JSON.parse(res.body).error.code, 'worker_failed');
    const next = await site(p, A, '/api/ok');
    assert.equal(next.status, 200, 'the next request starts a new worker');
    assert.notEqual(JSON.parse(next.body).pid, before);
  });
  assert.equal(isAlive(before), false);
});

test("A's route spins forever: A gets 504 after its timeout, its worker is replaced, B is untouched", { timeout: LIMIT_MS }, async () => {
  const before = JSON.parse((await site(p, A, '/api/ok')).body).pid as number;
  await whileBIsBusy(async () => {
    const started = Date.now();
    const res = await site(p, A, '/api/spin');
    assert.equal(res.status, 504);
    assert.equal(JSON.parse(res.body).error.code, 'worker_timeout');
    assert.ok(Date.now() - started >= 1900, 'answered after the 2 s timeout');
    const pid = await aRecovers();
    assert.notEqual(pid, before, 'the stuck worker was replaced');
  });
  await eventually(() => !isAlive(before), 10_000, 'the stuck worker to be gone');
});

test('A allocates memory until it dies: A gets 502 and recovers, B is untouched', { timeout: LIMIT_MS }, async () => {
  await whileBIsBusy(async () => {
    const res = await site(p, A, '/api/hog');
    assert.equal(res.status, 502);
    await aRecovers();
  });
  // A's log says why its worker died: V8's heap cap in a plain child process; the cgroup's OOM kill (SIGKILL) in a sandbox.
  await logLine(p, A, /heap out of memory|was killed by SIGKILL unexpectedly \(SIGKILL: most often the tenant's memory limit, \d+ MB, was reached/i, 400);
});

test('A throws on every request: A gets 500 each time, its worker stays up, B is untouched', { timeout: LIMIT_MS }, async () => {
  const before = JSON.parse((await site(p, A, '/api/ok')).body).pid as number;
  await whileBIsBusy(async () => {
    for (let i = 0; i < 10; i++) {
      const res = await site(p, A, i % 2 ? '/api/throw' : '/api/reject');
      assert.equal(res.status, 500);
      assert.equal(JSON.parse(res.body).error.code, 'internal_error');
      assert.doesNotMatch(res.body, /boom|at /, 'no stack or message leaks to the visitor');
    }
  });
  assert.equal(JSON.parse((await site(p, A, '/api/ok')).body).pid, before, 'the same worker still serves');
  await logLine(p, A, /boom from tenant a/); // the error and its stack go to A's log
});

test("A deploys api/ code that fails to load: the deploy is refused with the error, A's old release keeps answering, B is untouched", { timeout: LIMIT_MS }, async () => {
  const liveBefore = p.platform.releases.liveDeployId(A);
  await whileBIsBusy(async () => {
    const res = await deploySite(p, A, {
      'index.html': '<h1>broken release</h1>',
      'api/ok.js': `module.exports = (req, res) => res.json({ ok: 'new' });`,
      'api/broken.js': `if (!process.env.DATABASE_URL) throw new Error('DATABASE_URL is not set'); module.exports = () => {};`,
    });
    assert.equal(res.status, 422, res.body);
    const err = JSON.parse(res.body).error;
    assert.equal(err.code, 'deploy_failed');
    assert.match(err.message, /api\/broken\.js/);
    assert.match(err.message, /DATABASE_URL is not set/);

    const syntax = await deploySite(p, A, { 'api/ok.js': `module.exports = (req, res) => {` });
    assert.equal(syntax.status, 422);
    assert.match(JSON.parse(syntax.body).error.message, /api\/ok\.js failed to load: line 1: SyntaxError/);

    // ESM syntax in a CommonJS .js file: the answer names the line and says what to change.
    const esm = await deploySite(p, A, { 'api/ok.js': `const answer = { ok: 'esm' };\nexport default (req, res) => res.json(answer);` });
    assert.equal(esm.status, 422);
    const esmMessage = JSON.parse(esm.body).error.message as string;
    assert.match(esmMessage, /api\/ok\.js failed to load: line 2: SyntaxError: Unexpected token 'export'/);
    assert.match(esmMessage, /module\.exports = \.\.\. and require\(\), or name the file \.mjs/);
    // In a file the route requires: that file and its line are named.
    const nested = await deploySite(p, A, { 'api/ok.js': `module.exports = require('../lib/answer.js');`, 'lib/answer.js': `\n\nexport default 1;` });
    assert.equal(nested.status, 422);
    assert.match(JSON.parse(nested.body).error.message, /api\/ok\.js failed to load: lib\/answer\.js line 3: SyntaxError: Unexpected token 'export'/);

    const ok = await site(p, A, '/api/ok');
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).ok, true, 'the old release still answers');
    assert.match((await site(p, A, '/')).body, /tenant a/);
  });
  assert.equal(p.platform.releases.liveDeployId(A), liveBefore);
});

test('a crash loop puts A alone on hold (503 with Retry-After) until an API call clears it', { timeout: LIMIT_MS }, async () => {
  await whileBIsBusy(async () => {
    const statuses: number[] = [];
    let held: Awaited<ReturnType<typeof site>> | undefined;
    for (let i = 0; i < 12 && !held; i++) {
      const res = await site(p, A, '/api/exit');
      statuses.push(res.status);
      if (res.status === 503) held = res;
    }
    assert.ok(held, `A was put on hold (statuses: ${statuses.join(', ')})`);
    const crashes = statuses.filter((s) => s === 502).length;
    // Exactly five when exits are reported at once; a sandbox may report one or two late.
    assert.ok(crashes >= 5 && crashes <= 7, `five crashes, then the hold (statuses: ${statuses.join(', ')})`);
    assert.ok(Number(held.headers['retry-after']) > 0, 'with Retry-After');
    assert.equal(JSON.parse(held.body).error.code, 'worker_unavailable');
    assert.equal((await site(p, A, '/api/ok')).status, 503, 'every route of A is on hold');
    assert.match((await site(p, A, '/')).body, /tenant a/, "A's static files still serve");
  });
  await logLine(p, A, /crashed 5 times/, 100);
  const cleared = await api(p, 'PUT', `/api/v1/tenants/${A}/env`, { RETRY: '1' });
  assert.equal(cleared.status, 200);
  assert.equal((await site(p, A, '/api/ok')).status, 200, 'an env change lifts the hold');
});
