// Entry of the edge process, started by the supervisor as the user `tenantry`:
//   node edge-process.js [serve flags]
// Inherits its listening sockets from the supervisor as descriptors 5 (HTTP)
// and 6 (HTTPS, when set); it accepts on them once the platform is ready. It
// asks the supervisor, over fd 4, for all that needs root: tenant users,
// sealed releases, sandboxed workers. It has no other channel to the supervisor.
import net from 'node:net';
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../log.js';
import { startServer } from './serve.js';
import { connectSupervisedSandbox, SupervisorClient } from '../supervisor/supervisor-client.js';
import { EDGE_HTTPS_LISTEN_FD, EDGE_LISTEN_FD } from '../launch/entries.js';
import { onStopSignal } from './stop-signals.js';

const SUPERVISOR_FD = 4;

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
  const log = createLogger({ process: 'edge' });
  const channel = new net.Socket({ fd: SUPERVISOR_FD, readable: true, writable: true });
  // Without the supervisor there is nobody to launch or stop workers: stop too.
  channel.on('close', () => {
    log.error('the supervisor is gone; stopping');
    process.exit(1);
  });
  const client = new SupervisorClient(channel, log);
  const sandbox = await connectSupervisedSandbox(client);
  const running = await startServer(config, log, console.log, {
    sandbox,
    listenFd: EDGE_LISTEN_FD,
    httpsListenFd: config.httpsPort === undefined ? undefined : EDGE_HTTPS_LISTEN_FD,
    siblings: { argv: process.argv.slice(2) },
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
    // Sibling edges drain first (up to 6 s), then this one (up to 8 s); the supervisor's own deadline is 15 s.
    setTimeout(() => process.exit(1), 14_500).unref();
  };
  onStopSignal(() => stop());
}

main().catch((err: Error) => fail(err.message));
