// What a backup archive holds, shared by `tenantry backup` and `tenantry restore`:
//   tenantry-backup.json            this format's summary (last entry)
//   platform.db                     the database, an online copy (SQLite backup API)
//   secret, admin-token             when they are files of the data folder
//   certs/, keys/                   when present
//   tenants/<id>/live               -> releases/<deployId>
//   tenants/<id>/releases/<deploy>/ the live release and the kept (ready) ones
//   tenants/<id>/data/              the tenant's writable folder
//   git/<id>.git/                   the tenant's repository
// Not copied: logs, staging, outbox, run/ and mail/ (sockets), failed or pruned releases,
// the content store (tenants/<id>/store/: refilled by the next deploys).

export const BACKUP_FORMAT = 1;
export const SUMMARY_FILE = 'tenantry-backup.json';
export const DATABASE_FILE = 'platform.db';
export const SECRET_FILES = ['secret', 'admin-token'] as const;
/** Folders of certificates and keys at the top of the data folder, copied whole when they exist. */
export const KEY_FOLDERS = ['certs', 'keys'] as const;

/** Top-level names a backup may hold, and whether each is a file or a folder. */
export const TOP_LEVEL: ReadonlyMap<string, 'file' | 'folder'> = new Map<string, 'file' | 'folder'>([
  [SUMMARY_FILE, 'file'],
  [DATABASE_FILE, 'file'],
  ...SECRET_FILES.map((n) => [n, 'file'] as const),
  ...KEY_FOLDERS.map((n) => [n, 'folder'] as const),
  ['tenants', 'folder'],
  ['git', 'folder'],
]);

export interface TenantSummary {
  readonly id: string;
  readonly live: string | null;
  /** Release folders in the archive (the live one included). */
  readonly releases: readonly string[];
  /** Files of the data folder that changed or vanished while they were copied. */
  readonly dataChanged: number;
}

export interface BackupSummary {
  readonly format: typeof BACKUP_FORMAT;
  readonly createdAt: string;
  readonly tenants: readonly TenantSummary[];
  /** Lines worth telling the operator (a changed file, a left-out link, a missing secret). */
  readonly notes: readonly string[];
}

export function isBackupSummary(v: unknown): v is BackupSummary {
  const s = v as BackupSummary;
  return typeof s === 'object' && s !== null && s.format === BACKUP_FORMAT && typeof s.createdAt === 'string' && Array.isArray(s.tenants) && Array.isArray(s.notes);
}
