// hooks/post-receive: a plain bare repository (as on any other git server)
// deploys its pushes to the deploy branch through the upload API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, REPO_ROOT, startTestPlatform, tempDir } from './helpers/harness.js';
import { commandAvailable, gitAvailable, gitClient, writeTree } from './helpers/git-client.js';

const HOOK = path.join(REPO_ROOT, 'hooks', 'post-receive');

test('the post-receive hook of a plain bare repository deploys the deploy branch', async (t) => {
  if (!gitAvailable()) return t.skip('the git client is not installed (apt-get install git)');
  if (!commandAvailable('curl')) return t.skip('curl is not installed (apt-get install curl)');
  const p = await startTestPlatform();
  const scratch = tempDir('tenantry-hook-');
  try {
    const admin = { Authorization: `Bearer ${p.adminToken}`, 'Content-Type': 'application/json' };
    const created = await httpRequest(p.url, { host: 'localhost', method: 'POST', path: '/api/v1/tenants', headers: admin, body: JSON.stringify({ id: 'gthook' }) });
    assert.equal(created.status, 201, created.body);
    const tokenAnswer = await httpRequest(p.url, {
      host: 'localhost',
      method: 'POST',
      path: '/api/v1/tenants/gthook/tokens',
      headers: admin,
      body: JSON.stringify({ name: 'hook', scopes: ['deploy'] }),
    });
    const token = JSON.parse(tokenAnswer.body).token as string;

    const git = gitClient(path.join(scratch, 'home'));
    const bare = path.join(scratch, 'site.git');
    assert.equal((await git(['init', '-q', '--bare', bare])).code, 0);
    fs.copyFileSync(HOOK, path.join(bare, 'hooks', 'post-receive'));
    fs.chmodSync(path.join(bare, 'hooks', 'post-receive'), 0o755);

    const work = path.join(scratch, 'work');
    await git(['clone', '-q', bare, work]);
    writeTree(work, { 'public/index.html': '<h1>Deployed by the hook</h1>\n' });
    await git(['add', '.'], { cwd: work });
    await git(['commit', '-m', 'Site'], { cwd: work });

    // The settings come from the hook's environment (a git server passes its own down to hooks).
    const settings = { TENANTRY_URL: `http://localhost:${p.port}`, TENANTRY_TENANT: 'gthook', TENANTRY_TOKEN: token };
    const pushed = await git(['push', 'origin', 'main'], { cwd: work, env: settings });
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stderr, /remote: tenantry: deploying [0-9a-f]{7,} to gthook/);
    assert.match(pushed.stderr, /remote: tenantry: deployed \S+: 1 files, \d+ bytes/);
    assert.match(pushed.stderr, /remote: tenantry: live at http:\/\/gthook\.localhost/);
    const deploys = await httpRequest(p.url, { host: 'localhost', path: '/api/v1/tenants/gthook/deploys', headers: admin });
    const newest = JSON.parse(deploys.body).deploys[0];
    assert.equal(newest.live, true);
    assert.match(newest.message, /^[0-9a-f]{7,} Site$/, 'the commit is named in the deploy history');
    const live = await httpRequest(p.url, { host: 'gthook.localhost' });
    assert.equal(live.status, 200);
    assert.match(live.body, /Deployed by the hook/);

    // Another branch: nothing happens.
    await git(['checkout', '-q', '-b', 'draft'], { cwd: work });
    writeTree(work, { 'public/index.html': '<h1>Draft</h1>\n' });
    await git(['commit', '-qam', 'Draft'], { cwd: work });
    const draft = await git(['push', 'origin', 'draft'], { cwd: work, env: settings });
    assert.equal(draft.code, 0, draft.stderr);
    assert.doesNotMatch(draft.stderr, /tenantry:/);
    assert.match((await httpRequest(p.url, { host: 'gthook.localhost' })).body, /Deployed by the hook/);

    // Settings in the repository's git config work too; a refused archive is reported.
    await git(['config', 'tenantry.url', `http://localhost:${p.port}`], { cwd: bare });
    await git(['config', 'tenantry.tenant', 'gthook'], { cwd: bare });
    await git(['config', 'tenantry.token', token], { cwd: bare });
    await git(['config', 'tenantry.branch', 'draft'], { cwd: bare });
    fs.symlinkSync('/etc/passwd', path.join(work, 'public', 'passwd'));
    await git(['add', '.'], { cwd: work });
    await git(['commit', '-qm', 'Link out'], { cwd: work });
    const refused = await git(['push', 'origin', 'draft'], { cwd: work });
    assert.match(refused.stderr, /remote: tenantry: deploy refused \(422\): .*passwd/);
    assert.match((await httpRequest(p.url, { host: 'gthook.localhost' })).body, /Deployed by the hook/);
  } finally {
    await p.cleanup();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});
