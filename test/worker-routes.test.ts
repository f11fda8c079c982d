// Dynamic routes end to end: a site with api/ deployed through the upload API
// answers on its domain from its own worker process: file-based routes and
// params, per-method exports and 405, parsed bodies, environment variables,
// a data folder that outlives releases, forwarding headers, and the site log.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { runCli, startTestPlatform, type TestPlatform } from './helpers/harness.js';
import { api, createTenant, deployOk, deploySite, eventually, site, type SiteFiles } from './helpers/worker-sites.js';

/** A hang fails the test that hung instead of stalling the suite. */
const LIMIT_MS = 120_000;

const T = 'wk-routes';
let p: TestPlatform;

const counterRoute = (tag: string) => `
const fs = require('node:fs');
const path = require('node:path');
module.exports = (req, res) => {
  const file = path.join(process.env.TENANTRY_DATA, 'count.txt');
  const n = (fs.existsSync(file) ? Number(fs.readFileSync(file, 'utf8')) : 0) + 1;
  fs.writeFileSync(file, String(n));
  res.json({ n, release: '${tag}' });
};`;

const SITE: SiteFiles = {
  'public/index.html': '<h1>routes</h1>',
  'tenant.json': JSON.stringify({ env: { FROM_JSON: 'json-value', GREETING: 'from-tenant-json' } }),
  'api/index.js': `module.exports = (req, res) => res.json({ route: 'index' });`,
  'api/_lib/shout.js': `module.exports = (s) => String(s).toUpperCase() + '!';`,
  'api/hello.js': `const shout = require('./_lib/shout.js');
module.exports = (req, res) => res.json({ hello: shout(req.query.name || 'world') });`,
  'api/users/[id].js': `exports.GET = (req, res) => res.json({ id: req.params.id });
exports.DELETE = (req, res) => res.status(204).end();`,
  'api/users/me.js': `module.exports = (req, res) => res.json({ me: true });`,
  'api/users/index.cjs': `module.exports = { GET: (req, res) => res.json({ users: [] }) };`,
  'api/orgs/[org]/members/[member].mjs': `export function GET(req, res) { res.json({ ...req.params }); }`,
  'api/esm.mjs': `export default async function (req, res) { res.json({ esm: true, method: req.method }); }`,
  'api/echo.js': `exports.POST = (req, res) => res.json({ body: req.body ?? null, type: req.headers['content-type'] ?? null });`,
  'api/stream.js': `const crypto = require('node:crypto');
exports.POST = (req, res) => {
  const h = crypto.createHash('sha256'); let n = 0;
  req.on('data', (c) => { h.update(c); n += c.length; });
  req.on('end', () => {
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('X-Received', n + ' ' + h.digest('hex'));
    for (let i = 0; i < 64; i++) res.write(Buffer.alloc(16384, i));
    res.end();
  });
};`,
  'api/env.js': `module.exports = (req, res) => res.json({ env: { ...process.env } });`,
  'api/forwarded.js': `module.exports = (req, res) => res.json({
  xff: req.headers['x-forwarded-for'], host: req.headers['x-forwarded-host'], proto: req.headers['x-forwarded-proto'],
  ip: req.ip, protocol: req.protocol, tenantryHeader: req.headers['x-tenantry-tenant'] ?? null });`,
  'api/counter.js': counterRoute('one'),
  'api/tagged.js': `module.exports = (req, res) => res.json({ tagged: true });`,
  'api/hurry.js': `exports.POST = (req, res) => res.status(202).json({ read: false });`,
};

before(async () => {
  process.env.WK_PLATFORM_ONLY = 'must-not-leak';
  p = await startTestPlatform();
  await createTenant(p, T);
  await deployOk(p, T, SITE);
}, { timeout: LIMIT_MS });

after(async () => {
  delete process.env.WK_PLATFORM_ONLY;
  await p?.cleanup();
}, { timeout: LIMIT_MS });

const json = async (path: string, opts?: Parameters<typeof site>[3]) => {
  const res = await site(p, T, path, opts);
  return { status: res.status, headers: res.headers, body: res.body ? JSON.parse(res.body) : undefined };
};

