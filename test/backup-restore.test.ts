// tenantry backup while a real server serves (a steady stream of requests, an
// api/ route writing to TENANTRY_DATA, a deploy in progress), then tenantry
// restore into a new folder and a server on it: the same sites, domains,
// tokens, data, deploy history and rollback. Also: restore refuses a
// non-empty folder and hostile archives; a restored data folder is given to
// the tenant's user at the next start as root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, runCli, startServerProcess, tempDir, type ServerProcess } from './helpers/harness.js';
import { apiJson, createTenant, rawTar, siteArchive, tarGz, uploadArchive, type RawEntry } from './helpers/deploy-archives.js';
import { DataPaths } from '../server/paths.js';
import { applyTenantFileModes } from '../server/sandbox/file-modes.js';
import { lookupUser } from '../server/sandbox/unix-users.js';

const isRoot = process.getuid?.() === 0;

/** A site whose api/notes.js appends to (POST) and reads (GET) notes.txt in TENANTRY_DATA. */
function notesSite(marker: string): Buffer {
  const route = `
const fs = require('node:fs');
const path = require('node:path');
const file = () => path.join(process.env.TENANTRY_DATA, 'notes.txt');
exports.POST = (req, res) => { fs.appendFileSync(file(), String(req.query.n) + '\\n'); res.json({ ok: true }); };
exports.GET = (req, res) => { let t = ''; try { t = fs.readFileSync(file(), 'utf8'); } catch {} res.type('text/plain').send(t); };
`;
  return tarGz([
    { name: 'public/index.html', body: `<h1>${marker}</h1>\n` },
    { name: 'api/notes.js', body: route },
  ]);
}

/** A site of `n` files: big enough that its deploy is still running while the backup copies. */
function manyFiles(marker: string, n: number): Buffer {
  const entries: RawEntry[] = [{ name: 'public/index.html', body: `<h1>${marker}</h1>\n` }];
  for (let i = 0; i < n; i++) entries.push({ name: `public/f/${i % 20}/p${i}.txt`, body: `${marker} ${i} `.repeat(200) });
  return tarGz(entries);
}

interface Load {
  /** POSTs to /api/notes answered 200, in order. */
  readonly written: () => number;
  stop(): Promise<string[]>;
}

/** Sequential requests to both sites and the notes route until stopped; collects every failed answer. */
function steadyStream(url: string): Load {
  let running = true;
  let n = 0;
  const failures: string[] = [];
  const check = async (what: string, p: Promise<{ status: number; body: string }>, expect: RegExp) => {
    try {
      const r = await p;
      if (r.status !== 200 || !expect.test(r.body)) failures.push(`${what}: HTTP ${r.status} ${r.body.slice(0, 120)}`);
      return r.status === 200;
    } catch (err) {
      failures.push(`${what}: ${(err as Error).message}`);
      return false;
    }
  };
  const loop = (async () => {
    while (running) {
      await check('bkone /', httpRequest(url, { host: 'bkone.localhost' }), /one v2/);
      await check('bktwo /', httpRequest(url, { host: 'bktwo.localhost' }), /two v/);
      if (await check('notes POST', httpRequest(url, { host: 'bkone.localhost', method: 'POST', path: `/api/notes?n=${n + 1}` }), /ok/)) n++;
    }
  })();
  return {
    written: () => n,
    stop: async () => {
      running = false;
      await loop;
      return failures;
    },
  };
}

