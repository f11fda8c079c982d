// The content-addressed store behind incremental deploys: a tenant's files by
// the SHA-256 of their bytes. A manifest deploy asks it which contents it
// lacks, fills it with those alone, and builds the release from it. This is
// the interface; local-content-store.ts keeps objects on the releases' own file
// system (hard links, no copies). An object-storage version (S3-compatible,
// for several machines) would implement the same calls: docs/multi-node.md.
import type { Readable } from 'node:stream';

/** A SHA-256 as 64 lower-case hex digits: the only form an object name takes. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface StoredObject {
  readonly size: number;
  /** When the content first arrived: the Last-Modified of every file made from it. */
  readonly mtimeMs: number;
}

export interface Placement {
  readonly sha256: string;
  /** Absolute path of the new file (its folder exists). */
  readonly dest: string;
}

export interface ContentStore {
  /** The objects among `hashes` that the tenant's store holds. */
  lookup(tenantId: string, hashes: Iterable<string>): Promise<Map<string, StoredObject>>;

  /**
   * Stores `body` under `sha256`, reading at most `maxBytes` (else 413
   * payload_too_large). The bytes must hash to `sha256` (else 422
   * hash_mismatch, and nothing is kept). On disk before it resolves;
   * storing a content twice is harmless.
   */
  put(tenantId: string, sha256: string, body: Readable, maxBytes: number): Promise<StoredObject>;

  /** Takes a file the platform wrote and synced (a release's) as the object `sha256`, without copying it. */
  adopt(tenantId: string, sha256: string, file: string): Promise<void>;

  /** Makes each object appear at its `dest` (locally a new name on the same file system: no bytes copied). Throws if one is missing. */
  placeAll(tenantId: string, placements: Iterable<Placement>): Promise<void>;

  /**
   * Removes every object that no release of the tenant holds, apart from
   * those `keep` answers true for (contents a deploy waiting for its files
   * counts on). `keep` is asked at the moment of each removal, so a deploy
   * that starts while the sweep runs is heeded.
   */
  sweep(tenantId: string, keep: (sha256: string) => boolean): Promise<{ objects: number; bytes: number }>;
}
