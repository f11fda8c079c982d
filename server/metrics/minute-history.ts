// The last hour of a tenant, minute by minute, for the dashboard's charts.
// Nothing is counted here: at each minute's end the history takes the
// difference of the request counters /metrics prints (RequestTraffic) since
// the previous minute's end, and reads worker memory through the same source
// as the tenantry_worker_memory_bytes gauge. The minute still running is the
// counters now minus its start. So the sum over the window is exactly what
// the counters moved by, and the charts cannot drift from /metrics.
import type { RequestTotals } from './request-traffic.js';

export const MINUTE_MS = 60_000;
/** Minutes kept and answered: the one running and the 59 before it. */
export const HISTORY_MINUTES = 60;

export interface MinuteSample extends RequestTotals {
  /** Start of the minute, ISO 8601 (UTC). */
  readonly start: string;
  /** Worker memory at the minute's end (now, for the running minute); null when no worker ran or it cannot be read. */
  readonly memoryBytes: number | null;
}

export interface MinuteSources {
  totals(tenantId: string): RequestTotals;
  /** Tenants with request counters. */
  tenantIds(): Iterable<string>;
  /** The tenant's worker memory now, as the gauge reads it; undefined when no worker runs or it cannot be read. */
  memory(tenantId: string): number | undefined;
  /** The same for every tenant whose workers run now. */
  memoryOfAll(): Iterable<readonly [tenantId: string, bytes: number]>;
}

interface ClosedMinute extends RequestTotals {
  readonly minute: number;
  readonly memoryBytes: number | null;
}

interface TenantHistory {
  /** The counters at the start of the running minute. */
  baseline: RequestTotals;
  /** Closed minutes, oldest first, at most HISTORY_MINUTES - 1. */
  readonly closed: ClosedMinute[];
}

const ZERO: RequestTotals = { requests: 0, errors4xx: 0, errors5xx: 0 };

function minus(a: RequestTotals, b: RequestTotals): RequestTotals {
  return { requests: a.requests - b.requests, errors4xx: a.errors4xx - b.errors4xx, errors5xx: a.errors5xx - b.errors5xx };
}

export class MinuteHistory {
  private readonly tenants = new Map<string, TenantHistory>();
  /** The running minute (minutes since the epoch). */
  private current: number;

  constructor(
    private readonly sources: MinuteSources,
    private readonly now: () => number = Date.now,
  ) {
    this.current = Math.floor(this.now() / MINUTE_MS);
  }

  /** Closes the running minute once the clock has passed its end; called on a timer at each minute's end. */
  tick(): void {
    const minute = Math.floor(this.now() / MINUTE_MS);
    if (minute <= this.current) return;
    const closing = this.current;
    this.current = minute;
    const memory = new Map(this.sources.memoryOfAll());
    const ids = new Set([...this.sources.tenantIds(), ...memory.keys()]);
    for (const id of ids) {
      const h = this.historyOf(id);
      const totals = this.sources.totals(id);
      h.closed.push({ minute: closing, ...minus(totals, h.baseline), memoryBytes: memory.get(id) ?? null });
      h.baseline = totals;
      while (h.closed.length > 0 && h.closed[0]!.minute <= minute - HISTORY_MINUTES) h.closed.shift();
    }
  }

  /** The tenant's last HISTORY_MINUTES minutes, oldest first, the running one last. */
  series(tenantId: string): MinuteSample[] {
    this.tick();
    const h = this.tenants.get(tenantId);
    const byMinute = new Map((h?.closed ?? []).map((c) => [c.minute, c]));
    const out: MinuteSample[] = [];
    for (let m = this.current - HISTORY_MINUTES + 1; m < this.current; m++) {
      const c = byMinute.get(m);
      out.push({ start: new Date(m * MINUTE_MS).toISOString(), requests: c?.requests ?? 0, errors4xx: c?.errors4xx ?? 0, errors5xx: c?.errors5xx ?? 0, memoryBytes: c?.memoryBytes ?? null });
    }
    const running = minus(this.sources.totals(tenantId), h?.baseline ?? ZERO);
    out.push({ start: new Date(this.current * MINUTE_MS).toISOString(), ...running, memoryBytes: this.sources.memory(tenantId) ?? null });
    return out;
  }

  /** A deleted tenant's history goes with its counters. */
  forget(tenantId: string): void {
    this.tenants.delete(tenantId);
  }

  private historyOf(tenantId: string): TenantHistory {
    let h = this.tenants.get(tenantId);
    if (h === undefined) {
      // Counters start at zero for a tenant the edge has not counted yet, so
      // a tenant first seen now has a zero baseline: its first minute is whole.
      h = { baseline: ZERO, closed: [] };
      this.tenants.set(tenantId, h);
    }
    return h;
  }
}
