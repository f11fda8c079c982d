// The plugin seam: a tenant's enabled plugins run in its own worker, next to
// its api/ routes. With the fixture plugin (plugins/_fixture-echo/) enabled
// through an injected settings source, a tenant without api/ gets a worker on
// demand and /__fixture-echo/ answers from it; a config change replaces the
// worker without a failed request; a bad config or a plugin that throws stops
// the start with a line naming the plugin; the launch contract carries only
// names of installed plugins and capped configs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startTestPlatform, tempDir, type TestPlatform } from './helpers/harness.js';
import { api, createTenant, deployOk, eventually, isAlive, site, steadyLoad } from './helpers/worker-sites.js';
import { silentLogger } from '../server/log.js';
import { DataPaths } from '../server/paths.js';
import { DEFAULT_LIMITS } from '../server/model/limits.js';
import { PLUGINS_ROOT, WORKER_ENTRY } from '../server/launch/entries.js';
import { buildSandboxCommand } from '../server/sandbox/sandbox-command.js';
import { platformCodePaths } from '../server/sandbox/sandbox.js';
import { launchSpecSchema } from '../server/supervisor/ipc-protocol.js';
import { launchSpecProblem } from '../server/supervisor/edge-requests.js';
import { PLUGINS_ENV, runtimeEnv, type JsonValue } from '../server/launch/plugin-launch.js';
import { canonicalJson, pluginSetOf, publicPluginOf, type EnabledPlugin, type PluginSettingsSource } from '../server/pool/plugin-settings.js';

/** A hang fails the test that hung instead of stalling the suite. */
const LIMIT_MS = 120_000;

const FIXTURE = '_fixture-echo';
/** Public routes live at /_<name>/; the fixture's name keeps its folder's "_". */
const PLUGIN_PATH = `/_${FIXTURE}/`;
const STATIC_SITE = { 'index.html': '<h1>static only</h1>' };

/** Plugin settings the test changes at will, as the settings API will later. */
class TestPluginSettings implements PluginSettingsSource {
  private readonly byTenant = new Map<string, EnabledPlugin[]>();
  enabledFor(tenantId: string): readonly EnabledPlugin[] {
    return this.byTenant.get(tenantId) ?? [];
  }
  set(tenantId: string, list: EnabledPlugin[]): void {
    this.byTenant.set(tenantId, list);
  }
}

const settings = new TestPluginSettings();
let p: TestPlatform;

const fixture = (config: JsonValue): EnabledPlugin[] => [{ name: FIXTURE, config }];

/** A call to a plugin's admin routes, as the control API will relay it (straight to the worker). */
async function adminCall(tenantId: string, urlPath: string): Promise<{ status: number; body: unknown }> {
  const live = p.platform.sites.get(tenantId)!;
  const w = await p.platform.workers.acquire(tenantId, live);
  try {
    const res = await w.dispatcher.request({ path: urlPath, method: 'GET', headers: { 'x-forwarded-for': '127.0.0.1' } });
    return { status: res.statusCode, body: await res.body.json() };
  } finally {
    p.platform.workers.release(w);
  }
}

async function siteLog(tenantId: string): Promise<string> {
  return (JSON.parse((await api(p, 'GET', `/api/v1/tenants/${tenantId}/logs?lines=200`)).body) as { lines: string[] }).lines.join('\n');
}

/** Waits for a line (log lines are written in batches, not in the same tick as the event). */
async function siteLogMatching(tenantId: string, pattern: RegExp): Promise<void> {
  let last = '';
  await eventually(async () => pattern.test((last = await siteLog(tenantId))), 10_000, `a site log line matching ${pattern}`).catch(() => {
    throw new Error(`no line matching ${pattern} in the site log:\n${last}`);
  });
}

async function echo(tenantId: string, urlPath = PLUGIN_PATH) {
  const res = await site(p, tenantId, urlPath);
  return { status: res.status, body: res.status === 200 ? (JSON.parse(res.body) as Record<string, unknown>) : res.body };
}

before(async () => {
  p = await startTestPlatform({}, tempDir(), { pluginSettings: settings });
}, { timeout: LIMIT_MS });

