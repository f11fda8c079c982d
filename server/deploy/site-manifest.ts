// The manifest of a manifest deploy, `{"files": {"<path>": "<sha256>", ...}}`,
// judged by the same rules as an archive's entries (archive-rules.ts): no
// absolute paths or `..`, no duplicates, no file under a file, the file-count
// cap, the per-file and total size caps once sizes are known, and the same
// single top folder stripped. Pure: no I/O.
import { AppError } from '../errors.js';
import { ArchiveJudge, ArchiveRuleError, formatMiB, type ArchiveLimits } from './archive-rules.js';
import { SHA256_HEX } from './content-store.js';
import { PLATFORM_RESERVED_TOP, LAYOUT_FOLDERS } from './reserved-names.js';

/** Path in the release -> SHA-256 of its content. */
export type SiteFiles = ReadonlyMap<string, string>;

/** A path is at most this long (as tar's own headers allow in practice). */
const MAX_PATH = 4096;

/**
 * The files of a manifest body, by release path. Throws AppError 400 for a
 * body that is not a manifest, ArchiveRuleError for one that breaks an archive rule.
 */
export function readSiteManifest(body: unknown, limits: ArchiveLimits): SiteFiles {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new AppError('invalid_request', 'Send the manifest as a JSON object: {"files": {"<path>": "<sha256>", ...}}.');
  }
  const files = (body as { files?: unknown }).files;
  if (typeof files !== 'object' || files === null || Array.isArray(files)) {
    throw new AppError('invalid_request', '"files" must be an object of paths and their SHA-256 in hex: {"files": {"index.html": "<64 hex digits>"}}.');
  }
  const entries = Object.entries(files as Record<string, unknown>);
  if (entries.length === 0) throw new ArchiveRuleError('the archive holds no files', undefined);
  if (entries.length > limits.maxEntries) throw new ArchiveRuleError(`too many files: the cap is ${limits.maxEntries}`, entries[limits.maxEntries]![0]);

  const judge = new ArchiveJudge(limits);
  const out = new Map<string, string>();
  for (const [rawPath, rawHash] of entries) {
    if (typeof rawHash !== 'string' || !SHA256_HEX.test(rawHash.toLowerCase())) {
      throw new AppError('invalid_request', `files[${JSON.stringify(rawPath.slice(0, 200))}]: the SHA-256 of the file's bytes, as 64 hex digits.`);
    }
    if (rawPath.length > MAX_PATH) throw new ArchiveRuleError(`paths are at most ${MAX_PATH} characters`, rawPath.slice(0, 200) + '...');
    // Netlify's manifests name files from the site root with a leading slash.
    const name = rawPath.startsWith('/') && !rawPath.startsWith('//') ? rawPath.slice(1) : rawPath;
    const plan = judge.check({ path: name, type: 'File', size: 0 });
    if (plan.kind !== 'file') throw new ArchiveRuleError('an entry without a name', rawPath);
    out.set(plan.path, rawHash.toLowerCase());
  }
  const rooted = withoutSingleTopFolder(out);
  for (const p of rooted.keys()) {
    const top = p.split('/', 1)[0]!;
    if (PLATFORM_RESERVED_TOP.has(top)) throw new ArchiveRuleError('names reserved for the platform are not allowed at the top of a release', p);
  }
  return rooted;
}

/** When every file sits under one top folder (not public/ or api/), that folder is the release, as for archives. */
function withoutSingleTopFolder(files: Map<string, string>): Map<string, string> {
  let top: string | undefined;
  for (const p of files.keys()) {
    const slash = p.indexOf('/');
    if (slash < 0) return files;
    const first = p.slice(0, slash);
    if (top === undefined) top = first;
    else if (top !== first) return files;
  }
  if (top === undefined || LAYOUT_FOLDERS.has(top)) return files;
  const cut = top.length + 1;
  return new Map([...files].map(([p, h]) => [p.slice(cut), h]));
}

/**
 * The byte caps once sizes are known: each file within the per-file cap, all
 * of them (a content counted once per path, as an archive would) within the
 * tenant's total. `sizes` may lack contents still to come.
 */
export function checkSizes(files: SiteFiles, sizes: ReadonlyMap<string, number>, limits: ArchiveLimits): { bytes: number } {
  let bytes = 0;
  for (const [p, h] of files) {
    const size = sizes.get(h);
    if (size === undefined) continue;
    if (size > limits.maxFileBytes) throw new ArchiveRuleError(`file larger than the per-file cap of ${formatMiB(limits.maxFileBytes)}`, p, formatMiB(size));
    bytes += size;
    if (bytes > limits.maxBytes) throw new ArchiveRuleError(`unpacked size over the cap of ${formatMiB(limits.maxBytes)}`, p);
  }
  return { bytes };
}
