// The supervisor's request pipe, driven over a real socket the way a
// subverted edge would: oversized frames, garbage, unknown operations and
// launch specs naming someone else's files are dropped or refused, and the
// supervisor keeps answering.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { inheritedSettings, REPO_ROOT, tempDir } from './helpers/harness.js';
import { loadConfig } from '../server/config.js';
import { lookupUser, removeSystemUser } from '../server/sandbox/unix-users.js';
import { PLATFORM_USER, startSupervisor } from '../server/supervisor/supervisor.js';
import { silentLogger } from '../server/log.js';
import { DataPaths } from '../server/paths.js';
import { createSandbox } from '../server/sandbox/sandbox.js';
import { serveEdgeRequests } from '../server/supervisor/edge-requests.js';
import { MAX_FRAME_BYTES, readFrames, writeFrame } from '../server/supervisor/ipc-protocol.js';
import { DEFAULT_LIMITS } from '../server/model/limits.js';

const WORKER_ENTRY = '/opt/tenantry/dist/server/runtime/main.js';

interface Peer {
  readonly socket: net.Socket;
  next(): Promise<Record<string, unknown>>;
  close(): void;
}

/** A supervisor request handler on one end of a unix socket, and the test as the edge on the other. */
async function supervisorPeer(dataDir: string): Promise<Peer> {
  const paths = new DataPaths(dataDir);
  const sandbox = createSandbox({ mode: 'off', paths, log: silentLogger });
  const sockPath = path.join(dataDir, 'supervisor.sock');
  const server = net.createServer((conn) => serveEdgeRequests({ channel: conn, sandbox, paths, workerEntry: WORKER_ENTRY, log: silentLogger }));
  await new Promise<void>((r) => server.listen(sockPath, r));
  const socket = net.connect(sockPath);
  await new Promise((r) => socket.once('connect', r));
  const inbox: Record<string, unknown>[] = [];
  const waiters: Array<(m: Record<string, unknown>) => void> = [];
  readFrames(socket, {
    onMessage: (m) => {
      const w = waiters.shift();
      if (w) w(m as Record<string, unknown>);
      else inbox.push(m as Record<string, unknown>);
    },
    onDropped: () => {},
  });
  return {
    socket,
    next: () =>
      new Promise((resolve, reject) => {
        const m = inbox.shift();
        if (m) return resolve(m);
        const timer = setTimeout(() => reject(new Error('no answer from the supervisor')), 10_000);
        waiters.push((msg) => {
          clearTimeout(timer);
          resolve(msg);
        });
      }),
    close: () => {
      socket.destroy();
      server.close();
    },
  };
}