after(async () => {
  await p?.cleanup();
}, { timeout: LIMIT_MS });

test('a tenant without api/ but with a plugin gets a worker on demand; the plugin answers from it', { timeout: LIMIT_MS }, async () => {
  const T = 'pl-demand';
  await createTenant(p, T);
  await deployOk(p, T, STATIC_SITE);
  settings.set(T, fixture({ greeting: 'hello' }));
  await p.platform.workers.pluginSettingsChanged(T);
  assert.equal(p.platform.workers.runningPid(T), undefined, 'enabling a plugin starts nothing by itself');

  const first = await echo(T);
  assert.equal(first.status, 200, String(first.body));
  const body = first.body as Record<string, unknown>;
  assert.equal(body.plugin, FIXTURE);
  assert.equal(body.tenant, T);
  assert.deepEqual(body.config, { greeting: 'hello' });
  assert.equal(body.uid, process.getuid?.(), 'isolation off: the worker runs as the platform user');
  assert.equal(p.platform.workers.runningPid(T), body.pid, 'served by the tenant worker');

  assert.equal((await echo(T, `/_${FIXTURE}`)).status, 200, 'the prefix without its slash');
  const posted = await site(p, T, `${PLUGIN_PATH}echo`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"a":1}' });
  assert.deepEqual(JSON.parse(posted.body), { body: { a: 1 } }, 'bodies are parsed for plugins too');
  assert.match((await site(p, T, '/')).body, /static only/, 'the rest of the site is still static');

  // The plugin's own folder, in the tenant's data folder.
  const hits = path.join(new DataPaths(p.dataDir).tenantData(T), '.plugins', FIXTURE, 'hits.txt');
  assert.equal(fs.readFileSync(hits, 'utf8'), '2');

  // Admin routes: not on the tenant's domains, only through the platform.
  const publicAdmin = await site(p, T, `/_admin/${FIXTURE}/`);
  assert.equal(publicAdmin.status, 404, 'the admin prefix is never forwarded from a tenant domain');
  assert.doesNotMatch(publicAdmin.body, /"admin"/);
  assert.deepEqual(await adminCall(T, `/_admin/${FIXTURE}/`), { status: 200, body: { admin: true, tenant: T } });

  await siteLogMatching(T, /starting the worker for release \S+ with plugins _fixture-echo/);
  await siteLogMatching(T, /plugin _fixture-echo: info started/); // the plugin's log lines reach the site log
});

test('plugin paths reach the worker only for tenants that enabled the plugin', { timeout: LIMIT_MS }, async () => {
  const T = 'pl-none';
  await createTenant(p, T);
  await deployOk(p, T, STATIC_SITE);
  const res = await site(p, T, PLUGIN_PATH);
  assert.equal(res.status, 404);
  assert.equal(p.platform.workers.runningPid(T), undefined, 'no worker for a static site without plugins');
  assert.equal(p.platform.workers.pluginFor(T, PLUGIN_PATH), undefined);
});

test("plugins and the tenant's api/ routes share one worker; the routes are not told the plugin list", { timeout: LIMIT_MS }, async () => {
  const T = 'pl-with-api';
  await createTenant(p, T);
  settings.set(T, fixture({ greeting: 'both' }));
  await deployOk(p, T, {
    'index.html': '<h1>api too</h1>',
    'api/env.js': `module.exports = (req, res) => res.json({ pid: process.pid, keys: Object.keys(process.env) });`,
  });
  const route = JSON.parse((await site(p, T, '/api/env')).body) as { pid: number; keys: string[] };
  const plugin = (await echo(T)).body as Record<string, unknown>;
  assert.equal(plugin.pid, route.pid);
  assert.ok(!route.keys.includes(PLUGINS_ENV), `${PLUGINS_ENV} is removed before tenant code runs`);
  assert.ok(route.keys.includes('TENANTRY_DATA'));
  // The api/ proxy forwards /api/... as sent: a dot segment must not lead to the admin routes.
  for (const sneaky of [`/api/../_admin/${FIXTURE}/`, `/api/%2e%2e/_admin/${FIXTURE}/`]) {
    const res = await site(p, T, sneaky);
    assert.doesNotMatch(res.body, /"admin":true/, sneaky);
  }
});