test('files under api/ answer at their paths; [name] segments become req.params; _ folders are not routes', { timeout: LIMIT_MS }, async () => {
  assert.deepEqual((await json('/api')).body, { route: 'index' });
  assert.deepEqual((await json('/api/hello?name=ada')).body, { hello: 'ADA!' });
  assert.deepEqual((await json('/api/users/42')).body, { id: '42' });
  assert.deepEqual((await json('/api/users/me')).body, { me: true }, 'a fixed name wins over a parameter');
  assert.deepEqual((await json('/api/users')).body, { users: [] }, 'index.cjs answers for its folder');
  assert.deepEqual((await json('/api/orgs/acme/members/bob')).body, { org: 'acme', member: 'bob' });
  assert.deepEqual((await json('/api/esm', { method: 'PUT' })).body, { esm: true, method: 'PUT' });
  const helper = await json('/api/_lib/shout');
  assert.equal(helper.status, 404);
  assert.equal(helper.body.error.code, 'not_found');
  const page = await site(p, T, '/');
  assert.match(page.body, /<h1>routes<\/h1>/, 'static files are still served by the edge');
});

test('a method the module does not export: 405 with Allow; HEAD follows GET', { timeout: LIMIT_MS }, async () => {
  const post = await json('/api/users/42', { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } });
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD, DELETE');
  assert.equal(post.body.error.code, 'method_not_allowed');
  const del = await site(p, T, '/api/users/42', { method: 'DELETE' });
  assert.equal(del.status, 204);
  const head = await site(p, T, '/api/users/42', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
});

test('JSON and form bodies arrive parsed; bad JSON is 400; over 1 MB is 413; other bodies stream both ways', { timeout: LIMIT_MS }, async () => {
  const viaJson = await json('/api/echo', { method: 'POST', body: JSON.stringify({ a: [1, 2], b: 'x' }), headers: { 'Content-Type': 'application/json' } });
  assert.deepEqual(viaJson.body.body, { a: [1, 2], b: 'x' });
  const viaForm = await json('/api/echo', {
    method: 'POST',
    body: 'name=Ada+Lovelace&tags[]=a&tags[]=b',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  assert.deepEqual(viaForm.body.body, { name: 'Ada Lovelace', tags: ['a', 'b'] });
  const bad = await json('/api/echo', { method: 'POST', body: '{"a":', headers: { 'Content-Type': 'application/json' } });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'invalid_json');
  const big = await json('/api/echo', {
    method: 'POST',
    body: JSON.stringify({ s: 'x'.repeat(1_100_000) }),
    headers: { 'Content-Type': 'application/json' },
  });
  assert.equal(big.status, 413);
  assert.equal(big.body.error.code, 'payload_too_large');

  const payload = crypto.randomBytes(3 * 1024 * 1024).toString('base64');
  const streamed = await site(p, T, '/api/stream', { method: 'POST', body: payload, headers: { 'Content-Type': 'text/plain' } });
  assert.equal(streamed.status, 200);
  const sha = crypto.createHash('sha256').update(payload).digest('hex');
  assert.equal(streamed.headers['x-received'], `${Buffer.byteLength(payload)} ${sha}`, 'the worker got the whole body');
  assert.equal(Buffer.byteLength(streamed.body, 'latin1'), 64 * 16384, 'the whole answer came back');
});

test('environment: the tenant variables, tenant.json env, TENANTRY_TENANT/DATA, NODE_ENV, and nothing of the platform', { timeout: LIMIT_MS }, async () => {
  const put = await api(p, 'PUT', `/api/v1/tenants/${T}/env`, { GREETING: 'from-api', API_KEY: 's3cret' });
  assert.equal(put.status, 200, put.body);
  assert.deepEqual(JSON.parse(put.body), { keys: ['API_KEY', 'GREETING'] });
  const keys = await api(p, 'GET', `/api/v1/tenants/${T}/env`);
  assert.deepEqual(JSON.parse(keys.body), { keys: ['API_KEY', 'GREETING'] }, 'GET lists keys, never values');
  assert.doesNotMatch(keys.body, /s3cret/);

  const { env } = (await json('/api/env')).body as { env: Record<string, string> };
  assert.equal(env.GREETING, 'from-api', 'a variable set through the API wins over tenant.json');
  assert.equal(env.API_KEY, 's3cret');
  assert.equal(env.FROM_JSON, 'json-value');
  assert.equal(env.TENANTRY_TENANT, T);
  assert.equal(env.TENANTRY_DATA, p.platform.paths.tenantData(T));
  assert.equal(env.NODE_ENV, 'production');
  assert.equal(env.WK_PLATFORM_ONLY, undefined, 'the platform environment does not leak');
  assert.equal(env.TENANTRY_DATA_DIR, undefined);
  assert.equal(env.TENANTRY_ISOLATION, undefined);

  for (const [body, why] of [
    [{ '1BAD': 'x' }, /letters, digits and underscores/],
    [{ TENANTRY_TENANT: 'other' }, /set by the platform/],
    [{ NODE_OPTIONS: '--inspect' }, /NODE_OPTIONS/],
    [{ OK: 1 }, /must be a string/],
    [['A'], /JSON object/],
  ] as const) {
    const res = await api(p, 'PUT', `/api/v1/tenants/${T}/env`, body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.match(JSON.parse(res.body).error.message, why);
  }
  const tok = await api(p, 'POST', `/api/v1/tenants/${T}/tokens`, { name: 'reader', scopes: ['read'] });
  const reader = JSON.parse(tok.body).token as string;
  const denied = await api(p, 'PUT', `/api/v1/tenants/${T}/env`, { A: 'b' }, reader);
  assert.equal(denied.status, 403, 'setting variables needs the deploy scope');
});

test('TENANTRY_DATA persists across deploys', { timeout: LIMIT_MS }, async () => {
  const first = (await json('/api/counter')).body;
  const second = (await json('/api/counter')).body;
  assert.equal(second.n, first.n + 1);
  assert.equal(second.release, 'one');
  await deployOk(p, T, { ...SITE, 'api/counter.js': counterRoute('two') });
  const third = (await json('/api/counter')).body;
  assert.deepEqual(third, { n: first.n + 2, release: 'two' });
});

/** One request on `agent` (one kept-alive connection): status, headers, body, and which local port it left from. */
function onConnection(agent: http.Agent, method: string, path: string, headers: Record<string, string> = {}, body?: string[]) {
  const { port } = new URL(p.url);
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; localPort: number }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers: { Host: `${T}.localhost`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString(), localPort: req.socket!.localPort! }));
    });
    req.on('error', reject);
    // No Content-Length: the body goes chunked, in pieces.
    for (const piece of body ?? []) req.write(piece);
    req.end();
  });
}

