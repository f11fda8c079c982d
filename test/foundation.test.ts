// Foundation: a fresh data folder starts, serves tenants by Host, and survives a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, startServerProcess, startTestPlatform, tempDir } from './helpers/harness.js';

test('a fresh data folder: start, create a tenant, fetch its page by Host, restart, still served', async () => {
  const dataDir = tempDir();
  let server = await startServerProcess(dataDir);
  try {
    assert.match(server.output(), /Admin token \(shown once/);
    assert.match(server.output(), /Demo tenant: http:\/\/demo\.localhost:\d+\//);
    const token = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    assert.equal(fs.statSync(path.join(dataDir, 'admin-token')).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(dataDir, 'secret')).mode & 0o777, 0o600);

    const demo = await httpRequest(server.url, { host: 'demo.localhost' });
    assert.equal(demo.status, 200);
    assert.match(demo.body, /<h1>demo<\/h1>/);

    const created = await httpRequest(server.url, {
      host: 'localhost',
      method: 'POST',
      path: '/api/v1/tenants',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ id: 'acme' }),
    });
    assert.equal(created.status, 201, created.body);
    assert.equal(JSON.parse(created.body).id, 'acme');

    const page = await httpRequest(server.url, { host: `acme.localhost:${server.port}` });
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type'] ?? '', /^text\/html; charset=utf-8/);
    assert.match(page.body, /<h1>acme<\/h1>/);

    // Ctrl-C: exit 0, and the log says it is done, not only that it began.
    assert.equal(await server.stop('SIGINT'), 0);
    assert.match(server.output(), /stopping signal=SIGINT[\s\S]*stopped: /);
    server = await startServerProcess(dataDir);
    assert.doesNotMatch(server.output(), /Admin token/, 'the admin token is printed on the first start only');
    const again = await httpRequest(server.url, { host: 'acme.localhost' });
    assert.equal(again.status, 200);
    assert.match(again.body, /<h1>acme<\/h1>/);
    const list = await httpRequest(server.url, { host: 'localhost', path: '/api/v1/tenants', headers: { Authorization: `Bearer ${token}` } });
    assert.deepEqual(
      JSON.parse(list.body).tenants.map((t: { id: string }) => t.id),
      ['acme', 'demo'],
    );
    // SIGHUP (a closed terminal) stops it gracefully too, never abruptly.
    assert.equal(await server.stop('SIGHUP'), 0);
    assert.match(server.output(), /stopping signal=SIGHUP[\s\S]*stopped: /);
  } finally {
    await server.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('unknown hosts get a plain 404 naming no tenant; static basics', async () => {
  const p = await startTestPlatform();
  try {
    const unknown = await httpRequest(p.url, { host: 'nobody.example.com' });
    assert.equal(unknown.status, 404);
    assert.doesNotMatch(unknown.body, /demo/);
    const missing = await httpRequest(p.url, { host: 'demo.localhost', path: '/no/such/page' });
    assert.equal(missing.status, 404);
    assert.match(missing.body, /Page not found/, 'the release 404.html is served');
    const css = await httpRequest(p.url, { host: 'demo.localhost', path: '/style.css' });
    assert.equal(css.status, 200);
    assert.match(css.headers['content-type'] ?? '', /^text\/css/);
    const health = await httpRequest(p.url, { host: 'localhost', path: '/healthz' });
    assert.deepEqual(JSON.parse(health.body), { ok: true });
    assert.ok(health.headers['x-content-type-options'], 'platform responses carry security headers');
    const home = await httpRequest(p.url, { host: 'localhost', path: '/' });
    assert.equal(home.status, 200);
    assert.match(home.body, /Tenantry is running/);
    assert.ok(home.headers['content-security-policy'], 'the platform page carries helmet headers');
    const tenantJson = await httpRequest(p.url, { host: 'demo.localhost', path: '/api/hello.js' });
    assert.notEqual(tenantJson.status, 200, 'route source code is never served as a static file');
  } finally {
    await p.cleanup();
  }
});
