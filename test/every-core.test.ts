// Several edges on one listening socket (TENANTRY_EDGES=2, as root: the real
// supervisor, the first edge and a sibling edge as the user tenantry). New
// connections are spread over both; a deploy's or a rollback's answer is
// followed by the new release from every edge; dynamic routes reached through
// either edge share one worker per tenant; /metrics counts the whole platform;
// a killed sibling is started again while the other keeps serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, startServerProcess, tempDir, type ServerProcess } from './helpers/harness.js';
import { siteArchive, uploadArchive } from './helpers/deploy-archives.js';

const notRoot = process.getuid?.() !== 0 ? 'needs root (the supervisor, and edges as the user tenantry)' : undefined;
if (notRoot) console.log(`# SKIP several-edges tests: ${notRoot}`);

const TENANT = 'ec-cores';

/** A site with a marker page and a dynamic route that says which process answered. */
function siteWith(marker: string): Buffer {
  return siteArchive(marker, [
    { name: 'api/', type: 'directory' },
    { name: 'api/pid.js', body: 'module.exports = (req, res) => res.json({ pid: process.pid });\n' },
  ]);
}

function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.keys(got).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return 0;
}

/** Children of a process, from /proc. */
function childrenOf(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The sibling edges: the first edge's children that run the sibling entry. */
function siblingPids(server: ServerProcess): number[] {
  const edges = childrenOf(server.child.pid!);
  return edges.flatMap(childrenOf).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('sibling-edge-process');
    } catch {
      return false;
    }
  });
}

