// Runs the `git` program with an explicit environment and returns its output.
// Every git call of the platform goes through here, so none inherits the
// platform's own environment (tokens, secrets) by accident.
import { execFile } from 'node:child_process';

export interface GitResult {
  stdout: string;
  stderr: string;
}

/** The environment every git child starts from: a PATH and nothing of ours. */
export function baseGitEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    // No user or system git configuration leaks into the platform's repositories.
    GIT_CONFIG_NOSYSTEM: '1',
    HOME: '/nonexistent',
    LANG: 'C',
    ...extra,
  };
}

export function runGit(args: readonly string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      args,
      { cwd: opts.cwd, env: baseGitEnv(opts.env), timeout: opts.timeoutMs ?? 30_000, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const detail = String(stderr).trim() || err.message;
          reject(Object.assign(new Error(`git ${args[0]} failed: ${detail}`), { cause: err }));
          return;
        }
        resolve({ stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}
