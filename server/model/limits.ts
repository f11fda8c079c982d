// Per-tenant resource limits: defaults, validation, and the effective values.
import { z } from 'zod';

export const DEFAULT_LIMITS = Object.freeze({
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
});

export type Limits = { -readonly [K in keyof typeof DEFAULT_LIMITS]: number };

export const limitsPatchSchema = z.strictObject({
  memoryMB: z.number().int().min(32).max(65536).optional(),
  cpuPercent: z.number().int().min(1).max(6400).optional(),
  pids: z.number().int().min(64).max(65536).optional(),
  archiveMB: z.number().int().min(1).max(65536).optional(),
  files: z.number().int().min(1).max(1_000_000).optional(),
});
export type LimitsPatch = z.infer<typeof limitsPatchSchema>;

/** Stored overrides merged over the defaults. */
export function effectiveLimits(overrides: LimitsPatch): Limits {
  return { ...DEFAULT_LIMITS, ...stripUndefined(overrides) };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
