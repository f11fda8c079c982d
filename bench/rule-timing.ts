// Direct timing of `_redirects` matching, in this process: the indexed
// matcher the edge uses, and a scan of every rule in turn (what it did before)
// as the reference.
import { evaluateRedirects, parseRedirects, type RedirectRules } from '../server/static/index/redirect-rules.js';
import { matchPathPattern } from '../server/static/index/path-pattern.js';
import { lastRulePath, makeRedirects, MISS_PATH, RULE_COUNT } from './rule-fixtures.js';

export interface RuleTiming {
  rules: number;
  compileMs: number;
  /** Milliseconds per request, indexed. */
  missMs: number;
  hitMs: number;
  /** Milliseconds per request, every rule in turn. */
  linearMissMs: number;
  linearHitMs: number;
}

function perCall(fn: () => unknown, minMs: number): number {
  // Warm-up (at least a tenth of the time and two calls: the first compiles each RegExp it reaches).
  const warm = performance.now();
  let calls = 0;
  while (calls < 2 || performance.now() - warm < minMs / 10) {
    fn();
    calls++;
  }
  // Batches of about 1 ms, so reading the clock does not weigh on sub-microsecond calls.
  const batch = Math.max(1, Math.floor(calls / ((performance.now() - warm) || 1)));
  let n = 0;
  const started = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < batch; i++) fn();
    n += batch;
    elapsed = performance.now() - started;
  } while (elapsed < minMs || n < 3);
  return elapsed / n;
}

function linear(rules: RedirectRules, path: string): number {
  for (let i = 0; i < rules.rules.length; i++) if (matchPathPattern(rules.rules[i]!.from, path, 'h')) return i;
  return -1;
}

export function timeRules(count = RULE_COUNT): RuleTiming {
  const text = makeRedirects(count);
  const t0 = performance.now();
  const rules = parseRedirects(text);
  const compileMs = performance.now() - t0;
  const req = (path: string) => ({ path, query: '', host: 'h', exists: false });
  const miss = req(MISS_PATH);
  const hit = req(lastRulePath(count));
  if (evaluateRedirects(rules, miss) !== undefined || evaluateRedirects(rules, hit)?.rule.line !== count + 1) throw new Error('rule bench: unexpected match');
  return {
    rules: rules.rules.length,
    compileMs,
    missMs: perCall(() => evaluateRedirects(rules, miss), 300),
    hitMs: perCall(() => evaluateRedirects(rules, hit), 300),
    // A few hundred ms of the slow scan is enough for a stable figure.
    linearMissMs: perCall(() => linear(rules, MISS_PATH), 300),
    linearHitMs: perCall(() => linear(rules, hit.path), 300),
  };
}