/** Waits until both edges have registered (a sibling takes connections only from then on). */
async function edgesAccepting(server: ServerProcess, token: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const m = await httpRequest(server.url, { host: 'localhost', path: '/metrics', headers: { Authorization: `Bearer ${token}` } });
    if (sample(m.body, 'tenantry_edges', {}) === 2) return;
    if (Date.now() > deadline) throw new Error(`the sibling edge did not register within 60 s:\n${server.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function start(): Promise<{ server: ServerProcess; token: string; dir: string }> {
  const dir = tempDir('tenantry-every-core-');
  fs.chmodSync(dir, 0o755);
  const server = await startServerProcess(path.join(dir, 'data'), { TENANTRY_ISOLATION: 'auto', TENANTRY_EDGES: '2', TENANTRY_EDGE_HEADER: 'on' });
  const token = fs.readFileSync(path.join(dir, 'data', 'admin-token'), 'utf8').trim();
  await edgesAccepting(server, token);
  const created = await httpRequest(server.url, {
    host: 'localhost',
    method: 'POST',
    path: '/api/v1/tenants',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ id: TENANT }),
  });
  assert.equal(created.status, 201, created.body);
  return { server, token, dir };
}

async function stop(s: { server: ServerProcess; token: string; dir: string }): Promise<void> {
  await httpRequest(s.server.url, { host: 'localhost', method: 'DELETE', path: `/api/v1/tenants/${TENANT}`, headers: { Authorization: `Bearer ${s.token}` } }).catch(() => {});
  assert.equal(await s.server.stop(), 0, s.server.output());
  fs.rmSync(s.dir, { recursive: true, force: true });
}

/** `n` requests, each on a new connection, all at once. */
function burst(url: string, n: number, urlPath: string, host = `${TENANT}.localhost`) {
  return Promise.all(Array.from({ length: n }, () => httpRequest(url, { host, path: urlPath })));
}

function edgesOf(answers: { headers: Record<string, unknown> }[]): Set<string> {
  return new Set(answers.map((a) => String(a.headers['x-tenantry-edge'])));
}

test('two edges: both serve, a deploy and a rollback are seen by every edge once answered, one worker per tenant', { skip: notRoot, timeout: 120_000 }, async () => {
  const s = await start();
  const { server, token } = s;
  try {
    // Both edges accept connections (the kernel spreads them); both answer static requests themselves.
    let seen = new Set<string>();
    for (let round = 0; round < 50 && seen.size < 2; round++) {
      const answers = await burst(server.url, 20, '/');
      for (const a of answers) assert.equal(a.status, 200);
      seen = new Set([...seen, ...edgesOf(answers)]);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual([...seen].sort(), ['0', '1'], 'connections were accepted by both edges');

    // Each deploy's 201 is followed by the new release from every edge, on every new connection.
    const deployIds: string[] = [];
    for (const marker of ['release-one', 'release-two', 'release-three']) {
      const answer = await uploadArchive(server.url, token, TENANT, siteWith(marker));
      assert.equal(answer.status, 201, answer.body);
      deployIds.push((JSON.parse(answer.body) as { id: string }).id);
      const after = await burst(server.url, 40, '/');
      for (let i = 0; i < 10 && edgesOf(after).size < 2; i++) after.push(...(await burst(server.url, 40, '/')));
      const stale = after.filter((a) => !a.body.includes(marker));
      assert.deepEqual(stale.map((a) => `edge ${a.headers['x-tenantry-edge']}: ${a.body.slice(0, 80)}`), [], `every answer after the 201 shows ${marker}`);
      assert.equal(edgesOf(after).size, 2, 'both edges answered after the deploy');
    }

    // Rollback (activate an earlier release): the same, from every edge.
    const rolled = await httpRequest(server.url, {
      host: 'localhost',
      method: 'POST',
      path: `/api/v1/tenants/${TENANT}/deploys/${deployIds[0]}/activate`,
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(rolled.status, 200, rolled.body);
    const afterRollback = await burst(server.url, 40, '/');
    assert.deepEqual(afterRollback.filter((a) => !a.body.includes('release-one')).map((a) => `edge ${a.headers['x-tenantry-edge']}`), [], 'every edge serves the release rolled back to');

    // Dynamic routes through either edge reach the one worker of the tenant.
    // Which process accepts a connection is the kernel's choice: more bursts until both edges took some.
    const dynamic = await burst(server.url, 30, '/api/pid');
    for (let i = 0; i < 10 && edgesOf(dynamic).size < 2; i++) dynamic.push(...(await burst(server.url, 30, '/api/pid')));
    for (const a of dynamic) assert.equal(a.status, 200, a.body);
    assert.equal(edgesOf(dynamic).size, 2, 'dynamic requests were accepted by both edges');
    const pids = new Set(dynamic.map((a) => (JSON.parse(a.body) as { pid: number }).pid));
    assert.equal(pids.size, 1, `one worker answered them all: ${[...pids].join(', ')}`);

    // The platform host answers through either edge (forwarded by the sibling), and /metrics counts both edges.
    const before = await httpRequest(server.url, { host: 'localhost', path: '/metrics', headers: { Authorization: `Bearer ${token}` } });
    assert.equal(before.status, 200);
    const staticBefore = sample(before.body, 'tenantry_http_requests_total', { tenant: TENANT, status_class: '2xx', kind: 'static' });
    const counted = await burst(server.url, 30, '/');
    for (let i = 0; i < 10 && edgesOf(counted).size < 2; i++) counted.push(...(await burst(server.url, 30, '/')));
    assert.equal(edgesOf(counted).size, 2);
    const scrape = () => Promise.all(Array.from({ length: 6 }, () => httpRequest(server.url, { host: 'localhost', path: '/metrics', headers: { Authorization: `Bearer ${token}` } })));
    const scrapes = await scrape();
    for (let i = 0; i < 10 && edgesOf(scrapes).size < 2; i++) scrapes.push(...(await scrape()));
    assert.equal(edgesOf(scrapes).size, 2, 'the scrapes came through both edges');
    for (const m of scrapes) {
      assert.equal(sample(m.body, 'tenantry_http_requests_total', { tenant: TENANT, status_class: '2xx', kind: 'static' }) - staticBefore, counted.length, 'every static answer counted once, whichever edge gave it');
      assert.equal(sample(m.body, 'tenantry_edges', {}), 2);
      assert.equal(sample(m.body, 'tenantry_workers_running', { tenant: TENANT }), 1);
    }
    // The dashboard's charts count the same requests: every edge's, as /metrics does.
    const allStatic = sample(scrapes[0]!.body, 'tenantry_http_requests_total', { tenant: TENANT, status_class: '2xx', kind: 'static' });
    const allDynamic = sample(scrapes[0]!.body, 'tenantry_http_requests_total', { tenant: TENANT, status_class: '2xx', kind: 'dynamic' });
    const stats = await httpRequest(server.url, { host: 'localhost', path: `/api/v1/tenants/${TENANT}/stats`, headers: { Authorization: `Bearer ${token}` } });
    assert.equal(stats.status, 200, stats.body);
    assert.equal((JSON.parse(stats.body) as { totals: { requests: number } }).totals.requests, allStatic + allDynamic, 'the charts\' totals are the whole platform\'s');
  } finally {
    await stop(s);
  }
});

test('a killed sibling edge is started again; the other edge serves meanwhile', { skip: notRoot, timeout: 120_000 }, async () => {
  const s = await start();
  const { server } = s;
  let running = true;
  try {
    const [first] = siblingPids(server);
    assert.ok(first, 'a sibling edge runs');
    const failures: string[] = [];
    let answered = 0;
    const loop = async () => {
      while (running) {
        const a = await httpRequest(server.url, { host: `${TENANT}.localhost`, path: '/' }).catch((err: Error) => ({ status: 0, body: err.message, headers: {} }));
        if (a.status === 200) answered++;
        else failures.push(`${a.status} ${a.body.slice(0, 80)}`);
      }
    };
    const loops = [loop(), loop()];
    await new Promise((r) => setTimeout(r, 300));
    process.kill(first, 'SIGKILL');
    const deadline = Date.now() + 60_000;
    let again: number | undefined;
    while (again === undefined && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      again = siblingPids(server).find((pid) => pid !== first);
    }
    assert.ok(again, 'a new sibling edge was started');
    // The new sibling registers with the first edge, then takes connections again.
    await edgesAccepting(server, s.token);
    let seen = new Set<string>();
    for (let round = 0; round < 50 && !seen.has('1'); round++) {
      seen = new Set([...seen, ...edgesOf(await burst(server.url, 10, '/'))]);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(seen.has('1'), 'the restarted sibling accepts connections');
    running = false;
    await Promise.all(loops);
    // A connection the killed process had accepted but not answered is reset; anything else is a failure.
    const other = failures.filter((f) => !/^0 (socket hang up|read ECONNRESET)/.test(f));
    assert.deepEqual(other, [], 'the first edge kept serving');
    assert.ok(failures.length <= 2, `at most the killed edge's own connections failed: ${failures.join('; ')}`);
    assert.ok(answered > 20, `answered ${answered}`);
  } finally {
    running = false;
    await stop(s);
  }
});
