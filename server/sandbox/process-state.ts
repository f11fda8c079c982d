// Small facts about other processes, read from the kernel: shared by the
// account-file lock, the cgroup driver and the warm workers.
import fs from 'node:fs';

/** Whether a process exists (EPERM: it does, but is not ours to signal). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pids listed in a cgroup's `cgroup.procs` (or `tasks`) file; none when it is gone. */
export function readPids(file: string): number[] {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}
