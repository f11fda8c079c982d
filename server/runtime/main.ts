// Entry of a tenant's worker process (never run in the edge or supervisor):
//   TENANTRY_PLUGINS=<json> node [--max-old-space-size=N] main.js --release <dir> --listen-fd N [--exit-with-stdin] [--startup-fd N]
//   node [...] main.js --warm --startup-fd N --listen-fd N   (a warm worker: the rest comes with its tenant)
// Starts the tenant's enabled plugins (plugin-loader.ts), loads the release's
// api/ routes and serves both on the listening unix socket the launcher made
// and handed over as descriptor N (the worker never creates, names or sees
// the socket's path: it cannot swap it, worker-socket.ts). A plugin or route module that
// fails does not stop the process: its health endpoint answers 500 with the
// reason (naming the plugin or file), so the pool can report it (and refuse a
// deploy or a settings change) instead of seeing a bare exit.
import http from 'node:http';
import { parseArgs } from 'node:util';
import { loadRoutes } from './route-loader.js';
import { loadPlugins, stopPlugins, type LoadedPlugin } from './plugin-loader.js';
import { createWorkerApp, type RouteState } from './worker-app.js';
import { awaitLimitsInForce } from '../launch/startup-handshake.js';
import { CAPABILITY_SOCKET_ENV, CAPABILITY_TICKET_ENV } from '../launch/capability-channel.js';
import { PLUGINS_ENV, type LaunchPlugin } from '../launch/plugin-names.js';
import { awaitAssignment, becomeTenant } from '../launch/warm-assignment.js';
import { exerciseRequestPath } from './warm-up.js';

const { values } = parseArgs({
  options: {
    release: { type: 'string' },
    'listen-fd': { type: 'string' },
    'exit-with-stdin': { type: 'boolean' },
    'startup-fd': { type: 'string' },
    warm: { type: 'boolean' },
  },
  strict: true,
});

// A warm worker waits here, with the platform's code loaded, until it is given
// a tenant (launch/warm-assignment.ts); from then on it is that tenant's worker.
if (values.warm) {
  await exerciseRequestPath();
  try {
    const assignment = awaitAssignment(Number(values['startup-fd']));
    becomeTenant(assignment);
    values.release = assignment.release;
  } catch (err) {
    process.stderr.write(`tenantry worker: warm start refused: ${(err as Error).message}\n`);
    process.exit(3);
  }
}

// Read and removed before any plugin or tenant code runs: the list (and the
// plugins' configs) is not the tenant routes' business.
const pluginsJson = process.env[PLUGINS_ENV];
delete process.env[PLUGINS_ENV];
// The same for the capability channel: its one-time ticket is spent before tenant code runs.
const capabilitySocket = process.env[CAPABILITY_SOCKET_ENV];
const capabilityTicket = process.env[CAPABILITY_TICKET_ENV];
delete process.env[CAPABILITY_SOCKET_ENV];
delete process.env[CAPABILITY_TICKET_ENV];

const releaseDir = values.release;
const listenFd = Number(values['listen-fd']);
if (!releaseDir || !Number.isInteger(listenFd) || listenFd < 3) {
  process.stderr.write('tenantry worker: --release and --listen-fd are required\n');
  process.exit(2);
}

const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

// The parent holds our stdin open: when it dies, stdin ends and so do we.
if (values['exit-with-stdin']) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

// The plugin list's checker (and its schema library) only when there is a list: most
// workers run no plugin, and every one starts on a first request. Loaded before the
// handshake, as all platform code is (the quota is held back for that).
const pluginListChecker = pluginsJson ? (await import('../launch/plugin-launch.js')).parseLaunchPlugins : undefined;

// Everything above is the platform's own code; what follows runs on the
// tenant's config (plugins) and code (routes), under its limits.
if (values['startup-fd'] !== undefined) awaitLimitsInForce(Number(values['startup-fd']));

/** The launch's plugin list; a malformed one fails the start like a plugin that throws. */
function enabledPlugins(): LaunchPlugin[] {
  if (!pluginsJson || !pluginListChecker) return [];
  let value: unknown;
  try {
    value = JSON.parse(pluginsJson);
  } catch {
    throw new Error(`${PLUGINS_ENV} is not JSON`);
  }
  return pluginListChecker(value);
}

let plugins: LoadedPlugin[] = [];
let state: RouteState;
try {
  // Plugins first: a plugin that fails stops the start before the tenant's code is loaded.
  plugins = await loadPlugins(enabledPlugins(), {
    tenantId: process.env.TENANTRY_TENANT ?? '',
    tenantDataDir: process.env.TENANTRY_DATA ?? '',
    log,
    channel: capabilitySocket && capabilityTicket ? { socketPath: capabilitySocket, ticket: capabilityTicket } : undefined,
  });
  state = { ok: true, plugins, routes: [] };
} catch (err) {
  state = { ok: false, error: (err as Error).message };
  log(`plugins failed to start: ${(err as Error).message}`);
}
if (state.ok) {
  try {
    state = { ...state, routes: await loadRoutes(releaseDir) };
  } catch (err) {
    state = { ok: false, error: (err as Error).message };
    log(`routes failed to load: ${(err as Error).message}`);
  }
}

const server = http.createServer(createWorkerApp(state, log));
// The edge owns timeouts and closes idle connections; the worker never closes
// a kept-alive connection first (that would race with a request being sent on it).
server.keepAliveTimeout = 0;
server.requestTimeout = 0;

// Connections queued while we started are served now.
server.listen({ fd: listenFd }, () => {
  if (!state.ok) return;
  const names = state.plugins.map((p) => p.name);
  const routes = state.routes.map((r) => r.path);
  log(`worker ready: ${routes.length} route(s)${routes.length ? ': ' + routes.join(' ') : ''}${names.length ? `; plugins: ${names.join(' ')}` : ''}`);
});

process.on('SIGTERM', () => {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  void Promise.all([closed, stopPlugins(plugins, log)]).then(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
});
