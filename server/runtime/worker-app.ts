// The Express app inside a tenant's worker: the health endpoint the pool uses,
// parsed bodies, the enabled plugins' routers (/_<name>/ public, /_admin/<name>/
// admin), then the release's routes, 405 with Allow, JSON errors. Tenant code
// and plugins see ordinary Express 5 req/res.
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { ROUTE_METHODS, type LoadedRoute, type RouteMethod } from './route-loader.js';
import type { LoadedPlugin } from './plugin-loader.js';
import { adminPluginPrefix, publicPluginPrefix } from '../launch/plugin-names.js';

/** Only reachable over the worker's unix socket: the edge never forwards this path. */
export const HEALTH_PATH = '/__tenantry/health';
export const BODY_LIMIT = '1mb';

export type RouteState = { ok: true; routes: readonly LoadedRoute[]; plugins: readonly LoadedPlugin[] } | { ok: false; error: string };

interface HttpishError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
  message?: string;
}

function sendError(res: Response, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  res.status(status).set(headers).json({ error: { code, message } });
}

function allowedMethods(route: LoadedRoute): string[] {
  return ROUTE_METHODS.filter((m) => route.methods[m]).flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m]));
}

/** The handler for one route file: its method export, else its default, else 405. */
function dispatch(route: LoadedRoute) {
  const allow = allowedMethods(route).join(', ');
  return (req: Request, res: Response, next: NextFunction): unknown => {
    const method = (req.method === 'HEAD' ? 'GET' : req.method) as RouteMethod;
    const handler = route.methods[method] ?? route.default;
    if (!handler) {
      sendError(res, 405, 'method_not_allowed', `${req.method} is not allowed here; allowed: ${allow}.`, { Allow: allow });
      return undefined;
    }
    return handler(req, res, next);
  };
}

export function createWorkerApp(state: RouteState, log: (line: string) => void): Express {
  const app = express();
  app.disable('x-powered-by');
  // Only the edge connects to the socket; it replaces any client X-Forwarded-* with its own.
  app.set('trust proxy', true);

  app.get(HEALTH_PATH, (req, res, next) => {
    // Requests relayed by the edge carry X-Forwarded-For; the pool's probes do not.
    if (req.headers['x-forwarded-for'] !== undefined) return next();
    if (state.ok) res.json({ ok: true, routes: state.routes.map((r) => r.path), plugins: state.plugins.map((p) => p.name) });
    else res.status(500).json({ ok: false, error: state.error });
  });

  if (!state.ok) {
    app.use((_req: Request, res: Response) => sendError(res, 503, 'worker_unavailable', 'The dynamic routes of this site failed to load.'));
    return app;
  }

  app.use(express.json({ limit: BODY_LIMIT }));
  app.use(express.urlencoded({ extended: true, limit: BODY_LIMIT }));
  // Plugin prefixes start with "/_", tenant routes with "/api": they cannot shadow each other.
  for (const p of state.plugins) {
    if (p.publicRouter) app.use(publicPluginPrefix(p.name), p.publicRouter);
    if (p.adminRouter) app.use(adminPluginPrefix(p.name), p.adminRouter);
  }
  for (const route of state.routes) app.all(route.path, dispatch(route));

  app.use((req: Request, res: Response) => sendError(res, 404, 'not_found', `No route for ${req.method} ${req.path}.`));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = (err ?? {}) as HttpishError;
    const status = e.status ?? e.statusCode ?? 500;
    if (res.headersSent) {
      log(`error after the response started: ${req.method} ${req.path}: ${(err as Error)?.stack ?? String(err)}`);
      res.destroy();
      return;
    }
    if (status === 413 || e.type === 'entity.too.large') {
      sendError(res, 413, 'payload_too_large', `The request body is larger than ${BODY_LIMIT}.`);
    } else if (e.type === 'entity.parse.failed') {
      sendError(res, 400, 'invalid_json', 'The request body is not valid JSON.');
    } else if (status >= 400 && status < 500) {
      sendError(res, status, 'invalid_request', e.expose && e.message ? e.message : 'The request is not valid.');
    } else {
      // The stack goes to the tenant's own log, never into the answer.
      log(`error in ${req.method} ${req.path}: ${(err as Error)?.stack ?? String(err)}`);
      sendError(res, 500, 'internal_error', 'The route failed; see the site log.');
    }
  });
  return app;
}
