// The pure parts of static hosting, table-driven: Netlify's _redirects and
// _headers syntax (cases from Netlify's documentation), byte ranges,
// Accept-Encoding, hashed asset names and content types.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateRedirects, parseRedirects, type RedirectOutcome } from '../server/static/index/redirect-rules.js';
import { headersForPath, parseHeaders } from '../server/static/index/header-rules.js';
import { parseByteRange } from '../server/static/serve/byte-range.js';
import { parseAcceptEncoding } from '../server/static/serve/accept-encoding.js';
import { hasContentHash, cacheControlFor } from '../server/static/index/cache-policy.js';
import { contentTypeFor, isCompressible } from '../server/static/index/content-type.js';
import { decodeRequestPath } from '../server/static/serve/request-path.js';

function run(rulesText: string, path: string, opts: { query?: string; host?: string; exists?: boolean } = {}): RedirectOutcome | undefined {
  return evaluateRedirects(parseRedirects(rulesText), { path, query: opts.query ?? '', host: opts.host ?? 'site.example', exists: opts.exists ?? false });
}

function summary(o: RedirectOutcome | undefined): string {
  if (!o) return 'none';
  if (o.kind === 'redirect') return `${o.status} ${o.location}`;
  return `${o.status} rewrite ${o.path}${o.query ? '?' + o.query : ''}`;
}

test('_redirects: the examples of Netlify documentation', () => {
  const rules = `
# Redirects from what the browser requests to what we serve
/home              /
/blog/my-post.php  /blog/my-post
/news              /blog
/cuties            https://www.petsofnetlify.com

# Redirect with a 301
/home2         /              301
# Redirect with a 302
/my-redirect  /              302
# Show a custom 404 for this path
/ecommerce    /store-closed  404
# Rewrite a path
/pass-through /index.html    200

/news/:year/:month/:date/:slug  /blog/:year/:month/:date/:slug
/news/:year/:month  /blog/:month-:year
/blog/*  /news/:splat
/store id=:id  /blog/:id  301
/articles id=:id tag=:tag /posts/:tag/:id 301
/shop/* /store/:splat 302
`;
  const cases: [string, string, string?][] = [
    ['/home', '301 /'],
    ['/home/', '301 /', 'trailing slashes are normalised before matching'],
    ['/blog/my-post.php', '301 /blog/my-post'],
    ['/cuties', '301 https://www.petsofnetlify.com'],
    ['/my-redirect', '302 /'],
    ['/ecommerce', '404 rewrite /store-closed'],
    ['/pass-through', '200 rewrite /index.html'],
    ['/news/2024/02/14/hello', '301 /blog/2024/02/14/hello'],
    ['/news/2024/02', '301 /blog/02-2024'],
    ['/news', '301 /blog', 'first match wins'],
    ['/blog/a/b/c', '301 /news/a/b/c'],
    ['/blog', '301 /news/', 'a trailing splat also matches the folder itself'],
    ['/blog/with space', '301 /news/with%20space'],
    ['/shop/hats', '302 /store/hats'],
    ['/nothing-here', 'none'],
  ];
  for (const [path, expected, why] of cases) assert.equal(summary(run(rules, path)), expected, why ?? path);
  assert.equal(summary(run(rules, '/store', { query: 'id=my-post' })), '301 /blog/my-post', 'query placeholders');
  assert.equal(summary(run(rules, '/store', { query: '' })), 'none', 'a rule with query conditions needs them');
  assert.equal(summary(run(rules, '/articles', { query: 'tag=x&id=7' })), '301 /posts/x/7');
  assert.equal(summary(run(rules, '/shop/hats', { query: 'color=red' })), '302 /store/hats?color=red', 'the query string travels along');
  assert.equal(summary(run(rules, '/pass-through', { query: 'a=1' })), '200 rewrite /index.html?a=1');
});

test('_redirects: existing paths shadow rules unless forced with !', () => {
  const rules = `
/app/*      /app/index.html   200
/old        /new              301
/forced     /elsewhere        301!
/spa/*      /spa/index.html   200!
`;
  assert.equal(summary(run(rules, '/old', { exists: true })), 'none');
  assert.equal(summary(run(rules, '/old', { exists: false })), '301 /new');
  assert.equal(summary(run(rules, '/forced', { exists: true })), '301 /elsewhere');
  assert.equal(summary(run(rules, '/app/logo.png', { exists: true })), 'none');
  assert.equal(summary(run(rules, '/app/route', { exists: false })), '200 rewrite /app/index.html');
  assert.equal(summary(run(rules, '/spa/logo.png', { exists: true })), '200 rewrite /spa/index.html');
  assert.equal(parseRedirects(rules).hasForced, true);
});

test('_redirects: host-bound rules, bad lines are reported and skipped', () => {
  const rules = `
http://blog.example.com/*  https://www.example.com/blog/:splat 301!
/a                /b   999
/country          /anz 302 Country=au,nz
/proxy/*          https://api.example.com/:splat 200
nonsense
/ok               /fine
`;
  const parsed = parseRedirects(rules);
  assert.equal(parsed.rules.length, 2);
  assert.equal(parsed.warnings.length, 4);
  assert.match(parsed.warnings.join('\n'), /line 3: status 999/);
  assert.equal(summary(run(rules, '/x/y', { host: 'blog.example.com' })), '301 https://www.example.com/blog/x/y');
  assert.equal(summary(run(rules, '/x/y', { host: 'other.example.com' })), 'none');
  assert.equal(summary(run(rules, '/ok')), '301 /fine');
});

