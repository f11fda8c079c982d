// Per-tenant request counts for the edge's hot path: plain typed arrays,
// incremented with no label hashing or allocation (prom-client's own
// counters hash their labels on every call, a measurable cost per request).
// The registry turns them into Prometheus series when it is scraped.
import type { Registry } from 'prom-client';

export type RequestKind = 'static' | 'dynamic' | 'plugin';

const KINDS: readonly RequestKind[] = ['static', 'dynamic', 'plugin'];
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export const LATENCY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const B = LATENCY_BUCKETS.length + 1; // + the +Inf bucket

/** Requests answered, and those among them with a 4xx or 5xx status. */
export interface RequestTotals {
  readonly requests: number;
  readonly errors4xx: number;
  readonly errors5xx: number;
}

const ZERO_TOTALS: RequestTotals = { requests: 0, errors4xx: 0, errors5xx: 0 };

interface TenantTraffic {
  /** [class * 3 + kind] */
  readonly requests: Float64Array;
  readonly bytes: Float64Array;
  /** [kind * B + bucket], not cumulative (made cumulative at scrape). */
  readonly buckets: Float64Array;
  readonly sums: Float64Array;
}

interface Sample {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}

/** A metric family prom-client's registry prints (it calls get() at scrape). */
function family(registry: Registry, name: string, help: string, type: 'counter' | 'histogram', values: () => Sample[]): void {
  const metric = { name, help, type, aggregator: 'sum', get: async () => ({ name, help, type, values: values(), aggregator: 'sum' }) };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}

export class RequestTraffic {
  private readonly tenants = new Map<string, TenantTraffic>();

  constructor(registry: Registry) {
    family(registry, 'tenantry_http_requests_total', 'Tenant requests answered, by status class and kind', 'counter', () => this.requestSamples());
    family(registry, 'tenantry_http_response_bytes_total', 'Bytes sent for tenant requests (headers included)', 'counter', () => this.byteSamples());
    family(registry, 'tenantry_http_request_duration_seconds', 'Time from the request to the last byte handed to the socket', 'histogram', () => this.latencySamples());
  }

  record(tenantId: string, kind: RequestKind, status: number, bytes: number, seconds: number): void {
    let t = this.tenants.get(tenantId);
    if (t === undefined) {
      t = { requests: new Float64Array(CLASSES.length * 3), bytes: new Float64Array(3), buckets: new Float64Array(3 * B), sums: new Float64Array(3) };
      this.tenants.set(tenantId, t);
    }
    const k = kind === 'static' ? 0 : kind === 'dynamic' ? 1 : 2;
    const cls = Math.min(Math.max(Math.floor(status / 100), 1), 5) - 1;
    t.requests[cls * 3 + k]!++;
    if (bytes > 0) t.bytes[k]! += bytes;
    let b = 0;
    while (b < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[b]!) b++;
    t.buckets[k * B + b]!++;
    t.sums[k]! += seconds;
  }

  /** The tenant's counts so far (all kinds): what the per-minute history takes its differences of. */
  totals(tenantId: string): RequestTotals {
    const t = this.tenants.get(tenantId);
    if (t === undefined) return ZERO_TOTALS;
    let requests = 0;
    for (let i = 0; i < t.requests.length; i++) requests += t.requests[i]!;
    const classSum = (c: number) => t.requests[c * 3]! + t.requests[c * 3 + 1]! + t.requests[c * 3 + 2]!;
    return { requests, errors4xx: classSum(3), errors5xx: classSum(4) };
  }

  tenantIds(): Iterable<string> {
    return this.tenants.keys();
  }

  /** A deleted tenant's series go. */
  forget(tenantId: string): void {
    this.tenants.delete(tenantId);
  }

  private requestSamples(): Sample[] {
    const out: Sample[] = [];
    for (const [tenant, t] of this.tenants) {
      for (let c = 0; c < CLASSES.length; c++) {
        for (let k = 0; k < 3; k++) {
          const v = t.requests[c * 3 + k]!;
          if (v > 0) out.push({ labels: { tenant, status_class: CLASSES[c]!, kind: KINDS[k]! }, value: v });
        }
      }
    }
    return out;
  }

  private byteSamples(): Sample[] {
    const out: Sample[] = [];
    for (const [tenant, t] of this.tenants) {
      for (let k = 0; k < 3; k++) if (this.countOf(t, k) > 0) out.push({ labels: { tenant, kind: KINDS[k]! }, value: t.bytes[k]! });
    }
    return out;
  }

  private countOf(t: TenantTraffic, k: number): number {
    let n = 0;
    for (let b = 0; b < B; b++) n += t.buckets[k * B + b]!;
    return n;
  }

  private latencySamples(): Sample[] {
    const name = 'tenantry_http_request_duration_seconds';
    const out: Sample[] = [];
    for (const [tenant, t] of this.tenants) {
      for (let k = 0; k < 3; k++) {
        const count = this.countOf(t, k);
        if (count === 0) continue;
        const kind = KINDS[k]!;
        let cumulative = 0;
        for (let b = 0; b < B; b++) {
          cumulative += t.buckets[k * B + b]!;
          const le = b < LATENCY_BUCKETS.length ? LATENCY_BUCKETS[b]! : '+Inf';
          out.push({ metricName: `${name}_bucket`, labels: { tenant, kind, le }, value: cumulative });
        }
        out.push({ metricName: `${name}_sum`, labels: { tenant, kind }, value: t.sums[k]! });
        out.push({ metricName: `${name}_count`, labels: { tenant, kind }, value: count });
      }
    }
    return out;
  }
}
