// Deploys through the HTTP API: upload, live by Host, rollback and forward,
// retention, history, audit, scopes, content types, and concurrent uploads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { create as createTar } from 'tar';
import { httpRequest, startTestPlatform, tempDir, type TestPlatform } from './helpers/harness.js';
import { apiJson, createTenant, siteArchive, tarGz, uploadArchive, uploadMultipart } from './helpers/deploy-archives.js';
import { TenantLocks } from '../server/deploy/tenant-lock.js';

async function page(p: TestPlatform, tenant: string, urlPath = '/'): Promise<string> {
  const r = await httpRequest(p.url, { host: `${tenant}.localhost`, path: urlPath });
  return `${r.status} ${r.body}`;
}

test('deploy, see it by Host, deploy again, roll back, roll forward', async () => {
  const p = await startTestPlatform();
  try {
    await createTenant(p.url, p.adminToken, 'dprel');
    const tok = await apiJson(p.url, p.adminToken, 'POST', '/api/v1/tenants/dprel/tokens', { name: 'ci', scopes: ['deploy', 'read'] });
    const token = tok.json.token as string;

    const first = await uploadArchive(p.url, token, 'dprel', siteArchive('version one'), { query: 'message=first%20cut' });
    assert.equal(first.status, 201, first.body);
    const one = JSON.parse(first.body);
    assert.equal(one.live, true);
    assert.match(one.id, /^d[0-9a-z]+$/);
    assert.equal(one.files, 1);
    assert.ok(one.bytes > 0);
    assert.match(one.url, /^http:\/\/dprel\.localhost/);
    assert.match(await page(p, 'dprel'), /^200 .*version one/s);

    const second = await uploadMultipart(p.url, token, 'dprel', siteArchive('version two'), { message: 'second cut' });
    assert.equal(second.status, 201, second.body);
    const two = JSON.parse(second.body);
    assert.match(await page(p, 'dprel'), /^200 .*version two/s);

    const list = await apiJson(p.url, token, 'GET', '/api/v1/tenants/dprel/deploys');
    assert.equal(list.status, 200);
    const ids = list.json.deploys.map((d: { id: string }) => d.id);
    assert.deepEqual(ids.slice(0, 2), [two.id, one.id], 'newest first');
    assert.equal(list.json.deploys.length, 3, 'the starter release is the third');
    assert.deepEqual(
      list.json.deploys.filter((d: { live: boolean }) => d.live).map((d: { id: string }) => d.id),
      [two.id],
    );
    assert.equal(list.json.deploys[0].message, 'second cut');
    assert.equal(list.json.deploys[1].message, 'first cut');
    assert.equal(list.json.deploys[0].source, 'upload');
    assert.equal(list.json.deploys[0].actor, `token:${tok.json.id}`);

    const back = await apiJson(p.url, token, 'POST', `/api/v1/tenants/dprel/deploys/${one.id}/activate`);
    assert.equal(back.status, 200, JSON.stringify(back.json));
    assert.equal(back.json.id, one.id);
    assert.equal(back.json.live, true);
    assert.match(await page(p, 'dprel'), /^200 .*version one/s);
    const live = fs.readlinkSync(path.join(p.dataDir, 'tenants/dprel/live'));
    assert.equal(path.basename(live), one.id, 'the live link names the release');

    const fwd = await apiJson(p.url, token, 'POST', `/api/v1/tenants/dprel/deploys/${two.id}/activate`);
    assert.equal(fwd.status, 200);
    assert.match(await page(p, 'dprel'), /^200 .*version two/s);
    const again = await apiJson(p.url, token, 'POST', `/api/v1/tenants/dprel/deploys/${two.id}/activate`);
    assert.equal(again.status, 200, 'activating the live release is a no-op');

    const missing = await apiJson(p.url, token, 'POST', '/api/v1/tenants/dprel/deploys/dnosuch/activate');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'deploy_not_found');

    const audit = p.platform.store.audit.forTenant('dprel');
    const actions = audit.map((a) => a.action);
    assert.equal(actions.filter((a) => a === 'deploy.create').length, 2);
    // Two switches recorded with what changed; the no-op and the refused activation are in the trail too.
    const activations = audit.filter((a) => a.action === 'deploy.activate');
    assert.equal(activations.filter((a) => a.detail.previous !== undefined).length, 2);
    assert.equal(activations.filter((a) => a.outcome === 'failure').length, 1, 'the activation of a missing deploy is recorded as refused');
    const created = audit.find((a) => a.action === 'deploy.create' && a.detail.id === one.id)!;
    assert.equal(created.actor, `token:${tok.json.id}`);
    assert.equal(created.detail.message, 'first cut');
    assert.ok(created.at);
  } finally {
    await p.cleanup();
  }
});

