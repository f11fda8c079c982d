// Serves a tenant's static files from its in-memory site index.
// Resolution: exact file -> folder index.html (with trailing-slash redirect)
// -> clean URL (/about -> about.html) -> SPA fallback -> 404.html -> plain 404.
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SiteFile, SiteIndex } from '../site/site-index.js';

export type Resolution =
  | { kind: 'file'; file: SiteFile; status: 200 | 404 }
  | { kind: 'redirect'; location: string; status: 301 }
  | { kind: 'not-found' };

/** Pure: which file (or redirect) answers this decoded path. */
export function resolveStaticPath(site: SiteIndex, urlPath: string, search: string): Resolution {
  const exact = site.files.get(urlPath);
  if (exact) return { kind: 'file', file: exact, status: 200 };
  if (urlPath.endsWith('/')) {
    const index = site.files.get(urlPath + 'index.html');
    if (index) return { kind: 'file', file: index, status: 200 };
  } else if (site.dirs.has(urlPath) && site.files.has(urlPath + '/index.html')) {
    return { kind: 'redirect', location: urlPath + '/' + search, status: 301 };
  } else if (site.config.cleanUrls) {
    const clean = site.files.get(urlPath + '.html');
    if (clean) return { kind: 'file', file: clean, status: 200 };
  }
  if (site.config.spa) {
    const index = site.files.get('/index.html');
    if (index) return { kind: 'file', file: index, status: 200 };
  }
  const notFound = site.files.get('/404.html');
  if (notFound) return { kind: 'file', file: notFound, status: 404 };
  return { kind: 'not-found' };
}

/** Decodes and normalises a request path; undefined for malformed or escaping paths. */
export function decodeRequestPath(rawPath: string): string | undefined {
  let p: string;
  try {
    p = decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
  if (!p.startsWith('/') || p.includes('\0') || p.includes('\\')) return undefined;
  const segments = p.split('/');
  if (segments.some((s) => s === '..' || s === '.')) return undefined;
  return p.replace(/\/{2,}/g, '/');
}

export function serveStatic(site: SiteIndex, req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('Method Not Allowed\n');
    return;
  }
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const urlPath = decodeRequestPath(q >= 0 ? url.slice(0, q) : url);
  if (!urlPath) {
    res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('Bad Request\n');
    return;
  }
  const found = resolveStaticPath(site, urlPath, q >= 0 ? url.slice(q) : '');
  switch (found.kind) {
    case 'redirect':
      res.writeHead(found.status, { Location: found.location });
      res.end();
      return;
    case 'not-found':
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('Not Found\n');
      return;
    case 'file':
      res.writeHead(found.status, { 'Content-Type': found.file.contentType, 'Content-Length': found.file.size });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      fs.createReadStream(found.file.absPath)
        .on('error', () => res.destroy())
        .pipe(res);
  }
}
