// A tenant swapping its worker's socket for a link: to a neighbour's worker
// (its domain would be answered by the neighbour) or to a local daemon (the
// edge would relay visitors' requests to it). Tenant swpa attacks from its own
// route, through a child process (Node's permission model stops only
// fs.symlink itself); swpb is the neighbour. Two promises, checked apart:
//   - the swap itself fails: the socket's folder is the platform's, the worker
//     gets its socket as a descriptor (needs the users layer: with shared users
//     nothing stops the worker's user, and the test says so and skips);
//   - whatever the folder holds, the edge never follows a link: requests to
//     swpa's domain reach swpa's worker or fail, never swpb's or the daemon.
// Runs in-process with every layer the host offers (TENANTRY_SANDBOX=unshare
// for the fallback sandbox), in-process with isolation off, and as the
// privilege-separated server (root supervisor, edge as the user tenantry).
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startServerProcess, startTestPlatform, tempDir } from './helpers/harness.js';
import { apiJson, createTenant, uploadArchive } from './helpers/deploy-archives.js';
import { probe, probeSiteArchive, type ProbeAnswer } from './helpers/escape-probe.js';
import type { LayerName } from '../server/sandbox/detect.js';
import { DataPaths } from '../server/paths.js';
import { probeCgroups } from '../server/sandbox/cgroups.js';
import { lookupUser, removeSystemUser } from '../server/sandbox/unix-users.js';
import { PLATFORM_USER } from '../server/supervisor/supervisor.js';
import { socketPathProblem } from '../server/pool/socket-guard.js';
import { bindWorkerSocket } from '../server/sandbox/worker-socket.js';

const ATTACKER = 'swpa';
const NEIGHBOUR = 'swpb';
const isRoot = process.getuid?.() === 0;
/** Refusals the kernel gives for the swap: no right on the folder, or no such folder in the sandbox's file view. */
const REFUSED = /Permission denied|Operation not permitted|No such file or directory|Read-only file system|cannot|Invalid cross-device link/i;

/** A local daemon the edge's user could reach: an HTTP server on a unix socket anyone may connect to. */
interface Daemon {
  readonly socketPath: string;
  readonly seen: string[];
  close(): Promise<void>;
}

