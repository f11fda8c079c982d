// `tenantry serve`: build the platform, create the demo tenant on first start,
// listen, and print what the operator needs (URL, admin token once, demo URL).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { createPlatform, type Platform } from './platform.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import type { PluginSettingsSource } from '../pool/plugin-settings.js';
import { createEdgeHandler } from '../edge/edge-handler.js';
import { createWorkerProxy } from '../edge/proxy/worker-proxy.js';
import { createControlApp } from '../api/control-app.js';
import { createPrincipalResolver, createTokenCheck } from '../auth/principal.js';
import { FailureThrottle } from '../auth/failure-throttle.js';
import { ConnectionGuard, CONNECTIONS_CHECKING_INTERVAL_MS, defaultConnectionCap } from '../edge/connection-guard.js';

export interface RunningServer {
  readonly platform: Platform;
  readonly server: http.Server;
  readonly port: number;
  /** Open client connections and their caps. */
  readonly connections: ConnectionGuard;
  close(): Promise<void>;
}

export const DEMO_TENANT = 'demo';
/** How long a stop waits for requests in flight (the process's own hard stop is 10 s). */
const DRAIN_DEADLINE_MS = 8_000;

async function ensureDemoTenant(p: Platform): Promise<boolean> {
  const firstStart = p.store.tenants.list().length === 0 && p.store.audit.forTenant(DEMO_TENANT, 1).length === 0;
  if (!firstStart) return false;
  await p.tenants.create({ id: DEMO_TENANT }, 'system');
  return true;
}

export interface StartOptions {
  /** Isolation carried out by the root supervisor (privilege-separated edge). */
  readonly sandbox?: Sandbox;
  /** An inherited listening socket (from the supervisor or systemd), instead of binding config.port here. */
  readonly listenFd?: number;
  /** Which plugins each tenant has enabled; default: none. */
  readonly pluginSettings?: PluginSettingsSource;
}

export async function startServer(
  config: Config,
  log: Logger,
  out: (line: string) => void = console.log,
  options: StartOptions = {},
): Promise<RunningServer> {
  const platform = createPlatform(config, log, { sandbox: options.sandbox, pluginSettings: options.pluginSettings });
  const workerProxy = createWorkerProxy({
    workers: platform.workers,
    siteLogs: platform.siteLogs,
    log,
    requestTimeoutSeconds: config.requestTimeoutSeconds,
  });
  const platformApp = createControlApp({
    log,
    store: platform.store,
    secret: platform.secrets.secret,
    checkToken: createTokenCheck(createPrincipalResolver(platform.store, platform.secrets), new FailureThrottle(log)),
    isolation: platform.sandbox.report,
    tenants: platform.tenants,
    siteLogs: platform.siteLogs,
    workers: platform.workers,
    deploys: platform.deploys,
    git: platform.git,
  });
  const edge = createEdgeHandler({
    platformHost: config.platformHost,
    platformApp,
    domains: platform.domains,
    sites: platform.sites,
    proxy: workerProxy,
    plugins: platform.workers,
  });
  const server = http.createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }, edge);
  // Longer than the 60 s idle timeout of common load balancers, so they close first.
  server.keepAliveTimeout = 65_000;
  const connections = new ConnectionGuard(
    { perAddress: config.maxConnectionsPerAddress, total: config.maxConnections ?? defaultConnectionCap() },
    log,
  );
  connections.protect(server);
  // Ready before the first accept: the demo tenant exists and /healthz means it.
  // Until then connections wait in the kernel's queue (an inherited socket) or
  // are refused (a port bound here), never accepted and left unanswered.
  let createdDemo: boolean;
  try {
    createdDemo = await ensureDemoTenant(platform);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (options.listenFd !== undefined) server.listen({ fd: options.listenFd }, () => resolve());
      else server.listen(config.port, config.bind, () => resolve());
    });
  } catch (err) {
    await platform.workers.close();
    platform.close();
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  platform.tenants.setListeningPort(port);
  const portPart = port === 80 ? '' : `:${port}`;
  // One write, so that a reader who waits for the first line sees them all.
  const banner = [`Tenantry is serving on http://${config.platformHost}${portPart}/ (bound to ${options.listenFd === undefined ? config.bind : (server.address() as AddressInfo).address}:${port}, data in ${config.dataDir})`];
  if (platform.secrets.generatedAdminToken) {
    banner.push(`Admin token (shown once, also saved to ${platform.paths.root}/admin-token): ${platform.secrets.adminToken}`);
  }
  if (createdDemo || platform.store.tenants.get(DEMO_TENANT)) {
    banner.push(`Demo tenant: http://${DEMO_TENANT}.${config.baseDomain}${portPart}/`);
  }
  out(banner.join('\n'));
  return {
    platform,
    server,
    port,
    connections,
    close: async () => {
      // Stop accepting (an inherited socket stays open with its owner, which
      // queues new connections for the next process), close idle keep-alive
      // connections, let requests in flight finish, then cut what is left.
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, DRAIN_DEADLINE_MS).unref());
      await Promise.race([drained, deadline]);
      server.closeAllConnections();
      await platform.workers.close();
      await platform.sandbox.close();
      platform.close();
    },
  };
}
