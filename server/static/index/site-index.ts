// The in-memory index of a release, built once when the release is loaded:
// its files (sizes, hashes, types, cache policy, precompressed copies), the
// routes that reach them (exact paths, folder indexes, clean URLs), its parsed
// `_redirects`, `_headers` and tenant.json. Requests are answered from it without
// touching the disk for metadata.
import fs from 'node:fs';
import path from 'node:path';
import { readSiteConfig, type SiteConfig } from './site-config.js';
import { contentTypeFor, isCompressible } from './content-type.js';
import { cacheControlFor } from './cache-policy.js';
import { NO_REDIRECTS, parseRedirects, type RedirectRules } from './redirect-rules.js';
import { authForPath, NO_HEADER_RULES, parseHeaders, type BasicAuth, type HeaderPair, type HeaderRules } from './header-rules.js';
import type { RuleFile, RuleWarning } from './rule-warning.js';
import { readManifest, scanRelease, type ManifestEntry, type ReleaseManifest } from './release-manifest.js';

export { contentTypeFor } from './content-type.js';
export type { HeaderPair } from './header-rules.js';

export type Encoding = 'identity' | 'br' | 'gzip';

/**
 * A route's response headers, filled in by the hot path (static/serve/response-headers.ts)
 * on first use and kept on the index, so a request only picks an array.
 */
export interface PreparedHeaders {
  /** Headers from `_headers` for this path (with `Cache-Control: private` when it is protected). */
  readonly extras: readonly HeaderPair[];
  /** 200, by encoding. */
  readonly ok: Partial<Record<Encoding, string[]>>;
  /** 304, by encoding. */
  readonly notModified: Partial<Record<Encoding, string[]>>;
  /** 404/410/451 answered with this file (no validators), by encoding. */
  readonly error: Partial<Record<Encoding, string[]>>;
}

/** Answers behind Basic-Auth are not for shared caches, unless `_headers` says otherwise. */
export const PROTECTED_CACHE_CONTROL = 'private, max-age=0, must-revalidate';

export function prepareHeaders(extras: readonly HeaderPair[], auth?: BasicAuth): PreparedHeaders {
  if (auth && !extras.some(([n]) => n.toLowerCase() === 'cache-control')) extras = [...extras, ['Cache-Control', PROTECTED_CACHE_CONTROL]];
  return { extras, ok: {}, notModified: {}, error: {} };
}


/** One stored representation of a file. */
export interface FileVariant {
  readonly encoding: Encoding;
  readonly absPath: string;
  readonly size: number;
  /** Quoted strong ETag, distinct per encoding. */
  readonly etag: string;
  /** The bytes, while the memory cache holds them (owned by FileCache). */
  body: Buffer | undefined;
  /** Used since the cache last looked (its second-chance bit). */
  referenced: boolean;
  /** Callbacks waiting for a read in flight. */
  waiters: ((err: Error | null, body?: Buffer) => void)[] | undefined;
}

export interface SiteFile {
  /** URL path, always starting with '/', e.g. '/css/site.css'. */
  readonly urlPath: string;
  readonly absPath: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly contentType: string;
  /** base64url content hash: the strong ETag. */
  readonly hash: string;
  /** HTTP date of mtime, and mtime in whole seconds (If-Modified-Since compares those). */
  readonly lastModified: string;
  readonly mtimeSec: number;
  readonly cacheControl: string;
  readonly compressible: boolean;
  readonly identity: FileVariant;
  /** Precompressed copies; filled in when deploy-time compression finishes. */
  br: FileVariant | undefined;
  gzip: FileVariant | undefined;
  /**
   * Response headers of this file served at paths that are not its own route
   * (SPA fallback, 404 page, status rewrites), by the set of `_headers` rules
   * that match ('' = none). Built on first use.
   */
  readonly fallbackHeaders: Map<string, PreparedHeaders>;
  /** `Basic-Auth` of the file's own path: it is never served without those credentials, whatever the URL. */
  readonly auth: BasicAuth | undefined;
}

export type Route =
  | {
      readonly kind: 'file';
      readonly path: string;
      readonly file: SiteFile;
      headers: PreparedHeaders | undefined;
      /** `Basic-Auth` of this path, else of the file's own path; decided when the index is built. */
      readonly auth: BasicAuth | undefined;
    }
  /** Folder without its slash (-> '/docs/'), or a clean URL with one (-> '/about'). */
  | { readonly kind: 'slash'; readonly location: string };

