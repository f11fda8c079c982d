// Streams a tar or tar.gz into a fresh folder, judging every entry before
// anything is written for it (archive-rules.ts). Decompression is ours, not
// tar's, so the unpacked bytes are counted as they stream: a gzip bomb stops
// at the cap, not after it has filled the disk. Every file is fsynced as it is
// written and every folder once all are, so an extracted tree is on disk.
// Each file's SHA-256 is taken from the bytes in hand as they are written
// (the content store's key; nothing reads the tree again for it).
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { ArchiveJudge, ArchiveRuleError, formatMiB, type ArchiveLimits } from './archive-rules.js';
import { findBadLink } from './archive-links.js';
import { LAYOUT_FOLDERS, PLATFORM_RESERVED_TOP } from './reserved-names.js';
import { fsyncFile, fsyncFolders, foldersBetween } from '../disk/durable.js';

export interface ExtractResult {
  /** The folder that becomes the release (the tree, or its single top folder); all of it fsynced. */
  readonly releaseRoot: string;
  readonly files: number;
  readonly bytes: number;
  /** SHA-256 (hex) of every regular file, by its path relative to `releaseRoot`. */
  readonly contents: ReadonlyMap<string, string>;
}


/** fs errors that mean "this archive's names do not fit together", not a server fault. */
const ENTRY_FS_ERRORS = new Set(['ENAMETOOLONG', 'EEXIST', 'ENOTDIR', 'EISDIR', 'ELOOP', 'EINVAL']);

const notAnArchive = (detail: string) => new ArchiveRuleError('not a valid tar or tar.gz archive', undefined, detail);

/**
 * Extracts `input` into `treeDir` (which must not exist yet). Throws
 * ArchiveRuleError for every archive problem; the caller removes `treeDir`
 * (and whatever holds it) on any throw.
 */
export async function extractArchive(input: Readable | NodeJS.ReadableStream, treeDir: string, limits: ArchiveLimits): Promise<ExtractResult> {
  await fsp.mkdir(treeDir, { recursive: false, mode: 0o755 });
  const source = input instanceof Readable ? input : new Readable().wrap(input);
  const judge = new ArchiveJudge(limits);
  // Headers, padding and PAX records ride on top of the file bytes.
  const maxStreamBytes = limits.maxBytes + limits.maxEntries * 2048 + 16 * 1024 * 1024;

  let failure: Error | undefined;
  let signalFailure!: () => void;
  const failed = new Promise<void>((resolve) => (signalFailure = resolve));
  const fail = (err: unknown) => {
    if (failure) return;
    failure = err instanceof Error ? err : new Error(String(err));
    signalFailure();
  };

  const parser = new Parser({ strict: true, zstd: false, brotli: false, maxMetaEntrySize: 64 * 1024 });
  // After the end-of-archive blocks tar only buffers what it is given; the
  // rest is drained and counted here instead (it may be a bomb's payload).
  let sawEnd = false;
  parser.on('eof', () => (sawEnd = true));
  parser.on('error', (err: Error) => fail(err instanceof ArchiveRuleError ? err : notAnArchive(err.message)));
  parser.on('ignoredEntry', (entry: ReadEntry) => {
    fail(new ArchiveRuleError('unsupported entry type', entry.path, entry.type));
  });
  let chain: Promise<void> = Promise.resolve();
  const open = new Set<ReadEntry>();
  const writer: TreeWriter = { treeDir, judge, made: new Set([treeDir]), writes: new BackgroundWrites(16, fail), contents: new Map() };
  parser.on('entry', (entry: ReadEntry) => {
    open.add(entry);
    entry.once('end', () => open.delete(entry));
    chain = chain
      .then(() => (failure ? undefined : writeEntry(entry, writer)))
      .catch(fail)
      .finally(() => {
        // A refused or unfinished entry is drained so the parser never waits on it.
        if (!entry.emittedEnd) entry.resume();
      });
  });

  const stream = await decompressed(source, fail);
  // Errors that arrive after reading stopped must not go unhandled; while
  // reading, the loop below sees them itself.
  stream.on('error', () => {});
  source.on('error', () => {});
  let streamed = 0;
  let sawData = false;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (failure) break;
      if (!sawData && chunk.length > 0) {
        sawData = true;
        // tar's parser would unpack a second gzip layer on its own, past our counter.
        if (chunk[0] === 0x1f && (chunk.length < 2 || chunk[1] === 0x8b)) {
          fail(notAnArchive('compressed twice'));
          break;
        }
        // "PK\x03\x04" (or an empty zip's "PK\x05\x06"): the most common wrong archive, said by name.
        if (chunk.length >= 4 && chunk[0] === 0x50 && chunk[1] === 0x4b && (chunk[2] === 3 || chunk[2] === 5) && chunk[3] === chunk[2] + 1) {
          fail(new ArchiveRuleError('a zip archive, not a tar or tar.gz', undefined, 'pack the folder with "tar czf site.tar.gz -C site ." or let "tenantry deploy ./site" send it'));
          break;
        }
      }
      streamed += chunk.length;
      if (streamed > maxStreamBytes) {
        fail(new ArchiveRuleError(`unpacked size over the cap of ${formatMiB(limits.maxBytes)}`, undefined, 'the decompressed stream is larger than the cap allows'));
        break;
      }
      if (sawEnd) continue;
      if (!parser.write(chunk)) await Promise.race([once(parser, 'drain').catch(() => {}), failed]);
    }
  } catch (err) {
    fail(err);
  }
  if (!failure && !sawData) fail(new ArchiveRuleError('the archive is empty', undefined));
  if (!failure) {
    const ended = once(parser, 'end').catch(() => {});
    parser.end();
    await Promise.race([ended, failed]);
  }
  if (failure) {
    stream.destroy();
    source.destroy();
    parser.abort(failure);
    // Entries waiting for bytes that will never come are ended, so the chain settles.
    for (const e of open) e.end();
  }
  await chain.catch(() => {});
  // Nothing may still be writing when the caller moves or removes the tree.
  await writer.writes.settle();
  if (failure) throw failure;
  // Files were fsynced as they were written; now the names, deepest folder first.
  await fsyncFolders(foldersBetween(treeDir, writer.made));

  const { files, bytes } = judge.stats;
  if (files === 0) throw new ArchiveRuleError('the archive holds no files', undefined);

  const { root, prefix } = await releaseRootOf(treeDir);
  for (const name of await fsp.readdir(root)) {
    if (PLATFORM_RESERVED_TOP.has(name)) throw new ArchiveRuleError('names reserved for the platform are not allowed at the top of a release', prefix ? `${prefix}/${name}` : name);
  }
  const links = judge
    .symlinks()
    .filter((l) => prefix === '' || l.startsWith(prefix + '/'))
    .map((l) => (prefix === '' ? l : l.slice(prefix.length + 1)));
  const bad = findBadLink(root, links);
  if (bad) {
    const rule = bad.reason === 'points to a folder' ? 'symbolic links may point to files only' : 'symbolic links must stay inside the release';
    throw new ArchiveRuleError(rule, prefix ? `${prefix}/${bad.path}` : bad.path, bad.reason);
  }
  return { releaseRoot: root, files, bytes, contents: underRoot(writer.contents, prefix) };
}

