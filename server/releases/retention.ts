// Which releases to delete: the live one always stays, then the newest ready
// releases until `keep` are on disk. Pure; the deploy service does the removing.
import type { DeployRecord } from '../db/store.js';

/** `deploys` newest first, as the store lists them. */
export function releasesToPrune(deploys: readonly DeployRecord[], liveId: string | null | undefined, keep: number): DeployRecord[] {
  const ready = deploys.filter((d) => d.status === 'ready');
  const kept = new Set<string>();
  if (liveId) kept.add(liveId);
  for (const d of ready) {
    if (kept.size >= Math.max(1, keep)) break;
    kept.add(d.id);
  }
  return ready.filter((d) => !kept.has(d.id));
}
