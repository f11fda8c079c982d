// `_headers` in Netlify's syntax, parsed once per release:
//   /templates/index.html
//     X-Frame-Options: DENY
//   /assets/*
//     Cache-Control: public, max-age=31536000, immutable
// Every matching block applies; a name set by several blocks gets their values
// joined with ", ". What a block sets replaces the platform's default of that name.
import { compilePathPattern, matchPathPattern, type PathPattern } from './path-pattern.js';

export interface HeaderRule {
  readonly line: number;
  readonly path: PathPattern;
  readonly headers: readonly (readonly [name: string, value: string])[];
}

export interface HeaderRules {
  readonly rules: readonly HeaderRule[];
  readonly warnings: readonly string[];
}

export const NO_HEADER_RULES: HeaderRules = Object.freeze({ rules: [], warnings: [] });

/** Framing headers belong to the server: a site may not set them. */
const RESERVED = new Set(['content-length', 'content-encoding', 'content-range', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'trailer']);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export function parseHeaders(text: string): HeaderRules {
  const rules: { line: number; path: PathPattern; headers: [string, string][] }[] = [];
  const warnings: string[] = [];
  let current: (typeof rules)[number] | undefined;
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!;
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const indented = /^\s/.test(raw);
    if (!indented && (line.startsWith('/') || /^https?:\/\//i.test(line))) {
      const path = compilePathPattern(line.split(/\s+/)[0]!);
      if (!path) {
        warnings.push(`_headers line ${n + 1}: "${line}" is not a path`);
        current = undefined;
        continue;
      }
      // A host in the pattern is ignored: every domain of a tenant serves the same site.
      current = { line: n + 1, path: { ...path, host: undefined }, headers: [] };
      rules.push(current);
      continue;
    }
    const colon = line.indexOf(':');
    if (!current || colon <= 0) {
      warnings.push(`_headers line ${n + 1}: expected a path or "Name: value"; line ignored`);
      continue;
    }
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (!TOKEN.test(name) || !VALUE.test(value)) {
      warnings.push(`_headers line ${n + 1}: "${name}" is not a valid header; line ignored`);
      continue;
    }
    if (RESERVED.has(name.toLowerCase())) {
      warnings.push(`_headers line ${n + 1}: ${name} is set by the server; line ignored`);
      continue;
    }
    current.headers.push([name, value]);
  }
  return { rules: rules.filter((r) => r.headers.length > 0), warnings };
}

/** Indexes of the rules whose path matches (for memoising what they add). */
export function matchingHeaderRules(rules: HeaderRules, path: string): number[] {
  const out: number[] = [];
  rules.rules.forEach((rule, i) => {
    if (matchPathPattern(rule.path, path, '')) out.push(i);
  });
  return out;
}

/**
 * Pure: the headers the rules give this request path, names as first written,
 * values of repeated names joined with ", ". Empty when nothing matches.
 */
export function headersForPath(rules: HeaderRules, path: string): (readonly [string, string])[] {
  if (rules.rules.length === 0) return [];
  return headersOfRules(rules, matchingHeaderRules(rules, path));
}

export function headersOfRules(rules: HeaderRules, indexes: readonly number[]): (readonly [string, string])[] {
  const byName = new Map<string, [string, string]>();
  for (const i of indexes) {
    const rule = rules.rules[i]!;
    for (const [name, value] of rule.headers) {
      const key = name.toLowerCase();
      const seen = byName.get(key);
      if (seen) seen[1] = `${seen[1]}, ${value}`;
      else byName.set(key, [name, value]);
    }
  }
  return [...byName.values()];
}
