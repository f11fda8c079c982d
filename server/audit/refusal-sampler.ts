// Refusals of requests that name no one (a wrong token, or none; throttled
// attempts) are written to the audit trail sparingly, so that a flood of them
// cannot fill it: per client address at most one row per window, and at most
// `perWindow` such rows in all per window. What is held back is counted, and
// the next row written for that address says how many refusals it stands for
// (the ones of other addresses held back by the total cap go into the next
// row written at all). Refusals by a known token are not sampled: whoever
// holds a token is named in every row.

export interface SamplerSettings {
  readonly windowMs: number;
  /** Rows for all addresses together per window. */
  readonly perWindow: number;
}

export const DEFAULT_SAMPLER: SamplerSettings = { windowMs: 60_000, perWindow: 60 };
/** Addresses remembered; past this, quiet ones with nothing held back are forgotten first. */
const MAX_ADDRESSES = 10_000;

interface AddressState {
  /** When this address last had a row written. */
  lastRow: number;
  /** Refusals held back since then. */
  held: number;
}

/** What a written row stands for. */
export interface SampledRow {
  /** Refusals from this address: this one and those held back since its last row. */
  readonly refusals: number;
  /** Refusals of other addresses held back by the total cap since the last row was written. */
  readonly heldElsewhere: number;
}

export class RefusalSampler {
  private readonly addresses = new Map<string, AddressState>();
  private windowStart = 0;
  private rowsInWindow = 0;
  private heldByCap = 0;

  constructor(
    private readonly settings: SamplerSettings = DEFAULT_SAMPLER,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether to write a row for this refusal: what it stands for, or undefined (held back and counted). */
  admit(address: string): SampledRow | undefined {
    const t = this.now();
    if (t - this.windowStart >= this.settings.windowMs) {
      this.windowStart = t;
      this.rowsInWindow = 0;
    }
    const a = this.addresses.get(address);
    const due = a === undefined || t - a.lastRow >= this.settings.windowMs;
    if (!due || this.rowsInWindow >= this.settings.perWindow) {
      if (a) a.held++;
      else this.heldByCap++;
      return undefined;
    }
    this.rowsInWindow++;
    const row = { refusals: (a?.held ?? 0) + 1, heldElsewhere: this.heldByCap };
    this.heldByCap = 0;
    this.remember(address, { lastRow: t, held: 0 });
    return row;
  }

  private remember(address: string, state: AddressState): void {
    this.addresses.delete(address);
    this.addresses.set(address, state);
    if (this.addresses.size <= MAX_ADDRESSES) return;
    // Oldest first (Map order is insertion order, refreshed above).
    for (const [key, s] of this.addresses) {
      if (this.addresses.size <= MAX_ADDRESSES) break;
      this.heldByCap += s.held; // still counted, in the next row written
      this.addresses.delete(key);
    }
  }
}