test('a single top folder is stripped (git archive --prefix); tar archives with ./ names work', async () => {
  const p = await startTestPlatform();
  const src = tempDir('tenantry-dp-src-');
  try {
    await createTenant(p.url, p.adminToken, 'dpstrip');
    fs.mkdirSync(path.join(src, 'mysite-1a2b/public/css'), { recursive: true });
    fs.writeFileSync(path.join(src, 'mysite-1a2b/public/index.html'), '<h1>stripped</h1>');
    fs.writeFileSync(path.join(src, 'mysite-1a2b/public/css/site.css'), 'body{}');
    fs.symlinkSync('index.html', path.join(src, 'mysite-1a2b/public/home.html'));
    const chunks: Buffer[] = [];
    for await (const c of createTar({ gzip: true, cwd: src, portable: true }, ['mysite-1a2b'])) chunks.push(c as Buffer);
    const r = await uploadArchive(p.url, p.adminToken, 'dpstrip', Buffer.concat(chunks));
    assert.equal(r.status, 201, r.body);
    assert.match(await page(p, 'dpstrip'), /^200 <h1>stripped<\/h1>/);
    assert.match(await page(p, 'dpstrip', '/css/site.css'), /^200 body\{\}/);
    assert.match(await page(p, 'dpstrip', '/home.html'), /^200 <h1>stripped<\/h1>/, 'a link inside the release works');

    // A plain tar (not gzipped), names starting with ./, a hard link to an earlier file.
    const plain = (await import('./helpers/deploy-archives.js')).rawTar([
      { name: './', type: 'directory' },
      { name: './index.html', body: '<h1>plain tar</h1>' },
      { name: './copy.html', type: 'hardlink', linkname: './index.html' },
    ]);
    const r2 = await uploadArchive(p.url, p.adminToken, 'dpstrip', plain, { contentType: 'application/x-tar' });
    assert.equal(r2.status, 201, r2.body);
    assert.match(await page(p, 'dpstrip'), /^200 <h1>plain tar<\/h1>/);
    assert.match(await page(p, 'dpstrip', '/copy.html'), /^200 <h1>plain tar<\/h1>/);
    const rel = path.join(p.dataDir, 'tenants/dpstrip/live');
    // (Each file's one other name is its object in the tenant's content store, a folder of the platform's.)
    assert.notEqual(fs.statSync(path.join(rel, 'copy.html')).ino, fs.statSync(path.join(rel, 'index.html')).ino, 'a hard link becomes a copy, sharing no inode');

    // Only api/ at the top is a layout folder, not a wrapper: it stays.
    const apiOnly = tarGz([{ name: 'api/hello.js', body: 'module.exports = (req, res) => res.json({ ok: true });' }]);
    const r3 = await uploadArchive(p.url, p.adminToken, 'dpstrip', apiOnly);
    assert.equal(r3.status, 201, r3.body);
    assert.ok(fs.existsSync(path.join(rel, 'api/hello.js')));
  } finally {
    await p.cleanup();
    fs.rmSync(src, { recursive: true, force: true });
  }
});

