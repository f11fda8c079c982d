// Starts deploy workers (deploy-worker-main.ts) and waits for their answer.
// Each job gets a fresh child process of the edge, as the edge's own user,
// under `nice` (and moved into the platform's low-weight deploy cgroup, when
// there is one, before it is given its job). A worker that dies mid-job gives
// a clear deploy_failed; whatever it half wrote is the caller's to remove.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { DEPLOY_WORKER_ENTRY } from '../launch/entries.js';
import type { ArchiveLimits } from './archive-rules.js';
import { rebuildError, type DeployJob, type StageOutcome, type WorkerMessage, type WorkerProcessInfo } from './deploy-work-protocol.js';

/** Matches DEPLOY_NICE of the worker (which lowers itself when `nice` is missing). */
const NICE = 10;
const NICE_TOOL = ['/usr/bin/nice', '/bin/nice'].find((p) => fs.existsSync(p));

export interface DeployWorkerOptions {
  readonly log: Logger;
  /**
   * Moves a just-started worker into the platform's deploy cgroup (low CPU and
   * I/O weight); resolves with where it went, or undefined without cgroups.
   */
  readonly place?: (pid: number) => Promise<string | undefined>;
}

/** A worker as it runs: for tests and operators (`onStart`). */
export interface RunningDeployWorker {
  readonly pid: number;
  readonly job: DeployJob['type'];
  kill(signal?: NodeJS.Signals): void;
}

export class DeployWorkers {
  private readonly startListeners = new Set<(w: RunningDeployWorker) => void>();
  /** Where and how the last worker that answered ran. */
  lastProcess: WorkerProcessInfo | undefined;

  constructor(private readonly o: DeployWorkerOptions) {}

  /** Calls `fn` with every worker started from now on; returns the unsubscribe. */
  onStart(fn: (w: RunningDeployWorker) => void): () => void {
    this.startListeners.add(fn);
    return () => this.startListeners.delete(fn);
  }

  /**
   * Unpacks `archive` into `treeDir` in a worker and indexes it. Rejects with
   * ArchiveRuleError for a refused archive (as extractArchive does), with an
   * fs-style error (with its code) for a disk problem, and with AppError
   * deploy_failed when the worker stops without an answer.
   */
  async stage(archive: Readable | NodeJS.ReadableStream, treeDir: string, limits: ArchiveLimits): Promise<StageOutcome> {
    const answer = await this.run({ type: 'stage', treeDir, limits }, archive);
    if (!answer.stage) throw new AppError('deploy_failed', 'The deploy worker answered without a staged release.');
    return answer.stage;
  }

  /** Makes the compressed copies of a release in a worker (which records them in its manifest). */
  async compress(releaseDir: string): Promise<void> {
    await this.run({ type: 'compress', releaseDir });
  }

  private async run(job: DeployJob, archive?: Readable | NodeJS.ReadableStream): Promise<Extract<WorkerMessage, { type: 'done' }>> {
    const node = [process.execPath, DEPLOY_WORKER_ENTRY];
    const [cmd, ...args] = NICE_TOOL ? [NICE_TOOL, '-n', String(NICE), ...node] : node;
    const child = spawn(cmd!, args, {
      // stdin: the archive; stdout/stderr: its log lines join the edge's.
      stdio: [archive ? 'pipe' : 'ignore', 'inherit', 'inherit', 'ipc'],
      env: workerEnv(process.env),
    });
    const exited = new Promise<string>((resolve) => {
      // 'close', not 'exit': by then every message the worker sent has arrived, so an answer is never taken for a crash.
      child.once('close', (code, signal) => resolve(signal ? `signal ${signal}` : `exit code ${code}`));
      // A failed spawn, or a send to a worker already gone: the exit says the rest.
      child.on('error', (err) => resolve(err.message));
    });
    const answered = new Promise<WorkerMessage>((resolve) => child.once('message', (m) => resolve(m as WorkerMessage)));
    try {
      if (child.pid === undefined) throw new AppError('deploy_failed', `The deploy worker could not start: ${await exited}.`);
      const placed = await this.place(child.pid);
      if (placed) this.o.log.debug('deploy worker placed', { pid: child.pid, cgroup: placed });
      for (const fn of this.startListeners) fn({ pid: child.pid, job: job.type, kill: (s = 'SIGKILL') => child.kill(s) });
      child.send(job);
      const feeding = archive ? feed(archive, child) : Promise.resolve(undefined);
      const outcome = await Promise.race([answered, exited.then((how) => ({ type: 'exited' as const, how }))]);
      if (outcome.type === 'exited') {
        throw new AppError('deploy_failed', `The deploy worker stopped (${outcome.how}) before the release was ready; the live release is unchanged.`);
      }
      this.lastProcess = outcome.process;
      if (outcome.type === 'failed') {
        // A cut-off upload looks truncated to the worker; the cause is the upload, as it was in-process.
        const inputError = await Promise.race([feeding, Promise.resolve(undefined)]);
        throw inputError ?? rebuildError(outcome.error);
      }
      // A worker that answered has read all it needed; the rest of the input is not ours to wait for.
      await Promise.race([feeding, exited]);
      return outcome;
    } finally {
      // Never left running: on a refused archive, a client gone or an edge error alike.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (archive && archive instanceof Readable && !archive.destroyed) archive.destroy();
    }
  }

  private async place(pid: number): Promise<string | undefined> {
    if (!this.o.place) return undefined;
    try {
      return await this.o.place(pid);
    } catch (err) {
      // Priority still applies; the deploy goes on without the cgroup's weights.
      this.o.log.warn('cannot move the deploy worker into its cgroup', { pid, err });
      return undefined;
    }
  }
}

/**
 * Pipes the archive into the worker. Resolves with the input's own error (an
 * upload cut off), if any; the worker closing its end early (it refused the
 * archive) is not an error here: its answer says why.
 */
async function feed(archive: Readable | NodeJS.ReadableStream, child: ChildProcess): Promise<Error | undefined> {
  const source = archive instanceof Readable ? archive : new Readable().wrap(archive);
  let inputError: Error | undefined;
  source.once('error', (err: Error) => (inputError = err));
  child.stdin!.on('error', () => {});
  try {
    await pipeline(source, child.stdin!);
  } catch {
    child.stdin!.destroy();
  }
  return inputError;
}

/** The worker needs no secret of the edge's: settings that shape logging and Node only. */
function workerEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ['PATH', 'LANG', 'TZ', 'NODE_ENV', 'TENANTRY_LOG_LEVEL', 'TENANTRY_LOG_FORMAT']) {
    const v = env[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}
