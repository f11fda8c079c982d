// The host side of a warm worker's file view. Each warm worker's sandbox
// binds one slot folder, /run/tenantry-warm/<supervisor pid>-<n>, where the
// tenants' folder is (<data>/tenants); on the host the slot is a mount point
// of its own with shared propagation, bwrap's copy of it a slave. When the
// worker is given a tenant, the supervisor mounts the tenant's release
// (read-only) and data folder into the slot at their paths relative to the
// tenants' folder, and its /tmp at .tmp; the kernel propagates those mounts
// into that one sandbox (and no other: each slot is its own peer group), so
// the worker sees them at the very paths a cold start shows. The worker never mounts anything
// itself (its seccomp filter denies mount). Slots live outside the data
// folder so that a platform killed with -9 leaves nothing mounted in it; the
// next start removes such leftovers.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { processAlive } from './process-state.js';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const WARM_SLOTS_ROOT = '/run/tenantry-warm';

export interface WarmSlot {
  /** The slot folder on the host. */
  readonly dir: string;
}

/** The folder in a slot that the sandbox's /tmp links to. */
export const SLOT_TMP = '.tmp';

export interface SlotContents {
  /** Both below the tenants' folder given to the constructor. */
  readonly releaseDir: string;
  readonly dataDir: string;
  /**
   * What goes at the slot's .tmp (the sandbox's /tmp links there): a folder on
   * the tenant's disk image, else a tmpfs of `sizeMB`. Undefined: the sandbox
   * has a /tmp of its own (a tmpfs made with it).
   */
  readonly tmp?: { readonly dir?: string; readonly sizeMB: number };
}

export interface SlotTools {
  readonly sh: string;
  readonly mount: string;
  readonly umount: string;
}

const MAKE = [
  'set -e',
  'S=$1; M=$2',
  'mkdir -p "$S/.tmp"',
  'chmod 0755 "$S" "$S/.tmp"',
  '"$M" --bind "$S" "$S"',
  // Its own peer group: mounts made in it reach the sandboxes bound to it, nothing else.
  '"$M" --make-private "$S"',
  '"$M" --make-shared "$S"',
].join('\n');

/**
 * One read-only view of every tenant's folder, made once: a release mounted
 * from it is read-only from its first instant, so the copy the kernel
 * propagates into the sandbox is too (a remount would not reach that copy).
 */
const MAKE_READ_ONLY_VIEW = [
  'set -e',
  'V=$1; M=$2; SRC=$3',
  'mkdir -p "$V"',
  '"$M" --bind "$SRC" "$V"',
  '"$M" -o remount,bind,ro,nosuid,nodev "$V"',
  '"$M" --make-private "$V"',
].join('\n');

const FILL = [
  // REL_AT, DATA_AT: the release's and data folder's paths relative to the tenants' folder.
  'S=$1; M=$2; REL=$3; REL_AT=$4; DATA=$5; DATA_AT=$6; TMP=$7; SIZE=$8',
  'mkdir -p "$S/$REL_AT" "$S/$DATA_AT" || exit 1',
  '"$M" --bind "$REL" "$S/$REL_AT" & R=$!',
  '"$M" --bind "$DATA" "$S/$DATA_AT" & D=$!',
  'case "$TMP" in',
  '  "") ;;',
  '  tmpfs) "$M" -t tmpfs -o "size=${SIZE}m,mode=1777,nosuid,nodev" tmpfs "$S/.tmp" || exit 1 ;;',
  '  *) "$M" --bind "$TMP" "$S/.tmp" || exit 1 ;;',
  'esac',
  'wait $R || exit 1',
  'wait $D || exit 1',
].join('\n');

const CLEAR = [
  'S=$1; U=$2',
  '"$U" -R -l "$S" 2>/dev/null',
  // Anything still mounted there (the unmount failed): leave every folder as it is.
  'grep -q " $S[/ ]" /proc/self/mounts && exit 0',
  // Empty folders only, deepest first: the slot's own, made by make and fill.
  '[ -d "$S" ] && find "$S" -depth -type d -exec rmdir {} + 2>/dev/null',
  'exit 0',
].join('\n');

export class WarmSlots {
  private next = 0;
  private view: Promise<string> | undefined;

