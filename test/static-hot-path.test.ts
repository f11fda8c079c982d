// The hot path of static serving touches no file metadata: once a release is
// loaded, requests (cached and streamed files, 304s, ranges, compressed copies,
// fallbacks, redirects) make no stat/lstat/fstat call. Counted by wrapping
// those functions of `fs` in this process while an in-process platform serves.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { httpRequest, startTestPlatform, type TestPlatform } from './helpers/harness.js';
import { publishSite } from './helpers/site-release.js';

const TENANT = 'st-hot';
const HOST = `${TENANT}.localhost`;
let p: TestPlatform;

before(async () => {
  p = await startTestPlatform();
  await p.platform.tenants.create({ id: TENANT }, 'test');
  await publishSite(p.platform, TENANT, {
    'index.html': '<h1>hot</h1>',
    'about.html': '<h1>about</h1>',
    'style.css': 'p { margin: 0 }\n'.repeat(500),
    'big.bin': crypto.randomBytes(300 * 1024),
    '404.html': 'gone',
    'docs/index.html': 'docs',
    _redirects: '/old /about 301\n/rewritten /style.css 200\n',
    _headers: '/*\n  X-Hot: yes\n',
  });
  await p.platform.sites.whenCompressed(TENANT);
});

after(async () => {
  await p.cleanup();
});

const STAT_FUNCTIONS = ['stat', 'statSync', 'lstat', 'lstatSync', 'fstat', 'fstatSync', 'statfs', 'statfsSync', 'existsSync', 'exists'] as const;
const PROMISE_STAT_FUNCTIONS = ['stat', 'lstat', 'statfs'] as const;

/** Replaces the metadata calls of `fs` with counting wrappers; returns the count and the undo. */
function countStatCalls(): { calls: string[]; restore: () => void } {
  const calls: string[] = [];
  const undo: (() => void)[] = [];
  const wrap = (target: Record<string, unknown>, name: string, label: string) => {
    const original = target[name];
    if (typeof original !== 'function') return;
    target[name] = function (this: unknown, ...args: unknown[]) {
      calls.push(`${label}(${String(args[0])})`);
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    };
    undo.push(() => {
      target[name] = original;
    });
  };
  for (const name of STAT_FUNCTIONS) wrap(fs as unknown as Record<string, unknown>, name, `fs.${name}`);
  for (const name of PROMISE_STAT_FUNCTIONS) wrap(fs.promises as unknown as Record<string, unknown>, name, `fs.promises.${name}`);
  return { calls, restore: () => undo.forEach((u) => u()) };
}

test('after the first load, requests make no stat, lstat or fstat call', async () => {
  const requests: { path: string; headers?: Record<string, string>; method?: string }[] = [
    { path: '/' },
    { path: '/style.css' },
    { path: '/style.css', headers: { 'Accept-Encoding': 'gzip, deflate, br' } },
    { path: '/style.css', headers: { 'Accept-Encoding': 'gzip' } },
    { path: '/big.bin' },
    { path: '/big.bin', headers: { Range: 'bytes=100-2000' } },
    { path: '/style.css', headers: { Range: 'bytes=0-9' } },
    { path: '/about' },
    { path: '/docs' },
    { path: '/docs/' },
    { path: '/old' },
    { path: '/rewritten' },
    { path: '/missing' },
    { path: '/', method: 'HEAD' },
  ];
  // First pass: loads the site and fills the memory cache (allowed to read the disk).
  const etags = new Map<string, string>();
  for (const r of requests) {
    const res = await httpRequest(p.url, { host: HOST, path: r.path, headers: r.headers, method: r.method });
    if (res.headers.etag) etags.set(r.path, String(res.headers.etag));
  }

  const counter = countStatCalls();
  try {
    for (let round = 0; round < 3; round++) {
      for (const r of requests) {
        const res = await httpRequest(p.url, { host: HOST, path: r.path, headers: r.headers, method: r.method });
        assert.ok(res.status < 500, `${r.path}: ${res.status}`);
      }
      const revalidated = await httpRequest(p.url, { host: HOST, path: '/style.css', headers: { 'If-None-Match': etags.get('/style.css')! } });
      assert.equal(revalidated.status, 304);
      const ims = await httpRequest(p.url, { host: HOST, path: '/', headers: { 'If-Modified-Since': new Date().toUTCString() } });
      assert.equal(ims.status, 304);
    }
  } finally {
    counter.restore();
  }
  assert.deepEqual(counter.calls, [], 'no metadata calls on the request path');
});

test('the wrapper does see stat calls (the counting is real)', () => {
  const counter = countStatCalls();
  try {
    fs.statSync(p.dataDir);
  } finally {
    counter.restore();
  }
  assert.equal(counter.calls.length, 1);
});
