// tenantry serve [--port N] [--data-dir D] ...: runs the platform in the foreground.
import { ConfigError, loadConfig, type Config } from '../../config.js';
import { createLogger, type Logger } from '../../log.js';
import { startServer } from '../../app/serve.js';
import { CliError } from '../api-client.js';
import { shouldSupervise, startSupervisor } from '../../supervisor/supervisor.js';
import { activatedSockets, forgetActivation, httpListenFd } from '../../launch/socket-activation.js';
import { onStopSignal } from '../../app/stop-signals.js';

export async function serveCommand(args: string[]): Promise<void> {
  let config;
  try {
    config = loadConfig(args, process.env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`tenantry: ${err.message}`, 2);
    throw err;
  }
  const log = createLogger();
  if (shouldSupervise(config, log)) return superviseCommand(config, args, log);
  // Started by a systemd socket unit: serve on its socket (kept open by systemd across restarts).
  const activated = activatedSockets(process.env, process.pid);
  forgetActivation(process.env);
  let running;
  try {
    running = await startServer(config, log, console.log, { listenFd: activated ? httpListenFd(activated) : undefined });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new CliError(`tenantry: port ${portOf(e, config)} on ${config.bind} is in use; stop the other server or set ${settingOf(e, config)}`);
    if (e.name === 'IsolationRefusedError') throw new CliError(`tenantry: ${e.message}`);
    if (e.code === 'EACCES') throw new CliError(`tenantry: not allowed to bind ${config.bind}:${portOf(e, config)} (${e.message})`);
    throw err;
  }
  onStopSignal((signal) => {
    log.info('stopping', { signal });
    running.close().then(
      () => {
        log.info('stopped: listeners closed, every worker ended');
        process.exit(0);
      },
      (err: unknown) => {
        log.error('stopped with an error', { err });
        process.exit(1);
      },
    );
    setTimeout(() => process.exit(1), 10_000).unref();
  });
}

/** As root: a supervisor here, the edge as the user `tenantry` (server/supervisor/README.md). */
async function superviseCommand(config: Config, args: string[], log: Logger): Promise<void> {
  let supervisor;
  try {
    supervisor = await startSupervisor(config, args, log.child({ process: 'supervisor' }));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.name === 'IsolationRefusedError') throw new CliError(`tenantry: ${e.message}`);
    if (e.code === 'EADDRINUSE') throw new CliError(`tenantry: port ${portOf(e, config)} on ${config.bind} is in use; stop the other server or set ${settingOf(e, config)}`);
    if (e.code === 'EACCES') throw new CliError(`tenantry: not allowed to bind ${config.bind}:${portOf(e, config)} (${e.message})`);
    throw err;
  }
  onStopSignal((signal) => {
    log.info('stopping', { signal });
    void supervisor.stop();
  });
  const code = await supervisor.done;
  log.info(code === 0 ? 'stopped: the edge and every worker ended' : 'stopped: the edge ended with an error and every worker was stopped', { code });
  process.exit(code);
}

/** Which listener a bind error is about: the HTTPS one when its port is named in the error. */
function isHttpsError(e: NodeJS.ErrnoException & { port?: number }, config: Config): boolean {
  return config.httpsPort !== undefined && e.port === config.httpsPort && e.port !== config.port;
}

function portOf(e: NodeJS.ErrnoException & { port?: number }, config: Config): number {
  return isHttpsError(e, config) ? config.httpsPort! : config.port;
}

function settingOf(e: NodeJS.ErrnoException & { port?: number }, config: Config): string {
  return isHttpsError(e, config) ? 'TENANTRY_HTTPS_PORT' : 'TENANTRY_PORT';
}
