// Entry of a sibling edge, started by the first edge (sibling-edges.ts) when
// TENANTRY_EDGES > 1, as the same user:
//   TENANTRY_EDGE_INDEX=<n> node sibling-edge-process.js [serve flags]
// Inherits the HTTP listening socket as descriptor 5. Joins the first edge's
// change channel before anything else; then loads the live indexes as
// requests come, answers static requests and forwards the rest to the first
// edge. It exits when the channel is gone (the first edge stopped, or cut it
// off for not applying a change in time): its parent starts a fresh one.
import http from 'node:http';
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../log.js';
import { DataPaths } from '../paths.js';
import { openDatabase } from '../db/database.js';
import { Store } from '../db/store.js';
import { DomainMap } from '../tenants/domain-map.js';
import { SiteRegistry } from '../static/site-registry.js';
import { DEFAULT_FILE_CACHE } from '../static/serve/file-cache.js';
import { isEdgeOwnMetric, PlatformMetrics } from '../metrics/platform-metrics.js';
import { PluginCatalogue } from '../plugins/catalogue.js';
import { ConnectionGuard, CONNECTIONS_CHECKING_INTERVAL_MS, defaultConnectionCap } from '../edge/connection-guard.js';
import { joinSiblings } from '../edge/siblings/sibling-link.js';
import { forwardToFirstEdge } from '../edge/siblings/forward-to-first.js';
import { createSiblingEdgeHandler } from '../edge/siblings/sibling-edge-handler.js';
import { forwardSocketPath, linkSocketPath } from '../edge/siblings/sibling-sockets.js';
import { EDGE_LISTEN_FD } from '../launch/entries.js';
import { onStopSignal } from './stop-signals.js';

/** Requests in flight get this long after SIGTERM (the first edge kills at 6 s). */
const DRAIN_DEADLINE_MS = 4_000;

function fail(line: string): never {
  process.stderr.write(`tenantry edge: ${line}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const edge = Number(process.env.TENANTRY_EDGE_INDEX ?? '1');
  const log = createLogger({ process: 'edge', edge });
  const paths = new DataPaths(config.dataDir);
  const sites = new SiteRegistry(paths, log, DEFAULT_FILE_CACHE, { precompress: false });
  const metrics = new PlatformMetrics();
  let domains: DomainMap | undefined;
  let stopping = false;
  await joinSiblings(
    linkSocketPath(paths.runRoot),
    { edge, pid: process.pid },
    {
      changed: (change) => {
        if (change.domains) domains?.rebuild();
        if (change.tenantId !== undefined) {
          sites.forget(change.tenantId);
          sites.get(change.tenantId); // loaded now, from the live link, before the acknowledgement
        }
      },
      metrics: async () => (await metrics.registry.getMetricsAsJSON()).filter((m) => isEdgeOwnMetric(m.name)),
      lost: () => {
        if (stopping) return;
        log.error('the first edge is gone or cut this edge off; stopping');
        process.exit(1);
      },
    },
  );
  // Registered: from here on every change reaches this edge; what it reads now is current.
  const store = new Store(openDatabase(paths.database));
  domains = new DomainMap(store);
  const catalogue = new PluginCatalogue();
  const handler = createSiblingEdgeHandler({
    platformHost: config.platformHost,
    domains,
    sites,
    trustedProxies: config.trustedProxies,
    httpsPort: () => config.httpsPort,
    isPluginName: (name) => catalogue.offers(name),
    forward: forwardToFirstEdge(forwardSocketPath(paths.runRoot), log),
    metrics,
    edgeHeader: config.edgeHeader ? String(edge) : undefined,
  });
  const server = http.createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }, handler);
  server.keepAliveTimeout = 65_000;
  const connections = new ConnectionGuard(
    { perAddress: config.maxConnectionsPerAddress, total: config.maxConnections ?? defaultConnectionCap(), exempt: (address) => config.trustedProxies.trusts(address) },
    log,
  );
  connections.protect(server);
  metrics.setSources({ openConnections: () => connections.openConnections, workerStates: () => [], usage: () => undefined, usageMissing: () => undefined });
  server.on('error', (err) => log.error('listener error', { err }));
  server.listen({ fd: EDGE_LISTEN_FD });

  const stop = () => {
    if (stopping) return;
    stopping = true;
    const drained = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, DRAIN_DEADLINE_MS).unref());
    void Promise.race([drained, deadline]).then(() => {
      server.closeAllConnections();
      process.exit(0);
    });
  };
  onStopSignal(() => stop());
}

main().catch((err: Error) => fail(err.message));
