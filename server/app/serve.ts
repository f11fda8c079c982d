// `tenantry serve`: build the platform, create the demo tenant on first start,
// listen, and print what the operator needs (URL, admin token once, demo URL).
import http from 'node:http';
import type net from 'node:net';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { createPlatform, type Platform } from './platform.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import type { PluginSettingsSource } from '../pool/plugin-settings.js';
import { createEdgeHandler } from '../edge/edge-handler.js';
import { createWorkerProxy } from '../edge/proxy/worker-proxy.js';
import { createControlApp } from '../api/control-app.js';
import { createHashResolver, createPrincipalResolver, createTokenCheck } from '../auth/principal.js';
import { DashboardSessions } from '../dashboard/sessions.js';
import { FailureThrottle } from '../auth/failure-throttle.js';
import { ConnectionGuard, CONNECTIONS_CHECKING_INTERVAL_MS, defaultConnectionCap, HEADERS_TIMEOUT_MS } from '../edge/connection-guard.js';
import { ensureFallbackCertificate, fallbackNames } from '../tls/fallback-certificate.js';
import { createUsageReader, type UsageReader } from '../sandbox/cgroup-usage.js';
import { prepareSiblingEdges, type SiblingEdges } from './sibling-edges.js';
import { gateOnSiblings } from '../edge/siblings/response-gate.js';

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
  /** The same for the HTTPS port. */
  readonly httpsListenFd?: number;
  /** Which plugins each tenant has enabled; default: none. */
  readonly pluginSettings?: PluginSettingsSource;
  /** Offer the "_" test fixture plugins through the API (tests only). */
  readonly offerHiddenPlugins?: boolean;
  /**
   * With an inherited HTTP socket: run config.edges edges on it, this one
   * first; `argv` are the serve flags the siblings are started with (sibling-edges.ts).
   */
  readonly siblings?: { readonly argv: readonly string[] };
}

function listenOn(server: net.Server, fd: number | undefined, port: number, bind: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    // Left attached after listening: a later 'error' (a failed accept) then settles nothing instead of crashing the edge.
    server.once('error', reject);
    const done = () => resolve((server.address() as AddressInfo).port);
    if (fd !== undefined) server.listen({ fd }, done);
    else server.listen(port, bind, done);
  });
}

