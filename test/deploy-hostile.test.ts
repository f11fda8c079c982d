// Hostile archives: each is refused with 422 and the rule it broke, nothing is
// written outside the tenant's staging folder (checked on disk), and the live
// release keeps answering.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { httpRequest, startTestPlatform, tempDir, type TestPlatform } from './helpers/harness.js';
import { apiJson, createTenant, rawTar, siteArchive, tarGz, uploadArchive, zerosBomb, type RawEntry } from './helpers/deploy-archives.js';

let p: TestPlatform;
let outside: string;
const GiB = 1024 * 1024 * 1024;

before(async () => {
  p = await startTestPlatform();
  outside = tempDir('tenantry-dp-outside-');
  fs.writeFileSync(path.join(outside, 'target.txt'), 'untouched');
  await createTenant(p.url, p.adminToken, 'dphost');
  // A tenant with small caps, so bombs hit them quickly.
  await createTenant(p.url, p.adminToken, 'dpsmall', { limits: { archiveMB: 8, files: 500 } });
  for (const t of ['dphost', 'dpsmall']) {
    const r = await uploadArchive(p.url, p.adminToken, t, siteArchive(`good ${t}`));
    assert.equal(r.status, 201, r.body);
  }
});

after(async () => {
  await p.cleanup();
  fs.rmSync(outside, { recursive: true, force: true });
});

/** Every path under the data folder (type and size), except the database and staging folders. */
function snapshot(): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      if (/^platform\.db/.test(r) || /^tenants\/[^/]+\/staging$/.test(r)) continue;
      const abs = path.join(dir, ent.name);
      const st = fs.lstatSync(abs);
      out.push(`${r} ${st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.size}`);
      if (ent.isDirectory()) walk(abs, r);
    }
  };
  walk(p.dataDir, '');
  return out.sort();
}

function stagingLeftovers(tenant: string): string[] {
  const staging = path.join(p.dataDir, 'tenants', tenant, 'staging');
  if (!fs.existsSync(staging)) return [];
  return (fs.readdirSync(staging, { recursive: true }) as string[]).filter((f) => f !== 'uploads');
}

async function expectRefused(tenant: string, body: Buffer, reason: RegExp, opts: { contentType?: string } = {}): Promise<Record<string, string>> {
  const before = snapshot();
  const r = await uploadArchive(p.url, p.adminToken, tenant, body, opts);
  assert.equal(r.status, 422, r.body);
  const err = JSON.parse(r.body).error;
  assert.equal(err.code, 'archive_invalid');
  assert.match(err.message, reason);
  assert.deepEqual(snapshot(), before, 'nothing changed outside the staging folder');
  assert.deepEqual(stagingLeftovers(tenant), [], 'the staging folder was removed');
  assert.deepEqual(fs.readdirSync(outside), ['target.txt']);
  assert.equal(fs.readFileSync(path.join(outside, 'target.txt'), 'utf8'), 'untouched');
  assert.ok(fs.lstatSync('/etc/passwd').isFile());
  const live = await httpRequest(p.url, { host: `${tenant}.localhost` });
  assert.equal(live.status, 200);
  assert.match(live.body, new RegExp(`good ${tenant}`), 'the live release still answers');
  return err;
}

const index: RawEntry = { name: 'public/index.html', body: '<h1>evil</h1>' };

