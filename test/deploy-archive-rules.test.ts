// The archive rules as pure functions: names, links, caps, in tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ArchiveJudge, ArchiveRuleError, normalizeEntryPath, symlinkStaysInside } from '../server/deploy/archive-rules.js';
import { resolveConfined } from '../server/deploy/archive-links.js';
import { tempDir } from './helpers/harness.js';

test('entry names: normalised, or refused with the rule', () => {
  const ok: [string, string][] = [
    ['public/index.html', 'public/index.html'],
    ['./public//a.css', 'public/a.css'],
    ['site/', 'site'],
    ['./', ''],
    ['a/./b', 'a/b'],
    ['we..ird/..name', 'we..ird/..name'],
  ];
  for (const [raw, want] of ok) assert.equal(normalizeEntryPath(raw), want, raw);
  const bad: [string, RegExp][] = [
    ['../x', /"\.\."/],
    ['a/../../x', /"\.\."/],
    ['a/..', /"\.\."/],
    ['/etc/passwd', /absolute/],
    ['//x', /absolute/],
  ];
  for (const [raw, rule] of bad) assert.throws(() => normalizeEntryPath(raw), (e: unknown) => e instanceof ArchiveRuleError && rule.test(e.message), raw);
});

test('symlink targets by name', () => {
  const cases: [string, string, boolean][] = [
    ['public/a', 'b.html', true],
    ['public/a', '../api/x.js', true],
    ['public/a', '../../x', false],
    ['a', '..', false],
    ['a', '/etc/passwd', false],
    ['d/e/f', '../../g', true],
    ['d/e/f', '../../../g', false],
  ];
  for (const [at, target, inside] of cases) assert.equal(symlinkStaysInside(at, target), inside, `${at} -> ${target}`);
});

test('the judge: caps, duplicates, things under files and links, hard links', () => {
  const judge = () => new ArchiveJudge({ maxBytes: 100, maxFileBytes: 60, maxEntries: 4 });
  const refuses = (fn: () => unknown, rule: RegExp) => assert.throws(fn, (e: unknown) => e instanceof ArchiveRuleError && rule.test(e.rule));

  let j = judge();
  j.check({ path: 'a', type: 'File', size: 50 });
  refuses(() => j.check({ path: 'b', type: 'File', size: 61 }), /per-file cap/);
  j = judge();
  j.check({ path: 'a', type: 'File', size: 60 });
  refuses(() => j.check({ path: 'b', type: 'File', size: 41 }), /unpacked size/);
  j = judge();
  for (const n of ['a', 'b', 'c', 'd']) j.check({ path: n, type: 'File', size: 0 });
  refuses(() => j.check({ path: 'e', type: 'File', size: 0 }), /too many files/);
  j = judge();
  j.check({ path: 'a', type: 'File', size: 1 });
  refuses(() => j.check({ path: 'a', type: 'File', size: 1 }), /duplicate/);
  refuses(() => j.check({ path: 'a/b', type: 'File', size: 1 }), /under a file/);
  j = judge();
  j.check({ path: 'l', type: 'SymbolicLink', linkpath: 'x', size: 0 });
  refuses(() => j.check({ path: 'l/b', type: 'File', size: 1 }), /through a symbolic link/);
  j = judge();
  j.check({ path: 'f', type: 'File', size: 1 });
  assert.deepEqual(j.check({ path: 'g', type: 'Link', linkpath: 'f', size: 0 }), { kind: 'hardlink', path: 'g', target: 'f' });
  refuses(() => j.check({ path: 'h', type: 'Link', linkpath: 'nope', size: 0 }), /hard links/);
  j = judge();
  for (const type of ['CharacterDevice', 'BlockDevice', 'FIFO']) refuses(() => j.check({ path: 'x', type, size: 0 }), /device/);
  assert.deepEqual(judge().check({ path: './', type: 'Directory', size: 0 }), { kind: 'skip' });
  assert.equal((judge().check({ path: 'run.sh', type: 'File', size: 1, mode: 0o4777 }) as { mode: number }).mode, 0o755, 'no setuid, no group/other write');
});

test('links resolved on disk never leave the root', () => {
  const root = tempDir('tenantry-dp-links-');
  try {
    fs.mkdirSync(path.join(root, 'd'));
    fs.writeFileSync(path.join(root, 'file'), 'x');
    fs.symlinkSync('..', path.join(root, 'd/up'));
    fs.symlinkSync('d/up/../..', path.join(root, 'a'));
    fs.symlinkSync('../file', path.join(root, 'd/ok'));
    fs.symlinkSync('loop2', path.join(root, 'loop1'));
    fs.symlinkSync('loop1', path.join(root, 'loop2'));
    assert.equal(resolveConfined(root, 'd/ok'), 'file');
    assert.equal(resolveConfined(root, 'd/up'), '');
    assert.equal(resolveConfined(root, 'a'), undefined, 'escapes through d/up');
    assert.equal(resolveConfined(root, 'loop1'), undefined, 'loops are refused');
    assert.equal(resolveConfined(root, 'd/missing/x'), 'd/missing/x');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("unpacking takes each file's SHA-256 on the way, keyed by its path in the release root", async () => {
  const { extractArchive } = await import('../server/deploy/extract-archive.js');
  const { tarGz } = await import('./helpers/deploy-archives.js');
  const crypto = await import('node:crypto');
  const { Readable } = await import('node:stream');
  const sha = (s: string | Buffer) => crypto.createHash('sha256').update(s).digest('hex');
  const dir = tempDir('tenantry-extract-hashes-');
  // One top folder (as `git archive --prefix` makes): it becomes the release root. A large file streams;
  // a hard link is materialised as a copy and has its target's hash; a symlink is not a file.
  const big = Buffer.alloc(3 * 1024 * 1024, 7);
  const archive = tarGz([
    { name: 'site/', type: 'directory' },
    { name: 'site/index.html', body: '<h1>hi</h1>' },
    { name: 'site/big.bin', body: big.toString('latin1') },
    { name: 'site/copy.html', type: 'hardlink', linkname: 'site/index.html' },
    { name: 'site/link.html', type: 'symlink', linkname: 'index.html' },
  ]);
  const out = await extractArchive(Readable.from([archive]), path.join(dir, 'tree'), { maxBytes: 64 << 20, maxFileBytes: 64 << 20, maxEntries: 100 });
  assert.equal(out.releaseRoot, path.join(dir, 'tree', 'site'));
  assert.deepEqual(Object.fromEntries(out.contents), {
    'index.html': sha('<h1>hi</h1>'),
    'big.bin': sha(fs.readFileSync(path.join(out.releaseRoot, 'big.bin'))),
    'copy.html': sha('<h1>hi</h1>'),
  });
  assert.equal(sha(fs.readFileSync(path.join(out.releaseRoot, 'big.bin'))), sha(big), 'the streamed file is written whole');
});
