// A trie of the static leading segments of path patterns, built once per
// release, so that finding the rules that may match a path costs one map
// look-up per path segment instead of one RegExp per rule.
//
// The trie only narrows the rules down: each rule is kept at the node of its
// static prefix (the leading segments with no `*` and no `:placeholder`), and
// a path's candidates are the rules kept on the nodes its own segments walk
// through. Every candidate is still checked with its compiled RegExp, in file
// order, so first-match and merge-in-order semantics stay those of the linear scan.
import type { PathPattern } from './path-pattern.js';

interface TrieNode {
  /** Indexes of the rules whose static prefix ends here, ascending. */
  rules: number[];
  children: Map<string, TrieNode> | undefined;
}

export interface RuleIndex {
  readonly root: TrieNode;
  /** Keys and request segments are lower-cased (for `_headers`, matched whatever the case). */
  readonly caseInsensitive: boolean;
  readonly size: number;
}

const PLACEHOLDER = /^:[A-Za-z_]/;
// Outside ASCII, the RegExp `i` flag and toLowerCase may disagree: such a
// segment is left to the RegExp (the rule stays on the node above).
const NON_ASCII = /[^\x00-\x7f]/;

function newNode(): TrieNode {
  return { rules: [], children: undefined };
}

/** The leading segments that are plain text, as the RegExp compares them. */
function staticPrefix(pattern: PathPattern, caseInsensitive: boolean): string[] {
  // The compiled path part: the source without scheme and host, slashes collapsed as compilePathPattern does.
  let p = pattern.source;
  const url = /^https?:\/\/[^/]+(\/.*)?$/i.exec(p);
  if (url) p = url[1] ?? '/';
  p = p.replace(/\/{2,}/g, '/');
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  const out: string[] = [];
  for (const seg of p.split('/').slice(1)) {
    if (seg === '' || seg.includes('*') || PLACEHOLDER.test(seg)) break;
    if (caseInsensitive && NON_ASCII.test(seg)) break;
    out.push(caseInsensitive ? seg.toLowerCase() : seg);
  }
  return out;
}

export function buildRuleIndex(patterns: readonly PathPattern[], caseInsensitive: boolean): RuleIndex {
  const root = newNode();
  patterns.forEach((pattern, i) => {
    let node = root;
    for (const seg of staticPrefix(pattern, caseInsensitive)) {
      node.children ??= new Map();
      let next = node.children.get(seg);
      if (!next) node.children.set(seg, (next = newNode()));
      node = next;
    }
    node.rules.push(i);
  });
  return { root, caseInsensitive, size: patterns.length };
}

export const EMPTY_RULE_INDEX: RuleIndex = Object.freeze({ root: newNode(), caseInsensitive: false, size: 0 });

/**
 * Indexes (ascending) of the rules that may match `path`; the caller checks
 * each. A path not starting with '/' gets every rule (never the case for a request).
 */
export function candidateRules(index: RuleIndex, path: string): readonly number[] {
  if (!path.startsWith('/')) return Array.from({ length: index.size }, (_, i) => i);
  let node: TrieNode | undefined = index.root;
  let lists: number[][] | undefined;
  let only: number[] | undefined = node.rules.length ? node.rules : undefined;
  let start = 1;
  while (node.children !== undefined && start <= path.length) {
    let end = path.indexOf('/', start);
    if (end < 0) end = path.length;
    const raw = path.slice(start, end);
    node = node.children.get(index.caseInsensitive ? raw.toLowerCase() : raw);
    if (!node) break;
    if (node.rules.length) {
      if (only === undefined) only = node.rules;
      else (lists ??= [only]).push(node.rules);
    }
    start = end + 1;
  }
  if (lists === undefined) return only ?? NONE;
  return mergeSorted(lists);
}

const NONE: readonly number[] = Object.freeze([]);

/** The union of ascending lists, ascending (few lists: one per path segment at most). */
function mergeSorted(lists: number[][]): number[] {
  const out: number[] = [];
  for (const l of lists) for (const i of l) out.push(i);
  return out.sort((a, b) => a - b);
}
