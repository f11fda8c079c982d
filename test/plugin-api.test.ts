// The plugin settings API: the catalogue, enabling with a config the plugin's
// schema refuses (400 naming the field), enable / reconfigure / disable live
// (no restart of the platform), a config that fails at start (422, the old
// settings back and serving), the admin relay, scopes, audit rows; the plugin
// keys (stable across worker restarts, per tenant and purpose, never in
// process.env) and the site URL handed to plugins.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { httpRequest, runCli, startTestPlatform, tempDir, type TestPlatform } from './helpers/harness.js';
import { api, createTenant, eventually, site } from './helpers/worker-sites.js';

const LIMIT_MS = 120_000;
const FIXTURE = '_fixture-echo';
const PLUGIN_PATH = `/_${FIXTURE}/`;
const T = 'plug-a';
const T2 = 'plug-b';

let p: TestPlatform;

const json = (body: string) => JSON.parse(body) as Record<string, any>;

async function token(tenantId: string, scopes: string[]): Promise<string> {
  const res = await api(p, 'POST', `/api/v1/tenants/${tenantId}/tokens`, { name: `t-${scopes.join('-')}`, scopes });
  assert.equal(res.status, 201, res.body);
  return json(res.body).token as string;
}

async function echo(tenantId: string, urlPath = PLUGIN_PATH) {
  const res = await site(p, tenantId, urlPath);
  return { status: res.status, body: res.status === 200 ? json(res.body) : res.body };
}

const enable = (tenantId: string, config: unknown, tok = p.adminToken) => api(p, 'PUT', `/api/v1/tenants/${tenantId}/plugins/${FIXTURE}`, { config }, tok);

before(async () => {
  p = await startTestPlatform({}, tempDir(), { offerHiddenPlugins: true });
  await createTenant(p, T);
  await createTenant(p, T2);
}, { timeout: LIMIT_MS });

after(async () => {
  await p?.cleanup();
});

test('the catalogue lists installed plugins with their config schema, for any token', { timeout: LIMIT_MS }, async () => {
  const readOnly = await token(T, ['read']);
  const res = await api(p, 'GET', '/api/v1/plugins', undefined, readOnly);
  assert.equal(res.status, 200, res.body);
  const fixture = (json(res.body).plugins as any[]).find((x) => x.name === FIXTURE);
  assert.ok(fixture, res.body);
  assert.equal(fixture.version, '0.0.0');
  assert.equal(fixture.configSchema.type, 'object');
  assert.ok(fixture.configSchema.properties.greeting, JSON.stringify(fixture.configSchema));
  assert.equal((await api(p, 'GET', '/api/v1/plugins', undefined, 'nope-not-a-token')).status, 401);
});

test('a config the schema refuses is a 400 naming the field; an unknown plugin is a 404', { timeout: LIMIT_MS }, async () => {
  const bad = await enable(T, { greeting: 42 });
  assert.equal(bad.status, 400, bad.body);
  assert.equal(json(bad.body).error.code, 'plugin_config_invalid');
  assert.match(json(bad.body).error.message, /greeting/);
  assert.equal(json(bad.body).error.field, 'greeting');
  const extra = await enable(T, { greeting: 'hi', colour: 'red' });
  assert.equal(extra.status, 400);
  assert.match(json(extra.body).error.message, /colour/);
  const missing = await api(p, 'PUT', `/api/v1/tenants/${T}/plugins/no-such-plugin`, { config: {} });
  assert.equal(missing.status, 404);
  assert.equal(json(missing.body).error.code, 'plugin_not_found');
  const noConfig = await api(p, 'PUT', `/api/v1/tenants/${T}/plugins/${FIXTURE}`, { greeting: 'hi' });
  assert.equal(noConfig.status, 400);
  assert.equal((await echo(T)).status, 404, 'nothing was enabled');
});

