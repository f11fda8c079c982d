// Crashes in the middle of a deploy: kill -9 of the server while an upload
// streams in, and while an archive is being unpacked; the restarted server
// serves the last live release and no staging is left. Also the state a crash
// right after the live switch leaves behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { httpRequest, startServerProcess, startTestPlatform, tempDir, type ServerProcess } from './helpers/harness.js';
import { apiJson, createTenant, siteArchive, tarGz, uploadArchive, type RawEntry } from './helpers/deploy-archives.js';
import { pointLiveAt } from '../server/releases/live-link.js';

async function waitFor(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function listRecursive(dir: string): string[] {
  return fs.existsSync(dir) ? (fs.readdirSync(dir, { recursive: true }) as string[]) : [];
}

async function killHard(server: ServerProcess): Promise<void> {
  const exited = new Promise((r) => server.child.once('exit', r));
  server.child.kill('SIGKILL');
  await exited;
}

test('kill -9 during an upload and during unpacking: the old release serves after a restart, no staging left', async () => {
  const dataDir = tempDir();
  let server = await startServerProcess(dataDir);
  try {
    const admin = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    await createTenant(server.url, admin, 'dpcrash');
    const v1 = await uploadArchive(server.url, admin, 'dpcrash', siteArchive('before the crash'));
    assert.equal(v1.status, 201, v1.body);
    const staging = path.join(dataDir, 'tenants/dpcrash/staging');

    // 1. A slow upload: half the body sent, then the server dies.
    const body = tarGz([{ name: 'public/index.html', body: 'never' }, { name: 'public/big.bin', body: Buffer.alloc(4 << 20, 7) }]);
    const req = http.request({
      host: '127.0.0.1',
      port: server.port,
      method: 'POST',
      path: '/api/v1/tenants/dpcrash/deploys',
      headers: { Host: 'localhost', Authorization: `Bearer ${admin}`, 'Content-Type': 'application/gzip' },
    });
    req.on('error', () => {});
    req.write(body.subarray(0, Math.floor(body.length / 2)));
    await waitFor('the upload to reach the disk', () => listRecursive(staging).some((f) => f.startsWith('uploads/')));
    await killHard(server);
    req.destroy();

    server = await startServerProcess(dataDir);
    assert.match((await httpRequest(server.url, { host: 'dpcrash.localhost' })).body, /before the crash/);
    assert.deepEqual(listRecursive(staging), [], 'no staging left');

    // 2. Unpacking 15,000 files takes a moment: die in the middle of it.
    const many: RawEntry[] = Array.from({ length: 15_000 }, (_, i) => ({ name: `public/p${i}.txt`, body: `${i}` }));
    void uploadArchive(server.url, admin, 'dpcrash', tarGz([{ name: 'public/index.html', body: 'never either' }, ...many])).catch(() => {});
    await waitFor('unpacking to start', () => listRecursive(staging).some((f) => /^d[0-9a-z]+\/tree\/public\/p\d+\.txt$/.test(f)));
    await killHard(server);

    server = await startServerProcess(dataDir);
    const page = await httpRequest(server.url, { host: 'dpcrash.localhost' });
    assert.equal(page.status, 200);
    assert.match(page.body, /before the crash/);
    assert.deepEqual(listRecursive(staging), [], 'no staging left');
    const list = await apiJson(server.url, admin, 'GET', '/api/v1/tenants/dpcrash/deploys');
    const [interrupted, live] = list.json.deploys;
    assert.equal(interrupted.status, 'failed');
    assert.match(interrupted.error, /interrupted/);
    assert.equal(live.live, true);
    assert.equal(live.id, JSON.parse(v1.body).id);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'tenants/dpcrash/releases')).sort(), list.json.deploys.slice(1).map((d: { id: string }) => d.id).sort());

    // And the pipeline works again.
    const v2 = await uploadArchive(server.url, admin, 'dpcrash', siteArchive('after the crash'));
    assert.equal(v2.status, 201, v2.body);
    assert.match((await httpRequest(server.url, { host: 'dpcrash.localhost' })).body, /after the crash/);
  } finally {
    await server.stop('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('after a crash, a deploy whose live switch happened is ready; one that had not is failed and its files go', async () => {
  const dataDir = tempDir();
  let p = await startTestPlatform({}, dataDir);
  try {
    await createTenant(p.url, p.adminToken, 'dprecon');
    const v1 = await uploadArchive(p.url, p.adminToken, 'dprecon', siteArchive('one'));
    assert.equal(v1.status, 201);
    const store = p.platform.store;
    const paths = p.platform.paths;
    // What a crash between the live switch and the database update leaves:
    store.deploys.insert({ id: 'd0switched00', tenantId: 'dprecon', source: 'upload', message: null, actor: 'admin' });
    store.deploys.setStats('d0switched00', { files: 1, bytes: 20 });
    fs.mkdirSync(paths.release('dprecon', 'd0switched00'));
    fs.writeFileSync(path.join(paths.release('dprecon', 'd0switched00'), 'index.html'), '<h1>switched</h1>');
    await pointLiveAt(paths.live('dprecon'), 'd0switched00');
    // ...and one cut off before it: half a release, a staging folder.
    store.deploys.insert({ id: 'd0halfway000', tenantId: 'dprecon', source: 'git', message: null, actor: 'admin' });
    fs.mkdirSync(paths.release('dprecon', 'd0halfway000'));
    fs.mkdirSync(path.join(paths.staging('dprecon'), 'd0halfway000/tree'), { recursive: true });
    // ...and a pruned release whose folder a crash kept from going.
    const v1Id = JSON.parse(v1.body).id as string;
    store.deploys.markPruned(v1Id);
    await p.close();

    p = await startTestPlatform({}, dataDir);
    const list = await apiJson(p.url, p.adminToken, 'GET', '/api/v1/tenants/dprecon/deploys');
    const byId = new Map(list.json.deploys.map((d: { id: string }) => [d.id, d]));
    assert.deepEqual(
      [byId.get('d0switched00')].map((d: any) => [d.status, d.live, d.files]),
      [['ready', true, 1]],
    );
    assert.equal((byId.get('d0halfway000') as { status: string }).status, 'failed');
    assert.equal(fs.existsSync(paths.release('dprecon', 'd0halfway000')), false);
    assert.equal(fs.existsSync(paths.staging('dprecon')), false);
    assert.equal(fs.existsSync(paths.release('dprecon', v1Id)), false, 'a pruned release folder is removed');
    assert.match((await httpRequest(p.url, { host: 'dprecon.localhost' })).body, /switched/);
    assert.equal(p.platform.store.tenants.get('dprecon')!.liveDeployId, 'd0switched00');
  } finally {
    await p.cleanup();
  }
});
