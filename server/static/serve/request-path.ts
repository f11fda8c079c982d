// A request target's path: split from its query, decoded and normalised once,
// and the test for the dynamic-route prefix. Shared by the rules, the static
// files and the worker proxy so that all three read a path the same way.

const NEEDS_DECODING = /%|\\|\0|\/\/|\/\.|^[^/]/;

/** The path part of a request target, undecoded. */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q >= 0 ? url.slice(0, q) : url;
}

/** Decodes and normalises a request path; undefined for malformed or escaping paths. */
export function decodeRequestPath(rawPath: string): string | undefined {
  if (!NEEDS_DECODING.test(rawPath)) return rawPath;
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

/** A decoded path back into URL form (for Location and rewritten request URLs). */
export function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

/** Whether a path (without its query) is a dynamic route: /api or below it. */
export function isApiPath(path: string): boolean {
  return path === '/api' || path.startsWith('/api/');
}
