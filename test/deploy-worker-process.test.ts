// Deploy work happens outside the edge: archives are unpacked, hashed and
// precompressed in a deploy worker, a child of the edge at lower CPU priority
// (and, as root with cgroups, in the low-weight deploy cgroup), so a tenant's
// deploy does not slow other tenants' requests. A worker that dies mid-deploy
// fails that deploy clearly and the live release keeps serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, startServerProcess, startTestPlatform, tempDir } from './helpers/harness.js';
import { apiJson, createTenant, siteArchive, tarGz, uploadArchive, type RawEntry } from './helpers/deploy-archives.js';
import { probeCgroups } from '../server/sandbox/cgroups.js';
import { deployWorkerProblem } from '../server/sandbox/sandbox.js';
import { lookupUser, removeSystemUser, tenantUserName } from '../server/sandbox/unix-users.js';
import { PLATFORM_USER } from '../server/supervisor/supervisor.js';

const isRoot = process.getuid?.() === 0;

async function page(url: string, tenant: string, urlPath = '/'): Promise<{ status: number; body: string }> {
  const r = await httpRequest(url, { host: `${tenant}.localhost`, path: urlPath });
  return { status: r.status, body: r.body };
}

/** A site of many small text files: enough unpacking and hashing to take a moment. */
function busyArchive(marker: string, files: number): Buffer {
  const entries: RawEntry[] = [{ name: 'public/', type: 'directory' }, { name: 'public/index.html', body: `<h1>${marker}</h1>\n` }];
  for (let i = 0; i < files; i++) entries.push({ name: `public/p/${i}.html`, body: `<p>${marker} ${i}</p>\n`.repeat(40) });
  return tarGz(entries);
}

/** /proc/<pid>/stat field 19: the nice value. */
function niceOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

test('an upload is unpacked and indexed by a deploy worker: another process, lower priority, the edge\'s user', async () => {
  const p = await startTestPlatform();
  try {
    await createTenant(p.url, p.adminToken, 'dwproc');
    const started: { pid: number; job: string }[] = [];
    p.platform.deploys.workers.onStart((w) => started.push({ pid: w.pid, job: w.job }));
    const r = await uploadArchive(p.url, p.adminToken, 'dwproc', siteArchive('from the worker', [{ name: 'public/app.js', body: 'console.log("x");\n'.repeat(4000) }]));
    assert.equal(r.status, 201, r.body);
    const stage = started.find((s) => s.job === 'stage');
    assert.ok(stage, 'a deploy worker was started for the upload');
    assert.notEqual(stage.pid, process.pid);
    const ran = p.platform.deploys.workers.lastProcess!;
    assert.notEqual(ran.pid, process.pid, 'the work ran in another process than the edge');
    assert.equal(ran.uid, process.getuid!(), 'as the edge\'s own user');
    assert.ok(ran.nice >= 10, `at lower priority (nice ${ran.nice})`);
    assert.match((await page(p.url, 'dwproc')).body, /from the worker/);
    // Compression too is made by a worker, and served once it is done.
    await p.platform.sites.whenCompressed('dwproc');
    assert.ok(started.some((s) => s.job === 'compress'), 'the compressed copies were made by a deploy worker');
    const br = await httpRequest(p.url, { host: 'dwproc.localhost', path: '/app.js', headers: { 'Accept-Encoding': 'br' } });
    assert.equal(br.headers['content-encoding'], 'br');
    // A small release (a starter, a page) is compressed in the edge: a Node start would cost more than the work.
    const before = started.length;
    const small = await uploadArchive(p.url, p.adminToken, 'dwproc', siteArchive('small', [{ name: 'public/app.js', body: 'console.log("y");\n'.repeat(200) }]));
    assert.equal(small.status, 201, small.body);
    await p.platform.sites.whenCompressed('dwproc');
    assert.deepEqual(started.slice(before).map((s) => s.job), ['stage'], 'unpacked by a worker, compressed here');
    const smallBr = await httpRequest(p.url, { host: 'dwproc.localhost', path: '/app.js', headers: { 'Accept-Encoding': 'br' } });
    assert.equal(smallBr.headers['content-encoding'], 'br');
  } finally {
    await p.cleanup();
  }
});

