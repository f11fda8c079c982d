// `Basic-Auth` from `_headers`: HTTP Basic authentication on the paths it
// covers. Whether a path is covered is decided when the index is built (per
// route) or by walking only the rules that have `Basic-Auth`; a site without
// any pays one property read per request (the edge step checks
// `site.headerRules.authRules.length`).
import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authForPath, credentialDigest, type BasicAuth } from '../index/header-rules.js';
import type { SiteIndex } from '../index/site-index.js';
import { decodeRequestPath, pathOf } from './request-path.js';
import { plainHeaders } from './response-headers.js';

export const AUTH_CHALLENGE = 'Basic realm="Restricted", charset="UTF-8"';
const BODY = 'Unauthorized\n';

/** Whether the request's `Authorization: Basic ...` names one of the accounts (constant time per account). */
export function credentialsAccepted(auth: BasicAuth, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false;
  const m = /^\s*basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(header);
  if (!m) return false;
  const given = credentialDigest(Buffer.from(m[1]!, 'base64').toString('utf8'));
  let ok = false;
  // Every account is compared, so the time does not tell which one (or whether one) matched.
  for (const d of auth.digests) ok = crypto.timingSafeEqual(given, d) || ok;
  return ok;
}

/** 401 with the challenge; the body says nothing about the site. */
export function sendUnauthorized(res: ServerResponse): void {
  res.writeHead(
    401,
    plainHeaders([
      ['WWW-Authenticate', AUTH_CHALLENGE],
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['Content-Length', String(BODY.length)],
      ['Cache-Control', 'no-store'],
    ]),
  );
  res.end(BODY);
}

/** Answers 401 and returns true when `auth` asks for credentials the request does not carry. */
export function refuseWithoutCredentials(auth: BasicAuth | undefined, req: IncomingMessage, res: ServerResponse): boolean {
  if (auth === undefined || credentialsAccepted(auth, req.headers.authorization)) return false;
  sendUnauthorized(res);
  return true;
}

/** The `Basic-Auth` that covers a decoded path of the site: its route's (decided at build), else the rules'. */
export function authForSitePath(site: SiteIndex, path: string): BasicAuth | undefined {
  const route = site.routes.get(path);
  if (route?.kind === 'file') return route.auth;
  return authForPath(site.headerRules, path);
}

/**
 * The edge step's check, before any rule, dynamic route or file: a request
 * whose path is covered by `Basic-Auth` needs the credentials, whatever then
 * answers it (a redirect, a rewrite, an `api/` route, a file, a fallback).
 */
export function checkBasicAuth(site: SiteIndex, req: IncomingMessage, res: ServerResponse): boolean {
  const path = decodeRequestPath(pathOf(req.url ?? '/'));
  if (path === undefined) return false; // answered 400 further on
  return refuseWithoutCredentials(authForSitePath(site, path), req, res);
}
