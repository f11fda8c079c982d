// Pure: the files under a release's api/ folder -> the URL paths they answer.
//   api/index.js -> /api            api/hello.js -> /api/hello
//   api/users/[id].js -> /api/users/:id   api/users/index.mjs -> /api/users
// Files and folders starting with "_" or "." are not routes (shared code lives
// there), nor is anything under node_modules/.

export const ROUTE_EXTENSIONS = ['.js', '.cjs', '.mjs'] as const;

export interface RouteFile {
  /** Path relative to the release root, with forward slashes: "api/users/[id].js". */
  readonly file: string;
  /** Express path: "/api/users/:id". */
  readonly path: string;
  /** Names of the dynamic segments, in order. */
  readonly params: readonly string[];
}

export class RouteTableError extends Error {
  override readonly name = 'RouteTableError';
}

const PARAM = /^\[([A-Za-z_][A-Za-z0-9_]*)\]$/;
const STATIC_SEGMENT = /^[A-Za-z0-9._~-]+$/;

function routeExtension(name: string): string | undefined {
  return ROUTE_EXTENSIONS.find((ext) => name.endsWith(ext) && name.length > ext.length);
}

/** Whether a file or folder name under api/ is skipped (helpers, dotfiles, vendored code). */
export function isHiddenName(name: string): boolean {
  return name.startsWith('_') || name.startsWith('.') || name === 'node_modules';
}

/** One relative file path ("api/users/[id].js") -> its route; undefined when it is not a route file. */
export function routeForFile(file: string): RouteFile | undefined {
  const parts = file.split('/');
  if (parts[0] !== 'api' || parts.length < 2) return undefined;
  if (parts.slice(1).some(isHiddenName)) return undefined;
  const last = parts[parts.length - 1]!;
  const ext = routeExtension(last);
  if (!ext) return undefined;
  const stem = last.slice(0, -ext.length);
  const segments = [...parts.slice(1, -1), ...(stem === 'index' ? [] : [stem])];
  const params: string[] = [];
  const out = segments.map((seg) => {
    const m = PARAM.exec(seg);
    if (m) {
      if (params.includes(m[1]!)) throw new RouteTableError(`${file}: the parameter [${m[1]}] appears twice in one route`);
      params.push(m[1]!);
      return ':' + m[1];
    }
    if (!STATIC_SEGMENT.test(seg)) {
      throw new RouteTableError(`${file}: "${seg}" is not a valid route segment (use letters, digits, "-", "_", "." or [name])`);
    }
    return seg;
  });
  return { file, path: '/' + ['api', ...out].join('/'), params };
}

/**
 * Orders routes so that the most specific wins in a first-match router:
 * segment by segment, a fixed name beats a parameter; then longer paths first.
 */
export function compareRoutes(a: RouteFile, b: RouteFile): number {
  const as = a.path.split('/');
  const bs = b.path.split('/');
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    const ap = as[i]!.startsWith(':');
    const bp = bs[i]!.startsWith(':');
    if (ap !== bp) return ap ? 1 : -1;
  }
  if (as.length !== bs.length) return bs.length - as.length;
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** Relative file paths -> ordered route table; two files answering the same path is an error. */
export function buildRouteTable(files: readonly string[]): RouteFile[] {
  const byShape = new Map<string, RouteFile>();
  const routes: RouteFile[] = [];
  for (const f of [...files].sort()) {
    const r = routeForFile(f);
    if (!r) continue;
    // "/api/users/:id" and "/api/users/:name" answer the same requests.
    const shape = r.path.replace(/:[^/]+/g, ':');
    const other = byShape.get(shape);
    if (other) throw new RouteTableError(`${other.file} and ${r.file} both answer ${r.path}; keep one of them`);
    byShape.set(shape, r);
    routes.push(r);
  }
  return routes.sort(compareRoutes);
}