test('_headers: path blocks, splats and placeholders, repeated names joined', () => {
  const rules = parseHeaders(`
# a path:
/templates/index.html
  # headers for that path:
  X-Frame-Options: DENY
  X-XSS-Protection: 1; mode=block
/templates/*
  X-Robots-Tag: noindex
/*
  cache-control: max-age=0
  cache-control: no-cache
/users/:id
  X-User-Page: yes
/bad
  Content-Length: 5
  Bad Name: x
`);
  assert.deepEqual(headersForPath(rules, '/templates/index.html'), [
    ['X-Frame-Options', 'DENY'],
    ['X-XSS-Protection', '1; mode=block'],
    ['X-Robots-Tag', 'noindex'],
    ['cache-control', 'max-age=0, no-cache'],
  ]);
  assert.deepEqual(headersForPath(rules, '/users/42'), [['cache-control', 'max-age=0, no-cache'], ['X-User-Page', 'yes']]);
  assert.deepEqual(headersForPath(rules, '/users/42/more'), [['cache-control', 'max-age=0, no-cache']]);
  assert.equal(rules.warnings.length, 2, rules.warnings.join('\n'));
  assert.deepEqual(headersForPath(parseHeaders(''), '/x'), []);
});

test('byte ranges: single ranges, suffixes, unsatisfiable and ignored forms', () => {
  const size = 1000;
  assert.deepEqual(parseByteRange('bytes=0-99', size), { start: 0, end: 99 });
  assert.deepEqual(parseByteRange('bytes=900-', size), { start: 900, end: 999 });
  assert.deepEqual(parseByteRange('bytes=-100', size), { start: 900, end: 999 });
  assert.deepEqual(parseByteRange('bytes=-5000', size), { start: 0, end: 999 });
  assert.deepEqual(parseByteRange('bytes=990-5000', size), { start: 990, end: 999 });
  assert.equal(parseByteRange('bytes=1000-', size), 'unsatisfiable');
  assert.equal(parseByteRange('bytes=-0', size), 'unsatisfiable');
  assert.equal(parseByteRange('bytes=0-1,5-6', size), undefined, 'several ranges: the whole file');
  assert.equal(parseByteRange('items=0-1', size), undefined);
  assert.equal(parseByteRange('bytes=5-2', size), undefined);
});

test('Accept-Encoding: br before gzip, q-values respected, identity otherwise', () => {
  assert.deepEqual(parseAcceptEncoding('gzip, deflate, br'), ['br', 'gzip']);
  assert.deepEqual(parseAcceptEncoding('gzip, deflate, br, zstd'), ['br', 'gzip']);
  assert.deepEqual(parseAcceptEncoding('gzip'), ['gzip']);
  assert.deepEqual(parseAcceptEncoding('br;q=0.5, gzip;q=0.8'), ['gzip', 'br']);
  assert.deepEqual(parseAcceptEncoding('br;q=0, gzip'), ['gzip']);
  assert.deepEqual(parseAcceptEncoding('identity'), []);
  assert.deepEqual(parseAcceptEncoding('*'), ['br', 'gzip']);
  assert.deepEqual(parseAcceptEncoding(''), []);
});

test('hashed asset names are cached for a year; HTML and plain names revalidate', () => {
  for (const name of ['/app.3f9a1c2b.js', '/static/js/main.073c9b0a.chunk.js', '/assets/index-BxY12abc.js', '/assets/vendor-4f3a9e1d.css']) {
    assert.equal(hasContentHash(name), true, name);
    assert.equal(cacheControlFor(name, contentTypeFor(name)), 'public, max-age=31536000, immutable', name);
  }
  for (const name of ['/app.js', '/site-overview.css', '/my-document.pdf', '/logo.png', '/assets/index.js']) {
    assert.equal(hasContentHash(name), false, name);
    assert.equal(cacheControlFor(name, contentTypeFor(name)), 'public, max-age=0, must-revalidate', name);
  }
  assert.equal(cacheControlFor('/page.3f9a1c2b.html', 'text/html; charset=utf-8'), 'public, max-age=0, must-revalidate');
});

test('content types carry a charset for text; compressible types', () => {
  assert.equal(contentTypeFor('/index.html'), 'text/html; charset=utf-8');
  assert.equal(contentTypeFor('/style.css'), 'text/css; charset=utf-8');
  assert.match(contentTypeFor('/app.js'), /^(text|application)\/javascript; charset=utf-8$/);
  assert.equal(contentTypeFor('/data.json'), 'application/json; charset=utf-8');
  assert.equal(contentTypeFor('/logo.svg'), 'image/svg+xml');
  assert.equal(contentTypeFor('/photo.png'), 'image/png');
  assert.equal(contentTypeFor('/font.woff2'), 'font/woff2');
  assert.equal(contentTypeFor('/app.wasm'), 'application/wasm');
  assert.equal(contentTypeFor('/no-extension'), 'application/octet-stream');
  assert.equal(isCompressible(contentTypeFor('/app.js')), true);
  assert.equal(isCompressible(contentTypeFor('/logo.svg')), true);
  assert.equal(isCompressible(contentTypeFor('/photo.png')), false);
  assert.equal(isCompressible(contentTypeFor('/font.woff2')), false);
});

test('request paths: decoded, traversal and malformed escapes refused', () => {
  assert.equal(decodeRequestPath('/a/b.css'), '/a/b.css');
  assert.equal(decodeRequestPath('/with%20space.html'), '/with space.html');
  assert.equal(decodeRequestPath('//double//slash'), '/double/slash');
  assert.equal(decodeRequestPath('/../etc/passwd'), undefined);
  assert.equal(decodeRequestPath('/%2e%2e/etc/passwd'), undefined);
  assert.equal(decodeRequestPath('/a%5C..%5Cb'), undefined);
  assert.equal(decodeRequestPath('/%E0%A4%A'), undefined);
});
