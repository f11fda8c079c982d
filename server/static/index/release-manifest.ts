// The manifest of a release's public files, `<release>/.tenantry/index.json`:
// sizes, modification times, content hashes and the precompressed copies made
// at deploy time (under `.tenantry/compressed/`). Written when a release is first
// prepared, so a restart loads it instead of reading and hashing every file again.
// Releases are immutable, so a manifest never goes stale.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import fsp from 'node:fs/promises';
import { fsyncFile, fsyncFolder, makeFolderDurably, writeFileDurably } from '../../disk/durable.js';

export const MANIFEST_DIR = '.tenantry';
export const MANIFEST_FILE = 'index.json';
/** The manifest a deploy worker made while staging; the edge takes it up once the release is in releases/. */
export const STAGED_MANIFEST_FILE = 'index.staged.json';
const FORMAT = 1;

export interface ManifestVariant {
  readonly size: number;
  /** Relative to the release folder. */
  readonly file: string;
}

export interface ManifestEntry {
  /** URL path, '/css/site.css'. */
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** base64url SHA-256 prefix of the content: the strong ETag (etagHashOf of the hex digest). */
  readonly hash: string;
  readonly br?: ManifestVariant;
  readonly gzip?: ManifestVariant;
  /** Known to the site (e.g. a root 404.html next to public/) but not served at its path. */
  readonly hidden?: boolean;
}

export interface ReleaseManifest {
  readonly format: 1;
  /** '' when the release root is served, 'public' when public/ is. */
  readonly publicRoot: '' | 'public';
  readonly hasApi: boolean;
  /** True once every compressible file has its precompressed copies. */
  readonly compressed: boolean;
  readonly files: readonly ManifestEntry[];
}

/** What is never served from a release root without public/ (package.json: the module type of api/, see module-boundary.ts). */
const PRIVATE_TOP = new Set(['api', 'node_modules', 'package.json', 'tenant.json', '_redirects', '_headers']);
/** Site configuration files, never served even from public/. */
const CONFIG_FILES = new Set(['_redirects', '_headers']);

export function manifestPath(releaseDir: string): string {
  return path.join(releaseDir, MANIFEST_DIR, MANIFEST_FILE);
}

function isDir(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

const HASH_CHUNK = 1 << 20;

/** Reads the file once, in chunks (large files are not held in memory). */
export function hashFileSync(file: string, scratch: Buffer = Buffer.allocUnsafe(HASH_CHUNK)): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    for (;;) {
      const n = fs.readSync(fd, scratch, 0, scratch.length, null);
      if (n === 0) break;
      h.update(n === scratch.length ? scratch : scratch.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('base64url').slice(0, 27);
}

/** The ETag hash of a content from its SHA-256 in hex: the same prefix scanning its bytes would give. */
export function etagHashOf(sha256Hex: string): string {
  return Buffer.from(sha256Hex, 'hex').toString('base64url').slice(0, 27);
}

interface FoundFile {
  readonly abs: string;
  readonly url: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly hidden?: boolean;
}

/**
 * The public files of a release, one at a time (readdir and stat only), so a
 * caller may pause between them. Dot names (and so .tenantry/) are never included.
 */
/** Whether a name in folder `urlDir` of the served tree is served (and so walked). */
function isServedName(urlDir: string, name: string, publicRoot: '' | 'public'): boolean {
  if (name.startsWith('.')) return false;
  return !(urlDir === '/' && (CONFIG_FILES.has(name) || (publicRoot === '' && PRIVATE_TOP.has(name))));
}

function* releaseFiles(releaseDir: string, publicRoot: '' | 'public'): Generator<FoundFile> {
  let hasNotFoundPage = false;
  function* walk(dir: string, urlDir: string): Generator<FoundFile> {
    for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!isServedName(urlDir, ent.name, publicRoot)) continue;
      const abs = path.join(dir, ent.name);
      const url = urlDir + ent.name;
      // Links inside a release were checked at deploy time; they are resolved once, here.
      const st = fs.statSync(abs, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) yield* walk(abs, url + '/');
      else if (st.isFile()) {
        if (url === '/404.html') hasNotFoundPage = true;
        yield { abs, url, size: st.size, mtimeMs: Math.floor(st.mtimeMs) };
      }
    }
  }
  yield* walk(path.join(releaseDir, publicRoot), '/');
  if (publicRoot && !hasNotFoundPage) {
    const rootPage = path.join(releaseDir, '404.html');
    const st = fs.statSync(rootPage, { throwIfNoEntry: false });
    if (st?.isFile()) yield { abs: rootPage, url: '/404.html', size: st.size, mtimeMs: Math.floor(st.mtimeMs), hidden: true };
  }
}

