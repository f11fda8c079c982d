// The path index of _redirects and _headers only narrows the rules down: on
// random rules and paths it must give what trying every rule in turn gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateRedirects, parseRedirects, type RedirectRules } from '../server/static/index/redirect-rules.js';
import { matchingHeaderRules, parseHeaders } from '../server/static/index/header-rules.js';
import { matchPathPattern } from '../server/static/index/path-pattern.js';
import { candidateRules } from '../server/static/index/rule-index.js';

// A small deterministic generator, so a failure can be replayed.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const SEGMENTS = ['a', 'A', 'b', 'blog', 'Blog', 'x.html', 'ſ', 'ς', 'σ', 'K', 'k', ':id', ':slug', '*', 'p*', 'ab*', ':1', 'a:b', ''];
const PATH_SEGMENTS = ['a', 'A', 'b', 'blog', 'BLOG', 'x.html', 'X.HTML', 'ſ', 's', 'S', 'ς', 'σ', 'Σ', 'K', 'k', 'K', 'p', 'pq', 'abc', ':1', 'a:b', '', 'id'];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function randomPattern(r: () => number): string {
  const n = Math.floor(r() * 4);
  let p = '';
  for (let i = 0; i < n; i++) p += '/' + pick(r, SEGMENTS);
  if (r() < 0.2) p += '/';
  if (r() < 0.1) p = 'https://site.example' + (p || '/');
  return p || '/';
}

function randomPath(r: () => number): string {
  const n = Math.floor(r() * 5);
  let p = '';
  for (let i = 0; i < n; i++) p += '/' + pick(r, PATH_SEGMENTS);
  if (r() < 0.2) p += '/';
  return p || '/';
}

function linearRedirect(rules: RedirectRules, path: string, exists: boolean): number | undefined {
  const i = rules.rules.findIndex((rule) => (!exists || rule.force) && matchPathPattern(rule.from, path, 'site.example'));
  return i < 0 ? undefined : rules.rules[i]!.line;
}

test('indexed _redirects give the first matching rule, as a linear scan does', () => {
  const r = rng(7);
  for (let round = 0; round < 300; round++) {
    const lines = Array.from({ length: 1 + Math.floor(r() * 30) }, (_, i) => `${randomPattern(r)} /to/${i} 30${r() < 0.5 ? 1 : 2}${r() < 0.2 ? '!' : ''}`);
    const rules = parseRedirects(lines.join('\n'));
    for (let k = 0; k < 50; k++) {
      const path = randomPath(r);
      const exists = r() < 0.2;
      const got = evaluateRedirects(rules, { path, query: '', host: 'site.example', exists });
      assert.equal(got?.rule.line, linearRedirect(rules, path, exists), `${lines.join(' | ')} on ${path}`);
    }
  }
});

test('indexed _headers give every matching block in file order, whatever the case', () => {
  const r = rng(11);
  for (let round = 0; round < 300; round++) {
    const text = Array.from({ length: 1 + Math.floor(r() * 30) }, (_, i) => `${randomPattern(r)}\n  X-N: ${i}\n`).join('');
    const rules = parseHeaders(text);
    for (let k = 0; k < 50; k++) {
      const path = randomPath(r);
      const linear = rules.rules.flatMap((rule, i) => (matchPathPattern(rule.path, path, '') ? [i] : []));
      assert.deepEqual(matchingHeaderRules(rules, path), linear, `${text} on ${path}`);
    }
  }
});

test('a miss among 45,000 static rules looks at no rule', () => {
  const text = Array.from({ length: 45_000 }, (_, i) => `/old/section-${i % 300}/page-${i} /new/${i} 301`).join('\n');
  const rules = parseRedirects(text);
  assert.equal(candidateRules(rules.index, '/nothing/here').length, 0);
  assert.equal(candidateRules(rules.index, '/old/section-7/page-7').length, 1);
  assert.equal(evaluateRedirects(rules, { path: '/old/section-7/page-7', query: '', host: 'h', exists: false })?.rule.line, 8);
});
