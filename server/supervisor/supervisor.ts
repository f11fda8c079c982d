// `tenantry serve` as root: the supervisor. It creates the platform user, the
// tenants' users, folders and cgroups, binds the listening sockets (HTTP, and
// HTTPS when set; or takes them from systemd) and passes them to the edge as
// inherited descriptors; the edge runs as the unprivileged user `tenantry`. It never
// accepts a connection, never parses HTTP and never runs tenant code; its only
// input is the edge's request pipe (edge-requests.ts).
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { DataPaths } from '../paths.js';
import { createSandbox, type Sandbox } from '../sandbox/sandbox.js';
import { handDataFolderTo } from '../sandbox/file-modes.js';
import { ensureSystemUser, type UnixIdentity } from '../sandbox/unix-users.js';
import { serveEdgeRequests } from './edge-requests.js';
import { EDGE_ENTRY, EDGE_HTTPS_LISTEN_FD, EDGE_LISTEN_FD, WORKER_ENTRY } from '../launch/entries.js';
import { activatedSockets, forgetActivation, httpListenFd, httpsListenFd } from '../launch/socket-activation.js';

export const PLATFORM_USER = 'tenantry';
const STOP_DEADLINE_MS = 15_000;

/** The edge's environment: the platform's settings and little else; never secrets of the host. */
function edgeEnv(env: NodeJS.ProcessEnv, dataDir: string): Record<string, string> {
  const out: Record<string, string> = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: dataDir };
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && (k.startsWith('TENANTRY_') || k === 'LANG' || k === 'TZ' || k === 'NODE_ENV')) out[k] = v;
  }
  return out;
}

/**
 * Binds the listening socket. The caller hands its descriptor to the edge and
 * closes it here in the same turn of the event loop, before this process
 * could ever accept on it: connections wait in the kernel's queue until the
 * edge is ready, instead of being accepted by nobody.
 */
function bindListener(port: number, bind: string): Promise<net.Server> {
  const listener = net.createServer();
  listener.on('connection', (s) => s.destroy()); // never reached (see above); refuse rather than hold
  return new Promise((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(port, bind, () => resolve(listener));
  });
}

/** The descriptor of a listening net.Server (Unix). */
function descriptorOf(listener: net.Server): number {
  const fd = (listener as net.Server & { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the listening socket has no descriptor');
  return fd;
}

/** The first folder on the way to `target` that other users cannot pass, if any. */
export function blockedAncestor(target: string): string | undefined {
  for (let dir = path.dirname(path.resolve(target)); ; dir = path.dirname(dir)) {
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    if (st && (st.mode & 0o001) === 0) return dir;
    if (dir === '/') return undefined;
  }
}

/**
 * Whether to split into supervisor and edge: as root, with isolation on, when
 * the edge (another user) can reach the platform's code and the data folder.
 * Otherwise everything runs in this one process, and the report says so.
 */
export function shouldSupervise(config: Config, log: Logger): boolean {
  if (process.getuid?.() !== 0 || config.isolation === 'off' || process.env.TENANTRY_SINGLE_PROCESS === '1') return false;
  for (const target of [EDGE_ENTRY, config.dataDir]) {
    const blocked = blockedAncestor(target);
    if (blocked) {
      log.warn(
        `privilege separation off: the user ${PLATFORM_USER} cannot pass ${blocked} to reach ${target}; running in one process ` +
          `(to have it, install Tenantry and its data folder where other users may pass, e.g. /opt/tenantry and /var/lib/tenantry, or chmod o+x ${blocked})`,
      );
      return false;
    }
  }
  return true;
}

export interface Supervisor {
  readonly edge: ChildProcess;
  /** Stops the edge, then every worker; resolves with the exit code to use. */
  stop(): Promise<number>;
  /** Settles when the edge has exited and everything is cleaned up. */
  readonly done: Promise<number>;
}

export interface SupervisorOptions {
  /** The edge program; only tests replace it (with a deliberately misbehaving edge). */
  readonly edgeEntry?: string;
}

export async function startSupervisor(config: Config, argv: readonly string[], log: Logger, options: SupervisorOptions = {}): Promise<Supervisor> {
  const paths = new DataPaths(config.dataDir);
  for (const dir of [paths.root, paths.tenantsRoot, paths.runRoot, paths.gitRoot, paths.outbox]) fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
  const platformUser: UnixIdentity = ensureSystemUser(PLATFORM_USER);
  const sandbox: Sandbox = createSandbox({ mode: config.isolation, sandbox: config.sandbox, warmWorkers: config.warmWorkers, paths, log, platform: platformUser, privilegeSeparated: true });
  handDataFolderTo(paths, platformUser);
  // Socket-activated (systemd): the sockets are already open and stay with systemd
  // across restarts; otherwise bind them now. Either way the edge inherits them as
  // descriptors EDGE_LISTEN_FD (HTTP) and EDGE_HTTPS_LISTEN_FD; this process never accepts on them.
  const activated = activatedSockets(process.env, process.pid);
  forgetActivation(process.env);
  const bound: net.Server[] = [];
  const bindOrClose = async (port: number): Promise<number> => {
    try {
      const l = await bindListener(port, config.bind);
      bound.push(l);
      return descriptorOf(l);
    } catch (err) {
      for (const l of bound) l.close();
      throw err;
    }
  };
  const stdio: StdioOptions = ['ignore', 'inherit', 'inherit', 'ignore', 'pipe'];
  stdio[EDGE_LISTEN_FD] = activated ? httpListenFd(activated) : await bindOrClose(config.port);
  if (config.httpsPort !== undefined) {
    const fromSystemd = activated ? httpsListenFd(activated) : undefined;
    stdio[EDGE_HTTPS_LISTEN_FD] = fromSystemd ?? (await bindOrClose(config.httpsPort));
  }
  const edge = spawn(process.execPath, [options.edgeEntry ?? EDGE_ENTRY, ...argv, '--data-dir', config.dataDir], {
    uid: platformUser.uid,
    gid: platformUser.gid,
    env: edgeEnv(process.env, config.dataDir),
    cwd: config.dataDir,
    // No IPC channel: the edge's one way to the supervisor is the request pipe (fd 4).
    stdio,
  });
  // Same turn of the event loop as the last bind: never accepted here.
  for (const l of bound) l.close();

  const { workers } = serveEdgeRequests({ channel: edge.stdio[4] as Duplex, sandbox, paths, workerEntry: WORKER_ENTRY, edgePid: edge.pid, log });
  const stopWorkers = async () => {
    await Promise.all([...workers.values()].map((w) => w.kill().catch(() => {})));
    await sandbox.close();
  };
  const done = new Promise<number>((resolve) => {
    edge.once('exit', (code, signal) => {
      if (code !== 0) log.warn('edge exited', { code, signal });
      void stopWorkers().finally(() => resolve(code ?? 1));
    });
  });
  return {
    edge,
    done,
    stop: async () => {
      if (edge.exitCode === null && edge.signalCode === null) edge.kill('SIGTERM');
      const timer = setTimeout(() => edge.kill('SIGKILL'), STOP_DEADLINE_MS);
      const code = await done;
      clearTimeout(timer);
      return code;
    },
  };
}