test('retention keeps the newest N releases and never the live one', async () => {
  const p = await startTestPlatform();
  try {
    await createTenant(p.url, p.adminToken, 'dpkeep');
    const patched = await apiJson(p.url, p.adminToken, 'PATCH', '/api/v1/tenants/dpkeep', { keepReleases: 3 });
    assert.equal(patched.status, 200);
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const r = await uploadArchive(p.url, p.adminToken, 'dpkeep', siteArchive(`release ${i}`));
      assert.equal(r.status, 201, r.body);
      ids.push(JSON.parse(r.body).id);
    }
    const onDisk = () => fs.readdirSync(path.join(p.dataDir, 'tenants/dpkeep/releases')).sort();
    assert.deepEqual(onDisk(), ids.slice(2).sort(), 'three newest stay on disk');
    const list = await apiJson(p.url, p.adminToken, 'GET', '/api/v1/tenants/dpkeep/deploys');
    const status = new Map(list.json.deploys.map((d: { id: string; status: string }) => [d.id, d.status]));
    assert.equal(status.get(ids[0]), 'pruned');
    assert.equal(status.get(ids[1]), 'pruned');
    assert.equal(status.get(ids[4]), 'ready');
    const gone = await apiJson(p.url, p.adminToken, 'POST', `/api/v1/tenants/dpkeep/deploys/${ids[0]}/activate`);
    assert.equal(gone.status, 409, 'a pruned release cannot be made live');

    // Roll back to the oldest kept one, then deploy twice more: the live one survives.
    const back = await apiJson(p.url, p.adminToken, 'POST', `/api/v1/tenants/dpkeep/deploys/${ids[2]}/activate`);
    assert.equal(back.status, 200);
    const r6 = await uploadArchive(p.url, p.adminToken, 'dpkeep', siteArchive('release 6'));
    const id6 = JSON.parse(r6.body).id;
    const r7 = await uploadArchive(p.url, p.adminToken, 'dpkeep', siteArchive('release 7'));
    const id7 = JSON.parse(r7.body).id;
    assert.deepEqual(onDisk(), [ids[4]!, id6, id7].sort(), 'still the three newest');
    assert.match(await page(p, 'dpkeep'), /release 7/);
  } finally {
    await p.cleanup();
  }
});

