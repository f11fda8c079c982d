// The second look at symlinks, once every entry is on disk: a link that stays
// inside by name can still leave through another link (`a -> d/up/..` with
// `d/up -> ..`). Each link is resolved here step by step, never leaving `root`.
// Links may name files only: a link to a folder can make the tree a cycle.
import fs from 'node:fs';
import path from 'node:path';

const MAX_HOPS = 40;

/**
 * Resolves `rel` under `root` the way the kernel would, following symlinks,
 * but stops and answers undefined as soon as a step would leave `root`
 * (or after MAX_HOPS links: a loop). Missing components resolve by name.
 */
export function resolveConfined(root: string, rel: string): string | undefined {
  const stack: string[] = [];
  const queue = rel.split('/');
  let hops = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (stack.length === 0) return undefined;
      stack.pop();
      continue;
    }
    stack.push(part);
    const abs = path.join(root, ...stack);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(abs);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink()) {
      if (++hops > MAX_HOPS) return undefined;
      const target = fs.readlinkSync(abs);
      if (target.startsWith('/')) return undefined;
      stack.pop();
      queue.unshift(...target.split('/'));
    }
  }
  return stack.join('/');
}

export interface BadLink {
  readonly path: string;
  readonly reason: string;
}

/**
 * The first symlink among `links` (paths relative to root) that leaves root,
 * loops, or names a folder. Links to folders are refused because they can
 * make the tree cyclic or exponentially large for whoever walks it.
 */
export function findBadLink(root: string, links: readonly string[]): BadLink | undefined {
  const resolved = links.map((rel) => ({ rel, to: resolveConfined(root, rel) }));
  // Escapes first: they are the graver fault and the one to name.
  const escaping = resolved.find((l) => l.to === undefined);
  if (escaping) return { path: escaping.rel, reason: 'resolves outside the release' };
  for (const { rel, to } of resolved) {
    const st = fs.statSync(path.join(root, to!), { throwIfNoEntry: false });
    if (st?.isDirectory()) return { path: rel, reason: 'points to a folder' };
  }
  return undefined;
}