async function startDaemon(): Promise<Daemon> {
  const dir = tempDir('tenantry-daemon-');
  fs.chmodSync(dir, 0o755);
  const socketPath = path.join(dir, 'daemon.sock');
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${JSON.stringify(req.headers)}`);
    req.resume();
    res.end('{"ok":true,"tenant":"the daemon"}');
  });
  // Raw connections count too, HTTP or not.
  server.on('connection', () => seen.push('connection'));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  fs.chmodSync(socketPath, 0o777);
  return {
    socketPath,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
        fs.rmSync(dir, { recursive: true, force: true });
      }),
  };
}

/** What the attack needs of a running platform, in this process or as a server process. */
interface Target {
  readonly url: string;
  readonly adminToken: string;
  readonly paths: DataPaths;
  readonly layers: readonly { name: LayerName; active: boolean; detail: string }[];
  /** Replaces the tenant's worker (the next request starts a new one, with the next socket name). */
  restart(tenantId: string): Promise<void>;
  close(): Promise<void>;
}

async function inProcess(isolation: 'auto' | 'off'): Promise<Target> {
  const p = await startTestPlatform({ TENANTRY_ISOLATION: isolation });
  return {
    url: p.url,
    adminToken: p.adminToken,
    paths: p.platform.paths,
    layers: p.platform.sandbox.report.layers,
    restart: async (id) => p.platform.workers.restartTenant(id, 'test: after the swap attempt'),
    close: () => p.cleanup(),
  };
}

/** `tenantry serve` as root: the supervisor makes the sockets, the edge (user tenantry) connects. */
async function separated(): Promise<Target | string> {
  const dataDir = tempDir();
  const platformUserExisted = lookupUser(PLATFORM_USER) !== undefined;
  const server = await startServerProcess(dataDir, { TENANTRY_ISOLATION: 'auto' });
  const close = async () => {
    await server.stop();
    const cg = probeCgroups().driver;
    for (const id of [ATTACKER, NEIGHBOUR, 'demo']) {
      await cg?.removeTenant(id);
      removeSystemUser(`tn-${id}`);
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
    // userdel refuses while the edge is still exiting: give it a moment.
    for (let i = 0; !platformUserExisted && i < 20; i++) {
      try {
        removeSystemUser(PLATFORM_USER);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  };
  if (!/privilege-separation: active/.test(server.output())) {
    await close();
    return 'privilege separation is off on this host';
  }
  const adminToken = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
  const report = await apiJson(server.url, adminToken, 'GET', '/api/v1/isolation');
  let n = 0;
  return {
    url: server.url,
    adminToken,
    paths: new DataPaths(dataDir),
    layers: report.json.layers,
    restart: async (id) => {
      const r = await apiJson(server.url, adminToken, 'PUT', `/api/v1/tenants/${id}/env`, { SWAP_TEST_ROUND: String(++n) });
      assert.equal(r.status, 200, JSON.stringify(r.json));
    },
    close,
  };
}

const SETUPS: ReadonlyArray<{ name: string; start: () => Promise<Target | string> }> = [
  { name: 'isolation auto', start: async () => (isRoot ? inProcess('auto') : 'needs root: per-tenant users and the root-owned socket folder are made by root') },
  { name: 'isolation off', start: () => inProcess('off') },
  { name: 'privilege-separated server', start: async () => (isRoot ? separated() : 'needs root: privilege separation starts from root') },
];

for (const setup of SETUPS) {
  describe(`a tenant replacing its worker's socket with a link (${setup.name})`, () => {
    let p: Target;
    let daemon: Daemon;
    let why: string | undefined;

    function missing(...layers: LayerName[]): string | undefined {
      if (why) return why;
      const off = p.layers.filter((l) => layers.includes(l.name) && !l.active);
      return off.length ? `this host lacks ${off.map((l) => `${l.name} (${l.detail})`).join('; ')}` : undefined;
    }

    /** The neighbour's live worker socket (its worker answered just before). */
    function neighbourSocket(): string {
      const dir = p.paths.run(NEIGHBOUR);
      const name = fs.readdirSync(dir).find((n) => n.endsWith('.sock'));
      assert.ok(name, `${NEIGHBOUR} has a worker socket`);
      return path.join(dir, name);
    }

    const whoAnswers = () => probe(p.url, ATTACKER, { action: 'whoami' });

    /** swpa's sockets now, and the names its next workers will get. */
    function targets(): string[] {
      const runDir = p.paths.run(ATTACKER);
      const now = fs.readdirSync(runDir).filter((n) => /^http-\d+\.sock$/.test(n));
      const top = Math.max(0, ...now.map((n) => Number(/\d+/.exec(n)![0])));
      const next = [1, 2, 3].map((i) => `http-${top + i}.sock`);
      return [...now, ...next].map((n) => path.join(runDir, n));
    }

    /**
     * From swpa's route, a shell replaces each target with a link to `to`: in
     * place (ln -sfn: unlink, then symlink) and by renaming a link made in its
     * data folder over it. Prints one line per attempt.
     */
    async function swap(to: string): Promise<{ swapped: string[]; refused: string[]; answer: ProbeAnswer }> {
      const data = p.paths.tenantData(ATTACKER);
      const script = [
        'to="$1"; data="$2"; shift 2',
        'for s in "$@"; do',
        '  if err=$(ln -sfn "$to" "$s" 2>&1); then echo "SWAPPED ln $s"; else echo "REFUSED ln $s: $err"; fi',
        '  ln -sfn "$to" "$data/swap.lnk" 2>/dev/null',
        '  if err=$(mv -fT "$data/swap.lnk" "$s" 2>&1); then echo "SWAPPED mv $s"; else echo "REFUSED mv $s: $err"; fi',
        'done',
        'rm -f "$data/swap.lnk"',
      ].join('\n');
      const answer = await probe(p.url, ATTACKER, { action: 'run', file: '/bin/sh', args: ['-c', script, 'swap', to, data, ...targets()] });
      const lines = String(answer.stdout ?? '').split('\n').filter(Boolean);
      return { swapped: lines.filter((l) => l.startsWith('SWAPPED')), refused: lines.filter((l) => l.startsWith('REFUSED')), answer };
    }

    /**
     * Every request to swpa's domain, fresh worker or not, is answered by swpa
     * or fails; never by another. Sent in parallel bursts of requests that
     * hold their connection for a while, so the edge must open new
     * connections to the socket path (kept-alive ones predate the swap).
     */
    async function assertOnlyAttackerAnswers(bursts: number, parallel = 6): Promise<void> {
      let served = 0;
      for (let b = 0; b < bursts; b++) {
        const answers = await Promise.all(Array.from({ length: parallel }, () => probe(p.url, ATTACKER, { action: 'whoami', holdMs: 150, visitor: 'secret body' })));
        for (const me of answers) {
          assert.notEqual(me.tenant, NEIGHBOUR, `a request to ${ATTACKER}'s domain was answered by ${NEIGHBOUR}'s worker`);
          assert.notEqual(me.tenant, 'the daemon', `a request to ${ATTACKER}'s domain was relayed to the daemon`);
          if (me.ok) {
            assert.equal(me.tenant, ATTACKER);
            served++;
          } else assert.ok(me.status === 502 || me.status === 503, `a failed request is a 502/503: ${JSON.stringify(me)}`);
        }
      }
      assert.ok(served > 0, `${ATTACKER}'s own worker answered at least once`);
    }

    before(async () => {
      daemon = await startDaemon();
      const started = await setup.start();
      if (typeof started === 'string') {
        why = started;
        return;
      }
      p = started;
      await createTenant(p.url, p.adminToken, ATTACKER);
      await createTenant(p.url, p.adminToken, NEIGHBOUR);
      for (const id of [ATTACKER, NEIGHBOUR]) {
        const r = await uploadArchive(p.url, p.adminToken, id, probeSiteArchive(id));
        assert.equal(r.status, 201, `deploy of ${id}: ${r.body}`);
        const me = await probe(p.url, id, { action: 'whoami' });
        assert.equal(me.tenant, id, `the probe route of ${id} answers: ${JSON.stringify(me)}`);
      }
    });

    after(async () => {
      await p?.close();
      await daemon?.close();
    });

    it('cannot replace its socket with a link to the neighbour\'s socket', async (t) => {
      const skip = missing('users');
      if (skip) return t.skip(`${skip}: the worker shares the platform's user, so nothing stops the swap itself (the edge still refuses links: next test)`);
      await probe(p.url, NEIGHBOUR, { action: 'whoami' });
      const { swapped, refused, answer } = await swap(neighbourSocket());
      assert.deepEqual(swapped, [], `the swap succeeded: ${JSON.stringify(answer)}`);
      assert.ok(refused.length >= 2, `attempts were made: ${JSON.stringify(answer)}`);
      for (const line of refused) assert.match(line, REFUSED, line);
      for (const s of targets()) {
        const st = fs.lstatSync(s, { throwIfNoEntry: false });
        if (st) assert.ok(st.isSocket(), `${s} is still the platform's socket`);
      }
      const st = fs.statSync(p.paths.run(ATTACKER));
      assert.equal(st.mode & 0o022, 0, 'the socket folder is writable by the platform alone');
    });

    it('requests to its domain reach its own worker, never the neighbour\'s, even where the swap succeeds', async () => {
      if (why) return;
      assert.equal((await probe(p.url, NEIGHBOUR, { action: 'whoami' })).tenant, NEIGHBOUR, 'the neighbour\'s worker runs');
      await swap(neighbourSocket());
      await assertOnlyAttackerAnswers(4);
      // The next worker gets a fresh socket, whatever was planted under its name.
      await p.restart(ATTACKER);
      await assertOnlyAttackerAnswers(4);
    });

    it('a link to a local daemon\'s socket gets the daemon nothing: no connection, no method, path, header or body', async (t) => {
      if (why) return t.skip(why);
      const { swapped, answer } = await swap(daemon.socketPath);
      if (!missing('users')) assert.deepEqual(swapped, [], `the swap succeeded: ${JSON.stringify(answer)}`);
      await assertOnlyAttackerAnswers(3);
      await p.restart(ATTACKER);
      await assertOnlyAttackerAnswers(3);
      assert.deepEqual(daemon.seen, [], 'the daemon received nothing');
    });
  });
}

