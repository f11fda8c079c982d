// `tenantry deploy` of a folder, `tenantry deploys`, `tenantry rollback`, run as
// real processes against a real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, runCli, startTestPlatform, tempDir } from './helpers/harness.js';
import { apiJson, createTenant } from './helpers/deploy-archives.js';
import { create as createTar } from 'tar';

function write(root: string, rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
}

test('tenantry deploy ./site, see it live, tenantry deploys, tenantry rollback', async () => {
  const p = await startTestPlatform();
  const site = tempDir('tenantry-dp-site-');
  try {
    await createTenant(p.url, p.adminToken, 'dpcli');
    const token = (await apiJson(p.url, p.adminToken, 'POST', '/api/v1/tenants/dpcli/tokens', { scopes: ['deploy', 'read'] })).json.token as string;
    const env = { TENANTRY_URL: `http://localhost:${p.port}`, TENANTRY_TOKEN: token };
    const page = async (urlPath = '/') => {
      const r = await httpRequest(p.url, { host: 'dpcli.localhost', path: urlPath });
      return `${r.status} ${r.body}`;
    };

    write(site, 'public/index.html', '<h1>cli one</h1>');
    write(site, 'public/drafts/wip.html', 'not yet');
    write(site, '.git/HEAD', 'ref: refs/heads/main');
    write(site, 'node_modules/left-pad/index.js', 'module.exports = 1;');
    write(site, '.tenantryignore', '# drafts stay home\npublic/drafts/\n*.log\n');
    write(site, 'public/debug.log', 'noise');

    const one = await runCli(['deploy', site, '--tenant', 'dpcli', '--message', 'first from the cli'], env);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /deployed d[0-9a-z]+ \(\d+ files, .*\): http:\/\/dpcli\.localhost:\d+\//);
    assert.equal(one.stderr, '', 'no progress bar when stderr is not a terminal');
    assert.match(await page(), /^200 <h1>cli one<\/h1>/);
    assert.match(await page('/drafts/wip.html'), /^404/);
    assert.match(await page('/debug.log'), /^404/);
    const live = path.join(p.dataDir, 'tenants/dpcli/live');
    assert.equal(fs.existsSync(path.join(live, '.git')), false, '.git is never packed');
    assert.equal(fs.existsSync(path.join(live, 'node_modules')), false, 'node_modules only when asked');

    write(site, 'public/index.html', '<h1>cli two</h1>');
    const two = await runCli(['deploy', site, '--tenant', 'dpcli', '--include-node-modules'], env);
    assert.equal(two.code, 0, two.stderr);
    assert.match(await page(), /cli two/);
    assert.ok(fs.existsSync(path.join(live, 'node_modules/left-pad/index.js')));

    const history = await runCli(['deploys', '--tenant', 'dpcli'], env);
    assert.equal(history.code, 0, history.stderr);
    const lines = history.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^\* d[0-9a-z]+ .* upload +live/);
    assert.match(lines[1]!, /^ {2}d[0-9a-z]+ .*first from the cli/);
    assert.match(lines[2]!, /starter/);
    const firstId = /d[0-9a-z]+/.exec(lines[1]!)![0];
    const secondId = /d[0-9a-z]+/.exec(lines[0]!)![0];

    const back = await runCli(['rollback', '--tenant', 'dpcli'], env);
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, new RegExp(`live: ${firstId} http://dpcli\\.localhost`));
    assert.match(await page(), /cli one/);

    const forward = await runCli(['rollback', '--tenant', 'dpcli', secondId], env);
    assert.equal(forward.code, 0, forward.stderr);
    assert.match(await page(), /cli two/);

    // An archive file is uploaded as it is.
    const archive = path.join(site, '..', `${path.basename(site)}.tar.gz`);
    const stage = tempDir('tenantry-dp-arch-');
    write(stage, 'index.html', '<h1>from an archive</h1>');
    await createTar({ gzip: true, cwd: stage, file: archive }, ['index.html']);
    fs.rmSync(stage, { recursive: true, force: true });
    const arch = await runCli(['deploy', archive, '--tenant', 'dpcli', '--json'], env);
    fs.rmSync(archive, { force: true });
    assert.equal(arch.code, 0, arch.stderr);
    assert.equal(JSON.parse(arch.stdout).live, true);
    assert.match(await page(), /from an archive/);

    // Errors: one clear line, non-zero exit.
    const refused = await runCli(['deploy', site, '--tenant', 'dpnosuch'], env);
    assert.notEqual(refused.code, 0);
    assert.equal(refused.stderr.trim().split('\n').length, 1);
    assert.match(refused.stderr, /^tenantry: .*(tenant|403|404)/);
    const noTenant = await runCli(['deploy', site], env);
    assert.equal(noTenant.code, 2);
    assert.match(noTenant.stderr, /--tenant/);
    const empty = tempDir('tenantry-dp-empty-');
    const nothing = await runCli(['deploy', empty, '--tenant', 'dpcli'], env);
    fs.rmSync(empty, { recursive: true, force: true });
    assert.notEqual(nothing.code, 0);
    assert.match(nothing.stderr, /no files/);
  } finally {
    await p.cleanup();
    fs.rmSync(site, { recursive: true, force: true });
  }
});
