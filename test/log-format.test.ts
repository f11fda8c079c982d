// TENANTRY_LOG_FORMAT=json: one JSON object per line (time, level, msg,
// fields); text lines otherwise; a bad value stops the start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../server/log.js';
import { ConfigError, loadConfig } from '../server/config.js';
import { startServerProcess, tempDir } from './helpers/harness.js';

test('json lines parse one by one, with fields and child bindings', () => {
  const lines: string[] = [];
  const log = createLogger({ process: 'edge' }, 'debug', (l) => lines.push(l), 'json');
  log.info('tenant created', { tenant: 'acme', count: 3 });
  log.child({ tenant: 'b' }).error('deploy failed', { err: new Error('disk "full"\nline two'), skipped: undefined });
  log.debug('plain');
  assert.equal(lines.length, 3);
  const parsed = lines.map((l) => {
    assert.ok(!l.includes('\n'), 'one line each');
    return JSON.parse(l) as { time: string; level: string; msg: string; fields: Record<string, unknown> };
  });
  assert.equal(parsed[0]!.level, 'info');
  assert.equal(parsed[0]!.msg, 'tenant created');
  assert.deepEqual(parsed[0]!.fields, { process: 'edge', tenant: 'acme', count: 3 });
  assert.ok(!Number.isNaN(Date.parse(parsed[0]!.time)));
  assert.deepEqual(parsed[1]!.fields, { process: 'edge', tenant: 'b', err: 'disk "full"\nline two' });
  assert.equal(parsed[2]!.level, 'debug');
});

test('text lines stay as they were', () => {
  const lines: string[] = [];
  createLogger({}, 'info', (l) => lines.push(l), 'text').warn('worker crashed', { tenant: 'acme' });
  assert.match(lines[0]!, /^\S+Z WARN  worker crashed tenant=acme$/);
});

test('TENANTRY_LOG_FORMAT and TENANTRY_AUDIT_DAYS are validated', () => {
  assert.equal(loadConfig([], { TENANTRY_LOG_FORMAT: 'json' }).logFormat, 'json');
  assert.equal(loadConfig([], {}).logFormat, 'text');
  assert.throws(() => loadConfig([], { TENANTRY_LOG_FORMAT: 'yaml' }), (e: Error) => e instanceof ConfigError && /TENANTRY_LOG_FORMAT.*text, json/.test(e.message));
  assert.equal(loadConfig([], {}).auditDays, 90);
  assert.equal(loadConfig([], { TENANTRY_AUDIT_DAYS: '7' }).auditDays, 7);
  assert.throws(() => loadConfig([], { TENANTRY_AUDIT_DAYS: '0' }), /TENANTRY_AUDIT_DAYS/);
});

test('a running platform logs JSON lines on stderr', async () => {
  const server = await startServerProcess(tempDir(), { TENANTRY_LOG_FORMAT: 'json', TENANTRY_ISOLATION: 'off' });
  let stderr = '';
  server.child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  try {
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await server.stop();
  }
  // Stdout carries the operator's lines (URL, token); the log is on stderr.
  const lines = stderr.split('\n').filter(Boolean);
  assert.ok(lines.length > 0, 'something was logged');
  for (const l of lines) {
    const o = JSON.parse(l) as Record<string, unknown>;
    assert.deepEqual(Object.keys(o), ['time', 'level', 'msg', 'fields'], l);
  }
});
