// The worker's side of the launcher's start handshake. The sandboxed launcher
// holds the tenant's CPU quota back while Node and the worker runtime start
// (platform code only: that start is CPU-heavy and would take twice as long
// under a 50% quota); before the first module of the tenant's is loaded the
// worker asks for the quota over an inherited socket, and goes on only once
// the launcher says it is in force.
import fs from 'node:fs';

export const LIMITS_REQUEST = 'limits\n';
export const LIMITS_IN_FORCE = 'k';

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Blocks until the launcher confirms; exits the process if it does not (no tenant code runs unlimited). */
export function awaitLimitsInForce(fd: number): void {
  const answer = Buffer.alloc(1);
  try {
    fs.writeSync(fd, LIMITS_REQUEST);
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, answer, 0, 1, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        pause(1);
        continue;
      }
      if (n === 1 && answer.toString('latin1') === LIMITS_IN_FORCE) break;
      throw new Error(n === 0 ? 'the launcher closed the start channel' : 'unexpected answer on the start channel');
    }
    fs.closeSync(fd);
  } catch (err) {
    process.stderr.write(`tenantry worker: resource limits not confirmed: ${(err as Error).message}\n`);
    process.exit(3);
  }
}
