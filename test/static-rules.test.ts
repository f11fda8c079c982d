// The pure parts of static hosting, table-driven: Netlify's _redirects and
// _headers syntax (cases from Netlify's documentation), byte ranges,
// Accept-Encoding, hashed asset names and content types.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateRedirects, parseRedirects, type RedirectOutcome } from '../server/static/index/redirect-rules.js';
import { authForPath, headersForPath, parseHeaders } from '../server/static/index/header-rules.js';
import { formatRuleWarning } from '../server/static/index/rule-warning.js';
import { credentialsAccepted } from '../server/static/serve/basic-auth.js';
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
  assert.match(parsed.warnings.map(formatRuleWarning).join('\n'), /line 3: status 999/);
  assert.equal(summary(run(rules, '/x/y', { host: 'blog.example.com' })), '301 https://www.example.com/blog/x/y');
  assert.equal(summary(run(rules, '/x/y', { host: 'other.example.com' })), 'none');
  assert.equal(summary(run(rules, '/ok')), '301 /fine');
});

test('_headers: path blocks, splats and placeholders, names repeated in a block joined', () => {
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
  assert.equal(rules.warnings.length, 2, rules.warnings.map(formatRuleWarning).join('\n'));
  assert.deepEqual(headersForPath(parseHeaders(''), '/x'), []);
});

// Cases from Netlify's own parser tests (netlify/build packages/redirect-parser,
// tests/line-parser.test.ts and tests/fixtures/redirects_file/<name>). Each
// fixture is named in a comment; the text is the fixture's, the expectation is
// what Netlify's parser gives, read as this platform serves it.
test('_redirects: Netlify fixtures that parse', () => {
  const one = (text: string, path: string, opts: Parameters<typeof run>[2] = {}) => summary(run(text, path, opts));
  const noWarnings = (text: string) => assert.deepEqual(parseRedirects(text).warnings, [], text);
  // empty_line, comment_full, comment_inline, line_trim, from_simple
  const emptyLine = '/blog/my-post.php  /blog/my-post\n\n/blog/my-post-two.php  /blog/my-post-two\n';
  noWarnings(emptyLine);
  assert.equal(parseRedirects(emptyLine).rules.length, 2);
  assert.equal(one('# this is just an old leftover\n/blog/my-post.php  /blog/my-post\n', '/blog/my-post.php'), '301 /blog/my-post');
  assert.equal(one('/blog/my-post.php  /blog/my-post # this is just an old leftover\n', '/blog/my-post.php'), '301 /blog/my-post');
  assert.equal(one('  /home              /\n', '/home'), '301 /');
  assert.equal(one('/home              /\n', '/home'), '301 /');
  // multiple_lines
  const multiple = '/10thmagnitude   http://www.10thmagnitude.com/   301\n/bananastand     http://eepurl.com/Lgde5         301\n';
  assert.equal(one(multiple, '/10thmagnitude'), '301 http://www.10thmagnitude.com/');
  assert.equal(one(multiple, '/bananastand'), '301 http://eepurl.com/Lgde5');
  // from_absolute_uri: bound to its host
  const absolute = 'http://hello.bitballoon.com/* http://www.hello.com/:splat\n';
  assert.equal(one(absolute, '/a/b', { host: 'hello.bitballoon.com' }), '301 http://www.hello.com/a/b');
  assert.equal(one(absolute, '/a/b', { host: 'other.example' }), 'none');
  // query
  const query = '/      page=news      /news\n/blog  post=:post_id  /blog/:post_id\n/      _escaped_fragment_=/about    /about\n';
  noWarnings(query);
  assert.equal(one(query, '/', { query: 'page=news' }), '301 /news');
  assert.equal(one(query, '/blog', { query: 'post=7' }), '301 /blog/7');
  assert.equal(one(query, '/', { query: '_escaped_fragment_=/about' }), '301 /about');
  // to_anchor: the fragment stays last
  const anchor = '/blog/my-post-ads.php  /blog/my-post#ads # this is a valid anchor with a comment\n';
  assert.equal(one(anchor, '/blog/my-post-ads.php'), '301 /blog/my-post#ads');
  assert.equal(one(anchor, '/blog/my-post-ads.php', { query: 'a=1' }), '301 /blog/my-post?a=1#ads');
  // to_splat_no_force, to_splat_force
  assert.equal(one('/*  https://www.bitballoon.com/:splat 301\n', '/x/y'), '301 https://www.bitballoon.com/x/y');
  assert.equal(one('/*  https://www.bitballoon.com/:splat 301\n', '/x/y', { exists: true }), 'none');
  assert.equal(one('/*  https://www.bitballoon.com/:splat 301!\n', '/x/y', { exists: true }), '301 https://www.bitballoon.com/x/y');
  // to_path_forward: no target means /admin/:splat
  const forward = parseRedirects('/admin/* 200\n/admin/* 200!\n');
  assert.deepEqual(forward.warnings, []);
  assert.deepEqual(forward.rules.map((r) => [r.to, r.status, r.force]), [['/admin/:splat', 200, false], ['/admin/:splat', 200, true]]);
  assert.equal(one('/admin/* 200\n', '/admin/users/7'), '200 rewrite /admin/users/7');
  // status, status_force
  assert.equal(one('/test https://www.bitballoon.com/test=hello 301\n', '/test'), '301 https://www.bitballoon.com/test=hello');
  assert.equal(one('/test https://www.bitballoon.com/test=hello 301!\n', '/test', { exists: true }), '301 https://www.bitballoon.com/test=hello');
  // simple, simple_multiple: the first match wins
  assert.equal(one('/one /two\n', '/one'), '301 /two');
  assert.equal(one('/one /two\n/one /four\n', '/one'), '301 /two');
});

