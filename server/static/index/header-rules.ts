// `_headers` in Netlify's syntax, parsed once per release:
//   /templates/index.html
//     X-Frame-Options: DENY
//   /assets/*
//     Cache-Control: public, max-age=31536000, immutable
//   /protected/*
//     Basic-Auth: alice:first-password bob:second-password
// Any line that starts with `/` (indented or not) is a path, the whole line;
// the lines after it are `Name: value` until the next path. Paths match
// whatever the case. A name repeated in one block gets its values joined with
// ", "; when several blocks match a path, a later block's value of a name
// replaces an earlier one's (netlify/build headers-parser merge.ts). What a
// block sets replaces the platform's default of that name.
//
// `Basic-Auth` is not a header: it asks for HTTP Basic authentication on the
// matching paths (the credentials are kept as SHA-256 digests and never sent).
import crypto from 'node:crypto';
import { compilePathPattern, matchPathPattern, type PathPattern } from './path-pattern.js';
import { buildRuleIndex, candidateRules, EMPTY_RULE_INDEX, type RuleIndex } from './rule-index.js';
import type { RuleWarning } from './rule-warning.js';

export type HeaderPair = readonly [name: string, value: string];

/** The accounts a `Basic-Auth` line admits; none: nobody gets in. */
export interface BasicAuth {
  /** Line of the `Basic-Auth` entry in `_headers`. */
  readonly line: number;
  /** SHA-256 of each "user:password", compared in constant time. */
  readonly digests: readonly Buffer[];
}

export interface HeaderRule {
  readonly line: number;
  readonly path: PathPattern;
  readonly headers: readonly HeaderPair[];
  readonly auth: BasicAuth | undefined;
}

export interface HeaderRules {
  readonly rules: readonly HeaderRule[];
  /** Indexes into `rules` of the blocks with `Basic-Auth`, in file order; empty for most sites. */
  readonly authRules: readonly number[];
  readonly warnings: readonly RuleWarning[];
  /** The blocks by static path prefix (lower-cased: paths match whatever the case). */
  readonly index: RuleIndex;
}

export const NO_HEADER_RULES: HeaderRules = Object.freeze({ rules: [], authRules: [], warnings: [], index: EMPTY_RULE_INDEX });

/** Framing headers belong to the server: a site may not set them. */
const RESERVED = new Set(['content-length', 'content-encoding', 'content-range', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'trailer']);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The digest a "user:password" is kept and compared as. */
export function credentialDigest(userColonPassword: string): Buffer {
  return crypto.createHash('sha256').update(userColonPassword, 'utf8').digest();
}

