// The release sealer: a release the unprivileged edge wrote becomes the
// tenant's group's to read, never to write, with the platform user's rights
// only: a link inside the release, or a file the platform user does not own,
// is never re-owned or re-moded with root's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ReleaseSealer } from '../server/sandbox/release-sealer.js';
import { ensureSystemUser } from '../server/sandbox/unix-users.js';

const TENANT_GID = 4_194_000; // a group id no account uses; chgrp to it needs no group entry

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function releaseOwnedBy(uid: number, gid: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealer-'));
  fs.chmodSync(dir, 0o755);
  fs.mkdirSync(path.join(dir, 'rel/assets'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'rel/index.html'), 'hello', { mode: 0o666 });
  fs.writeFileSync(path.join(dir, 'rel/assets/app.js'), 'x', { mode: 0o604 });
  for (const p of ['rel', 'rel/index.html', 'rel/assets', 'rel/assets/app.js']) fs.chownSync(path.join(dir, p), uid, gid);
  return dir;
}

test('a sealed release: the tenant group reads, nobody else; a link inside leaves its root-owned target alone', { skip: !isRoot() && 'needs root (the sealer takes the platform user\'s ids for each release)' }, async () => {
  const platform = ensureSystemUser('tenantry');
  const dir = releaseOwnedBy(platform.uid, platform.gid);
  const outside = path.join(dir, 'root-owned');
  fs.writeFileSync(outside, 'secret', { mode: 0o600 });
  fs.symlinkSync(outside, path.join(dir, 'rel/link'));
  fs.lchownSync(path.join(dir, 'rel/link'), platform.uid, platform.gid);
  const sealer = new ReleaseSealer(platform.uid);
  try {
    await sealer.seal(path.join(dir, 'rel'), TENANT_GID);
    const st = (p: string) => fs.lstatSync(path.join(dir, p));
    for (const f of ['rel/index.html', 'rel/assets/app.js']) {
      assert.equal(st(f).gid, TENANT_GID, `${f} in the tenant's group`);
      assert.equal(st(f).uid, platform.uid, `${f} still the platform user's`);
      assert.equal(st(f).mode & 0o777, 0o640, `${f} readable by the group only`);
    }
    for (const d of ['rel', 'rel/assets']) assert.equal(st(d).mode & 0o777, 0o750, `${d} listable by the group only`);
    assert.equal(st('rel/link').gid, TENANT_GID, 'the link itself is re-grouped');
    assert.equal(st('root-owned').gid, 0, 'its target is not');
    assert.equal(st('root-owned').mode & 0o777, 0o600);
  } finally {
    await sealer.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a file the platform user does not own fails the seal with the reason; a killed sealer is replaced', { skip: !isRoot() && 'needs root' }, async () => {
  const platform = ensureSystemUser('tenantry');
  const dir = releaseOwnedBy(platform.uid, platform.gid);
  fs.chownSync(path.join(dir, 'rel/index.html'), 0, 0);
  const sealer = new ReleaseSealer(platform.uid);
  try {
    await assert.rejects(sealer.seal(path.join(dir, 'rel'), TENANT_GID), /sealing the release failed: EPERM/);
    assert.equal(fs.statSync(path.join(dir, 'rel/index.html')).gid, 0, 'root\'s file untouched');
    // The sealer dies (killed, out of memory): the next release gets a new one.
    const ownSealers = fs.readdirSync('/proc').filter((p) => {
      if (!/^\d+$/.test(p)) return false;
      try {
        const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return ppid === process.pid && fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('sealer-process.js');
      } catch {
        return false;
      }
    });
    assert.equal(ownSealers.length, 1, 'one sealer runs for this process');
    for (const p of ownSealers) process.kill(Number(p), 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    fs.chownSync(path.join(dir, 'rel/index.html'), platform.uid, platform.gid);
    await sealer.seal(path.join(dir, 'rel'), TENANT_GID);
    assert.equal(fs.statSync(path.join(dir, 'rel/index.html')).gid, TENANT_GID);
  } finally {
    await sealer.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
