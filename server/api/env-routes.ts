// /api/v1/tenants/:id/env: the variables a tenant's code finds in process.env.
// PUT replaces the whole set, PATCH sets or removes some (values are never
// shown back); GET lists the keys.
// A change restarts the tenant's worker (gracefully) and lifts a crash-loop hold.
import { Router } from 'express';
import type { Store } from '../db/store.js';
import type { TenantService } from '../tenants/tenant-service.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import { auditActor } from './audit-trail.js';
import { requireScope } from './auth-middleware.js';
import { jsonBody } from './json-body.js';
import { AppError } from '../errors.js';
import { envKeyProblem, MAX_ENV_VALUE_BYTES, MAX_ENV_VARS } from '../pool/worker-env.js';

/** The JSON body -> a validated {KEY: "value"} map; the first problem is a 400. */
export function parseEnvBody(body: unknown): Record<string, string> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new AppError('invalid_request', 'The body must be a JSON object of variable names to string values, e.g. {"API_KEY": "..."}.');
  }
  const entries = Object.entries(body as Record<string, unknown>);
  if (entries.length > MAX_ENV_VARS) throw new AppError('invalid_request', `At most ${MAX_ENV_VARS} variables.`);
  const vars: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, value] of entries) {
    const problem = envKeyProblem(key);
    if (problem) throw new AppError('invalid_request', `${JSON.stringify(key.slice(0, 140))}: ${problem}.`);
    if (typeof value !== 'string') throw new AppError('invalid_request', `${key}: the value must be a string.`);
    if (value.includes('\0')) throw new AppError('invalid_request', `${key}: the value may not contain NUL characters.`);
    if (Buffer.byteLength(value) > MAX_ENV_VALUE_BYTES) throw new AppError('invalid_request', `${key}: the value is larger than ${MAX_ENV_VALUE_BYTES / 1024} KiB.`);
    vars[key] = value;
  }
  return vars;
}

export interface EnvRouterDeps {
  readonly tenants: TenantService;
  readonly store: Store;
  readonly workers: Pick<WorkerPool, 'restartTenant'>;
}

/** A flat object of strings: MAX_ENV_VARS values of at most MAX_ENV_VALUE_BYTES fit under the cap. */
const ENV_JSON = { limit: '1mb', maxDepth: 1 } as const;

/** Mounted at /api/v1/tenants/:id/env. */
export function envRouter(p: EnvRouterDeps): Router {
  const r = Router({ mergeParams: true });

  r.get('/', requireScope('deploy'), (req, res) => {
    const id = req.params.id as string;
    p.tenants.get(id);
    res.json({ keys: Object.keys(p.store.env.get(id)) });
  });

  r.put('/', requireScope('deploy'), jsonBody(ENV_JSON), (req, res) => {
    const id = req.params.id as string;
    p.tenants.get(id);
    const vars = parseEnvBody(req.body);
    p.store.env.replace(id, vars);
    const keys = Object.keys(vars).sort();
    p.store.audit.record({ actor: auditActor(req), action: 'env.set', tenantId: id, detail: { keys } });
    p.workers.restartTenant(id, 'its environment variables changed');
    res.json({ keys });
  });

  // One or more variables set (a string) or removed (null), the others kept:
  // what the dashboard sends, since it never sees the values it did not set.
  r.patch('/', requireScope('deploy'), jsonBody(ENV_JSON), (req, res) => {
    const id = req.params.id as string;
    p.tenants.get(id);
    const body = req.body as Record<string, unknown> | undefined;
    const removed = Object.entries(body ?? {}).filter(([, v]) => v === null).map(([k]) => k);
    const changed = parseEnvBody(Object.fromEntries(Object.entries(body ?? {}).filter(([, v]) => v !== null)));
    const vars = { ...p.store.env.get(id), ...changed };
    for (const k of removed) delete vars[k];
    if (Object.keys(vars).length > MAX_ENV_VARS) throw new AppError('invalid_request', `At most ${MAX_ENV_VARS} variables.`);
    p.store.env.replace(id, vars);
    const keys = Object.keys(vars).sort();
    p.store.audit.record({ actor: auditActor(req), action: 'env.set', tenantId: id, detail: { keys, changed: Object.keys(changed), removed } });
    p.workers.restartTenant(id, 'its environment variables changed');
    res.json({ keys });
  });

  return r;
}
