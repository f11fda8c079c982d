// The platform's Prometheus metrics, in a registry of its own (never
// prom-client's global one). Subsystems get the small interfaces below and
// count; readings that exist elsewhere (cgroups, open connections, crash
// loops) are taken at scrape time through MetricSources, set by app/.
// Labels are bounded: tenant ids, status classes, fixed kinds; never paths.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry } from 'prom-client';

import { RequestTraffic, type RequestKind, type RequestTotals } from './request-traffic.js';
import { MINUTE_MS, MinuteHistory, type MinuteSample } from './minute-history.js';

export type { RequestKind, MinuteSample };
export type Outcome = 'success' | 'failure';
/** What became of a message a tenant's plugin handed over (as MailResult's status). */
export type MailOutcome = 'sent' | 'failed' | 'deferred' | 'refused';
const MAIL_OUTCOMES: readonly MailOutcome[] = ['sent', 'failed', 'deferred', 'refused'];

/** The edge's hot path: one call per answered tenant request. */
export interface RequestMetrics {
  request(tenantId: string, kind: RequestKind, status: number, bytes: number, seconds: number): void;
}

export interface WorkerMetrics {
  workerStarted(tenantId: string): void;
  workerCrashed(tenantId: string): void;
  /** A start that follows a crash (or an unresponsive worker) of the same tenant. */
  workerRestarted(tenantId: string): void;
}

export interface DeployMetrics {
  deployFinished(tenantId: string, outcome: Outcome, seconds: number): void;
}

export interface GitMetrics {
  gitPush(tenantId: string, outcome: Outcome): void;
}

/** For the mailer: one call per message a tenant handed over, by its outcome (refused: a check or the hourly cap). */
export interface MailMetrics {
  mail(outcome: MailOutcome, tenantId?: string): void;
}

export interface TenantUsage {
  readonly memoryBytes: number;
  readonly cpuSeconds: number;
}

/** Read at scrape time. */
export interface MetricSources {
  openConnections(): number;
  /** Tenants the worker pool knows, with their worker count and crash-loop hold. */
  workerStates(): Iterable<{ readonly tenantId: string; readonly running: number; readonly held: boolean }>;
  /** The tenant's cgroup usage, or undefined when it cannot be read here. */
  usage(tenantId: string): TenantUsage | undefined;
  /** Why resource readings are missing (e.g. no cgroups, or not readable by this process); undefined when they work. */
  usageMissing(): string | undefined;
}

export const NO_SOURCES: MetricSources = {
  openConnections: () => 0,
  workerStates: () => [],
  usage: () => undefined,
  usageMissing: () => 'not wired',
};

/** For parts built without metrics (tests, commands). */
export const NO_METRICS: RequestMetrics & WorkerMetrics & DeployMetrics & GitMetrics & MailMetrics = {
  request: () => {},
  workerStarted: () => {},
  workerCrashed: () => {},
  workerRestarted: () => {},
  deployFinished: () => {},
  gitPush: () => {},
  mail: () => {},
};


/** prom-client's JSON form of a registry's metrics, as another edge process sends it. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** Per-process gauges where the platform's figure is the worst edge, not the sum. */
const WORST_OF_EDGES = new Set(['tenantry_edge_event_loop_lag_p99_seconds', 'tenantry_edge_event_loop_lag_max_seconds']);

/** What a sibling edge (static answers only) contributes to the platform's metrics. */
export function isEdgeOwnMetric(name: string): boolean {
  return name.startsWith('tenantry_http_') || name.startsWith('tenantry_edge_') || name === 'tenantry_open_connections';
}

export class PlatformMetrics implements RequestMetrics, WorkerMetrics, DeployMetrics, GitMetrics, MailMetrics {
  readonly registry = new Registry();
  private sources: MetricSources = NO_SOURCES;
  /** The other edge processes' metrics, summed into each scrape (several edges). */
  private peers: (() => Promise<MetricsJson[]>) | undefined;
  private readonly traffic = new RequestTraffic(this.registry);
  /** The dashboard's per-minute view of the same counters and memory readings. */
  private readonly history = new MinuteHistory({
    totals: (id) => plus(this.traffic.totals(id), this.peerTotals.get(id)),
    tenantIds: () => new Set([...this.traffic.tenantIds(), ...this.peerTotals.keys()]),
    memory: (id) => this.memoryOf(id),
    memoryOfAll: () => this.memoryOfAll(),
  });
  private minuteTimer: NodeJS.Timeout | undefined;
  /** The other edges' request counters, as of their last scrape (several edges). */
  private peerTotals = new Map<string, RequestTotals>();
  private readonly starts = new Counter({ name: 'tenantry_worker_starts_total', help: 'Workers started', labelNames: ['tenant'], registers: [this.registry] });
  private readonly crashes = new Counter({ name: 'tenantry_worker_crashes_total', help: 'Workers that exited unexpectedly or stopped answering', labelNames: ['tenant'], registers: [this.registry] });
  private readonly restarts = new Counter({ name: 'tenantry_worker_restarts_total', help: 'Worker starts that followed a crash', labelNames: ['tenant'], registers: [this.registry] });
  private readonly deploys = new Counter({ name: 'tenantry_deploys_total', help: 'Deploys by outcome', labelNames: ['tenant', 'outcome'], registers: [this.registry] });
  private readonly deploySeconds = new Histogram({ name: 'tenantry_deploy_duration_seconds', help: 'Deploy duration, upload received to live (or refused)', labelNames: ['outcome'], buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers: [this.registry] });
  private readonly pushes = new Counter({ name: 'tenantry_git_pushes_total', help: 'git pushes by outcome', labelNames: ['tenant', 'outcome'], registers: [this.registry] });
  private readonly mails = new Counter({ name: 'tenantry_mail_total', help: 'Messages tenants handed to the platform, by outcome (sent, failed, deferred, refused)', labelNames: ['tenant', 'outcome'], registers: [this.registry] });

