// Netlify's `_headers` and `_redirects` semantics through the real request
// path (the edge on a real socket, a published release), and the rule
// warnings where the person deploying sees them: the deploy API's answer, the
// `tenantry deploy` output and the `remote:` lines of a git push. Cases come
// from netlify/build (packages/headers-parser and packages/redirect-parser,
// tests/fixtures/...) and Netlify's documentation of Basic-Auth; each names
// its fixture. The parser-level cases are in static-rules.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { runCli, startTestPlatform, tempDir, type TestPlatform } from './helpers/harness.js';
import { publishSite } from './helpers/site-release.js';
import { apiJson, createTenant, tarGz, uploadArchive } from './helpers/deploy-archives.js';
import { gitAvailable, gitClient, writeTree } from './helpers/git-client.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

let p: TestPlatform;

function get(host: string, urlPath: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  const u = new URL(p.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path: urlPath, headers: { Host: host, ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const basic = (userPass: string) => ({ Authorization: `Basic ${Buffer.from(userPass).toString('base64')}` });
const ALICE = basic('alice:wonder-land');

/** Every answer: no `Basic-Auth` header, ever (it holds the passwords). */
function neverSent(a: Answer, what: string): void {
  assert.equal(a.headers['basic-auth'], undefined, `${what}: Basic-Auth is never sent`);
  assert.doesNotMatch(JSON.stringify(a.headers), /wonder-land|explorer|c-pass/, `${what}: no password in any header`);
}

function assertUnauthorized(a: Answer, what: string): void {
  assert.equal(a.status, 401, `${what}: ${a.status} ${a.text.slice(0, 80)}`);
  assert.match(a.headers['www-authenticate'] ?? '', /^Basic realm="[^"]+"/, what);
  assert.equal(a.headers['cache-control'], 'no-store', what);
  assert.equal(a.headers['x-admin'], undefined, `${what}: the page's headers are not sent`);
  neverSent(a, what);
}

before(async () => {
  p = await startTestPlatform();
});

after(async () => {
  await p.platform.workers?.close?.();
  await p.cleanup();
});

test('Basic-Auth (Netlify docs "Basic authentication with custom HTTP headers"): files, clean URLs, folders, 404.html, redirects and rewrites', async () => {
  const T = 'na-auth';
  const host = `${T}.localhost`;
  await p.platform.tenants.create({ id: T }, 'test');
  await publishSite(p.platform, T, {
    'index.html': 'home',
    '404.html': 'custom 404',
    'admin/index.html': 'admin home',
    'admin/report.html': 'report',
    'secret.html': 'secret page',
    _headers: [
      '/*',
      '  X-Site: auth',
      '/admin/*',
      '  Basic-Auth: alice:wonder-land bob:build:er',
      '  X-Admin: yes',
      '/secret.html',
      '  Basic-Auth: carol:c-pass',
    ].join('\n'),
    _redirects: ['/open/*    /admin/:splat       200', '/gone      /admin/report.html  404', '/admin/old /admin/report.html  301'].join('\n'),
  });

  const home = await get(host, '/');
  assert.equal(home.status, 200);
  assert.equal(home.headers['www-authenticate'], undefined);
  assert.equal(home.headers['x-site'], 'auth');
  neverSent(home, '/');

  // 401 without, 401 wrong, 200 right.
  assertUnauthorized(await get(host, '/admin/report.html'), 'no credentials');
  assertUnauthorized(await get(host, '/admin/report.html', basic('alice:wrong')), 'wrong password');
  assertUnauthorized(await get(host, '/admin/report.html', basic('mallory:wonder-land')), 'unknown user');
  assertUnauthorized(await get(host, '/admin/report.html', basic('carol:c-pass')), 'another block\'s account');
  assertUnauthorized(await get(host, '/admin/report.html', { Authorization: 'Basic !!!' }), 'garbage');
  assertUnauthorized(await get(host, '/admin/report.html', { Authorization: 'Bearer x' }), 'another scheme');
  assertUnauthorized(await get(host, '/admin/report.html', {}, 'HEAD'), 'HEAD');
  const ok = await get(host, '/admin/report.html', ALICE);
  assert.equal(ok.status, 200);
  assert.equal(ok.text, 'report');
  assert.equal(ok.headers['x-admin'], 'yes');
  assert.equal(ok.headers['x-site'], 'auth');
  assert.equal(ok.headers['cache-control'], 'private, max-age=0, must-revalidate', 'not for shared caches');
  neverSent(ok, 'authorised');
  assert.equal((await get(host, '/admin/report.html', basic('bob:build:er'))).text, 'report', 'a password with colons');
  const notModified = await get(host, '/admin/report.html', { ...ALICE, 'If-None-Match': ok.headers.etag! });
  assert.equal(notModified.status, 304);
  assert.equal(notModified.headers['cache-control'], 'private, max-age=0, must-revalidate');
  assertUnauthorized(await get(host, '/admin/report.html', { 'If-None-Match': ok.headers.etag! }), 'revalidation without credentials');

  // Every way to reach the same content.
  for (const [url, status, body] of [
    ['/admin/report', 200, 'report'], // clean URL
    ['/admin/', 200, 'admin home'], // folder index
    ['/admin', 301, ''], // its trailing-slash redirect
    ['/ADMIN/report.html', 404, 'custom 404'], // header paths match whatever the case; no such file
    ['/admin/missing', 404, 'custom 404'], // 404.html fallback under a protected path
    ['/open/report.html', 200, 'report'], // a 200 rewrite from an open path to a protected one
    ['/gone', 404, 'report'], // a 404 rewrite to a protected page
    ['/admin/old', 301, ''], // a redirect from a protected path
    ['/%61dmin/report.html', 200, 'report'], // escaped
    ['//admin//report.html', 200, 'report'], // repeated slashes
  ] as const) {
    assertUnauthorized(await get(host, url), url);
    const r = await get(host, url, ALICE);
    assert.equal(r.status, status, url);
    if (body) assert.equal(r.text, body, url);
    neverSent(r, url);
  }
  const missing = await get(host, '/admin/missing', ALICE);
  assert.equal(missing.headers['cache-control'], 'private, max-age=0, must-revalidate', 'the fallback under a protected path too');

  // A file protected by its own path, at its clean URL as well.
  for (const url of ['/secret.html', '/secret']) {
    assertUnauthorized(await get(host, url), url);
    assertUnauthorized(await get(host, url, ALICE), `${url} with another block's account`);
    const r = await get(host, url, basic('carol:c-pass'));
    assert.equal(r.text, 'secret page', url);
  }
  assert.equal((await get(host, '/no/such/page')).status, 404, 'open paths stay open');
  assert.equal((await get(host, '/no/such/page')).text, 'custom 404');

  // The site index decided it once, per route; a site without Basic-Auth has nothing to walk.
  const site = p.platform.sites.get(T)!;
  const route = site.routes.get('/admin/report');
  assert.ok(route?.kind === 'file' && route.auth !== undefined);
  const plain = p.platform.sites.get('na-auth-free') ?? (await publishPlain());
  assert.equal(plain.headerRules.authRules.length, 0);
  assert.ok([...plain.routes.values()].every((r) => r.kind !== 'file' || r.auth === undefined));
});

async function publishPlain() {
  await p.platform.tenants.create({ id: 'na-auth-free' }, 'test');
  await publishSite(p.platform, 'na-auth-free', { 'index.html': 'open', _headers: '/*\n  X-Open: yes\n' });
  return p.platform.sites.get('na-auth-free')!;
}

test('Basic-Auth on the SPA fallback and on dynamic /api routes (direct and rewritten to)', async () => {
  const T = 'na-spa';
  const host = `${T}.localhost`;
  await p.platform.tenants.create({ id: T }, 'test');
  await publishSite(p.platform, T, {
    'index.html': '<div id="app"></div>',
    'tenant.json': JSON.stringify({ spa: true }),
    'api/hello.js': "module.exports = (req, res) => res.json({ hello: 'world' });",
    'api/private.js': "module.exports = (req, res) => res.json({ private: true, sawAuthorization: Boolean(req.headers.authorization) });",
    _headers: ['/app/*', '  Basic-Auth: dora:explorer', '/api/private', '  Basic-Auth: dora:explorer'].join('\n'),
    _redirects: '/data  /api/private  200\n',
  });
  const DORA = basic('dora:explorer');

  assertUnauthorized(await get(host, '/app/settings/profile'), 'SPA fallback under /app');
  const spa = await get(host, '/app/settings/profile', DORA);
  assert.equal(spa.status, 200);
  assert.equal(spa.text, '<div id="app"></div>');
  neverSent(spa, 'SPA');
  assert.equal((await get(host, '/elsewhere')).text, '<div id="app"></div>', 'the fallback elsewhere is open');

  assertUnauthorized(await get(host, '/api/private'), '/api/private');
  assertUnauthorized(await get(host, '/api/private', basic('dora:wrong')), '/api/private wrong');
  const api = await get(host, '/api/private', DORA);
  assert.equal(api.status, 200, api.text);
  assert.deepEqual(JSON.parse(api.text), { private: true, sawAuthorization: true });
  neverSent(api, '/api/private');
  assert.deepEqual(JSON.parse((await get(host, '/api/hello')).text), { hello: 'world' }, 'other routes stay open');

  assertUnauthorized(await get(host, '/data'), 'a 200 rewrite into a protected /api route');
  assert.equal(JSON.parse((await get(host, '/data', DORA)).text).private, true);
});

test('_headers through the request path: indented paths, later blocks win, any case, optional * segments, repeated slashes, no Set-Cookie', async () => {
  const T = 'na-headers';
  const host = `${T}.localhost`;
  await p.platform.tenants.create({ id: T }, 'test');
  await publishSite(p.platform, T, {
    'index.html': 'home',
    'docs/index.html': 'docs',
    'path.html': 'path page',
    'assets/app.css': 'p{}',
    _headers: [
      '  /assets/*', // large_headers_file: indented path lines
      '    X-Indented: yes',
      '/path', // duplicate: the same path twice, the later value replaces the earlier
      '  X-Dup: one',
      '/path',
      '  X-Dup: three',
      '/*/index.html', // for-regexp wildcard_append: a leading * segment may be empty
      '  X-Index: yes',
      '//docs//', // for-regexp double_slash_multiple
      '  X-Docs: yes',
      '/ASSETS/*', // case-insensitive (the iu flag of forRegExp)
      '  X-Case: yes',
      '/*',
      '  Set-Cookie: tossed=1; Domain=localhost',
      '  X-All: yes',
    ].join('\n'),
  });
  const css = await get(host, '/assets/app.css');
  assert.equal(css.headers['x-indented'], 'yes');
  assert.equal(css.headers['x-case'], 'yes');
  assert.equal(css.headers['x-all'], 'yes');
  assert.equal(css.headers['set-cookie'], undefined, 'Set-Cookie is refused');
  assert.equal((await get(host, '/path')).headers['x-dup'], 'three');
  assert.equal((await get(host, '/index.html')).headers['x-index'], 'yes');
  assert.equal((await get(host, '/docs/index.html')).headers['x-index'], 'yes');
  assert.equal((await get(host, '/docs/')).headers['x-docs'], 'yes');
  assert.equal((await get(host, '/')).headers['x-index'], undefined);
  const warnings = p.platform.sites.get(T)!.warnings;
  assert.deepEqual(
    warnings.map((w) => [w.file, w.line]),
    [['_headers', 14]],
  );
  assert.match(warnings[0]!.message, /Set-Cookie cannot be set/);
});

test('_redirects through the request path: a forward rule without a target (to_path_forward)', async () => {
  const T = 'na-forward';
  const host = `${T}.localhost`;
  await p.platform.tenants.create({ id: T }, 'test');
  await publishSite(p.platform, T, {
    'index.html': 'home',
    'admin/index.html': 'admin',
    '404.html': 'nope',
    _redirects: '/admin/* 200\n/*  /index.html  200\n',
  });
  assert.equal(p.platform.sites.get(T)!.warnings.length, 0);
  assert.equal((await get(host, '/admin/')).text, 'admin');
  const missing = await get(host, '/admin/unknown');
  assert.equal(missing.status, 404, '/admin/unknown is rewritten to itself, not caught by the rule below');
  assert.equal(missing.text, 'nope');
  assert.equal((await get(host, '/elsewhere')).text, 'home');
});

const RULES_WITH_PROBLEMS = {
  _redirects: ['/home   /          301', '/  /china 302 Country=ch,tw', '/api/*  https://api.example.com/:splat  200!  Sign=API_SECRET', '/admin/* 200'].join('\n'),
  _headers: ['/*', '  X-Frame-Options: DENY', '  X-Empty:', '  Set-Cookie: a=b', '/private/*', '  Basic-Auth: ann:pw'].join('\n'),
};
const EXPECTED_WARNINGS = [
  { file: '_redirects', line: 2, message: /country conditions \(Country=\) is not supported; rule ignored/ },
  { file: '_redirects', line: 3, message: /signed rules \(Sign=\) and proxying to another site .* are not supported; rule ignored/ },
  { file: '_headers', line: 3, message: /missing value for X-Empty; line ignored/ },
  { file: '_headers', line: 4, message: /Set-Cookie cannot be set from _headers/ },
];

function assertWarnings(warnings: { file: string; line: number; message: string }[]): void {
  assert.equal(warnings.length, EXPECTED_WARNINGS.length, JSON.stringify(warnings));
  EXPECTED_WARNINGS.forEach((e, i) => {
    const w = warnings[i]!;
    assert.deepEqual(Object.keys(w).sort(), ['file', 'line', 'message']);
    assert.equal(w.file, e.file);
    assert.equal(w.line, e.line);
    assert.match(w.message, e.message);
  });
}

test('the deploy API answers 201 with the rule counts and the warnings (file, line, reason); the release is live without those lines', async () => {
  const T = 'na-warn';
  await createTenant(p.url, p.adminToken, T);
  const archive = tarGz([
    { name: 'index.html', body: 'warned but live' },
    { name: '_redirects', body: RULES_WITH_PROBLEMS._redirects },
    { name: '_headers', body: RULES_WITH_PROBLEMS._headers },
  ]);
  const r = await uploadArchive(p.url, p.adminToken, T, archive);
  assert.equal(r.status, 201, r.body);
  const json = JSON.parse(r.body);
  assert.equal(json.live, true);
  assert.deepEqual(json.rules, { redirects: 2, headers: 2 });
  assertWarnings(json.warnings);
  assert.doesNotMatch(r.body, /ann:pw|API_SECRET/, 'the answer never repeats a password or a secret');
  const home = await get(`${T}.localhost`, '/');
  assert.equal(home.text, 'warned but live');
  assert.equal(home.headers['x-frame-options'], 'DENY', 'the good lines of a block apply');
  assert.equal(home.headers['set-cookie'], undefined);
  assert.equal(home.headers['x-empty'], undefined);

  // invalid_dir (both parsers): a `_headers` or `_redirects` that is a folder is reported, not silently skipped.
  const folders = tarGz([
    { name: 'index.html', body: 'folders' },
    { name: '_headers/', type: 'directory' },
    { name: '_headers/readme.txt', body: 'x' },
    { name: '_redirects/', type: 'directory' },
  ]);
  const f = await uploadArchive(p.url, p.adminToken, T, folders);
  assert.equal(f.status, 201, f.body);
  const fj = JSON.parse(f.body);
  assert.deepEqual(fj.rules, { redirects: 0, headers: 0 });
  assert.deepEqual(
    fj.warnings.map((w: { file: string; line: number; message: string }) => `${w.file} ${w.line} ${w.message}`),
    ['_redirects 0 is a folder, not a file; none of its rules apply', '_headers 0 is a folder, not a file; none of its rules apply'],
  );
  assert.equal((await get(`${T}.localhost`, '/')).text, 'folders');

  // A clean deploy: no warnings, the counts.
  const clean = await uploadArchive(p.url, p.adminToken, T, tarGz([{ name: 'index.html', body: 'clean' }, { name: '_redirects', body: '/a /b\n' }]));
  assert.deepEqual(JSON.parse(clean.body).warnings, []);
  assert.deepEqual(JSON.parse(clean.body).rules, { redirects: 1, headers: 0 });
});

test('tenantry deploy prints the rule counts and each warning with its file and line', async () => {
  const T = 'na-cli';
  await createTenant(p.url, p.adminToken, T);
  const token = (await apiJson(p.url, p.adminToken, 'POST', `/api/v1/tenants/${T}/tokens`, { scopes: ['deploy'] })).json.token as string;
  const site = tempDir('tenantry-na-cli-');
  try {
    fs.writeFileSync(path.join(site, 'index.html'), 'from the cli');
    fs.writeFileSync(path.join(site, '_redirects'), RULES_WITH_PROBLEMS._redirects);
    fs.writeFileSync(path.join(site, '_headers'), RULES_WITH_PROBLEMS._headers);
    const run = await runCli(['deploy', site, '--tenant', T], { TENANTRY_URL: `http://localhost:${p.port}`, TENANTRY_TOKEN: token });
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split('\n');
    assert.match(lines[0]!, /^deployed d[0-9a-z]+ \(3 files, .*\): http:\/\/na-cli\.localhost/);
    assert.equal(lines[1], 'rules: 2 in _redirects, 2 path blocks in _headers');
    assert.match(lines[2]!, /^warning: _redirects line 2: country conditions \(Country=\) is not supported; rule ignored$/);
    assert.match(lines[3]!, /^warning: _redirects line 3: signed rules/);
    assert.match(lines[4]!, /^warning: _headers line 3: missing value for X-Empty; line ignored$/);
    assert.match(lines[5]!, /^warning: _headers line 4: Set-Cookie cannot be set/);
    assert.equal(lines.length, 6);
    assert.equal(run.stderr, '');

    const json = await runCli(['deploy', site, '--tenant', T, '--json'], { TENANTRY_URL: `http://localhost:${p.port}`, TENANTRY_TOKEN: token });
    assert.equal(json.code, 0, json.stderr);
    assertWarnings(JSON.parse(json.stdout).warnings);
  } finally {
    fs.rmSync(site, { recursive: true, force: true });
  }
});

test('a git push prints the rule counts and the warnings as remote: lines', async (t) => {
  if (!gitAvailable()) {
    t.skip('the git client is not installed (apt-get install git)');
    return;
  }
  const T = 'na-git';
  await createTenant(p.url, p.adminToken, T);
  const token = (await apiJson(p.url, p.adminToken, 'POST', `/api/v1/tenants/${T}/tokens`, { scopes: ['deploy'] })).json.token as string;
  const scratch = tempDir('tenantry-na-git-');
  try {
    const git = gitClient(path.join(scratch, 'home'));
    const work = path.join(scratch, 'work');
    fs.mkdirSync(work);
    assert.equal((await git(['init'], { cwd: work })).code, 0);
    writeTree(work, { 'public/index.html': 'from git', 'public/_redirects': RULES_WITH_PROBLEMS._redirects, 'public/_headers': RULES_WITH_PROBLEMS._headers });
    await git(['add', '.'], { cwd: work });
    await git(['commit', '-m', 'Rules with problems'], { cwd: work });
    const push = await git(['push', `http://x:${token}@localhost:${p.port}/git/${T}.git`, 'main'], { cwd: work });
    assert.equal(push.code, 0, push.stderr);
    assert.match(push.stderr, /remote: Deployed \S+: 3 files/);
    assert.match(push.stderr, /remote: Rules: 2 in _redirects, 2 path blocks in _headers\./);
    assert.match(push.stderr, /remote: Warning: _redirects line 2: country conditions \(Country=\) is not supported; rule ignored/);
    assert.match(push.stderr, /remote: Warning: _redirects line 3: signed rules/);
    assert.match(push.stderr, /remote: Warning: _headers line 3: missing value for X-Empty/);
    assert.match(push.stderr, /remote: Warning: _headers line 4: Set-Cookie cannot be set/);
    assert.match(push.stderr, /remote: Live at http:\/\/na-git\.localhost/);
    assert.equal((await get(`${T}.localhost`, '/')).text, 'from git');
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});
