// Response headers of a file, as flat [name, value, name, value, ...] arrays
// that res.writeHead() takes as they are. Built once per (route, encoding) on
// first use and kept: a request only picks an array.
import type { FileVariant, HeaderPair, PreparedHeaders, SiteFile } from '../index/site-index.js';

export { prepareHeaders, type HeaderPair, type PreparedHeaders } from '../index/site-index.js';
import { REVALIDATE } from '../index/cache-policy.js';
import { SECURITY_HEADERS } from './security-headers.js';

/** Defaults first, each replaced by a `_headers` value of the same name; other extras appended. */
function merge(defaults: readonly HeaderPair[], extras: readonly HeaderPair[]): string[] {
  const out: string[] = [];
  const overridden = new Map<string, string>();
  for (const [name, value] of extras) overridden.set(name.toLowerCase(), value);
  const used = new Set<string>();
  for (const [name, value] of defaults) {
    const key = name.toLowerCase();
    const o = overridden.get(key);
    out.push(name, o ?? value);
    if (o !== undefined) used.add(key);
  }
  for (const [name, value] of extras) if (!used.has(name.toLowerCase())) out.push(name, value);
  return out;
}

function varies(file: SiteFile): boolean {
  return file.compressible || file.br !== undefined || file.gzip !== undefined;
}

function entityHeaders(file: SiteFile, v: FileVariant): HeaderPair[] {
  const h: HeaderPair[] = [['Content-Type', file.contentType], ['Content-Length', String(v.size)]];
  if (v.encoding !== 'identity') h.push(['Content-Encoding', v.encoding]);
  return h;
}

function validators(file: SiteFile, v: FileVariant): HeaderPair[] {
  return [['ETag', v.etag], ['Last-Modified', file.lastModified]];
}

function tail(file: SiteFile, cacheControl: string): HeaderPair[] {
  const h: HeaderPair[] = [['Cache-Control', cacheControl], ['Accept-Ranges', 'bytes']];
  if (varies(file)) h.push(['Vary', 'Accept-Encoding']);
  return h;
}

export function okHeaders(p: PreparedHeaders, file: SiteFile, v: FileVariant): string[] {
  return (p.ok[v.encoding] ??= merge([...entityHeaders(file, v), ...validators(file, v), ...tail(file, file.cacheControl), ...SECURITY_HEADERS], p.extras));
}

export function notModifiedHeaders(p: PreparedHeaders, file: SiteFile, v: FileVariant): string[] {
  if (p.notModified[v.encoding]) return p.notModified[v.encoding]!;
  const cache = p.extras.find(([n]) => n.toLowerCase() === 'cache-control')?.[1] ?? file.cacheControl;
  const h: string[] = ['ETag', v.etag, 'Last-Modified', file.lastModified, 'Cache-Control', cache];
  if (varies(file)) h.push('Vary', 'Accept-Encoding');
  return (p.notModified[v.encoding] = h);
}

export function errorPageHeaders(p: PreparedHeaders, file: SiteFile, v: FileVariant): string[] {
  return (p.error[v.encoding] ??= merge([...entityHeaders(file, v), ...tail(file, REVALIDATE), ...SECURITY_HEADERS], p.extras));
}

/** 206: built per request (ranges are rare and vary). */
export function partialHeaders(p: PreparedHeaders, file: SiteFile, start: number, end: number): string[] {
  const v = file.identity;
  return merge(
    [
      ['Content-Type', file.contentType],
      ['Content-Length', String(end - start + 1)],
      ['Content-Range', `bytes ${start}-${end}/${file.size}`],
      ...validators(file, v),
      ...tail(file, file.cacheControl),
      ...SECURITY_HEADERS,
    ],
    p.extras,
  );
}

/** Headers of small answers the server writes itself (redirects, 416, 405, plain 404). */
export function plainHeaders(extra: readonly HeaderPair[] = []): string[] {
  const out: string[] = [];
  for (const [n, v] of [...extra, ...SECURITY_HEADERS]) out.push(n, v);
  return out;
}
