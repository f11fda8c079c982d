// What the edge and its deploy worker say to each other over Node's IPC
// channel. A job is one message; the archive's bytes follow on the worker's
// stdin. Errors cross as plain data and are rebuilt on the edge's side, so an
// archive refused in the worker gets the same answer as one refused anywhere.
import { ArchiveRuleError, type ArchiveLimits } from './archive-rules.js';

/** Unpack the archive on stdin into `treeDir` (which must not exist yet), then index it. */
export interface StageJob {
  readonly type: 'stage';
  readonly treeDir: string;
  readonly limits: ArchiveLimits;
}

/** Make the missing brotli and gzip copies of a release and record them in its manifest. */
export interface CompressJob {
  readonly type: 'compress';
  readonly releaseDir: string;
}

export type DeployJob = StageJob | CompressJob;

export interface StageOutcome {
  /** The folder that becomes the release (`treeDir` or its single top folder). */
  readonly releaseRoot: string;
  readonly files: number;
  readonly bytes: number;
  /** [path relative to the release root, SHA-256 hex] of every regular file (for the content store). */
  readonly contents: ReadonlyArray<readonly [string, string]>;
}

/** Where and how the worker ran: what a test or an operator checks. */
export interface WorkerProcessInfo {
  readonly pid: number;
  readonly uid: number;
  /** Its nice value (higher: less CPU when the edge wants it). */
  readonly nice: number;
  /** Its cgroup path(s), from /proc/self/cgroup. */
  readonly cgroups: readonly string[];
}

export type SerializedError =
  | { readonly kind: 'archive'; readonly rule: string; readonly entry?: string; readonly message: string }
  | { readonly kind: 'error'; readonly message: string; readonly code?: string };

export type WorkerMessage =
  | { readonly type: 'done'; readonly process: WorkerProcessInfo; readonly stage?: StageOutcome }
  | { readonly type: 'failed'; readonly process: WorkerProcessInfo; readonly error: SerializedError };

export function serializeError(err: unknown): SerializedError {
  if (err instanceof ArchiveRuleError) return { kind: 'archive', rule: err.rule, ...(err.entry !== undefined ? { entry: err.entry } : {}), message: err.message };
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as NodeJS.ErrnoException).code;
  return { kind: 'error', message: e.message, ...(typeof code === 'string' ? { code } : {}) };
}

/** The error as the edge's deploy pipeline knows it (ArchiveRuleError keeps its exact message). */
export function rebuildError(s: SerializedError): Error {
  if (s.kind === 'archive') {
    const err = new ArchiveRuleError(s.rule, s.entry);
    // The detail is part of the message only; keep the worker's wording exactly.
    Object.defineProperty(err, 'message', { value: s.message });
    return err;
  }
  const err = new Error(s.message) as NodeJS.ErrnoException;
  if (s.code) err.code = s.code;
  return err;
}
