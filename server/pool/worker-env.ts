// The environment a tenant's worker sees, built on purpose from an allow-list:
// tenant.json `env`, then the variables set through the API (they win), then
// what the platform guarantees (TENANTRY_TENANT, TENANTRY_DATA, NODE_ENV),
// which nothing overrides. Nothing of the platform's own environment leaks in.

export const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
export const MAX_ENV_VARS = 200;
export const MAX_ENV_VALUE_BYTES = 32 * 1024;

/** Why a key may not be set by a tenant; undefined when it may. */
export function envKeyProblem(key: string): string | undefined {
  if (!ENV_KEY_PATTERN.test(key)) return 'must be letters, digits and underscores, not starting with a digit (at most 128)';
  if (key.toUpperCase().startsWith('TENANTRY_')) return 'names starting with TENANTRY_ are set by the platform';
  if (key === 'NODE_OPTIONS') return 'NODE_OPTIONS would change how the platform runs the worker';
  return undefined;
}

export interface WorkerEnvInput {
  tenantId: string;
  dataDir: string;
  /** From the release's tenant.json. */
  releaseEnv: Readonly<Record<string, string>>;
  /** From PUT /api/v1/tenants/:id/env. */
  tenantEnv: Readonly<Record<string, string>>;
}

export function buildWorkerEnv(input: WorkerEnvInput): Record<string, string> {
  const env: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const source of [input.releaseEnv, input.tenantEnv]) {
    for (const [k, v] of Object.entries(source)) if (!envKeyProblem(k) && typeof v === 'string') env[k] = v;
  }
  return {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: input.dataDir,
    LANG: 'C.UTF-8',
    ...env,
    TENANTRY_TENANT: input.tenantId,
    TENANTRY_DATA: input.dataDir,
    NODE_ENV: 'production',
  };
}