test('a config change replaces the worker: the new config is seen, no request fails, the plugin data stays', { timeout: LIMIT_MS }, async () => {
  const T = 'pl-change';
  await createTenant(p, T);
  await deployOk(p, T, STATIC_SITE);
  settings.set(T, fixture({ greeting: 'one' }));
  await p.platform.workers.pluginSettingsChanged(T);
  const before = (await echo(T)).body as Record<string, unknown>;
  assert.deepEqual(before.config, { greeting: 'one' });
  const oldPid = before.pid as number;

  const load = steadyLoad(p, T, [{ path: PLUGIN_PATH, expect: /"greeting":"(one|two)"/ }]);
  try {
    await load.waitFor(5);
    settings.set(T, fixture({ greeting: 'two', failAtStart: false }));
    await p.platform.workers.pluginSettingsChanged(T);
    await load.waitFor(5);
  } finally {
    const { total, failures } = await load.stop();
    assert.deepEqual(failures, [], `no request failed (of ${total})`);
  }
  const after = (await echo(T)).body as Record<string, unknown>;
  assert.deepEqual(after.config, { greeting: 'two', failAtStart: false });
  assert.notEqual(after.pid, oldPid, 'a new worker serves the new config');
  assert.equal(p.platform.workers.runningPid(T), after.pid);
  assert.ok((after.hits as number) > (before.hits as number) + 5, "the plugin's data folder outlives the worker");
  await eventually(() => !isAlive(oldPid), 15_000, 'the old worker to drain and stop');

  // The same settings again (keys in another order): nothing to replace.
  settings.set(T, fixture({ failAtStart: false, greeting: 'two' }));
  await p.platform.workers.pluginSettingsChanged(T);
  assert.equal(((await echo(T)).body as Record<string, unknown>).pid, after.pid);

  // Switched off, with no api/ left: the worker stops and the path is static again.
  settings.set(T, []);
  await p.platform.workers.pluginSettingsChanged(T);
  await eventually(() => !isAlive(after.pid as number), 15_000, 'the worker to stop once no plugin is left');
  assert.equal((await site(p, T, PLUGIN_PATH)).status, 404);
});

test('a deploy replaces the worker of a plugin-only tenant before the switch, as for api/ routes', { timeout: LIMIT_MS }, async () => {
  const T = 'pl-deploy';
  await createTenant(p, T);
  await deployOk(p, T, STATIC_SITE);
  settings.set(T, fixture({ greeting: 'deploy' }));
  await p.platform.workers.pluginSettingsChanged(T);
  const before = (await echo(T)).body as Record<string, unknown>;
  await deployOk(p, T, { 'index.html': '<h1>second</h1>' });
  const started = p.platform.workers.runningPid(T);
  assert.ok(started !== undefined && started !== before.pid, 'the new release got its worker during the deploy');
  assert.equal(((await echo(T)).body as Record<string, unknown>).pid, started);
});

test('a config the manifest schema refuses stops the start, with a line naming the plugin', { timeout: LIMIT_MS }, async () => {
  const T = 'pl-bad-config';
  await createTenant(p, T);
  await deployOk(p, T, STATIC_SITE);
  settings.set(T, fixture({ greeting: 42, extra: true }));
  await p.platform.workers.pluginSettingsChanged(T);
  const res = await site(p, T, PLUGIN_PATH);
  assert.equal(res.status, 502);
  assert.doesNotMatch(res.body, /greeting/, 'the visitor is not told why');
  await siteLogMatching(T, /plugin "_fixture-echo": its config is not valid: greeting: [^;]+; Unrecognized key/);
  assert.equal(p.platform.workers.runningPid(T), undefined);
});

