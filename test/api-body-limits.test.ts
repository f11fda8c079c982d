// Request bodies cannot stall the edge: bodies are read only by routes that
// take one, after the token's scope was checked, with a size and nesting cap.
// The attack: a read-only token posting a megabyte of "[[[[..." as JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startTestPlatform, httpRequest } from './helpers/harness.js';
import { apiJson, createTenant } from './helpers/deploy-archives.js';
import { nestsDeeperThan } from '../server/api/json-body.js';

const NESTED_MB = Buffer.from('['.repeat(512 * 1024) + ']'.repeat(512 * 1024));

test('nesting is measured on the raw bytes, strings skipped', () => {
  assert.equal(nestsDeeperThan(Buffer.from('{"a": [1, {"b": 2}]}'), 3), false);
  assert.equal(nestsDeeperThan(Buffer.from('{"a": [1, {"b": [2]}]}'), 3), true);
  assert.equal(nestsDeeperThan(Buffer.from('{"a": "[[[[[[[[[\\"[[[["}'), 1), false);
});

test("a read-only token's megabyte of nested JSON is refused before it is read, and the edge's loop keeps turning", async (t) => {
  const p = await startTestPlatform();
  try {
    await createTenant(p.url, p.adminToken, 'bodya');
    const made = await apiJson(p.url, p.adminToken, 'POST', '/api/v1/tenants/bodya/tokens', { name: 'ro', scopes: ['read'] });
    assert.equal(made.status, 201);
    const readToken = made.json.token as string;
    const deployMade = await apiJson(p.url, p.adminToken, 'POST', '/api/v1/tenants/bodya/tokens', { name: 'dep', scopes: ['deploy'] });
    const deployToken = deployMade.json.token as string;

    const lag = monitorEventLoopDelay({ resolution: 5 });
    lag.enable();
    const cpuBefore = process.cpuUsage();
    const attack = (token: string, method: string, path: string) =>
      httpRequest(p.url, { host: 'localhost', method, path, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: NESTED_MB });
    const answers = await Promise.all([
      ...Array.from({ length: 6 }, () => attack(readToken, 'POST', '/api/v1/tenants/bodya/deploys/x/activate')),
      ...Array.from({ length: 6 }, () => attack(deployToken, 'PUT', '/api/v1/tenants/bodya/env')),
      ...Array.from({ length: 4 }, () => attack(deployToken, 'POST', '/api/v1/tenants/bodya/tokens')),
    ]);
    lag.disable();
    const cpu = process.cpuUsage(cpuBefore);

    for (const a of answers.slice(0, 6)) assert.equal(a.status, 403, 'no deploy scope: refused before any body is read');
    for (const a of answers.slice(6, 12)) {
      assert.equal(a.status, 400, a.body);
      assert.match(JSON.parse(a.body).error.message, /nests deeper than/);
    }
    for (const a of answers.slice(12)) assert.equal(a.status, 403, 'tokens are the admin\'s: refused before the body');
    // JSON.parse of one such body holds the loop ~200 ms; the nesting scan a few ms. CPU time
    // cannot be inflated by other processes: parsing these 16 bodies would cost seconds of it.
    const cpuMs = (cpu.user + cpu.system) / 1000;
    t.diagnostic(`CPU for the 16 refused bodies: ${cpuMs.toFixed(0)} ms`);
    assert.ok(cpuMs < 1500, `the edge (and this test's client, same process) spent ${cpuMs.toFixed(0)} ms of CPU on 16 MB of refused bodies`);
    // The loop's longest stall, in wall time: on a machine so busy that this process waits for a
    // core longer than the bound, the wait is the scheduler's, not the edge's; then it is reported only.
    const maxMs = lag.max / 1e6;
    const busy = os.loadavg()[0]! > 2 * os.availableParallelism();
    if (busy) t.diagnostic(`the event loop's longest stall was ${maxMs.toFixed(1)} ms with load ${os.loadavg()[0]!.toFixed(1)} on ${os.availableParallelism()} cores: not asserted`);
    else assert.ok(maxMs < 100, `the event loop stalled ${maxMs.toFixed(1)} ms`);

    // Ordinary bodies still work, and a body too large for its route is a 413.
    const set = await apiJson(p.url, deployToken, 'PUT', '/api/v1/tenants/bodya/env', { GREETING: 'hi' });
    assert.equal(set.status, 200);
    const big = await httpRequest(p.url, {
      host: 'localhost',
      method: 'POST',
      path: '/api/v1/tenants',
      headers: { Authorization: `Bearer ${p.adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ id: 'bodyb', pad: 'x'.repeat(64 * 1024) }),
    });
    assert.equal(big.status, 413);
  } finally {
    await p.cleanup();
  }
});