test('a tenant token needs the plugins scope to change plugins or use their admin routes', { timeout: LIMIT_MS }, async () => {
  const readOnly = await token(T, ['read', 'deploy']);
  const put = await enable(T, { greeting: 'hi' }, readOnly);
  assert.equal(put.status, 403, put.body);
  assert.equal((await api(p, 'DELETE', `/api/v1/tenants/${T}/plugins/${FIXTURE}`, undefined, readOnly)).status, 403);
  assert.equal((await api(p, 'GET', `/api/v1/tenants/${T}/plugins/${FIXTURE}/`, undefined, readOnly)).status, 403);
  assert.equal((await api(p, 'GET', `/api/v1/tenants/${T}/plugins`, undefined, readOnly)).status, 200, 'read may list');
  const otherTenant = await token(T2, ['plugins']);
  assert.equal((await enable(T, { greeting: 'hi' }, otherTenant)).status, 403, "another tenant's token");
});

test('enable, reconfigure and disable take effect at once; a config that fails at start is put back', { timeout: LIMIT_MS }, async () => {
  const plugins = await token(T, ['plugins']);
  const on = await enable(T, { greeting: 'hello' }, plugins);
  assert.equal(on.status, 200, on.body);
  assert.equal(json(on.body).enabled, true);
  let answer = await echo(T);
  assert.equal(answer.status, 200);
  assert.deepEqual((answer.body as any).config, { greeting: 'hello' });
  const firstPid = (answer.body as any).pid;

  assert.equal((await enable(T, { greeting: 'bonjour' }, plugins)).status, 200);
  answer = await echo(T);
  assert.deepEqual((answer.body as any).config, { greeting: 'bonjour' });
  assert.notEqual((answer.body as any).pid, firstPid, 'a new worker serves the new config');

  const failing = await enable(T, { greeting: 'boom', failAtStart: true }, plugins);
  assert.equal(failing.status, 422, failing.body);
  assert.equal(json(failing.body).error.code, 'plugin_start_failed');
  assert.match(json(failing.body).error.message, /configured to fail at start/);
  answer = await echo(T);
  assert.deepEqual((answer.body as any).config, { greeting: 'bonjour' }, 'the old settings still serve');
  const listed = json((await api(p, 'GET', `/api/v1/tenants/${T}/plugins`)).body).plugins as any[];
  assert.deepEqual(listed.map((x) => [x.name, x.enabled, x.config]), [[FIXTURE, true, { greeting: 'bonjour' }]]);

  const off = await api(p, 'DELETE', `/api/v1/tenants/${T}/plugins/${FIXTURE}`, undefined, plugins);
  assert.equal(off.status, 204, off.body);
  await eventually(async () => (await echo(T)).status === 404, 10_000, 'the plugin path to be gone');
  const after = json((await api(p, 'GET', `/api/v1/tenants/${T}/plugins`)).body).plugins as any[];
  assert.deepEqual(after.map((x) => [x.name, x.enabled]), [[FIXTURE, false]], 'disabled, config kept');
  assert.equal((await api(p, 'DELETE', `/api/v1/tenants/${T}/plugins/${FIXTURE}`, undefined, plugins)).status, 404);

  // Enabling again: the plugin's data folder was kept (its hit counter goes on).
  assert.equal((await enable(T, { greeting: 'again' }, plugins)).status, 200);
  answer = await echo(T);
  assert.ok((answer.body as any).hits > 1, JSON.stringify(answer.body));
});

