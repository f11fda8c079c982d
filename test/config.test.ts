// Settings: flags over variables, defaults, and one clear line for a bad value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadConfig, ConfigError } from '../server/config.js';
import { runCli, tempDir } from './helpers/harness.js';

test('defaults from the contract', () => {
  const c = loadConfig([], {});
  assert.equal(c.port, 8080);
  assert.equal(c.bind, '127.0.0.1');
  assert.equal(c.platformHost, 'localhost');
  assert.equal(c.baseDomain, 'localhost');
  assert.equal(c.isolation, 'auto');
  assert.equal(c.sandbox, 'auto');
  assert.equal(c.dataDir, path.resolve('./data'));
  assert.equal(c.mailFrom, 'no-reply@localhost');
  assert.equal(c.httpsPort, undefined);
});

test('a flag overrides its variable', () => {
  const c = loadConfig(['--port', '9001', '--data-dir=/tmp/x'], { TENANTRY_PORT: '9000', TENANTRY_DATA_DIR: '/tmp/y' });
  assert.equal(c.port, 9001);
  assert.equal(c.dataDir, '/tmp/x');
});

test('TENANTRY_SANDBOX=unshare (or --sandbox unshare) forces the fallback sandbox', () => {
  assert.equal(loadConfig([], { TENANTRY_SANDBOX: 'unshare' }).sandbox, 'unshare');
  assert.equal(loadConfig(['--sandbox', 'auto'], { TENANTRY_SANDBOX: 'unshare' }).sandbox, 'auto');
});

test('bad values name the setting', () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [[], { TENANTRY_PORT: 'eighty' }, /TENANTRY_PORT.*number/],
    [[], { TENANTRY_PORT: '70000' }, /TENANTRY_PORT/],
    [[], { TENANTRY_ISOLATION: 'maybe' }, /TENANTRY_ISOLATION.*auto, strict, off/],
    [[], { TENANTRY_SANDBOX: 'bubblewrap' }, /TENANTRY_SANDBOX \(--sandbox\).*auto, unshare/],
    [[], { TENANTRY_SMTP_URL: 'http://x' }, /TENANTRY_SMTP_URL/],
    [[], { TENANTRY_ADMIN_TOKEN: 'short' }, /TENANTRY_ADMIN_TOKEN/],
    [['--prot', '1'], {}, /unknown option --prot/],
    [['--port'], {}, /--port needs a value/],
  ];
  for (const [argv, env, re] of cases) {
    assert.throws(() => loadConfig(argv, env), (err: unknown) => err instanceof ConfigError && re.test(err.message), `${argv} ${JSON.stringify(env)}`);
  }
});

test('the server refuses to start on a bad setting, with one clear line and no data written', async () => {
  const dir = path.join(tempDir(), 'never-created');
  const r = await runCli(['serve'], { TENANTRY_DATA_DIR: dir, TENANTRY_PORT: 'abc' });
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^tenantry: invalid setting TENANTRY_PORT \(--port\)/);
  const { existsSync } = await import('node:fs');
  assert.equal(existsSync(dir), false);
});
