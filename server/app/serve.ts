// `tenantry serve`: build the platform, create the demo tenant on first start,
// listen, and print what the operator needs (URL, admin token once, demo URL).
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type net from 'node:net';
import { createPlatform, type Platform } from './platform.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import { createEdgeHandler } from '../edge/edge-handler.js';
import { createWorkerProxy } from '../edge/proxy/worker-proxy.js';
import { createControlApp } from '../api/control-app.js';
import { createPrincipalResolver, createTokenCheck } from '../auth/principal.js';
import { FailureThrottle } from '../auth/failure-throttle.js';
import { ConnectionGuard, CONNECTIONS_CHECKING_INTERVAL_MS, defaultConnectionCap, HEADERS_TIMEOUT_MS } from '../edge/connection-guard.js';
import { ensureFallbackCertificate, fallbackNames } from '../tls/fallback-certificate.js';

export interface RunningServer {
  readonly platform: Platform;
  readonly server: http.Server;
  readonly port: number;
  /** The HTTPS listener, when TENANTRY_HTTPS_PORT is set. */
  readonly httpsServer: https.Server | undefined;
  readonly httpsPort: number | undefined;
  /** Open client connections and their caps. */
  readonly connections: ConnectionGuard;
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
  /** The same for the HTTPS port. */
  readonly httpsListenHandle?: net.Server;
}

function listenOn(server: net.Server, handle: net.Server | undefined, port: number, bind: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    // Left attached after listening: a later 'error' (a failed accept) then settles nothing instead of crashing the edge.
    server.once('error', reject);
    const done = () => resolve((server.address() as AddressInfo).port);
    if (handle) server.listen(handle, done);
    else server.listen(port, bind, done);
  });
}

export async function startServer(
  config: Config,
  log: Logger,
  out: (line: string) => void = console.log,
  options: StartOptions = {},
): Promise<RunningServer> {
  const platform = createPlatform(config, log, { sandbox: options.sandbox });
  const workerProxy = createWorkerProxy({
    workers: platform.workers,
    siteLogs: platform.siteLogs,
    log,
    requestTimeoutSeconds: config.requestTimeoutSeconds,
  });
  let httpsPort: number | undefined;
  const platformApp = createControlApp({
    log,
    store: platform.store,
    secret: platform.secrets.secret,
    trustedProxies: config.trustedProxies,
    platformHost: config.platformHost,
    domains: platform.customDomains,
    domainMap: platform.domains,
    certificates: platform.certificates,
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
    acmeChallenges: platform.acmeChallenges,
    proofs: platform.proofs,
    trustedProxies: config.trustedProxies,
    httpsPort: () => httpsPort,
  });
  const server = http.createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }, edge);
  // Longer than the 60 s idle timeout of common load balancers, so they close first.
  server.keepAliveTimeout = 65_000;
  const connections = new ConnectionGuard(
    {
      perAddress: config.maxConnectionsPerAddress,
      total: config.maxConnections ?? defaultConnectionCap(),
      exempt: (address) => config.trustedProxies.trusts(address),
    },
    log,
  );
  connections.protect(server);
  // The same pipeline on both listeners; the certificate is chosen per name by SNI (tls/sni-contexts.ts).
  let httpsServer: https.Server | undefined;
  if (config.httpsPort !== undefined) {
    const fallback = await ensureFallbackCertificate(platform.certFiles, fallbackNames(config.platformHost, config.baseDomain));
    platform.sni.setFallback(fallback);
    httpsServer = https.createServer(
      { ...fallback, SNICallback: platform.sni.sniCallback, handshakeTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS },
      edge,
    );
    httpsServer.keepAliveTimeout = 65_000;
    connections.protect(httpsServer);
  }
  const port = await listenOn(server, options.listenHandle, config.port, config.bind);
  if (httpsServer) {
    try {
      httpsPort = await listenOn(httpsServer, options.httpsListenHandle, config.httpsPort!, config.bind);
    } catch (err) {
      server.close();
      throw err;
    }
  }
  platform.tenants.setListeningPort(port);
  // Issuance needs the HTTP listener up: the CA fetches its challenge answers there.
  platform.certificates.start();
  const createdDemo = await ensureDemoTenant(platform);
  const portPart = port === 80 ? '' : `:${port}`;
  // One write, so that a reader who waits for the first line sees them all.
  const banner = [`Tenantry is serving on http://${config.platformHost}${portPart}/ (bound to ${config.bind}:${port}, data in ${config.dataDir})`];
  if (httpsPort !== undefined) {
    banner.push(`HTTPS on https://${config.platformHost}${httpsPort === 443 ? '' : `:${httpsPort}`}/ (bound to ${config.bind}:${httpsPort}; certificates by SNI${platform.certificates.acme ? ', issued over ACME' : ''})`);
  }
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
    httpsServer,
    httpsPort,
    connections,
    close: async () => {
      platform.certificates.close();
      await Promise.all(
        [server, httpsServer].map(
          (s) =>
            s &&
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
      await platform.workers.close();
      await platform.sandbox.close();
      platform.close();
    },
  };
}
