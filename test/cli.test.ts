// The CLI as a thin client of the HTTP API: exit codes and one-line errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, startTestPlatform, type TestPlatform } from './helpers/harness.js';

let p: TestPlatform;
let env: Record<string, string>;
before(async () => {
  p = await startTestPlatform();
  env = { TENANTRY_URL: `http://localhost:${p.port}`, TENANTRY_TOKEN: p.adminToken };
});
after(() => p.cleanup());

test('tenants create, list, show, delete', async () => {
  const created = await runCli(['tenants', 'create', 'cli-shop', '--domain', 'shop.cli.test'], env);
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stdout, /created cli-shop: http:\/\/cli-shop\.localhost:\d+\//);

  const list = await runCli(['tenants', 'list'], env);
  assert.equal(list.code, 0);
  assert.match(list.stdout, /^cli-shop\s/m);
  assert.match(list.stdout, /^demo\s/m);

  const show = await runCli(['tenants', 'show', 'cli-shop'], env);
  assert.equal(show.code, 0);
  const shown = JSON.parse(show.stdout);
  assert.deepEqual(shown.domains.map((d: { domain: string }) => d.domain).sort(), ['cli-shop.localhost', 'shop.cli.test']);

  const dup = await runCli(['tenants', 'create', 'cli-shop'], env);
  assert.equal(dup.code, 1);
  assert.equal(dup.stderr.trim().split('\n').length, 1);
  assert.match(dup.stderr, /already exists \(tenant_exists, HTTP 409\)/);

  const del = await runCli(['tenants', 'delete', 'cli-shop'], env);
  assert.equal(del.code, 0, del.stderr);
  const gone = await runCli(['tenants', 'show', 'cli-shop'], env);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /tenant_not_found/);
});

test('tokens create prints the token once; it works with its scopes', async () => {
  assert.equal((await runCli(['tenants', 'create', 'cli-tok'], env)).code, 0);
  const r = await runCli(['tokens', 'create', '--tenant', 'cli-tok', '--scope', 'deploy,read'], env);
  assert.equal(r.code, 0, r.stderr);
  const token = r.stdout.trim();
  assert.match(token, /^tnt_\S+$/);
  const asTenant = await runCli(['tenants', 'list'], { ...env, TENANTRY_TOKEN: token });
  assert.equal(asTenant.code, 1);
  assert.match(asTenant.stderr, /forbidden/);
});

test('usage errors and missing tokens exit non-zero with one line', async () => {
  const noToken = await runCli(['tenants', 'list'], { TENANTRY_URL: env.TENANTRY_URL!, TENANTRY_TOKEN: '' });
  assert.equal(noToken.code, 2);
  assert.match(noToken.stderr, /no token/);
  const unknown = await runCli(['frobnicate'], env);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command/);
  // --help after a command prints that command's usage, with no token and no server needed.
  const help = await runCli(['deploy', '--help'], { TENANTRY_URL: 'http://127.0.0.1:1', TENANTRY_TOKEN: '' });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^ {2}deploy \[DIR\|ARCHIVE\] --tenant <id>/m);
  assert.match(help.stdout, /send only the files the store lacks/);
  assert.doesNotMatch(help.stdout, /^ {2}(tenants|domains|rollback) /m, 'only the command asked about');
  const domainsHelp = await runCli(['domains', 'verify', '-h'], env);
  assert.equal(domainsHelp.code, 0);
  assert.match(domainsHelp.stdout, /^ {2}domains verify <domain> --tenant <id>/m);
  const noServer = await runCli(['tenants', 'list'], { TENANTRY_URL: 'http://127.0.0.1:1', TENANTRY_TOKEN: 'x' });
  assert.equal(noServer.code, 1);
  assert.match(noServer.stderr, /cannot reach/);
  assert.equal(noServer.stderr.trim().split('\n').length, 1);
});