test('scopes, content types and bad requests', async () => {
  const p = await startTestPlatform();
  try {
    await createTenant(p.url, p.adminToken, 'dpscope');
    await createTenant(p.url, p.adminToken, 'dpother');
    const readOnly = (await apiJson(p.url, p.adminToken, 'POST', '/api/v1/tenants/dpscope/tokens', { scopes: ['read'] })).json.token as string;
    const otherDeploy = (await apiJson(p.url, p.adminToken, 'POST', '/api/v1/tenants/dpother/tokens', { scopes: ['deploy', 'read'] })).json.token as string;

    const noScope = await uploadArchive(p.url, readOnly, 'dpscope', siteArchive('x'));
    assert.equal(noScope.status, 403);
    const otherTenant = await uploadArchive(p.url, otherDeploy, 'dpscope', siteArchive('x'));
    assert.equal(otherTenant.status, 403);
    const list = await apiJson(p.url, readOnly, 'GET', '/api/v1/tenants/dpscope/deploys');
    assert.equal(list.status, 200, 'read may list');
    const noToken = await httpRequest(p.url, { host: 'localhost', method: 'POST', path: '/api/v1/tenants/dpscope/deploys', body: siteArchive('x') });
    assert.equal(noToken.status, 401);

    const text = await uploadArchive(p.url, p.adminToken, 'dpscope', Buffer.from('hello'), { contentType: 'text/plain' });
    assert.equal(text.status, 415);
    assert.equal(JSON.parse(text.body).error.code, 'unsupported_media_type');
    // JSON is a manifest deploy (test/deploy-manifest.test.ts): one without files is a bad request.
    const json = await uploadArchive(p.url, p.adminToken, 'dpscope', Buffer.from('{}'), { contentType: 'application/json' });
    assert.equal(json.status, 400);
    assert.match(JSON.parse(json.body).error.message, /"files" must be an object/);
    const octet = await uploadArchive(p.url, p.adminToken, 'dpscope', siteArchive('octet'), { contentType: 'application/octet-stream' });
    assert.equal(octet.status, 201, 'octet-stream bodies are sniffed');
    const wrongField = await uploadMultipart(p.url, p.adminToken, 'dpscope', siteArchive('x'), {}, 'file');
    assert.equal(wrongField.status, 400);
    assert.match(JSON.parse(wrongField.body).error.message, /archive/);
    // Bodies past the upload cap (the unpacked cap plus tar overhead) are cut off with 413.
    await createTenant(p.url, p.adminToken, 'dptiny', { limits: { archiveMB: 1, files: 10 } });
    const huge = Buffer.alloc(18 * 1024 * 1024, 1);
    const tooBig = await uploadArchive(p.url, p.adminToken, 'dptiny', huge, { contentType: 'application/x-tar' });
    assert.equal(tooBig.status, 413, tooBig.body);
    const tooBigForm = await uploadMultipart(p.url, p.adminToken, 'dptiny', huge);
    assert.equal(tooBigForm.status, 413, tooBigForm.body);
    assert.deepEqual(fs.readdirSync(path.join(p.dataDir, 'tenants/dptiny/staging/uploads')), [], 'cut-off uploads are removed');
    const noTenant = await uploadArchive(p.url, p.adminToken, 'dpnosuch', siteArchive('x'));
    assert.equal(noTenant.status, 404);
    assert.match(await page(p, 'dpscope'), /octet/);
    const staging = path.join(p.dataDir, 'tenants/dpscope/staging');
    const left = fs.existsSync(staging) ? fs.readdirSync(staging, { recursive: true }) : [];
    assert.deepEqual(left.filter((f) => f !== 'uploads'), [], 'no upload is left behind');
  } finally {
    await p.cleanup();
  }
});

test('two uploads at once to one tenant are serialised; two tenants deploy side by side', async () => {
  const p = await startTestPlatform();
  try {
    await createTenant(p.url, p.adminToken, 'dpcon-a');
    await createTenant(p.url, p.adminToken, 'dpcon-b');
    // Big enough that extraction takes a moment: 300 files.
    const many = (marker: string) =>
      siteArchive(marker, Array.from({ length: 300 }, (_, i) => ({ name: `public/f${i}.txt`, body: `${marker} ${i}\n`.repeat(50) })));
    const [a1, a2, b1] = await Promise.all([
      uploadArchive(p.url, p.adminToken, 'dpcon-a', many('a-one')),
      uploadArchive(p.url, p.adminToken, 'dpcon-a', many('a-two')),
      uploadArchive(p.url, p.adminToken, 'dpcon-b', many('b-one')),
    ]);
    assert.equal(a1.status, 201, a1.body);
    assert.equal(a2.status, 201, a2.body);
    assert.equal(b1.status, 201, b1.body);
    const list = await apiJson(p.url, p.adminToken, 'GET', '/api/v1/tenants/dpcon-a/deploys');
    const uploads = list.json.deploys.filter((d: { source: string }) => d.source === 'upload');
    assert.equal(uploads.length, 2);
    assert.ok(uploads.every((d: { status: string; files: number }) => d.status === 'ready' && d.files === 301));
    // The one that finished last is live, and the site shows it completely.
    const liveId = uploads.find((d: { live: boolean }) => d.live).id;
    assert.equal(liveId, uploads[0].id, 'the newest deploy is the live one');
    const marker = liveId === JSON.parse(a1.body).id ? 'a-one' : 'a-two';
    assert.match(await page(p, 'dpcon-a'), new RegExp(marker));
    assert.match(await page(p, 'dpcon-a', '/f299.txt'), new RegExp(marker));
    assert.match(await page(p, 'dpcon-b'), /b-one/);
  } finally {
    await p.cleanup();
  }
});

