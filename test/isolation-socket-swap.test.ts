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
// Runs once with every layer the host offers (TENANTRY_SANDBOX=unshare for the
// fallback sandbox) and once with isolation off.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startTestPlatform, tempDir, type TestPlatform } from './helpers/harness.js';
import { createTenant, uploadArchive } from './helpers/deploy-archives.js';
import { probe, probeSiteArchive, type ProbeAnswer } from './helpers/escape-probe.js';
import type { LayerName } from '../server/sandbox/detect.js';

const ATTACKER = 'swpa';
const NEIGHBOUR = 'swpb';
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

for (const isolation of ['auto', 'off'] as const) {
  describe(`a tenant replacing its worker's socket with a link (isolation ${isolation})`, () => {
    let p: TestPlatform;
    let daemon: Daemon;
    let why: string | undefined;

    function missing(...layers: LayerName[]): string | undefined {
      if (why) return why;
      const off = p.platform.sandbox.report.layers.filter((l) => layers.includes(l.name) && !l.active);
      return off.length ? `this host lacks ${off.map((l) => `${l.name} (${l.detail})`).join('; ')}` : undefined;
    }

    /** The neighbour's live worker socket (its worker answered just before). */
    function neighbourSocket(): string {
      const dir = p.platform.paths.run(NEIGHBOUR);
      const name = fs.readdirSync(dir).find((n) => n.endsWith('.sock'));
      assert.ok(name, `${NEIGHBOUR} has a worker socket`);
      return path.join(dir, name);
    }

    const whoAnswers = () => probe(p.url, ATTACKER, { action: 'whoami' });

    /** swpa's sockets now, and the names its next workers will get. */
    function targets(): string[] {
      const runDir = p.platform.paths.run(ATTACKER);
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
      const data = p.platform.paths.tenantData(ATTACKER);
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
      const isRoot = process.getuid?.() === 0;
      if (isolation === 'auto' && !isRoot) why = 'needs root: per-tenant users and the root-owned socket folder are made by root';
      daemon = await startDaemon();
      if (why) return;
      p = await startTestPlatform({ TENANTRY_ISOLATION: isolation });
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
      await p?.cleanup();
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
      const st = fs.statSync(p.platform.paths.run(ATTACKER));
      assert.equal(st.mode & 0o022, 0, 'the socket folder is writable by the platform alone');
    });

    it('requests to its domain reach its own worker, never the neighbour\'s, even where the swap succeeds', async () => {
      if (why) return;
      assert.equal((await probe(p.url, NEIGHBOUR, { action: 'whoami' })).tenant, NEIGHBOUR, 'the neighbour\'s worker runs');
      await swap(neighbourSocket());
      await assertOnlyAttackerAnswers(4);
      // The next worker gets a fresh socket, whatever was planted under its name.
      p.platform.workers.restartTenant(ATTACKER, 'test: after the swap attempt');
      await assertOnlyAttackerAnswers(4);
    });

    it('a link to a local daemon\'s socket gets the daemon nothing: no connection, no method, path, header or body', async (t) => {
      if (why) return t.skip(why);
      const { swapped, answer } = await swap(daemon.socketPath);
      if (!missing('users')) assert.deepEqual(swapped, [], `the swap succeeded: ${JSON.stringify(answer)}`);
      await assertOnlyAttackerAnswers(3);
      p.platform.workers.restartTenant(ATTACKER, 'test: after the swap attempt');
      await assertOnlyAttackerAnswers(3);
      assert.deepEqual(daemon.seen, [], 'the daemon received nothing');
    });
  });
}
