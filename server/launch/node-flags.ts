// Node flags every worker gets, whichever launcher runs it: a V8 heap below the
// tenant's memory limit, so runaway allocation ends in a quick, clean heap
// failure of that worker rather than swapping or the kernel OOM killer.
import type { Limits } from '../model/limits.js';

export function workerNodeFlags(limits: Pick<Limits, 'memoryMB'>): string[] {
  const heapMB = Math.max(16, Math.floor(limits.memoryMB * 0.75));
  return [`--max-old-space-size=${heapMB}`];
}
