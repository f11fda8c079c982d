// Serves a tenant's static files from its in-memory site index.
// Order (Netlify's): `Basic-Auth` of the request path (basic-auth.ts, the
// edge step before the rules) -> `_redirects` (applySiteRules, before the
// dynamic-route step) -> exact file -> folder index.html (trailing-slash
// redirect) -> clean URL (/about -> about.html) -> SPA fallback -> 404.html
// -> plain 404.
// A request costs map lookups and a prepared header array: no stat, no query,
// no rule compilation. Small files come from the shared memory cache.
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FileVariant, SiteFile, SiteIndex } from '../index/site-index.js';
import type { FileCache } from './file-cache.js';
import { evaluateRedirects } from '../index/redirect-rules.js';
import { authOfRules, headersForPath, headersOfRules, matchingHeaderRules } from '../index/header-rules.js';
import { authForSitePath, refuseWithoutCredentials } from './basic-auth.js';
import {
  errorPageHeaders,
  notModifiedHeaders,
  okHeaders,
  partialHeaders,
  plainHeaders,
  prepareHeaders,
  type PreparedHeaders,
} from './response-headers.js';
import { normalizeHost } from '../../model/domain-name.js';
import { decodeRequestPath, encodePath, isApiPath } from './request-path.js';
import { acceptedEncodings } from './accept-encoding.js';
import { parseByteRange } from './byte-range.js';

function splitUrl(url: string): { path: string | undefined; query: string } {
  const q = url.indexOf('?');
  return q < 0 ? { path: decodeRequestPath(url), query: '' } : { path: decodeRequestPath(url.slice(0, q)), query: url.slice(q + 1) };
}

function sendEmpty(res: ServerResponse, status: number, headers: string[]): void {
  res.writeHead(status, headers);
  res.end();
}

function sendText(res: ServerResponse, status: number, text: string, extra: readonly (readonly [string, string])[] = []): void {
  const body = text + '\n';
  res.writeHead(status, plainHeaders([['Content-Type', 'text/plain; charset=utf-8'], ['Content-Length', String(Buffer.byteLength(body))], ...extra]));
  res.end(body);
}

/** Location values must be plain ASCII: anything else is percent-encoded. */
function safeLocation(location: string): string {
  return /^[\x21-\x7e]*$/.test(location) ? location : location.replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c));
}

function sendRedirect(res: ServerResponse, status: number, location: string): void {
  sendEmpty(res, status, plainHeaders([['Location', safeLocation(location)], ['Content-Length', '0']]));
}

/**
 * Applies `_redirects` to a request, before the dynamic-route step and static
 * files. Answers redirects and status rewrites (404/410/451) itself and returns
 * true. A 200 rewrite changes req.url and returns false, so the next step
 * (the api/ proxy for '/api/...', or static files) serves the new path.
 * Paths that exist (files, folder indexes, clean URLs, api/ routes) shadow
 * unforced rules.
 */
export function applySiteRules(site: SiteIndex, req: IncomingMessage, res: ServerResponse, cache: FileCache): boolean {
  const rules = site.redirects;
  if (rules.rules.length === 0) return false;
  const { path, query } = splitUrl(req.url ?? '/');
  if (path === undefined) return false;
  const exists = site.routes.has(path) || (site.hasApi && isApiPath(path));
  if (exists && !rules.hasForced) return false;
  const out = evaluateRedirects(rules, { path, query, host: normalizeHost(req.headers.host), exists });
  if (!out) return false;
  // The request's own path was checked by the edge step; a rewrite must not reach a protected path from an open one.
  if (out.kind === 'rewrite' && site.headerRules.authRules.length !== 0 && refuseWithoutCredentials(authForSitePath(site, out.path), req, res)) return true;
  if (out.kind === 'redirect') {
    sendRedirect(res, out.status, out.location);
    return true;
  }
  if (out.status === 200) {
    req.url = encodePath(out.path) + (out.query ? `?${out.query}` : '');
    return false;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendEmpty(res, out.status, plainHeaders([['Content-Length', '0']]));
    return true;
  }
  const route = site.routes.get(out.path);
  const file = route?.kind === 'file' ? route.file : site.notFoundPage;
  if (!file) sendText(res, out.status, 'Not Found');
  else if (!refuseWithoutCredentials(file.auth, req, res)) sendFile(file, headersFor(site, path, file), out.status, req, res, cache);
  return true;
}

/** Serves GET and HEAD from the release; redirects and rewrites were applied before. */
export function serveStatic(site: SiteIndex, req: IncomingMessage, res: ServerResponse, cache: FileCache): void {
  const method = req.method;
  if (method !== 'GET' && method !== 'HEAD') {
    sendText(res, 405, 'Method Not Allowed', [['Allow', 'GET, HEAD']]);
    return;
  }
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = decodeRequestPath(q < 0 ? url : url.slice(0, q));
  if (path === undefined) {
    sendText(res, 400, 'Bad Request');
    return;
  }
  const route = site.routes.get(path);
  if (route !== undefined) {
    if (route.kind === 'file') {
      sendFile(route.file, (route.headers ??= prepareHeaders(headersForPath(site.headerRules, route.path), route.auth)), 200, req, res, cache);
    } else {
      sendRedirect(res, 301, encodePath(route.location) + (q < 0 ? '' : url.slice(q)));
    }
    return;
  }
  // A fallback page protected by its own path is not served without its credentials either.
  if (site.spaPage) {
    if (!refuseWithoutCredentials(site.spaPage.auth, req, res)) sendFile(site.spaPage, headersFor(site, path, site.spaPage), 200, req, res, cache);
    return;
  }
  if (site.notFoundPage) {
    if (!refuseWithoutCredentials(site.notFoundPage.auth, req, res)) sendFile(site.notFoundPage, headersFor(site, path, site.notFoundPage), 404, req, res, cache);
    return;
  }
  sendText(res, 404, 'Not Found');
}

