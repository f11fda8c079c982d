// `npm run bench`: Tenantry against nginx and Express on this machine.
//
//   load generator (wrk, 1 thread, 32 connections) ── pinned to CPU 1
//   server under test (nginx 1 worker | express | tenantry + its workers) ── pinned to CPU 0
//
// Scenarios: one 14 KB file; 1,000 files across 20 tenants; a 304 revalidation;
// a dynamic JSON route (through the edge and a tenant worker); the first request
// to an idle tenant after a restart (cold start); a 2,000-file / 20 MB deploy.
// Prints the table and writes it to docs/benchmarks.md (unless --no-docs).
//
// Options: --duration S (3) --warmup S (2) --rounds N (5) --connections N (32)
//          --quick (1 round of 3 s) --no-docs --isolation auto|off (auto)
//          --only small,mix,304,dynamic,cold,deploy,rules,tenants,edges  --tenants N (1000)
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cpuTimeMs, generatorName, runAutocannon, runLoad, setAffinity, TASKSET, WRK, type LoadResult } from './load.js';
import { API_TENANTS, makeLargeDeploy, makeSites, MIX_FILES_PER_TENANT, MIX_TENANTS, SMALL_FILE, type SiteFixture } from './fixtures.js';
import { HAS_NGINX, REPO_ROOT, startExpress, startNginx, startNginxProxy, startTenantry, type RunningServer, type TenantryServer } from './servers.js';
import { ManifestClient, packDir, request, TenantryApi } from './tenantry-api.js';
import { incrementalRedeploys } from './incremental-deploy.js';
import { lastRulePath, makeRedirects, MISS_PATH } from './rule-fixtures.js';
import { timeRules } from './rule-timing.js';
import { tenantsAtScale } from './tenant-scale.js';
import { edgesOnOneSocket } from './edges.js';
import { coldStartPasses, percentile } from './cold-starts.js';

interface Options {
  durationSec: number;
  warmupSec: number;
  rounds: number;
  connections: number;
  writeDocs: boolean;
  isolation: string;
  /** Scenario keys to run: small, mix, 304, dynamic, cold, deploy, rules, tenants (all when empty). */
  only: Set<string>;
  /** Tenants the `tenants` scenario creates. */
  tenants: number;
}

