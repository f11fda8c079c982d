// Escape attempts from a deployed tenant route, run as root with every layer
// the host offers. Tenant isoa is the attacker; isob the neighbour it tries to
// reach. Each attempt states what a tenant must not manage; each test skips,
// with the reason, when this host lacks the layer that stops it.
//
// The whole battery runs twice: with every worker started cold for its tenant,
// and with workers taken from the warm pool (started ahead of need, given
// their tenant on the first request: sandbox/warm-workers.ts), which must hold
// every promise a cold start holds.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestPlatform, type TestPlatform } from './helpers/harness.js';
import { apiJson, createTenant, uploadArchive } from './helpers/deploy-archives.js';
import { LOOPBACK_CLOSED, probe, probeSiteArchive } from './helpers/escape-probe.js';
import { isAlive } from './helpers/worker-sites.js';
import type { LayerName } from '../server/sandbox/detect.js';
import { lookupUser, tenantUserName } from '../server/sandbox/unix-users.js';
import { hostSeccompArch, SYSCALL_TABLES } from '../server/sandbox/seccomp-filter.js';

const ATTACKER = 'isoa';
const NEIGHBOUR = 'isob';
/** Warm workers are made for the default memory limit (their heap cap follows it): the attacker keeps it in the warm run. */
const attackerLimits = (start: Start) => ({ memoryMB: start === 'warm' ? 256 : 192, cpuPercent: 20, pids: 64, diskMB: 64 });
type Start = 'cold' | 'warm';
const isRoot = process.getuid?.() === 0;

let p: TestPlatform;
let why: string | undefined = isRoot ? undefined : 'needs root: per-tenant users, namespaces and cgroups are created by root';

function missing(...layers: LayerName[]): string | undefined {
  if (why) return why;
  const off = p.platform.sandbox.report.layers.filter((l) => layers.includes(l.name) && !l.active);
  return off.length ? `this host lacks ${off.map((l) => `${l.name} (${l.detail})`).join('; ')}` : undefined;
}

function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function deployProbe(tenantId: string): Promise<void> {
  const r = await uploadArchive(p.url, p.adminToken, tenantId, probeSiteArchive(tenantId));
  assert.equal(r.status, 201, `deploy of ${tenantId}: ${r.body}`);
  const hello = await probe(p.url, tenantId, { action: 'whoami' });
  assert.ok(hello.ok, `the probe route of ${tenantId} answers: ${JSON.stringify(hello)}`);
}

function liveRelease(tenantId: string): string {
  return fs.realpathSync(p.platform.paths.live(tenantId));
}

/** Runs a program inside the attacker's sandbox. */
function run(file: string, args: string[]) {
  return probe(p.url, ATTACKER, { action: 'run', file, args });
}

