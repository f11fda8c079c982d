// Loads a release's api/ modules inside the tenant's worker and turns their
// exports into handlers: `default` (or `module.exports = fn`) answers every
// method; GET/POST/PUT/PATCH/DELETE exports answer their own.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { buildRouteTable, isHiddenName, type RouteFile } from './route-table.js';

export const ROUTE_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type RouteMethod = (typeof ROUTE_METHODS)[number];

// Express handlers as tenant code writes them; typed loosely on purpose.
export type Handler = (req: unknown, res: unknown, next: unknown) => unknown;

export interface LoadedRoute extends RouteFile {
  readonly default: Handler | undefined;
  readonly methods: Readonly<Partial<Record<RouteMethod, Handler>>>;
}

/** A module that cannot be loaded; the message names the file and says why. */
export class RouteLoadError extends Error {
  override readonly name = 'RouteLoadError';
}

/** Relative paths ("api/x/y.js") of every file under <releaseDir>/api, skipping hidden names. */
export function listApiFiles(releaseDir: string): string[] {
  const root = path.join(releaseDir, 'api');
  if (!fs.existsSync(root)) return [];
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
      if (isHiddenName(ent.name)) continue;
      const abs = path.join(dir, ent.name);
      const st = fs.statSync(abs, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(abs, `${rel}/${ent.name}`);
      else if (st.isFile()) out.push(`${rel}/${ent.name}`);
    }
  };
  walk(root, 'api');
  return out;
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** ESM syntax met by the CommonJS loader ("Unexpected token 'export'", "Cannot use import statement outside a module"). */
const ESM_SYNTAX_IN_COMMONJS = /'export'|'import'|import statement outside a module/;

/**
 * Why a route module failed to load, said so its author can fix it: a syntax
 * error gets its place (Node puts "<file>:<line>" first in the stack, not in
 * the message; the file may be one the route requires), and ESM syntax in a
 * CommonJS file says what to change.
 */
function describeLoadFailure(err: unknown, absFile: string, releaseDir: string): string {
  let what = describe(err);
  if (!(err instanceof SyntaxError)) return what;
  const at = /^(\/.*):(\d+)$/m.exec(err.stack ?? '');
  if (at) {
    const [, file, line] = at;
    const inRelease = path.relative(releaseDir, file!);
    if (file === absFile) what = `line ${line}: ${what}`;
    else if (!inRelease.startsWith('..')) what = `${inRelease} line ${line}: ${what}`;
  }
  if (!absFile.endsWith('.mjs') && ESM_SYNTAX_IN_COMMONJS.test(err.message)) {
    what += ` (a .js file is CommonJS unless the release's package.json says "type": "module": write module.exports = ... and require(), or name the file .mjs)`;
  }
  return what;
}

/** Exports of a CommonJS module or an ESM namespace -> default and per-method handlers. */
export function handlersOf(exported: unknown, file: string): Pick<LoadedRoute, 'default' | 'methods'> {
  const methods: Partial<Record<RouteMethod, Handler>> = {};
  let fallback: Handler | undefined;
  const take = (obj: Record<string, unknown>) => {
    for (const m of ROUTE_METHODS) {
      if (obj[m] === undefined || methods[m]) continue;
      if (typeof obj[m] !== 'function') throw new RouteLoadError(`${file}: the export ${m} is not a function`);
      methods[m] = obj[m] as Handler;
    }
  };
  if (typeof exported === 'function') {
    fallback = exported as Handler;
  } else if (exported && typeof exported === 'object') {
    const obj = exported as Record<string, unknown>;
    const def = obj.default;
    if (typeof def === 'function') fallback = def as Handler;
    else if (def && typeof def === 'object') take(def as Record<string, unknown>);
    else if (def !== undefined) throw new RouteLoadError(`${file}: the default export is not a function`);
    take(obj);
  }
  if (!fallback && Object.keys(methods).length === 0) {
    throw new RouteLoadError(
      `${file}: exports no handler; export a function (module.exports = (req, res) => ...) or GET, POST, PUT, PATCH, DELETE`,
    );
  }
  return { default: fallback, methods };
}

async function loadModule(absFile: string, requireFrom: NodeJS.Require): Promise<unknown> {
  if (absFile.endsWith('.mjs')) return import(pathToFileURL(absFile).href);
  try {
    return requireFrom(absFile);
  } catch (err) {
    // A .js file in a package with "type": "module" is ESM.
    if ((err as NodeJS.ErrnoException).code === 'ERR_REQUIRE_ESM') return import(pathToFileURL(absFile).href);
    throw err;
  }
}

/** Loads every route module of the release; the first failure throws a RouteLoadError naming the file. */
export async function loadRoutes(releaseDir: string): Promise<LoadedRoute[]> {
  let table: RouteFile[];
  try {
    table = buildRouteTable(listApiFiles(releaseDir));
  } catch (err) {
    throw new RouteLoadError((err as Error).message);
  }
  const requireFrom = createRequire(path.join(releaseDir, 'api', 'index.js'));
  const loaded: LoadedRoute[] = [];
  for (const route of table) {
    const absFile = path.join(releaseDir, route.file);
    let exported: unknown;
    try {
      exported = await loadModule(absFile, requireFrom);
    } catch (err) {
      throw new RouteLoadError(`${route.file} failed to load: ${describeLoadFailure(err, absFile, releaseDir)}`);
    }
    loaded.push({ ...route, ...handlersOf(exported, route.file) });
  }
  return loaded;
}
