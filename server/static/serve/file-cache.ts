// Small files' bytes held in memory, shared by all tenants, bounded by bytes.
// Eviction is CLOCK (second chance): a hit only sets a flag on the variant,
// so the hot path does no map lookup or reordering. Reads use the size from
// the release index (open + read + close, no stat); concurrent misses of one
// file share a single read.
import fs from 'node:fs';
import type { FileVariant } from '../index/site-index.js';

export interface FileCacheOptions {
  /** Total bytes held across tenants. */
  maxBytes: number;
  /** Larger files are streamed from disk on every request. */
  maxFileBytes: number;
}

export const DEFAULT_FILE_CACHE: FileCacheOptions = { maxBytes: 64 * 1024 * 1024, maxFileBytes: 64 * 1024 };

export class FileCache {
  /** Insertion order is the clock hand's order. */
  private readonly held = new Set<FileVariant>();
  private bytes = 0;

  constructor(readonly options: FileCacheOptions = DEFAULT_FILE_CACHE) {}

  get size(): number {
    return this.bytes;
  }

  get count(): number {
    return this.held.size;
  }

  /** Whether this variant is small enough to be held. */
  fits(v: FileVariant): boolean {
    return v.size <= this.options.maxFileBytes;
  }

  /** Reads a small variant into the cache (or waits for the read in flight) and hands its bytes over. */
  load(v: FileVariant, done: (err: Error | null, body?: Buffer) => void): void {
    if (v.body !== undefined) {
      v.referenced = true;
      done(null, v.body);
      return;
    }
    if (v.waiters) {
      v.waiters.push(done);
      return;
    }
    v.waiters = [done];
    readWhole(v.absPath, v.size, (err, body) => {
      const waiters = v.waiters ?? [];
      v.waiters = undefined;
      if (!err && body) this.admit(v, body);
      for (const w of waiters) w(err, body);
    });
  }

  private admit(v: FileVariant, body: Buffer): void {
    if (body.length > this.options.maxFileBytes || body.length > this.options.maxBytes) return;
    while (this.bytes + body.length > this.options.maxBytes && this.held.size > 0) this.evictOne();
    v.body = body;
    v.referenced = false;
    this.held.add(v);
    this.bytes += body.length;
  }

  private evictOne(): void {
    for (const v of this.held) {
      this.held.delete(v);
      if (v.referenced) {
        v.referenced = false;
        this.held.add(v);
        continue;
      }
      this.bytes -= v.body?.length ?? 0;
      v.body = undefined;
      return;
    }
  }

  /** Drops a variant's bytes (its release is no longer live). */
  drop(v: FileVariant): void {
    if (!this.held.delete(v)) return;
    this.bytes -= v.body?.length ?? 0;
    v.body = undefined;
  }
}

/** open + read(size) + close; the size comes from the index, so no stat is needed. */
export function readWhole(file: string, size: number, done: (err: Error | null, body?: Buffer) => void): void {
  fs.open(file, 'r', (err, fd) => {
    if (err) return done(err);
    const buf = Buffer.allocUnsafe(size);
    const finish = (e: Error | null) => fs.close(fd, () => (e ? done(e) : done(null, buf)));
    const readFrom = (offset: number) => {
      if (offset >= size) return finish(null);
      fs.read(fd, buf, offset, size - offset, offset, (e, n) => {
        if (e) return finish(e);
        if (n === 0) return finish(new Error(`${file} is shorter than its index says`));
        readFrom(offset + n);
      });
    };
    readFrom(0);
  });
}
