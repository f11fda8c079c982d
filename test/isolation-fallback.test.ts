// Without bubblewrap the launcher falls back to util-linux: `unshare` for the
// namespaces and `setpriv` for the user. No file view and no seccomp then,
// but the tenant's user, its own process list and no network remain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { tempDir } from './helpers/harness.js';
import { PROBE_ROUTE_SOURCE } from './helpers/escape-probe.js';
import { silentLogger } from '../server/log.js';
import { DataPaths } from '../server/paths.js';
import { probeCgroups } from '../server/sandbox/cgroups.js';
import { detectIsolation } from '../server/sandbox/detect.js';
import { applyTenantFileModes, hardenDataFolder } from '../server/sandbox/file-modes.js';
import { platformCodePaths } from '../server/sandbox/sandbox.js';
import { SandboxedLauncher } from '../server/sandbox/sandboxed-launcher.js';
import { ensureSystemUser, findTool, removeSystemUser } from '../server/sandbox/unix-users.js';
import { WORKER_ENTRY } from '../server/launch/entries.js';
import { DEFAULT_LIMITS } from '../server/model/limits.js';

function post(socketPath: string, body: unknown): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method: 'POST', path: '/api/probe', headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(JSON.parse(text) as Record<string, unknown>));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test('without bubblewrap, unshare and setpriv still give the tenant its own user, processes and no network', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root: users and namespaces are created by root');
  const tools = { sh: findTool('sh') ?? '/bin/sh', setpriv: findTool('setpriv'), prlimit: findTool('prlimit'), unshare: findTool('unshare') };
  if (!tools.setpriv || !tools.unshare) return t.skip('util-linux setpriv and unshare are not installed');
  const id = 'isofallback';
  const dataDir = tempDir();
  const paths = new DataPaths(dataDir);
  const cgroups = probeCgroups().driver;
  const platform = { uid: 0, gid: 0 };
  const user = ensureSystemUser(`tn-${id}`);
  try {
    fs.writeFileSync(path.join(dataDir, 'secret'), 'platform secret\n', { mode: 0o600 });
    hardenDataFolder(paths, platform);
    const release = paths.release(id, 'd1');
    fs.mkdirSync(path.join(release, 'api'), { recursive: true });
    fs.writeFileSync(path.join(release, 'api/probe.js'), PROBE_ROUTE_SOURCE);
    applyTenantFileModes(paths, id, user, platform);
    const launcher = new SandboxedLauncher({
      dataRoot: dataDir,
      tools,
      namespaces: 'unshare',
      users: true,
      cgroups,
      seccompProgram: undefined,
      platformCode: platformCodePaths(),
      nodeBinary: process.execPath,
      nodePermissions: false,
      platform,
      log: silentLogger,
    });
    const socketPath = path.join(paths.run(id), 'http-1.sock');
    const worker = await launcher.launch({
      tenantId: id,
      releaseDir: release,
      dataDir: paths.tenantData(id),
      runDir: paths.run(id),
      socketPath,
      logFile: path.join(paths.logs(id), 'site.log'),
      entry: WORKER_ENTRY,
      args: ['--release', release],
      env: { TENANTRY_TENANT: id },
      limits: { ...DEFAULT_LIMITS },
      network: 'none',
    });
    try {
      for (let i = 0; i < 100 && !fs.existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 100));
      const me = await post(socketPath, { action: 'whoami' });
      assert.equal(me.uid, user.uid);
      assert.deepEqual(me.groups, [user.gid]);
      const ps = await post(socketPath, { action: 'run', file: '/bin/ls', args: ['/proc'] });
      const visible = String(ps.stdout).split('\n').filter((n) => /^\d+$/.test(n));
      assert.ok(visible.length < 10, `sees ${visible.length} processes`);
      const net = await post(socketPath, { action: 'tcp', host: '1.1.1.1', port: 80 });
      assert.equal(net.error, 'ENETUNREACH');
      const shadow = await post(socketPath, { action: 'read', path: '/etc/shadow' });
      assert.equal(shadow.ok, false);
      const secret = await post(socketPath, { action: 'read', path: path.join(dataDir, 'secret') });
      assert.equal(secret.ok, false);
      assert.equal(secret.error, 'EACCES');
    } finally {
      await worker.kill();
    }
    const exit = await worker.exited;
    assert.equal(exit.signal, 'SIGKILL');
  } finally {
    await cgroups?.removeTenant(id);
    removeSystemUser(`tn-${id}`);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('TENANTRY_SANDBOX=unshare makes the platform use the fallback even where bubblewrap works, and says so', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root: unshare gives namespaces to root only');
  if (!findTool('unshare')) return t.skip('util-linux unshare is not installed');
  const { report, capabilities } = detectIsolation({ mode: 'auto', privilegeSeparated: false, sandbox: 'unshare' });
  const layer = (name: string) => report.layers.find((l) => l.name === name)!;
  assert.equal(capabilities.namespaces, 'unshare');
  assert.equal(layer('namespaces').active, true);
  assert.match(layer('namespaces').detail, /^unshare .*TENANTRY_SANDBOX=unshare/);
  assert.equal(layer('network').active, true);
  assert.equal(layer('filesystem-view').active, false);
  assert.match(layer('filesystem-view').detail, /TENANTRY_SANDBOX=unshare/);
  assert.equal(layer('seccomp').active, false);
  assert.equal(capabilities.seccompProgram, undefined);
});

test('platform code reached through a symbolic link is allowed at both paths (Node loads modules by their real path)', () => {
  const root = fs.realpathSync(tempDir());
  try {
    const shared = path.join(root, 'shared-node_modules');
    fs.mkdirSync(path.join(root, 'dist'));
    fs.mkdirSync(shared);
    fs.symlinkSync(shared, path.join(root, 'node_modules'));
    assert.deepEqual(platformCodePaths(root).sort(), [path.join(root, 'dist'), path.join(root, 'node_modules'), shared].sort());
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
