// `_redirects` in Netlify's syntax, parsed once per release, evaluated as a
// pure function per request:
//   /home              /                301
//   /blog/*            /news/:splat
//   /news/:year/:month /blog/:month-:year
//   /store id=:id      /blog/:id        301
//   /app/*             /app/index.html  200!
//   /ecommerce         /store-closed    404
//   /admin/*           200              (no target: /admin/:splat)
// First match wins. A rule does not apply when the path exists (a file, a
// folder index, a clean URL, a dynamic route) unless it is forced with `!`.
import { compilePathPattern, matchPathPattern, type PathPattern } from './path-pattern.js';
import { buildRuleIndex, candidateRules, EMPTY_RULE_INDEX, type RuleIndex } from './rule-index.js';
import type { RuleWarning } from './rule-warning.js';

export type RedirectStatus = 301 | 302 | 303 | 307 | 308;
export type RewriteStatus = 200 | 404 | 410 | 451;

export interface RedirectRule {
  readonly line: number;
  readonly from: PathPattern;
  /** `key=value` (literal) or `key=:name` (captured) query conditions. */
  readonly query: readonly { key: string; value: string; capture: boolean }[];
  readonly to: string;
  readonly status: RedirectStatus | RewriteStatus;
  readonly force: boolean;
}

export interface RedirectRules {
  readonly rules: readonly RedirectRule[];
  readonly hasForced: boolean;
  readonly warnings: readonly RuleWarning[];
  /** The rules by static path prefix: a request checks only those that may match. */
  readonly index: RuleIndex;
}

export const NO_REDIRECTS: RedirectRules = Object.freeze({ rules: [], hasForced: false, warnings: [], index: EMPTY_RULE_INDEX });

const STATUSES = new Set([200, 301, 302, 303, 307, 308, 404, 410, 451]);
const STATUS_TOKEN = /^\d{3}!?$/;
/** Netlify's conditions (any case), by what each is called in a warning. */
const CONDITIONS: Record<string, string> = {
  country: 'country conditions (Country=)',
  language: 'language conditions (Language=)',
  role: 'role conditions (Role=)',
  cookie: 'cookie conditions (Cookie=)',
  sign: 'signed rules (Sign=)',
  signed: 'signed rules (Sign=)',
};

export function parseRedirects(text: string): RedirectRules {
  const rules: RedirectRule[] = [];
  const warnings: RuleWarning[] = [];
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.replace(/(^|\s)#.*$/, '').trim();
    if (!line) continue;
    const rule = parseLine(line, n + 1);
    if (typeof rule === 'string') warnings.push({ file: '_redirects', line: n + 1, message: `${rule}; rule ignored` });
    else rules.push(rule);
  }
  const index = buildRuleIndex(rules.map((r) => r.from), false);
  return { rules, hasForced: rules.some((r) => r.force), warnings, index };
}

function isTarget(token: string): boolean {
  return token.startsWith('/') || /^https?:\/\//i.test(token);
}

function parseLine(line: string, lineNo: number): RedirectRule | string {
  const tokens = line.split(/\s+/);
  if (/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:$/.test(tokens[0]!) && !isTarget(tokens[0]!)) {
    return `"${tokens[0]}" looks like a header: headers go in _headers`;
  }
  const from = compilePathPattern(tokens[0]!);
  if (!from) return `"${tokens[0]}" is not a path`;
  let i = 1;
  const query: RedirectRule['query'][number][] = [];
  let to: string | undefined;
  if (tokens[1] !== undefined && STATUS_TOKEN.test(tokens[1])) {
    // A forward rule: `/admin/* 200` means `/admin/* /admin/:splat 200` (netlify/build redirect-parser normalize.js).
    if (!(tokens[0]!.endsWith('/*') && tokens[1].startsWith('2'))) return 'no target path or URL (only "/path/* 200" may leave it out)';
    to = tokens[0]!.replace(/\/\*$/, '/:splat');
  } else {
    while (i < tokens.length && !isTarget(tokens[i]!) && tokens[i]!.includes('=')) {
      const [key, ...rest] = tokens[i]!.split('=');
      const value = rest.join('=');
      query.push({ key: key!, value: value.startsWith(':') ? value.slice(1) : value, capture: value.startsWith(':') });
      i++;
    }
    to = tokens[i++];
    if (!to || !isTarget(to)) return 'no target path or URL';
  }
  if (/[\x00-\x20\x7f]/.test(to)) return 'the target has control characters';
  let status: number = 301;
  let force = false;
  const statusToken = tokens[i];
  if (statusToken !== undefined && STATUS_TOKEN.test(statusToken)) {
    status = Number(statusToken.slice(0, 3));
    force = statusToken.endsWith('!');
    i++;
  }
  if (!STATUSES.has(status)) return `status ${status} is not supported`;
  const rest = tokens.slice(i);
  const unsupported = new Set<string>();
  const unexpected: string[] = [];
  for (const t of rest) {
    const eq = t.indexOf('=');
    const what = eq > 0 ? CONDITIONS[t.slice(0, eq).toLowerCase()] : undefined;
    if (what) unsupported.add(what);
    else unexpected.push(t);
  }
  if ((status < 300 || status >= 400) && !to.startsWith('/')) unsupported.add(`proxying to another site (${to} with status ${status})`);
  if (unsupported.size) return `${[...unsupported].join(' and ')} ${unsupported.size > 1 ? 'are' : 'is'} not supported`;
  if (unexpected.length) return `unexpected "${unexpected.join(' ')}"`;
  return { line: lineNo, from, query, to, status: status as RedirectRule['status'], force };
}