async function waitUntil(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('backup while serving and deploying; restore into a new folder; the restored platform serves the same', { timeout: 240_000 }, async () => {
  const dataDir = tempDir();
  const work = tempDir('tenantry-bk-');
  // Passable by the platform user: as root, the restored platform then runs as supervisor and unprivileged edge.
  fs.chmodSync(work, 0o711);
  const backup = path.join(work, 'backup.tar.gz');
  const restored = path.join(work, 'restored');
  let server: ServerProcess | undefined = await startServerProcess(dataDir);
  let again: ServerProcess | undefined;
  try {
    const admin = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    // The demo tenant goes: the restored server then owns only this test's tenants (and users, as root).
    assert.equal((await apiJson(server.url, admin, 'DELETE', '/api/v1/tenants/demo')).status, 204);
    await createTenant(server.url, admin, 'bkone', { domains: ['www.bkone.test'] });
    await createTenant(server.url, admin, 'bktwo');
    assert.equal((await uploadArchive(server.url, admin, 'bkone', siteArchive('one v1'))).status, 201);
    assert.equal((await uploadArchive(server.url, admin, 'bkone', notesSite('one v2'))).status, 201);
    assert.equal((await uploadArchive(server.url, admin, 'bktwo', siteArchive('two v1'))).status, 201);
    const token = await apiJson(server.url, admin, 'POST', '/api/v1/tenants/bkone/tokens', { name: 'ci', scopes: ['deploy', 'read'] });
    assert.equal(token.status, 201);
    const history = (await apiJson(server.url, admin, 'GET', '/api/v1/tenants/bkone/deploys')).json.deploys as { id: string; status: string; live: boolean }[];

    // Requests flow; a deploy of bktwo runs; the backup is taken in the middle of both.
    const load = steadyStream(server.url);
    await waitUntil('some notes written', () => load.written() >= 5);
    const deploy = uploadArchive(server.url, admin, 'bktwo', manyFiles('two v2', 1500));
    await new Promise((r) => setTimeout(r, 150));
    const writtenBefore = load.written();
    const made = await runCli(['backup', backup, '--data-dir', dataDir]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /^backup written: .*backup\.tar\.gz \([\d.]+ MiB; 2 tenants, \d+ releases\)/);
    assert.equal((await deploy).status, 201);
    const failures = await load.stop();
    assert.deepEqual(failures, [], 'every request answered while the backup ran');
    assert.equal(fs.statSync(backup).mode & 0o777, 0o600, 'the archive is private');

    // Restore: into a new folder; never into a non-empty one.
    const refused = await runCli(['restore', backup, '--data-dir', dataDir]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^tenantry: .* is not empty \(it holds .*\); restore only into an empty or new folder\n$/);
    await server.stop();
    server = undefined;
    const restore = await runCli(['restore', backup, '--data-dir', restored]);
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stdout, /restored 2 tenants \(bkone, bktwo\)/);
    const notRestoredTwice = await runCli(['restore', backup, '--data-dir', restored]);
    assert.equal(notRestoredTwice.code, 1);
    assert.match(notRestoredTwice.stderr, /not empty/);

    // As root the restored platform runs with isolation: the tenants' users are made and their data given to them.
    again = await startServerProcess(restored, isRoot ? { TENANTRY_ISOLATION: 'auto' } : {});
    const url = again.url;
    assert.equal(fs.readFileSync(path.join(restored, 'admin-token'), 'utf8').trim(), admin);
    assert.match((await httpRequest(url, { host: 'bkone.localhost' })).body, /one v2/);
    assert.match((await httpRequest(url, { host: 'www.bkone.test' })).body, /one v2/, 'the custom domain');
    const two = await httpRequest(url, { host: 'bktwo.localhost' });
    assert.equal(two.status, 200);
    assert.match(two.body, /two v[12]/);

    // The same tokens: the tenant's and the admin's.
    const withToken = await apiJson(url, token.json.token, 'GET', '/api/v1/tenants/bkone/deploys');
    assert.equal(withToken.status, 200);
    assert.deepEqual(
      withToken.json.deploys.map((d: { id: string; status: string; live: boolean }) => [d.id, d.status, d.live]),
      history.map((d) => [d.id, d.status, d.live]),
      'the same deploy history',
    );
    assert.equal((await apiJson(url, 'tnt_wrong_token_000000000000', 'GET', '/api/v1/tenants/bkone/deploys')).status, 401);

    // bktwo: whichever release the backup caught is live, and its history agrees with the disk.
    const twoDeploys = (await apiJson(url, admin, 'GET', '/api/v1/tenants/bktwo/deploys')).json.deploys as { id: string; status: string; live: boolean }[];
    const twoLive = twoDeploys.filter((d) => d.live);
    assert.equal(twoLive.length, 1);
    assert.equal(twoLive[0]!.status, 'ready');
    for (const d of twoDeploys.filter((x) => x.status === 'failed')) assert.match((d as { error?: string }).error ?? '', /in progress when the backup was taken/);
    for (const d of twoDeploys.filter((x) => x.status === 'ready')) assert.ok(fs.existsSync(path.join(restored, 'tenants/bktwo/releases', d.id)), `release ${d.id} restored`);
    assert.match(two.body, twoDeploys.length === 3 && twoLive[0]!.id === twoDeploys[0]!.id ? /two v2/ : /two v[12]/);

    // The data folder: every note written before the backup started, in order, and the route still writes.
    const notes = await httpRequest(url, { host: 'bkone.localhost', path: '/api/notes' });
    assert.equal(notes.status, 200, notes.body);
    const lines = notes.body.split('\n').filter(Boolean);
    assert.ok(lines.length >= writtenBefore, `${lines.length} notes restored, ${writtenBefore} written before the backup`);
    assert.deepEqual(lines, lines.map((_, i) => String(i + 1)));
    assert.equal((await httpRequest(url, { host: 'bkone.localhost', method: 'POST', path: '/api/notes?n=after' })).status, 200);
    assert.match((await httpRequest(url, { host: 'bkone.localhost', path: '/api/notes' })).body, /after\n$/);
    if (isRoot) {
      const user = lookupUser('tn-bkone');
      assert.ok(user, 'the tenant user was made at start');
      assert.equal(fs.statSync(path.join(restored, 'tenants/bkone/data/notes.txt')).uid, user.uid, 'the data belongs to the tenant');
      assert.equal(fs.existsSync(path.join(restored, 'tenants/bkone/data-owner-pending')), false);
    }

    // Rollback and forward on the restored history.
    const previous = history.find((d) => !d.live && d.status === 'ready')!;
    assert.equal((await apiJson(url, token.json.token, 'POST', `/api/v1/tenants/bkone/deploys/${previous.id}/activate`)).status, 200);
    assert.match((await httpRequest(url, { host: 'bkone.localhost' })).body, /one v1/);
    assert.equal((await apiJson(url, admin, 'POST', `/api/v1/tenants/bkone/deploys/${history[0]!.id}/activate`)).status, 200);
    assert.match((await httpRequest(url, { host: 'bkone.localhost' })).body, /one v2/);
    // And a new deploy.
    assert.equal((await uploadArchive(url, admin, 'bktwo', siteArchive('two v3'))).status, 201);
    assert.match((await httpRequest(url, { host: 'bktwo.localhost' })).body, /two v3/);
  } finally {
    await server?.stop();
    if (again) {
      // Removes the tenants' users and cgroups made by the isolated start.
      const admin = fs.readFileSync(path.join(restored, 'admin-token'), 'utf8').trim();
      for (const id of ['bkone', 'bktwo']) await apiJson(again.url, admin, 'DELETE', `/api/v1/tenants/${id}`).catch(() => {});
      await again.stop();
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  }
});

test('restore refuses hostile archives, one line on stderr, and leaves nothing behind', async () => {
  const work = tempDir('tenantry-bk-hostile-');
  const outside = path.join(work, 'outside.txt');
  fs.writeFileSync(outside, 'untouched');
  const summary = { name: 'tenantry-backup.json', body: JSON.stringify({ format: 1, createdAt: 'x', tenants: [], notes: [] }) };
  const cases: { what: string; archive: Buffer; refusal: RegExp }[] = [
    { what: '..', archive: tarGz([summary, { name: '../outside.txt', body: 'pwned' }]), refusal: /paths with "\.\." are not allowed/ },
    { what: 'absolute', archive: tarGz([{ name: outside, body: 'pwned' }]), refusal: /absolute paths are not allowed/ },
    { what: 'unknown name', archive: tarGz([{ name: 'etc/passwd', body: 'x' }]), refusal: /not part of a Tenantry backup/ },
    { what: 'link out', archive: tarGz([{ name: 'tenants/a/data/l', type: 'symlink', linkname: '../../../../outside.txt' }]), refusal: /symbolic links must stay inside the backup/ },
    { what: 'absolute link', archive: tarGz([{ name: 'tenants/a/data/l', type: 'symlink', linkname: outside }]), refusal: /symbolic links must stay inside the backup/ },
    {
      what: 'link out through a link',
      archive: tarGz([
        summary,
        { name: 'tenants/a/data/d', type: 'symlink', linkname: '..' },
        { name: 'tenants/a/data/e', type: 'symlink', linkname: 'd/../../../..' },
      ]),
      refusal: /symbolic links must stay inside the backup: "tenants\/a\/data\/e" \(resolves outside it\)/,
    },
    {
      what: 'through a link',
      archive: tarGz([
        { name: 'tenants/a/data/l', type: 'symlink', linkname: '../releases' },
        { name: 'tenants/a/data/l/x', body: 'x' },
      ]),
      refusal: /an entry lies beneath a symbolic link/,
    },
    { what: 'hard link', archive: tarGz([{ name: 'tenants/a/data/h', type: 'hardlink', linkname: 'secret' }]), refusal: /hard links are not allowed/ },
    { what: 'device', archive: tarGz([{ name: 'tenants/a/data/dev', type: 'chardev' }]), refusal: /unsupported entry type/ },
    { what: 'twice', archive: tarGz([{ name: 'secret', body: 'a' }, { name: 'secret', body: 'b' }]), refusal: /an entry appears twice/ },
    { what: 'no summary', archive: tarGz([{ name: 'secret', body: 'a' }, { name: 'platform.db', body: 'a' }]), refusal: /not a Tenantry backup/ },
    { what: 'not a database', archive: tarGz([summary, { name: 'platform.db', body: 'not sqlite' }]), refusal: /the database in the backup is damaged/ },
    { what: 'garbage', archive: Buffer.from('\x1f\x8bnot really gzip at all'), refusal: /not a valid tar\.gz backup/ },
    { what: 'plain tar', archive: rawTar([{ name: 'x/../../y', body: 'x' }]), refusal: /paths with "\.\."/ },
  ];
  try {
    for (const c of cases) {
      const file = path.join(work, 'hostile.tar.gz');
      fs.writeFileSync(file, c.archive);
      const fresh = path.join(work, 'fresh');
      const r = await runCli(['restore', file, '--data-dir', fresh]);
      assert.equal(r.code, 1, `${c.what}: ${r.stdout}`);
      assert.match(r.stderr, /^tenantry: the backup was refused, nothing was restored: .*\n$/, c.what);
      assert.match(r.stderr, c.refusal, c.what);
      assert.equal(fs.existsSync(fresh), false, `${c.what}: the folder the restore made is gone`);
      // An existing empty folder is left empty.
      fs.mkdirSync(fresh);
      assert.equal((await runCli(['restore', file, '--data-dir', fresh])).code, 1);
      assert.deepEqual(fs.readdirSync(fresh), [], c.what);
      fs.rmSync(fresh, { recursive: true });
      assert.equal(fs.readFileSync(outside, 'utf8'), 'untouched', c.what);
    }
    const missing = await runCli(['restore', path.join(work, 'nope.tar.gz'), '--data-dir', path.join(work, 'x')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^tenantry: .*nope\.tar\.gz is not a file\n$/);
    const usage = await runCli(['restore']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /usage: tenantry restore <file>/);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});

test('backup refuses to overwrite a file, and a folder that is not a data folder', async () => {
  const work = tempDir('tenantry-bk-refuse-');
  try {
    const existing = path.join(work, 'old.tar.gz');
    fs.writeFileSync(existing, 'keep me');
    fs.mkdirSync(path.join(work, 'data'));
    fs.writeFileSync(path.join(work, 'data/platform.db'), '');
    const over = await runCli(['backup', existing, '--data-dir', path.join(work, 'data')]);
    assert.equal(over.code, 1);
    assert.match(over.stderr, /^tenantry: .*old\.tar\.gz already exists; choose a new file name or remove it first\n$/);
    assert.equal(fs.readFileSync(existing, 'utf8'), 'keep me');
    const notData = await runCli(['backup', path.join(work, 'b.tar.gz'), '--data-dir', work]);
    assert.equal(notData.code, 1);
    assert.match(notData.stderr, /^tenantry: .* holds no platform database \(platform\.db\); give the data folder with --data-dir or TENANTRY_DATA_DIR\n$/);
    assert.deepEqual(fs.readdirSync(work).sort(), ['data', 'old.tar.gz'], 'nothing left behind');
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});

test('after a restore, the start as root gives the data folder to the tenant, never what a link or hard link names', (t) => {
  if (!isRoot) {
    t.skip('needs root (chown)');
    return;
  }
  const root = tempDir();
  const paths = new DataPaths(root);
  const outsideFile = path.join(root, 'outside-file');
  try {
    fs.writeFileSync(outsideFile, 'root only');
    fs.mkdirSync(paths.releases('own'), { recursive: true });
    const data = paths.tenantData('own');
    fs.mkdirSync(path.join(data, 'sub/deeper'), { recursive: true });
    fs.writeFileSync(path.join(data, 'sub/deeper/a.txt'), 'a');
    fs.writeFileSync(path.join(data, 'top.txt'), 'top');
    fs.symlinkSync(outsideFile, path.join(data, 'link-out'));
    fs.linkSync(outsideFile, path.join(data, 'hard-link'));
    const tenant = { name: 'tn-own', uid: 54321, gid: 54322 };
    const platform = { uid: 0, gid: 0 };
    const owner = (rel: string) => fs.lstatSync(path.join(data, rel)).uid;

    applyTenantFileModes(paths, 'own', tenant, platform, () => {});
    assert.equal(owner('top.txt'), 0, 'without the restore marker the contents are left alone');

    fs.writeFileSync(paths.dataOwnerPending('own'), 'restored\n');
    applyTenantFileModes(paths, 'own', tenant, platform, () => {});
    for (const rel of ['.', 'sub', 'sub/deeper', 'sub/deeper/a.txt', 'top.txt', 'link-out']) assert.equal(owner(rel), 54321, rel);
    assert.equal(fs.lstatSync(path.join(data, 'top.txt')).gid, 54322);
    assert.equal(owner('hard-link'), 0, 'a file with a second name elsewhere is not given away');
    assert.equal(fs.statSync(outsideFile).uid, 0, 'what the link names is untouched');
    assert.equal(fs.existsSync(paths.dataOwnerPending('own')), false, 'done once');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
