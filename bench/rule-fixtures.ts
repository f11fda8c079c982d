// A `_redirects` of 45,000 rules shaped like Netlify's own benchmark file
// (generated here, nothing fetched): mostly one-to-one moves of old URLs,
// with some section splats, placeholders and query conditions among them.
export const RULE_COUNT = 45_000;

export function makeRedirects(count = RULE_COUNT): string {
  const lines: string[] = ['# generated: old URLs moved to new ones'];
  for (let i = 0; i < count; i++) {
    const k = i % 20;
    if (k === 0) lines.push(`/docs/v${i}/*  /documentation/v${i}/:splat  301`);
    else if (k === 1) lines.push(`/products/cat-${i}/:id  /shop/cat-${i}/:id  301`);
    else if (k === 2) lines.push(`/search/${i}  q=:q  /find/${i}?q=:q  302`);
    else lines.push(`/blog/${2000 + (i % 25)}/post-${i}  /articles/post-${i}  301`);
  }
  return lines.join('\n') + '\n';
}

/** A path no rule matches, and the path of the last rule (the worst case of a linear scan). */
export const MISS_PATH = '/no/such/page';
export function lastRulePath(count = RULE_COUNT): string {
  const i = count - 1;
  return `/blog/${2000 + (i % 25)}/post-${i}`;
}
