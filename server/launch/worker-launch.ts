// The boundary between "run this tenant's worker" (the worker pool, in the
// edge) and "how it is run" (plain child process, or a sandbox under the
// tenant's own user with namespaces, seccomp and cgroups, done by the
// supervisor). The pool sees only this interface.
import type { Limits } from '../model/limits.js';
import type { Network } from '../db/store.js';
import type { LaunchPlugin } from './plugin-launch.js';

export interface WorkerLaunchSpec {
  readonly tenantId: string;
  /** Release folder the worker serves; read-only to it. */
  readonly releaseDir: string;
  /** The tenant's persistent writable folder (TENANTRY_DATA). */
  readonly dataDir: string;
  /**
   * Folder that holds the worker's socket: the platform's alone, never
   * writable (nor, in a sandbox, visible) to the worker.
   */
  readonly runDir: string;
  /**
   * Unix socket the worker serves (inside runDir). The launcher binds it,
   * connectable by the platform's user only, and hands the worker the
   * listening descriptor (LISTEN_FD_OPTION); the worker never gets the path.
   */
  readonly socketPath: string;
  /** File that receives the worker's stdout and stderr (appended). */
  readonly logFile: string;
  /** Absolute path of the worker runtime's entry script (dist/server/runtime/main.js). */
  readonly entry: string;
  /** The runtime's arguments; the launcher adds LISTEN_FD_OPTION (and nothing here may name the socket). */
  readonly args: readonly string[];
  /** Exactly the environment the worker sees; nothing of the platform's own. */
  readonly env: Readonly<Record<string, string>>;
  readonly limits: Limits;
  readonly network: Network;
  /**
   * Built-in plugins the runtime loads next to the release's routes, by name
   * (their code is always dist/plugins/<name>/); none when absent. Launchers
   * hand them over with runtimeEnv() (plugin-launch.ts).
   */
  readonly plugins?: readonly LaunchPlugin[];
  /**
   * The platform-owned folder of the tenant's capability socket
   * (<data>/mail/<id>/, launch/capability-channel.ts), made visible to the
   * worker read-only; only for workers that run plugins.
   */
  readonly capabilityDir?: string;
}

/** The runtime option naming the inherited listening descriptor, added by the launcher. */
export const LISTEN_FD_OPTION = '--listen-fd';

export interface WorkerExit {
  readonly code: number | null;
  readonly signal: string | null;
}

export interface LaunchedWorker {
  readonly pid: number;
  /** Settles when the worker process has exited. */
  readonly exited: Promise<WorkerExit>;
  /** Kills the worker and everything it started (its whole cgroup where there is one). */
  kill(): Promise<void>;
}

export interface WorkerLauncher {
  launch(spec: WorkerLaunchSpec): Promise<LaunchedWorker>;
}
