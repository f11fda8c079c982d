// Static hosting as a Netlify user expects it, through the real edge on a real
// socket: _redirects, _headers, clean URLs, folder indexes, 404.html, SPA,
// MIME types, security headers, ETag/Last-Modified revalidation, ranges and
// precompressed copies made at deploy time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { startTestPlatform, type TestPlatform } from './helpers/harness.js';
import { publishSite } from './helpers/site-release.js';
import { loadSiteIndex } from '../server/static/index/site-index.js';
import { SiteRegistry } from '../server/static/site-registry.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

let p: TestPlatform;

function get(host: string, urlPath: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  const u = new URL(p.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path: urlPath, headers: { Host: host, ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const CONV = 'st-conv';
const CONV_HOST = `${CONV}.localhost`;
const MTIME = new Date('2025-03-04T05:06:07Z');
const CSS = 'body { color: #333; }\n'.repeat(200);
const BIG = crypto.randomBytes(200 * 1024);
const JS = 'export const answer = 42;\n'.repeat(100);

before(async () => {
  p = await startTestPlatform();
  await p.platform.tenants.create({ id: CONV }, 'test');
  await publishSite(
    p.platform,
    CONV,
    {
      'index.html': '<h1>home</h1>',
      'about.html': '<h1>about</h1>',
      'docs/index.html': '<h1>docs</h1>',
      'docs/guide.html': '<h1>guide</h1>',
      '404.html': '<h1>custom 404</h1>',
      'store-closed.html': '<h1>store closed</h1>',
      'style.css': CSS,
      'app.3f9a1c2b.js': JS,
      'vendor.4e5d6f70.js': JS,
      'shipped.js': JS,
      'shipped.js.br': zlib.brotliCompressSync(Buffer.from(JS)),
      'data.json': '{"a":1}',
      'logo.svg': '<svg xmlns="http://www.w3.org/2000/svg"></svg>',
      'photo.png': crypto.randomBytes(300),
      'big.bin': BIG,
      'with space.html': '<h1>spaced</h1>',
      '.secret/key.txt': 'secret',
      '.env': 'TOKEN=secret',
      _redirects: [
        '# Netlify syntax',
        '/home              /              301',
        '/blog/*            /news/:splat',
        '/news/:year/:month /blog/:month-:year 302',
        '/about             /elsewhere     301',
        '/style.css         /elsewhere     301',
        '/forced-css        /style.css     200',
        '/docs/guide        /somewhere     301!',
        '/ecommerce         /store-closed  404',
        '/pass-through      /index.html    200',
        '/go                https://example.com/landing 302',
      ].join('\n'),
      _headers: ['/*', '  X-Site: conv', '/docs/*', '  X-Frame-Options: DENY', '/app.3f9a1c2b.js', '  Cache-Control: public, max-age=60'].join('\n'),
    },
    { mtime: MTIME },
  );
});

after(async () => {
  await p.platform.workers?.close?.();
  await p.cleanup();
});

test('pages carry the right type, charset, security headers and caching headers; HEAD has no body', async () => {
  const home = await get(CONV_HOST, '/');
  assert.equal(home.status, 200);
  assert.equal(home.text, '<h1>home</h1>');
  assert.equal(home.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(home.headers['x-content-type-options'], 'nosniff');
  assert.equal(home.headers['x-frame-options'], 'SAMEORIGIN');
  assert.ok(home.headers['referrer-policy']);
  assert.equal(home.headers['x-site'], 'conv', '_headers /* applies');
  assert.match(home.headers.etag ?? '', /^"[A-Za-z0-9_-]{20,}"$/, 'a strong ETag');
  assert.equal(home.headers['last-modified'], MTIME.toUTCString());
  assert.equal(home.headers['cache-control'], 'public, max-age=0, must-revalidate');

  const head = await get(CONV_HOST, '/', {}, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  assert.equal(head.headers['content-length'], String('<h1>home</h1>'.length));
  assert.equal(head.headers.etag, home.headers.etag);

  const types: [string, RegExp][] = [
    ['/style.css', /^text\/css; charset=utf-8$/],
    ['/data.json', /^application\/json; charset=utf-8$/],
    ['/logo.svg', /^image\/svg\+xml$/],
    ['/photo.png', /^image\/png$/],
    ['/app.3f9a1c2b.js', /^(text|application)\/javascript; charset=utf-8$/],
    ['/big.bin', /^application\/octet-stream$/],
  ];
  for (const [file, type] of types) {
    const r = await get(CONV_HOST, file);
    assert.equal(r.status, 200, file);
    assert.match(r.headers['content-type'] ?? '', type, file);
  }
  const big = await get(CONV_HOST, '/big.bin');
  assert.ok(big.body.equals(BIG), 'a large file streams whole');

  const vendor = await get(CONV_HOST, '/vendor.4e5d6f70.js');
  assert.equal(vendor.headers['cache-control'], 'public, max-age=31536000, immutable', 'hashed names are immutable');

  const post = await get(CONV_HOST, '/style.css', {}, 'POST');
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
});

test('clean URLs, folder indexes with a trailing-slash redirect, dot files never served', async () => {
  assert.equal((await get(CONV_HOST, '/about')).text, '<h1>about</h1>');
  assert.equal((await get(CONV_HOST, '/about.html')).text, '<h1>about</h1>');
  const slash = await get(CONV_HOST, '/about/');
  assert.equal(slash.status, 301);
  assert.equal(slash.headers.location, '/about');

  const docs = await get(CONV_HOST, '/docs?x=1');
  assert.equal(docs.status, 301);
  assert.equal(docs.headers.location, '/docs/?x=1', 'the query string is kept');
  assert.equal((await get(CONV_HOST, '/docs/')).text, '<h1>docs</h1>');
  assert.equal((await get(CONV_HOST, '/docs/index.html')).text, '<h1>docs</h1>');
  assert.equal((await get(CONV_HOST, '/with%20space')).text, '<h1>spaced</h1>');

  for (const hidden of ['/.secret/key.txt', '/.env', '/.tenantry/index.json', '/_redirects', '/_headers', '/.secret/', '/%2esecret/key.txt']) {
    const r = await get(CONV_HOST, hidden);
    assert.equal(r.status, 404, hidden);
    assert.doesNotMatch(r.text, /secret|TOKEN|"files"/, hidden);
  }
  assert.equal((await get(CONV_HOST, '/../../etc/passwd')).status, 400);
});

test('_redirects: redirects, splats, placeholders, rewrites, shadowing, forced rules, custom 404 rule', async () => {
  const expectRedirect = async (from: string, status: number, location: string) => {
    const r = await get(CONV_HOST, from);
    assert.equal(r.status, status, from);
    assert.equal(r.headers.location, location, from);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
  };
  await expectRedirect('/home', 301, '/');
  await expectRedirect('/home/', 301, '/');
  await expectRedirect('/blog/2024/hello-world', 301, '/news/2024/hello-world');
  await expectRedirect('/news/2024/05', 302, '/blog/05-2024');
  await expectRedirect('/docs/guide', 301, '/somewhere');
  await expectRedirect('/go?ref=mail', 302, 'https://example.com/landing?ref=mail');

  const shadowed = await get(CONV_HOST, '/about');
  assert.equal(shadowed.status, 200, 'an existing page shadows an unforced rule');
  assert.equal((await get(CONV_HOST, '/style.css')).status, 200);

  const rewrite = await get(CONV_HOST, '/forced-css');
  assert.equal(rewrite.status, 200);
  assert.match(rewrite.headers['content-type'] ?? '', /^text\/css/);
  assert.equal(rewrite.text, CSS);
  assert.equal((await get(CONV_HOST, '/pass-through')).text, '<h1>home</h1>');

  const closed = await get(CONV_HOST, '/ecommerce');
  assert.equal(closed.status, 404);
  assert.equal(closed.text, '<h1>store closed</h1>');
});

test('unknown paths get 404.html with status 404', async () => {
  const r = await get(CONV_HOST, '/no/such/page');
  assert.equal(r.status, 404);
  assert.equal(r.text, '<h1>custom 404</h1>');
  assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(r.headers.etag, undefined, 'no validators on an error page');
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
});

test('_headers replace the platform defaults of the same name and add others', async () => {
  const docs = await get(CONV_HOST, '/docs/');
  assert.equal(docs.headers['x-frame-options'], 'DENY');
  assert.equal(docs.headers['x-site'], 'conv');
  const js = await get(CONV_HOST, '/app.3f9a1c2b.js');
  assert.equal(js.headers['cache-control'], 'public, max-age=60');
  const notModified = await get(CONV_HOST, '/app.3f9a1c2b.js', { 'If-None-Match': js.headers.etag! });
  assert.equal(notModified.status, 304);
  assert.equal(notModified.headers['cache-control'], 'public, max-age=60');
});

test('revalidation: If-None-Match and If-Modified-Since answer 304 with no body', async () => {
  const first = await get(CONV_HOST, '/style.css');
  const etag = first.headers.etag!;
  const byTag = await get(CONV_HOST, '/style.css', { 'If-None-Match': etag });
  assert.equal(byTag.status, 304);
  assert.equal(byTag.body.length, 0);
  assert.equal(byTag.headers.etag, etag);
  assert.equal((await get(CONV_HOST, '/style.css', { 'If-None-Match': `"nope", W/${etag}` })).status, 304, 'weak comparison in a list');
  assert.equal((await get(CONV_HOST, '/style.css', { 'If-None-Match': '"nope"' })).status, 200);
  assert.equal((await get(CONV_HOST, '/style.css', { 'If-None-Match': '*' })).status, 304);

  const lastModified = first.headers['last-modified']!;
  assert.equal((await get(CONV_HOST, '/style.css', { 'If-Modified-Since': lastModified })).status, 304);
  assert.equal((await get(CONV_HOST, '/style.css', { 'If-Modified-Since': new Date(MTIME.getTime() + 3600_000).toUTCString() })).status, 304);
  assert.equal((await get(CONV_HOST, '/style.css', { 'If-Modified-Since': new Date(MTIME.getTime() - 3600_000).toUTCString() })).status, 200);
  assert.equal(
    (await get(CONV_HOST, '/style.css', { 'If-None-Match': '"nope"', 'If-Modified-Since': lastModified })).status,
    200,
    'If-None-Match decides when both are sent',
  );
});

test('ranges: 206 for one range, 416 beyond the end, the whole file when If-Range is stale', async () => {
  for (const [file, content] of [['/style.css', Buffer.from(CSS)], ['/big.bin', BIG]] as const) {
    const part = await get(CONV_HOST, file, { Range: 'bytes=10-19' });
    assert.equal(part.status, 206, file);
    assert.equal(part.headers['content-range'], `bytes 10-19/${content.length}`);
    assert.equal(part.headers['content-length'], '10');
    assert.ok(part.body.equals(content.subarray(10, 20)), file);
    const suffix = await get(CONV_HOST, file, { Range: 'bytes=-5' });
    assert.ok(suffix.body.equals(content.subarray(content.length - 5)), file);
    const tooFar = await get(CONV_HOST, file, { Range: `bytes=${content.length}-` });
    assert.equal(tooFar.status, 416, file);
    assert.equal(tooFar.headers['content-range'], `bytes */${content.length}`);
  }
  const full = await get(CONV_HOST, '/big.bin');
  assert.equal(full.headers['accept-ranges'], 'bytes');
  const fresh = await get(CONV_HOST, '/big.bin', { Range: 'bytes=0-3', 'If-Range': full.headers.etag! });
  assert.equal(fresh.status, 206);
  const stale = await get(CONV_HOST, '/big.bin', { Range: 'bytes=0-3', 'If-Range': '"old"' });
  assert.equal(stale.status, 200);
  assert.equal(stale.body.length, BIG.length);
});

test('precompressed copies: made after deploy, br preferred, gzip next, identity otherwise', async () => {
  await p.platform.sites.whenCompressed(CONV);
  const releaseDir = p.platform.sites.get(CONV)!.releaseDir;
  assert.ok(fs.existsSync(path.join(releaseDir, '.tenantry/compressed/style.css.br')));
  assert.ok(fs.existsSync(path.join(releaseDir, '.tenantry/compressed/style.css.gz')));

  const br = await get(CONV_HOST, '/style.css', { 'Accept-Encoding': 'gzip, deflate, br' });
  assert.equal(br.headers['content-encoding'], 'br');
  assert.equal(br.headers.vary, 'Accept-Encoding');
  assert.ok(br.body.length < CSS.length);
  assert.equal(zlib.brotliDecompressSync(br.body).toString(), CSS);

  const gz = await get(CONV_HOST, '/style.css', { 'Accept-Encoding': 'gzip' });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.equal(zlib.gunzipSync(gz.body).toString(), CSS);

  const preferGzip = await get(CONV_HOST, '/style.css', { 'Accept-Encoding': 'br;q=0.5, gzip;q=1' });
  assert.equal(preferGzip.headers['content-encoding'], 'gzip');

  const plain = await get(CONV_HOST, '/style.css');
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.headers.vary, 'Accept-Encoding');
  assert.equal(plain.text, CSS);
  const identityOnly = await get(CONV_HOST, '/style.css', { 'Accept-Encoding': 'identity' });
  assert.equal(identityOnly.headers['content-encoding'], undefined);

  assert.notEqual(br.headers.etag, plain.headers.etag, 'each encoding has its own ETag');
  assert.notEqual(gz.headers.etag, plain.headers.etag);
  const revalidated = await get(CONV_HOST, '/style.css', { 'Accept-Encoding': 'br', 'If-None-Match': br.headers.etag! });
  assert.equal(revalidated.status, 304);
  assert.equal(revalidated.headers.etag, br.headers.etag);

  const shipped = await get(CONV_HOST, '/shipped.js', { 'Accept-Encoding': 'br' });
  assert.equal(shipped.headers['content-encoding'], 'br', 'a shipped .br sibling is used');
  assert.equal(zlib.brotliDecompressSync(shipped.body).toString(), JS);

  const png = await get(CONV_HOST, '/photo.png', { 'Accept-Encoding': 'br, gzip' });
  assert.equal(png.headers['content-encoding'], undefined, 'images are not compressed again');
  assert.equal(png.headers.vary, undefined);

  const ranged = await get(CONV_HOST, '/style.css', { 'Accept-Encoding': 'br', Range: 'bytes=0-4' });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers['content-encoding'], undefined, 'ranges come from the identity bytes');
  assert.equal(ranged.text, CSS.slice(0, 5));
});

test('a restart loads the manifest instead of hashing the release again', async () => {
  await p.platform.sites.whenCompressed(CONV);
  const live = p.platform.sites.get(CONV)!;
  const loaded = loadSiteIndex(live.releaseDir);
  assert.equal(loaded.fromManifest, true);
  assert.equal(loaded.site.manifest.compressed, true);
  assert.equal(loaded.site.files.get('/style.css')!.hash, live.files.get('/style.css')!.hash);
  assert.ok(loaded.site.files.get('/style.css')!.br, 'compressed copies are known after a restart');

  const fresh = new SiteRegistry(p.platform.paths);
  const again = fresh.get(CONV)!;
  assert.equal(again.files.get('/index.html')!.hash, live.files.get('/index.html')!.hash);
});

test('SPA fallback from tenant.json, cleanUrls off, and a rewrite into /api reaching the worker', async () => {
  const SPA = 'st-spa';
  await p.platform.tenants.create({ id: SPA }, 'test');
  await publishSite(p.platform, SPA, {
    'index.html': '<div id="app"></div>',
    'about.html': '<h1>about</h1>',
    'assets/app.js': 'console.log(1)',
    'tenant.json': JSON.stringify({ spa: true, cleanUrls: false }),
    'api/hello.js': "module.exports = (req, res) => res.json({ hello: req.query.name || 'world' });",
    _redirects: '/data/:name  /api/hello?name=:name  200\n/* /index.html 200\n',
  });
  const host = `${SPA}.localhost`;
  const deep = await get(host, '/users/42/settings');
  assert.equal(deep.status, 200);
  assert.equal(deep.text, '<div id="app"></div>');
  assert.equal((await get(host, '/assets/app.js')).text, 'console.log(1)', 'files are still served');
  assert.equal((await get(host, '/about')).text, '<div id="app"></div>', 'cleanUrls: false');
  assert.equal((await get(host, '/about.html')).text, '<h1>about</h1>');
  assert.equal((await get(host, '/tenant.json')).text, '<div id="app"></div>', 'tenant.json is not served');

  const api = await get(host, '/data/static');
  assert.equal(api.status, 200, api.text);
  assert.deepEqual(JSON.parse(api.text), { hello: 'static' });
  const direct = await get(host, '/api/hello?name=x');
  assert.deepEqual(JSON.parse(direct.text), { hello: 'x' }, 'api/ routes shadow the catch-all rule');
});

test('a new release replaces the old one at once, and the old bytes leave the memory cache', async () => {
  const t = 'st-swap';
  await p.platform.tenants.create({ id: t }, 'test');
  await publishSite(p.platform, t, { 'index.html': 'one' });
  const host = `${t}.localhost`;
  assert.equal((await get(host, '/')).text, 'one');
  const oldSite = p.platform.sites.get(t)!;
  assert.ok(oldSite.files.get('/index.html')!.identity.body, 'held in memory after the first request');
  await publishSite(p.platform, t, { 'index.html': 'two' });
  assert.equal((await get(host, '/')).text, 'two');
  assert.equal(oldSite.files.get('/index.html')!.identity.body, undefined);
});

test('a release with public/: only public/ is served; _redirects and 404.html may sit at the root', async () => {
  const t = 'st-public';
  await p.platform.tenants.create({ id: t }, 'test');
  await publishSite(p.platform, t, {
    'public/index.html': 'public home',
    'public/css/site.css': 'p{}',
    'README.md': 'not served',
    '404.html': 'root not found page',
    _redirects: '/start /css/site.css 302\n',
    'tenant.json': '{"cleanUrls": true}',
  });
  const host = `${t}.localhost`;
  assert.equal((await get(host, '/')).text, 'public home');
  assert.equal((await get(host, '/css/site.css')).text, 'p{}');
  const readme = await get(host, '/README.md');
  assert.equal(readme.status, 404);
  assert.equal(readme.text, 'root not found page');
  const start = await get(host, '/start');
  assert.equal(start.status, 302);
  assert.equal(start.headers.location, '/css/site.css');
  assert.equal((await get(host, '/public/index.html')).status, 404);
});