test('_redirects: Netlify fixtures that are refused, each with its reason named', () => {
  const reasons = (text: string) => parseRedirects(text).warnings.map(formatRuleWarning);
  const cases: [fixture: string, text: string, reason: RegExp][] = [
    ['proxy', '/api/*  https://api.bitballoon.com/*   200\n', /line 1: proxying to another site \(https:\/\/api\.bitballoon\.com\/\* with status 200\) is not supported/],
    ['signed', '/api/*   https://api.example.com/:splat   200!  Sign=API_SECRET\n', /signed rules \(Sign=\) and proxying to another site .* are not supported/],
    ['signed_backward_compat', '/api/*   https://api.example.com/:splat   200!  signed=API_SECRET\n', /signed rules \(Sign=\)/],
    ['conditions_country', '/  /china 302 Country=ch,tw\n', /country conditions \(Country=\) is not supported/],
    ['conditions_country_case', '/old-path /new-path 200 Country=US\n', /country conditions/],
    ['conditions_country_language', '/  /china 302 Country=il Language=en\n', /country conditions \(Country=\) and language conditions \(Language=\) are not supported/],
    ['conditions_language_case', '/old-path /new-path 200 Language=en\n', /language conditions/],
    ['conditions_role', '/admin/*  /admin/:splat 200 Role=admin\n', /role conditions \(Role=\) is not supported/],
    ['conditions_role_case', '/old-path /new-path 200 Role=admin\n', /role conditions/],
    ['conditions_roles', '/member/*  /member/:splat 200 Role=admin,member\n', /role conditions/],
    ['conditions_query', '/donate source=:source email=:email /donate/usa?source=:source&email=:email 302 Country=us\n', /country conditions/],
    ['invalid_url', 'http:// /to\n', /"http:\/\/" is not a path/],
    ['invalid_status', '/from /to not_a_status\n', /unexpected "not_a_status"/],
    ['invalid_no_to_no_status', '/m/scge/legal\n', /no target path or URL/],
    ['invalid_no_to_status', '/swfobject.html?detectflash=false 301\n', /only "\/path\/\* 200" may leave it out/],
    ['invalid_no_to_query', '/m/scge/legal source=:source\n', /no target path or URL/],
    ['invalid_mistaken_headers', '# Protect backups with Basic Auth\n/backup/*\n    Basic-Auth: dev@example.com:a-password\n', /line 3: "Basic-Auth:" looks like a header: headers go in _headers/],
  ];
  for (const [fixture, text, reason] of cases) {
    const got = reasons(text);
    assert.ok(got.some((w) => reason.test(w)), `${fixture}: ${got.join(' | ')}`);
    assert.equal(parseRedirects(text).rules.length, 0, fixture);
    assert.ok(got.every((w) => w.endsWith('rule ignored')), fixture);
  }
  // invalid_no_slash: three lines, none with a target
  assert.equal(reasons('/\tindex.html\n/blog\tblog.html\n/trt-therapy-san-diego\ttrt-therapy-san-diego.html\n').length, 3);
  // invalid_mistaken_headers: the path line alone and the header line are two warnings, neither names the password
  const mistaken = reasons('/backup/*\n    Basic-Auth: dev@example.com:a-password\n');
  assert.equal(mistaken.length, 2);
  assert.doesNotMatch(mistaken.join(' '), /a-password/);
});

