// The memory cache of small files: bounded by bytes across tenants, large
// files never held, recently used files kept over unused ones, one read for
// concurrent misses, and a release's bytes dropped when it stops being live.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './helpers/harness.js';
import { FileCache } from '../server/static/serve/file-cache.js';
import { makeVariant, type FileVariant } from '../server/static/index/site-index.js';

function variants(dir: string, sizes: number[]): FileVariant[] {
  return sizes.map((size, i) => {
    const file = path.join(dir, `f${i}`);
    fs.writeFileSync(file, Buffer.alloc(size, i));
    return makeVariant('identity', file, size, `h${i}`);
  });
}

function load(cache: FileCache, v: FileVariant): Promise<Buffer> {
  return new Promise((resolve, reject) => cache.load(v, (err, body) => (err || !body ? reject(err) : resolve(body))));
}

test('the cache holds at most its byte budget, and never files above the size limit', async () => {
  const dir = tempDir('tenantry-cache-');
  try {
    const cache = new FileCache({ maxBytes: 1000, maxFileBytes: 400 });
    const vs = variants(dir, [300, 300, 300, 300, 300, 500]);
    for (const v of vs.slice(0, 5)) {
      const body = await load(cache, v);
      assert.equal(body.length, 300);
      assert.ok(cache.size <= 1000, `held ${cache.size} bytes`);
    }
    assert.equal(cache.count, 3);
    assert.equal(cache.fits(vs[5]!), false, 'a 500-byte file is over the 400-byte limit');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('recently used files survive eviction (second chance); dropped files free their bytes', async () => {
  const dir = tempDir('tenantry-cache-');
  try {
    const cache = new FileCache({ maxBytes: 900, maxFileBytes: 400 });
    const [a, b, c, d] = variants(dir, [300, 300, 300, 300]) as [FileVariant, FileVariant, FileVariant, FileVariant];
    await load(cache, a);
    await load(cache, b);
    await load(cache, c);
    await load(cache, a); // a hit: a gets its second chance
    await load(cache, d); // must evict one: b (oldest unused), not a
    assert.ok(a.body, 'the recently used file is kept');
    assert.equal(b.body, undefined, 'the oldest unused file went');
    assert.ok(d.body);
    cache.drop(a);
    assert.equal(a.body, undefined);
    assert.equal(cache.size, 600);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('concurrent misses of one file share one read', async () => {
  const dir = tempDir('tenantry-cache-');
  try {
    const cache = new FileCache({ maxBytes: 10_000, maxFileBytes: 5_000 });
    const [v] = variants(dir, [4_000]) as [FileVariant];
    const opens: string[] = [];
    const originalOpen = fs.open;
    (fs as { open: unknown }).open = (...args: unknown[]) => {
      opens.push(String(args[0]));
      return (originalOpen as (...a: unknown[]) => void)(...args);
    };
    let bodies: Buffer[];
    try {
      bodies = await Promise.all([load(cache, v), load(cache, v), load(cache, v)]);
    } finally {
      (fs as { open: unknown }).open = originalOpen;
    }
    assert.equal(opens.length, 1);
    assert.ok(bodies.every((b) => b === bodies[0]));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
