// The archive rules, as pure functions over tar headers: every entry is judged
// here before anything is written for it. No I/O; extract-archive.ts does that.
import path from 'node:path';

/** Why an archive was refused: the rule, and the entry that broke it. */
export class ArchiveRuleError extends Error {
  override readonly name = 'ArchiveRuleError';
  constructor(
    readonly rule: string,
    readonly entry: string | undefined,
    detail?: string,
  ) {
    super(`${rule}${entry !== undefined ? `: ${JSON.stringify(entry)}` : ''}${detail ? ` (${detail})` : ''}`);
  }
}

export interface ArchiveLimits {
  /** Sum of the unpacked sizes of all files. */
  readonly maxBytes: number;
  /** Unpacked size of any one file. */
  readonly maxFileBytes: number;
  /** Entries of any kind (files, folders, links). */
  readonly maxEntries: number;
}

export type EntryKind = 'file' | 'directory' | 'symlink' | 'hardlink';

/** What a checked entry becomes on disk. */
export type EntryPlan =
  | { readonly kind: 'skip' }
  | { readonly kind: 'file'; readonly path: string; readonly size: number; readonly mode: number }
  | { readonly kind: 'directory'; readonly path: string }
  | { readonly kind: 'symlink'; readonly path: string; readonly target: string }
  | { readonly kind: 'hardlink'; readonly path: string; readonly target: string };

export interface TarHeaderLike {
  readonly path: string;
  readonly type: string;
  readonly linkpath?: string | undefined;
  readonly size: number;
  readonly mode?: number | undefined;
}

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
const SPECIAL_TYPES = new Set(['CharacterDevice', 'BlockDevice', 'FIFO', 'Socket']);

/**
 * A member name -> its relative, normalised path ('' for the archive root).
 * Refuses absolute paths and any `..` component; drops `.` and empty parts.
 */
export function normalizeEntryPath(raw: string): string {
  if (raw.includes('\0')) throw new ArchiveRuleError('NUL byte in a path', raw);
  if (raw.startsWith('/')) throw new ArchiveRuleError('absolute paths are not allowed', raw);
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new ArchiveRuleError('paths with ".." are not allowed', raw);
    parts.push(part);
  }
  return parts.join('/');
}

/**
 * Whether `target`, read as a symlink placed at `linkPath`, stays inside the
 * archive root when resolved by name (real resolution is checked again once
 * every link exists, see release-links.ts).
 */
export function symlinkStaysInside(linkPath: string, target: string): boolean {
  if (target.startsWith('/')) return false;
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(linkPath), target));
  return resolved !== '..' && !resolved.startsWith('../');
}

/** Only permission bits a release may carry: no setuid/setgid/sticky, never group/other write. */
export function safeFileMode(mode: number | undefined): number {
  const exec = (mode ?? 0) & 0o111 ? 0o755 : 0o644;
  return exec;
}

/**
 * The running judgement of one archive. `check()` is called with each header
 * in order and either returns what to write or throws ArchiveRuleError.
 */
export class ArchiveJudge {
  private entries = 0;
  private bytes = 0;
  private files = 0;
  /** Normalised path -> what the archive made there. */
  private readonly made = new Map<string, EntryKind>();

  constructor(private readonly limits: ArchiveLimits) {}

  get stats(): { files: number; bytes: number; entries: number } {
    return { files: this.files, bytes: this.bytes, entries: this.entries };
  }

  /** Paths of the symlinks made so far (to be re-checked on disk at the end). */
  symlinks(): string[] {
    return [...this.made].filter(([, k]) => k === 'symlink').map(([p]) => p);
  }

  check(h: TarHeaderLike): EntryPlan {
    const name = h.path;
    const rel = normalizeEntryPath(name);
    if (rel === '') {
      if (h.type === 'Directory') return { kind: 'skip' };
      throw new ArchiveRuleError('an entry without a name', name);
    }
    if (SPECIAL_TYPES.has(h.type)) throw new ArchiveRuleError('device files, FIFOs and sockets are not allowed', name, h.type);

    this.entries++;
    if (this.entries > this.limits.maxEntries) {
      throw new ArchiveRuleError(`too many files: the cap is ${this.limits.maxEntries}`, name);
    }
    this.checkParents(rel, name);

    if (h.type === 'Directory') {
      const prior = this.made.get(rel);
      if (prior && prior !== 'directory') throw new ArchiveRuleError('a folder replaces an earlier entry of the same name', name);
      this.made.set(rel, 'directory');
      return { kind: 'directory', path: rel };
    }

    if (this.made.has(rel)) throw new ArchiveRuleError('duplicate entry', name);

    if (FILE_TYPES.has(h.type)) {
      const size = h.size;
      if (size > this.limits.maxFileBytes) {
        throw new ArchiveRuleError(`file larger than the per-file cap of ${formatMiB(this.limits.maxFileBytes)}`, name, `${formatMiB(size)}`);
      }
      this.addBytes(size, name);
      this.files++;
      this.made.set(rel, 'file');
      return { kind: 'file', path: rel, size, mode: safeFileMode(h.mode) };
    }

    if (h.type === 'SymbolicLink') {
      const target = h.linkpath ?? '';
      if (!target) throw new ArchiveRuleError('symbolic link without a target', name);
      if (!symlinkStaysInside(rel, target)) {
        throw new ArchiveRuleError('symbolic links must stay inside the release', name, `points to ${JSON.stringify(target)}`);
      }
      this.files++;
      this.made.set(rel, 'symlink');
      return { kind: 'symlink', path: rel, target };
    }

    if (h.type === 'Link') {
      const raw = h.linkpath ?? '';
      let target: string;
      try {
        target = normalizeEntryPath(raw);
      } catch {
        throw new ArchiveRuleError('hard links must point to a file earlier in the archive', name, `points to ${JSON.stringify(raw)}`);
      }
      if (this.made.get(target) !== 'file') {
        throw new ArchiveRuleError('hard links must point to a file earlier in the archive', name, `points to ${JSON.stringify(raw)}`);
      }
      this.files++;
      this.made.set(rel, 'hardlink');
      return { kind: 'hardlink', path: rel, target };
    }

    throw new ArchiveRuleError('unsupported entry type', name, h.type);
  }

  /** Bytes of a hard link's copy count like any file's. */
  addBytes(size: number, name: string): void {
    this.bytes += size;
    if (this.bytes > this.limits.maxBytes) {
      throw new ArchiveRuleError(`unpacked size over the cap of ${formatMiB(this.limits.maxBytes)}`, name);
    }
  }

  /** No entry may be written through a symlink, or under something that is not a folder. */
  private checkParents(rel: string, name: string): void {
    let i = rel.indexOf('/');
    while (i >= 0) {
      const kind = this.made.get(rel.slice(0, i));
      if (kind === 'symlink') throw new ArchiveRuleError('entries may not be written through a symbolic link', name);
      if (kind === 'file' || kind === 'hardlink') throw new ArchiveRuleError('an entry sits under a file', name);
      if (!kind) this.made.set(rel.slice(0, i), 'directory');
      i = rel.indexOf('/', i + 1);
    }
  }
}

export function formatMiB(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return mib >= 10 || Number.isInteger(mib) ? `${Math.round(mib)} MiB` : `${mib.toFixed(1)} MiB`;
}
