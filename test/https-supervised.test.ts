// As root, `tenantry serve` binds both ports in the supervisor and hands both
// sockets to the edge (user tenantry), which serves HTTPS with its
// certificates; the supervisor itself listens on nothing. With two edges, both
// accept on the HTTP socket; HTTPS stays with the first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServerProcess, tempDir } from './helpers/harness.js';
import { httpsRequest, peerCertificate } from './helpers/tls-client.js';

const notRoot = process.getuid?.() !== 0 ? 'needs root (privilege separation)' : undefined;
if (notRoot) console.log(`# SKIP supervised HTTPS test: ${notRoot}`);

/** Uid of a process, from /proc. */
function uidOf(pid: number): number {
  const m = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]);
}

/** Pids holding a listening TCP socket on `port` (from /proc/net/tcp and each process's fds). */
function listenersOf(port: number, pids: number[]): number[] {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(`:${hex}`) && f[3] === '0A') inodes.add(f[9]!);
    }
  }
  return pids.filter((pid) => {
    try {
      return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        return m !== null && inodes.has(m[1]!);
      });
    } catch {
      return false;
    }
  });
}

test('the supervisor hands the HTTPS socket to the edge like the HTTP one', { skip: notRoot, timeout: 60_000 }, async () => {
  const dir = tempDir('tenantry-https-sup-');
  fs.chmodSync(dir, 0o755);
  const server = await startServerProcess(path.join(dir, 'data'), { TENANTRY_ISOLATION: 'auto', TENANTRY_EDGES: '2' }, ['--https-port', '0']);
  try {
    const m = /HTTPS on \S+ \(bound to [^:]+:(\d+)/.exec(server.output());
    assert.ok(m, server.output());
    const httpsPort = Number(m[1]);
    const cert = await peerCertificate(httpsPort, 'demo.localhost');
    assert.equal(cert.subject.CN, 'localhost');
    const page = await httpsRequest(httpsPort, 'demo.localhost');
    assert.equal(page.status, 200);

    const childrenOf = (pid: number) => fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    const processes = () => {
      const children = childrenOf(server.child.pid!);
      return [server.child.pid!, ...children, ...children.flatMap(childrenOf)];
    };
    const supervised = !/privilege separation off/.test(server.output());
    // The sibling edge starts after the first edge is ready.
    for (const deadline = Date.now() + 60_000; supervised && listenersOf(server.port, processes()).length < 2 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 200));
    const all = processes();
    for (const [port, edges] of [[server.port, supervised ? 2 : 1], [httpsPort, 1]] as const) {
      const holders = listenersOf(port, all);
      assert.equal(holders.length, edges, `${edges} process(es) listen on ${port}: ${holders.join(', ')}`);
      if (supervised) {
        assert.ok(!holders.includes(server.child.pid!), 'the root supervisor listens on nothing');
        for (const h of holders) assert.notEqual(uidOf(h), 0, 'no edge is root');
      }
    }
    const key = path.join(dir, 'data', 'certs', '_self-signed', 'key.pem');
    assert.equal(fs.statSync(key).mode & 0o777, 0o600);
    if (supervised) assert.notEqual(fs.statSync(key).uid, 0, 'the key belongs to the platform user');
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
