// The content store on the local disk: `<data>/tenants/<id>/store/<ab>/<sha256>`,
// on the same file system as the tenant's releases. A release holds its files
// as hard links to these objects, so an unchanged file costs one link(2) per
// deploy and no bytes; which objects are still in use is told by the file
// system itself: an object whose only name is the store's (link count 1)
// belongs to no release. Per tenant, because a file shared by two tenants'
// releases could carry only one tenant's group (releases are sealed to it).
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { AppError } from '../errors.js';
import type { DataPaths } from '../paths.js';
import { fsyncFolder } from '../disk/durable.js';
import { SHA256_HEX, type ContentStore, type Placement, type StoredObject } from './content-store.js';
import { makeYielder } from './take-turns.js';

const MiB = 1024 * 1024;

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

export class LocalContentStore implements ContentStore {
  constructor(private readonly paths: DataPaths) {}

  private objectPath(tenantId: string, sha256: string): string {
    // Names only ever come from checked hashes: never a path a client chose.
    if (!SHA256_HEX.test(sha256)) throw new Error(`not a SHA-256: ${JSON.stringify(sha256)}`);
    return path.join(this.paths.contentStore(tenantId), sha256.slice(0, 2), sha256);
  }

  /** Uploads wait in the tenant's staging folder (same file system, emptied at every start). */
  private async incomingDir(tenantId: string): Promise<string> {
    const dir = path.join(this.paths.staging(tenantId), 'incoming');
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  private async shardFor(tenantId: string, sha256: string): Promise<string> {
    const root = this.paths.contentStore(tenantId);
    await fsp.mkdir(root, { recursive: true, mode: 0o700 });
    const shard = path.join(root, sha256.slice(0, 2));
    await fsp.mkdir(shard, { recursive: true, mode: 0o700 });
    return shard;
  }

  async lookup(tenantId: string, hashes: Iterable<string>): Promise<Map<string, StoredObject>> {
    const found = new Map<string, StoredObject>();
    const pause = makeYielder();
    for (const h of new Set(hashes)) {
      const st = fs.lstatSync(this.objectPath(tenantId, h), { throwIfNoEntry: false });
      if (st?.isFile()) found.set(h, { size: st.size, mtimeMs: Math.floor(st.mtimeMs) });
      await pause();
    }
    return found;
  }

  async put(tenantId: string, sha256: string, body: Readable, maxBytes: number): Promise<StoredObject> {
    const target = this.objectPath(tenantId, sha256);
    const tmp = path.join(await this.incomingDir(tenantId), `${sha256.slice(0, 16)}-${crypto.randomBytes(6).toString('hex')}`);
    const fh = await fsp.open(tmp, 'wx', 0o640);
    let size = 0;
    try {
      const hash = crypto.createHash('sha256');
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > maxBytes) {
            body.destroy();
            throw new AppError('payload_too_large', `The file is larger than the ${formatBytes(maxBytes)} this deploy still allows (per-file cap and the tenant's archiveMB).`);
          }
          hash.update(chunk);
          await fh.write(chunk);
        }
      } catch (err) {
        if (err instanceof AppError) throw err;
        const code = errnoOf(err);
        if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || body.destroyed) {
          throw new AppError('invalid_request', 'The upload was interrupted before the file was complete.');
        }
        throw err;
      }
      const actual = hash.digest('hex');
      if (actual !== sha256) {
        throw new AppError('hash_mismatch', `The uploaded bytes (${size} B) have the SHA-256 ${actual}, not ${sha256} as the URL says; nothing was stored.`, { expected: sha256, actual });
      }
      // The content is on disk before any name (the store's, then a release's) can point at it.
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => {});
      await fsp.rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    try {
      await this.shardFor(tenantId, sha256);
      // link, not rename: an object already there (shared with releases) is never replaced.
      await fsp.link(tmp, target).catch((err: unknown) => {
        if (errnoOf(err) !== 'EEXIST') throw err;
      });
    } finally {
      await fsp.rm(tmp, { force: true });
    }
    const st = await fsp.lstat(target);
    return { size: st.size, mtimeMs: Math.floor(st.mtimeMs) };
  }

  async adopt(tenantId: string, sha256: string, file: string): Promise<void> {
    const target = this.objectPath(tenantId, sha256);
    await this.shardFor(tenantId, sha256);
    await fsp.link(file, target).catch((err: unknown) => {
      if (errnoOf(err) !== 'EEXIST') throw err;
    });
  }

  async placeAll(tenantId: string, placements: Iterable<Placement>): Promise<void> {
    const pause = makeYielder();
    for (const { sha256, dest } of placements) {
      fs.linkSync(this.objectPath(tenantId, sha256), dest);
      await pause();
    }
  }

  async sweep(tenantId: string, keep: (sha256: string) => boolean): Promise<{ objects: number; bytes: number }> {
    const root = this.paths.contentStore(tenantId);
    let objects = 0;
    let bytes = 0;
    let shards: string[];
    try {
      shards = await fsp.readdir(root);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return { objects, bytes };
      throw err;
    }
    const pause = makeYielder();
    for (const shard of shards) {
      const dir = path.join(root, shard);
      let removedHere = false;
      let names: string[];
      try {
        names = fs.readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        await pause();
        // From the check to the removal nothing else runs (all synchronous): a deploy that pins it meanwhile is seen.
        if (!SHA256_HEX.test(name) || keep(name)) continue;
        const file = path.join(dir, name);
        const st = fs.lstatSync(file, { throwIfNoEntry: false });
        // Link count 1: the store's own name is the last one; no release holds this content.
        if (!st?.isFile() || st.nlink > 1) continue;
        fs.rmSync(file, { force: true });
        objects++;
        bytes += st.size;
        removedHere = true;
      }
      if (removedHere) await fsyncFolder(dir).catch(() => {});
    }
    return { objects, bytes };
  }
}

function formatBytes(n: number): string {
  return n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${n} B`;
}
