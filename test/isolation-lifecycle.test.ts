// The platform process and isolation: workers die with it, `strict` starts
// only with every required layer, and without root everything still runs
// with a loud "isolation degraded" line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, httpRequest, startServerProcess, tempDir } from './helpers/harness.js';
import { createTenant, uploadArchive } from './helpers/deploy-archives.js';
import { probe, probeSiteArchive } from './helpers/escape-probe.js';
import { probeCgroups } from '../server/sandbox/cgroups.js';
import { removeSystemUser } from '../server/sandbox/unix-users.js';

const isRoot = process.getuid?.() === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Users and cgroups a server process made for these tenants (the server itself can no longer clean up). */
async function removeLeftovers(tenantIds: string[]): Promise<void> {
  const cg = probeCgroups().driver;
  for (const id of tenantIds) {
    await cg?.removeTenant(id);
    removeSystemUser(`tn-${id}`);
  }
}

test('kill -9 of the platform leaves no worker behind, not even a detached child', async (t) => {
  if (!isRoot) return t.skip('needs root: the sandbox and cgroups are created by root');
  const cg = probeCgroups().driver;
  if (!cg) return t.skip(`no usable cgroups: ${probeCgroups().reason}`);
  const dataDir = tempDir();
  const tenant = 'isok';
  const server = await startServerProcess(dataDir, { TENANTRY_ISOLATION: 'auto' });
  try {
    const admin = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    await createTenant(server.url, admin, tenant);
    const up = await uploadArchive(server.url, admin, tenant, probeSiteArchive(tenant));
    assert.equal(up.status, 201, up.body);
    const d = await probe(server.url, tenant, { action: 'detach' });
    assert.ok(d.ok, JSON.stringify(d));
    const pids = cg.tenantPids(tenant);
    assert.ok(pids.length >= 2, `the worker and its detached child run: ${pids.join(' ')}`);
    await server.stop('SIGKILL');
    for (let i = 0; i < 50 && pids.some(isAlive); i++) await sleep(100);
    assert.deepEqual(pids.filter(isAlive), [], 'every process of the tenant died with the platform');
  } finally {
    await server.stop('SIGKILL');
    await removeLeftovers([tenant, 'demo']);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('TENANTRY_ISOLATION=strict starts when users, namespaces and cgroups are available', async (t) => {
  if (!isRoot) return t.skip('needs root');
  const dataDir = tempDir();
  const server = await startServerProcess(dataDir, { TENANTRY_ISOLATION: 'strict' }).catch((err: Error) => err);
  try {
    if (server instanceof Error) {
      if (/refusing to start/.test(server.message)) return t.skip(`this host lacks a required layer: ${server.message.split('\n').find((l) => /refusing/.test(l))}`);
      throw server;
    }
    assert.match(server.output(), /isolation users: active/);
    assert.doesNotMatch(server.output(), /isolation degraded/);
    const health = await httpRequest(server.url, { host: 'localhost', path: '/healthz' });
    const body = JSON.parse(health.body) as { ok: boolean; isolation: { mode: string; degraded: boolean; active: string[] } };
    assert.equal(body.ok, true);
    assert.equal(body.isolation.mode, 'strict');
    assert.equal(body.isolation.degraded, false);
    for (const layer of ['users', 'namespaces', 'cgroups']) assert.ok(body.isolation.active.includes(layer), layer);
  } finally {
    if (!(server instanceof Error)) await server.stop();
    await removeLeftovers(['demo']);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

/** Runs `tenantry serve` as the unprivileged user nobody until it prints its URL or exits. */
function serveAsNobody(dataDir: string, isolation: string): Promise<{ code: number | null; output: string; stop(): void }> {
  return new Promise((resolve) => {
    const child = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, CLI, 'serve', '--port', '0'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TENANTRY_DATA_DIR: dataDir, TENANTRY_ISOLATION: isolation },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const stop = () => child.kill('SIGTERM');
    const timer = setTimeout(() => resolve({ code: null, output: output + '\n(timed out)', stop }), 20_000);
    const onData = (c: Buffer) => {
      output += c.toString();
      if (/Tenantry is serving/.test(output)) {
        clearTimeout(timer);
        resolve({ code: null, output, stop });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output, stop });
    });
  });
}

function nobodyDataDir(): string {
  const dir = tempDir();
  const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
  const nogroup = Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim());
  fs.chownSync(dir, nobody, nogroup);
  return dir;
}

test('without root, the platform runs and says loudly that isolation is degraded', async (t) => {
  if (!isRoot) return t.skip('needs root to start the platform as another, unprivileged user');
  const dataDir = nobodyDataDir();
  const run = await serveAsNobody(dataDir, 'auto');
  try {
    assert.match(run.output, /Tenantry is serving/, run.output);
    assert.match(run.output, /isolation degraded: users, namespaces, cgroups|isolation degraded: users, cgroups/, run.output);
    assert.match(run.output, /isolation users: MISSING \(not running as root/);
  } finally {
    run.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('without root, TENANTRY_ISOLATION=strict refuses to start with one clear line', async (t) => {
  if (!isRoot) return t.skip('needs root to start the platform as another, unprivileged user');
  const dataDir = nobodyDataDir();
  const run = await serveAsNobody(dataDir, 'strict');
  try {
    assert.notEqual(run.code, 0, run.output);
    assert.notEqual(run.code, null, `it must exit: ${run.output}`);
    const last = run.output.trim().split('\n').pop()!;
    assert.match(last, /^tenantry: TENANTRY_ISOLATION=strict: refusing to start without users \(not running as root/, run.output);
  } finally {
    run.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
