// How much one tenant's deploys slow another tenant's static files: the
// latency of a 4 MB file of tenant "quiet" while nothing else happens, then
// while tenant "busy" deploys a 19,000-file archive three times in a row
// (unpacking, hashing and brotli/gzip of every file), as p50/p99 and their
// ratio to quiet. The server (edge, its deploy workers) is pinned to one core,
// the client to the other, so the deploy competes with serving for that core.
//
//   npm run bench:deploy-interference [-- --deploys N (3) --quiet S (10) --files N (19000) --clients N (2) --isolation auto|off (auto)]
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startTenantry } from './servers.js';
import { packDir, TenantryApi } from './tenantry-api.js';
import { setAffinity } from './load.js';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] ?? fallback : fallback;
}

const LARGE_FILE = '/large.bin';
const LARGE_BYTES = 4 * 1024 * 1024;

/** A site of `files` small HTML pages (each worth compressing) in 100 folders. */
function makeBusySite(dir: string, files: number, round: number): void {
  for (let i = 0; i < files; i++) {
    const sub = path.join(dir, 'public', `d${i % 100}`);
    if (i < 100) fs.mkdirSync(sub, { recursive: true });
    const words = Array.from({ length: 40 }, (_, k) => `word${(i * 7 + k * 13 + round) % 997}`).join(' ');
    fs.writeFileSync(path.join(sub, `page-${i}.html`), `<!doctype html><title>${i}</title><p>${words}</p>\n`.repeat(4));
  }
  fs.writeFileSync(path.join(dir, 'public', 'index.html'), `<h1>busy ${round}</h1>\n`);
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Fetches the large file in `clients` keep-alive loops until `stop()`; returns every latency in ms. */
function measure(origin: string, clients: number): { stop: () => Promise<number[]> } {
  const u = new URL(origin);
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const times: number[] = [];
  let running = true;
  const once = () =>
    new Promise<void>((resolve, reject) => {
      const started = performance.now();
      const req = http.get({ host: u.hostname, port: u.port, path: LARGE_FILE, headers: { Host: 'quiet.localhost' }, agent }, (res) => {
        let got = 0;
        res.on('data', (c: Buffer) => (got += c.length));
        res.on('end', () => {
          if (res.statusCode !== 200 || got !== LARGE_BYTES) return reject(new Error(`large file: ${res.statusCode}, ${got} bytes`));
          times.push(performance.now() - started);
          resolve();
        });
        res.on('error', reject);
      });
      req.on('error', reject);
    });
  const loops = Array.from({ length: clients }, async () => {
    while (running) await once();
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return times.sort((a, b) => a - b);
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const deploys = Number(option('deploys', '3'));
  const quietSec = Number(option('quiet', '10'));
  const files = Number(option('files', '19000'));
  const clients = Number(option('clients', '2'));
  const isolation = option('isolation', 'auto');
  const cpus = os.cpus().length;
  const serverCpu = cpus > 1 ? 0 : undefined;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantry-deploy-interference-'));
  fs.chmodSync(work, 0o755);
  const token = crypto.randomBytes(24).toString('hex');
  const quietSite = path.join(work, 'quiet');
  fs.mkdirSync(path.join(quietSite, 'public'), { recursive: true });
  fs.writeFileSync(path.join(quietSite, 'public', 'large.bin'), crypto.randomBytes(LARGE_BYTES));
  fs.writeFileSync(path.join(quietSite, 'public', 'index.html'), '<h1>quiet</h1>\n');
  const archives: Buffer[] = [];
  for (let r = 0; r < deploys; r++) {
    const dir = path.join(work, `busy-${r}`);
    makeBusySite(dir, files, r);
    archives.push(await packDir(dir));
  }
  const server = await startTenantry(path.join(work, 'data'), serverCpu, { TENANTRY_ADMIN_TOKEN: token, TENANTRY_ISOLATION: isolation });
  if (cpus > 1) setAffinity(process.pid, 1);
  const api = new TenantryApi(server.origin, token);
  try {
    await api.createTenant('quiet');
    await api.createTenant('busy');
    await api.setLimits('busy', { files: files + 1000 });
    await api.deployArchive('quiet', await packDir(quietSite));
    // Warm-up: the file cache, the connection, the JIT.
    let m = measure(server.origin, clients);
    await sleep(2000);
    await m.stop();
    m = measure(server.origin, clients);
    await sleep(quietSec * 1000);
    const quiet = await m.stop();
    m = measure(server.origin, clients);
    const deployMs: number[] = [];
    for (const archive of archives) deployMs.push((await api.deployArchive('busy', archive)).ms);
    // The last release's compressed copies are made after it is live: measured too.
    await sleep(5000);
    const busy = await m.stop();
    for (const id of ['quiet', 'busy', 'demo']) await api.deleteTenant(id);
    const row = (name: string, t: number[]) => `| ${name} | ${t.length} | ${percentile(t, 50).toFixed(1)} | ${percentile(t, 99).toFixed(1)} | ${t.at(-1)!.toFixed(1)} |`;
    const p50 = percentile(busy, 50) / percentile(quiet, 50);
    const p99 = percentile(busy, 99) / percentile(quiet, 99);
    process.stdout.write(
      [
        `4 MB file of one tenant (${clients} keep-alive clients), quiet vs while another deploys ${files.toLocaleString('en-US')} files ${deploys}x ` +
          `(${(archives[0]!.length / 2 ** 20).toFixed(1)} MiB tar.gz; deploys took ${deployMs.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s), isolation ${isolation}, server on CPU ${serverCpu ?? 'any'}:`,
        '',
        '| phase | requests | p50 ms | p99 ms | max ms |',
        '|---|---:|---:|---:|---:|',
        row('quiet', quiet),
        row('during deploys', busy),
        '',
        `ratio during/quiet: p50 ${p50.toFixed(2)}x, p99 ${p99.toFixed(2)}x (target p99 <= 1.2x)`,
        '',
      ].join('\n'),
    );
  } finally {
    await server.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
