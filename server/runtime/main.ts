// Entry of a tenant's worker process (never run in the edge or supervisor):
//   node [--max-old-space-size=N] main.js --release <dir> --socket <path> [--exit-with-stdin] [--startup-fd N]
// Loads the release's api/ routes and serves them on a unix socket. A route
// module that fails to load does not stop the worker: its health endpoint
// answers 500 with the reason, so the pool can report it (and refuse a deploy).
import fs from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { loadRoutes } from './route-loader.js';
import { createWorkerApp, type RouteState } from './worker-app.js';
import { awaitLimitsInForce } from '../launch/startup-handshake.js';

const { values } = parseArgs({
  options: {
    release: { type: 'string' },
    socket: { type: 'string' },
    'exit-with-stdin': { type: 'boolean' },
    'startup-fd': { type: 'string' },
  },
  strict: true,
});
const releaseDir = values.release;
const socketPath = values.socket;
if (!releaseDir || !socketPath) {
  process.stderr.write('tenantry worker: --release and --socket are required\n');
  process.exit(2);
}

const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

// The parent holds our stdin open: when it dies, stdin ends and so do we.
if (values['exit-with-stdin']) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

// Everything above is the platform's own code; the tenant's starts with its routes.
if (values['startup-fd'] !== undefined) awaitLimitsInForce(Number(values['startup-fd']));

let state: RouteState;
try {
  state = { ok: true, routes: await loadRoutes(releaseDir) };
} catch (err) {
  state = { ok: false, error: (err as Error).message };
  log(`routes failed to load: ${(err as Error).message}`);
}

const server = http.createServer(createWorkerApp(state, log));
// The edge owns timeouts and closes idle connections; the worker never closes
// a kept-alive connection first (that would race with a request being sent on it).
server.keepAliveTimeout = 0;
server.requestTimeout = 0;

fs.rmSync(socketPath, { force: true });
server.listen(socketPath, () => {
  if (state.ok) log(`worker ready: ${state.routes.length} route(s)${state.routes.length ? ': ' + state.routes.map((r) => r.path).join(' ') : ''}`);
});

process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 1000).unref();
});
