// Temporary folders for tests, removed when the test file's process ends,
// whether its tests passed, failed or never cleaned up after themselves.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const made: string[] = [];

function removeAll(): void {
  for (const dir of made) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // busy (a mount a failed test left): the next boot's /tmp clean-up takes it
    }
  }
}

/** A fresh folder below the system's temporary folder (mode 0700), gone at exit. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (made.length === 0) process.once('exit', removeAll);
  made.push(dir);
  return dir;
}
