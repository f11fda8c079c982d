// The rules a backup archive's entries must follow before anything is written
// for them: pure functions over tar headers, one judge per archive (it
// remembers names and links already seen). The physical check of links, once
// all is on disk, is restore-backup.ts's.
import path from 'node:path';
import { ArchiveRuleError, normalizeEntryPath } from '../deploy/archive-rules.js';
import { TOP_LEVEL } from './backup-format.js';

export { ArchiveRuleError as RestoreRuleError };

export interface RestoreHeader {
  readonly path: string;
  readonly type: string;
  readonly linkpath?: string | undefined;
  readonly mode?: number | undefined;
}

export type RestorePlan =
  | { readonly kind: 'skip' }
  | { readonly kind: 'directory'; readonly path: string; readonly mode: number }
  | { readonly kind: 'file'; readonly path: string; readonly mode: number }
  | { readonly kind: 'symlink'; readonly path: string; readonly target: string };

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);

/** Modes as archived, less set-user-id and set-group-id on files (restore runs as root; owners are not kept). */
function fileMode(mode: number | undefined): number {
  return (mode ?? 0o600) & 0o777;
}
function dirMode(mode: number | undefined): number {
  // The owner may always enter and write: the restore fills the folder; the start sets the final modes.
  return ((mode ?? 0o700) & 0o1777) | 0o700;
}

export class RestoreJudge {
  private readonly seen = new Set<string>();
  private readonly links = new Set<string>();
  readonly symlinks: string[] = [];

  check(h: RestoreHeader): RestorePlan {
    const rel = normalizeEntryPath(h.path);
    if (rel === '') return { kind: 'skip' };
    if (this.seen.has(rel)) throw new ArchiveRuleError('an entry appears twice', h.path);
    for (let dir = path.posix.dirname(rel); dir !== '.'; dir = path.posix.dirname(dir)) {
      if (this.links.has(dir)) throw new ArchiveRuleError('an entry lies beneath a symbolic link', h.path, `${dir} is a link`);
    }
    const [top] = rel.split('/') as [string];
    const shape = TOP_LEVEL.get(top);
    if (!shape) throw new ArchiveRuleError('not part of a Tenantry backup', h.path, `known top-level names: ${[...TOP_LEVEL.keys()].join(', ')}`);
    const isTop = rel === top;
    this.seen.add(rel);

    if (h.type === 'Directory') {
      if (isTop && shape === 'file') throw new ArchiveRuleError('must be a file, not a folder', h.path);
      return { kind: 'directory', path: rel, mode: dirMode(h.mode) };
    }
    if (isTop && shape === 'folder') throw new ArchiveRuleError('must be a folder', h.path);
    if (FILE_TYPES.has(h.type)) return { kind: 'file', path: rel, mode: fileMode(h.mode) };
    if (h.type === 'SymbolicLink') {
      const target = h.linkpath ?? '';
      if (target === '' || target.includes('\0')) throw new ArchiveRuleError('a symbolic link without a valid target', h.path);
      if (target.startsWith('/')) throw new ArchiveRuleError('symbolic links must stay inside the backup', h.path, `absolute target ${target}`);
      const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(rel), target));
      if (resolved === '..' || resolved.startsWith('../')) throw new ArchiveRuleError('symbolic links must stay inside the backup', h.path, `points to ${target}`);
      if (isTop) throw new ArchiveRuleError('must not be a symbolic link', h.path);
      this.links.add(rel);
      this.symlinks.push(rel);
      return { kind: 'symlink', path: rel, target };
    }
    if (h.type === 'Link') throw new ArchiveRuleError('hard links are not allowed in a backup', h.path);
    throw new ArchiveRuleError('unsupported entry type', h.path, h.type);
  }
}
