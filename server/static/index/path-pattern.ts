// Netlify-style path patterns, shared by _redirects and _headers:
//   /blog/*            splat: the rest of the path (also matches /blog itself)
//   /*/index.html      a `*` segment before others: any number of segments, none included
//   /news/:year/:month placeholders: one path segment each
//   https://a.example.com/*  a pattern bound to one host
// Repeated slashes count as one and a trailing slash is dropped ('//a//b/' is
// '/a/b'). Compiled once into a RegExp when a release is loaded; matching is one exec().

export interface PathPattern {
  readonly source: string;
  /** Lowercase host the pattern is bound to, or undefined for any host. */
  readonly host: string | undefined;
  readonly regex: RegExp;
  /** Capture group names in order: placeholder names, and 'splat' for '*'. */
  readonly names: readonly string[];
}

/** A `:name` placeholder starting at lastIndex. */
const PLACEHOLDER_AT = /:([A-Za-z_][A-Za-z0-9_]*)/y;

/** Drops one trailing slash (never from '/'): '/a/' and '/a' match the same rules. */
export function withoutTrailingSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export interface PatternOptions {
  /** `_headers` paths match whatever the case (Netlify compiles them with the `i` flag). */
  readonly caseInsensitive?: boolean;
}

/** Returns undefined when the pattern is not a path ('/...') or an http(s) URL. */
export function compilePathPattern(source: string, opts: PatternOptions = {}): PathPattern | undefined {
  let host: string | undefined;
  let p = source;
  const url = /^https?:\/\/([^/]+)(\/.*)?$/i.exec(source);
  if (url) {
    host = url[1]!.toLowerCase().replace(/:\d+$/, '');
    p = url[2] ?? '/';
  }
  if (!p.startsWith('/')) return undefined;
  p = withoutTrailingSlash(p.replace(/\/{2,}/g, '/'));
  const names: string[] = [];
  // Literal runs are escaped once each (a release may hold tens of thousands of patterns).
  let re = '';
  let lit = '';
  const flush = () => {
    if (lit) re += escapeRegex(lit);
    lit = '';
  };
  for (let i = 0; i < p.length; ) {
    if (p.startsWith('/*', i) && i + 2 === p.length) {
      // A trailing splat also matches the folder itself: /blog/* matches /blog.
      flush();
      names.push('splat');
      re += '(?:/(.*))?';
      break;
    }
    if (p.startsWith('/*/', i)) {
      // A whole `*` segment with more after it may also be empty: /*/a matches /a and /x/y/a.
      flush();
      names.push('splat');
      re += '(?:/(.*))?';
      i += 2;
      continue;
    }
    if (p[i] === '*') {
      flush();
      names.push('splat');
      re += '(.*)';
      i++;
      continue;
    }
    if (p[i] === ':' && (i === 0 || p[i - 1] === '/')) {
      PLACEHOLDER_AT.lastIndex = i;
      const ph = PLACEHOLDER_AT.exec(p);
      if (ph) {
        flush();
        names.push(ph[1]!);
        re += '([^/]+)';
        i += ph[0].length;
        continue;
      }
    }
    lit += p[i]!;
    i++;
  }
  flush();
  return { source, host, regex: new RegExp(`^${re}/?$`, opts.caseInsensitive ? 'i' : ''), names };
}

/** Captured values by name, or undefined when the path does not match. `path` is decoded. */
export function matchPathPattern(pattern: PathPattern, path: string, host: string): Record<string, string> | undefined {
  if (pattern.host !== undefined && pattern.host !== host) return undefined;
  const m = pattern.regex.exec(path);
  if (!m) return undefined;
  const params: Record<string, string> = Object.create(null);
  pattern.names.forEach((name, i) => {
    params[name] = m[i + 1] ?? '';
  });
  return params;
}