test('a plugin that throws at start fails the worker start with its name; a running worker keeps the old settings', { timeout: LIMIT_MS }, async () => {
  const T = 'pl-throws';
  await createTenant(p, T);
  await deployOk(p, T, STATIC_SITE);
  settings.set(T, fixture({ greeting: 'fine' }));
  await p.platform.workers.pluginSettingsChanged(T);
  const good = (await echo(T)).body as Record<string, unknown>;

  settings.set(T, fixture({ greeting: 'fine', failAtStart: true }));
  await assert.rejects(p.platform.workers.pluginSettingsChanged(T), /plugin "_fixture-echo" failed to start: Error: the fixture was configured to fail at start/);
  const still = (await echo(T)).body as Record<string, unknown>;
  assert.equal(still.pid, good.pid, 'the previous worker keeps serving');
  assert.deepEqual(still.config, { greeting: 'fine' });
  await siteLogMatching(T, /plugin settings are not in effect; the previous worker keeps serving/);

  // With no worker running, the same settings make the request fail (and say why in the log).
  const T2 = 'pl-throws-cold';
  await createTenant(p, T2);
  await deployOk(p, T2, STATIC_SITE);
  settings.set(T2, fixture({ greeting: 'x', failAtStart: true }));
  await p.platform.workers.pluginSettingsChanged(T2);
  assert.equal((await site(p, T2, PLUGIN_PATH)).status, 502);
  await siteLogMatching(T2, /plugins failed to start: plugin "_fixture-echo" failed to start: Error: the fixture was configured to fail at start/);
});

test('a plugin that is not installed fails the start with its name', { timeout: LIMIT_MS }, async () => {
  const T = 'pl-missing';
  await createTenant(p, T);
  await deployOk(p, T, STATIC_SITE);
  settings.set(T, [{ name: 'no-such-plugin', config: {} }]);
  await p.platform.workers.pluginSettingsChanged(T);
  assert.equal((await site(p, T, '/_no-such-plugin/')).status, 502);
  await siteLogMatching(T, /plugin "no-such-plugin" is not installed \(no dist\/plugins\/no-such-plugin\/index\.js\)/);
});

test('the settings source is held to the launch contract; the same config in another key order is the same worker', () => {
  assert.match(pluginSetOf([{ name: '../evil', config: {} }]).problem ?? '', /not a valid plugin name/);
  assert.match(pluginSetOf([{ name: 'admin', config: {} }]).problem ?? '', /not a valid plugin name/, 'admin would own the admin prefix');
  assert.match(pluginSetOf([{ name: 'x1', config: 'a'.repeat(20_000) }]).problem ?? '', /larger than/);
  const a = pluginSetOf([{ name: 'b-one', config: { x: 1, y: [1, { p: 1, q: 2 }] } }, { name: 'a-two', config: null }]);
  const b = pluginSetOf([{ name: 'a-two', config: null }, { name: 'b-one', config: { y: [1, { q: 2, p: 1 }], x: 1 } }]);
  assert.equal(a.key, b.key);
  assert.deepEqual(a.list.map((x) => x.name), ['a-two', 'b-one']);
  assert.equal(canonicalJson({ b: 1, a: undefined, c: [true] }), '{"b":1,"c":[true]}');
});

test('pluginFor matches only /_<name> and /_<name>/... of enabled plugins', () => {
  const set = pluginSetOf([{ name: 'newsletter', config: {} }]);
  for (const url of ['/_newsletter', '/_newsletter/', '/_newsletter/subscribe?x=1', '/_newsletter?x']) assert.equal(publicPluginOf(url, set), 'newsletter', url);
  for (const url of ['/', '/newsletter/', '/_newsletters/', '/_admin/newsletter/', '/api/_newsletter', '/_%6eewsletter/', '//_newsletter/']) {
    assert.equal(publicPluginOf(url, set), undefined, url);
  }
});