async function withPeer(fn: (peer: Peer, dataDir: string) => Promise<void>): Promise<void> {
  const dataDir = tempDir();
  const peer = await supervisorPeer(dataDir);
  try {
    await fn(peer, dataDir);
  } finally {
    peer.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

test('a frame over the size cap is skipped unread, and the supervisor still answers', async () => {
  await withPeer(async (peer) => {
    const size = MAX_FRAME_BYTES * 4;
    const head = Buffer.alloc(4);
    head.writeUInt32BE(size);
    peer.socket.write(head);
    const junk = Buffer.alloc(1024 * 1024, 0x7b);
    for (let sent = 0; sent < size; sent += junk.length) {
      if (!peer.socket.write(junk.subarray(0, Math.min(junk.length, size - sent)))) await new Promise((r) => peer.socket.once('drain', r));
    }
    writeFrame(peer.socket, { id: 1, op: 'hello' });
    const answer = await peer.next();
    assert.equal(answer.type, 'result');
    assert.equal(answer.id, 1);
    assert.equal((answer.value as { mode: string }).mode, 'off');
  });
});

test('garbage, unknown operations and extra fields are refused without harm', async () => {
  await withPeer(async (peer) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(9);
    peer.socket.write(Buffer.concat([head, Buffer.from('not json!')]));
    writeFrame(peer.socket, { id: 2, op: 'runAsRoot', command: '/bin/sh' });
    const unknown = await peer.next();
    assert.equal(unknown.type, 'error');
    assert.equal(unknown.id, 2);
    writeFrame(peer.socket, { id: 3, op: 'provisionTenant', tenantId: 'isoipc', uid: 0 });
    const extra = await peer.next();
    assert.equal(extra.type, 'error', 'a field the protocol does not know is refused');
    writeFrame(peer.socket, { id: 4, op: 'removeTenant', tenantId: '../../etc' });
    assert.equal((await peer.next()).type, 'error', 'a tenant id that is a path is refused');
    writeFrame(peer.socket, { id: 5, op: 'hello' });
    assert.equal((await peer.next()).type, 'result');
  });
});

test('a launch spec must name only the tenant\'s own folders and the platform\'s worker runtime', async () => {
  await withPeer(async (peer, dataDir) => {
    const paths = new DataPaths(dataDir);
    const id = 'isoipc';
    const release = paths.release(id, 'd1');
    fs.mkdirSync(release, { recursive: true });
    fs.mkdirSync(paths.release('isoother', 'd1'), { recursive: true });
    const good = {
      tenantId: id,
      releaseDir: release,
      dataDir: paths.tenantData(id),
      runDir: paths.run(id),
      socketPath: path.join(paths.run(id), 'http-1.sock'),
      logFile: path.join(paths.logs(id), 'site.log'),
      entry: WORKER_ENTRY,
      args: [],
      env: { TENANTRY_TENANT: id },
      limits: { ...DEFAULT_LIMITS },
      network: 'none',
    };
    fs.symlinkSync(paths.release('isoother', 'd1'), paths.release(id, 'sneaky'));
    const attempts: Array<[string, Record<string, unknown>]> = [
      ['a shell as entry', { entry: '/bin/sh' }],
      ['another tenant\'s release', { releaseDir: paths.release('isoother', 'd1') }],
      ['a release that is a link to another tenant\'s', { releaseDir: paths.release(id, 'sneaky') }],
      ['another tenant\'s data folder', { dataDir: paths.tenantData('isoother') }],
      ['a log file outside the tenant\'s logs', { logFile: '/etc/passwd' }],
      ['a socket outside its folder', { socketPath: '/run/evil.sock' }],
      ['a listening descriptor of its own choosing', { args: ['--listen-fd', '0'] }],
      ['limits beyond the allowed range', { limits: { ...DEFAULT_LIMITS, memoryMB: 10_000_000 } }],
    ];
    let n = 10;
    for (const [what, change] of attempts) {
      writeFrame(peer.socket, { id: ++n, op: 'launchWorker', spec: { ...good, ...change } });
      const answer = await peer.next();
      assert.equal(answer.type, 'error', `${what} is refused`);
      assert.equal(answer.id, n);
    }
    writeFrame(peer.socket, { id: ++n, op: 'launchWorker', spec: good });
    const answer = await peer.next();
    assert.equal(answer.type, 'error');
    assert.match(String(answer.message), /no sandboxed launcher/, 'a proper spec passes the checks (and fails only for lack of a sandbox here)');
  });
});

test('a subverted edge has no handle channel, and an oversized frame and a shell launch get it nothing; the supervisor keeps serving', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root: the supervisor runs as root and starts the edge as another user');
  const dataDir = tempDir();
  const platformUserExisted = lookupUser(PLATFORM_USER) !== undefined;
  const config = loadConfig(['--port', '0'], { TENANTRY_DATA_DIR: dataDir, TENANTRY_ISOLATION: 'auto', ...inheritedSettings() });
  const rogue = path.join(REPO_ROOT, 'dist/test/helpers/rogue-edge.js');
  const supervisor = await startSupervisor(config, ['--port', '0'], silentLogger, { edgeEntry: rogue });
  try {
    const code = await supervisor.done;
    assert.equal(code, 0);
    const seen = JSON.parse(fs.readFileSync(path.join(dataDir, 'rogue-edge.json'), 'utf8')) as Record<string, any>;
    assert.equal(seen.timedOut, undefined, `the supervisor answered: ${JSON.stringify(seen)}`);
    assert.equal(seen.gotListener, true, 'the listening socket is inherited as fd 5');
    assert.equal(seen.hasIpcChannel, false, 'no IPC channel to send handles or messages to the supervisor');
    assert.equal(seen.launchShell?.type, 'error');
    assert.match(String(seen.launchShell?.message), /launch refused/);
    assert.equal(seen.hello?.type, 'result', 'still answering after the oversized frame and the garbage');
    assert.equal(lookupUser('tn-isorogue'), undefined, 'nothing was provisioned');
  } finally {
    await supervisor.stop();
    if (!platformUserExisted) {
      try {
        removeSystemUser(PLATFORM_USER);
      } catch {
        // still in use by an exiting edge; removed by the next run
      }
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
