// The real git client, run asynchronously (the platform under test may share
// this process), with a clean configuration of its own.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

export interface GitRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function gitAvailable(): boolean {
  return spawnSync('git', ['--version']).status === 0;
}

export function commandAvailable(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

/** A git runner whose HOME is a fresh folder: no user config, no credential helper, never a prompt. */
export function gitClient(home: string, extraEnv: Record<string, string> = {}) {
  fs.mkdirSync(home, { recursive: true });
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '',
    LANG: 'C',
    ...extraEnv,
  };
  const identity = ['-c', 'user.name=Git Test', '-c', 'user.email=git-test@example.com', '-c', 'init.defaultBranch=main'];
  return (args: readonly string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<GitRun> =>
    new Promise((resolve) => {
      const child = spawn('git', [...identity, ...args], { cwd: opts.cwd, env: { ...env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
}

/** Writes files (relative path -> content) under a folder. */
export function writeTree(root: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
  }
}
