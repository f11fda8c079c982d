// Cache-Control of a file. HTML and plain names revalidate on every use (cheap:
// strong ETags answer 304), so a deploy shows at once. Names that carry a
// content hash (app.3f9a1c2b.js, index-BxY12abc.css) never change: a year, immutable.

export const REVALIDATE = 'public, max-age=0, must-revalidate';
export const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * Whether the name carries a content hash: a hex part of 8+ characters with a
 * digit (webpack: main.3f9a1c2b.js), or an 8-character base64url part after the
 * last dash with a digit or capital (Vite, Rollup: index-BxY12abc.js).
 */
export function hasContentHash(fileName: string): boolean {
  const base = fileName.slice(fileName.lastIndexOf('/') + 1);
  const lastDot = base.lastIndexOf('.');
  if (lastDot <= 0) return false;
  const stem = base.slice(0, lastDot);
  for (const part of stem.split('.')) {
    if (part.length >= 8 && part.length <= 64 && /^[0-9a-f]+$/i.test(part) && /\d/.test(part)) return true;
  }
  const dash = stem.lastIndexOf('-', stem.length - 9);
  const tail = dash >= 0 ? stem.slice(dash + 1) : '';
  return /^[A-Za-z0-9_-]{8}$/.test(tail) && /[0-9A-Z]/.test(tail) && !tail.startsWith('-');
}

export function cacheControlFor(urlPath: string, contentType: string): string {
  if (contentType.startsWith('text/html')) return REVALIDATE;
  return hasContentHash(urlPath) ? IMMUTABLE : REVALIDATE;
}