test('the admin relay reaches /_admin/<name>/ in the worker, without the caller token; only for enabled plugins', { timeout: LIMIT_MS }, async () => {
  const plugins = await token(T, ['plugins']);
  if ((await echo(T)).status !== 200) assert.equal((await enable(T, { greeting: 'again' }, plugins)).status, 200);
  const get = await api(p, 'GET', `/api/v1/tenants/${T}/plugins/${FIXTURE}/`, undefined, plugins);
  assert.equal(get.status, 200, get.body);
  assert.deepEqual(json(get.body), { admin: true, tenant: T });
  const post = await api(p, 'POST', `/api/v1/tenants/${T}/plugins/${FIXTURE}/echo?x=1`, { a: [1, 2] }, plugins);
  assert.equal(post.status, 201, post.body);
  assert.deepEqual(json(post.body), { admin: true, body: { a: [1, 2] }, query: { x: '1' }, authorization: null });
  assert.equal(post.headers['set-cookie'], undefined, 'a plugin may not set cookies on the platform host');
  assert.match(String(post.headers['content-security-policy']), /sandbox/);
  const notEnabled = await api(p, 'GET', `/api/v1/tenants/${T2}/plugins/${FIXTURE}/`);
  assert.equal(notEnabled.status, 404);
  assert.equal(json(notEnabled.body).error.code, 'plugin_not_enabled');
  // Bodies are capped (8 MB), declared or streamed.
  const big = await httpRequest(p.url, {
    host: 'localhost',
    method: 'POST',
    path: `/api/v1/tenants/${T}/plugins/${FIXTURE}/echo`,
    headers: { Authorization: `Bearer ${plugins}`, 'content-type': 'application/octet-stream' },
    body: Buffer.alloc(9 * 1024 * 1024, 0x61),
  });
  assert.equal(big.status, 413, big.body.slice(0, 300));
  const streamed = await new Promise<number>((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: p.port, method: 'POST', path: `/api/v1/tenants/${T}/plugins/${FIXTURE}/count`, headers: { Host: 'localhost', Authorization: `Bearer ${plugins}`, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', (err) => (/EPIPE|ECONNRESET/.test(String(err)) ? undefined : reject(err)));
    const chunk = Buffer.alloc(256 * 1024, 0x62);
    let sent = 0;
    const pump = () => {
      while (sent < 40) {
        sent++;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  assert.equal(streamed, 413, 'a chunked body over the cap');
  // Public requests never reach the admin routes.
  assert.equal((await site(p, T, `/_admin/${FIXTURE}/`)).status, 404);
});

test('/plugins/<name> is the setting (GET, PUT, DELETE); /plugins/<name>/ is the plugin\'s admin root for every method', { timeout: LIMIT_MS }, async () => {
  const plugins = await token(T, ['plugins', 'read']);
  if ((await echo(T)).status !== 200) assert.equal((await enable(T, { greeting: 'again' }, plugins)).status, 200);
  const setting = `/api/v1/tenants/${T}/plugins/${FIXTURE}`;
  const before = json((await api(p, 'GET', setting, undefined, plugins)).body);
  assert.equal(before.name, FIXTURE);
  assert.equal(before.enabled, true);

  const put = await api(p, 'PUT', `${setting}/`, { config: { greeting: 'not a setting' } }, plugins);
  assert.equal(put.status, 200, put.body);
  assert.deepEqual(json(put.body), { admin: true, method: 'PUT', body: { config: { greeting: 'not a setting' } } }, 'relayed to the plugin');
  const del = await api(p, 'DELETE', `${setting}/`, undefined, plugins);
  assert.equal(del.status, 200, del.body);
  assert.deepEqual(json(del.body), { admin: true, method: 'DELETE' }, 'relayed to the plugin');
  const after = json((await api(p, 'GET', setting, undefined, plugins)).body);
  assert.deepEqual([after.enabled, after.config, after.updatedAt], [true, before.config, before.updatedAt], 'the setting was not touched');
  assert.equal((await echo(T)).status, 200, 'still enabled');

  assert.equal((await api(p, 'POST', setting, {}, plugins)).status, 404, 'no POST on the setting');
  const absent = await api(p, 'GET', `/api/v1/tenants/${T2}/plugins/${FIXTURE}`);
  assert.equal(absent.status, 404);
  assert.equal(json(absent.body).error.code, 'plugin_not_enabled');
});

test('every change is in the audit log', { timeout: LIMIT_MS }, async () => {
  const actions = p.platform.store.audit.forTenant(T, 100).map((e) => `${e.action}:${String(e.detail.plugin)}`);
  for (const a of ['plugin.enable', 'plugin.configure', 'plugin.disable', 'plugin.admin']) assert.ok(actions.includes(`${a}:${FIXTURE}`), `${a} in ${actions.join(' ')}`);
});

test('plugin keys: stable across worker restarts, per purpose and tenant, not in process.env; siteUrl is the tenant URL', { timeout: LIMIT_MS }, async () => {
  if ((await echo(T)).status !== 200) assert.equal((await enable(T, { greeting: 'again' })).status, 200);
  assert.equal((await enable(T2, { greeting: 'other' })).status, 200);
  const keyOf = async (tenantId: string, purpose: string) => json((await site(p, tenantId, `${PLUGIN_PATH}key?purpose=${purpose}`)).body);
  const a1 = await keyOf(T, 'unsubscribe');
  assert.equal(a1.length, 32);
  assert.equal(a1.inEnv, false, `env: ${a1.envKeys}`);
  assert.ok(!(a1.envKeys as string[]).some((k) => k.startsWith('TENANTRY_CAPABILITY') || k === 'TENANTRY_PLUGINS'), String(a1.envKeys));
  const pidBefore = ((await echo(T)).body as any).pid;
  assert.equal((await enable(T, { greeting: 'restart me' })).status, 200);
  assert.notEqual(((await echo(T)).body as any).pid, pidBefore, 'a new worker');
  const a2 = await keyOf(T, 'unsubscribe');
  assert.equal(a2.fingerprint, a1.fingerprint, 'same key after the restart');
  assert.notEqual((await keyOf(T, 'confirm')).fingerprint, a1.fingerprint, 'another purpose, another key');
  assert.notEqual((await keyOf(T2, 'unsubscribe')).fingerprint, a1.fingerprint, 'another tenant, another key');
  const replay = json((await site(p, T, `${PLUGIN_PATH}replay-ticket`)).body);
  // Isolation off: the process's first environment is readable, ticket included, and worthless.
  assert.equal(replay.found, true, JSON.stringify(replay));
  assert.equal(replay.answer?.ok, false, `a replayed start ticket gave: ${JSON.stringify(replay)}`);
  assert.match(replay.answer.error, /not valid/);
  const url = json((await site(p, T, `${PLUGIN_PATH}site-url`)).body).siteUrl as string;
  assert.equal(url, p.platform.tenants.urlOf(T).replace(/\/$/, ''));
});

test('tenantry plugins enable|disable|list', { timeout: LIMIT_MS }, async () => {
  const env = { TENANTRY_URL: `http://localhost:${p.port}`, TENANTRY_TOKEN: p.adminToken };
  const bad = await runCli(['plugins', 'enable', FIXTURE, '--tenant', T2, '--config', '{"greeting": 7}'], env);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /greeting/);
  assert.match(bad.stderr, /plugin_config_invalid/);
  const on = await runCli(['plugins', 'enable', FIXTURE, '--tenant', T2, '--config', '{"greeting": "from the cli"}'], env);
  assert.equal(on.code, 0, on.stderr);
  assert.deepEqual((await echo(T2)).body && ((await echo(T2)).body as any).config, { greeting: 'from the cli' });
  const list = await runCli(['plugins', 'list', '--tenant', T2], env);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`^${FIXTURE}\tenabled\t`, 'm'));
  const off = await runCli(['plugins', 'disable', FIXTURE, '--tenant', T2], env);
  assert.equal(off.code, 0, off.stderr);
  assert.match((await runCli(['plugins', 'list', '--tenant', T2], env)).stdout, new RegExp(`^${FIXTURE}\tdisabled`, 'm'));
  const usage = await runCli(['plugins', 'enable'], env);
  assert.equal(usage.code, 2);
});