test('a deploy worker killed mid-deploy: 422 deploy_failed saying so, no staging left, the live release keeps serving', async () => {
  const p = await startTestPlatform();
  try {
    await createTenant(p.url, p.adminToken, 'dwkill');
    assert.equal((await uploadArchive(p.url, p.adminToken, 'dwkill', siteArchive('still serving'))).status, 201);
    const stop = p.platform.deploys.workers.onStart((w) => {
      if (w.job === 'stage') setTimeout(() => w.kill('SIGKILL'), 50);
    });
    const r = await uploadArchive(p.url, p.adminToken, 'dwkill', busyArchive('never live', 3000));
    stop();
    assert.equal(r.status, 422, r.body);
    const err = JSON.parse(r.body).error;
    assert.equal(err.code, 'deploy_failed');
    assert.match(err.message, /deploy worker stopped \(signal SIGKILL\)/);
    assert.match((await page(p.url, 'dwkill')).body, /still serving/);
    const staging = path.join(p.dataDir, 'tenants', 'dwkill', 'staging');
    assert.deepEqual(fs.readdirSync(staging).filter((n) => n !== 'uploads'), [], 'nothing left in staging');
    const list = await apiJson(p.url, p.adminToken, 'GET', '/api/v1/tenants/dwkill/deploys');
    assert.equal(list.json.deploys[0].status, 'failed');
    // The next deploy works.
    assert.equal((await uploadArchive(p.url, p.adminToken, 'dwkill', siteArchive('next one'))).status, 201);
    assert.match((await page(p.url, 'dwkill')).body, /next one/);
  } finally {
    await p.cleanup();
  }
});

test('only a child of the edge running as the platform user may be moved into the deploy cgroup', () => {
  assert.equal(deployWorkerProblem(1, process.getuid?.() ?? 0), 'not a child of the edge');
  assert.equal(deployWorkerProblem(2 ** 22 + 7, 0), 'no such process');
});

test('as root: the deploy worker is a child of the unprivileged edge, as tenantry, niced, in the deploy cgroup when there is one', async (t) => {
  if (!isRoot) return t.skip('needs root: privilege separation starts from root');
  const dataDir = tempDir();
  const server = await startServerProcess(dataDir, { TENANTRY_ISOLATION: 'auto' });
  const cgroups = probeCgroups().driver;
  try {
    const supervisorPid = server.child.pid!;
    const childrenOf = (pid: number) =>
      fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    const cmdline = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const edgePid = childrenOf(supervisorPid).find((pid) => /edge-process/.test(cmdline(pid)));
    if (edgePid === undefined) return t.skip('privilege separation is off on this host');
    const admin = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    await createTenant(server.url, admin, 'dwroot');
    const appJs = { name: 'public/app.js', body: 'console.log("compressed by the deploy worker");\n'.repeat(1600) };
    assert.equal((await uploadArchive(server.url, admin, 'dwroot', siteArchive('root one', [appJs]))).status, 201);
    // The compressed copies of a sealed release are made by a deploy worker as tenantry, and then served.
    let encoding: string | string[] | undefined;
    for (let i = 0; i < 200 && encoding !== 'br'; i++) {
      encoding = (await httpRequest(server.url, { host: 'dwroot.localhost', path: '/app.js', headers: { 'Accept-Encoding': 'br' } })).headers['content-encoding'];
      if (encoding !== 'br') await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(encoding, 'br', 'the brotli copy made by the deploy worker is served');

    // Watch the edge's children while a larger deploy runs; the first deploy worker seen is checked, then killed.
    const deploying = uploadArchive(server.url, admin, 'dwroot', busyArchive('root two', 6000));
    let seen: { pid: number; uid: number; nice: number; cgroup: string } | undefined;
    for (let i = 0; i < 1500 && !seen; i++) {
      for (const pid of childrenOf(edgePid)) {
        try {
          if (!/deploy-worker-main/.test(cmdline(pid))) continue;
          const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
          const cgroup = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
          // Placed before it is given its job: wait for the move, when cgroups are in use.
          if (cgroups && !/_deploy/.test(cgroup)) continue;
          seen = { pid, uid: Number(/^Uid:\s*(\d+)/m.exec(status)![1]), nice: niceOf(pid), cgroup };
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
        if (seen) break;
      }
      if (!seen) await new Promise((r) => setTimeout(r, 10));
    }
    const r = await deploying;
    assert.ok(seen, 'a deploy worker ran as a child of the edge');
    assert.equal(seen.uid, lookupUser(PLATFORM_USER)!.uid, 'as the unprivileged platform user');
    assert.equal(seen.nice, 10);
    if (cgroups) assert.match(seen.cgroup, /tenantry\/_deploy/);
    else t.diagnostic(`no cgroups on this host: ${probeCgroups().reason}`);
    assert.equal(r.status, 422, r.body);
    assert.equal(JSON.parse(r.body).error.code, 'deploy_failed');
    assert.match((await page(server.url, 'dwroot')).body, /root one/, 'the live release keeps serving');
  } finally {
    await server.stop();
    for (const id of ['dwroot', 'demo']) {
      await cgroups?.removeTenant(id);
      if (lookupUser(tenantUserName(id))) removeSystemUser(tenantUserName(id));
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