export interface SiteIndex {
  readonly releaseDir: string;
  readonly publicDir: string;
  readonly files: ReadonlyMap<string, SiteFile>;
  /** URL paths of folders ('/', '/docs'). */
  readonly dirs: ReadonlySet<string>;
  /** Every path that answers without rules: files, folder indexes, clean URLs, slash redirects. */
  readonly routes: ReadonlyMap<string, Route>;
  readonly config: SiteConfig;
  readonly hasApi: boolean;
  readonly redirects: RedirectRules;
  readonly headerRules: HeaderRules;
  /** 404.html, served with status 404 for unknown paths. */
  readonly notFoundPage: SiteFile | undefined;
  /** index.html when tenant.json says "spa": true. */
  readonly spaPage: SiteFile | undefined;
  /** Problems found in _redirects and _headers (those lines are ignored). */
  readonly warnings: readonly RuleWarning[];
  /** Rules in force: `_redirects` rules and `_headers` blocks. */
  readonly ruleCounts: { readonly redirects: number; readonly headers: number };
  /** The manifest this index was built from (kept current by the compressor). */
  manifest: ReleaseManifest;
}

/** Whether the release serves public/ or its root. */
export function publicDirOf(releaseDir: string): string {
  const pub = path.join(releaseDir, 'public');
  return fs.statSync(pub, { throwIfNoEntry: false })?.isDirectory() ? pub : releaseDir;
}

/** The text of a rules file; undefined when there is none; a warning when it is there but cannot be read (a folder, no permission). */
function readRulesAt(file: string, name: RuleFile, warnings: RuleWarning[]): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    const why = code === 'EISDIR' ? 'is a folder, not a file' : `cannot be read (${code ?? (err as Error).message})`;
    warnings.push({ file: name, line: 0, message: `${why}; none of its rules apply` });
    return undefined;
  }
}

/** `_redirects`/`_headers` at the release root, else in public/. */
function readRulesFile(releaseDir: string, publicRoot: string, name: RuleFile, warnings: RuleWarning[]): string | undefined {
  return readRulesAt(path.join(releaseDir, name), name, warnings) ?? (publicRoot ? readRulesAt(path.join(releaseDir, publicRoot, name), name, warnings) : undefined);
}

export function makeVariant(encoding: Encoding, absPath: string, size: number, hash: string): FileVariant {
  const etag = encoding === 'identity' ? `"${hash}"` : `"${hash}-${encoding === 'br' ? 'br' : 'gz'}"`;
  return { encoding, absPath, size, etag, body: undefined, referenced: false, waiters: undefined };
}

function toSiteFile(releaseDir: string, publicDir: string, e: ManifestEntry, headerRules: HeaderRules): SiteFile {
  const absPath = e.hidden ? path.join(releaseDir, e.path) : path.join(publicDir, e.path);
  const contentType = contentTypeFor(e.path);
  return {
    urlPath: e.path,
    absPath,
    size: e.size,
    mtimeMs: e.mtimeMs,
    contentType,
    hash: e.hash,
    lastModified: new Date(e.mtimeMs).toUTCString(),
    mtimeSec: Math.floor(e.mtimeMs / 1000),
    cacheControl: cacheControlFor(e.path, contentType),
    compressible: isCompressible(contentType),
    identity: makeVariant('identity', absPath, e.size, e.hash),
    br: e.br ? makeVariant('br', path.join(releaseDir, e.br.file), e.br.size, e.hash) : undefined,
    gzip: e.gzip ? makeVariant('gzip', path.join(releaseDir, e.gzip.file), e.gzip.size, e.hash) : undefined,
    fallbackHeaders: new Map(),
    auth: headerRules.authRules.length === 0 ? undefined : authForPath(headerRules, e.path),
  };
}

