// diskMB on the data folder and /tmp: a tenant that writes until the disk
// says no gets ENOSPC (or EDQUOT) in its own code, its data folder and /tmp
// share the one budget, and the platform and other tenants go on as before.
// Nothing stays mounted and no loop device stays bound once the platform stops.
// Run by CI with bubblewrap and again with TENANTRY_SANDBOX=unshare.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, runCli, startServerProcess, startTestPlatform, tempDir, type TestPlatform } from './helpers/harness.js';
import { probeCgroups } from '../server/sandbox/cgroups.js';
import { lookupUser, removeSystemUser } from '../server/sandbox/unix-users.js';
import { PLATFORM_USER } from '../server/supervisor/supervisor.js';
import { api, createTenant, deployOk, eventually, site } from './helpers/worker-sites.js';

const LIMIT_MS = 180_000;
const FULL = 'dq-fill';
const OTHER = 'dq-other';

/** Writes 256 KiB blocks to one file until a write fails; answers what failed and how much went in. */
const FILL_ROUTE = `
const fs = require('node:fs');
const path = require('node:path');
function fill(file) {
  const block = Buffer.alloc(256 * 1024, 7);
  let bytes = 0;
  const fd = fs.openSync(file, 'w');
  try {
    for (;;) { fs.writeSync(fd, block); bytes += block.length; }
  } catch (err) {
    return { code: err.code, bytes };
  } finally {
    fs.closeSync(fd);
  }
}
module.exports = (req, res) => {
  const where = req.query.where === 'tmp' ? '/tmp' : process.env.TENANTRY_DATA;
  res.json(fill(path.join(where, 'fill-' + req.query.where)));
};`;

const FILL_SITE = {
  'index.html': '<h1>filler</h1>',
  'api/fill.js': FILL_ROUTE,
  'api/ok.js': `module.exports = (req, res) => res.json({ ok: true });`,
  'api/free.js': `const fs = require('node:fs'); const path = require('node:path');
module.exports = (req, res) => {
  try {
    for (const file of [path.join(process.env.TENANTRY_DATA, 'fill-data'), '/tmp/fill-tmp']) fs.rmSync(file, { force: true });
    res.json({ freed: true });
  } catch (err) {
    res.status(500).json({ error: err.code + ': ' + err.message });
  }
};`,
};

function mountsUnder(dir: string): string[] {
  return fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.split(' ')[1]?.startsWith(dir + '/'));
}