/** The tree's file hashes keyed by their path in the release root (the single top folder dropped). */
function underRoot(contents: ReadonlyMap<string, string>, prefix: string): Map<string, string> {
  if (prefix === '') return new Map(contents);
  const out = new Map<string, string>();
  for (const [rel, sha256] of contents) if (rel.startsWith(prefix + '/')) out.set(rel.slice(prefix.length + 1), sha256);
  return out;
}

/** The input as a stream of tar bytes: gunzipped when it starts with the gzip magic. */
async function decompressed(source: Readable, fail: (err: unknown) => void): Promise<Readable> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  let head = Buffer.alloc(0);
  let ended = false;
  while (head.length < 2) {
    const n = await it.next().catch((err: unknown) => {
      fail(err);
      return { done: true, value: undefined } as IteratorReturnResult<undefined>;
    });
    if (n.done) {
      ended = true;
      break;
    }
    head = Buffer.concat([head, Buffer.isBuffer(n.value) ? n.value : Buffer.from(n.value)]);
  }
  const whole: Readable = Readable.from(
    (async function* () {
      if (head.length) yield head;
      if (ended) return;
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        yield Buffer.isBuffer(n.value) ? n.value : Buffer.from(n.value);
      }
    })(),
    { objectMode: false },
  );
  whole.on('error', () => {});
  if (!(head[0] === 0x1f && head[1] === 0x8b)) return whole;
  const gunzip = zlib.createGunzip();
  whole.on('error', (err) => gunzip.destroy(err));
  gunzip.on('error', () => {});
  whole.pipe(gunzip);
  // zlib errors (truncated or corrupt data) are the archive's fault; others are not.
  const tagged = new Readable({ read() {} });
  gunzip.on('data', (c: Buffer) => {
    if (!tagged.push(c)) gunzip.pause();
  });
  tagged._read = () => gunzip.resume();
  gunzip.on('end', () => tagged.push(null));
  gunzip.on('error', (err: NodeJS.ErrnoException) => {
    tagged.destroy(typeof err.code === 'string' && err.code.startsWith('Z_') ? notAnArchive(`gzip: ${err.message}`) : err);
  });
  tagged.on('close', () => {
    if (!gunzip.destroyed) gunzip.destroy();
    if (!whole.destroyed) whole.destroy();
  });
  return tagged;
}

/** Folders already made in one tree, so each is created once. */
type MadeDirs = Set<string>;

/**
 * Files up to this size are read whole and written in the background. File
 * times are left at the deploy's time (one system call less per file; it is
 * also what Last-Modified should say for a newly published file).
 */
