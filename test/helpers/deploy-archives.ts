// Builds site archives for deploy tests, including ones `tar` refuses to
// write (absolute names, `..`, devices): raw ustar headers, written by hand.
import zlib from 'node:zlib';
import { httpRequest, type HttpAnswer } from './harness.js';

export type TarType = 'file' | 'hardlink' | 'symlink' | 'chardev' | 'blockdev' | 'directory' | 'fifo';
const TYPE_FLAG: Record<TarType, string> = { file: '0', hardlink: '1', symlink: '2', chardev: '3', blockdev: '4', directory: '5', fifo: '6' };

export interface RawEntry {
  name: string;
  type?: TarType;
  body?: Buffer | string;
  linkname?: string;
  mode?: number;
  /** Declared size, when it should differ from the body's (bodies are then not written). */
  size?: number;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** One 512-byte ustar header. Names up to 100 bytes (no prefix field needed in tests). */
export function tarHeader(e: RawEntry): Buffer {
  const h = Buffer.alloc(512);
  const type = e.type ?? 'file';
  const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
  const size = e.size ?? (type === 'file' ? body.length : 0);
  if (Buffer.byteLength(e.name) > 100) throw new Error(`name too long for this writer: ${e.name}`);
  h.write(e.name, 0, 100, 'utf8');
  h.write(octal(e.mode ?? (type === 'directory' ? 0o755 : 0o644), 8), 100, 8, 'ascii');
  h.write(octal(0, 8), 108, 8, 'ascii');
  h.write(octal(0, 8), 116, 8, 'ascii');
  h.write(octal(size, 12), 124, 12, 'ascii');
  h.write(octal(Math.floor(Date.now() / 1000), 12), 136, 12, 'ascii');
  h.write('        ', 148, 8, 'ascii');
  h.write(TYPE_FLAG[type], 156, 1, 'ascii');
  if (e.linkname) h.write(e.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  if (type === 'chardev' || type === 'blockdev') {
    h.write(octal(1, 8), 329, 8, 'ascii');
    h.write(octal(3, 8), 337, 8, 'ascii');
  }
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

function padded(body: Buffer): Buffer {
  const rest = body.length % 512;
  return rest === 0 ? body : Buffer.concat([body, Buffer.alloc(512 - rest)]);
}

/** A complete tar (entries, then the two zero blocks that end it). */
export function rawTar(entries: readonly RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(tarHeader(e));
    if ((e.type ?? 'file') === 'file' && e.body !== undefined && e.size === undefined) parts.push(padded(Buffer.from(e.body)));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function tarGz(entries: readonly RawEntry[]): Buffer {
  return zlib.gzipSync(rawTar(entries));
}

/** A small site: public/index.html with `marker` in it. */
export function siteArchive(marker: string, extra: readonly RawEntry[] = []): Buffer {
  return tarGz([
    { name: 'public/', type: 'directory' },
    { name: 'public/index.html', body: `<!doctype html><h1>${marker}</h1>\n` },
    ...extra,
  ]);
}

/**
 * gzip of: a header, then `zeroBytes` of zeros streamed through level-1 deflate
 * (1 GiB becomes about 4.5 MiB), then the end blocks. Never holds the zeros in memory.
 */
export async function zerosBomb(header: RawEntry | undefined, zeroBytes: number): Promise<Buffer> {
  const gz = zlib.createGzip({ level: 1 });
  const out: Buffer[] = [];
  gz.on('data', (c: Buffer) => out.push(c));
  const done = new Promise<void>((resolve, reject) => {
    gz.on('end', resolve);
    gz.on('error', reject);
  });
  if (header) gz.write(tarHeader(header));
  const chunk = Buffer.alloc(1 << 20);
  for (let left = zeroBytes; left > 0; left -= chunk.length) {
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
    if (!gz.write(piece)) await new Promise((r) => gz.once('drain', r));
  }
  gz.end(Buffer.alloc(1024));
  await done;
  return Buffer.concat(out);
}

/** POST an archive as a raw body to the deploy API. */
export function uploadArchive(
  url: string,
  token: string,
  tenant: string,
  body: Buffer,
  opts: { contentType?: string; query?: string } = {},
): Promise<HttpAnswer> {
  return httpRequest(url, {
    host: 'localhost',
    method: 'POST',
    path: `/api/v1/tenants/${tenant}/deploys${opts.query ? `?${opts.query}` : ''}`,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': opts.contentType ?? 'application/gzip' },
    body,
  });
}

/** POST as multipart/form-data with the archive in the field `archive`. */
export function uploadMultipart(url: string, token: string, tenant: string, archive: Buffer, fields: Record<string, string> = {}, fileField = 'archive'): Promise<HttpAnswer> {
  const boundary = '----tenantry' + Math.random().toString(16).slice(2);
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  }
  parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${fileField}"; filename="site.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n`));
  parts.push(archive);
  parts.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  return httpRequest(url, {
    host: 'localhost',
    method: 'POST',
    path: `/api/v1/tenants/${tenant}/deploys`,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': `multipart/form-data; boundary=${boundary}` },
    body: Buffer.concat(parts),
  });
}

export async function createTenant(url: string, adminToken: string, id: string, extra: Record<string, unknown> = {}): Promise<void> {
  const r = await httpRequest(url, {
    host: 'localhost',
    method: 'POST',
    path: '/api/v1/tenants',
    headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ id, ...extra }),
  });
  if (r.status !== 201) throw new Error(`creating tenant ${id}: ${r.status} ${r.body}`);
}

export async function apiJson(url: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const r = await httpRequest(url, {
    host: 'localhost',
    method,
    path,
    headers: { Authorization: `Bearer ${token}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  let json: unknown;
  try {
    json = JSON.parse(r.body);
  } catch {
    json = undefined;
  }
  return { status: r.status, json };
}
