// The in-memory index of a release's public files, built once when the release
// is loaded. Requests are answered from it without touching the disk for metadata.
import fs from 'node:fs';
import path from 'node:path';
import mime from 'mime-types';
import { readSiteConfig, type SiteConfig } from './site-config.js';

export interface SiteFile {
  /** URL path, always starting with '/', e.g. '/css/site.css'. */
  readonly urlPath: string;
  readonly absPath: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly contentType: string;
}

export interface SiteIndex {
  readonly releaseDir: string;
  readonly publicDir: string;
  readonly files: ReadonlyMap<string, SiteFile>;
  /** URL paths of folders ('/', '/docs'), for index.html and trailing-slash redirects. */
  readonly dirs: ReadonlySet<string>;
  readonly config: SiteConfig;
  readonly hasApi: boolean;
}

/** What is never served from a release root without public/. */
const PRIVATE_TOP = new Set(['api', 'node_modules', 'tenant.json', '_redirects', '_headers']);

export function contentTypeFor(file: string): string {
  const type = mime.lookup(file) || 'application/octet-stream';
  const charset = mime.charset(type);
  return charset ? `${type}; charset=${charset.toLowerCase()}` : type;
}

/** Whether the release serves public/ or its root. */
export function publicDirOf(releaseDir: string): string {
  const pub = path.join(releaseDir, 'public');
  try {
    if (fs.statSync(pub).isDirectory()) return pub;
  } catch {
    /* no public/ */
  }
  return releaseDir;
}

export function buildSiteIndex(releaseDir: string): SiteIndex {
  const publicDir = publicDirOf(releaseDir);
  const atRoot = publicDir === releaseDir;
  const files = new Map<string, SiteFile>();
  const dirs = new Set<string>(['/']);
  const walk = (dir: string, urlDir: string) => {
    for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
      if (ent.name.startsWith('.')) continue;
      if (atRoot && urlDir === '/' && PRIVATE_TOP.has(ent.name)) continue;
      const abs = path.join(dir, ent.name);
      const url = urlDir + ent.name;
      // Symlinks inside a release were checked at deploy time; resolve them once here.
      const st = fs.statSync(abs, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) {
        dirs.add(url);
        walk(abs, url + '/');
      } else if (st.isFile()) {
        files.set(url, { urlPath: url, absPath: abs, size: st.size, mtimeMs: st.mtimeMs, contentType: contentTypeFor(ent.name) });
      }
    }
  };
  walk(publicDir, '/');
  const hasApi = fs.existsSync(path.join(releaseDir, 'api'));
  return { releaseDir, publicDir, files, dirs, config: readSiteConfig(releaseDir), hasApi };
}