test('the edge connects only to a socket, never a link, in a folder no one else may write', async () => {
  const root = tempDir('tenantry-guard-');
  try {
    const dir = path.join(root, 'run');
    fs.mkdirSync(dir, { mode: 0o700 });
    const made = await bindWorkerSocket({ dataRoot: root, dir, name: 'http-1.sock' }, undefined);
    made.release();
    const sock = path.join(dir, 'http-1.sock');
    assert.ok(fs.lstatSync(sock).isSocket(), 'the launcher\'s socket stays after this process lets go of it');
    assert.equal(fs.statSync(sock).mode & 0o777, 0o600, 'connectable by its owner alone');
    assert.deepEqual(fs.readdirSync(dir), ['http-1.sock'], 'no temporary name left behind');
    assert.equal(socketPathProblem(sock), undefined);
    fs.symlinkSync(sock, path.join(dir, 'http-2.sock'));
    assert.match(socketPathProblem(path.join(dir, 'http-2.sock')) ?? '', /symbolic link/);
    fs.writeFileSync(path.join(dir, 'http-3.sock'), '');
    assert.match(socketPathProblem(path.join(dir, 'http-3.sock')) ?? '', /not a socket/);
    assert.match(socketPathProblem(path.join(dir, 'http-9.sock')) ?? '', /does not exist/);
    fs.chmodSync(dir, 0o770);
    assert.match(socketPathProblem(sock) ?? '', /writable by others/);
    fs.chmodSync(dir, 0o700);
    fs.symlinkSync(dir, path.join(root, 'linked'));
    assert.match(socketPathProblem(path.join(root, 'linked', 'http-1.sock')) ?? '', /not a folder/);
    if (isRoot) {
      fs.chownSync(dir, 65534, 65534);
      assert.match(socketPathProblem(sock) ?? '', /belongs to uid 65534/);
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