/** The tenant's worker processes (node), as the kernel lists them in its cgroups. */
function nodeProcesses(tenantId: string): { pid: number; cmdline: string[] }[] {
  const out: { pid: number; cmdline: string[] }[] = [];
  for (const pid of p.platform.sandbox.tenantPids(tenantId)) {
    try {
      if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'node') continue;
      out.push({ pid, cmdline: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0') });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

// Warm workers come in two shapes: /tmp a link to the tenant's own /tmp folder mounted into the slot (data
// folder and code outside /tmp), or a private tmpfs /tmp (the code or data folder below /tmp), which only
// tenants without a disk image get (a tenant with one must have its /tmp on it).
const runs = [
  { start: 'cold', label: 'started cold', dataDir: () => undefined },
  { start: 'warm', label: 'started warm', dataDir: () => fs.mkdtempSync('/var/tmp/tenantry-test-') },
] as const;
const codeBelowTmp = path.resolve(fileURLToPath(import.meta.url)).startsWith('/tmp/');

for (const { start, label, dataDir } of runs) describe(`a tenant route trying to escape its sandbox (workers ${label})`, () => {
  before(async () => {
    if (why) return;
    p = await startTestPlatform({ TENANTRY_ISOLATION: 'auto', TENANTRY_WARM_WORKERS: start === 'warm' ? '2' : '0' }, dataDir());
    if (!p.platform.sandbox.launcher) {
      why = 'no isolation layer is available on this host';
      return;
    }
    await createTenant(p.url, p.adminToken, ATTACKER, { limits: attackerLimits(start) });
    await createTenant(p.url, p.adminToken, NEIGHBOUR);
    await deployProbe(ATTACKER);
    await deployProbe(NEIGHBOUR);
    // Something worth stealing in the neighbour's data folder, owned by it, as its own code would leave it.
    const secret = path.join(p.platform.paths.tenantData(NEIGHBOUR), 'secret.txt');
    fs.writeFileSync(secret, 'neighbour secret', { mode: 0o600 });
    if (!missing('users')) fs.chownSync(secret, uidOf(`tn-${NEIGHBOUR}`), uidOf(`tn-${NEIGHBOUR}`) && fs.statSync(p.platform.paths.tenantData(NEIGHBOUR)).gid);
  });

  after(async () => {
    if (!p) return;
    for (const t of p.platform.store.tenants.list()) await p.platform.tenants.delete(t.id, 'test').catch(() => {});
    await p.cleanup();
  });

  if (start === 'warm') {
    it('got a warm worker: a process started ahead of need, now its own', async (t) => {
      const skip = missing('filesystem-view', 'users', 'cgroups');
      if (skip) return t.skip(`warm workers need bubblewrap, tenant users and cgroups: ${skip}`);
      if (codeBelowTmp && !missing('disk-quota')) {
        return t.skip('the platform\'s code is below /tmp here, so a warm worker could only offer a tmpfs /tmp, and tenants with a disk image (all of them on this host) start cold: clone the project outside /tmp to check warm starts');
      }
      for (const tenant of [ATTACKER, NEIGHBOUR]) {
        const nodes = nodeProcesses(tenant);
        assert.equal(nodes.length, 1, `${tenant} runs one worker: ${JSON.stringify(nodes)}`);
        assert.ok(nodes[0]!.cmdline.includes('--warm'), `${tenant}'s worker was started warm: ${nodes[0]!.cmdline.join(' ')}`);
        const status = fs.readFileSync(`/proc/${nodes[0]!.pid}/status`, 'utf8');
        const field = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1]?.trim();
        assert.equal(field('Uid'), Array(4).fill(String(uidOf(`tn-${tenant}`))).join('\t'), 'real, effective, saved and file uid are the tenant\'s');
        for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapAmb']) assert.match(field(set) ?? '', /^0+$/, `${set} is empty`);
        assert.equal(field('NoNewPrivs'), '1');
        assert.equal(field('Seccomp'), '2', 'the seccomp filter is on');
        assert.equal(field('Groups'), '', 'no supplementary group');
        const limits = fs.readFileSync(`/proc/${nodes[0]!.pid}/limits`, 'utf8');
        assert.match(limits, new RegExp(`^Max processes\\s+${tenant === ATTACKER ? 64 : 128}\\s+${tenant === ATTACKER ? 64 : 128}\\s`, 'm'), 'RLIMIT_NPROC is the tenant\'s pids limit');
      }
    });
  }

  it('runs as its own user, with no other group', async (t) => {
    const skip = missing('users');
    if (skip) return t.skip(skip);
    const me = await probe(p.url, ATTACKER, { action: 'whoami' });
    assert.equal(me.uid, uidOf(`tn-${ATTACKER}`));
    assert.notEqual(me.uid, 0);
    assert.deepEqual(me.groups, [me.gid]);
  });

  it('cannot read another tenant\'s release or data folder', async (t) => {
    const skip = missing('users');
    if (skip) return t.skip(skip);
    const targets = [path.join(liveRelease(NEIGHBOUR), 'api/probe.js'), path.join(p.platform.paths.tenantData(NEIGHBOUR), 'secret.txt')];
    for (const target of targets) {
      const viaNode = await probe(p.url, ATTACKER, { action: 'read', path: target });
      assert.equal(viaNode.ok, false, `read ${target} through node: ${JSON.stringify(viaNode)}`);
      const viaCat = await run('/bin/cat', [target]);
      assert.equal(viaCat.ok, false, `read ${target} through cat: ${JSON.stringify(viaCat)}`);
      assert.doesNotMatch(String(viaCat.stdout), /neighbour secret/);
    }
    const listing = await run('/bin/ls', ['-a', p.platform.paths.tenantsRoot]);
    assert.doesNotMatch(String(listing.stdout), new RegExp(NEIGHBOUR), 'other tenants are not even listed');
  });

  it('cannot read /etc/shadow, the platform database, the secret or the admin token', async (t) => {
    const skip = missing('users');
    if (skip) return t.skip(skip);
    const { paths } = p.platform;
    for (const target of ['/etc/shadow', paths.database, path.join(paths.root, 'secret'), path.join(paths.root, 'admin-token')]) {
      const viaNode = await probe(p.url, ATTACKER, { action: 'read', path: target });
      assert.equal(viaNode.ok, false, `read ${target} through node: ${JSON.stringify(viaNode)}`);
      const viaCat = await run('/bin/cat', [target]);
      assert.equal(viaCat.ok, false, `read ${target} through cat: ${JSON.stringify(viaCat)}`);
    }
  });

  it('reads no environment but its own through /proc/1/environ', async (t) => {
    const skip = missing('users');
    if (skip) return t.skip(skip);
    const me = await probe(p.url, ATTACKER, { action: 'whoami' });
    const viaNode = await probe(p.url, ATTACKER, { action: 'read', path: '/proc/1/environ' });
    const viaCat = await run('/bin/cat', ['/proc/1/environ']);
    if (!missing('namespaces') && missing('filesystem-view')) {
      // unshare: the worker is the first process of its own pid namespace, so /proc/1 is itself.
      assert.equal(me.pid, 1, 'the worker is pid 1 of its namespace');
      assert.ok(viaCat.ok, JSON.stringify(viaCat));
      const env = new Map(String(viaCat.stdout).split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      assert.equal(env.get('TENANTRY_TENANT'), ATTACKER, 'it is the worker\'s own environment');
      const allowed = new Set(['PATH', 'HOME', 'LANG', 'NODE_ENV', 'TENANTRY_TENANT', 'TENANTRY_DATA']);
      assert.deepEqual([...env.keys()].filter((k) => !allowed.has(k)), [], 'nothing of the platform\'s environment');
    } else {
      // bubblewrap: pid 1 is its init, run by root; no namespaces: the host's init. Neither is the tenant's to read.
      assert.notEqual(me.pid, 1);
      assert.equal(viaNode.ok, false, `read /proc/1/environ through node: ${JSON.stringify(viaNode)}`);
      assert.equal(viaCat.ok, false, `read /proc/1/environ through cat: ${JSON.stringify(viaCat)}`);
    }
  });

  it('cannot write to its own release, but can write to its data folder', async (t) => {
    const skip = missing('users');
    if (skip) return t.skip(skip);
    // The release and data folder where the worker sees them (its working folder and TENANTRY_DATA;
    // a warm worker sees them elsewhere than the host does), and the host's paths as well.
    const me = await probe(p.url, ATTACKER, { action: 'whoami' });
    const hostFile = path.join(liveRelease(ATTACKER), 'api/probe.js');
    const before = fs.readFileSync(hostFile, 'utf8');
    for (const release of new Set([String(me.cwd), liveRelease(ATTACKER)])) {
      const file = path.join(release, 'api/probe.js');
      assert.equal((await probe(p.url, ATTACKER, { action: 'write', path: file })).ok, false, file);
      assert.equal((await run('/bin/sh', ['-c', `echo hacked >> ${file}`])).ok, false, file);
      assert.equal((await probe(p.url, ATTACKER, { action: 'write', path: path.join(release, 'new.html') })).ok, false, release);
    }
    assert.equal(fs.readFileSync(hostFile, 'utf8'), before);
    const own = path.join(String(me.data), 'notes.txt');
    assert.equal((await probe(p.url, ATTACKER, { action: 'write', path: own })).ok, true, own);
    assert.equal(fs.readFileSync(path.join(p.platform.paths.tenantData(ATTACKER), 'notes.txt'), 'utf8'), 'tenant was here', 'it lands in the tenant\'s data folder');
  });

  it('cannot follow a symlink planted in its data folder to another tenant\'s file', async (t) => {
    const skip = missing('users');
    if (skip) return t.skip(skip);
    const link = path.join(p.platform.paths.tenantData(ATTACKER), 'innocent.txt');
    const target = path.join(p.platform.paths.tenantData(NEIGHBOUR), 'secret.txt');
    const r = await probe(p.url, ATTACKER, { action: 'symlinkRead', link, target });
    assert.equal(r.ok, false, JSON.stringify(r));
    const viaCat = await run('/bin/cat', [link]);
    assert.equal(viaCat.ok, false);
    assert.doesNotMatch(String(viaCat.stdout), /neighbour secret/);
  });

  it('cannot become root with process.setuid(0)', async (t) => {
    const skip = missing('users');
    if (skip) return t.skip(skip);
    const r = await probe(p.url, ATTACKER, { action: 'setuid' });
    assert.equal(r.ok, false);
    assert.equal(r.error, 'EPERM');
  });

  it('cannot see or signal another tenant\'s worker', async (t) => {
    const skip = missing('namespaces', 'cgroups');
    if (skip) return t.skip(skip);
    const neighbourPids = p.platform.sandbox.tenantPids(NEIGHBOUR);
    assert.ok(neighbourPids.length > 0, 'the neighbour has a running worker');
    for (const pid of neighbourPids) {
      const r = await probe(p.url, ATTACKER, { action: 'kill', pid });
      assert.equal(r.ok, false, `kill ${pid}: ${JSON.stringify(r)}`);
    }
    assert.ok(neighbourPids.every(isAlive), 'the neighbour\'s processes survive');
    assert.ok((await probe(p.url, NEIGHBOUR, { action: 'whoami' })).ok, 'the neighbour still serves');
  });

  it('sees only its own processes', async (t) => {
    const skip = missing('namespaces');
    if (skip) return t.skip(skip);
    const r = await run('/bin/ls', ['/proc']);
    assert.ok(r.ok, JSON.stringify(r));
    const visible = String(r.stdout).split('\n').filter((n) => /^\d+$/.test(n));
    const onHost = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n));
    assert.ok(visible.length < 10, `sees ${visible.length} processes: ${visible.join(' ')}`);
    assert.ok(onHost.length > visible.length);
  });

  it('has no network: 1.1.1.1 is unreachable at once and the platform\'s port is out of reach', async (t) => {
    const skip = missing('network');
    if (skip) return t.skip(skip);
    const outside = await probe(p.url, ATTACKER, { action: 'tcp', host: '1.1.1.1', port: 80 });
    assert.equal(outside.ok, false);
    assert.equal(outside.error, 'ENETUNREACH', 'no route at all: nothing leaves the machine');
    const platform = await probe(p.url, ATTACKER, { action: 'tcp', host: '127.0.0.1', port: p.port });
    assert.equal(platform.ok, false);
    assert.ok(LOOPBACK_CLOSED.includes(String(platform.error)), `its loopback is its own: ${JSON.stringify(platform)}`);
  });

  it('cannot connect to another tenant\'s socket', async (t) => {
    // Either layer stops it: the file view has no run/ folder; the users layer keeps
    // tenants out of the socket folders (root:platform 0750, sockets platform 0600).
    const skip = missing('filesystem-view') && missing('users');
    if (skip) return t.skip(skip);
    const runDir = p.platform.paths.run(NEIGHBOUR);
    const sockets = fs.readdirSync(runDir).filter((n) => n.endsWith('.sock'));
    assert.ok(sockets.length > 0, 'the neighbour listens on a socket');
    for (const s of sockets) {
      const r = await probe(p.url, ATTACKER, { action: 'unix', path: path.join(runDir, s) });
      assert.equal(r.ok, false, `${s}: ${JSON.stringify(r)}`);
    }
  });

  it('cannot unshare, mount or ptrace', async (t) => {
    const skip = missing('seccomp');
    if (skip) return t.skip(skip);
    for (const args of [['--user', '--map-root-user', '/bin/true'], ['--net', '/bin/true'], ['--mount', '/bin/true']]) {
      const r = await run('/usr/bin/unshare', args);
      assert.equal(r.ok, false, `unshare ${args.join(' ')}: ${JSON.stringify(r)}`);
    }
    const mount = await run('/bin/mount', ['-t', 'tmpfs', 'none', '/tmp']);
    assert.equal(mount.ok, false);
    if (!fs.existsSync('/usr/bin/perl')) return t.skip('perl is not installed: raw system calls not tried');
    const nr = SYSCALL_TABLES[hostSeccompArch()!].numbers;
    const calls: Array<[string, number | undefined, string]> = [
      ['ptrace(PTRACE_ATTACH, 1)', nr.ptrace, '16, 1, 0, 0'],
      ['unshare(CLONE_NEWUSER)', nr.unshare, '0x10000000'],
      ['io_uring_setup', nr.io_uring_setup, '8, 0'],
      ['bpf', nr.bpf, '0, 0, 0'],
      ['keyctl', nr.keyctl, '0, 0'],
    ];
    for (const [name, number, args] of calls) {
      const r = await run('/usr/bin/perl', ['-e', `my $r = syscall(${number}, ${args}); print $r == -1 ? "denied:" . ($!+0) : "allowed"`]);
      assert.equal(r.stdout, 'denied:1', `${name} is refused with EPERM: ${JSON.stringify(r)}`);
    }
  });

  it('is stopped at its pids limit when it spawns 1,000 processes', async (t) => {
    const skip = missing('cgroups');
    if (skip) return t.skip(skip);
    const r = await probe(p.url, ATTACKER, { action: 'spawnMany', count: 1000 });
    assert.equal(r.status, 200, JSON.stringify(r));
    assert.ok(Number(r.spawned) < attackerLimits(start).pids, `spawned ${r.spawned} with a limit of ${attackerLimits(start).pids}`);
    assert.ok(Number(r.failed) > 0);
    assert.equal(r.firstError, 'EAGAIN');
    assert.ok((await probe(p.url, NEIGHBOUR, { action: 'whoami' })).ok, 'the neighbour still serves');
  });

  it('has a private /tmp with a size cap', async (t) => {
    const skip = missing('filesystem-view');
    if (skip) return t.skip(skip);
    const r = await probe(p.url, ATTACKER, { action: 'fillTmp' });
    assert.equal(r.ok, false);
    assert.equal(r.error, 'ENOSPC');
    assert.ok(Number(r.written) <= attackerLimits(start).memoryMB * 1024 * 1024, `wrote ${r.written} bytes`);
  });

  it('is held to its CPU share by a busy loop, and the neighbour keeps answering', async (t) => {
    const skip = missing('cgroups');
    if (skip) return t.skip(skip);
    const busy = probe(p.url, ATTACKER, { action: 'busy', ms: 2000 });
    await sleep(300);
    const neighbour = await probe(p.url, NEIGHBOUR, { action: 'whoami' });
    const r = await busy;
    assert.ok(neighbour.ok, 'the neighbour answers during the busy loop');
    const share = Number(r.cpuMs) / Number(r.wallMs);
    assert.ok(share < (attackerLimits(start).cpuPercent / 100) * 2, `used ${(share * 100).toFixed(0)}% of a core with a quota of ${attackerLimits(start).cpuPercent}%`);
  });

  it('is killed when it allocates 2 GB, while the neighbour serves, and comes back', async (t) => {
    const skip = missing('cgroups');
    if (skip) return t.skip(skip);
    const pidsBefore = p.platform.sandbox.tenantPids(ATTACKER);
    const r = await probe(p.url, ATTACKER, { action: 'allocate', mb: 2048 });
    assert.notEqual(r.status, 200, `the allocation must not succeed: ${JSON.stringify(r)}`);
    assert.ok((await probe(p.url, NEIGHBOUR, { action: 'whoami' })).ok, 'the neighbour still serves');
    // The kernel's OOM kill and the cgroup teardown finish a moment after the edge sees the connection drop.
    for (let i = 0; i < 50 && pidsBefore.some(isAlive); i++) await sleep(100);
    assert.deepEqual(pidsBefore.filter(isAlive), [], 'the old worker is gone');
    let again = await probe(p.url, ATTACKER, { action: 'whoami' });
    for (let i = 0; i < 20 && !again.ok; i++) {
      await sleep(500);
      again = await probe(p.url, ATTACKER, { action: 'whoami' });
    }
    assert.ok(again.ok, `the attacker's site serves again after a restart: ${JSON.stringify(again)}`);
  });

  it('sees only its own environment variables; loader variables never pass', async (t) => {
    if (why) return t.skip(why);
    const set = await apiJson(p.url, p.adminToken, 'PUT', `/api/v1/tenants/${ATTACKER}/env`, { GREETING: 'hello', LD_PRELOAD: '/nonexistent/evil.so' });
    assert.equal(set.status, 200, JSON.stringify(set.json));
    let r = await probe(p.url, ATTACKER, { action: 'env' });
    for (let i = 0; i < 20 && (r.env as Record<string, string> | undefined)?.GREETING !== 'hello'; i++) {
      await sleep(250);
      r = await probe(p.url, ATTACKER, { action: 'env' });
    }
    const env = r.env as Record<string, string>;
    assert.equal(env.GREETING, 'hello');
    assert.equal(env.LD_PRELOAD, undefined);
    assert.equal(env.TENANTRY_TENANT, ATTACKER);
    const allowed = new Set(['PATH', 'HOME', 'LANG', 'NODE_ENV', 'TENANTRY_TENANT', 'TENANTRY_DATA', 'GREETING']);
    assert.deepEqual(Object.keys(env).filter((k) => !allowed.has(k)), [], 'nothing of the platform\'s environment');
  });

  it('runs its worker under the limits set with PATCH /api/v1/tenants/:id', async (t) => {
    const skip = missing('cgroups');
    if (skip) return t.skip(skip);
    const limits = { memoryMB: 160, cpuPercent: 30, pids: 96 };
    const r = await apiJson(p.url, p.adminToken, 'PATCH', `/api/v1/tenants/${ATTACKER}`, { limits });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.ok((await probe(p.url, ATTACKER, { action: 'whoami' })).ok);
    assert.deepEqual(p.platform.sandbox.workerLimits(ATTACKER), [limits], 'the kernel holds the new limits for the one running worker');
  });

  it('gives a tenant with a 40-character id its own user too (the name shortened with a hash)', async (t) => {
    const skip = missing('users');
    if (skip) return t.skip(skip);
    const long = 'isolong-' + 'x'.repeat(31) + 'z';
    await createTenant(p.url, p.adminToken, long);
    await deployProbe(long);
    const user = tenantUserName(long);
    assert.ok(user.length <= 32, user);
    const me = await probe(p.url, long, { action: 'whoami' });
    assert.equal(me.uid, lookupUser(user)!.uid);
    const del = await apiJson(p.url, p.adminToken, 'DELETE', `/api/v1/tenants/${long}`);
    assert.ok(del.status === 204 || del.status === 200);
    assert.equal(lookupUser(user), undefined);
  });

  it('reaches the network, the host\'s loopback included, only when its network is "all"', async (t) => {
    const skip = missing('network');
    if (skip) return t.skip(skip);
    const open = 'isonet';
    await createTenant(p.url, p.adminToken, open, { network: 'all' });
    await deployProbe(open);
    const platform = await probe(p.url, open, { action: 'tcp', host: '127.0.0.1', port: p.port });
    assert.equal(platform.ok, true, `network "all" shares the host's network: ${JSON.stringify(platform)}`);
    const closed = await probe(p.url, ATTACKER, { action: 'tcp', host: '127.0.0.1', port: p.port });
    assert.equal(closed.ok, false, 'the default stays closed');
    const del = await apiJson(p.url, p.adminToken, 'DELETE', `/api/v1/tenants/${open}`);
    assert.ok(del.status === 204 || del.status === 200);
  });

  it('leaves nothing running when deleted, not even a detached setsid child', async (t) => {
    const skip = missing('cgroups', 'users');
    if (skip) return t.skip(skip);
    const victim = 'isoc';
    await createTenant(p.url, p.adminToken, victim);
    await deployProbe(victim);
    const d = await probe(p.url, victim, { action: 'detach' });
    assert.ok(d.ok, JSON.stringify(d));
    const pids = p.platform.sandbox.tenantPids(victim);
    assert.ok(pids.length >= 2, `the worker and its detached child: ${pids.join(' ')}`);
    const del = await apiJson(p.url, p.adminToken, 'DELETE', `/api/v1/tenants/${victim}`);
    assert.ok(del.status === 204 || del.status === 200, JSON.stringify(del));
    assert.deepEqual(pids.filter(isAlive), [], 'every process of the tenant is gone');
    assert.deepEqual(p.platform.sandbox.tenantPids(victim), []);
    assert.throws(() => execFileSync('getent', ['passwd', `tn-${victim}`], { stdio: 'ignore' }), 'its user is removed');
    assert.throws(() => execFileSync('getent', ['group', `tn-${victim}`], { stdio: 'ignore' }), 'its group is removed');
  });
});