function publicRootOf(releaseDir: string): '' | 'public' {
  return isDir(path.join(releaseDir, 'public')) ? 'public' : '';
}

function toEntry(f: FoundFile, hash: string): ManifestEntry {
  return { path: f.url, size: f.size, mtimeMs: f.mtimeMs, hash, ...(f.hidden ? { hidden: true } : {}) };
}

/** Walks and hashes a release's public files, blocking until done (used when a start finds no manifest). */
export function scanRelease(releaseDir: string): ReleaseManifest {
  const publicRoot = publicRootOf(releaseDir);
  const scratch = Buffer.allocUnsafe(HASH_CHUNK);
  const files = [...releaseFiles(releaseDir, publicRoot)].map((f) => toEntry(f, hashFileSync(f.abs, scratch)));
  return { format: FORMAT, publicRoot, hasApi: isDir(path.join(releaseDir, 'api')), compressed: false, files };
}

/** A file of a release whose content is known without reading it (a release built from the content store). */
export interface ListedFile {
  /** Relative to the release folder, '/'-separated, normalised. */
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** The ETag hash (etagHashOf). */
  readonly hash: string;
}

/**
 * The manifest scanRelease would make of a release holding exactly `files`
 * (regular files only, no links), without touching the disk.
 */
export function manifestOfListing(files: readonly ListedFile[]): ReleaseManifest {
  const publicRoot: '' | 'public' = files.some((f) => f.path.startsWith('public/')) ? 'public' : '';
  const prefix = publicRoot ? 'public/' : '';
  const entries: ManifestEntry[] = [];
  let rootNotFound: ListedFile | undefined;
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    if (publicRoot && f.path === '404.html') rootNotFound = f;
    if (!f.path.startsWith(prefix)) continue;
    const parts = f.path.slice(prefix.length).split('/');
    let urlDir = '/';
    let served = true;
    for (const part of parts) {
      if (!isServedName(urlDir, part, publicRoot)) {
        served = false;
        break;
      }
      urlDir += part + '/';
    }
    if (served) entries.push({ path: '/' + parts.join('/'), size: f.size, mtimeMs: f.mtimeMs, hash: f.hash });
  }
  if (rootNotFound && !entries.some((e) => e.path === '/404.html')) {
    entries.push({ path: '/404.html', size: rootNotFound.size, mtimeMs: rootNotFound.mtimeMs, hash: rootNotFound.hash, hidden: true });
  }
  return { format: FORMAT, publicRoot, hasApi: files.some((f) => f.path.startsWith('api/')), compressed: false, files: entries };
}

/** Resolves at once, or on the next turn of the event loop once `budgetMs` of work has passed. */
function makeYielder(budgetMs: number): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < budgetMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    since = performance.now();
  };
}

/**
 * scanRelease that gives the event loop a turn every few milliseconds: what a
 * deploy uses, so that hashing a large release does not stall every other
 * tenant's requests on the same edge. Reads stay synchronous (in 1 MiB chunks)
 * because per-file async streams cost several times more in total.
 */