/** Netlify's reading of a path line: each segment trimmed at its end, empty segments dropped ('/ a /b/' is '/ a/b'). */
function normalizePathLine(line: string): string {
  if (/^https?:\/\//i.test(line)) return line;
  return '/' + line.split('/').map((s) => s.trimEnd()).filter(Boolean).join('/');
}

export function parseHeaders(text: string): HeaderRules {
  type Block = { line: number; path: PathPattern; headers: [string, string][]; users: string[] | undefined; authLine: number };
  const blocks: Block[] = [];
  const warnings: RuleWarning[] = [];
  const warn = (line: number, message: string) => warnings.push({ file: '_headers', line, message });
  let current: Block | undefined;
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const lineNo = n + 1;
    const line = lines[n]!.trim();
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('/') || /^https?:\/\//i.test(line)) {
      const path = compilePathPattern(normalizePathLine(line), { caseInsensitive: true });
      if (!path) {
        warn(lineNo, `"${line}" is not a path; its block is ignored`);
        current = undefined;
        continue;
      }
      // A host in the pattern is ignored: every domain of a tenant serves the same site.
      current = { line: lineNo, path: { ...path, host: undefined }, headers: [], users: undefined, authLine: 0 };
      blocks.push(current);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon < 0) {
      warn(lineNo, 'expected a path or "Name: value"; line ignored');
      continue;
    }
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (!name) {
      warn(lineNo, 'missing header name; line ignored');
      continue;
    }
    if (!current) {
      warn(lineNo, `a path must come before the header "${name}"; line ignored`);
      continue;
    }
    if (!TOKEN.test(name)) {
      warn(lineNo, `"${name}" is not a valid header name; line ignored`);
      continue;
    }
    const key = name.toLowerCase();
    if (!value) {
      warn(lineNo, `missing value for ${name}; line ignored`);
      continue;
    }
    if (key === 'basic-auth') {
      current.users ??= [];
      current.authLine ||= lineNo;
      const entries = value.split(/\s+/);
      entries.forEach((entry, i) => {
        const c = entry.indexOf(':');
        if (c > 0 && c < entry.length - 1) current!.users!.push(entry);
        else warn(lineNo, `Basic-Auth entry ${i + 1} is not user:password; that entry is ignored`);
      });
      if (current.users.length === 0) warn(lineNo, 'Basic-Auth has no valid user:password; nobody can sign in to these paths');
      continue;
    }
    if (!VALUE.test(value)) {
      warn(lineNo, `the value of ${name} has control characters; line ignored`);
      continue;
    }
    if (RESERVED.has(key)) {
      warn(lineNo, `${name} is set by the server; line ignored`);
      continue;
    }
    if (key === 'set-cookie') {
      // Tenants share parent domains (acme.example.com, evil.example.com): a
      // static cookie for the parent would be set on every visitor of another tenant.
      warn(lineNo, 'Set-Cookie cannot be set from _headers (a cookie for a shared parent domain would reach other sites); line ignored');
      continue;
    }
    const same = current.headers.find(([n]) => n.toLowerCase() === key);
    if (same) same[1] = `${same[1]}, ${value}`;
    else current.headers.push([name, value]);
  }
  const rules: HeaderRule[] = [];
  const authRules: number[] = [];
  for (const b of blocks) {
    if (b.headers.length === 0 && b.users === undefined) continue;
    const auth = b.users === undefined ? undefined : { line: b.authLine, digests: b.users.map(credentialDigest) };
    if (auth) authRules.push(rules.length);
    rules.push({ line: b.line, path: b.path, headers: b.headers, auth });
  }
  return { rules, authRules, warnings, index: buildRuleIndex(rules.map((r) => r.path), true) };
}

/** Indexes of the rules whose path matches (for memoising what they add). */
export function matchingHeaderRules(rules: HeaderRules, path: string): number[] {
  const out: number[] = [];
  for (const i of candidateRules(rules.index, path)) {
    if (matchPathPattern(rules.rules[i]!.path, path, '')) out.push(i);
  }
  return out;
}

/**
 * Pure: the headers the rules give this request path, names as last written.
 * Empty when nothing matches. `Basic-Auth` is never among them (see authForPath).
 */
export function headersForPath(rules: HeaderRules, path: string): HeaderPair[] {
  if (rules.rules.length === 0) return [];
  return headersOfRules(rules, matchingHeaderRules(rules, path));
}

/** The headers of these matching rules, in file order: a later rule's value of a name replaces an earlier one's. */
export function headersOfRules(rules: HeaderRules, indexes: readonly number[]): HeaderPair[] {
  const byName = new Map<string, HeaderPair>();
  for (const i of indexes) {
    for (const [name, value] of rules.rules[i]!.headers) byName.set(name.toLowerCase(), [name, value]);
  }
  return [...byName.values()];
}

/** The `Basic-Auth` of the last of these matching rules that has one. */
export function authOfRules(rules: HeaderRules, indexes: readonly number[]): BasicAuth | undefined {
  for (let k = indexes.length - 1; k >= 0; k--) {
    const auth = rules.rules[indexes[k]!]!.auth;
    if (auth) return auth;
  }
  return undefined;
}

/** Pure: whether a path asks for Basic authentication, walking only the rules that have `Basic-Auth`. */
export function authForPath(rules: HeaderRules, path: string): BasicAuth | undefined {
  const { authRules } = rules;
  for (let k = authRules.length - 1; k >= 0; k--) {
    const rule = rules.rules[authRules[k]!]!;
    if (matchPathPattern(rule.path, path, '')) return rule.auth;
  }
  return undefined;
}
