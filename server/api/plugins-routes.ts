// /api/v1/plugins (the catalogue) and /api/v1/tenants/:id/plugins (a tenant's
// plugins: enable, configure, disable, and the plugins' own admin routes).
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { TenantService } from '../tenants/tenant-service.js';
import type { Store } from '../db/store.js';
import type { PluginCatalogue } from '../plugins/catalogue.js';
import type { PluginService } from '../plugins/plugin-service.js';
import { relayToAdmin, type AdminRelayDeps } from '../plugins/admin-relay.js';
import { actorName } from '../auth/principal.js';
import { requireScope } from './auth-middleware.js';
import { jsonBody } from './json-body.js';
import { AppError } from '../errors.js';

/** Mounted at /api/v1/plugins: any valid token may look. */
export function catalogueRouter(catalogue: PluginCatalogue): Router {
  const r = Router();
  r.get('/', async (_req, res) => {
    res.json({ plugins: await catalogue.list() });
  });
  return r;
}

export interface TenantPluginsRouterDeps extends AdminRelayDeps {
  readonly tenants: TenantService;
  readonly store: Store;
  readonly plugins: PluginService;
}

/** A config is at most 16 KiB; room for the wrapper. */
const CONFIG_JSON = { limit: '20kb', maxDepth: 16 } as const;

/**
 * Mounted at /api/v1/tenants/:id/plugins. `/plugins/<name>` (no trailing
 * slash) is the plugin's setting: GET shows it, PUT enables or configures,
 * DELETE disables. `/plugins/<name>/` and everything below it is the plugin's
 * own admin routes, for every method: strict routing keeps a plugin's
 * `DELETE .../<name>/` from disabling the plugin.
 */
export function tenantPluginsRouter(d: TenantPluginsRouterDeps): Router {
  const r = Router({ mergeParams: true, strict: true });
  const ids = (req: Request) => ({ id: String(req.params.id), name: String(req.params.name) });

  r.get('/', requireScope('read'), (req, res) => {
    const id = String(req.params.id);
    d.tenants.get(id);
    res.json({ plugins: d.plugins.list(id) });
  });

  r.get('/:name', requireScope('read'), (req, res) => {
    const { id, name } = ids(req);
    d.tenants.get(id);
    const view = d.plugins.list(id).find((p) => p.name === name);
    if (!view) throw new AppError('plugin_not_enabled', `The plugin "${name}" is not enabled for this tenant.`);
    res.json(view);
  });

  r.put('/:name', requireScope('plugins'), jsonBody(CONFIG_JSON), async (req, res) => {
    const { id, name } = ids(req);
    d.tenants.get(id);
    const body = req.body as { config?: unknown } | undefined;
    if (!body || typeof body !== 'object' || Array.isArray(body) || !('config' in body)) {
      throw new AppError('invalid_request', 'The body must be {"config": {...}}.');
    }
    res.json(await d.plugins.enable(id, name, body.config, actorName(req.principal)));
  });

  r.delete('/:name', requireScope('plugins'), async (req, res) => {
    const { id, name } = ids(req);
    d.tenants.get(id);
    await d.plugins.disable(id, name, actorName(req.principal));
    res.status(204).end();
  });

  // /:name/ and everything below it is the plugin's own admin routes, in the tenant's worker.
  // `/<name>` itself with a method the setting has no route for (POST, PATCH) is not the plugin's: 404.
  const insidePlugin = (req: Request, _res: Response, next: NextFunction) => (req.originalUrl.split('?')[0]!.startsWith(`${req.baseUrl}/`) ? next() : next('router'));
  r.use('/:name', insidePlugin, requireScope('plugins'), async (req: Request, res: Response) => {
    const { id, name } = ids(req);
    d.tenants.get(id);
    if (!d.store.plugins.get(id, name)?.enabled) throw new AppError('plugin_not_enabled', `The plugin "${name}" is not enabled for this tenant.`);
    const actor = actorName(req.principal);
    await relayToAdmin(d, id, name, req.url, req, res, actor);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      d.store.audit.record({ actor, action: 'plugin.admin', tenantId: id, detail: { plugin: name, method: req.method, path: req.url.split('?')[0]!.slice(0, 200), status: res.statusCode } });
    }
  });

  return r;
}
