// The platform process and isolation: workers die with it, `strict` starts
// only with every required layer, and without root everything still runs
// with a loud "isolation degraded" line.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, httpRequest, startServerProcess, tempDir } from './helpers/harness.js';
import { apiJson, createTenant, uploadArchive } from './helpers/deploy-archives.js';
import { LOOPBACK_CLOSED, probe, probeSiteArchive } from './helpers/escape-probe.js';
import { isAlive } from './helpers/worker-sites.js';
import { probeCgroups } from '../server/sandbox/cgroups.js';
import { lookupUser, removeSystemUser } from '../server/sandbox/unix-users.js';
import { PLATFORM_USER } from '../server/supervisor/supervisor.js';
import { unmountLeftoverDisks } from '../server/sandbox/tenant-disks.js';
import { DataPaths } from '../server/paths.js';
import { silentLogger } from '../server/log.js';

const isRoot = process.getuid?.() === 0;
/** `tenantry serve` as root creates the platform user; remove it afterwards unless it was there before. */
const platformUserExisted = isRoot && lookupUser(PLATFORM_USER) !== undefined;
after(async () => {
  if (!isRoot || platformUserExisted) return;
  // userdel refuses while an edge of ours is still exiting: give it a moment.
  for (let i = 0; i < 20; i++) {
    try {
      removeSystemUser(PLATFORM_USER);
      return;
    } catch {
      await sleep(250);
    }
  }
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** Users, cgroups and mounted disks a server process made for these tenants (the server itself can no longer clean up). */
async function removeLeftovers(tenantIds: string[], dataDir: string): Promise<void> {
  await unmountLeftoverDisks(new DataPaths(dataDir), silentLogger);
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
    await removeLeftovers([tenant, 'demo'], dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

/** Socket inodes a process holds open. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: 'utf8' }) || '');
    if (m) out.add(m[1]!);
  }
  return out;
}

/** Inodes of listening TCP sockets on this host. */
function listeningInodes(): Set<string> {
  const out = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A') out.add(cols[9]!);
    }
  }
  return out;
}

function uidOfProcess(pid: number): number {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'))!;
  return Number(line.split(/\s+/)[1]);
}

test('as root, the edge runs as the user tenantry with the listening socket, and the root supervisor holds none', async (t) => {
  if (!isRoot) return t.skip('needs root: privilege separation starts from root');
  const dataDir = tempDir();
  const server = await startServerProcess(dataDir, { TENANTRY_ISOLATION: 'auto' });
  try {
    const supervisorPid = server.child.pid!;
    const children = fs.readFileSync(`/proc/${supervisorPid}/task/${supervisorPid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    // Short-lived children (the mount steps of warm workers) may be gone by the time their cmdline is read.
    const cmdline = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, { encoding: 'utf8', flag: 'r' });
    const edgePid = children.find((pid) => {
      try {
        return /edge-process/.test(cmdline(pid));
      } catch {
        return false;
      }
    });
    if (edgePid === undefined) return t.skip(`privilege separation is off on this host: ${server.output().split('\n').find((l) => /privilege/.test(l))}`);
    assert.equal(uidOfProcess(supervisorPid), 0);
    assert.equal(uidOfProcess(edgePid), lookupUser(PLATFORM_USER)!.uid, 'the edge is the unprivileged platform user');
    const listening = listeningInodes();
    assert.deepEqual([...socketInodes(supervisorPid)].filter((i) => listening.has(i)), [], 'the supervisor listens on nothing');
    assert.ok([...socketInodes(edgePid)].some((i) => listening.has(i)), 'the edge holds the listening socket');
    const admin = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    const isolation = JSON.parse(
      (await httpRequest(server.url, { host: 'localhost', path: '/api/v1/isolation', headers: { Authorization: `Bearer ${admin}` } })).body,
    ) as { active: string[] };
    assert.ok(isolation.active.includes('privilege-separation'));
    // The edge cannot read what only a tenant may: its data folder.
    await createTenant(server.url, admin, 'isoedge');
    const dataFolder = path.join(dataDir, 'tenants', 'isoedge', 'data');
    assert.equal(fs.statSync(dataFolder).mode & 0o777, 0o700);
    assert.equal(fs.statSync(dataFolder).uid, lookupUser('tn-isoedge')!.uid);
    const del = await httpRequest(server.url, { host: 'localhost', method: 'DELETE', path: '/api/v1/tenants/isoedge', headers: { Authorization: `Bearer ${admin}` } });
    assert.equal(del.status, 204, del.body);
    assert.equal(lookupUser('tn-isoedge'), undefined, 'deleting the tenant removed its user');
  } finally {
    await server.stop();
    await removeLeftovers(['isoedge', 'demo'], dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('through the privilege-separated server, a tenant route reaches neither its neighbour nor the platform', async (t) => {
  if (!isRoot) return t.skip('needs root: privilege separation starts from root');
  const dataDir = tempDir();
  const server = await startServerProcess(dataDir, { TENANTRY_ISOLATION: 'auto' });
  const [attacker, neighbour] = ['isosa', 'isosb'];
  try {
    if (!/privilege-separation: active/.test(server.output())) return t.skip('privilege separation is off on this host');
    const admin = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    for (const id of [attacker, neighbour]) {
      await createTenant(server.url, admin, id);
      const up = await uploadArchive(server.url, admin, id, probeSiteArchive(id));
      assert.equal(up.status, 201, up.body);
    }
    const secret = path.join(dataDir, 'tenants', neighbour, 'data', 'secret.txt');
    fs.writeFileSync(secret, 'neighbour secret', { mode: 0o600 });
    const owner = lookupUser(`tn-${neighbour}`)!;
    fs.chownSync(secret, owner.uid, owner.gid);
    for (const target of [secret, path.join(dataDir, 'platform.db'), path.join(dataDir, 'secret'), path.join(dataDir, 'admin-token'), '/etc/shadow']) {
      const viaNode = await probe(server.url, attacker, { action: 'read', path: target });
      assert.equal(viaNode.ok, false, `${target}: ${JSON.stringify(viaNode)}`);
      const viaCat = await probe(server.url, attacker, { action: 'run', file: '/bin/cat', args: [target] });
      assert.equal(viaCat.ok, false, `${target} through cat: ${JSON.stringify(viaCat)}`);
    }
    if (/isolation network: active/.test(server.output())) {
      const port = await probe(server.url, attacker, { action: 'tcp', host: '127.0.0.1', port: server.port });
      assert.equal(port.ok, false);
      assert.ok(LOOPBACK_CLOSED.includes(String(port.error)), `the platform's port is out of reach: ${JSON.stringify(port)}`);
    } else {
      t.diagnostic('isolation network is MISSING on this host: the platform port check is left out');
    }
    const me = await probe(server.url, attacker, { action: 'whoami' });
    assert.equal(me.uid, lookupUser(`tn-${attacker}`)!.uid);
    // Nor can the edge itself read what is the tenant's alone.
    const edgeRead = spawnSync('setpriv', [`--reuid=${PLATFORM_USER}`, `--regid=${PLATFORM_USER}`, '--clear-groups', 'cat', secret]);
    assert.notEqual(edgeRead.status, 0, 'the edge user cannot read a tenant\'s data');
    assert.ok((await probe(server.url, neighbour, { action: 'whoami' })).ok, 'the neighbour serves');
  } finally {
    await server.stop();
    await removeLeftovers([attacker, neighbour, 'demo'], dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a tenant user removed by hand is made again on the next worker start, with the data folder given back', async (t) => {
  if (!isRoot) return t.skip('needs root: tenant users are made by root');
  const dataDir = tempDir();
  const server = await startServerProcess(dataDir, { TENANTRY_ISOLATION: 'auto' });
  const tenant = 'isoheal';
  try {
    if (!/isolation users: active/.test(server.output())) return t.skip('tenant users are off on this host');
    const admin = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    await createTenant(server.url, admin, tenant);
    const up = await uploadArchive(server.url, admin, tenant, probeSiteArchive(tenant));
    assert.equal(up.status, 201, up.body);
    const before = await probe(server.url, tenant, { action: 'whoami' });
    assert.ok(before.ok, JSON.stringify(before));
    removeSystemUser(`tn-${tenant}`);
    assert.equal(lookupUser(`tn-${tenant}`), undefined);
    // A setting change replaces the worker: the new one needs the user again.
    const env = await apiJson(server.url, admin, 'PUT', `/api/v1/tenants/${tenant}/env`, { HEAL: '1' });
    assert.ok(env.status < 300, JSON.stringify(env));
    const after = await probe(server.url, tenant, { action: 'write', path: path.join(dataDir, 'tenants', tenant, 'data', 'healed.txt') });
    assert.ok(after.ok, `the route answers again: ${JSON.stringify(after)}`);
    const user = lookupUser(`tn-${tenant}`);
    assert.ok(user, 'the user exists again');
    assert.equal(fs.statSync(path.join(dataDir, 'tenants', tenant, 'data')).uid, user.uid, 'the data folder is the new user\'s');
    assert.match(server.output(), /Unix user was missing; provisioning it again/);
  } finally {
    await server.stop();
    await removeLeftovers([tenant, 'demo'], dataDir);
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
    assert.deepEqual(JSON.parse(health.body), { ok: true });
    const admin = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    const summary = JSON.parse(
      (await httpRequest(server.url, { host: 'localhost', path: '/api/v1/isolation', headers: { Authorization: `Bearer ${admin}` } })).body,
    ) as { mode: string; degraded: boolean; active: string[] };
    assert.equal(summary.mode, 'strict');
    assert.equal(summary.degraded, false);
    for (const layer of ['users', 'namespaces', 'cgroups']) assert.ok(summary.active.includes(layer), layer);
    const anonymous = await httpRequest(server.url, { host: 'localhost', path: '/api/v1/isolation' });
    assert.equal(anonymous.status, 401, 'the layer details are for the admin');
    const detail = await httpRequest(server.url, { host: 'localhost', path: '/api/v1/isolation', headers: { Authorization: `Bearer ${admin}` } });
    assert.equal(detail.status, 200);
    const layers = (JSON.parse(detail.body) as { layers: Array<{ name: string; active: boolean; detail: string }> }).layers;
    assert.ok(layers.length >= 8 && layers.every((l) => typeof l.detail === 'string' && l.detail.length > 0), 'each layer says what it uses or why it is missing');
  } finally {
    if (!(server instanceof Error)) await server.stop();
    await removeLeftovers(['demo'], dataDir);
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
    // Where the disk quota cannot be had, the report says so and that writes are not capped.
    assert.match(run.output, /isolation disk-quota: MISSING \(not running as root: disk images cannot be mounted; a tenant's data folder and \/tmp are not capped\)/);
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
