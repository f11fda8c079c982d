// A tenant's site log: <logs>/app.log holds its worker's stdout and stderr
// (appended by the worker itself), the edge's access lines and the pool's
// lifecycle lines, in the order they happened. Capped by rotation: past
// MAX_BYTES the file is copied to app.log.1 and truncated in place. Truncating
// (rather than renaming) keeps the worker's own append-mode descriptor valid.
import fs from 'node:fs';
import path from 'node:path';
import type { DataPaths } from '../paths.js';

export const LOG_FILE = 'app.log';
export const MAX_LOG_BYTES = 5 * 1024 * 1024;
const CHECK_EVERY_BYTES = 64 * 1024;

interface OpenLog {
  readonly file: string;
  /** Opened for appending; written synchronously, once per tick (see flush). */
  readonly fd: number;
  writtenSinceCheck: number;
  /** Lines appended during this tick, written together at its end. */
  pending: string;
}

export class TenantLogs {
  private readonly open = new Map<string, OpenLog>();
  private readonly unflushed = new Set<OpenLog>();
  private flushScheduled = false;
  private stampMs = 0;
  private stamp = '';

  constructor(
    private readonly paths: DataPaths,
    private readonly maxBytes = MAX_LOG_BYTES,
  ) {}

  file(tenantId: string): string {
    return path.join(this.paths.logs(tenantId), LOG_FILE);
  }

  /** Appends one line (a timestamp is added). Never throws: logging must not fail a request. */
  append(tenantId: string, line: string): void {
    let log = this.open.get(tenantId);
    if (!log) {
      try {
        fs.mkdirSync(this.paths.logs(tenantId), { recursive: true, mode: 0o750 });
      } catch {
        return;
      }
      const file = this.file(tenantId);
      let fd: number;
      try {
        fd = fs.openSync(file, 'a', 0o640);
      } catch {
        return;
      }
      log = { file, fd, writtenSinceCheck: 0, pending: '' };
      this.open.set(tenantId, log);
    }
    const oneLine = line.includes('\n') || line.includes('\r') ? line.replace(/[\r\n]+/g, ' ') : line;
    log.pending += `${this.timestamp()} ${oneLine}\n`;
    this.unflushed.add(log);
    if (!this.flushScheduled) {
      // One write per log per tick rather than one per line: under load the
      // edge appends an access line for every request.
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Writes the lines appended so far to their files. Synchronously: an append
   * to a local file lands in the page cache, which costs less than handing
   * each tick's write to the thread pool and back (under load the edge writes
   * an access line per dynamic request, as nginx does with its access log).
   */
  flush(): void {
    this.flushScheduled = false;
    for (const log of this.unflushed) {
      const text = Buffer.from(log.pending, 'utf8');
      log.pending = '';
      try {
        for (let done = 0; done < text.length; ) done += fs.writeSync(log.fd, text, done);
      } catch {
        // A full disk or a removed folder: these lines are lost, the requests are not.
        this.drop(log);
        continue;
      }
      log.writtenSinceCheck += text.length;
      if (log.writtenSinceCheck >= CHECK_EVERY_BYTES) {
        log.writtenSinceCheck = 0;
        rotateIfLarge(log.file, this.maxBytes);
      }
    }
    this.unflushed.clear();
  }

  /** Closes a log's descriptor; the next line opens the file again. */
  private drop(log: OpenLog): void {
    for (const [id, l] of this.open) if (l === log) this.open.delete(id);
    try {
      fs.closeSync(log.fd);
    } catch {
      /* already closed */
    }
  }

  private timestamp(): string {
    const now = Date.now();
    if (now !== this.stampMs) {
      this.stampMs = now;
      this.stamp = new Date(now).toISOString();
    }
    return this.stamp;
  }

  /** Copy-and-truncate once the file passes the cap; keeps one old file. */
  rotateIfLarge(tenantId: string): void {
    rotateIfLarge(this.file(tenantId), this.maxBytes);
  }

  /** The last `lines` lines, oldest first, across the rotated file and the current one. */
  tail(tenantId: string, lines: number): string[] {
    const file = this.file(tenantId);
    const read = (f: string) => {
      try {
        return fs.readFileSync(f, 'utf8');
      } catch {
        return '';
      }
    };
    let text = read(file);
    let all = text.split('\n');
    if (all[all.length - 1] === '') all.pop();
    if (all.length < lines) {
      text = read(file + '.1');
      const older = text.split('\n');
      if (older[older.length - 1] === '') older.pop();
      all = [...older, ...all];
    }
    return all.slice(-lines);
  }

  /** Byte size of the current file (to read what a worker printed since a point). */
  size(tenantId: string): number {
    try {
      return fs.statSync(this.file(tenantId), { throwIfNoEntry: false })?.size ?? 0;
    } catch {
      return 0;
    }
  }

  /** Text written since byte offset `from`, at most `max` bytes from the end. */
  readSince(tenantId: string, from: number, max = 2048): string {
    try {
      const fd = fs.openSync(this.file(tenantId), 'r');
      try {
        const size = fs.fstatSync(fd).size;
        const start = Math.max(from <= size ? from : 0, size - max);
        const buf = Buffer.alloc(size - start);
        fs.readSync(fd, buf, 0, buf.length, start);
        return buf.toString('utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return '';
    }
  }

  close(tenantId: string): void {
    this.flush();
    const log = this.open.get(tenantId);
    if (log) this.drop(log);
  }

  closeAll(): Promise<void> {
    this.flush();
    for (const log of [...this.open.values()]) this.drop(log);
    return Promise.resolve();
  }
}

function rotateIfLarge(file: string, maxBytes: number): void {
  try {
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (!st || st.size < maxBytes) return;
    fs.copyFileSync(file, file + '.1');
    fs.truncateSync(file, 0);
  } catch {
    /* the tenant may be going away */
  }
}
