// `tenantry serve`: build the platform, create the demo tenant on first start,
// listen, and print what the operator needs (URL, admin token once, demo URL).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type net from 'node:net';
import { createPlatform, type Platform } from './platform.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import type { PluginSettingsSource } from '../pool/plugin-settings.js';
import { createEdgeHandler } from '../edge/edge-handler.js';
import { createWorkerProxy } from '../edge/proxy.js';

export interface RunningServer {
  readonly platform: Platform;
  readonly server: http.Server;
  readonly port: number;
  close(): Promise<void>;
}

export const DEMO_TENANT = 'demo';

async function ensureDemoTenant(p: Platform): Promise<boolean> {
  const firstStart = p.store.tenants.list().length === 0 && p.store.audit.forTenant(DEMO_TENANT, 1).length === 0;
  if (!firstStart) return false;
  await p.tenants.create({ id: DEMO_TENANT }, 'system');
  return true;
}

export interface StartOptions {
  /** Isolation carried out by the root supervisor (privilege-separated edge). */
  readonly sandbox?: Sandbox;
  /** A listening socket handed over by the supervisor, instead of binding config.port here. */
  readonly listenHandle?: net.Server;
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
  const server = http.createServer(createEdgeHandler(platform, [workerProxy.apiStep]));
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (options.listenHandle) server.listen(options.listenHandle, () => resolve());
    else server.listen(config.port, config.bind, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  platform.tenants.setListeningPort(port);
  const createdDemo = await ensureDemoTenant(platform);
  const portPart = port === 80 ? '' : `:${port}`;
  // One write, so that a reader who waits for the first line sees them all.
  const banner = [`Tenantry is serving on http://${config.platformHost}${portPart}/ (bound to ${config.bind}:${port}, data in ${config.dataDir})`];
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
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await platform.workers.close();
      await platform.sandbox.close();
      platform.close();
    },
  };
}