test('one client connection carries every kind of answer: a chunked body, HEAD, 204, 304, an answer given before the body was read', { timeout: LIMIT_MS }, async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const answers = [];
    const chunked = await onConnection(agent, 'POST', '/api/stream', { 'Content-Type': 'text/plain' }, ['abc', 'def'.repeat(10_000), 'ghi']);
    answers.push(chunked);
    const sent = 'abc' + 'def'.repeat(10_000) + 'ghi';
    assert.equal(chunked.headers['x-received'], `${sent.length} ${crypto.createHash('sha256').update(sent).digest('hex')}`);
    assert.equal(chunked.body.length, 64 * 16384);
    const head = await onConnection(agent, 'HEAD', '/api/hello');
    answers.push(head);
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    const first = await onConnection(agent, 'GET', '/api/tagged');
    answers.push(first);
    assert.ok(first.headers.etag, 'Express tags JSON answers');
    const notModified = await onConnection(agent, 'GET', '/api/tagged', { 'If-None-Match': first.headers.etag! });
    answers.push(notModified);
    assert.equal(notModified.status, 304);
    assert.equal(notModified.body, '');
    const deleted = await onConnection(agent, 'DELETE', '/api/users/7');
    answers.push(deleted);
    assert.equal(deleted.status, 204);
    // The worker answers before reading a 4 MB body (more than the sockets buffer): that hop is not
    // reused, the rest of the body is read and dropped, and the client's connection goes on.
    const big = 'x'.repeat(4 * 1024 * 1024);
    const hurried = await onConnection(agent, 'POST', '/api/hurry', { 'Content-Type': 'text/plain', 'Content-Length': String(big.length) }, [big]);
    answers.push(hurried);
    assert.equal(hurried.status, 202);
    const after = await onConnection(agent, 'GET', '/api/hello?name=again');
    answers.push(after);
    assert.deepEqual(JSON.parse(after.body), { hello: 'AGAIN!' });
    assert.equal(new Set(answers.map((a) => a.localPort)).size, 1, 'every answer came on the one client connection');
  } finally {
    agent.destroy();
  }
});

