// `tenantry deploy <folder>` by manifest: the folder's files and their SHA-256s
// go first; the server answers which contents it lacks, only those are sent,
// then the deploy is finalized. A server without manifest deploys (415, or a
// 404 that is not about the tenant) gets the tar.gz instead (the caller's job).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { answerError, apiCall, CliError, type ClientOptions } from './api-client.js';
import { listSiteFiles, type PackOptions } from './pack-site.js';

export interface SiteDigest {
  /** Relative path -> SHA-256 (hex), what the manifest says. */
  readonly files: Record<string, string>;
  /** Where each content can be read, and its size. */
  readonly contents: ReadonlyMap<string, { readonly file: string; readonly size: number }>;
  /** The folder holds symbolic links: only an archive carries them as links. */
  readonly hasLinks: boolean;
  readonly count: number;
}

export interface ManifestDeployAnswer {
  id: string;
  live: boolean;
  url: string;
  files: number;
  bytes: number;
  uploaded: number;
  reused: number;
  rules?: { redirects: number; headers: number };
  warnings?: { file: string; line: number; message: string }[];
}

/** One read buffer for every file: a fresh megabyte per file would cost more than the hashing. */
const scratch = Buffer.allocUnsafe(1 << 20);

function sha256Of(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = scratch;
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** The files `packSite` would put in the archive, with their hashes. */
export function digestSite(dir: string, opts: PackOptions = {}): SiteDigest {
  const files: Record<string, string> = {};
  const contents = new Map<string, { file: string; size: number }>();
  let hasLinks = false;
  let count = 0;
  for (const rel of listSiteFiles(dir, opts)) {
    if (rel.endsWith('/')) continue;
    const abs = path.join(dir, rel);
    const st = fs.lstatSync(abs);
    if (st.isSymbolicLink()) {
      hasLinks = true;
      continue;
    }
    const sha = sha256Of(abs);
    files[rel] = sha;
    if (!contents.has(sha)) contents.set(sha, { file: abs, size: st.size });
    count++;
  }
  return { files, contents, hasLinks, count };
}

const WHOLE_BODY_BYTES = 16 * 1024 * 1024;

/** Runs `fn` over `items`, `width` at a time. */
async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const run = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, run));
}

/**
 * The deploy by manifest; undefined when the server does not take manifests
 * (the caller then uploads an archive). `onBytes` is told of each file sent.
 */
export async function deployByManifest(
  client: ClientOptions,
  tenant: string,
  digest: SiteDigest,
  message: string | undefined,
  onRequired: (count: number, bytes: number) => void = () => {},
  onSent: (bytes: number) => void = () => {},
): Promise<ManifestDeployAnswer | undefined> {
  const base = `/api/v1/tenants/${encodeURIComponent(tenant)}/deploys`;
  const created = await apiCall<ManifestDeployAnswer & { required?: string[] }>(client, base, { method: 'POST', json: { files: digest.files, ...(message ? { message } : {}) } });
  if (created.status === 415 || (created.status === 404 && created.code !== 'tenant_not_found')) return undefined;
  if (!created.ok) throw answerError(created);
  if (created.status === 201) return created.data;
  const id = created.data.id;
  const required = created.data.required ?? [];
  onRequired(required.length, required.reduce((sum, h) => sum + (digest.contents.get(h)?.size ?? 0), 0));
  await inParallel(required, 4, async (sha) => {
    const content = digest.contents.get(sha);
    if (!content) throw new CliError(`the server asked for ${sha}, which no file of this folder has`);
    // Small files go in one piece (with their length); large ones stream.
    const body = content.size <= WHOLE_BODY_BYTES ? fs.readFileSync(content.file) : (Readable.toWeb(fs.createReadStream(content.file)) as ReadableStream);
    const put = await apiCall(client, `${base}/${id}/files/${sha}`, { method: 'PUT', body, headers: { 'Content-Type': 'application/octet-stream' } });
    if (!put.ok) throw answerError(put);
    onSent(content.size);
  });
  const done = await apiCall<ManifestDeployAnswer>(client, `${base}/${id}/finalize`, { method: 'POST' });
  if (!done.ok) throw answerError(done);
  return done.data;
}