function loopsUnder(dir: string): string[] {
  return execFileSync('losetup', ['-a'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(dir + '/'));
}

async function fill(p: Pick<TestPlatform, 'url'>, where: 'data' | 'tmp'): Promise<{ code: string; bytes: number }> {
  const res = await site(p, FULL, `/api/fill?where=${where}`);
  assert.equal(res.status, 200, res.body);
  return JSON.parse(res.body) as { code: string; bytes: number };
}

test('a tenant that fills its disk gets ENOSPC in its own code; the platform and another tenant keep working', { timeout: LIMIT_MS }, async (t) => {
  if (process.getuid?.() !== 0) return t.skip('SKIPPED LOUDLY: needs root (disk images are loop-mounted by root)');
  const p = await startTestPlatform({ TENANTRY_ISOLATION: 'auto' });
  let dataDir = p.dataDir;
  try {
    const layers = JSON.parse((await api(p, 'GET', '/api/v1/isolation')).body).layers as { name: string; active: boolean; detail: string }[];
    const quota = layers.find((l) => l.name === 'disk-quota');
    assert.ok(quota, 'the isolation report lists the disk quota');
    if (!quota.active) return t.skip(`SKIPPED LOUDLY: no disk quota on this host (${quota.detail})`);
    dataDir = p.dataDir;

    await createTenant(p, FULL, { limits: { diskMB: 16 } });
    await deployOk(p, FULL, FILL_SITE);
    const image = path.join(p.dataDir, 'disks', `${FULL}.img`);
    assert.equal(fs.statSync(image).size, 16 * 1024 * 1024, 'the image is diskMB large');
    assert.ok(mountsUnder(p.dataDir).some((l) => l.split(' ')[1] === path.join(p.dataDir, 'tenants', FULL, 'data')), 'the data folder is the image');

    const data = await fill(p, 'data');
    assert.ok(['ENOSPC', 'EDQUOT'].includes(data.code), `the write into the data folder failed with ${data.code}`);
    assert.ok(data.bytes > 8 * 1024 * 1024 && data.bytes <= 16 * 1024 * 1024, `${data.bytes} bytes went in before the limit`);
    // The host sees the tenant's file where its data folder is (backups copy it from there).
    assert.equal(fs.statSync(path.join(p.dataDir, 'tenants', FULL, 'data', 'fill-data')).size, data.bytes);

    // /tmp draws on the same budget: with the data folder full, almost nothing fits.
    const tmp = await fill(p, 'tmp');
    assert.ok(['ENOSPC', 'EDQUOT'].includes(tmp.code), `the write into /tmp failed with ${tmp.code}`);
    assert.ok(tmp.bytes < 2 * 1024 * 1024, `${tmp.bytes} bytes went into /tmp with the data folder full`);

    // The platform and another tenant: a deploy, its static page and its route, and /healthz.
    await createTenant(p, OTHER);
    await deployOk(p, OTHER, { 'index.html': '<h1>other</h1>', 'api/hi.js': `module.exports = (req, res) => res.json({ hi: process.env.TENANTRY_TENANT });` });
    assert.match((await site(p, OTHER, '/')).body, /other/);
    assert.equal(JSON.parse((await site(p, OTHER, '/api/hi')).body).hi, OTHER);
    const health = await httpRequest(p.url, { host: 'localhost', path: '/healthz' });
    assert.equal(health.status, 200, health.body);
    assert.equal(JSON.parse(health.body).ok, true);

    // The full tenant's own worker still answers, and can free its room again.
    assert.equal((await site(p, FULL, '/api/ok')).status, 200);
    const freed = await site(p, FULL, '/api/free');
    assert.equal(freed.status, 200, freed.body);
    const again = await fill(p, 'tmp');
    assert.ok(again.bytes > 8 * 1024 * 1024, `after freeing, /tmp took ${again.bytes} bytes`);
    await site(p, FULL, '/api/free');

    // A higher limit grows the disk at the next worker start (a settings change restarts it).
    const patched = await api(p, 'PATCH', `/api/v1/tenants/${FULL}`, { limits: { diskMB: 32 } });
    assert.equal(patched.status, 200, patched.body);
    await eventually(async () => (await site(p, FULL, '/api/ok')).status === 200, 20_000, 'the worker to answer after the change');
    assert.equal(fs.statSync(image).size, 32 * 1024 * 1024, 'the image grew to the new diskMB');
    const bigger = await fill(p, 'data');
    assert.ok(bigger.bytes > 24 * 1024 * 1024 && bigger.bytes <= 32 * 1024 * 1024, `${bigger.bytes} bytes went in under 32 MiB`);
  } finally {
    await p.cleanup();
  }
  // Stopped: nothing of the platform's stays mounted, no loop device stays bound.
  await eventually(() => mountsUnder(dataDir).length === 0 && loopsUnder(dataDir).length === 0, 10_000, 'mounts and loop devices to be gone');
});

test('the image outlives a restart, and a backup taken while the platform is stopped holds the data', { timeout: LIMIT_MS }, async (t) => {
  if (process.getuid?.() !== 0) return t.skip('SKIPPED LOUDLY: needs root (disk images are loop-mounted by root)');
  const KEEP = 'dq-keep';
  const NOTE_SITE = {
    'index.html': '<h1>notes</h1>',
    'api/note.js': `const fs = require('node:fs'); const path = require('node:path');
const file = path.join(process.env.TENANTRY_DATA, 'note.txt');
module.exports = (req, res) => {
  if (req.query.text) fs.writeFileSync(file, String(req.query.text));
  res.json({ note: fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null });
};`,
  };
  let p = await startTestPlatform({ TENANTRY_ISOLATION: 'auto' });
  const dataDir = p.dataDir;
  const out = tempDir('tenantry-dq-backup-');
  let stopped = false;
  try {
    if (!p.platform.sandbox.report.layers.find((l) => l.name === 'disk-quota')?.active) {
      return t.skip(`SKIPPED LOUDLY: no disk quota on this host (${p.platform.sandbox.report.layers.find((l) => l.name === 'disk-quota')?.detail})`);
    }
    await createTenant(p, KEEP, { limits: { diskMB: 16 } });
    await deployOk(p, KEEP, NOTE_SITE);
    assert.equal(JSON.parse((await site(p, KEEP, '/api/note?text=kept')).body).note, 'kept');

    // Stopped: nothing mounted, the data folder itself is empty, the data is in the image.
    await p.close();
    stopped = true;
    assert.deepEqual(mountsUnder(dataDir), []);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'tenants', KEEP, 'data')), []);
    const file = path.join(out, 'offline.tar.gz');
    const backup = await runCli(['backup', file, '--data-dir', dataDir]);
    assert.equal(backup.code, 0, backup.stderr);
    assert.equal(execFileSync('tar', ['-xzOf', file, `tenants/${KEEP}/data/note.txt`], { encoding: 'utf8' }), 'kept');
    assert.deepEqual(mountsUnder(dataDir), [], 'the backup unmounted what it mounted');

    // Started again: the same image, the same data.
    p = await startTestPlatform({ TENANTRY_ISOLATION: 'auto' }, dataDir);
    stopped = false;
    assert.equal(JSON.parse((await site(p, KEEP, '/api/note')).body).note, 'kept');
  } finally {
    if (stopped) p = await startTestPlatform({ TENANTRY_ISOLATION: 'auto' }, dataDir);
    await p.cleanup();
    fs.rmSync(out, { recursive: true, force: true });
  }
  await eventually(() => mountsUnder(dataDir).length === 0 && loopsUnder(dataDir).length === 0, 10_000, 'mounts and loop devices to be gone');
});

