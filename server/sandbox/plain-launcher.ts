// Isolation "off": the worker is a plain child process of this one, in its own
// process group (so kill() takes whatever it started along), with exactly the
// environment in the spec (plus the plugin list, plugin-launch.ts), and stdout/stderr appended to the tenant's log file.
// Its stdin is a pipe from us: if this process dies, even by SIGKILL, the
// worker sees end-of-file and exits, so no worker outlives the platform.
import fs from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import type { LaunchedWorker, WorkerExit, WorkerLaunchSpec, WorkerLauncher } from '../launch/worker-launch.js';
import { workerNodeFlags } from '../launch/node-flags.js';
import { runtimeEnv } from '../launch/plugin-launch.js';

const TERM_GRACE_MS = 2000;

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
    const out = fs.openSync(spec.logFile, 'a', 0o640);
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [...workerNodeFlags(spec.limits), spec.entry, ...spec.args, '--exit-with-stdin'], {
        cwd: spec.releaseDir,
        env: runtimeEnv(spec.env, spec.plugins),
        detached: true,
        stdio: ['pipe', out, out],
      });
    } finally {
      fs.closeSync(out);
    }
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
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
