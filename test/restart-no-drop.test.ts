// Restarts under steady load fail no request. Started the way a systemd
// socket unit starts it (the socket held outside the service, passed as fd 3),
// `tenantry serve` stops accepting on SIGTERM, finishes what is in flight, and
// the kernel queues new connections until the next process accepts them.
// Also: connections made while the platform starts are answered once it is
// ready (never left hanging), and /healthz answers only when it is ready.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { spawn, spawnSync } from 'node:child_process';
import { CLI, REPO_ROOT, tempDir } from './helpers/harness.js';

const HOLDER = path.join(REPO_ROOT, 'test/helpers/socket-holder.py');
const hasPython = spawnSync('python3', ['--version']).status === 0;

interface Holder {
  readonly port: number;
  command(what: 'start' | 'stop'): Promise<string>;
  quit(): Promise<void>;
}

async function startHolder(env: Record<string, string>): Promise<Holder> {
  const child = spawn('python3', [HOLDER, process.execPath, CLI, 'serve'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! });
  const waiting: ((line: string) => void)[] = [];
  const early: string[] = [];
  lines.on('line', (line) => {
    if (!/^(port|started|exited) /.test(line)) return; // the service's own output
    const w = waiting.shift();
    if (w) w(line);
    else early.push(line);
  });
  const next = () => new Promise<string>((resolve) => (early.length ? resolve(early.shift()!) : waiting.push(resolve)));
  const port = Number((await next()).split(' ')[1]);
  return {
    port,
    command: (what) => {
      child.stdin!.write(what + '\n');
      return next();
    },
    quit: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.stdin!.end('quit\n');
      }),
  };
}

/**
 * How long an answer may take before it counts as hung. Sandboxed (as root), a restart
 * also restarts the supervisor and a cold, sandboxed worker, which on a loaded machine takes many seconds.
 */
let hungAfterMs = 20_000;

function get(port: number, host: string, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers: { Host: host }, agent: false, timeout: hungAfterMs }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${hungAfterMs / 1000} s (hung)`)));
    req.on('error', reject);
  });
}

function post(port: number, urlPath: string, token: string, body: Buffer, type: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: urlPath, method: 'POST', headers: { Host: 'localhost', Authorization: `Bearer ${token}`, 'Content-Type': type }, agent: false },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function waitHealthy(port: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await get(port, 'localhost', '/healthz').catch(() => undefined);
    if (r?.status === 200) return;
    if (Date.now() > deadline) throw new Error('not healthy within 30 s');
    await new Promise((res) => setTimeout(res, 100));
  }
}

const notRoot = process.getuid?.() !== 0 ? 'needs root (the supervisor and its edges)' : undefined;

test('restarts under a steady stream of static and dynamic requests: none fails, none hangs', { skip: hasPython ? false : 'python3 is needed to hold the socket as systemd would' }, async () => {
  const dataDir = tempDir();
  await restartsUnderLoad(dataDir, { TENANTRY_DATA_DIR: dataDir, TENANTRY_ISOLATION: 'off' });
});

// As root: the supervisor, two edges on the socket; both drain on each stop.
test('with two edges, restarts under the same stream fail nothing either', { skip: !hasPython ? 'python3 is needed to hold the socket as systemd would' : notRoot, timeout: 180_000 }, async () => {
  const parent = tempDir('tenantry-restart-edges-');
  fs.chmodSync(parent, 0o755);
  const dataDir = path.join(parent, 'data');
  hungAfterMs = 60_000;
  try {
    await restartsUnderLoad(dataDir, { TENANTRY_DATA_DIR: dataDir, TENANTRY_ISOLATION: 'auto', TENANTRY_EDGES: '2' });
  } finally {
    hungAfterMs = 20_000;
    fs.rmSync(parent, { recursive: true, force: true });
  }
});

async function restartsUnderLoad(dataDir: string, env: Record<string, string>): Promise<void> {
  const holder = await startHolder(env);
  let running = true;
  try {
    // Connections opened while the platform starts wait and are answered; /healthz only once it is ready.
    assert.match(await holder.command('start'), /^started/);
    const early = await Promise.all(Array.from({ length: 10 }, () => get(holder.port, 'demo.localhost', '/')));
    for (const r of early) assert.equal(r.status, 200, 'the demo site answered the connections made during start');
    await waitHealthy(holder.port);
    const adminToken = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    // The demo tenant's starter site has api/hello.js: a dynamic route through its worker.
    assert.equal((await get(holder.port, 'demo.localhost', '/api/hello')).status, 200);

    const failures: string[] = [];
    let answered = 0;
    const loop = async (host: string, urlPath: string) => {
      while (running) {
        try {
          const r = await get(holder.port, host, urlPath);
          if (r.status !== 200) failures.push(`${urlPath} ${r.status} ${r.body.slice(0, 120)}`);
          answered++;
        } catch (err) {
          failures.push(`${urlPath} ${(err as Error).message}`);
        }
      }
    };
    const loops = [loop('demo.localhost', '/'), loop('demo.localhost', '/'), loop('demo.localhost', '/api/hello'), loop('demo.localhost', '/api/hello'), loop('localhost', '/healthz')];
    for (let round = 0; round < 2; round++) {
      await new Promise((r) => setTimeout(r, 1500));
      const before = answered;
      assert.match(await holder.command('stop'), /^exited 0$/, 'stopped cleanly');
      assert.match(await holder.command('start'), /^started/);
      await waitHealthy(holder.port);
      await new Promise((r) => setTimeout(r, 1000));
      assert.ok(answered > before, 'requests were answered across the restart');
    }
    // A deploy after the restarts is live as usual.
    const archive = spawnSync('tar', ['-cz', '-C', path.join(REPO_ROOT, 'tenants-template'), '.']).stdout;
    const deployed = await post(holder.port, '/api/v1/tenants/demo/deploys', adminToken, archive, 'application/gzip');
    assert.equal(deployed.status, 201, deployed.body);
    running = false;
    await Promise.all(loops);
    assert.deepEqual(failures, [], `${failures.length} of ${answered + failures.length} requests failed`);
    assert.ok(answered > 50, `only ${answered} requests made`);
  } finally {
    running = false;
    await holder.command('stop').catch(() => {});
    await holder.quit();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