function buildRoutes(
  files: ReadonlyMap<string, SiteFile>,
  visible: readonly SiteFile[],
  dirs: ReadonlySet<string>,
  cleanUrls: boolean,
  headerRules: HeaderRules,
): Map<string, Route> {
  const routes = new Map<string, Route>();
  const hasAuth = headerRules.authRules.length > 0;
  const fileRoute = (p: string, file: SiteFile): Route => ({
    kind: 'file',
    path: p,
    file,
    headers: undefined,
    auth: hasAuth ? (authForPath(headerRules, p) ?? file.auth) : undefined,
  });
  for (const f of visible) routes.set(f.urlPath, fileRoute(f.urlPath, f));
  for (const dir of dirs) {
    const index = files.get(dir === '/' ? '/index.html' : `${dir}/index.html`);
    if (!index) continue;
    if (dir === '/') continue; // '/' itself is added below
    if (!routes.has(dir + '/')) routes.set(dir + '/', fileRoute(dir + '/', index));
    if (!routes.has(dir)) routes.set(dir, { kind: 'slash', location: dir + '/' });
  }
  const rootIndex = files.get('/index.html');
  if (rootIndex) routes.set('/', fileRoute('/', rootIndex));
  if (cleanUrls) {
    for (const f of visible) {
      if (!f.urlPath.endsWith('.html') || f.urlPath.endsWith('/index.html')) continue;
      const clean = f.urlPath.slice(0, -'.html'.length);
      if (!routes.has(clean)) routes.set(clean, fileRoute(clean, f));
      if (!routes.has(clean + '/')) routes.set(clean + '/', { kind: 'slash', location: clean });
    }
  }
  return routes;
}

/** Builds the index from a manifest (no file is read apart from the rule files and tenant.json). */
export function assembleSiteIndex(releaseDir: string, manifest: ReleaseManifest): SiteIndex {
  const publicDir = manifest.publicRoot ? path.join(releaseDir, manifest.publicRoot) : releaseDir;
  const config = readSiteConfig(releaseDir);
  const warnings: RuleWarning[] = [];
  const redirectsText = readRulesFile(releaseDir, manifest.publicRoot, '_redirects', warnings);
  const headersText = readRulesFile(releaseDir, manifest.publicRoot, '_headers', warnings);
  const redirects = redirectsText === undefined ? NO_REDIRECTS : parseRedirects(redirectsText);
  const headerRules = headersText === undefined ? NO_HEADER_RULES : parseHeaders(headersText);
  const files = new Map<string, SiteFile>();
  const visible: SiteFile[] = [];
  const dirs = new Set<string>(['/']);
  let hiddenNotFound: SiteFile | undefined;
  for (const e of manifest.files) {
    const f = toSiteFile(releaseDir, publicDir, e, headerRules);
    if (e.hidden) {
      if (e.path === '/404.html') hiddenNotFound = f;
      continue;
    }
    files.set(f.urlPath, f);
    visible.push(f);
    for (let i = f.urlPath.lastIndexOf('/'); i > 0; i = f.urlPath.lastIndexOf('/', i - 1)) dirs.add(f.urlPath.slice(0, i));
  }
  // Precompressed siblings shipped in the release (app.js.br, app.js.gz) serve as its encodings.
  for (const f of visible) {
    const br = files.get(f.urlPath + '.br');
    if (br && !f.br) f.br = makeVariant('br', br.absPath, br.size, f.hash);
    const gz = files.get(f.urlPath + '.gz');
    if (gz && !f.gzip) f.gzip = makeVariant('gzip', gz.absPath, gz.size, f.hash);
  }
  return {
    releaseDir,
    publicDir,
    files,
    dirs,
    routes: buildRoutes(files, visible, dirs, config.cleanUrls, headerRules),
    config,
    hasApi: manifest.hasApi,
    redirects,
    headerRules,
    notFoundPage: files.get('/404.html') ?? hiddenNotFound,
    spaPage: config.spa ? files.get('/index.html') : undefined,
    warnings: [...warnings, ...redirects.warnings, ...headerRules.warnings],
    ruleCounts: { redirects: redirects.rules.length, headers: headerRules.rules.length },
    manifest,
  };
}

/** Loads a release: from its manifest when there is one, else by scanning and hashing its files. */
export function loadSiteIndex(releaseDir: string): { site: SiteIndex; fromManifest: boolean } {
  const stored = readManifest(releaseDir);
  const manifest = stored ?? scanRelease(releaseDir);
  return { site: assembleSiteIndex(releaseDir, manifest), fromManifest: stored !== undefined };
}

/** Scans a release without using a stored manifest (kept for callers that want a fresh look). */
export function buildSiteIndex(releaseDir: string): SiteIndex {
  return assembleSiteIndex(releaseDir, scanRelease(releaseDir));
}