test('the edge sets X-Forwarded-* itself and never forwards internal paths', { timeout: LIMIT_MS }, async () => {
  const fwd = await json('/api/forwarded', {
    headers: { 'X-Forwarded-For': '6.6.6.6', 'X-Forwarded-Host': 'evil.example', 'X-Tenantry-Tenant': 'other' },
  });
  assert.equal(fwd.body.xff, '127.0.0.1');
  assert.equal(fwd.body.ip, '127.0.0.1');
  assert.equal(fwd.body.host, `${T}.localhost`);
  assert.equal(fwd.body.proto, 'http');
  assert.equal(fwd.body.tenantryHeader, null);
  for (const path of ['/__tenantry/health', '/api/../__tenantry/health', '/api/%2e%2e/__tenantry/health']) {
    const res = await site(p, T, path);
    assert.notEqual(res.status, 200, path);
    assert.doesNotMatch(res.body, /"ok":true/, path);
  }
});

test('the site log: worker output and access lines, newest last, through the API and `tenantry logs`', { timeout: LIMIT_MS }, async () => {
  await deployOk(p, T, { ...SITE, 'api/say.js': `module.exports = (req, res) => { console.log('said ' + req.query.w); res.json({}); };` });
  await site(p, T, '/api/say?w=first');
  await site(p, T, '/api/say?w=second');
  await site(p, T, '/api/hello');
  const HELLO = /access GET \/api\/hello 200 /;
  const SAY = /access GET \/api\/say 200 /;
  const readLog = async (n: number): Promise<string[]> => {
    const res = await api(p, 'GET', `/api/v1/tenants/${T}/logs?lines=${n}`);
    assert.equal(res.status, 200, res.body);
    return JSON.parse(res.body).lines as string[];
  };
  const lastIndex = (of: string[], re: RegExp) => of.reduce((found, l, i) => (re.test(l) ? i : found), -1);
  let lines: string[] = [];
  const idx = (re: RegExp) => lines.findIndex((l) => re.test(l));
  // Only orders that follow from cause and effect: each line below was written before the next
  // request was sent. The edge writes an access line a moment after its answer has gone out: wait for it.
  await eventually(
    async () => {
      lines = await readLog(200);
      return idx(/said second/) >= 0 && lastIndex(lines, HELLO) > idx(/said second/) && idx(SAY) >= 0;
    },
    10_000,
    'the access lines of /api/say and of the last /api/hello, after what /api/say printed',
  );
  assert.ok(idx(/said first/) >= 0, 'worker stdout is in the log');
  assert.ok(idx(/said first/) < idx(/said second/), 'oldest first, newest last');
  assert.ok(!lines.some((l) => l.includes('w=first')), 'query strings (which may hold tokens) are not logged');

  /** `window` is the newest part of the log: consecutive lines, ending no earlier than the /api/hello line. */
  const assertNewest = async (window: string[], n: number) => {
    assert.equal(window.length, n);
    const now = await readLog(200);
    const at = now.findIndex((l, i) => window.every((w, j) => now[i + j] === w));
    assert.ok(at >= 0, `consecutive lines of the log: ${JSON.stringify(window)}`);
    assert.ok(at + n - 1 >= lastIndex(now, HELLO), `the newest lines: ${JSON.stringify(window)}`);
  };
  await assertNewest(await readLog(3), 3);
  assert.equal((await api(p, 'GET', `/api/v1/tenants/${T}/logs?lines=0`)).status, 400);

  const tok = await api(p, 'POST', `/api/v1/tenants/${T}/tokens`, { name: 'reader', scopes: ['read'] });
  const reader = JSON.parse(tok.body).token as string;
  const cli = await runCli(['logs', '--tenant', T, '--lines', '2'], { TENANTRY_URL: `http://localhost:${p.port}`, TENANTRY_TOKEN: reader });
  assert.equal(cli.code, 0, cli.stderr);
  await assertNewest(cli.stdout.trim().split('\n'), 2);
  const missing = await runCli(['logs'], { TENANTRY_URL: `http://localhost:${p.port}`, TENANTRY_TOKEN: reader });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /--tenant/);
});

test('a release without api/ serves /api paths as static files and runs no worker', { timeout: LIMIT_MS }, async () => {
  const res = await deploySite(p, T, { 'index.html': '<h1>static only</h1>', 'api.html': 'api page' });
  assert.equal(res.status, 201, res.body);
  const page = await site(p, T, '/api');
  assert.equal(page.status, 200);
  assert.equal(page.body, 'api page');
  assert.equal(p.platform.workers.runningPid(T), undefined, 'the old worker was stopped');
});