// Cases from netlify/build packages/headers-parser (tests/line-parser.test.ts,
// tests/all.test.ts, tests/for-regexp.test.ts; fixtures in tests/fixtures/headers_file/<name>).
test('_headers: Netlify fixtures, parsing', () => {
  const values = (text: string, path = '/path') => Object.fromEntries(headersForPath(parseHeaders(text), path));
  const warnings = (text: string) => parseHeaders(text).warnings.map(formatRuleWarning);
  // empty, trim_line_path (an indented path with nothing under it), trim_line_values, empty_line, comment, success
  assert.deepEqual(parseHeaders('').rules, []);
  assert.deepEqual(parseHeaders('  /path\n').rules, []);
  assert.deepEqual(warnings('  /path\n'), []);
  assert.deepEqual(values('/path\ntest: one\n'), { test: 'one' });
  assert.deepEqual(values('/path\n\n  test: one\n'), { test: 'one' });
  assert.deepEqual(values('/path\n  # comment\n  test: one\n'), { test: 'one' });
  assert.deepEqual(values('/path\n  test: one\n'), { test: 'one' });
  // no_colon: no header, and a warning here (Netlify drops the line silently)
  assert.deepEqual(values('/path\n  test = one\n'), {});
  assert.equal(warnings('/path\n  test = one\n').length, 1);
  // trim_name, trim_value, multiple_values
  assert.deepEqual(values('/path\n  test : one\n'), { test: 'one' });
  assert.deepEqual(values('/path\n  test:   one\n'), { test: 'one' });
  assert.deepEqual(values('/path\n  test: one\n  test: two\n'), { test: 'one, two' });
  // duplicate (all.test.ts "duplicates"): the same path twice, the later value replaces the earlier
  assert.deepEqual(values('/path\n  test: one\n\n/path\n  test: three\n'), { test: 'three' });
  // success + success_two as two blocks (all.test.ts "only_files"): the later one wins
  assert.deepEqual(values('/path\n  test: one\n/path\n  test: two\n'), { test: 'two' });
  // large_headers_file: path lines indented like the header lines under them
  const indented = parseHeaders('      /base/some-0\n        test: some-0\n      /base/some-2\n        test: some-2\n');
  assert.equal(indented.rules.length, 2);
  assert.deepEqual(Object.fromEntries(headersForPath(indented, '/base/some-2')), { test: 'some-2' });
  assert.deepEqual(indented.warnings, []);
  // invalid_value_name, invalid_value_string, invalid_for_order: warnings naming the line
  assert.match(warnings('/path\n  : one\n').join(), /_headers line 2: missing header name/);
  assert.match(warnings('/path\n  test:\n').join(), /_headers line 2: missing value for test/);
  assert.deepEqual(values('/path\n  test:\n'), {});
  assert.match(warnings('  test: one\n/path\n').join(), /_headers line 1: a path must come before the header "test"/);
});

