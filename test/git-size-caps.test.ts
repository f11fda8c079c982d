// git pushes have a size cap: one pack no larger than an archive upload
// (archiveMB), and the repository, whichever branch a push is for, within the
// tenant's diskMB. Refused pushes say why on `remote:` lines and store nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startTestPlatform, tempDir } from './helpers/harness.js';
import { apiJson } from './helpers/deploy-archives.js';
import { gitAvailable, gitClient, writeTree } from './helpers/git-client.js';
import { diskUsage } from '../server/git/repository-size.js';

const MiB = 1024 * 1024;

test('a pack over archiveMB, and pushes that would take the repository past diskMB, are refused with the reason', { skip: gitAvailable() ? false : 'git is not installed' }, async () => {
  const p = await startTestPlatform();
  const work = tempDir('tenantry-git-size-');
  try {
    assert.equal((await apiJson(p.url, p.adminToken, 'POST', '/api/v1/tenants', { id: 'gitcap', limits: { archiveMB: 6, diskMB: 16 } })).status, 201);
    const token = (await apiJson(p.url, p.adminToken, 'POST', '/api/v1/tenants/gitcap/tokens', { name: 'git', scopes: ['deploy'] })).json.token as string;
    const git = gitClient(path.join(work, 'home'));
    const repo = path.join(work, 'repo');
    fs.mkdirSync(repo);
    await git(['init', '-q'], { cwd: repo });
    await git(['remote', 'add', 'origin', `http://x:${token}@localhost:${p.port}/git/gitcap.git`], { cwd: repo });
    const commitRandom = async (name: string, bytes: number) => {
      fs.writeFileSync(path.join(repo, name), crypto.randomBytes(bytes)); // random: git cannot compress it
      await git(['add', name], { cwd: repo });
      await git(['commit', '-qm', name], { cwd: repo });
    };
    writeTree(repo, { 'index.html': '<h1>v1</h1>' });
    await git(['add', '.'], { cwd: repo });
    await git(['commit', '-qm', 'site'], { cwd: repo });
    await git(['checkout', '-qb', 'assets'], { cwd: repo });
    const repoDir = path.join(p.dataDir, 'git', 'gitcap.git');

    // One pack larger than archiveMB: refused by git itself, nothing stored.
    await commitRandom('huge.bin', 7 * MiB);
    const huge = await git(['push', 'origin', 'assets'], { cwd: repo });
    assert.notEqual(huge.code, 0, huge.stderr);
    assert.match(huge.stderr, /exceeds maximum allowed size/);
    await git(['reset', '-q', '--hard', 'HEAD~1'], { cwd: repo });

    // Pushes to a branch that is not deployed still count: three of 4.5 MiB fit in 16 MiB, a fourth does not.
    for (const name of ['a.bin', 'b.bin', 'c.bin']) {
      await commitRandom(name, 4.5 * MiB);
      const ok = await git(['push', 'origin', 'assets'], { cwd: repo });
      assert.equal(ok.code, 0, ok.stderr);
    }
    const before = await diskUsage(repoDir);
    await commitRandom('d.bin', 4.5 * MiB);
    const over = await git(['push', 'origin', 'assets'], { cwd: repo });
    assert.notEqual(over.code, 0);
    assert.match(over.stderr, /remote: .*disk limit of 16 MiB|exceeds maximum allowed size/, over.stderr);
    const after = await diskUsage(repoDir);
    assert.ok(after <= 16 * MiB, `repository is ${(after / MiB).toFixed(1)} MiB`);
    assert.ok(after - before < MiB, 'the refused objects were not kept');
  } finally {
    await p.cleanup();
    fs.rmSync(work, { recursive: true, force: true });
  }
});
