// git push deploys (README, "git push"): the real git client against the real server.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import zlib from 'node:zlib';
import path from 'node:path';
import { httpRequest, startTestPlatform, tempDir, type TestPlatform } from './helpers/harness.js';
import { gitAvailable, gitClient, writeTree } from './helpers/git-client.js';

interface Api {
  (method: string, apiPath: string, body?: unknown, token?: string): Promise<{ status: number; json: any; headers: Record<string, unknown> }>;
}

function apiFor(p: TestPlatform): Api {
  return async (method, apiPath, body, token = p.adminToken) => {
    const answer = await httpRequest(p.url, {
      host: 'localhost',
      method,
      path: apiPath,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: answer.status, json: answer.body ? JSON.parse(answer.body) : undefined, headers: answer.headers };
  };
}

async function createTenant(api: Api, id: string): Promise<{ deploy: string; read: string }> {
  const t = await api('POST', '/api/v1/tenants', { id });
  assert.equal(t.status, 201, JSON.stringify(t.json));
  const deploy = await api('POST', `/api/v1/tenants/${id}/tokens`, { name: 'git', scopes: ['deploy'] });
  const read = await api('POST', `/api/v1/tenants/${id}/tokens`, { name: 'reader', scopes: ['read'] });
  assert.equal(deploy.status, 201);
  return { deploy: deploy.json.token, read: read.json.token };
}

/** The platform host is `localhost`, which resolves to 127.0.0.1 where the test server listens. */
function remote(p: TestPlatform, tenant: string, token?: string): string {
  return `http://${token ? `x:${token}@` : ''}localhost:${p.port}/git/${tenant}.git`;
}

async function page(p: TestPlatform, tenant: string, pagePath = '/'): Promise<string> {
  const r = await httpRequest(p.url, { host: `${tenant}.localhost`, path: pagePath });
  return `${r.status} ${r.body}`;
}

/** A POST on the platform host whose answer is kept as bytes (a pack is binary). */
function httpRequestBuffer(p: TestPlatform, reqPath: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: p.port, method: 'POST', path: reqPath, headers: { Host: 'localhost', ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function skipWithoutGit(t: TestContext): boolean {
  if (gitAvailable()) return false;
  t.skip('the git client is not installed (apt-get install git)');
  return true;
}

test('clone an empty tenant repository, push a site, see it live; push a change; refuse a bad tree', async (t) => {
  if (skipWithoutGit(t)) return;
  const p = await startTestPlatform();
  const scratch = tempDir('tenantry-git-');
  try {
    const api = apiFor(p);
    const tokens = await createTenant(api, 'gtpush');
    const git = gitClient(path.join(scratch, 'home'));

    const repoDir = path.join(p.dataDir, 'git', 'gtpush.git');
    // The bare repository is made on the tenant's first git request (creating a tenant stays cheap).
    assert.ok(!repoDir.startsWith(path.join(p.dataDir, 'tenants')), 'the repository is outside the tenant folder');

    const work = path.join(scratch, 'work');
    const clone = await git(['clone', remote(p, 'gtpush', tokens.deploy), work]);
    assert.equal(clone.code, 0, clone.stderr);
    assert.match(clone.stderr, /empty repository/);
    assert.ok(fs.existsSync(path.join(repoDir, 'HEAD')), 'the first clone made the bare repository');
    assert.equal(fs.statSync(repoDir).mode & 0o077, 0, 'only the platform may read the repository');

    writeTree(work, { 'public/index.html': '<h1>From git, first</h1>\n', 'public/style.css': 'h1 { color: teal }\n' });
    assert.equal((await git(['add', '.'], { cwd: work })).code, 0);
    assert.equal((await git(['commit', '-m', 'First site'], { cwd: work })).code, 0);
    const first = await git(['push', 'origin', 'main'], { cwd: work });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /remote: Deploying [0-9a-f]{7} "First site" to gtpush/);
    assert.match(first.stderr, /remote: Deployed \S+: 2 files, \d+ bytes/);
    assert.match(first.stderr, /remote: Live at http:\/\/gtpush\.localhost[:/]/);
    assert.match(await page(p, 'gtpush'), /^200 <h1>From git, first<\/h1>/);

    const deploys = await api('GET', '/api/v1/tenants/gtpush/deploys');
    assert.equal(deploys.status, 200);
    const newest = (deploys.json.deploys ?? deploys.json)[0];
    assert.equal(newest.live, true);
    assert.match(String(newest.message ?? ''), /First site/);
    const deployId = /remote: Deployed (\S+):/.exec(first.stderr)![1];
    assert.equal(newest.id, deployId, 'the id printed by the push is the live deploy');

    // The second push carries a 2 MiB file: larger than git's post buffer, so the pack is sent chunked.
    writeTree(work, { 'public/index.html': '<h1>From git, second</h1>\n' });
    fs.writeFileSync(path.join(work, 'public', 'big.bin'), crypto.randomBytes(2 * 1024 * 1024));
    await git(['add', '.'], { cwd: work });
    await git(['commit', '-m', 'Second version'], { cwd: work });
    const second = await git(['push'], { cwd: work });
    assert.equal(second.code, 0, second.stderr);
    assert.match(await page(p, 'gtpush'), /^200 <h1>From git, second<\/h1>/);
    const big = await httpRequest(p.url, { host: 'gtpush.localhost', path: '/big.bin' });
    assert.equal(big.status, 200);
    assert.equal(Number(big.headers['content-length']), 2 * 1024 * 1024);
    const goodSha = (await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim();

    // A link out of the site: the archive rules refuse it, the push is refused, the branch stays.
    fs.symlinkSync('/etc/passwd', path.join(work, 'public', 'passwd'));
    writeTree(work, { 'public/index.html': '<h1>Never live</h1>\n' });
    await git(['add', '.'], { cwd: work });
    await git(['commit', '-m', 'Link out'], { cwd: work });
    const bad = await git(['push'], { cwd: work });
    assert.notEqual(bad.code, 0, 'the push is refused');
    assert.match(bad.stderr, /remote: Deploy refused \(archive_invalid\): .*passwd/);
    assert.match(bad.stderr, /\[remote rejected\] main -> main \(pre-receive hook declined\)/);
    assert.match(bad.stderr, /remote: The live release is unchanged/);
    assert.match(await page(p, 'gtpush'), /^200 <h1>From git, second<\/h1>/, 'the live release keeps serving');
    assert.notEqual((await page(p, 'gtpush', '/passwd')).slice(0, 3), '200');
    const refs = await git(['ls-remote', 'origin', 'refs/heads/main'], { cwd: work });
    assert.equal(refs.stdout.split(/\s/)[0], goodSha, 'the branch was not updated');

    // A branch that is not the deploy branch is stored and deploys nothing.
    await git(['reset', '--hard', goodSha], { cwd: work });
    await git(['checkout', '-b', 'feature'], { cwd: work });
    writeTree(work, { 'public/index.html': '<h1>Work in progress</h1>\n' });
    await git(['commit', '-am', 'Feature work'], { cwd: work });
    const before = (await api('GET', '/api/v1/tenants/gtpush/deploys')).json;
    const feature = await git(['push', 'origin', 'feature'], { cwd: work });
    assert.equal(feature.code, 0, feature.stderr);
    assert.match(feature.stderr, /only main is deployed/);
    assert.doesNotMatch(feature.stderr, /Deployed/);
    assert.match(await page(p, 'gtpush'), /^200 <h1>From git, second<\/h1>/);
    assert.deepEqual((await api('GET', '/api/v1/tenants/gtpush/deploys')).json, before, 'no deploy was made');
    const stored = await git(['ls-remote', 'origin'], { cwd: work });
    assert.match(stored.stdout, /refs\/heads\/feature/);

    // A gzip-encoded request body (git sends one for long fetch negotiations) is inflated for git.
    const want = `want ${goodSha}\n`;
    const request = `${(want.length + 4).toString(16).padStart(4, '0')}${want}00000009done\n`;
    const packed = await httpRequestBuffer(p, '/git/gtpush.git/git-upload-pack', {
      Authorization: `Basic ${Buffer.from(`x:${tokens.read}`).toString('base64')}`,
      'Content-Type': 'application/x-git-upload-pack-request',
      'Content-Encoding': 'gzip',
    }, zlib.gzipSync(request));
    assert.equal(packed.status, 200);
    assert.ok(packed.body.includes(Buffer.from('PACK')), 'upload-pack answered with a pack');

    // A read token clones and fetches, but may not push.
    const readClone = await git(['clone', remote(p, 'gtpush', tokens.read), path.join(scratch, 'reader')]);
    assert.equal(readClone.code, 0, readClone.stderr);
    assert.equal(fs.readFileSync(path.join(scratch, 'reader', 'public', 'index.html'), 'utf8'), '<h1>From git, second</h1>\n');
    await git(['commit', '--allow-empty', '-m', 'Reader tries'], { cwd: path.join(scratch, 'reader') });
    const readPush = await git(['push'], { cwd: path.join(scratch, 'reader') });
    assert.notEqual(readPush.code, 0);
    assert.match(readPush.stderr, /403|deploy/);
  } finally {
    await p.cleanup();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});

test('git over HTTP asks for credentials: no token, a wrong token, another tenant\'s token', async (t) => {
  if (skipWithoutGit(t)) return;
  const p = await startTestPlatform();
  const scratch = tempDir('tenantry-git-');
  try {
    const api = apiFor(p);
    await createTenant(api, 'gtauth-a');
    const other = await createTenant(api, 'gtauth-b');
    const git = gitClient(path.join(scratch, 'home'));

    const refsPath = '/git/gtauth-a.git/info/refs?service=git-upload-pack';
    const anonymous = await httpRequest(p.url, { host: 'localhost', path: refsPath });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers['www-authenticate'], 'Basic realm="Tenantry"');

    const noToken = await git(['clone', remote(p, 'gtauth-a'), path.join(scratch, 'a1')]);
    assert.notEqual(noToken.code, 0);
    assert.match(noToken.stderr, /could not read Username|Authentication failed/);

    const wrong = await git(['clone', remote(p, 'gtauth-a', 'tnt_not-a-real-token'), path.join(scratch, 'a2')]);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /Authentication failed/);

    const basic = (token: string) => `Basic ${Buffer.from(`x:${token}`).toString('base64')}`;
    const foreign = await httpRequest(p.url, { host: 'localhost', path: refsPath, headers: { Authorization: basic(other.deploy) } });
    assert.equal(foreign.status, 403);
    assert.match(foreign.body, /another tenant/);
    const foreignPush = await httpRequest(p.url, {
      host: 'localhost',
      path: '/git/gtauth-a.git/info/refs?service=git-receive-pack',
      headers: { Authorization: basic(other.deploy) },
    });
    assert.equal(foreignPush.status, 403);
    const foreignClone = await git(['clone', remote(p, 'gtauth-a', other.deploy), path.join(scratch, 'a3')]);
    assert.notEqual(foreignClone.code, 0);
    assert.match(foreignClone.stderr, /403/);

    const readOnly = await httpRequest(p.url, {
      host: 'localhost',
      path: '/git/gtauth-b.git/info/refs?service=git-receive-pack',
      headers: { Authorization: basic(other.read) },
    });
    assert.equal(readOnly.status, 403, 'a read token may not push');

    const admin = await httpRequest(p.url, { host: 'localhost', path: refsPath, headers: { Authorization: basic(p.adminToken) } });
    assert.equal(admin.status, 200);
    assert.match(String(admin.headers['content-type']), /application\/x-git-upload-pack-advertisement/);

    const missing = await httpRequest(p.url, { host: 'localhost', path: '/git/gtnobody.git/info/refs?service=git-upload-pack', headers: { Authorization: basic(p.adminToken) } });
    assert.equal(missing.status, 404);

    // The repository is the platform's: served on the platform host only, and removed with the tenant.
    const onTenantHost = await httpRequest(p.url, { host: 'gtauth-a.localhost', path: refsPath, headers: { Authorization: basic(p.adminToken) } });
    assert.notEqual(onTenantHost.status, 200);
    assert.equal((await api('DELETE', '/api/v1/tenants/gtauth-a')).status, 204);
    assert.ok(!fs.existsSync(path.join(p.dataDir, 'git', 'gtauth-a.git')), 'the repository goes with the tenant');
  } finally {
    await p.cleanup();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});

test('the deploy branch is settable per tenant', async (t) => {
  if (skipWithoutGit(t)) return;
  const p = await startTestPlatform();
  const scratch = tempDir('tenantry-git-');
  try {
    const api = apiFor(p);
    const tokens = await createTenant(api, 'gtbranch');
    const patched = await api('PATCH', '/api/v1/tenants/gtbranch', { deployBranch: 'production' });
    assert.equal(patched.status, 200);
    assert.equal(patched.json.deployBranch, 'production');
    const git = gitClient(path.join(scratch, 'home'));
    const work = path.join(scratch, 'work');
    await git(['init', '-q', work]);
    await git(['remote', 'add', 'tenantry', remote(p, 'gtbranch', tokens.deploy)], { cwd: work });
    writeTree(work, { 'index.html': '<h1>Production build</h1>\n' });
    await git(['add', '.'], { cwd: work });
    await git(['commit', '-m', 'Build'], { cwd: work });

    const main = await git(['push', 'tenantry', 'main'], { cwd: work });
    assert.equal(main.code, 0, main.stderr);
    assert.match(main.stderr, /only production is deployed/);
    assert.doesNotMatch(await page(p, 'gtbranch'), /Production build/);

    const prod = await git(['push', 'tenantry', 'main:production'], { cwd: work });
    assert.equal(prod.code, 0, prod.stderr);
    assert.match(prod.stderr, /remote: Live at/);
    assert.match(await page(p, 'gtbranch'), /^200 <h1>Production build<\/h1>/);
  } finally {
    await p.cleanup();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});

test('concurrent pushes to one tenant: one goes live, the other is refused, and the branch matches the live site', async (t) => {
  if (skipWithoutGit(t)) return;
  const p = await startTestPlatform();
  const scratch = tempDir('tenantry-git-');
  try {
    const api = apiFor(p);
    const tokens = await createTenant(api, 'gtrace');
    const git = gitClient(path.join(scratch, 'home'));
    const clones = ['one', 'two'].map((name) => path.join(scratch, name));
    for (const [i, dir] of clones.entries()) {
      assert.equal((await git(['clone', '-q', remote(p, 'gtrace', tokens.deploy), dir])).code, 0);
      writeTree(dir, { 'index.html': `<h1>Clone ${i + 1}</h1>\n` });
      await git(['add', '.'], { cwd: dir });
      await git(['commit', '-m', `Clone ${i + 1}`], { cwd: dir });
    }
    const results = await Promise.all(clones.map((dir) => git(['push', 'origin', 'main'], { cwd: dir })));
    const won = results.filter((r) => r.code === 0);
    assert.equal(won.length, 1, results.map((r) => r.stderr).join('\n----\n'));
    const lost = results.find((r) => r.code !== 0)!;
    assert.match(lost.stderr, /main has moved since you fetched it/);
    assert.match(lost.stderr, /\[remote rejected\] main -> main/);

    const winner = clones[results.indexOf(won[0]!)]!;
    const winnerSha = (await git(['rev-parse', 'HEAD'], { cwd: winner })).stdout.trim();
    const remoteSha = (await git(['ls-remote', 'origin', 'refs/heads/main'], { cwd: winner })).stdout.split(/\s/)[0];
    assert.equal(remoteSha, winnerSha);
    const expected = fs.readFileSync(path.join(winner, 'index.html'), 'utf8');
    assert.equal(await page(p, 'gtrace'), `200 ${expected}`, 'the live site is the commit the branch points at');
    const deploys = (await api('GET', '/api/v1/tenants/gtrace/deploys')).json.deploys as Array<{ source: string; status: string }>;
    assert.equal(deploys.filter((d) => d.source === 'git' && d.status === 'ready').length, 1, 'only one push was deployed');
  } finally {
    await p.cleanup();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});
