// The servers under test, each its own process on loopback: nginx (one
// worker, config generated into a temp folder), bare express.static, a bare
// Express JSON route, and Tenantry itself (`tenantry serve` on a fresh data folder).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasCommand, pinned } from './load.js';
import type { SiteFixture } from './fixtures.js';

export const DIST_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(DIST_ROOT, '..');

export interface RunningServer {
  readonly name: string;
  readonly origin: string;
  /** Load it over this unix socket instead (a tenant worker). */
  readonly socketPath?: string;
  /** Other processes that serve its requests (nginx's upstream app), counted in its CPU time. */
  readonly alsoServedBy?: readonly ChildProcess[];
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function startProcess(name: string, argv: string[], env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; output: () => string } {
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
  child.stderr!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
  child.on('error', (err) => (out += `\n${name}: ${err.message}`));
  return { child, output: () => out };
}

function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

/** Resolves once `origin` answers anything (any status). */
export async function waitForHttp(origin: string, host: string, timeoutMs = 15_000, output?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get(`${origin}/`, { headers: { Host: host }, agent: false }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
      req.setTimeout(1000, () => req.destroy());
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${origin} did not answer within ${timeoutMs} ms\n${output?.() ?? ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const HAS_NGINX = hasCommand('nginx');

/**
 * nginx, one worker, a server block per tenant Host, the same files.
 * 'stock': Debian's settings that matter here (sendfile, tcp_nopush), access log off.
 * 'tuned': also open_file_cache (no open/fstat per request) and unlimited keep-alive requests.
 */
export async function startNginx(workDir: string, sites: readonly SiteFixture[], cpu: number | undefined, variant: 'stock' | 'tuned'): Promise<RunningServer> {
  const port = await freePort();
  const dir = path.join(workDir, `nginx-${variant}`);
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const servers = sites
    .map((s) => `  server { listen 127.0.0.1:${port}; server_name ${s.id}.localhost; root ${s.dir}; }`)
    .join('\n');
  const user = process.getuid?.() === 0 ? 'user root;' : '';
  const conf = `${user}
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  types { text/html html; text/css css; application/javascript js; application/json json; image/svg+xml svg; image/png png; }
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  tcp_nopush on;
  ${variant === 'tuned' ? 'keepalive_requests 1000000;\n  open_file_cache max=10000 inactive=60s;' : ''}
  etag on;
  client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp; uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
${servers}
}
`;
  const confFile = path.join(dir, 'nginx.conf');
  fs.writeFileSync(confFile, conf);
  const { child, output } = startProcess('nginx', pinned(cpu, ['nginx', '-p', dir, '-c', confFile, '-e', path.join(dir, 'error.log')]));
  const origin = `http://127.0.0.1:${port}`;
  await waitForHttp(origin, `${sites[0]!.id}.localhost`, 10_000, output);
  return { name: variant === 'stock' ? 'nginx' : 'nginx tuned', origin, child, output, stop: () => stopProcess(child, 'SIGQUIT') };
}

/**
 * nginx (one worker) as a reverse proxy in front of `upstream` (the Express
 * route app), as Dokku or Passenger set it up: HTTP/1.1 keep-alive connections
 * to the app, Host and X-Forwarded-* set, an access line per request (Tenantry
 * logs one per dynamic request too).
 */
export async function startNginxProxy(workDir: string, upstream: RunningServer, cpu: number | undefined): Promise<RunningServer> {
  const port = await freePort();
  const dir = path.join(workDir, 'nginx-proxy');
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const user = process.getuid?.() === 0 ? 'user root;' : '';
  const conf = `${user}
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp; uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
  upstream app { server ${new URL(upstream.origin).host}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }
}
`;
  const confFile = path.join(dir, 'nginx.conf');
  fs.writeFileSync(confFile, conf);
  const { child, output } = startProcess('nginx proxy', pinned(cpu, ['nginx', '-p', dir, '-c', confFile, '-e', path.join(dir, 'error.log')]));
  const origin = `http://127.0.0.1:${port}`;
  await waitForHttp(origin, 'localhost', 10_000, output);
  return { name: 'nginx -> Express', origin, child, alsoServedBy: [upstream.child], output, stop: () => stopProcess(child, 'SIGQUIT') };
}

/** A bench/express-server.js process: `static` (express.static per Host) or `route` (one JSON route). */
export async function startExpress(mode: 'static' | 'route', sites: readonly SiteFixture[], cpu: number | undefined): Promise<RunningServer> {
  const port = await freePort();
  const script = path.join(DIST_ROOT, 'bench', 'express-server.js');
  const siteArgs = sites.map((s) => `${s.id}.localhost=${s.dir}`);
  const { child, output } = startProcess(`express ${mode}`, pinned(cpu, [process.execPath, script, mode, String(port), ...siteArgs]));
  const origin = `http://127.0.0.1:${port}`;
  await waitForHttp(origin, `${sites[0]!.id}.localhost`, 10_000, output);
  return { name: mode === 'static' ? 'express.static' : 'Express route', origin, child, output, stop: () => stopProcess(child) };
}

export interface TenantryServer extends RunningServer {
  readonly dataDir: string;
  readonly adminToken: string;
}

/** `tenantry serve` on a data folder (kept across restarts when given again). */
export async function startTenantry(dataDir: string, cpu: number | undefined, env: Record<string, string>): Promise<TenantryServer> {
  const cli = path.join(DIST_ROOT, 'server', 'cli', 'main.js');
  const { child, output } = startProcess('tenantry', pinned(cpu, [process.execPath, cli, 'serve', '--port', '0']), {
    ...process.env,
    TENANTRY_DATA_DIR: dataDir,
    TENANTRY_LOG_LEVEL: 'warn',
    // One edge, pinned like nginx's one worker; bench/edges.ts measures several.
    TENANTRY_EDGES: '1',
    ...env,
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tenantry did not start within 30 s:\n${output()}`)), 30_000);
    const check = () => {
      const m = /bound to [^:]+:(\d+)/.exec(output());
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tenantry exited with ${code}:\n${output()}`));
    });
  });
  const adminToken = env.TENANTRY_ADMIN_TOKEN ?? fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
  return { name: 'Tenantry', origin: `http://127.0.0.1:${port}`, child, output, dataDir, adminToken, stop: () => stopProcess(child) };
}