  /** `tenantsRoot`: the folder holding every tenant's folder (releases are read through a read-only view of it). */
  constructor(
    private readonly tools: SlotTools,
    private readonly tenantsRoot: string,
    private readonly root = WARM_SLOTS_ROOT,
  ) {}

  /** The read-only view of the tenants' folder (made at the first use). */
  private readOnlyView(): Promise<string> {
    this.view ??= (async () => {
      fs.mkdirSync(this.root, { recursive: true, mode: 0o755 });
      const dir = path.join(this.root, `${process.pid}-ro`);
      try {
        await run(this.tools.sh, ['-c', MAKE_READ_ONLY_VIEW, 'tenantry-warm-view', dir, this.tools.mount, this.tenantsRoot]);
      } catch (err) {
        await this.clear(dir);
        this.view = undefined;
        throw new Error(`cannot make the read-only view of the tenants' folders: ${(err as Error).message}`);
      }
      return dir;
    })();
    return this.view;
  }

  /** Makes what every fill needs ahead of the first (the read-only view). */
  async prepare(): Promise<void> {
    await this.readOnlyView();
  }

  /** A new, empty slot (a shared mount point). */
  async make(): Promise<WarmSlot> {
    fs.mkdirSync(this.root, { recursive: true, mode: 0o755 });
    const dir = path.join(this.root, `${process.pid}-${++this.next}`);
    try {
      await run(this.tools.sh, ['-c', MAKE, 'tenantry-warm-slot', dir, this.tools.mount]);
    } catch (err) {
      await this.clear(dir);
      throw new Error(`cannot make a warm slot: ${(err as Error).message}`);
    }
    return { dir };
  }

  /** Mounts a tenant's folders into the slot (and so into the sandbox bound to it). */
  async fill(slot: WarmSlot, c: SlotContents): Promise<void> {
    const releaseAt = this.below(c.releaseDir);
    const dataAt = this.below(c.dataDir);
    const release = path.join(await this.readOnlyView(), releaseAt);
    const tmp = c.tmp === undefined ? '' : (c.tmp.dir ?? 'tmpfs');
    await run(this.tools.sh, ['-c', FILL, 'tenantry-warm-fill', slot.dir, this.tools.mount, release, releaseAt, c.dataDir, dataAt, tmp, String(c.tmp?.sizeMB ?? 0)]);
  }

  /** A path's place below the tenants' folder (refused when it is not below it, or is it). */
  private below(p: string): string {
    const rel = path.relative(this.tenantsRoot, p);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel) || rel.split(path.sep).includes(SLOT_TMP)) throw new Error(`${p} is not a tenant's folder below ${this.tenantsRoot}`);
    return rel;
  }

  /** Removes the read-only view (platform stop, once no slot uses it). */
  async close(): Promise<void> {
    const view = this.view;
    this.view = undefined;
    if (view) await this.clear(await view.catch(() => ''));
  }

  /** Unmounts everything in the slot (or the view) and removes it. Never throws. */
  async clear(dir: string): Promise<void> {
    if (!dir) return;
    await run(this.tools.sh, ['-c', CLEAR, 'tenantry-warm-clear', dir, this.tools.umount]).catch(() => {});
  }
}

/**
 * Unmounts and removes the slots (and read-only views) a platform killed with
 * -9 left behind, synchronously: before any tenant disk image is mounted or
 * unmounted again (a slot holding a bind of an image's file system keeps that
 * file system alive). Cheap when there is nothing to clear. Never throws.
 */
export function clearStaleWarmSlots(tools: Pick<SlotTools, 'sh' | 'umount'>, root = WARM_SLOTS_ROOT): number {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return 0;
  }
  let cleared = 0;
  for (const name of names) {
    const owner = Number(/^(\d+)-(\d+|ro)$/.exec(name)?.[1]);
    if (!Number.isInteger(owner) || owner === process.pid || processAlive(owner)) continue;
    try {
      execFileSync(tools.sh, ['-c', CLEAR, 'tenantry-warm-clear', path.join(root, name), tools.umount], { stdio: 'ignore' });
      cleared++;
    } catch {
      // left for the next start; the log of the launch that trips on it says more
    }
  }
  return cleared;
}