test('../ names are refused', async () => {
  const e = await expectRefused('dphost', tarGz([index, { name: '../escape.txt', body: 'x' }]), /\.\./);
  assert.equal(e.entry, '../escape.txt');
  const deep = '../'.repeat(8) + `${path.basename(outside)}-escape.txt`;
  await expectRefused('dphost', tarGz([index, { name: `public/${deep}`, body: 'x' }]), /"public\/(\.\.\/)+/);
  await expectRefused('dphost', tarGz([index, { name: 'public/ok/../../..', type: 'directory' }]), /\.\./);
});

test('absolute paths are refused', async () => {
  const e = await expectRefused('dphost', tarGz([index, { name: `${outside}/abs.txt`, body: 'x' }]), /absolute/);
  assert.equal(e.entry, `${outside}/abs.txt`);
  await expectRefused('dphost', tarGz([{ name: '/abs/path', body: 'x' }]), /absolute.*"\/abs\/path"/);
});

test('symbolic links that leave the release are refused', async () => {
  await expectRefused('dphost', tarGz([index, { name: 'public/passwd', type: 'symlink', linkname: '/etc/passwd' }]), /symbolic link.*"public\/passwd"/);
  await expectRefused('dphost', tarGz([index, { name: 'public/up', type: 'symlink', linkname: '../../../../../../etc' }]), /symbolic link/);
  // A link to a folder outside, then a file written through it.
  await expectRefused('dphost', tarGz([index, { name: 'evil', type: 'symlink', linkname: outside }, { name: 'evil/pwned.txt', body: 'x' }]), /symbolic link.*"evil"/);
  await expectRefused('dphost', tarGz([index, { name: 'evil', type: 'symlink', linkname: '../../../..' }, { name: 'evil/pwned.txt', body: 'x' }]), /symbolic link/);
  // Even a link inside the release may not be written through (the file would land elsewhere).
  await expectRefused(
    'dphost',
    tarGz([index, { name: 'public/sub', type: 'symlink', linkname: '.' }, { name: 'public/sub/x.html', body: 'x' }]),
    /through a symbolic link.*"public\/sub\/x\.html"/,
  );
  // Links to folders could make the tree a cycle (or a huge fan-out) for whoever walks it.
  await expectRefused('dphost', tarGz([index, { name: 'public/loop', type: 'symlink', linkname: '.' }]), /point to files only.*"public\/loop"/);
  await expectRefused(
    'dphost',
    tarGz([index, { name: 'public/a/', type: 'directory' }, { name: 'public/b/', type: 'directory' }, { name: 'public/a/x', type: 'symlink', linkname: '../b' }, { name: 'public/b/y', type: 'symlink', linkname: '../a' }]),
    /point to files only/,
  );
  // Each link stays inside by name; together they leave: d/up -> .., a -> d/up/../..
  await expectRefused(
    'dphost',
    tarGz([index, { name: 'd/', type: 'directory' }, { name: 'd/up', type: 'symlink', linkname: '..' }, { name: 'a', type: 'symlink', linkname: 'd/up/../..' }]),
    /symbolic link.*"a".*outside/,
  );
});

test('hard links to anything but an earlier file of the archive are refused', async () => {
  await expectRefused('dphost', tarGz([index, { name: 'public/hl', type: 'hardlink', linkname: '/etc/passwd' }]), /hard link.*"public\/hl"/);
  await expectRefused('dphost', tarGz([index, { name: 'public/hl', type: 'hardlink', linkname: `${outside}/target.txt` }]), /hard link/);
  await expectRefused('dphost', tarGz([index, { name: 'public/hl', type: 'hardlink', linkname: '../../../target.txt' }]), /hard link/);
  await expectRefused('dphost', tarGz([index, { name: 'public/hl', type: 'hardlink', linkname: 'public/later.html' }, { name: 'public/later.html', body: 'x' }]), /hard link/);
});

test('device files and FIFOs are refused', async () => {
  await expectRefused('dphost', tarGz([index, { name: 'public/null', type: 'chardev' }]), /device.*"public\/null"/);
  await expectRefused('dphost', tarGz([index, { name: 'public/sda', type: 'blockdev' }]), /device/);
  await expectRefused('dphost', tarGz([index, { name: 'public/pipe', type: 'fifo' }]), /FIFO|device/);
});

test('a 1 GiB file of zeros (a few MiB of gzip) is stopped while streaming, with the default caps', async () => {
  const bomb = await zerosBomb({ name: 'public/zeros.bin', size: GiB }, GiB);
  assert.ok(bomb.length < 8 * 1024 * 1024, `the bomb is small: ${bomb.length} bytes`);
  const e = await expectRefused('dphost', bomb, /cap/);
  assert.equal(e.entry, 'public/zeros.bin');
});

test('size caps of a tenant: total unpacked size, and zeros hidden after the end of the archive', async () => {
  const mib = crypto.randomBytes(1024 * 1024);
  const files: RawEntry[] = Array.from({ length: 20 }, (_, i) => ({ name: `public/f${i}.bin`, body: mib }));
  const e = await expectRefused('dpsmall', tarGz(files), /unpacked size over the cap of 8 MiB/);
  assert.equal(e.entry, 'public/f8.bin', 'refused at the first file past the cap');
  // A header that declares 10 bytes, then 1 GiB of zero blocks: counted as it is unpacked.
  const lying = await zerosBomb({ name: 'public/small.txt', size: 10 }, GiB);
  await expectRefused('dpsmall', lying, /unpacked size over the cap/);
  const one = await zerosBomb({ name: 'public/big.bin', size: 9 * 1024 * 1024 }, 9 * 1024 * 1024);
  await expectRefused('dpsmall', one, /per-file cap of 8 MiB/);
});

test('100,000 empty files hit the file-count cap', async () => {
  const entries: RawEntry[] = Array.from({ length: 100_000 }, (_, i) => ({ name: `public/e${i}`, body: '' }));
  const e = await expectRefused('dphost', tarGz(entries), /too many files: the cap is 20000/);
  assert.equal(e.entry, 'public/e20000');
  await expectRefused('dpsmall', tarGz(entries.slice(0, 600)), /too many files: the cap is 500/);
});

test('what is not a tar: truncated gzip, random bytes, empty archives, an empty body', async () => {
  const big = tarGz([index, { name: 'public/noise.bin', body: crypto.randomBytes(256 * 1024) }]);
  await expectRefused('dphost', big.subarray(0, Math.floor(big.length / 2)), /not a valid tar/);
  await expectRefused('dphost', crypto.randomBytes(64 * 1024), /not a valid tar/, { contentType: 'application/x-tar' });
  await expectRefused('dphost', Buffer.concat([Buffer.from([0x1f, 0x8b]), crypto.randomBytes(4096)]), /not a valid tar/);
  await expectRefused('dphost', rawTar([]), /tar|no files|empty/, { contentType: 'application/x-tar' });
  await expectRefused('dphost', zlib.gzipSync(rawTar([])), /tar|no files|empty/);
  await expectRefused('dphost', tarGz([{ name: 'public/', type: 'directory' }]), /no files/);
  await expectRefused('dphost', Buffer.alloc(0), /empty/);
  // A zip is named as such, with what to send instead, gzipped or not.
  const zip = Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), crypto.randomBytes(512)]);
  await expectRefused('dphost', zip, /a zip archive, not a tar or tar\.gz.*tar czf/, { contentType: 'application/x-tar' });
  await expectRefused('dphost', zlib.gzipSync(zip), /a zip archive/);
  // gzip inside gzip is not a tar either (and is not unpacked twice).
  await expectRefused('dphost', zlib.gzipSync(siteArchive('double')), /not a valid tar/);
});

test('refusals are in the deploy history and the audit log', async () => {
  const list = await apiJson(p.url, p.adminToken, 'GET', '/api/v1/tenants/dphost/deploys');
  const failed = list.json.deploys.filter((d: { status: string }) => d.status === 'failed');
  assert.ok(failed.length >= 10);
  assert.ok(failed.every((d: { error: string; live: boolean }) => /archive was refused/.test(d.error) && !d.live));
  const audit = p.platform.store.audit.forTenant('dphost', 500).filter((a) => a.action === 'deploy.fail');
  assert.equal(audit.length, failed.length);
  const releases = fs.readdirSync(path.join(p.dataDir, 'tenants/dphost/releases'));
  assert.equal(releases.length, 2, 'only the starter and the good release are on disk');
});