test('launch specs carry plugin names and capped configs; the supervisor accepts only installed plugins', () => {
  const dataDir = tempDir('tenantry-plugin-spec-');
  try {
    const paths = new DataPaths(dataDir);
    const id = 'plspec';
    const release = paths.release(id, 'd1');
    fs.mkdirSync(release, { recursive: true });
    const spec = {
      tenantId: id,
      releaseDir: release,
      dataDir: paths.tenantData(id),
      runDir: paths.run(id),
      socketPath: path.join(paths.run(id), 'http-1.sock'),
      logFile: path.join(paths.logs(id), 'app.log'),
      entry: WORKER_ENTRY,
      args: [],
      env: {},
      limits: { ...DEFAULT_LIMITS },
      network: 'none' as const,
    };
    assert.ok(launchSpecSchema.safeParse(spec).success, 'a spec without plugins (older edges) is still valid');
    const good = { ...spec, plugins: fixture({ greeting: 'x' }) };
    assert.ok(launchSpecSchema.safeParse(good).success);
    const refused: Array<[string, unknown]> = [
      ['a path as name', [{ name: '../../../tmp/evil', config: {} }]],
      ['an absolute path as name', [{ name: '/tmp/evil', config: {} }]],
      ['the reserved name', [{ name: 'admin', config: {} }]],
      ['an unknown field', [{ name: 'x1', config: {}, entry: '/tmp/evil.js' }]],
      ['a config over the cap', [{ name: 'x1', config: 'a'.repeat(17 * 1024) }]],
      ['the same plugin twice', [{ name: 'x1', config: {} }, { name: 'x1', config: {} }]],
      ['too many plugins', Array.from({ length: 17 }, (_, i) => ({ name: `p${i}x`, config: {} }))],
      ['all configs over the total cap', Array.from({ length: 5 }, (_, i) => ({ name: `p${i}x`, config: 'a'.repeat(15 * 1024) }))],
    ];
    for (const [what, plugins] of refused) assert.equal(launchSpecSchema.safeParse({ ...spec, plugins }).success, false, `${what} is refused`);

    assert.equal(launchSpecProblem(good, paths, WORKER_ENTRY), undefined, 'the fixture is installed in dist/plugins/');
    assert.match(launchSpecProblem({ ...spec, plugins: [{ name: 'no-such-plugin', config: {} }] }, paths, WORKER_ENTRY) ?? '', /not installed/);

    // A plugin folder that links out of dist/plugins/ is not platform code.
    const root = path.join(dataDir, 'plugins-root');
    const outside = path.join(dataDir, 'outside');
    fs.mkdirSync(outside, { recursive: true });
    fs.mkdirSync(root);
    fs.writeFileSync(path.join(outside, 'index.js'), '');
    fs.symlinkSync(outside, path.join(root, 'linked'));
    assert.match(launchSpecProblem({ ...spec, plugins: [{ name: 'linked', config: {} }] }, paths, WORKER_ENTRY, root) ?? '', /outside dist\/plugins/);

    // The sandbox: plugin code is inside the read-only platform code, readable under the permission model.
    const dist = platformCodePaths().find((c) => PLUGINS_ROOT.startsWith(c + path.sep));
    assert.ok(dist, `${PLUGINS_ROOT} is inside the platform code bound into every sandbox`);
    const command = buildSandboxCommand(
      { ...good, env: { [PLUGINS_ENV]: 'from the edge' } },
      {
        tools: { sh: '/bin/sh', bwrap: '/usr/bin/bwrap' },
        namespaces: 'bwrap',
        identity: undefined,
        cgroupProcFiles: [],
        seccompFd: undefined,
        platformCode: platformCodePaths(),
        nodeBinary: process.execPath,
        nodePermissions: true,
        tmpSizeMB: 64,
      },
      () => undefined,
    );
    const argv = command.args.join('\n');
    assert.ok(argv.includes(`--ro-bind\n${dist}\n${dist}`), 'bound read-only');
    assert.ok(argv.includes(`--allow-fs-read=${dist}`), 'readable under the permission model');
    assert.deepEqual(JSON.parse(command.env[PLUGINS_ENV]!), good.plugins, 'the list comes from the spec, not its env');
    assert.ok(!command.args.some((a) => a.includes('greeting')), 'configs stay off the command line');

    // The list reaches the runtime only from the spec's own field, never from its env.
    const env = runtimeEnv({ A: '1', [PLUGINS_ENV]: '[{"name":"evil"}]' }, undefined);
    assert.deepEqual(env, { A: '1' });
    assert.deepEqual(JSON.parse(runtimeEnv({}, good.plugins)[PLUGINS_ENV]!), good.plugins);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