test('_headers: Netlify fixtures, path patterns (for-regexp.test.ts)', () => {
  const matches = (pattern: string, path: string) => headersForPath(parseHeaders(`${pattern}\n  test: one\n`), path).length === 1;
  const cases: [fixture: string, pattern: string, yes: string[], no: string[]][] = [
    ['single_slash', '/', ['/'], ['/a']],
    ['whitespaces', '/ /', ['/'], ['/a']],
    ['trim_end', '/a ', ['/a', '/a/'], ['/a ', '/ab']],
    ['trim_start', '/ a', ['/ a'], ['/a']],
    ['placeholder', '/a/:b', ['/a/x', '/a/x/'], ['/a', '/a/x/y']],
    ['wildcard_slash', '/*', ['/', '/x', '/x/y/z'], []],
    ['wildcard_append', '/*/a', ['/a', '/x/a', '/x/y/a'], ['/x', '/a/x']],
    ['wildcard_prepend', '/a/*', ['/a', '/a/', '/a/b', '/a/b/c'], ['/b']],
    ['wildcard_surround', '/a/*/b', ['/a/b', '/a/x/b', '/a/x/y/b'], ['/a/x', '/b']],
    ['wildcard_multiple', '/a/*/*', ['/a', '/a/x', '/a/x/y/z'], ['/b/x']],
    ['wildcard_inside', '/a/b*c', ['/a/bc', '/a/bxyc'], ['/a/b', '/a/bx']],
    ['trailing_slash', '/a/', ['/a', '/a/'], ['/ab']],
    ['regexp_escape', '/a.', ['/a.'], ['/ab']],
    ['double_slash_single', '//', ['/'], ['/a']],
    ['double_slash_multiple', '//a//b//', ['/a/b', '/a/b/'], ['/a', '/a//b/c']],
    ['case (the iu flag)', '/Admin/*', ['/admin/x', '/ADMIN/X', '/Admin'], ['/admins']],
  ];
  for (const [fixture, pattern, yes, no] of cases) {
    for (const path of yes) assert.ok(matches(pattern, path), `${fixture}: ${JSON.stringify(pattern)} should match ${JSON.stringify(path)}`);
    for (const path of no) assert.ok(!matches(pattern, path), `${fixture}: ${JSON.stringify(pattern)} should not match ${JSON.stringify(path)}`);
  }
});

test('_headers: Set-Cookie refused, Basic-Auth kept apart and never a header', () => {
  const rules = parseHeaders(`
/*
  X-Site: yes
  Set-Cookie: session=stolen; Domain=example.com
/private/*
  Basic-Auth: alice:wonder-land bob:has:colons
  X-Private: yes
/private/open/*
  X-Open: yes
/nobody/*
  Basic-Auth: no-colon
`);
  const text = rules.warnings.map(formatRuleWarning);
  assert.match(text.join('\n'), /_headers line 4: Set-Cookie cannot be set from _headers/);
  assert.match(text.join('\n'), /_headers line 11: Basic-Auth entry 1 is not user:password/);
  assert.match(text.join('\n'), /_headers line 11: Basic-Auth has no valid user:password; nobody can sign in/);
  assert.doesNotMatch(text.join('\n'), /wonder-land|stolen|no-colon/, 'warnings never repeat values');
  assert.deepEqual(headersForPath(rules, '/'), [['X-Site', 'yes']]);
  const priv = headersForPath(rules, '/private/open/x');
  assert.deepEqual(priv, [['X-Site', 'yes'], ['X-Private', 'yes'], ['X-Open', 'yes']]);
  assert.ok(!priv.some(([n]) => /basic-auth|set-cookie/i.test(n)));
  assert.deepEqual(rules.authRules.length, 2);
  assert.equal(authForPath(rules, '/'), undefined);
  const auth = authForPath(rules, '/PRIVATE/open/x')!;
  assert.ok(auth, 'the block above covers /private/open/* too');
  const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
  assert.equal(credentialsAccepted(auth, basic('alice:wonder-land')), true);
  assert.equal(credentialsAccepted(auth, basic('bob:has:colons')), true, 'a password may hold colons');
  assert.equal(credentialsAccepted(auth, basic('alice:wrong')), false);
  assert.equal(credentialsAccepted(auth, basic('bob:wonder-land')), false);
  assert.equal(credentialsAccepted(auth, `basic   ${Buffer.from('alice:wonder-land').toString('base64')}`), true, 'the scheme is case-insensitive');
  assert.equal(credentialsAccepted(auth, 'Bearer abc'), false);
  assert.equal(credentialsAccepted(auth, undefined), false);
  const nobody = authForPath(rules, '/nobody/x')!;
  assert.deepEqual(nobody.digests, []);
  assert.equal(credentialsAccepted(nobody, basic('no-colon')), false, 'a broken Basic-Auth closes the path');
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
