// Entry of the edge process, started by the supervisor as the user `tenantry`:
//   node edge-process.js [serve flags]
// Takes its listening sockets from the supervisor (HTTP, and HTTPS when set;
// once, over Node's IPC channel, which it then closes) and asks the supervisor, over fd 4, for all
// that needs root: tenant users, sealed releases, sandboxed workers.
import net from 'node:net';
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../log.js';
import { startServer } from './serve.js';
import { connectSupervisedSandbox, SupervisorClient } from '../supervisor/supervisor-client.js';

const SUPERVISOR_FD = 4;
const HANDOVER_DEADLINE_MS = 10_000;

function fail(line: string): never {
  process.stderr.write(`tenantry edge: ${line}\n`);
  process.exit(1);
}

type Kind = 'http' | 'https';

/** One listening socket per kind expected, each sent as `{type: "listen", kind}` with its handle. */
function receiveListeners(expected: readonly Kind[]): Promise<Map<Kind, net.Server>> {
  return new Promise((resolve, reject) => {
    const got = new Map<Kind, net.Server>();
    const timer = setTimeout(() => reject(new Error(`no listening socket (${expected.filter((k) => !got.has(k)).join(', ')}) from the supervisor`)), HANDOVER_DEADLINE_MS);
    const onMessage = (m: unknown, handle: unknown) => {
      const kind = (m as { kind?: unknown })?.kind ?? 'http';
      if ((m as { type?: unknown })?.type !== 'listen' || !(handle instanceof net.Server) || !expected.includes(kind as Kind) || got.has(kind as Kind)) {
        clearTimeout(timer);
        process.off('message', onMessage);
        return reject(new Error('the supervisor sent something other than the listening sockets'));
      }
      got.set(kind as Kind, handle);
      if (got.size === expected.length) {
        clearTimeout(timer);
        process.off('message', onMessage);
        resolve(got);
      }
    };
    process.on('message', onMessage);
  });
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
  const handles = await receiveListeners(config.httpsPort === undefined ? ['http'] : ['http', 'https']);
  process.disconnect();
  const client = new SupervisorClient(channel, log);
  const sandbox = await connectSupervisedSandbox(client);
  const running = await startServer(config, log, console.log, { sandbox, listenHandle: handles.get('http'), httpsListenHandle: handles.get('https') });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: Error) => fail(err.message));
