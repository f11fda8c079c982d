// Isolation "off": the worker is a plain child process of this one, in its own
// process group (so kill() takes whatever it started along), with exactly the
// environment in the spec (plus the plugin list, plugin-launch.ts), and stdout/stderr appended to the tenant's log file.
// Its stdin is a pipe from us: if this process dies, even by SIGKILL, the
// worker sees end-of-file and exits, so no worker outlives the platform.
// The listening socket is made here and inherited as descriptor 3
// (worker-socket.ts); the worker shares our user, so that only keeps it from
// swapping the socket by accident, not on purpose (README, "Security model").
import fs from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { LISTEN_FD_OPTION, type LaunchedWorker, type WorkerExit, type WorkerLaunchSpec, type WorkerLauncher } from '../launch/worker-launch.js';
import { workerNodeFlags } from '../launch/node-flags.js';
import { runtimeEnv } from '../launch/plugin-launch.js';
import { bindWorkerSocket, removeWorkerSocket, socketPlace, type WorkerSocket } from './worker-socket.js';

const TERM_GRACE_MS = 2000;
/** The child's descriptor for its listening socket (0-2 are stdio). */
const LISTEN_FD = 3;

/** Process groups still running; killed synchronously if this process exits. */
const liveGroups = new Set<number>();
let exitHandlerInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const pid of liveGroups) killGroup(pid, 'SIGKILL');
  });
}

export class PlainWorkerLauncher implements WorkerLauncher {
  async launch(spec: WorkerLaunchSpec): Promise<LaunchedWorker> {
    installExitHandler();
    fs.mkdirSync(spec.runDir, { recursive: true, mode: 0o700 });
    fs.chmodSync(spec.runDir, 0o700);
    // Same user as the worker: the folder is trusted as it is (no walk from a data root).
    const place = { ...socketPlace(spec.runDir, spec.socketPath), dataRoot: spec.runDir };
    const socket: WorkerSocket = await bindWorkerSocket(place, undefined);
    let out: number | undefined;
    let child: ChildProcess;
    try {
      out = fs.openSync(spec.logFile, 'a', 0o640);
      child = spawn(process.execPath, [...workerNodeFlags(spec.limits), spec.entry, ...spec.args, LISTEN_FD_OPTION, String(LISTEN_FD), '--exit-with-stdin'], {
        cwd: spec.releaseDir,
        env: runtimeEnv(spec.env, spec.plugins),
        detached: true,
        stdio: ['pipe', out, out, socket.fd],
      });
    } catch (err) {
      removeWorkerSocket(place);
      throw err;
    } finally {
      // Synchronously after the spawn: this process never accepts on the worker's socket.
      socket.release();
      if (out !== undefined) fs.closeSync(out);
    }
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => {
        removeWorkerSocket(place);
        reject(err);
      });
    });
    const pid = child.pid!;
    liveGroups.add(pid);
    // Our end of the pipe must not keep this process alive.
    const stdin = child.stdin!;
    stdin.on('error', () => {});
    (stdin as unknown as { unref?: () => void }).unref?.();
    (child as unknown as { unref: () => void }).unref();
    const exited = new Promise<WorkerExit>((resolve) => {
      child.once('exit', (code, signal) => {
        liveGroups.delete(pid);
        // Anything the worker left in its group goes with it.
        killGroup(pid, 'SIGKILL');
        removeWorkerSocket(place);
        resolve({ code, signal });
      });
    });
    let killing: Promise<void> | undefined;
    return {
      pid,
      exited,
      kill: () => {
        killing ??= (async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          killGroup(pid, 'SIGTERM');
          const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), TERM_GRACE_MS);
          await exited;
          clearTimeout(timer);
        })();
        return killing;
      },
    };
  }
}