export async function scanReleaseAsync(releaseDir: string, budgetMs = 8): Promise<ReleaseManifest> {
  const pause = makeYielder(budgetMs);
  const publicRoot = publicRootOf(releaseDir);
  const scratch = Buffer.allocUnsafe(HASH_CHUNK);
  const files: ManifestEntry[] = [];
  for (const f of releaseFiles(releaseDir, publicRoot)) {
    const h = crypto.createHash('sha256');
    const fd = fs.openSync(f.abs, 'r');
    try {
      for (;;) {
        const n = fs.readSync(fd, scratch, 0, scratch.length, null);
        if (n === 0) break;
        h.update(n === scratch.length ? scratch : scratch.subarray(0, n));
        await pause();
      }
    } finally {
      fs.closeSync(fd);
    }
    files.push(toEntry(f, h.digest('base64url').slice(0, 27)));
    await pause();
  }
  return { format: FORMAT, publicRoot, hasApi: isDir(path.join(releaseDir, 'api')), compressed: false, files };
}

function isVariant(v: unknown): v is ManifestVariant {
  return typeof v === 'object' && v !== null && typeof (v as ManifestVariant).size === 'number' && typeof (v as ManifestVariant).file === 'string';
}

function isEntry(e: unknown): e is ManifestEntry {
  if (typeof e !== 'object' || e === null) return false;
  const x = e as ManifestEntry;
  return (
    typeof x.path === 'string' &&
    x.path.startsWith('/') &&
    typeof x.size === 'number' &&
    typeof x.mtimeMs === 'number' &&
    typeof x.hash === 'string' &&
    (x.br === undefined || isVariant(x.br)) &&
    (x.gzip === undefined || isVariant(x.gzip))
  );
}

/** The stored manifest, or undefined when there is none or it is not one we can trust. */
export function readManifest(releaseDir: string): ReleaseManifest | undefined {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(manifestPath(releaseDir), 'utf8'));
  } catch {
    return undefined;
  }
  const m = json as ReleaseManifest;
  if (typeof m !== 'object' || m === null || m.format !== FORMAT || (m.publicRoot !== '' && m.publicRoot !== 'public')) return undefined;
  if (typeof m.hasApi !== 'boolean' || typeof m.compressed !== 'boolean' || !Array.isArray(m.files) || !m.files.every(isEntry)) return undefined;
  return m;
}

/**
 * Writes atomically and durably (temporary file, fsync, rename, fsync of the
 * folder): after a power cut the old manifest or the new, never a torn one.
 * Rejects when the release folder is not writable.
 */
export async function writeManifest(releaseDir: string, manifest: ReleaseManifest): Promise<void> {
  const file = manifestPath(releaseDir);
  await makeFolderDurably(path.dirname(file), 0o755);
  await writeFileDurably(file, JSON.stringify(manifest), 0o644);
}

/** Writes a staged release's manifest under its staged name (durably; the release is not in releases/ yet). */
export async function writeStagedManifest(releaseDir: string, manifest: ReleaseManifest): Promise<void> {
  const dir = path.join(releaseDir, MANIFEST_DIR);
  await makeFolderDurably(dir, 0o755);
  await writeFileDurably(path.join(dir, STAGED_MANIFEST_FILE), JSON.stringify(manifest), 0o644);
}

/**
 * Makes the staged manifest the release's manifest: fsynced, renamed into
 * place, its folder fsynced (so it is on disk, under its name, before the
 * release can go live). Returns false when there is none (the release is
 * then indexed when it is prepared).
 */
export async function adoptStagedManifest(releaseDir: string): Promise<boolean> {
  const dir = path.join(releaseDir, MANIFEST_DIR);
  const staged = path.join(dir, STAGED_MANIFEST_FILE);
  const st = await fsp.lstat(staged).catch(() => undefined);
  if (!st?.isFile()) return false;
  await fsyncFile(staged);
  await fsp.rename(staged, manifestPath(releaseDir));
  await fsyncFolder(dir);
  return true;
}
