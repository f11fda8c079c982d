// The dashboard's session cookie. Over HTTPS it is `__Host-tenantry_session`:
// the prefix makes browsers refuse it unless it is Secure, host-only (no
// Domain) and Path=/, so a tenant page on a sibling name (acme.example.com
// next to example.com) can neither plant nor overwrite it, not even with
// document.cookie. Browsers allow `__Host-` only on secure origins, so on plain
// HTTP (localhost development) the name is `tenantry_session`, with the same
// attributes minus Secure. A sibling page may plant a second cookie of that
// name for the parent domain: a planted value that is no live session is
// ignored, and two live sessions in one request count as signed out.
import type { IncomingMessage } from 'node:http';

export const SECURE_COOKIE = '__Host-tenantry_session';
export const PLAIN_COOKIE = 'tenantry_session';

export function cookieName(secure: boolean): string {
  return secure ? SECURE_COOKIE : PLAIN_COOKIE;
}

/** Every value sent for `name` (browsers send one per matching cookie, so duplicates mean someone planted one). */
export function cookieValues(req: IncomingMessage, name: string): string[] {
  const header = req.headers.cookie;
  if (!header) return [];
  const out: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) out.push(part.slice(eq + 1).trim());
  }
  return out;
}

/** More values than this for the name and the request is not looked at (no one has a reason to send them). */
const MAX_VALUES = 4;

/** The well-formed session values of this request (normally one; more when a sibling host planted another). */
export function sessionValues(req: IncomingMessage, secure: boolean): string[] {
  const values = cookieValues(req, cookieName(secure));
  if (values.length > MAX_VALUES) return [];
  return values.filter((v) => /^[A-Za-z0-9_-]{20,100}$/.test(v));
}

/** Set-Cookie for a new session (a session cookie: gone when the browser closes; the server ends it earlier). */
export function sessionCookie(value: string, secure: boolean): string {
  return `${cookieName(secure)}=${value}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

export function clearedCookie(secure: boolean): string {
  return `${cookieName(secure)}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}
