// Writes a tar.gz entry by entry, from files that may change while they are
// read (a tenant's data folder): a file's size is taken when it is opened and
// exactly that many bytes are written, padded with zeros if it shrank, cut if
// it grew, the way GNU tar does ("file changed as we read it"). tar's own Pack
// aborts the whole archive on such a file, or on one that vanishes.
// Headers are encoded by the tar package (ustar, PAX for long names).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import zlib from 'node:zlib';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { Header, Pax, type HeaderData } from 'tar';

const BLOCK = 512;
const READ_CHUNK = 1 << 20;

export type FileOutcome = 'copied' | 'changed' | 'gone';

export class TarWriter {
  private readonly gzip = zlib.createGzip({ level: 6 });
  private failure: Error | undefined;
  readonly done: Promise<void>;
  /** Uncompressed bytes written, headers included. */
  bytes = 0;

  /** `out`: a file stream; the writer is done when it has closed (its descriptor too). */
  constructor(private readonly out: Writable) {
    this.gzip.pipe(out);
    this.done = new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        this.failure ??= err;
        reject(err);
      };
      this.gzip.on('error', fail);
      out.on('error', fail);
      out.on('close', () => (this.failure ? reject(this.failure) : resolve()));
    });
    this.done.catch(() => {});
  }

  private async push(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    this.bytes += chunk.length;
    if (!this.gzip.write(chunk)) await Promise.race([once(this.gzip, 'drain'), this.done]);
  }

  private async header(data: HeaderData): Promise<void> {
    const h = new Header(data);
    // encode() answers true when a field does not fit ustar: a PAX record carries it first.
    if (h.encode()) await this.push(new Pax({ path: data.path, linkpath: data.linkpath, size: data.size, mtime: data.mtime }).encode());
    await this.push(h.block!);
  }

  async directory(name: string, st: fs.Stats): Promise<void> {
    await this.header({ path: name.endsWith('/') ? name : `${name}/`, type: 'Directory', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime: st.mtime });
  }

  async symlink(name: string, target: string, st: fs.Stats): Promise<void> {
    await this.header({ path: name, type: 'SymbolicLink', linkpath: target, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime: st.mtime });
  }

  /** A small file made here (not read from disk). */
  async content(name: string, data: Buffer, mode = 0o600): Promise<void> {
    await this.header({ path: name, type: 'File', mode, size: data.length, mtime: new Date() });
    await this.push(data);
    await this.pad(data.length);
  }

  /**
   * Copies a regular file (never following a link). 'gone' when it vanished
   * or is no longer a regular file (nothing written); 'changed' when its size
   * moved while it was read (the entry is still whole and valid).
   */
  async file(name: string, abs: string): Promise<FileOutcome> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENXIO') return 'gone';
      throw err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) return 'gone';
      await this.header({ path: name, type: 'File', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: st.size, mtime: st.mtime });
      let copied = 0;
      let outcome: FileOutcome = 'copied';
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, Math.max(st.size, 1)));
      while (copied < st.size) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, st.size - copied), copied);
        if (bytesRead === 0) {
          outcome = 'changed';
          break;
        }
        // Copied out: the buffer is reused for the next read while gzip may still hold this chunk.
        await this.push(Buffer.from(buf.subarray(0, bytesRead)));
        copied += bytesRead;
      }
      if (copied < st.size) {
        const zeros = Buffer.alloc(Math.min(READ_CHUNK, st.size - copied));
        for (let left = st.size - copied; left > 0; left -= zeros.length) await this.push(left >= zeros.length ? zeros : zeros.subarray(0, left));
      } else if ((await fh.read(Buffer.alloc(1), 0, 1, st.size)).bytesRead > 0) {
        outcome = 'changed';
      }
      await this.pad(st.size);
      return outcome;
    } finally {
      await fh.close();
    }
  }

  private async pad(size: number): Promise<void> {
    const rest = size % BLOCK;
    if (rest) await this.push(Buffer.alloc(BLOCK - rest));
  }

  /** The end-of-archive blocks, then flush; resolves when the output has everything. */
  async end(): Promise<void> {
    await this.push(Buffer.alloc(2 * BLOCK));
    this.gzip.end();
    await this.done;
  }

  destroy(err: Error): void {
    this.failure ??= err;
    this.gzip.destroy(err);
    this.out.destroy(err);
  }
}