  constructor(options: { readonly eventLoop?: boolean } = {}) {
    const self = this;
    this.startMinuteTimer();
    // The edge's event-loop lag (prom-client's default metrics include names promtool's lint refuses).
    if (options.eventLoop !== false) {
      const delay = monitorEventLoopDelay({ resolution: 20 });
      delay.enable();
      const lag = (name: string, help: string, pick: () => number) =>
        new Gauge({
          name,
          help,
          registers: [this.registry],
          collect() {
            this.set(pick() / 1e9);
          },
        });
      lag('tenantry_edge_event_loop_lag_p99_seconds', 'Event-loop delay of the edge, 99th percentile since the last scrape', () => delay.percentile(99));
      lag('tenantry_edge_event_loop_lag_max_seconds', 'Event-loop delay of the edge, maximum since the last scrape', () => {
        const max = delay.max;
        delay.reset(); // the max is read last: the window restarts at each scrape
        return max;
      });
      new Gauge({
        name: 'tenantry_edge_resident_memory_bytes',
        help: 'Resident memory of the edge process',
        registers: [this.registry],
        collect() {
          this.set(process.memoryUsage.rss());
        },
      });
    }
    new Gauge({
      name: 'tenantry_open_connections',
      help: 'Connections open on the edge listeners',
      registers: [this.registry],
      collect() {
        this.set(self.sources.openConnections());
      },
    });
    new Gauge({
      name: 'tenantry_workers_running',
      help: 'Workers running per tenant',
      labelNames: ['tenant'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const w of self.sources.workerStates()) this.set({ tenant: w.tenantId }, w.running);
      },
    });
    new Gauge({
      name: 'tenantry_worker_crash_loop',
      help: '1 while a tenant\'s dynamic routes are on hold after a crash loop',
      labelNames: ['tenant'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const w of self.sources.workerStates()) this.set({ tenant: w.tenantId }, w.held ? 1 : 0);
      },
    });
    const usage = (pick: (u: TenantUsage) => number) =>
      function (this: Gauge<string>) {
        this.reset();
        for (const [tenant, u] of self.usageOfRunning()) this.set({ tenant }, pick(u));
      };
    new Gauge({ name: 'tenantry_worker_memory_bytes', help: 'Memory in use by the tenant\'s workers (cgroup)', labelNames: ['tenant'], registers: [this.registry], collect: usage((u) => u.memoryBytes) });
    new Gauge({ name: 'tenantry_worker_cpu_seconds', help: 'CPU time used by the tenant\'s current cgroups (resets when they are removed)', labelNames: ['tenant'], registers: [this.registry], collect: usage((u) => u.cpuSeconds) });
    new Gauge({
      name: 'tenantry_worker_resources_readable',
      help: '1 when worker memory and CPU can be read from the cgroups by the edge; 0 otherwise (see the reason label)',
      labelNames: ['reason'],
      registers: [this.registry],
      collect() {
        this.reset();
        const missing = self.sources.usageMissing();
        this.set({ reason: missing ?? '' }, missing === undefined ? 1 : 0);
      },
    });
  }

  setSources(sources: MetricSources): void {
    this.sources = sources;
  }

  /** cgroup usage of the tenants whose workers run now: what the memory and CPU gauges print. */
  private *usageOfRunning(): Iterable<readonly [string, TenantUsage]> {
    for (const w of this.sources.workerStates()) {
      const u = w.running > 0 ? this.sources.usage(w.tenantId) : undefined;
      if (u) yield [w.tenantId, u];
    }
  }

  private *memoryOfAll(): Iterable<readonly [string, number]> {
    for (const [tenant, u] of this.usageOfRunning()) yield [tenant, u.memoryBytes];
  }

  private memoryOf(tenantId: string): number | undefined {
    for (const w of this.sources.workerStates()) {
      if (w.tenantId === tenantId) return w.running > 0 ? this.sources.usage(tenantId)?.memoryBytes : undefined;
    }
    return undefined;
  }

  /**
   * The tenant's last hour by minute (requests, 4xx, 5xx, worker memory),
   * taken from the counters and readings above; see minute-history.ts.
   */
  async minutes(tenantId: string): Promise<{ minutes: MinuteSample[]; memoryMissing?: string }> {
    await this.refreshPeerTotals();
    return { minutes: this.history.series(tenantId), memoryMissing: this.sources.usageMissing() };
  }

  /** With several edges, the others' request counters join this edge's, as they do in /metrics. */
  private async refreshPeerTotals(): Promise<void> {
    if (this.peers === undefined) return;
    this.peerTotals = requestTotalsOf(await this.peers());
  }

  /** Closes each minute at its end (unref'd: it keeps no process alive), until close(). */
  private startMinuteTimer(): void {
    const schedule = () => {
      this.minuteTimer = setTimeout(() => {
        void this.refreshPeerTotals()
          .catch(() => {})
          .then(() => {
            this.history.tick();
            schedule();
          });
      }, MINUTE_MS - (Date.now() % MINUTE_MS) + 5);
      this.minuteTimer.unref();
    };
    schedule();
  }

  close(): void {
    clearTimeout(this.minuteTimer);
    this.minuteTimer = undefined;
  }

  setPeers(peers: () => Promise<MetricsJson[]>): void {
    this.peers = peers;
  }

  /** The text format for GET /metrics: this process's, plus the other edges' when there are several. */
  async text(): Promise<string> {
    if (this.peers === undefined) return this.registry.metrics();
    const all = [await this.registry.getMetricsAsJSON(), ...(await this.peers())] as MetricsJson[];
    for (const list of all) for (const m of list) if (WORST_OF_EDGES.has(m.name)) (m as { aggregator: string }).aggregator = 'max';
    return AggregatorRegistry.aggregate(all).metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The hot path: typed-array increments only (see request-traffic.ts). */
  request(tenantId: string, kind: RequestKind, status: number, bytes: number, seconds: number): void {
    this.traffic.record(tenantId, kind, status, bytes, seconds);
  }

  /** A deleted tenant: its series go, so labels stay bounded by the tenants that exist. */
  forgetTenant(tenantId: string): void {
    this.traffic.forget(tenantId);
    this.history.forget(tenantId);
    for (const c of [this.starts, this.crashes, this.restarts]) c.remove({ tenant: tenantId });
    for (const outcome of ['success', 'failure'] as const) {
      this.deploys.remove({ tenant: tenantId, outcome });
      this.pushes.remove({ tenant: tenantId, outcome });
    }
    for (const outcome of MAIL_OUTCOMES) this.mails.remove({ tenant: tenantId, outcome });
  }

  workerStarted(tenantId: string): void {
    this.starts.inc({ tenant: tenantId });
  }

  workerCrashed(tenantId: string): void {
    this.crashes.inc({ tenant: tenantId });
  }

  workerRestarted(tenantId: string): void {
    this.restarts.inc({ tenant: tenantId });
  }

  deployFinished(tenantId: string, outcome: Outcome, seconds: number): void {
    this.deploys.inc({ tenant: tenantId, outcome });
    this.deploySeconds.observe({ outcome }, seconds);
  }

  gitPush(tenantId: string, outcome: Outcome): void {
    this.pushes.inc({ tenant: tenantId, outcome });
  }

  mail(outcome: MailOutcome, tenantId?: string): void {
    this.mails.inc({ tenant: tenantId ?? '', outcome });
  }
}

function plus(a: RequestTotals, b: RequestTotals | undefined): RequestTotals {
  return b ? { requests: a.requests + b.requests, errors4xx: a.errors4xx + b.errors4xx, errors5xx: a.errors5xx + b.errors5xx } : a;
}

/** Per tenant request totals from other edges' metrics (prom-client JSON), as RequestTraffic.totals() counts them. */
function requestTotalsOf(edges: readonly MetricsJson[]): Map<string, RequestTotals> {
  const out = new Map<string, RequestTotals>();
  for (const list of edges) {
    for (const m of list) {
      if (m.name !== 'tenantry_http_requests_total') continue;
      for (const v of m.values) {
        const tenant = String(v.labels.tenant ?? '');
        const cls = String(v.labels.status_class ?? '');
        const t = out.get(tenant) ?? { requests: 0, errors4xx: 0, errors5xx: 0 };
        out.set(tenant, {
          requests: t.requests + v.value,
          errors4xx: t.errors4xx + (cls === '4xx' ? v.value : 0),
          errors5xx: t.errors5xx + (cls === '5xx' ? v.value : 0),
        });
      }
    }
  }
  return out;
}
