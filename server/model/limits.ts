// Per-tenant resource limits: their allowed ranges, defaults, and the
// effective values. The one definition of what a valid limit is: the API
// checks patches against it and the supervisor checks launch specs against it.
import { z } from 'zod';

/** A full set of limits, each within the range the platform accepts. */
export const limitsSchema = z.strictObject({
  memoryMB: z.number().int().min(32).max(65536),
  cpuPercent: z.number().int().min(1).max(6400),
  pids: z.number().int().min(64).max(65536),
  archiveMB: z.number().int().min(1).max(65536),
  files: z.number().int().min(1).max(1_000_000),
  diskMB: z.number().int().min(16).max(1_048_576),
});
export type Limits = z.infer<typeof limitsSchema>;

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  /** Memory for the tenant's worker (cgroup limit; V8 heap gets ~75%). */
  memoryMB: 256,
  /** Share of one CPU core, in percent (cgroup quota). */
  cpuPercent: 50,
  /** Processes and threads in the tenant's cgroup (Node itself uses ~12). */
  pids: 128,
  /** Unpacked size cap for an uploaded archive, in MiB. */
  archiveMB: 512,
  /** File-count cap for an uploaded archive. */
  files: 20000,
  /** Disk a tenant may fill: its git repository (and, where the host enforces it, its data folder). */
  diskMB: 1024,
});

/** A tenant's overrides: any subset of the limits, same ranges, unknown names refused. */
export const limitsPatchSchema = limitsSchema.partial();
export type LimitsPatch = z.infer<typeof limitsPatchSchema>;

/** Stored overrides merged over the defaults. */
export function effectiveLimits(overrides: LimitsPatch): Limits {
  return { ...DEFAULT_LIMITS, ...stripUndefined(overrides) };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