export interface RedirectRequest {
  /** Decoded request path. */
  readonly path: string;
  /** Raw query string, without the '?' ('' when none). */
  readonly query: string;
  /** Lowercase request host without port. */
  readonly host: string;
  /** Whether something already answers this path (shadows unforced rules). */
  readonly exists: boolean;
}

export type RedirectOutcome =
  | { readonly kind: 'redirect'; readonly status: RedirectStatus; readonly location: string; readonly rule: RedirectRule }
  /** `path` is decoded; `query` is raw ('' or 'a=b'). */
  | { readonly kind: 'rewrite'; readonly status: RewriteStatus; readonly path: string; readonly query: string; readonly rule: RedirectRule };

/** Pure: the first rule that applies to the request, as a redirect or an internal rewrite. */
export function evaluateRedirects(rules: RedirectRules, req: RedirectRequest): RedirectOutcome | undefined {
  let params: URLSearchParams | undefined;
  // Only the rules whose static prefix the path walks through, still in file order: first match wins.
  for (const i of candidateRules(rules.index, req.path)) {
    const rule = rules.rules[i]!;
    if (req.exists && !rule.force) continue;
    const captured = matchPathPattern(rule.from, req.path, req.host);
    if (!captured) continue;
    if (rule.query.length) {
      params ??= new URLSearchParams(req.query);
      let ok = true;
      for (const q of rule.query) {
        const v = params.get(q.key);
        if (v === null || (!q.capture && v !== q.value)) {
          ok = false;
          break;
        }
        if (q.capture) captured[q.value] = v;
      }
      if (!ok) continue;
    }
    return outcome(rule, captured, req.query);
  }
  return undefined;
}

function outcome(rule: RedirectRule, captured: Record<string, string>, query: string): RedirectOutcome {
  const isRedirect = rule.status >= 300 && rule.status < 400;
  // The original query string travels along unless the rule matched on it or sets its own.
  const keepQuery = rule.query.length === 0 && !rule.to.includes('?') ? query : '';
  if (isRedirect) {
    const full = substitute(rule.to, captured, true);
    // A fragment (`/blog/my-post#ads`) stays last: the query goes before it.
    const hash = full.indexOf('#');
    const target = hash >= 0 ? full.slice(0, hash) : full;
    const fragment = hash >= 0 ? full.slice(hash) : '';
    const location = (keepQuery ? `${target}${target.includes('?') ? '&' : '?'}${keepQuery}` : target) + fragment;
    return { kind: 'redirect', status: rule.status as RedirectStatus, location, rule };
  }
  // A fragment means nothing to a rewrite (the browser never sends one).
  const target = substitute(rule.to, captured, false).replace(/#.*$/, '');
  const q = target.indexOf('?');
  const path = q >= 0 ? target.slice(0, q) : target;
  const ownQuery = q >= 0 ? target.slice(q + 1) : '';
  return { kind: 'rewrite', status: rule.status as RewriteStatus, path, query: ownQuery || keepQuery, rule };
}

/** Replaces :splat and :name in a target; values are URL-encoded for a Location header. */
function substitute(target: string, captured: Record<string, string>, encode: boolean): string {
  return target.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (whole, name: string) => {
    const v = captured[name];
    if (v === undefined) return whole;
    return encode ? v.split('/').map(encodeURIComponent).join('/') : v;
  });
}