export async function startServer(
  config: Config,
  log: Logger,
  out: (line: string) => void = console.log,
  options: StartOptions = {},
): Promise<RunningServer> {
  const platform = createPlatform(config, log, { sandbox: options.sandbox, pluginSettings: options.pluginSettings, offerHiddenPlugins: options.offerHiddenPlugins });
  let siblings: SiblingEdges | undefined;
  if (options.siblings && options.listenFd !== undefined && config.edges > 1) {
    try {
      siblings = await prepareSiblingEdges(platform, config.edges, log);
    } catch (err) {
      await platform.workers.close();
      platform.close();
      throw err;
    }
  }
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
    sessions: new DashboardSessions(platform.store, platform.secrets.secret, createHashResolver(platform.store, platform.secrets)),
    checkToken: createTokenCheck(createPrincipalResolver(platform.store, platform.secrets), new FailureThrottle(log)),
    isolation: platform.sandbox.report,
    tenants: platform.tenants,
    siteLogs: platform.siteLogs,
    workers: platform.workers,
    deploys: platform.deploys,
    manifestDeploys: platform.manifestDeploys,
    git: platform.git,
    sites: platform.sites,
    pluginCatalogue: platform.pluginCatalogue,
    plugins: platform.plugins,
    metrics: platform.metrics,
  });
  const edge = createEdgeHandler({
    platformHost: config.platformHost,
    // With sibling edges, an answer that changed what they serve waits until they all have.
    platformApp: siblings ? gateOnSiblings(siblings.hub, platformApp) : platformApp,
    domains: platform.domains,
    sites: platform.sites,
    proxy: workerProxy,
    plugins: platform.workers,
    acmeChallenges: platform.acmeChallenges,
    proofs: platform.proofs,
    trustedProxies: config.trustedProxies,
    httpsPort: () => httpsPort,
    metrics: platform.metrics,
  });
  const handler: typeof edge = config.edgeHeader
    ? (req, res) => {
        res.setHeader('X-Tenantry-Edge', '0');
        edge(req, res);
      }
    : edge;
  const server = http.createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }, handler);
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
  // Read at scrape time. The cgroups are read directly (their files are world-readable), also by an unprivileged edge.
  let usage: UsageReader | undefined;
  const reader = () => (usage ??= createUsageReader());
  platform.metrics.setSources({
    openConnections: () => connections.openConnections,
    workerStates: () => platform.workers.states(),
    usage: (tenantId) => reader().usage(tenantId),
    usageMissing: () => reader().missing(),
  });
  // The same pipeline on both listeners; the certificate is chosen per name by SNI (tls/sni-contexts.ts).
  let httpsServer: https.Server | undefined;
  if (config.httpsPort !== undefined) {
    const fallback = await ensureFallbackCertificate(platform.certFiles, fallbackNames(config.platformHost, config.baseDomain));
    platform.sni.setFallback(fallback);
    httpsServer = https.createServer(
      { ...fallback, SNICallback: platform.sni.sniCallback, handshakeTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS },
      handler,
    );
    httpsServer.keepAliveTimeout = 65_000;
    connections.protect(httpsServer);
  }
  // Ready before the first accept: the demo tenant exists and /healthz means it.
  // Until then connections wait in the kernel's queue (an inherited socket) or
  // are refused (a port bound here), never accepted and left unanswered.
  let createdDemo: boolean;
  let port: number;
  try {
    createdDemo = await ensureDemoTenant(platform);
    port = await listenOn(server, options.listenFd, config.port, config.bind);
    if (httpsServer) httpsPort = await listenOn(httpsServer, options.httpsListenFd, config.httpsPort!, config.bind);
    if (siblings) await siblings.start(server, options.listenFd!, options.siblings!.argv);
  } catch (err) {
    server.close();
    await siblings?.stop();
    await siblings?.close();
    await platform.workers.close();
    platform.close();
    throw err;
  }
  platform.tenants.setListeningPort(port);
  platform.tenants.setHttpsListeningPort(httpsPort);
  // Issuance needs the HTTP listener up: the CA fetches its challenge answers there.
  platform.certificates.start();
  // Plugins' work left pending by an earlier run (an issue sending) resumes now, not on the next request.
  platform.background.start();
  const portPart = port === 80 ? '' : `:${port}`;
  const boundTo = options.listenFd === undefined ? config.bind : (server.address() as AddressInfo).address;
  // One write, so that a reader who waits for the first line sees them all.
  const banner = [`Tenantry is serving on http://${config.platformHost}${portPart}/ (bound to ${boundTo}:${port}, data in ${config.dataDir})`];
  if (httpsPort !== undefined) {
    banner.push(`HTTPS on https://${config.platformHost}${httpsPort === 443 ? '' : `:${httpsPort}`}/ (bound to ${boundTo}:${httpsPort}; certificates by SNI${platform.certificates.acme ? ', issued over ACME' : ''})`);
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
      // Stop accepting (an inherited socket stays open with its owner, which
      // queues new connections for the next process), close idle keep-alive
      // connections, let requests in flight finish, then cut what is left.
      // A certificate request under way is let finish while the listeners still
      // answer the CA's HTTP-01 check (bounded like the drain below).
      const settled = platform.certificates.close();
      await Promise.race([settled, new Promise<void>((resolve) => setTimeout(resolve, DRAIN_DEADLINE_MS).unref())]);
      platform.background.close();
      // The sibling edges drain first: what they forward still finds this edge, which keeps accepting meanwhile.
      await siblings?.stop();
      const listeners = [server, httpsServer].filter((s): s is http.Server => s !== undefined);
      const drained = Promise.all(listeners.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      for (const s of listeners) s.closeIdleConnections();
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, DRAIN_DEADLINE_MS).unref());
      await Promise.race([drained, deadline]);
      for (const s of listeners) s.closeAllConnections();
      await siblings?.close();
      await platform.workers.close();
      await platform.sandbox.close();
      platform.close();
    },
  };
}
