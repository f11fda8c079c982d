// Test harness: a platform on a fresh temporary data folder, driven in-process
// through the real edge handler (supertest), or as a real server process.
import fs from 'node:fs';
import { tempDir as tempFolder } from './temp-dirs.js';
import path from 'node:path';
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { loadConfig, type Config } from '../../server/config.js';
import { silentLogger } from '../../server/log.js';
import { startServer, type RunningServer, type StartOptions } from '../../server/app/serve.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = path.join(REPO_ROOT, 'bin/tenantry.js');

/** A fresh folder for a test (a data folder, a site), gone when the test file's process ends. */
export function tempDir(prefix = 'tenantry-test-'): string {
  return tempFolder(prefix);
}

export interface TestPlatform extends RunningServer {
  readonly dataDir: string;
  readonly config: Config;
  readonly adminToken: string;
  /** Base URL of the listener, e.g. http://127.0.0.1:40123 */
  readonly url: string;
  /** Removes the tenants' users (when the platform made them), stops the server and removes the data folder. */
  cleanup(): Promise<void>;
}

/**
 * Settings a test run passes on to every platform it starts: `TENANTRY_SANDBOX=unshare`
 * runs the isolation tests on the fallback sandbox (see .ci/run).
 */
export function inheritedSettings(): Record<string, string> {
  const v = process.env.TENANTRY_SANDBOX;
  return v ? { TENANTRY_SANDBOX: v } : {};
}

/** Starts the real edge on an ephemeral port (or options.port), in this process, on a new data folder. */
export async function startTestPlatform(
  env: Record<string, string> = {},
  dataDir = tempDir(),
  options: StartOptions & { readonly port?: number } = {},
): Promise<TestPlatform> {
  const config = loadConfig(['--port', String(options.port ?? 0)], { TENANTRY_DATA_DIR: dataDir, TENANTRY_ISOLATION: 'off', ...inheritedSettings(), ...env });
  const running = await startServer(config, silentLogger, () => {}, options);
  return {
    ...running,
    dataDir,
    config,
    adminToken: running.platform.secrets.adminToken,
    url: `http://127.0.0.1:${running.port}`,
    cleanup: async () => {
      // Tenants' Unix users (tn-<id>) and cgroups outlive the data folder: they go with their tenants.
      if (running.platform.sandbox.report.layers.some((l) => l.name === 'users' && l.active)) {
        try {
          for (const t of running.platform.store.tenants.list()) await running.platform.tenants.delete(t.id, 'test').catch(() => {});
        } catch {
          /* already closed by the test */
        }
      }
      await running.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request with an explicit Host header (what a browser on a custom domain sends). */
export function httpRequest(
  url: string,
  opts: { host?: string; method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<HttpAnswer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: { ...(opts.host ? { Host: opts.host } : {}), ...opts.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  readonly output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `tenantry serve` as a real process and waits for its "serving" line.
 * `detached`: in a process group of its own (a test can then kill the whole platform at once).
 */
export async function startServerProcess(dataDir: string, env: Record<string, string> = {}, args: string[] = [], opts: { detached?: boolean } = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], {
    env: { ...process.env, TENANTRY_DATA_DIR: dataDir, TENANTRY_ISOLATION: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 20 s:\n${out}`)), 20_000);
    const check = () => {
      const m = /bound to [^:]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    stop: (signal = 'SIGTERM') =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill(signal);
      }),
  };
}

/** Runs the CLI to completion. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export function addressOf(server: http.Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