test('privilege-separated: the root supervisor mounts the disk, the tenant hits ENOSPC, and a stop leaves nothing mounted', { timeout: LIMIT_MS }, async (t) => {
  if (process.getuid?.() !== 0) return t.skip('SKIPPED LOUDLY: needs root (disk images are loop-mounted by root)');
  const platformUserExisted = lookupUser(PLATFORM_USER) !== undefined;
  const dataDir = tempDir();
  const server = await startServerProcess(dataDir, { TENANTRY_ISOLATION: 'auto' });
  try {
    if (!/privilege-separation: active/.test(server.output())) return t.skip(`SKIPPED LOUDLY: privilege separation is off on this host`);
    if (!/disk-quota: active/.test(server.output())) return t.skip(`SKIPPED LOUDLY: no disk quota on this host (${/disk-quota: MISSING \((.*)\)/.exec(server.output())?.[1]})`);
    const p = { url: server.url, adminToken: fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim() };
    await createTenant(p, FULL, { limits: { diskMB: 16 } });
    await deployOk(p, FULL, FILL_SITE);
    const data = await fill(p, 'data');
    assert.ok(['ENOSPC', 'EDQUOT'].includes(data.code), `the write into the data folder failed with ${data.code}`);
    assert.ok(data.bytes <= 16 * 1024 * 1024, `${data.bytes} bytes went in`);
    assert.equal((await site(p, FULL, '/api/ok')).status, 200);
    assert.equal((await httpRequest(server.url, { host: 'localhost', path: '/healthz' })).status, 200);
  } finally {
    await server.stop();
    await eventually(() => mountsUnder(dataDir).length === 0 && loopsUnder(dataDir).length === 0, 10_000, 'mounts and loop devices to be gone after the stop');
    const cg = probeCgroups().driver;
    for (const id of [FULL, 'demo']) {
      await cg?.removeTenant(id);
      removeSystemUser(`tn-${id}`);
    }
    if (!platformUserExisted) removeSystemUser(PLATFORM_USER);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
