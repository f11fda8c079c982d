// Manifest (incremental) deploys through the HTTP API: the missing list, the
// upload of only those contents checked against their hash, nothing live
// before finalize, rollback, archive uploads filling the same store, the
// archive rules applied to manifests, and retention sweeping the store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { etagHashOf, manifestOfListing, scanRelease, type ReleaseManifest } from '../server/static/index/release-manifest.js';
import { httpRequest, startTestPlatform, tempDir, type TestPlatform, type HttpAnswer } from './helpers/harness.js';
import { apiJson, createTenant, tarGz, uploadArchive } from './helpers/deploy-archives.js';

const sha = (s: string | Buffer) => crypto.createHash('sha256').update(s).digest('hex');

function postManifest(p: TestPlatform, token: string, tenant: string, body: unknown): Promise<HttpAnswer> {
  return httpRequest(p.url, {
    host: 'localhost',
    method: 'POST',
    path: `/api/v1/tenants/${tenant}/deploys`,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

function putFile(p: TestPlatform, token: string, tenant: string, deployId: string, hash: string, body: string | Buffer, contentType = 'application/octet-stream'): Promise<HttpAnswer> {
  return httpRequest(p.url, {
    host: 'localhost',
    method: 'PUT',
    path: `/api/v1/tenants/${tenant}/deploys/${deployId}/files/${hash}`,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': contentType },
    body,
  });
}

function finalize(p: TestPlatform, token: string, tenant: string, deployId: string): Promise<HttpAnswer> {
  return httpRequest(p.url, { host: 'localhost', method: 'POST', path: `/api/v1/tenants/${tenant}/deploys/${deployId}/finalize`, headers: { Authorization: `Bearer ${token}` } });
}

async function page(p: TestPlatform, tenant: string, urlPath = '/'): Promise<HttpAnswer> {
  return httpRequest(p.url, { host: `${tenant}.localhost`, path: urlPath });
}

/** Paths -> content, and the manifest of them. */
function siteOf(files: Record<string, string>): { manifest: { files: Record<string, string> }; byHash: Map<string, string> } {
  const manifest: Record<string, string> = {};
  const byHash = new Map<string, string>();
  for (const [p, body] of Object.entries(files)) {
    manifest[p] = sha(body);
    byHash.set(sha(body), body);
  }
  return { manifest: { files: manifest }, byHash };
}

/** Deploys `files` by manifest, uploading what is asked for; the final answer. */
async function deployFiles(p: TestPlatform, token: string, tenant: string, files: Record<string, string>): Promise<{ created: HttpAnswer; result: Record<string, unknown> }> {
  const { manifest, byHash } = siteOf(files);
  const created = await postManifest(p, token, tenant, manifest);
  if (created.status === 201) {
    await p.platform.manifestDeploys.settled(tenant);
    return { created, result: JSON.parse(created.body) };
  }
  assert.equal(created.status, 202, created.body);
  const pending = JSON.parse(created.body);
  for (const h of pending.required as string[]) assert.equal((await putFile(p, token, tenant, pending.id, h, byHash.get(h)!)).status, 200);
  const done = await finalize(p, token, tenant, pending.id);
  assert.equal(done.status, 201, done.body);
  // Retention runs right after the answer.
  await p.platform.manifestDeploys.settled(tenant);
  return { created, result: JSON.parse(done.body) };
}

function objectPath(p: TestPlatform, tenant: string, hash: string): string {
  return path.join(p.dataDir, 'tenants', tenant, 'store', hash.slice(0, 2), hash);
}

const CSS = `body { color: #222; }\n${'.row { margin: 0 auto; padding: 1rem; }\n'.repeat(60)}`;

test('manifest deploy: only missing contents asked for, wrong bytes refused, nothing live before finalize, rollback', async () => {
  const p = await startTestPlatform();
  try {
    await createTenant(p.url, p.adminToken, 'casman');
    const tok = await apiJson(p.url, p.adminToken, 'POST', '/api/v1/tenants/casman/tokens', { name: 'ci', scopes: ['deploy', 'read'] });
    const token = tok.json.token as string;
    const readOnly = (await apiJson(p.url, p.adminToken, 'POST', '/api/v1/tenants/casman/tokens', { scopes: ['read'] })).json.token as string;
    const starter = (await page(p, 'casman')).body;

    const v1 = { 'public/index.html': '<h1>version one</h1>', 'public/css/site.css': CSS, 'public/about.html': '<p>about us</p>', 'public/copy.txt': '<p>about us</p>' };
    const { manifest, byHash } = siteOf(v1);
    const created = await postManifest(p, token, 'casman', { ...manifest, message: 'by manifest' });
    assert.equal(created.status, 202, created.body);
    const pending = JSON.parse(created.body);
    assert.match(pending.id, /^d[0-9a-z]+$/);
    assert.equal(pending.status, 'uploading');
    assert.deepEqual(new Set(pending.required), new Set(byHash.keys()), 'every distinct content is asked for once');
    assert.equal(pending.required.length, 3);

    // Not live while files are missing, whatever is uploaded.
    assert.equal((await page(p, 'casman')).body, starter);
    const aboutHash = sha('<p>about us</p>');
    const wrong = await putFile(p, token, 'casman', pending.id, aboutHash, '<p>tampered</p>');
    assert.equal(wrong.status, 422, wrong.body);
    assert.equal(JSON.parse(wrong.body).error.code, 'hash_mismatch');
    assert.match(JSON.parse(wrong.body).error.message, new RegExp(`not ${aboutHash}`));
    assert.equal(fs.existsSync(objectPath(p, 'casman', aboutHash)), false, 'tampered bytes are not stored');
    const stranger = await putFile(p, token, 'casman', pending.id, sha('not in the manifest'), 'not in the manifest');
    assert.equal(stranger.status, 400, stranger.body);
    assert.match(JSON.parse(stranger.body).error.message, /has no file with the SHA-256/);
    assert.equal((await putFile(p, token, 'casman', pending.id, aboutHash, '<p>about us</p>', 'text/plain')).status, 415);
    assert.equal((await putFile(p, readOnly, 'casman', pending.id, aboutHash, '<p>about us</p>')).status, 403, 'uploading needs the deploy scope');
    assert.equal((await finalize(p, readOnly, 'casman', pending.id)).status, 403);

    const ok = await putFile(p, token, 'casman', pending.id, aboutHash, '<p>about us</p>');
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(JSON.parse(ok.body), { sha256: aboutHash, size: 15, remaining: 2 });
    const early = await finalize(p, token, 'casman', pending.id);
    assert.equal(early.status, 409, early.body);
    const earlyErr = JSON.parse(early.body).error;
    assert.equal(earlyErr.code, 'deploy_files_missing');
    assert.deepEqual(new Set(earlyErr.required), new Set([sha(v1['public/index.html']), sha(CSS)]));
    assert.equal((await page(p, 'casman')).body, starter, 'a deploy not finalized never goes live');

    for (const h of earlyErr.required as string[]) assert.equal((await putFile(p, token, 'casman', pending.id, h, byHash.get(h)!)).status, 200);
    assert.equal((await page(p, 'casman')).body, starter, 'all files there, still not live before finalize');
    const done = await finalize(p, token, 'casman', pending.id);
    assert.equal(done.status, 201, done.body);
    const one = JSON.parse(done.body);
    assert.equal(one.id, pending.id);
    assert.equal(one.live, true);
    assert.equal(one.files, 4);
    assert.equal(one.bytes, Object.values(v1).reduce((n, s) => n + Buffer.byteLength(s), 0));
    assert.equal(one.uploaded, 3);
    assert.equal(one.reused, 0);
    assert.equal((await page(p, 'casman')).body, '<h1>version one</h1>');
    assert.equal((await page(p, 'casman', '/copy.txt')).body, '<p>about us</p>');
    const again = await finalize(p, token, 'casman', pending.id);
    assert.equal(again.status, 409, 'a live deploy is not finalized twice');
    assert.equal(JSON.parse(again.body).error.code, 'conflict');

    // The release holds the store's objects themselves (hard links), no copies.
    const liveFile = path.join(p.dataDir, 'tenants/casman/live/public/css/site.css');
    assert.equal(fs.statSync(liveFile).ino, fs.statSync(objectPath(p, 'casman', sha(CSS))).ino);
    const etagOne = (await page(p, 'casman', '/css/site.css')).headers.etag;
    await p.platform.sites.whenCompressed('casman');
    const brOne = path.join(p.dataDir, 'tenants/casman/releases', one.id, '.tenantry/compressed/css/site.css.br');
    assert.ok(fs.existsSync(brOne), 'deploy-time compression made its copy');

    // One file changed: only its content is asked for.
    const v2 = { ...v1, 'public/index.html': '<h1>version two</h1>' };
    const { created: created2, result: two } = await deployFiles(p, token, 'casman', v2);
    assert.deepEqual(JSON.parse(created2.body).required, [sha('<h1>version two</h1>')]);
    assert.equal(two.uploaded, 1);
    assert.equal(two.reused, 3);
    assert.equal((await page(p, 'casman')).body, '<h1>version two</h1>');
    assert.equal((await page(p, 'casman', '/css/site.css')).headers.etag, etagOne, 'an unchanged file keeps its ETag');
    // The compressed copy of an unchanged content is the previous release's, not made again.
    const brTwo = path.join(p.dataDir, 'tenants/casman/releases', two.id as string, '.tenantry/compressed/css/site.css.br');
    assert.equal(fs.statSync(brTwo).ino, fs.statSync(brOne).ino);
    const br = await httpRequest(p.url, { host: 'casman.localhost', path: '/css/site.css', headers: { 'Accept-Encoding': 'br' } });
    assert.equal(br.headers['content-encoding'], 'br', 'served compressed at once');

    // Nothing changed: live at once, in one request.
    const same = await postManifest(p, token, 'casman', siteOf(v2).manifest);
    assert.equal(same.status, 201, same.body);
    assert.equal(JSON.parse(same.body).uploaded, 0);
    assert.equal(JSON.parse(same.body).reused, 4);

    // Rollback still works, to a release built from the store.
    const back = await apiJson(p.url, token, 'POST', `/api/v1/tenants/casman/deploys/${one.id}/activate`);
    assert.equal(back.status, 200, JSON.stringify(back.json));
    assert.equal((await page(p, 'casman')).body, '<h1>version one</h1>');

    const list = (await apiJson(p.url, token, 'GET', '/api/v1/tenants/casman/deploys')).json.deploys as { id: string; status: string; message: string | null; live: boolean }[];
    const first = list.find((d) => d.id === one.id)!;
    assert.equal(first.status, 'ready');
    assert.equal(first.message, 'by manifest');
    assert.equal(first.live, true);
    const audit = p.platform.store.audit.forTenant('casman');
    assert.ok(audit.some((a) => a.action === 'deploy.prepare' && a.detail.id === one.id && a.detail.required === 3), 'the manifest is in the audit trail');
    const made = audit.find((a) => a.action === 'deploy.create' && a.detail.id === one.id)!;
    assert.equal(made.detail.uploaded, 3, 'its row counts the files uploaded');
    assert.equal(made.actor, `token:${tok.json.id}`);
    assert.ok(audit.some((a) => a.action === 'deploy.upload' && a.outcome === 'failure' && a.code === 'hash_mismatch'), 'a refused upload has its row');
    assert.equal(audit.filter((a) => a.action === 'deploy.upload' && a.outcome === 'success').length, 0, 'accepted uploads are counted in the deploy row, not one row each');
    assert.ok(audit.some((a) => a.action === 'deploy.finalize' && a.code === 'deploy_files_missing'), 'an early finalize is recorded as refused');
  } finally {
    await p.cleanup();
  }
});

test('an archive upload fills the same store: the same files by manifest need nothing', async () => {
  const p = await startTestPlatform();
  try {
    await createTenant(p.url, p.adminToken, 'castar');
    const files = { 'public/index.html': '<h1>from tar</h1>', 'public/app.js': 'console.log("hi");\n'.repeat(100) };
    const archive = tarGz(Object.entries(files).map(([name, body]) => ({ name, body })));
    const up = await uploadArchive(p.url, p.adminToken, 'castar', archive);
    assert.equal(up.status, 201, up.body);
    for (const body of Object.values(files)) assert.ok(fs.existsSync(objectPath(p, 'castar', sha(body))), 'each file of the archive is in the store');

    const changed = { ...files, 'public/index.html': '<h1>by manifest</h1>' };
    const same = await postManifest(p, p.adminToken, 'castar', siteOf(files).manifest);
    assert.equal(same.status, 201, same.body);
    assert.equal(JSON.parse(same.body).uploaded, 0);
    const { created } = await deployFiles(p, p.adminToken, 'castar', changed);
    assert.deepEqual(JSON.parse(created.body).required, [sha('<h1>by manifest</h1>')]);
    assert.equal((await page(p, 'castar')).body, '<h1>by manifest</h1>');
    assert.equal((await page(p, 'castar', '/app.js')).body, files['public/app.js']);
  } finally {
    await p.cleanup();
  }
});

test('manifests keep the archive rules; bad manifests and oversized files get clear answers', async () => {
  const p = await startTestPlatform();
  try {
    await createTenant(p.url, p.adminToken, 'casrule', { limits: { archiveMB: 1, files: 3 } });
    const h = sha('x');
    const refuse = async (body: unknown, status: number, pattern: RegExp) => {
      const r = await postManifest(p, p.adminToken, 'casrule', body);
      assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 80)}: ${r.body}`);
      assert.match(JSON.parse(r.body).error.message, pattern);
      return JSON.parse(r.body).error;
    };
    const dots = await refuse({ files: { 'public/../../etc/passwd': h } }, 422, /paths with "\.\." are not allowed/);
    assert.equal(dots.code, 'archive_invalid');
    assert.equal(dots.entry, 'public/../../etc/passwd');
    await refuse({ files: { '//etc/passwd': h } }, 422, /absolute paths/);
    await refuse({ files: { '.tenantry/index.json': h, 'index.html': h } }, 422, /reserved for the platform/);
    await refuse({ files: { 'a.html': h, 'a.html/b.html': h } }, 422, /sits under a file/);
    await refuse({ files: { 'a': h, 'b': h, 'c': h, 'd': h } }, 422, /too many files: the cap is 3/);
    await refuse({ files: {} }, 422, /holds no files/);
    await refuse({ files: { 'index.html': 'abc' } }, 400, /64 hex digits/);
    await refuse({ files: ['index.html'] }, 400, /"files" must be an object/);
    await refuse({}, 400, /"files" must be an object/);
    const notJson = await httpRequest(p.url, { host: 'localhost', method: 'POST', path: '/api/v1/tenants/casrule/deploys', headers: { Authorization: `Bearer ${p.adminToken}`, 'Content-Type': 'application/json' }, body: '{"files": ' });
    assert.equal(notJson.status, 400);
    assert.equal(JSON.parse(notJson.body).error.code, 'invalid_json');
    // The same reserved name in an archive is refused too.
    const tarred = await uploadArchive(p.url, p.adminToken, 'casrule', tarGz([{ name: 'index.html', body: 'x' }, { name: '.tenantry/index.json', body: '{}' }]));
    assert.equal(tarred.status, 422, tarred.body);
    assert.match(JSON.parse(tarred.body).error.message, /reserved for the platform.*\.tenantry/);

    // A file past the tenant's 1 MiB: refused on upload, nothing stored.
    const big = Buffer.alloc(1024 * 1024 + 10, 0x61);
    const created = await postManifest(p, p.adminToken, 'casrule', { files: { 'big.txt': sha(big) } });
    assert.equal(created.status, 202, created.body);
    const id = JSON.parse(created.body).id;
    const tooBig = await putFile(p, p.adminToken, 'casrule', id, sha(big), big);
    assert.equal(tooBig.status, 413, tooBig.body);
    assert.equal(fs.existsSync(objectPath(p, 'casrule', sha(big))), false);
    assert.equal((await putFile(p, p.adminToken, 'casrule', 'dnosuch', h, 'x')).status, 404);

    const list = (await apiJson(p.url, p.adminToken, 'GET', '/api/v1/tenants/casrule/deploys')).json.deploys as { status: string; error: string | null }[];
    assert.ok(list.some((d) => d.status === 'failed' && /paths with "\.\."/.test(d.error ?? '')), 'a refused manifest is a failed deploy with its reason');
    assert.equal((await page(p, 'casrule')).status, 200, 'the starter site keeps serving');
  } finally {
    await p.cleanup();
  }
});

test('retention removes store objects no release holds, and the uploads of abandoned deploys', async () => {
  const p = await startTestPlatform();
  try {
    await createTenant(p.url, p.adminToken, 'casgc');
    assert.equal((await apiJson(p.url, p.adminToken, 'PATCH', '/api/v1/tenants/casgc', { keepReleases: 1 })).status, 200);
    await deployFiles(p, p.adminToken, 'casgc', { 'index.html': 'one', 'shared.css': CSS });
    assert.ok(fs.existsSync(objectPath(p, 'casgc', sha('one'))));
    await deployFiles(p, p.adminToken, 'casgc', { 'index.html': 'two', 'shared.css': CSS });
    assert.equal(fs.existsSync(objectPath(p, 'casgc', sha('one'))), false, 'the pruned release took its only content with it');
    assert.ok(fs.existsSync(objectPath(p, 'casgc', sha('two'))));
    assert.ok(fs.existsSync(objectPath(p, 'casgc', sha(CSS))), 'a content the live release holds stays');

    // A deploy that waits for files: its uploads are safe from the sweep until it is abandoned.
    const waiting = await postManifest(p, p.adminToken, 'casgc', { files: { 'index.html': sha('waiting'), 'other.html': sha('never sent') } });
    const waitingId = JSON.parse(waiting.body).id as string;
    assert.equal((await putFile(p, p.adminToken, 'casgc', waitingId, sha('waiting'), 'waiting')).status, 200);
    await deployFiles(p, p.adminToken, 'casgc', { 'index.html': 'three' });
    assert.ok(fs.existsSync(objectPath(p, 'casgc', sha('waiting'))), 'pinned by the waiting deploy');
    // Four newer waiting deploys abandon the oldest.
    for (let i = 0; i < 4; i++) assert.equal((await postManifest(p, p.adminToken, 'casgc', { files: { 'index.html': sha(`later ${i}`) } })).status, 202);
    const late = await putFile(p, p.adminToken, 'casgc', waitingId, sha('never sent'), 'never sent');
    assert.equal(late.status, 409, late.body);
    assert.match(JSON.parse(late.body).error.message, /abandoned/);
    await deployFiles(p, p.adminToken, 'casgc', { 'index.html': 'four' });
    assert.equal(fs.existsSync(objectPath(p, 'casgc', sha('waiting'))), false, 'an abandoned deploy\'s upload is swept');
    assert.equal((await page(p, 'casgc')).body, 'four');
  } finally {
    await p.cleanup();
  }
});

test('the manifest of a release built from the store is the one scanning its files gives', () => {
  for (const layout of [
    { 'public/index.html': 'i', 'public/.hidden': 'h', 'public/_redirects': '/a /b', 'public/docs/.env': 'e', 'public/docs/a.html': 'a', '404.html': 'nf', 'api/x.js': 'x', 'tenant.json': '{}' },
    { 'index.html': 'i', '_headers': '/*\n  X-A: b', 'api/x.js': 'x', 'node_modules/m/i.js': 'm', 'package.json': '{}', 'sub/api/y.txt': 'y', 'sub/_headers': 'kept', '.well-known/z': 'z' },
    { 'public/404.html': 'p', '404.html': 'root', 'public/a/b/c.css': 'c' },
  ] as Record<string, string>[]) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantry-listing-'));
    try {
      const listing = Object.entries(layout).map(([rel, body]) => {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), body);
        const st = fs.statSync(path.join(dir, rel));
        return { path: rel, size: st.size, mtimeMs: Math.floor(st.mtimeMs), hash: etagHashOf(sha(body)) };
      });
      const byPath = (m: ReleaseManifest) => ({ ...m, files: [...m.files].sort((a, b) => (a.path < b.path ? -1 : 1)) });
      assert.deepEqual(byPath(manifestOfListing(listing)), byPath(scanRelease(dir)), JSON.stringify(Object.keys(layout)));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('a deploy waiting for its files when the platform restarts never goes live: it is failed, uploads refused', async () => {
  const dataDir = tempDir();
  let p = await startTestPlatform({}, dataDir);
  try {
    await createTenant(p.url, p.adminToken, 'casrest');
    const starter = (await page(p, 'casrest')).body;
    const { manifest, byHash } = siteOf({ 'index.html': '<h1>half way</h1>', 'b.css': CSS });
    const created = await postManifest(p, p.adminToken, 'casrest', manifest);
    assert.equal(created.status, 202, created.body);
    const id = JSON.parse(created.body).id as string;
    const [first, second] = JSON.parse(created.body).required as string[];
    assert.equal((await putFile(p, p.adminToken, 'casrest', id, first!, byHash.get(first!)!)).status, 200);
    await p.close();

    p = await startTestPlatform({}, dataDir);
    const late = await putFile(p, p.adminToken, 'casrest', id, second!, byHash.get(second!)!);
    assert.equal(late.status, 409, late.body);
    assert.match(JSON.parse(late.body).error.message, /not waiting for files: it is failed \(interrupted/);
    assert.equal((await finalize(p, p.adminToken, 'casrest', id)).status, 409);
    assert.equal((await page(p, 'casrest')).body, starter);
    // Sent again, it asks only for what the store does not have yet.
    const again = await postManifest(p, p.adminToken, 'casrest', manifest);
    assert.deepEqual(JSON.parse(again.body).required, [second]);
  } finally {
    await p.cleanup();
  }
});
