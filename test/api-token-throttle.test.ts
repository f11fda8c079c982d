// Wrong tokens are throttled per client address and per token prefix, and
// logged; right tokens from elsewhere are not slowed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { loadConfig } from '../server/config.js';
import { createLogger } from '../server/log.js';
import { startServer } from '../server/app/serve.js';
import { FailureThrottle } from '../server/auth/failure-throttle.js';
import { tempDir } from './helpers/harness.js';

function call(port: number, from: string, path: string, authorization: string): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, localAddress: from, agent: false, headers: { Host: 'localhost', Authorization: authorization } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined }));
      })
      .on('error', reject);
  });
}

test('the throttle counts per key and forgets after its window', () => {
  let t = 0;
  const th = new FailureThrottle(createLogger({}, 'error', () => {}), { maxFailures: 3, windowMs: 10_000 }, () => t);
  for (let i = 0; i < 3; i++) {
    assert.equal(th.retryAfter('10.0.0.1', `tnt_wrong${i}`), undefined);
    th.recordFailure('10.0.0.1', `tnt_wrong${i}`);
  }
  assert.equal(th.retryAfter('10.0.0.1', 'tnt_other'), 10);
  assert.equal(th.retryAfter('10.0.0.2', 'tnt_other'), undefined, 'another address is not affected');
  t = 4_000;
  assert.equal(th.retryAfter('10.0.0.1', 'tnt_other'), 6);
  t = 10_001;
  assert.equal(th.retryAfter('10.0.0.1', 'tnt_other'), undefined, 'a new window');
  // One token tried from many addresses is throttled by its prefix.
  for (let i = 0; i < 3; i++) th.recordFailure(`10.1.0.${i}`, 'tnt_leakedtoken-value');
  assert.ok(th.retryAfter('10.9.9.9', 'tnt_leakedtoken-value') !== undefined);
});

test('3,000 wrong tokens: after the limit they get 429 and a log line; right tokens from other addresses still pass', async () => {
  const dataDir = tempDir();
  const lines: string[] = [];
  const config = loadConfig(['--port', '0'], { TENANTRY_DATA_DIR: dataDir, TENANTRY_ISOLATION: 'off' });
  const server = await startServer(config, createLogger({}, 'info', (l) => lines.push(l)), () => {});
  try {
    const admin = `Bearer ${server.platform.secrets.adminToken}`;
    const statuses = new Map<number, number>();
    for (let batch = 0; batch < 30; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 100 }, (_, i) => call(server.port, '127.0.0.2', '/api/v1/tenants', `Bearer tnt_wrong${batch}-${i}`)),
      );
      for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
    }
    assert.equal(statuses.get(401), 20, JSON.stringify([...statuses]));
    assert.equal(statuses.get(429), 2980);
    const throttled = await call(server.port, '127.0.0.2', '/api/v1/tenants', 'Bearer tnt_wrong-again');
    assert.equal(throttled.status, 429);
    assert.ok(Number(throttled.retryAfter) >= 1);
    // The admin from another address is not slowed; from the throttled address it waits too.
    assert.equal((await call(server.port, '127.0.0.1', '/api/v1/tenants', admin)).status, 200);
    assert.equal((await call(server.port, '127.0.0.2', '/api/v1/tenants', admin)).status, 429);
    // git's Basic auth goes through the same throttle.
    const basic = 'Basic ' + Buffer.from('x:tnt_wrong-git').toString('base64');
    assert.equal((await call(server.port, '127.0.0.2', '/git/demo.git/info/refs?service=git-upload-pack', basic)).status, 429);
    assert.equal(lines.filter((l) => /wrong tokens throttled/.test(l) && /127\.0\.0\.2/.test(l)).length, 1, lines.join('\n'));
  } finally {
    await server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
