// `tenantry deploy` of a folder, `tenantry deploys`, `tenantry rollback`, run as
// real processes against a real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, runCli, startTestPlatform, tempDir } from './helpers/harness.js';
import { apiJson, createTenant } from './helpers/deploy-archives.js';
import { create as createTar } from 'tar';
import http from 'node:http';

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

test('tenantry deploy of a folder sends only the files that changed; links or --tar send an archive', async () => {
  const p = await startTestPlatform();
  const site = tempDir('tenantry-dp-incr-');
  try {
    await createTenant(p.url, p.adminToken, 'dpincr');
    const token = (await apiJson(p.url, p.adminToken, 'POST', '/api/v1/tenants/dpincr/tokens', { scopes: ['deploy', 'read'] })).json.token as string;
    const env = { TENANTRY_URL: `http://localhost:${p.port}`, TENANTRY_TOKEN: token };
    const page = async (urlPath = '/') => (await httpRequest(p.url, { host: 'dpincr.localhost', path: urlPath })).body;
    for (let i = 0; i < 30; i++) write(site, `public/pages/page-${i}.html`, `<p>page ${i}</p>`);
    write(site, 'public/index.html', '<h1>first</h1>');
    write(site, '.git/HEAD', 'ref: refs/heads/main');

    const one = await runCli(['deploy', site, '--tenant', 'dpincr'], env);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /deployed d[0-9a-z]+ \(31 files, .*; 31 uploaded, 0 unchanged\): http:\/\/dpincr\.localhost:\d+\//);
    assert.equal(await page(), '<h1>first</h1>');
    assert.equal(await page('/pages/page-7.html'), '<p>page 7</p>');

    write(site, 'public/index.html', '<h1>second</h1>');
    const two = await runCli(['deploy', site, '--tenant', 'dpincr', '--message', 'one line changed'], env);
    assert.equal(two.code, 0, two.stderr);
    assert.match(two.stdout, /\(31 files, .*; 1 uploaded, 30 unchanged\)/);
    assert.equal(await page(), '<h1>second</h1>');
    const history = await runCli(['deploys', '--tenant', 'dpincr'], env);
    assert.match(history.stdout.split('\n')[0]!, /^\* d[0-9a-z]+ .*one line changed/);

    // --json gives the API's answer.
    const json = await runCli(['deploy', site, '--tenant', 'dpincr', '--json'], env);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).uploaded, 0);

    // A symbolic link travels only in an archive: the folder goes as a tar.gz.
    fs.symlinkSync('index.html', path.join(site, 'public/home.html'));
    const linked = await runCli(['deploy', site, '--tenant', 'dpincr'], env);
    assert.equal(linked.code, 0, linked.stderr);
    assert.doesNotMatch(linked.stdout, /uploaded/);
    assert.equal(await page('/home.html'), '<h1>second</h1>');
    const tarred = await runCli(['deploy', site, '--tenant', 'dpincr', '--tar'], env);
    assert.equal(tarred.code, 0, tarred.stderr);
    assert.doesNotMatch(tarred.stdout, /uploaded/);

    // A refused manifest: one clear line.
    fs.rmSync(path.join(site, 'public/home.html'));
    write(site, '.tenantry/index.json', '{}');
    const refused = await runCli(['deploy', site, '--tenant', 'dpincr'], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^tenantry: The archive was refused: names reserved for the platform .*\(archive_invalid, HTTP 422\)\n$/);
    assert.equal(await page(), '<h1>second</h1>', 'the live release keeps serving');
  } finally {
    await p.cleanup();
    fs.rmSync(site, { recursive: true, force: true });
  }
});

test('tenantry deploy falls back to an archive when the server takes no manifests', async () => {
  const site = tempDir('tenantry-dp-old-');
  const seen: string[] = [];
  // A server of an earlier version: JSON bodies get 415, archives are taken.
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.headers['content-type']}`);
    req.resume();
    req.on('end', () => {
      res.setHeader('Content-Type', 'application/json');
      if (req.headers['content-type'] === 'application/json') {
        res.statusCode = 415;
        res.end(JSON.stringify({ error: { code: 'unsupported_media_type', message: 'Unsupported content type.' } }));
        return;
      }
      res.statusCode = 201;
      res.end(JSON.stringify({ id: 'dold', live: true, url: 'http://old.localhost/', files: 1, bytes: 5 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    write(site, 'index.html', 'hello');
    const r = await runCli(['deploy', site, '--tenant', 'old'], { TENANTRY_URL: `http://127.0.0.1:${(server.address() as { port: number }).port}`, TENANTRY_TOKEN: 'x' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^deployed dold \(1 files, 5 B\): http:\/\/old\.localhost\/\n$/);
    assert.deepEqual(seen, ['POST application/json', 'POST application/gzip']);
  } finally {
    server.close();
    fs.rmSync(site, { recursive: true, force: true });
  }
});