const SMALL_FILE_BYTES = 256 * 1024;

/**
 * Small files are written a few at a time while the next entries are read,
 * so a site of many small files is not one disk round trip per step.
 * Failures go to `onError`; `settle()` waits for everything started.
 */
class BackgroundWrites {
  private readonly pending = new Set<Promise<void>>();
  constructor(
    private readonly max: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  async add(job: () => Promise<void>): Promise<void> {
    while (this.pending.size >= this.max) await Promise.race(this.pending);
    const p: Promise<void> = job()
      .catch(this.onError)
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }
}

interface TreeWriter {
  readonly treeDir: string;
  readonly judge: ArchiveJudge;
  readonly made: MadeDirs;
  readonly writes: BackgroundWrites;
  /** SHA-256 (hex) of each regular file written, by its path in the tree. */
  readonly contents: Map<string, string>;
}

function entryFsError(err: unknown, name: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  return code && ENTRY_FS_ERRORS.has(code) ? new ArchiveRuleError('the entry cannot be written', name, code) : err;
}

async function ensureDir(dir: string, made: MadeDirs): Promise<void> {
  if (made.has(dir)) return;
  await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
  made.add(dir);
}

async function writeEntry(entry: ReadEntry, w: TreeWriter): Promise<void> {
  const plan = w.judge.check({ path: entry.path, type: entry.type, linkpath: entry.linkpath, size: entry.size, mode: entry.mode });
  if (plan.kind === 'skip') return;
  const abs = path.join(w.treeDir, plan.path);
  try {
    switch (plan.kind) {
      case 'directory':
        await ensureDir(abs, w.made);
        return;
      case 'symlink':
        await ensureDir(path.dirname(abs), w.made);
        await fsp.symlink(plan.target, abs);
        return;
      case 'hardlink': {
        // Materialised as a copy: a release never shares an inode with anything.
        await w.writes.settle();
        const from = path.join(w.treeDir, plan.target);
        w.judge.addBytes((await fsp.lstat(from)).size, entry.path);
        await ensureDir(path.dirname(abs), w.made);
        await fsp.copyFile(from, abs, fs.constants.COPYFILE_EXCL);
        await fsyncFile(abs);
        const sha256 = w.contents.get(plan.target);
        if (sha256 !== undefined) w.contents.set(plan.path, sha256);
        return;
      }
      case 'file': {
        await ensureDir(path.dirname(abs), w.made);
        if (plan.size <= SMALL_FILE_BYTES) {
          const data = await readWhole(entry, plan.size);
          w.contents.set(plan.path, crypto.createHash('sha256').update(data).digest('hex'));
          await w.writes.add(async () => {
            try {
              // 'wx': O_EXCL, so an existing name (or a planted link) is never followed.
              const fh = await fsp.open(abs, 'wx', plan.mode);
              try {
                await fh.writeFile(data);
                // On the thread pool, beside the next entries' writes: the journal commits them in groups.
                await fh.sync();
              } finally {
                await fh.close();
              }
            } catch (err) {
              throw entryFsError(err, entry.path);
            }
          });
          return;
        }
        const fh = await fsp.open(abs, 'wx', plan.mode);
        try {
          let written = 0;
          const hash = crypto.createHash('sha256');
          for await (const chunk of entry as AsyncIterable<Buffer>) {
            written += chunk.length;
            if (written > plan.size) throw new ArchiveRuleError('entry longer than its header says', entry.path);
            hash.update(chunk);
            await fh.write(chunk);
          }
          if (written !== plan.size) throw notAnArchive(`entry ${JSON.stringify(entry.path)} is truncated`);
          w.contents.set(plan.path, hash.digest('hex'));
          await fh.sync();
        } finally {
          await fh.close();
        }
        return;
      }
    }
  } catch (err) {
    throw entryFsError(err, entry.path);
  }
}

/** A small entry's bytes, exactly as many as its header says. */
async function readWhole(entry: ReadEntry, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  for await (const chunk of entry as AsyncIterable<Buffer>) {
    got += chunk.length;
    if (got > size) throw new ArchiveRuleError('entry longer than its header says', entry.path);
    chunks.push(chunk);
  }
  if (got !== size) throw notAnArchive(`entry ${JSON.stringify(entry.path)} is truncated`);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, got);
}

/**
 * When everything sits under one top folder (git archive --prefix, GitHub
 * tarballs), that folder is the release. `public/` or `api/` alone are kept.
 */
async function releaseRootOf(treeDir: string): Promise<{ root: string; prefix: string }> {
  const top = await fsp.readdir(treeDir, { withFileTypes: true });
  const only = top.length === 1 ? top[0] : undefined;
  if (only && only.isDirectory() && !LAYOUT_FOLDERS.has(only.name)) {
    return { root: path.join(treeDir, only.name), prefix: only.name };
  }
  return { root: treeDir, prefix: '' };
}