test('the tenant lock: a second deploy waits its turn, and gives up with 409 after the bound', async () => {
  const locks = new TenantLocks();
  const order: string[] = [];
  let releaseFirst!: () => void;
  const first = locks.run('dplock', 1000, () => new Promise<void>((r) => (releaseFirst = () => (order.push('first'), r()))));
  const second = locks.run('dplock', 5000, async () => void order.push('second'));
  const third = locks.run('dplock', 30, async () => void order.push('third'));
  await assert.rejects(third, (err: { code?: string; status?: number }) => err.code === 'deploy_in_progress' && err.status === 409);
  const otherTenant = await locks.run('dplock-2', 10, async () => 'free');
  assert.equal(otherTenant, 'free', 'another tenant is not blocked');
  releaseFirst();
  await first;
  await second;
  assert.deepEqual(order, ['first', 'second']);
  assert.equal(locks.isBusy('dplock'), false);
});

test('retention choice: the live release counts among the kept ones even when it is old', async () => {
  const { releasesToPrune } = await import('../server/releases/retention.js');
  const d = (id: string, status: 'ready' | 'failed' | 'pruned' = 'ready') =>
    ({ id, tenantId: 't', createdAt: '', source: 'upload', message: null, actor: 'a', status, files: 1, bytes: 1, error: null }) as const;
  const history = [d('d6'), d('d5', 'failed'), d('d4'), d('d3'), d('d2', 'pruned'), d('d1')];
  const ids = (xs: { id: string }[]) => xs.map((x) => x.id);
  assert.deepEqual(ids(releasesToPrune(history, 'd6', 2)), ['d3', 'd1']);
  assert.deepEqual(ids(releasesToPrune(history, 'd1', 2)), ['d4', 'd3'], 'an old live release stays; the newest fill the rest');
  assert.deepEqual(ids(releasesToPrune(history, 'd1', 1)), ['d6', 'd4', 'd3']);
  assert.deepEqual(ids(releasesToPrune(history, 'd6', 10)), []);
});

test('a release that cannot go live (a refusing activation step, a broken tenant.json) fails with deploy_failed; the old one stays', async () => {
  const p = await startTestPlatform();
  try {
    await createTenant(p.url, p.adminToken, 'dphook');
    const ok = await uploadArchive(p.url, p.adminToken, 'dphook', siteArchive('steady'));
    assert.equal(ok.status, 201);
    let refuse = true;
    p.platform.releases.addHooks({
      beforeActivate: async () => {
        if (refuse) throw new Error('the new worker did not become healthy');
      },
    });
    const r = await uploadArchive(p.url, p.adminToken, 'dphook', siteArchive('broken'));
    assert.equal(r.status, 422, r.body);
    const err = JSON.parse(r.body).error;
    assert.equal(err.code, 'deploy_failed');
    assert.match(err.message, /did not become healthy/);
    assert.match(await page(p, 'dphook'), /steady/);
    const releases = fs.readdirSync(path.join(p.dataDir, 'tenants/dphook/releases'));
    assert.equal(releases.length, 2, 'the refused release was removed');
    const list = await apiJson(p.url, p.adminToken, 'GET', '/api/v1/tenants/dphook/deploys');
    assert.equal(list.json.deploys[0].status, 'failed');
    assert.match(list.json.deploys[0].error, /did not become healthy/);

    refuse = false;
    const badConfig = await uploadArchive(p.url, p.adminToken, 'dphook', tarGz([{ name: 'index.html', body: 'x' }, { name: 'tenant.json', body: '{ nope' }]));
    assert.equal(badConfig.status, 422, badConfig.body);
    assert.match(JSON.parse(badConfig.body).error.message, /tenant\.json/);
    assert.match(await page(p, 'dphook'), /steady/);
  } finally {
    await p.cleanup();
  }
});