/** Headers for a file served at a path that is not its own route (fallbacks, status rewrites). */
function headersFor(site: SiteIndex, path: string, file: SiteFile): PreparedHeaders {
  const matching = site.headerRules.rules.length === 0 ? [] : matchingHeaderRules(site.headerRules, path);
  const key = matching.join(',');
  let prepared = file.fallbackHeaders.get(key);
  if (!prepared) {
    prepared = prepareHeaders(headersOfRules(site.headerRules, matching), authOfRules(site.headerRules, matching) ?? file.auth);
    file.fallbackHeaders.set(key, prepared);
  }
  return prepared;
}

function pickVariant(file: SiteFile, acceptEncoding: string): FileVariant {
  for (const coding of acceptedEncodings(acceptEncoding)) {
    const v = coding === 'br' ? file.br : file.gzip;
    if (v !== undefined) return v;
  }
  return file.identity;
}

/** If-None-Match (weak comparison, as RFC 9110 asks): any tag of this file's content, or '*'. */
function etagMatches(header: string, file: SiteFile, v: FileVariant): boolean {
  if (header === v.etag) return true;
  if (header.trim() === '*') return true;
  let at = header.indexOf(file.hash);
  while (at > 0) {
    const after = header.charCodeAt(at + file.hash.length);
    if (header.charCodeAt(at - 1) === 34 /* " */ && (after === 34 || after === 45 /* - */)) return true;
    at = header.indexOf(file.hash, at + 1);
  }
  return false;
}

function notModifiedSince(header: string, file: SiteFile): boolean {
  if (header === file.lastModified) return true;
  const t = Date.parse(header);
  return Number.isFinite(t) && file.mtimeSec <= Math.floor(t / 1000);
}

function ifRangeAllows(header: string, file: SiteFile): boolean {
  const h = header.trim();
  if (h.startsWith('"') || h.startsWith('W/')) return h === file.identity.etag;
  return h === file.lastModified;
}

function sendFile(file: SiteFile, prepared: PreparedHeaders, status: number, req: IncomingMessage, res: ServerResponse, cache: FileCache): void {
  const h = req.headers;
  const range = h.range;
  let v = file.identity;
  // Ranges are served from the identity bytes: offsets into a compressed copy surprise clients.
  if ((file.br !== undefined || file.gzip !== undefined) && range === undefined) {
    const ae = h['accept-encoding'];
    if (ae !== undefined) v = pickVariant(file, ae);
  }
  if (status !== 200) {
    res.writeHead(status, errorPageHeaders(prepared, file, v));
    sendBody(req, res, v, cache);
    return;
  }
  const inm = h['if-none-match'];
  const ims = h['if-modified-since'];
  if (inm !== undefined ? etagMatches(inm, file, v) : ims !== undefined && notModifiedSince(ims, file)) {
    res.writeHead(304, notModifiedHeaders(prepared, file, v));
    res.end();
    return;
  }
  if (range !== undefined) {
    const ifRange = h['if-range'] as string | undefined;
    const r = ifRange === undefined || ifRangeAllows(ifRange, file) ? parseByteRange(range, file.size) : undefined;
    if (r === 'unsatisfiable') {
      sendEmpty(res, 416, plainHeaders([['Content-Range', `bytes */${file.size}`], ['Content-Length', '0']]));
      return;
    }
    if (r !== undefined) {
      res.writeHead(206, partialHeaders(prepared, file, r.start, r.end));
      sendBody(req, res, v, cache, r.start, r.end);
      return;
    }
  }
  res.writeHead(200, okHeaders(prepared, file, v));
  sendBody(req, res, v, cache);
}

function sendBody(req: IncomingMessage, res: ServerResponse, v: FileVariant, cache: FileCache, start = 0, end = v.size - 1): void {
  if (req.method === 'HEAD' || v.size === 0) {
    res.end();
    return;
  }
  const whole = start === 0 && end === v.size - 1;
  const body = v.body;
  if (body !== undefined) {
    v.referenced = true;
    res.end(whole ? body : body.subarray(start, end + 1));
    return;
  }
  if (cache.fits(v)) {
    cache.load(v, (err, loaded) => {
      if (err || !loaded) res.destroy();
      else res.end(whole ? loaded : loaded.subarray(start, end + 1));
    });
    return;
  }
  const stream = fs.createReadStream(v.absPath, { start, end, highWaterMark: 64 * 1024 });
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}