function parseOptions(argv: string[]): Options {
  const o: Options = { durationSec: 3, warmupSec: 2, rounds: 5, connections: 32, writeDocs: true, isolation: process.env.TENANTRY_ISOLATION ?? 'auto', only: new Set(), tenants: 1000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => argv[++i] ?? '';
    if (a === '--duration') o.durationSec = Number(next());
    else if (a === '--warmup') o.warmupSec = Number(next());
    else if (a === '--rounds') o.rounds = Number(next());
    else if (a === '--connections') o.connections = Number(next());
    else if (a === '--quick') Object.assign(o, { durationSec: 3, warmupSec: 1, rounds: 1 });
    else if (a === '--no-docs') o.writeDocs = false;
    else if (a === '--isolation') o.isolation = next();
    else if (a === '--only') o.only = new Set(next().split(','));
    else if (a === '--tenants') o.tenants = Number(next());
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

const SERVER_CPU = os.cpus().length > 1 ? 0 : undefined;
const LOAD_CPU = os.cpus().length > 1 ? 1 : undefined;

interface Row {
  scenario: string;
  server: string;
  /** Medians over the rounds. */
  result?: LoadResult;
  /** Each round's result, in round order (paired with the other servers' same round for ratios). */
  rounds?: LoadResult[];
  /** For one-shot measurements (cold start, deploy). */
  value?: string;
  note?: string;
}

const rows: Row[] = [];
const notes: string[] = [];
const verdicts: string[] = [];

function log(line: string): void {
  process.stdout.write(line + '\n');
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

type Target = { host: string; path: string };

/** Each server's results, one per round, in round order. */
type Rounds = Map<string, LoadResult[]>;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Per server: the median over the rounds of requests/s, p50 and p99 (each taken on its own). */
function medianResult(rs: readonly LoadResult[]): LoadResult {
  return {
    rps: median(rs.map((r) => r.rps)),
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    requests: rs.reduce((n, r) => n + r.requests, 0),
    errors: rs.reduce((n, r) => n + r.errors, 0),
  };
}

/**
 * N rounds, servers interleaved so a passing disturbance (other processes on
 * this machine) hits all of them alike; ratios pair the servers' results of
 * the same round (see pairedRatio). Warm-up before the first round only.
 */
async function measure(
  scenario: string,
  servers: RunningServer[],
  /** The same for every server, or per server (several tenants of one Tenantry measured as "servers"). */
  targets: Target[] | ((s: RunningServer) => Target[]),
  o: Options,
  headersFor: (s: RunningServer) => Promise<Record<string, string>> = async () => ({}),
  generator: 'default' | 'autocannon' = 'default',
  /** 'any': the load generator is not pinned. */
  loadCpu: number | 'any' | undefined = LOAD_CPU,
): Promise<Rounds> {
  const all: Rounds = new Map();
  for (let round = 0; round < o.rounds; round++) {
    for (const s of servers) {
      const headers = await headersFor(s);
      const spec = { origin: s.origin, socketPath: s.socketPath, targets: typeof targets === 'function' ? targets(s) : targets, headers, connections: o.connections, cpu: loadCpu === 'any' ? undefined : loadCpu };
      const load = generator === 'autocannon' ? runAutocannon : runLoad;
      if (round === 0 && o.warmupSec > 0) await load({ ...spec, durationSec: o.warmupSec });
      const pids = [s.child.pid, ...(s.alsoServedBy ?? []).map((c) => c.pid)].filter((p): p is number => p !== undefined);
      const cpuBefore = cpuTimeMs(pids, processKind);
      const r = await load({ ...spec, durationSec: o.durationSec });
      r.cpuUs = cpuPerRequest(cpuBefore, cpuTimeMs(pids, processKind), r.requests);
      log(`  ${scenario.padEnd(28)} ${s.name.padEnd(15)} round ${round + 1}: ${fmt(r.rps).padStart(7)} req/s  p50 ${fmt(r.p50, 2)} ms  p99 ${fmt(r.p99, 2)} ms${r.errors ? `  errors ${r.errors}` : ''}`);
      all.set(s.name, [...(all.get(s.name) ?? []), r]);
    }
  }
  for (const s of servers) {
    const rs = all.get(s.name) ?? [];
    rows.push({ scenario, server: s.name, result: rs.length ? medianResult(rs) : undefined, rounds: rs });
  }
  return all;
}

/** What a server-side process is, for the CPU split: its command line says. */
function processKind(cmdline: string): string {
  if (cmdline.includes('runtime/main.js')) return 'worker';
  if (cmdline.includes('edge-process.js')) return 'edge';
  if (cmdline.startsWith('nginx')) return 'nginx';
  if (cmdline.includes('express-server.js')) return 'app';
  return 'other';
}

function cpuPerRequest(before: Map<string, number>, after: Map<string, number>, requests: number): Record<string, number> {
  const out: Record<string, number> = {};
  if (!requests) return out;
  for (const [kind, ms] of after) out[kind] = ((ms - (before.get(kind) ?? 0)) * 1000) / requests;
  return out;
}

/** "edge 40 + worker 110 = 150 µs": the median over the rounds of each kind's CPU time per request. */
function cpuSplit(rs: readonly LoadResult[] | undefined): string {
  if (!rs?.length) return 'not measured';
  const kinds = [...new Set(rs.flatMap((r) => Object.keys(r.cpuUs ?? {})))];
  // Processes that did nothing during the load (the supervisor, the sandbox's shells) are left out.
  const per = kinds.map((k) => [k, median(rs.map((r) => r.cpuUs?.[k] ?? 0))] as const).filter(([, us]) => us >= 1);
  const total = median(rs.map((r) => Object.values(r.cpuUs ?? {}).reduce((a, b) => a + b, 0)));
  return `${per.map(([k, us]) => `${k} ${fmt(us)}`).join(' + ')} = ${fmt(total)} µs`;
}

/** A ratio over the rounds: the median, min and max of the per-round ratios. */
interface Ratio {
  median: number;
  min: number;
  max: number;
}

/**
 * a/b of each round (both measured in the same round, a moment apart), then
 * the median of those: a disturbance during one round moves both servers of
 * that round, not one server's best against another's.
 */
function pairedRatio(a: readonly LoadResult[] | undefined, b: readonly LoadResult[] | undefined, key: 'rps' | 'p99'): Ratio | undefined {
  if (!a || !b) return undefined;
  const per: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (b[i]![key] > 0) per.push(a[i]![key] / b[i]![key]);
  if (!per.length) return undefined;
  return { median: median(per), min: Math.min(...per), max: Math.max(...per) };
}

const ratio = (rounds: Rounds, a: string, b: string, key: 'rps' | 'p99') => pairedRatio(rounds.get(a), rounds.get(b), key);

/** Records a target check; when it is missed, `whyMissed` goes into the notes. */
function verdict(label: string, measured: number | Ratio | undefined, target: string, pass: (v: number) => boolean, unit = '', whyMissed?: string): void {
  if (measured === undefined) {
    verdicts.push(`- ${label}: not measured (${target})`);
    return;
  }
  const value = typeof measured === 'number' ? measured : measured.median;
  const range = typeof measured === 'number' ? '' : ` (rounds ${fmt(measured.min, 2)}-${fmt(measured.max, 2)})`;
  const shown = (unit === 'µs' ? `${fmt(value * 1000, 2)} µs` : unit === 'ms' ? `${fmt(value, 0)} ms` : unit === 's' ? `${fmt(value, 2)} s` : `${fmt(value, 2)}`) + range;
  if (!target) {
    verdicts.push(`- ${label}: ${shown} (no target)`);
    return;
  }
  const met = pass(value);
  verdicts.push(`- ${label}: **${shown}** (target ${target}) ${met ? 'met' : '**not met**'}`);
  if (!met && whyMissed) notes.push(`${label}, target missed: ${whyMissed}`);
}

const WHY = {
  static:
    'the static path does no per-request work beyond map lookups and one prepared header array (a CPU profile puts the static code under 1%); ' +
    "what is left is Node's HTTP server: llhttp's callbacks into JavaScript, the IncomingMessage and ServerResponse objects, the header " +
    "validation and a writev per answer, about twice nginx's CPU per request (a 304 has no body to amortise it over, so it is furthest behind). " +
    'One edge per core (TENANTRY_EDGES) is how Tenantry uses more cores, as nginx does with its workers; every row here pins one edge ' +
    'to one core against one nginx worker, and on this 2-core machine the load generator needs the other. The next step is a native ' +
    "front for static files (nginx or Caddy serving the releases' files from the manifest the edge already writes), or an HTTP " +
    'server that parses and answers in native code for the in-memory cache hits (uWebSockets.js is not on the npm registry).',
  p99:
    "a Node process answers 32 connections in batches per event-loop turn, and pauses (garbage collection, timers) show in the tail; on this " +
    'shared machine, other processes preempting the server or wrk add more. nginx answers each connection as it comes. Several edge ' +
    'processes, or a native front for static files, would bring the tail down.',
  dynamic:
    "the edge relays the worker's answer itself (one write of a request head it builds, only the answer's head parsed, the body passed " +
    "on as it arrives), which took the ratio to nginx -> Express from about 0.82 to 0.88 in paired runs. The CPU-time rows show what is left: " +
    "the tenant worker alone is as fast as bare Express (the autocannon row), and the edge still spends about twice nginx's CPU per " +
    "request, most of it in Node's HTTP server and the two socket writes (a CPU profile puts the edge's own JavaScript under 10%). " +
    'Unpinned, the worker runs at its one-core quota (which also pays for V8\'s garbage-collection threads, free for an uncapped ' +
    "Express) while the edge and the load generator share the other core. Next: let a native front (nginx) proxy the dynamic routes " +
    'to the worker sockets with the edge deciding only the routing.',
  cold:
    "a warm worker (Node and the runtime already loaded in its sandbox) is given the tenant: the supervisor mounts the tenant's release, " +
    "data folder and /tmp into the worker's slot (three mount(8) processes, in parallel), moves it into the tenant's cgroup, sets " +
    'RLIMIT_NPROC (a prlimit process), then the runtime switches user, loads the routes and listens, and the pool sees it healthy. ' +
    "Without a warm worker (the pool empty, or a tenant with plugins, network or another memory limit) the request waits for a whole " +
    "Node start with Express (about 0.25 s of CPU here). Next: the mounts through one small helper instead of mount(8), and the runtime " +
    'telling the pool it listens instead of the health check.',
  incremental:
    'the time is the release switch, not the transfer: the release is 2,000 new hard links and their folders (fsynced), the compressed copies of ' +
    'unchanged files linked from the live release, a new manifest, and then the same activation as any deploy, of which the seal (chgrp and chmod ' +
    'over every file, by the sealer process) is a large part. Sealing only what is new (objects could arrive sealed) is the next step.',
  deploy:
    'most of the time is unpacking (gunzip, tar, the per-entry checks and 2,000 file writes) and then setting the release file modes in a second ' +
    'walk; indexing and hashing the release for static serving takes about 0.1 s of it. Reaching 2 s on a busy machine needs hashing and sealing ' +
    'done while extracting (each byte and entry is already in hand there) instead of in later walks.',
};

async function get(origin: string, host: string, urlPath: string, headers: Record<string, string> = {}) {
  return request(origin, { host, path: urlPath, headers });
}

async function etagOf(s: RunningServer, host: string, urlPath: string): Promise<string> {
  const u = new URL(s.origin);
  return new Promise((resolve, reject) => {
    import('node:http').then(({ default: http }) => {
      http
        .get({ host: u.hostname, port: u.port, path: urlPath, headers: { Host: host }, agent: false }, (res) => {
          res.resume();
          const tag = res.headers.etag;
          if (!tag) reject(new Error(`${s.name} sent no ETag for ${urlPath}`));
          else resolve(tag);
        })
        .on('error', reject);
    });
  });
}

/** Waits until deploy-time compression of every bench site has finished (it runs after going live). */
async function waitForCompression(t: TenantryServer, sites: SiteFixture[], timeoutMs = 180_000): Promise<number> {
  const started = performance.now();
  const last = sites[sites.length - 1]!;
  const probe = [...last.paths].reverse().find((p) => /\.(html|css|js|json|svg)$/.test(p))!;
  for (;;) {
    const r = await new Promise<string | undefined>((resolve) => {
      import('node:http').then(({ default: http }) => {
        const u = new URL(t.origin);
        http
          .get({ host: u.hostname, port: u.port, path: probe, headers: { Host: `${last.id}.localhost`, 'Accept-Encoding': 'br' }, agent: false }, (res) => {
            res.resume();
            resolve(res.headers['content-encoding'] as string | undefined);
          })
          .on('error', () => resolve(undefined));
      });
    });
    if (r === 'br') return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error('precompression did not finish in time');
    await new Promise((res) => setTimeout(res, 250));
  }
}

function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const nginx = HAS_NGINX ? (spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim().replace('nginx version: ', '')) : 'not installed';
  return `${cpu}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}, ${nginx}, load generator ${generatorName()}`;
}

function table(): string {
  const lines = ['| scenario | server | requests/s | p50 ms | p99 ms | vs nginx | vs nginx tuned | vs Express |', '|---|---|---:|---:|---:|---:|---:|---:|'];
  const byScenario = new Map<string, Row[]>();
  for (const r of rows) byScenario.set(r.scenario, [...(byScenario.get(r.scenario) ?? []), r]);
  for (const [scenario, list] of byScenario) {
    // The dynamic route's nginx is the proxy in front of the Express app.
    const nginx = list.find((r) => r.server === 'nginx' || r.server === NGINX_PROXY)?.rounds;
    const tuned = list.find((r) => r.server === 'nginx tuned')?.rounds;
    const express = list.find((r) => r.server.startsWith('express') || r.server.startsWith('Express'))?.rounds;
    const pct = (x: Ratio | undefined) => (x ? `${fmt(x.median * 100)}% (${fmt(x.min * 100)}-${fmt(x.max * 100)})` : '');
    for (const r of list) {
      if (!r.result) {
        lines.push(`| ${scenario} | ${r.server} | ${r.value ?? '-'} | | | | | ${r.note ?? ''} |`);
        continue;
      }
      const vsNginx = r.server.startsWith('nginx') ? '' : pct(pairedRatio(r.rounds, nginx, 'rps'));
      const vsTuned = r.server.startsWith('nginx') ? '' : pct(pairedRatio(r.rounds, tuned, 'rps'));
      const vsExpress = r.server === 'Tenantry' ? pct(pairedRatio(r.rounds, express, 'rps')) : '';
      lines.push(`| ${scenario} | ${r.server} | ${fmt(r.result.rps)} | ${fmt(r.result.p50, 2)} | ${fmt(r.result.p99, 2)} | ${vsNginx} | ${vsTuned} | ${vsExpress} |`);
    }
  }
  return lines.join('\n');
}

interface Context {
  o: Options;
  sites: SiteFixture[];
  /** Host of the first bench tenant. */
  host: string;
  work: string;
  dataDir: string;
  tenantryEnv: Record<string, string>;
  token: string;
  /** Every running server (stopped at the end). */
  servers: RunningServer[];
  staticServers?: RunningServer[];
  tenantry: TenantryServer;
  api: TenantryApi;
  expressRoute: RunningServer;
  /** nginx proxying to expressRoute (keep-alive upstream); undefined without nginx. */
  nginxProxy?: RunningServer;
}

async function smallFile(c: Context): Promise<void> {
  const small = await measure('static 14 KB file', c.staticServers!, [{ host: c.host, path: SMALL_FILE }], c.o);
  verdict('static 14 KB file, Tenantry requests/s / nginx', ratio(small, 'Tenantry', 'nginx', 'rps'), '>= 0.80', (v) => v >= 0.8, '', WHY.static);
  verdict('static 14 KB file, Tenantry p99 / nginx p99', ratio(small, 'Tenantry', 'nginx', 'p99'), '<= 2.0', (v) => v <= 2, '', WHY.p99);
  verdict('static 14 KB file, Tenantry requests/s / nginx tuned', ratio(small, 'Tenantry', 'nginx tuned', 'rps'), '', () => true);
  verdict('static 14 KB file, Tenantry p99 / nginx tuned p99', ratio(small, 'Tenantry', 'nginx tuned', 'p99'), '', () => true);
}

async function mixOfFiles(c: Context): Promise<void> {
  const targets = c.sites.flatMap((s) => s.paths.map((p) => ({ host: `${s.id}.localhost`, path: p })));
  const mix = await measure(`mix ${MIX_TENANTS * MIX_FILES_PER_TENANT} files / ${MIX_TENANTS} tenants`, c.staticServers!, targets, c.o);
  verdict('1,000-file mix, Tenantry requests/s / nginx', ratio(mix, 'Tenantry', 'nginx', 'rps'), '>= 0.60', (v) => v >= 0.6, '', WHY.static);
  verdict('1,000-file mix, Tenantry requests/s / nginx tuned', ratio(mix, 'Tenantry', 'nginx tuned', 'rps'), '', () => true);
}

async function revalidation(c: Context): Promise<void> {
  const reval = await measure('304 revalidation', c.staticServers!, [{ host: c.host, path: SMALL_FILE }], c.o, async (s) => ({ 'If-None-Match': await etagOf(s, c.host, SMALL_FILE) }));
  verdict('304 revalidation, Tenantry requests/s / nginx', ratio(reval, 'Tenantry', 'nginx', 'rps'), '>= 0.75', (v) => v >= 0.75, '', WHY.static);
}

const NGINX_PROXY = 'nginx -> Express';

async function dynamicRoute(c: Context): Promise<void> {
  const probe = await get(c.tenantry.origin, c.host, '/api/hello');
  if (probe.status !== 200) {
    rows.push({ scenario: 'dynamic JSON route', server: 'Tenantry', value: 'skipped', note: `/api/hello answered ${probe.status}` });
    notes.push(`The dynamic-route scenario was skipped: /api/hello answered ${probe.status} (${probe.body.slice(0, 120)}).`);
    return;
  }
  const target = [{ host: c.host, path: '/api/hello' }];
  const servers = [c.tenantry, ...(c.nginxProxy ? [c.nginxProxy] : []), c.expressRoute];
  // Pinned: the server side (edge and worker, nginx and the app, or the Express app) gets CPU 0 alone.
  const pinnedRun = await measure('dynamic JSON route, pinned', servers, target, c.o);
  verdict('dynamic route pinned, Tenantry (edge + worker on one core) / nginx -> Express (both on one core)', ratio(pinnedRun, 'Tenantry', NGINX_PROXY, 'rps'), '', () => true);
  verdict('dynamic route pinned, Tenantry (edge + worker on one core) / bare Express', ratio(pinnedRun, 'Tenantry', 'Express route', 'rps'), '', () => true);
  // Unpinned: the kernel places the load generator, the edge and the worker (nginx and the app) on the two cores.
  for (const s of servers) setAffinity(s.child.pid, undefined);
  const unpinned = await measure('dynamic JSON route', servers, target, c.o, undefined, 'default', 'any');
  for (const s of servers) setAffinity(s.child.pid, SERVER_CPU);
  verdict('dynamic route, Tenantry (edge + worker) / nginx -> Express', ratio(unpinned, 'Tenantry', NGINX_PROXY, 'rps'), '>= 1.0', (v) => v >= 1.0, '', WHY.dynamic);
  verdict('dynamic route, Tenantry (edge + worker) / bare Express', ratio(unpinned, 'Tenantry', 'Express route', 'rps'), '>= 0.90', (v) => v >= 0.9, '', WHY.dynamic);
  // CPU time per request hardly moves with what else runs on the machine, unlike requests/s.
  for (const s of servers) verdicts.push(`- dynamic route, CPU time per request of ${s.name} (pinned run, median of rounds): ${cpuSplit(pinnedRun.get(s.name))}`);
  // Where the time goes: the tenant's worker loaded directly over its unix socket, next to the same
  // two servers, all with autocannon (wrk cannot use a unix socket).
  const runDir = path.join(c.dataDir, 'run', c.sites[0]!.id);
  const socket = fs.existsSync(runDir) ? fs.readdirSync(runDir).find((f) => f.endsWith('.sock')) : undefined;
  if (!socket) {
    notes.push('The worker-alone measurement was skipped: no worker socket was found.');
    return;
  }
  const worker: RunningServer = { ...c.tenantry, name: 'worker alone', socketPath: path.join(runDir, socket) };
  const split = await measure('dynamic route, pinned, autocannon', [c.tenantry, worker, c.expressRoute], target, c.o, undefined, 'autocannon');
  verdict('dynamic route pinned, autocannon, Tenantry / bare Express', ratio(split, 'Tenantry', 'Express route', 'rps'), '', () => true);
  verdict('dynamic route pinned, autocannon, the tenant worker alone / bare Express', ratio(split, 'worker alone', 'Express route', 'rps'), '', () => true);
}

/**
 * First requests of tenants with nothing running: the api/ route of 20 tenants
 * in four passes (cold-starts.ts), then, after a restart, the static files of
 * 5 tenants with nothing loaded. Leaves Tenantry running for the next scenarios.
 */
async function coldStart(c: Context): Promise<void> {
  await c.tenantry.stop();
  c.servers.splice(c.servers.indexOf(c.tenantry), 1);
  const passes = await coldStartPasses({ dataDir: c.dataDir, work: c.work, token: c.token, cpu: SERVER_CPU, env: c.tenantryEnv, log });
  const t = await startTenantry(c.dataDir, SERVER_CPU, c.tenantryEnv);
  c.tenantry = t;
  c.servers.push(t);
  c.api = new TenantryApi(t.origin, c.token);
  const staticCold: number[] = [];
  for (const s of c.sites.slice(API_TENANTS, API_TENANTS + 5)) {
    try {
      const r = await get(t.origin, `${s.id}.localhost`, SMALL_FILE);
      if (r.status === 200) staticCold.push(r.firstByteMs);
      else notes.push(`Cold start of ${s.id}.localhost${SMALL_FILE}: answered ${r.status}.`);
    } catch (err) {
      notes.push(`Cold start of ${s.id}.localhost${SMALL_FILE} failed: ${(err as Error).message}`);
    }
  }
  const scenario = 'cold start (first request, nothing running)';
  if (staticCold.length) {
    rows.push({ scenario, server: 'Tenantry static, after a restart', value: `${fmt(percentile(staticCold, 50), 1)} ms median, ${fmt(Math.max(...staticCold), 1)} ms max`, note: `${staticCold.length} tenants, site index loaded from its manifest` });
  }
  const notesOf: Record<string, string> = {
    'after a restart': 'the platform just started: the tenant\'s disk image is mounted first; a warm worker given the tenant',
    idle: 'worker stopped by the idle timeout, platform running: a warm worker given the tenant (the target row)',
    'idle, 20 in a burst': `back to back: the warm pool (one per core) is soon empty and the rest start cold`,
    'idle, no warm workers': 'TENANTRY_WARM_WORKERS=0: every worker a whole sandboxed Node start, as before warm workers',
  };
  for (const p of passes) {
    for (const f of p.failures) notes.push(`Cold start (${p.name}) ${f}`);
    if (!p.ms.length) continue;
    rows.push({
      scenario,
      server: `Tenantry api/ route, ${p.name}`,
      value: `p50 ${fmt(percentile(p.ms, 50), 0)} ms, p99 ${fmt(percentile(p.ms, 99), 0)} ms`,
      note: `${p.ms.length} tenants, first byte; ${notesOf[p.name] ?? ''} (isolation ${c.o.isolation})`,
    });
    if (p.name === 'idle') {
      verdict(`cold start of an idle tenant's api/ route, time to first byte (p50 of ${p.ms.length})`, percentile(p.ms, 50), '< 100 ms', (v) => v < 100, 'ms', WHY.cold);
      verdict(`cold start of an idle tenant's api/ route, time to first byte (p99 of ${p.ms.length})`, percentile(p.ms, 99), '< 250 ms', (v) => v < 250, 'ms', WHY.cold);
    }
  }
}

async function largeDeploy(c: Context): Promise<void> {
  const deployDir = path.join(c.work, 'large-deploy');
  const large = makeLargeDeploy(deployDir);
  const archive = await packDir(deployDir);
  await c.api.createTenant('bench-deploy');
  const d = await c.api.deployArchive('bench-deploy', archive);
  const check = await get(c.tenantry.origin, 'bench-deploy.localhost', '/section-19/item-1999.webp');
  rows.push({
    scenario: `deploy ${fmt(large.files)} files / ${fmt(large.bytes / 2 ** 20, 1)} MiB`,
    server: 'Tenantry',
    value: `${fmt(d.ms, 0)} ms to live`,
    note: `upload of a ${fmt(archive.length / 2 ** 20, 1)} MiB tar.gz over loopback until the API answers 201; a file of it then answered ${check.status}`,
  });
  verdict('2,000-file deploy, upload to live', d.ms / 1000, '< 2 s', (v) => v < 2, 's', WHY.deploy);

  // The same folder again by manifest, one file changed per round (the first round a warm-up).
  await c.api.createTenant(INCREMENTAL_TENANT);
  const changed = 'public/section-0/item-0.html';
  const incr = await incrementalRedeploys(new ManifestClient(c.tenantry.origin, c.token), INCREMENTAL_TENANT, deployDir, changed, c.o.rounds <= 1 ? 2 : 6);
  const counted = incr.rounds.slice(1);
  const live = counted.map((r) => r.ms);
  const hashing = counted.map((r) => r.hashMs);
  const changedBytes = fs.statSync(path.join(deployDir, changed)).size;
  const onlyChanged = counted.every((r) => r.uploaded === 1 && r.fileBytesSent === changedBytes);
  const manifestKiB = (counted[0]!.bytesSent - counted[0]!.fileBytesSent) / 1024;
  rows.push({
    scenario: `redeploy ${fmt(incr.files)} files, one changed`,
    server: 'Tenantry',
    value: `${fmt(median(live), 0)} ms to live (${fmt(Math.min(...live), 0)}-${fmt(Math.max(...live), 0)})`,
    note:
      `by manifest, median of ${counted.length}: manifest, upload of what is missing, finalize, until the API answers 201; ` +
      `${onlyChanged ? `only the changed file (${fmt(changedBytes)} B)` : 'MORE than the changed file'} and a ${fmt(manifestKiB, 0)} KiB manifest sent; ` +
      `${fmt(median(live) / d.ms, 2)} of the full deploy above; the client hashed the folder in ${fmt(median(hashing), 0)} ms more`,
  });
  verdict('redeploy of 2,000 files with one changed, manifest to live (median)', median(live), '< 300 ms', (v) => v < 300, 'ms', WHY.incremental);
  verdict('redeploy of 2,000 files with one changed, file bytes sent / the changed file', onlyChanged ? 1 : 0, '= 1', (v) => v === 1, '', 'a file other than the changed one was uploaded: the store lost objects the live release holds');
}

const INCREMENTAL_TENANT = 'bench-incr';

/** Tenantry alone: what the rules and tenants scenarios need. */
type ScaleContext = Pick<Context, 'o' | 'work' | 'tenantry' | 'api'>;

const RULES_TENANT = 'bench-rules';
const NO_RULES_TENANT = 'bench-norules';

async function rulesAtScale(c: ScaleContext): Promise<void> {
  const t = timeRules();
  const scenario = `${fmt(t.rules)} _redirects rules`;
  const us = (ms: number) => `${fmt(ms * 1000, 2)} µs`;
  rows.push({ scenario, server: 'matching, indexed', value: `miss ${us(t.missMs)}, hit ${us(t.hitMs)}`, note: `per request, timed directly; parsing and indexing at release load ${fmt(t.compileMs, 0)} ms` });
  rows.push({ scenario, server: 'matching, every rule in turn', value: `miss ${fmt(t.linearMissMs, 1)} ms, hit ${fmt(t.linearHitMs, 1)} ms`, note: 'the scan the edge did before, for reference (hit: the last rule)' });
  verdict(`${fmt(t.rules)} rules, matching time per request that no rule matches`, t.missMs, '< 0.05 ms', (v) => v < 0.05, 'µs');
  verdict(`${fmt(t.rules)} rules, matching time per request that the last rule matches`, t.hitMs, '< 0.05 ms', (v) => v < 0.05, 'µs');
  // Two tenants with the same small site, one with the rules file; a path that no rule or file answers (404 page) on both.
  for (const [id, withRules] of [[RULES_TENANT, true], [NO_RULES_TENANT, false]] as const) {
    const dir = path.join(c.work, id);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>rules</title>\n');
    fs.writeFileSync(path.join(dir, '404.html'), '<!doctype html><title>not here</title>\n');
    if (withRules) fs.writeFileSync(path.join(dir, '_redirects'), makeRedirects());
    await c.api.createTenant(id);
    await c.api.deployArchive(id, await packDir(dir));
  }
  const withRules: RunningServer = { ...c.tenantry, name: 'Tenantry, rules' };
  const without: RunningServer = { ...c.tenantry, name: 'Tenantry, no rules' };
  const host = (s: RunningServer) => `${s === withRules ? RULES_TENANT : NO_RULES_TENANT}.localhost`;
  const missRun = await measure(`${scenario}: a miss (404 page)`, [withRules, without], (s) => [{ host: host(s), path: MISS_PATH }], c.o);
  verdict(`${fmt(t.rules)} rules, requests/s of a miss, with the rules / without`, ratio(missRun, 'Tenantry, rules', 'Tenantry, no rules', 'rps'), '', () => true);
  await measure(`${scenario}: a hit (the last rule, 301)`, [withRules], [{ host: host(withRules), path: lastRulePath() }], c.o);
}

async function tenantsScale(c: ScaleContext): Promise<void> {
  const r = await tenantsAtScale(c.api, c.tenantry.origin, c.tenantry.child.pid!, c.o.tenants);
  const scenario = `${fmt(r.count)} tenants (isolation ${c.o.isolation})`;
  rows.push({ scenario, server: 'Tenantry create', value: `${fmt(r.createMs / 1000, 1)} s`, note: `one after another through the API; per tenant median ${fmt(r.medianMs, 1)} ms, max ${fmt(r.maxMs, 0)} ms` });
  rows.push({ scenario, server: 'Tenantry edge RSS', value: `${fmt(r.edgeRssMiB, 0)} MiB`, note: `after each tenant answered its starter page once (${r.served} of ${r.count} answered 200, in ${fmt(r.serveMs / 1000, 1)} s)` });
  rows.push({ scenario, server: 'Tenantry delete', value: `${fmt(r.deleteMs / 1000, 1)} s`, note: 'all of them, users and folders with them' });
  verdict(`creating a tenant (median of ${fmt(r.count)})`, r.medianMs, '< 50 ms', (v) => v < 50, 'ms');
  verdict(`creating ${fmt(r.count)} tenants`, r.createMs / 1000, '< 60 s', (v) => v < 60, 's');
  verdict(`${fmt(r.count)} tenants, edge memory (RSS) once each served its page`, r.edgeRssMiB, '< 300 MiB', (v) => v < 300, 'MiB');
  rows.push({ scenario, server: 'Tenantry processes', value: `${r.processesBefore} before, ${r.processesAfter} after`, note: 'the platform\'s whole process tree (supervisor, edges, warm workers) before the tenants were made and after each served its page: an idle static tenant runs nothing' });
  verdict(`${fmt(r.count)} static tenants, processes added once each served its page`, r.processesAfter - r.processesBefore, '= 0', (v) => v <= 0, '');
  if (r.served !== r.count) notes.push(`Only ${r.served} of ${r.count} new tenants answered their starter page with 200.`);
}

/** TENANTRY_EDGES=1 against 2 on one socket, nothing pinned (a separate Tenantry per run). */
async function severalEdges(o: Options, work: string): Promise<void> {
  log('several edges: one 14 KB file with 1 edge, then 2 (unpinned), and 5 deploys checked from both ...');
  const r = await edgesOnOneSocket(work, { isolation: o.isolation, durationSec: o.durationSec, connections: o.connections });
  const scenario = 'Several edges (14 KB file, unpinned)';
  rows.push({ scenario, server: 'Tenantry 1 edge', result: r.single });
  rows.push({ scenario, server: 'Tenantry 2 edges', result: r.double, note: `${fmt(r.double.rps / r.single.rps, 2)}x of 1 edge, one run; the load generator shares the 2 cores` });
  rows.push({ scenario, server: 'CPU time by edge', value: r.cpuShares.map((x) => `${fmt(x * 100, 0)}%`).join(' / '), note: 'share of the edges\' CPU time under that load: the kernel spreads the connections' });
  rows.push({ scenario, server: 'after each 201', value: `${r.stale} stale of ${r.checks}`, note: `new connections right after each of 5 deploys, answered by ${r.edgesSeen} edges` });
  if (r.stale !== 0) notes.push(`${r.stale} requests after a deploy's 201 saw the previous release: the edges' switch is broken.`);
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  // Not below /tmp: warm workers are off for a data folder there (the sandbox's /tmp is theirs).
  const work = fs.mkdtempSync(path.join(fs.existsSync('/var/tmp') ? '/var/tmp' : os.tmpdir(), 'tenantry-bench-'));
  fs.chmodSync(work, 0o755);
  const started = new Date();
  log(`Tenantry benchmark: ${machineLine()}`);
  log(`server processes on CPU ${SERVER_CPU ?? 'any'}, load generator on CPU ${LOAD_CPU ?? 'any'}${TASKSET ? '' : ' (taskset missing: not pinned)'}; ${o.rounds} round(s) of ${o.durationSec} s after ${o.warmupSec} s warm-up, ${o.connections} connections`);
  if (!WRK) notes.push('wrk is not installed: autocannon ran in this Node process instead (it is slower than wrk, so every server shows lower numbers).');
  if (!TASKSET || SERVER_CPU === undefined) notes.push('Processes were not pinned to CPUs (taskset missing or one core): server and load generator competed for the same cores.');

  const wanted = (key: string) => o.only.size === 0 || o.only.has(key);
  // nginx, Express and the 20 bench sites only for the scenarios that compare with them.
  const classic = ['small', 'mix', '304', 'dynamic', 'cold', 'deploy'].some(wanted);
  const sites = classic ? makeSites(path.join(work, 'sites')) : [];
  const servers: RunningServer[] = [];
  const token = crypto.randomBytes(24).toString('hex');
  const tenantryEnv = { TENANTRY_ADMIN_TOKEN: token, TENANTRY_ISOLATION: o.isolation, TENANTRY_WORKER_IDLE_SECONDS: '600' };
  const dataDir = path.join(work, 'data');
  try {
    let tenantry = await startTenantry(dataDir, SERVER_CPU, tenantryEnv);
    servers.push(tenantry);
    let api = new TenantryApi(tenantry.origin, token);
    // The cold-start scenario restarts Tenantry: go on with the one it left running.
    if (classic) ({ tenantry, api } = await classicScenarios({ o, sites, work, dataDir, tenantryEnv, token, servers, tenantry, api }, wanted));
    if (wanted('rules')) await rulesAtScale({ o, work, tenantry, api });
    if (wanted('tenants')) await tenantsScale({ o, work, tenantry, api });
    if (wanted('edges')) await severalEdges(o, work);
  } finally {
    for (const s of servers) await s.stop().catch(() => {});
    // Tenant users/cgroups made with isolation on are removed by deleting the tenants.
    if (o.isolation !== 'off') {
      try {
        const t = await startTenantry(dataDir, SERVER_CPU, tenantryEnv);
        const cleanup = new TenantryApi(t.origin, token);
        for (const s of [...sites.map((x) => x.id), 'bench-deploy', INCREMENTAL_TENANT, RULES_TENANT, NO_RULES_TENANT, 'demo']) await cleanup.deleteTenant(s);
        await t.stop();
      } catch (err) {
        log(`cleanup: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    fs.rmSync(work, { recursive: true, force: true });
  }

  const out = table();
  log('\n' + out + '\n');
  log(verdicts.join('\n'));
  if (notes.length) log('\nNotes:\n' + notes.map((n) => `- ${n}`).join('\n'));
  if (o.writeDocs) {
    const file = path.join(REPO_ROOT, 'docs', 'benchmarks.md');
    fs.writeFileSync(file, renderDoc(o, started, out) + handWrittenSections(file));
    log(`\nwritten to ${path.relative(process.cwd(), file)}`);
  }
}

/** The scenarios that compare with nginx and Express, on the 20 bench sites. */
async function classicScenarios(base: Omit<Context, 'host' | 'expressRoute' | 'staticServers'>, wanted: (key: string) => boolean): Promise<ScaleContext> {
  const { o, sites, servers, tenantry, api } = base;
  let nginx: RunningServer | undefined;
  let nginxTuned: RunningServer | undefined;
  if (HAS_NGINX) {
    nginx = await startNginx(base.work, sites, SERVER_CPU, 'stock');
    nginxTuned = await startNginx(base.work, sites, SERVER_CPU, 'tuned');
    servers.push(nginx, nginxTuned);
  } else {
    notes.push('nginx is not installed: the nginx column and the ratios to it are missing (apt-get install nginx).');
  }
  const expressStatic = await startExpress('static', sites, SERVER_CPU);
  const expressRoute = await startExpress('route', sites, SERVER_CPU);
  servers.push(expressStatic, expressRoute);
  const nginxProxy = HAS_NGINX && wanted('dynamic') ? await startNginxProxy(base.work, expressRoute, SERVER_CPU) : undefined;
  if (nginxProxy) servers.push(nginxProxy);
  log('deploying the 20 bench sites to Tenantry through the API ...');
  for (const [i, s] of sites.entries()) {
    await api.createTenant(s.id);
    // The default tenant CPU quota is half a core; the Express baseline gets a whole one, so the worker does too.
    if (i < API_TENANTS) await api.setLimits(s.id, { cpuPercent: 100 });
    await api.deployArchive(s.id, await packDir(s.dir));
  }
  const compressMs = await waitForCompression(tenantry, sites);
  log(`deploy-time compression of the 20 sites finished ${fmt(compressMs / 1000, 1)} s after the last deploy went live`);
  const ctx: Context = { ...base, host: `${sites[0]!.id}.localhost`, expressRoute, ...(nginxProxy ? { nginxProxy } : {}) };
  ctx.staticServers = [nginx, nginxTuned, tenantry, expressStatic].filter((s): s is RunningServer => s !== undefined);
  if (wanted('small')) await smallFile(ctx);
  if (wanted('mix')) await mixOfFiles(ctx);
  if (wanted('304')) await revalidation(ctx);
  if (wanted('dynamic')) await dynamicRoute(ctx);
  if (wanted('cold')) await coldStart(ctx);
  if (wanted('deploy')) await largeDeploy(ctx);
  return ctx;
}

const loadAtStart = os.loadavg().map((x) => x.toFixed(2)).join(' ');

/**
 * The sections of docs/benchmarks.md written by hand (from its first "## "
 * heading on: analyses, runs by hand), kept when the measured part is rewritten.
 */
function handWrittenSections(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
  const at = text.search(/^## /m);
  return at < 0 ? '' : '\n' + text.slice(at);
}

function renderDoc(o: Options, started: Date, tableText: string): string {
  return `# Benchmarks

Measured by \`npm run bench\` on ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC. Run it yourself:
\`npm run bench\` (about 6 minutes; \`-- --quick\` for one short round, \`-- --only small,mix,304,dynamic,cold,deploy,rules,tenants\`
to choose scenarios, \`-- --no-docs\` to leave this file alone). It needs wrk (or falls back to autocannon) and uses
nginx when installed; Tenantry runs as root with isolation \`auto\` when it can, and removes its bench tenants at the end.

Machine: ${machineLine()}.

Method: every server runs as its own process on loopback, pinned to CPU ${SERVER_CPU ?? 'any'}; the load
generator is pinned to CPU ${LOAD_CPU ?? 'any'} (${o.connections} connections, one thread), so the two do not
fight for a core. For Tenantry "the server" is the whole process tree: the edge and, for dynamic routes, the
tenant's worker share that one core, as the Express baseline has one core. Each figure is the median of ${o.rounds}
rounds of ${o.durationSec} s (requests/s, p50 and p99 each the median over the rounds), after
a ${o.warmupSec} s warm-up, servers interleaved round by round so that disturbances hit all of them alike.
Each ratio (the "vs" columns and the targets) is the median of the per-round paired ratios: server A's
result of round i over server B's result of the same round i, measured a moment apart; the minimum and maximum of
those per-round ratios follow in parentheses. (Before 2026-12-01 each server's best round was taken separately
and the ratio made of two bests, which could pair a lucky round of one server with a lucky round of another.) Load
average of the machine at the start and end of the run: ${loadAtStart} and ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}
(anything above 0 is other work on the machine). nginx runs one worker, twice: "nginx" with the settings
Debian ships that matter here (\`sendfile\`, \`tcp_nopush\`; access log off, as Tenantry logs no static
requests), which is the reference for the targets, and "nginx tuned", which also keeps open files cached
(\`open_file_cache\`: no open/fstat per request) and never closes keep-alive connections; the Express baselines are a bare \`express.static\` (one per
Host) and a bare Express app with one JSON route. Every server serves the same files. The dynamic route is
measured twice: pinned (the server side on CPU 0 alone) and unpinned (the kernel places the load generator, the
edge and the worker over both cores, as a small machine runs a two-process server; the target is judged on
this run). The bench tenants with a dynamic route get a CPU quota of one core (\`cpuPercent: 100\`;
the default is 50), the budget the Express baseline has. Tenantry runs as
\`npm start\` does (isolation \`${o.isolation}\`), with the sites uploaded through its deploy API; requests
send no Accept-Encoding, so every server sends the same bytes.

${tableText}

Targets:

${verdicts.join('\n')}
${notes.length ? `\nNotes:\n\n${notes.map((n) => `- ${n}`).join('\n')}\n` : ''}
${ANALYSIS}`;
}

const ANALYSIS = `What the numbers mean:

- Several edges (\`--only edges\`, \`TENANTRY_EDGES\`): every other row runs one edge, pinned to one core like
  nginx's one worker. This machine has 2 cores, so the edges row can only show the mechanism: both edges accept on
  the one listening socket and share the static load, and every request on a new connection right after a deploy's
  201 gets the new release, whichever edge took it. Throughput barely moves here, since wrk needs a core of its own.
  On 16 cores (the default is one edge per core, at most 8) static requests/s should grow close to linearly with the
  edges, about 8 times one edge's rate, as with nginx's \`worker_processes auto\`: a sibling edge answers a static
  request from its own in-memory index and cache and shares nothing with the others per request (no lock, no query,
  no message). What stays on the first edge, and so on one core, is everything it forwards: the control API, git,
  HTTPS (the HTTPS socket is not shared yet) and the hop to tenants' workers (one worker per tenant, owned by the
  first edge). Dynamic routes do not scale with the edges, and a sibling adds one local hop to them; the tenants'
  workers themselves run on every core already. Each edge holds its own copy of the indexes and of the small-file
  cache (up to 64 MiB each), so memory grows with the edges, which is one reason for the cap of 8.

- Static files never reach a worker. The edge answers from an in-memory index of the live release
  (paths, sizes, content hashes, prepared header arrays, parsed rules) and a shared, byte-bounded cache of
  small files: no stat, database query or rule parsing per request. A CPU profile of the edge under the
  14 KB scenario shows Node's HTTP internals and the \`writev\` system call; the static-file code itself
  (lookup, conditional checks, choosing the header array) is under 1% of the samples.
- The machine is shared: other processes ran during the measurement (see the load average above) and move
  single figures by 30% or more. Compare ratios measured in the same run, and rerun \`npm run bench\`
  on a quiet machine for absolute figures.
- Cold start: after a restart the first request of a static tenant loads its site index from the manifest
  written at deploy (no re-hashing); the first api/ request spawns the tenant's sandboxed worker.
- Rules at scale (\`--only rules\`): 45,000 \`_redirects\` rules generated in the shape of Netlify's benchmark file
  (mostly one-to-one moves of old URLs, with section splats, \`:placeholders\` and query conditions among them;
  nothing is fetched). "matching" is the matcher timed directly in the bench process over many calls, for a path no
  rule matches and for the path of the last rule; "every rule in turn" is the former linear scan, for reference. The
  edge indexes the rules at release load in a trie of their static leading segments; a request checks, in file order,
  only the rules on the nodes its own segments walk through (each still with its compiled pattern), so the first
  match and the order of merged \`_headers\` are those of the linear scan. The wrk rows ask two tenants with the same
  small site, one with the rules and one without, for a path that nothing answers (the 404 page: wrk counts those
  404s as errors), and the rules tenant for the last rule's path (a 301).
- Tenants at scale (\`--only tenants\`, \`--tenants N\`, default 1,000): tenants created one after another through the
  API (isolation as configured: as root, each gets its own Unix user), the edge's resident memory once each has
  answered its starter page once, then all deleted (their users with them).
- Dynamic route, CPU time per request: the user and system CPU time of each server's processes during the
  pinned rounds (from /proc), divided by the requests answered, split by process (the edge and the tenant's
  worker; nginx and the Express app behind it). Unlike requests/s, it moves little with what else runs on the
  machine, so it says where a request's cost is even on a loaded machine.
- A deploy is live once it is unpacked, checked, indexed and switched; the brotli and gzip copies of its text
  files are made after that, in a deploy worker (its own process, nice 10), and served once they are recorded.
`;

main().catch((err) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  process.exit(1);
});
