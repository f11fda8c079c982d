// GET /metrics: the admin's only; valid Prometheus text (promtool's own check);
// the per-tenant counters move by exactly the traffic and deploys made.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { httpRequest, startTestPlatform, type TestPlatform } from './helpers/harness.js';
import { api, createTenant, deployOk, deploySite, site } from './helpers/worker-sites.js';
import { commandAvailable } from './helpers/git-client.js';

let p: TestPlatform;

before(async () => {
  p = await startTestPlatform();
  await createTenant(p, 'met-one');
  await createTenant(p, 'met-two');
  await deployOk(p, 'met-one', {
    'index.html': '<h1>metrics</h1>',
    'api/hello.js': `module.exports = (req, res) => res.json({ hello: 'world' });`,
  });
});
after(() => p.cleanup());

async function scrape(token = p.adminToken): Promise<string> {
  const res = await httpRequest(p.url, { host: 'localhost', path: '/metrics', headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200, res.body);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return res.body;
}

/** The value of one sample (0 when absent), labels matched exactly in any order. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.keys(got).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return 0;
}

test('/metrics needs the admin token', async () => {
  const none = await httpRequest(p.url, { host: 'localhost', path: '/metrics' });
  assert.equal(none.status, 401);
  assert.equal(JSON.parse(none.body).error.code, 'unauthorized');
  const wrong = await httpRequest(p.url, { host: 'localhost', path: '/metrics', headers: { Authorization: 'Bearer tnt_nope' } });
  assert.equal(wrong.status, 401);
  const made = await api(p, 'POST', '/api/v1/tenants/met-one/tokens', { name: 'scraper', scopes: ['read', 'deploy'] });
  const tenantToken = (JSON.parse(made.body) as { token: string }).token;
  const forbidden = await httpRequest(p.url, { host: 'localhost', path: '/metrics', headers: { Authorization: `Bearer ${tenantToken}` } });
  assert.equal(forbidden.status, 403);
  assert.equal(JSON.parse(forbidden.body).error.code, 'forbidden');
  // Not on a tenant's host either: there it is the tenant's own path.
  const onSite = await site(p, 'met-one', '/metrics');
  assert.equal(onSite.status, 404);
});

test('promtool check metrics accepts the output', async (t) => {
  await site(p, 'met-one', '/');
  const text = await scrape();
  if (!commandAvailable('promtool')) {
    t.skip('promtool is not installed (apt-get install prometheus): the Prometheus format check did NOT run');
    console.error('SKIPPED: promtool missing; install the "prometheus" package to check the metrics format');
    return;
  }
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
  assert.equal(`${check.stdout}${check.stderr}`.trim(), '', 'no lint warnings either');
});

test('requests are counted per tenant by status class and kind, with bytes and latency', async () => {
  const before = await scrape();
  const N = 7;
  const M = 4;
  for (let i = 0; i < N; i++) assert.equal((await site(p, 'met-one', '/')).status, 200);
  for (let i = 0; i < M; i++) assert.equal((await site(p, 'met-one', '/api/hello')).status, 200);
  assert.equal((await site(p, 'met-one', '/no-such-page')).status, 404);
  const after = await scrape();
  const delta = (name: string, labels: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels);
  assert.equal(delta('tenantry_http_requests_total', { tenant: 'met-one', status_class: '2xx', kind: 'static' }), N);
  assert.equal(delta('tenantry_http_requests_total', { tenant: 'met-one', status_class: '2xx', kind: 'dynamic' }), M);
  assert.equal(delta('tenantry_http_requests_total', { tenant: 'met-one', status_class: '4xx', kind: 'static' }), 1);
  assert.equal(delta('tenantry_http_requests_total', { tenant: 'met-two', status_class: '2xx', kind: 'static' }), 0);
  assert.equal(delta('tenantry_http_request_duration_seconds_count', { tenant: 'met-one', kind: 'static' }), N + 1);
  assert.equal(delta('tenantry_http_request_duration_seconds_count', { tenant: 'met-one', kind: 'dynamic' }), M);
  assert.ok(delta('tenantry_http_response_bytes_total', { tenant: 'met-one', kind: 'static' }) > N * '<h1>metrics</h1>'.length, 'bytes out counted');
  assert.ok(sample(after, 'tenantry_worker_starts_total', { tenant: 'met-one' }) >= 1, 'the worker start is counted');
  assert.equal(sample(after, 'tenantry_workers_running', { tenant: 'met-one' }), 1);
  assert.equal(sample(after, 'tenantry_worker_crash_loop', { tenant: 'met-one' }), 0);
  assert.match(after, /^tenantry_open_connections \d+$/m);
  assert.match(after, /^tenantry_edge_event_loop_lag_p99_seconds /m);
  assert.match(after, /^tenantry_worker_resources_readable\{reason="[^"]*"\} [01]$/m);
  assert.doesNotMatch(after, /no-such-page|api\/hello/, 'no paths in labels');
});

test('deploys are counted by outcome, failed ones too', async () => {
  const before = await scrape();
  await deployOk(p, 'met-two', { 'index.html': 'two' });
  const failed = await deploySite(p, 'met-two', { 'api/broken.js': 'this is not javascript (' });
  assert.notEqual(failed.status, 201, 'a release whose routes fail to load is refused');
  const after = await scrape();
  const delta = (labels: Record<string, string>) => sample(after, 'tenantry_deploys_total', labels) - sample(before, 'tenantry_deploys_total', labels);
  assert.equal(delta({ tenant: 'met-two', outcome: 'success' }), 1);
  assert.equal(delta({ tenant: 'met-two', outcome: 'failure' }), 1);
  assert.equal(sample(after, 'tenantry_deploy_duration_seconds_count', { outcome: 'failure' }) - sample(before, 'tenantry_deploy_duration_seconds_count', { outcome: 'failure' }), 1);
});

test('mail counters can be called by the mailer', async () => {
  p.platform.metrics.mail('sent', 'met-one');
  p.platform.metrics.mail('deferred');
  const text = await scrape();
  assert.equal(sample(text, 'tenantry_mail_total', { tenant: 'met-one', outcome: 'sent' }), 1);
  assert.equal(sample(text, 'tenantry_mail_total', { tenant: '', outcome: 'deferred' }), 1);
});

test('a deleted tenant\'s series go', async () => {
  await createTenant(p, 'met-gone');
  assert.equal((await site(p, 'met-gone', '/')).status, 200);
  assert.match(await scrape(), /tenant="met-gone"/);
  assert.equal((await api(p, 'DELETE', '/api/v1/tenants/met-gone')).status, 204);
  assert.doesNotMatch(await scrape(), /tenant="met-gone"/);
});
