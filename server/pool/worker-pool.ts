// One worker process per tenant, in the edge for now. A tenant needs one when
// its live release has api/ or it has a plugin enabled. Workers start on the
// first dynamic request (the request waits), stop when idle, restart after a
// crash with backoff, and are put on hold after a crash loop. A worker's
// identity is its release plus the tenant's enabled plugins and their config:
// when either changes, a new worker is started and health-checked first (a
// deploy, or pluginSettingsChanged), then takes over, and the old one drains
// its in-flight requests and stops. How a worker is launched (plain child
// process or sandbox) is the WorkerLauncher's business.
//
// Invariant: a Worker's inFlight is counted in the same tick it is chosen for
// a request, so retiring it can never cut a request that was already routed.
import type { WorkerMetrics } from '../metrics/platform-metrics.js';
import fs from 'node:fs';
import type { WorkerCapabilities } from './worker-capabilities.js';
import { Pool } from 'undici';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Store, TenantRecord } from '../db/store.js';
import type { Logger } from '../log.js';
import { effectiveLimits } from '../model/limits.js';
import type { DataPaths } from '../paths.js';
import type { SiteIndex } from '../static/index/site-index.js';
import type { ActivationHooks } from '../releases/release-manager.js';
import type { TenantLifecycleHooks } from '../tenants/tenant-service.js';
import type { LaunchedWorker, WorkerExit, WorkerLauncher } from '../launch/worker-launch.js';
import { WORKER_ENTRY } from '../launch/entries.js';
import { CrashHistory, CRASH_LOOP_HOLD_MS } from './crash-history.js';
import { probeHealth, waitUntilHealthy } from './health-check.js';
import { connectChecked } from './socket-guard.js';
import { UpstreamPool } from './upstream/upstream-connection.js';
import { buildWorkerEnv } from './worker-env.js';
import { NO_PLUGIN_SETTINGS, PluginSettings, publicPluginOf, type PluginSet, type PluginSettingsSource } from './plugin-settings.js';
import type { TenantLogs } from '../tenants/tenant-logs.js';

const START_DEADLINE_MS = 15_000;
const HANG_PROBE_MS = 2_000;
/** A worker started for a deploy that never went live is stopped after this. */
const CANDIDATE_MAX_MS = 60_000;
const MAX_SOCKET_PATH = 107;
const CLOSE_DEADLINE_MS = 10_000;

type WorkerState = 'starting' | 'ready' | 'lost' | 'draining' | 'stopping' | 'exited';

export class Worker {
  state: WorkerState = 'starting';
  inFlight = 0;
  lastActive = Date.now();
  stopRequested = false;
  stopped: Promise<void> | undefined;
  probing = false;
  /** The memory limit it was started with (named when it is killed outright). */
  memoryMB: number | undefined;
  /** Keep-alive connections to the worker's socket for relayed requests, one request at a time each. */
  readonly upstream: UpstreamPool;
  /** The same, through undici, for the platform's own requests to the worker (plugin admin pages). */
  readonly dispatcher: Pool;
  readonly releaseDir: string;

  constructor(
    readonly tenantId: string,
    /** The release it serves; with `plugins`, the worker's identity. */
    readonly site: SiteIndex,
    readonly plugins: PluginSet,
    readonly socketPath: string,
    readonly launched: LaunchedWorker,
  ) {
    this.releaseDir = site.releaseDir;
    // Each new connection checks the path first: never a link or a socket the platform did not make.
    this.upstream = new UpstreamPool(socketPath);
    this.dispatcher = new Pool('http://worker', { connect: (_opts, done) => connectChecked(socketPath, done), connections: 256, pipelining: 1 });
  }

  /** Started for this release with these plugins. */
  serves(site: SiteIndex, plugins: PluginSet): boolean {
    return this.releaseDir === site.releaseDir && this.plugins.key === plugins.key;
  }

  /** Closes the connections to the worker; requests still on them fail. */
  closeConnections(): void {
    this.upstream.destroy();
    this.dispatcher.destroy().catch(() => {});
  }

  get pid(): number {
    return this.launched.pid;
  }
}

/** The tenant's dynamic routes cannot be served right now. */
export class WorkerUnavailableError extends Error {
  override readonly name = 'WorkerUnavailableError';
  constructor(
    message: string,
    readonly status: 502 | 503,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** A worker did not become healthy; the message says why (load error, exit, timeout). */
export class WorkerStartError extends Error {
  override readonly name = 'WorkerStartError';
}

interface TenantWorkers {
  current?: Worker;
  /** Started by a deploy, waiting for the switch. */
  pending?: Worker;
  starting?: Promise<Worker>;
  readonly draining: Set<Worker>;
  readonly crashes: CrashHistory;
  /** A crash since the last start: the next start counts as a restart. */
  crashedSinceStart?: boolean;
  /** Socket name counter: every worker gets its own socket. */
  generation: number;
  /** Bumped by stopTenant, so a start that was under way is discarded. */
  epoch: number;
  /** The last of the queued replacements for a plugin settings change (refresh). */
  refreshing?: Promise<void>;
}

export interface WorkerPoolDeps {
  readonly config: Config;
  readonly paths: DataPaths;
  readonly store: Store;
  readonly log: Logger;
  readonly launcher: WorkerLauncher;
  readonly logs: TenantLogs;
  /** Which plugins each tenant has enabled; default: none. */
  readonly plugins?: PluginSettingsSource;
  /** The capability channel (mail, plugin keys) of workers that run plugins; none: plugins get no channel. */
  readonly capabilities?: WorkerCapabilities;
  readonly entry?: string;
  /** Worker starts, crashes and restarts; default: not counted. */
  readonly metrics?: WorkerMetrics;
  /** A plugin of the tenant has background work pending: its worker is not stopped for idleness. */
  readonly keepRunning?: (tenantId: string) => boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * File chores the launcher may own instead (a sandbox prepares the socket
 * folder as root): done when this process may, skipped when it may not.
 */
function bestEffort(op: () => void): void {
  try {
    op();
  } catch {
    /* not ours to do here */
  }
}

function exitText(exit: WorkerExit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/** Why a worker may have been killed outright: the memory cgroup's OOM kill sends SIGKILL (137 through a shell). */
function killHint(exit: WorkerExit, memoryMB: number | undefined): string {
  if (exit.signal !== 'SIGKILL' && exit.code !== 137) return '';
  const limit = memoryMB ? `, ${memoryMB} MB` : '';
  return ` (SIGKILL: most often the tenant's memory limit${limit} was reached; use less memory or raise limits.memoryMB)`;
}

export class WorkerPool {
  private readonly tenants = new Map<string, TenantWorkers>();
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly idleMs: number;
  private lastRotateCheck = 0;
  private closed = false;
  private readonly plugins: PluginSettings;

  constructor(private readonly deps: WorkerPoolDeps) {
    this.plugins = new PluginSettings(deps.plugins ?? NO_PLUGIN_SETTINGS, (tenant, problem) =>
      deps.log.error('plugin settings refused', { tenant, problem }),
    );
    this.idleMs = deps.config.workerIdleSeconds * 1000;
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(250, Math.min(10_000, this.idleMs / 4)));
    this.sweepTimer.unref();
  }

  /** Each tenant the pool knows: workers running and whether a crash loop holds it (read at metrics scrape). */
  *states(): Iterable<{ tenantId: string; running: number; held: boolean }> {
    const now = Date.now();
    for (const [tenantId, t] of this.tenants) {
      const running = (t.current ? 1 : 0) + (t.pending ? 1 : 0) + t.draining.size;
      yield { tenantId, running, held: t.crashes.isHeld(now) };
    }
  }

  // ---- requests

  /**
   * A ready worker for the tenant's live release and enabled plugins, started
   * if needed. The caller must call release(worker) when its request is done.
   */
  async acquire(tenantId: string, site: SiteIndex): Promise<Worker> {
    if (this.closed) throw new WorkerUnavailableError('the platform is shutting down', 503, 5);
    const t = this.stateOf(tenantId);
    const now = Date.now();
    if (t.crashes.isHeld(now)) {
      throw new WorkerUnavailableError(`dynamic routes are on hold: ${t.crashes.reason}`, 503, t.crashes.retryAfterSeconds(now));
    }
    const ready = this.pick(t, site, this.plugins.of(tenantId));
    if (ready) return this.claim(ready);
    t.starting ??= this.startLive(tenantId, t, site).finally(() => (t.starting = undefined));
    let w: Worker;
    try {
      w = await t.starting;
    } catch (err) {
      if (err instanceof WorkerUnavailableError) throw err;
      throw new WorkerUnavailableError(`the worker could not start: ${(err as Error).message}`, 502);
    }
    const chosen = this.pick(t, site, this.plugins.of(tenantId)) ?? (w.state === 'ready' ? w : undefined);
    if (!chosen) throw new WorkerUnavailableError('the worker stopped while starting', 502);
    return this.claim(chosen);
  }

  release(w: Worker): void {
    w.inFlight--;
    w.lastActive = Date.now();
    if (w.state === 'draining' && w.inFlight <= 0) void this.stopWorker(w, 'drained');
  }

  /**
   * A request to this worker timed out. If the worker does not answer its
   * health check either (event loop blocked), it is restarted.
   */
  reportTimeout(w: Worker): void {
    if (w.state !== 'ready' || w.probing) return;
    w.probing = true;
    void probeHealth(w.socketPath, HANG_PROBE_MS).then((answer) => {
      w.probing = false;
      if (answer.kind === 'healthy' || w.state !== 'ready') return;
      const reason = 'it stopped answering (a request timed out and so did its health check)';
      this.deps.logs.append(w.tenantId, `tenantry: restarting the worker: ${reason}`);
      this.deps.log.warn('worker unresponsive; restarting', { tenant: w.tenantId, pid: w.pid });
      this.recordCrash(w.tenantId, reason);
      void this.stopWorker(w, 'unresponsive');
    });
  }

  /**
   * The worker's socket refused a connection: it died (the exit may not have
   * been reported yet) or stopped listening. New requests go to a new worker;
   * this one is killed, and its exit counts as a crash.
   */
  reportUnreachable(w: Worker): void {
    if (w.state !== 'ready') return;
    const t = this.tenants.get(w.tenantId);
    if (t?.current === w) t.current = undefined;
    if (t?.pending === w) t.pending = undefined;
    w.state = 'lost';
    w.closeConnections();
    void w.launched.kill();
  }

  private claim(w: Worker): Worker {
    w.inFlight++;
    w.lastActive = Date.now();
    return w;
  }

  /**
   * The worker for this release and these plugins: the pending one during a
   * switch, else the current one. While a replacement starts, the current
   * worker keeps serving even though it no longer matches.
   */
  private pick(t: TenantWorkers, site: SiteIndex, plugins: PluginSet): Worker | undefined {
    for (const w of [t.pending, t.current]) if (w?.state === 'ready' && w.serves(site, plugins)) return w;
    return t.current?.state === 'ready' ? t.current : undefined;
  }

  private async startLive(tenantId: string, t: TenantWorkers, site: SiteIndex): Promise<Worker> {
    const epoch = t.epoch;
    const wait = t.crashes.backoffMs(Date.now());
    if (wait > 0) await sleep(wait);
    let w: Worker;
    try {
      w = await this.startWorker(tenantId, t, site, this.plugins.of(tenantId));
    } catch (err) {
      this.recordCrash(tenantId, `start failed: ${(err as Error).message}`);
      throw err;
    }
    if (this.closed || t.epoch !== epoch || this.tenants.get(tenantId) !== t) {
      await this.stopWorker(w, 'the tenant was stopped while its worker started');
      throw new WorkerUnavailableError('the tenant was stopped', 503, 5);
    }
    if (t.current?.state === 'ready') {
      // A deploy switched while this one started: keep the deploy's worker.
      this.retire(w, 'superseded');
      return t.current;
    }
    t.current = w;
    return w;
  }

  private async startWorker(tenantId: string, t: TenantWorkers, site: SiteIndex, plugins: PluginSet, label?: string): Promise<Worker> {
    const { paths, store, logs, launcher } = this.deps;
    const tenant = store.tenants.get(tenantId);
    if (!tenant) throw new WorkerStartError('the tenant no longer exists');
    if (plugins.problem) throw new WorkerStartError(plugins.problem);
    const runDir = paths.run(tenantId);
    const socketPath = path.join(runDir, `http-${++t.generation}.sock`);
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
      throw new WorkerStartError(`the socket path ${socketPath} is longer than ${MAX_SOCKET_PATH} bytes; use a shorter data folder`);
    }
    // The launcher makes the socket folder and the socket itself (never the worker).
    for (const dir of [paths.tenantData(tenantId), paths.logs(tenantId)]) bestEffort(() => fs.mkdirSync(dir, { recursive: true, mode: 0o750 }));
    const release = label ?? path.basename(site.releaseDir);
    const withPlugins = plugins.list.length ? ` with plugins ${plugins.list.map((p) => p.name).join(', ')}` : '';
    const logFrom = logs.size(tenantId);
    logs.append(tenantId, `tenantry: starting the worker for release ${release}${withPlugins}`);
    const limits = effectiveLimits(tenant.limitOverrides);
    let launched: LaunchedWorker;
    try {
      const caps = plugins.list.length && this.deps.capabilities ? await this.deps.capabilities.prepare(tenantId, plugins.list.map((p) => p.name)) : undefined;
      launched = await launcher.launch({
        tenantId,
        releaseDir: site.releaseDir,
        dataDir: paths.tenantData(tenantId),
        runDir,
        socketPath,
        logFile: logs.file(tenantId),
        entry: this.deps.entry ?? WORKER_ENTRY,
        args: ['--release', site.releaseDir],
        env: { ...this.envFor(tenant, site), ...caps?.env },
        limits,
        network: tenant.network,
        plugins: plugins.list,
        ...(caps ? { capabilityDir: caps.dir } : {}),
      });
    } catch (err) {
      throw new WorkerStartError(`could not launch the worker: ${(err as Error).message}`);
    }
    const w = new Worker(tenantId, site, plugins, socketPath, launched);
    w.memoryMB = limits.memoryMB;
    void launched.exited.then((exit) => this.onExit(w, exit));
    const answer = await waitUntilHealthy(socketPath, launched.exited, START_DEADLINE_MS);
    if (answer.kind === 'healthy' && w.state === 'starting') {
      w.state = 'ready';
      this.deps.metrics?.workerStarted(tenantId);
      if (t.crashedSinceStart) this.deps.metrics?.workerRestarted(tenantId);
      t.crashedSinceStart = false;
      logs.append(tenantId, `tenantry: worker ready (pid ${w.pid}, release ${release}${withPlugins})`);
      return w;
    }
    let why: string;
    if (answer.kind === 'unhealthy' || answer.kind === 'refused') why = answer.error;
    else if (w.state === 'exited' || (answer.kind === 'unreachable' && answer.error === 'exited')) {
      const exit = await launched.exited;
      const said = this.lastOutput(tenantId, logFrom);
      why = `the worker ${exitText(exit)} before it was ready${said ? `; its last output: ${said}` : ''}`;
    } else why = `the worker did not become ready within ${START_DEADLINE_MS / 1000} s`;
    logs.append(tenantId, `tenantry: the worker for release ${release} did not start: ${why}`);
    await this.stopWorker(w, 'failed to start');
    throw new WorkerStartError(why);
  }

  private envFor(tenant: TenantRecord, site: SiteIndex): Record<string, string> {
    return buildWorkerEnv({
      tenantId: tenant.id,
      dataDir: this.deps.paths.tenantData(tenant.id),
      releaseEnv: site.config.env,
      tenantEnv: this.deps.store.env.get(tenant.id),
    });
  }

  /** The worker's own last lines since `from` (our lifecycle lines left out). */
  private lastOutput(tenantId: string, from: number): string {
    const lines = this.deps.logs
      .readSince(tenantId, from)
      .split('\n')
      .map((l) => l.trim())
      // Stack frames and the version banner say little; the error lines say why.
      .filter((l) => l && !/^\S+ tenantry: /.test(l) && !/^at /.test(l) && !/^Node\.js v\d/.test(l));
    return lines.slice(-3).join(' | ').slice(-600);
  }

  private onExit(w: Worker, exit: WorkerExit): void {
    const wasReady = w.state === 'ready' || w.state === 'lost';
    const expected = w.stopRequested;
    w.state = 'exited';
    w.closeConnections();
    const t = this.tenants.get(w.tenantId);
    if (!t) return;
    if (t.current === w) t.current = undefined;
    if (t.pending === w) t.pending = undefined;
    t.draining.delete(w);
    if (expected || !wasReady) return;
    const reason = exitText(exit);
    this.deps.logs.append(w.tenantId, `tenantry: the worker ${reason} unexpectedly${killHint(exit, w.memoryMB)}; it restarts on the next request`);
    this.deps.log.warn('worker crashed', { tenant: w.tenantId, pid: w.pid, reason });
    this.recordCrash(w.tenantId, reason);
  }

  private recordCrash(tenantId: string, reason: string): void {
    const t = this.tenants.get(tenantId);
    if (!t) return;
    this.deps.metrics?.workerCrashed(tenantId);
    t.crashedSinceStart = true;
    if (t.crashes.record(Date.now(), reason)) {
      const why = t.crashes.reason;
      this.deps.log.warn('worker crash loop; dynamic routes on hold', { tenant: tenantId, reason: why });
      this.deps.logs.append(
        tenantId,
        `tenantry: ${why}. Dynamic routes answer 503 for ${CRASH_LOOP_HOLD_MS / 60_000} minutes, or until the next deploy, env change or settings change.`,
      );
    }
  }

  /** Takes a worker out of rotation; it stops once its in-flight requests are done. */
  private retire(w: Worker, why: string): void {
    const t = this.tenants.get(w.tenantId);
    if (t?.current === w) t.current = undefined;
    if (t?.pending === w) t.pending = undefined;
    if (w.state !== 'ready' && w.state !== 'starting') return;
    w.state = 'draining';
    t?.draining.add(w);
    if (w.inFlight <= 0) {
      void this.stopWorker(w, why);
      return;
    }
    // A request that never ends must not keep an old release running forever.
    setTimeout(() => void this.stopWorker(w, `${why}; drain deadline passed`), this.deps.config.requestTimeoutSeconds * 1000 + 5000).unref();
  }

  private stopWorker(w: Worker, why: string): Promise<void> {
    w.stopped ??= this.stopWorkerOnce(w, why);
    return w.stopped;
  }

  private async stopWorkerOnce(w: Worker, why: string): Promise<void> {
    w.stopRequested = true;
    const t = this.tenants.get(w.tenantId);
    if (t?.current === w) t.current = undefined;
    if (t?.pending === w) t.pending = undefined;
    if (w.state !== 'exited') {
      w.state = 'stopping';
      this.deps.logs.append(w.tenantId, `tenantry: stopping the worker (pid ${w.pid}): ${why}`);
    }
    w.closeConnections();
    await w.launched.kill();
  }

  private sweep(): void {
    const now = Date.now();
    for (const t of this.tenants.values()) {
      const w = t.current;
      if (w?.state === 'ready' && w.inFlight <= 0 && now - w.lastActive >= this.idleMs) {
        // Stopping it would cut the plugin's work mid-way (a mail in flight becomes unknown).
        if (this.deps.keepRunning?.(w.tenantId)) continue;
        void this.stopWorker(w, `idle for ${Math.round((now - w.lastActive) / 1000)} s`);
      }
    }
    if (now - this.lastRotateCheck >= 10_000) {
      this.lastRotateCheck = now;
      for (const [id, t] of this.tenants) if (t.current || t.draining.size) this.deps.logs.rotateIfLarge(id);
    }
  }

  private stateOf(tenantId: string): TenantWorkers {
    let t = this.tenants.get(tenantId);
    if (!t) {
      t = { draining: new Set(), crashes: new CrashHistory(), generation: 0, epoch: 0 };
      this.tenants.set(tenantId, t);
      this.removeStaleSockets(tenantId);
    }
    return t;
  }

  /** Sockets left by workers of an earlier run of the platform. */
  private removeStaleSockets(tenantId: string): void {
    const dir = this.deps.paths.run(tenantId);
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) if (n.endsWith('.sock')) bestEffort(() => fs.rmSync(path.join(dir, n), { force: true }));
  }

  // ---- deploys and tenant changes

  /** Whether the tenant needs a worker for this release: it has api/ routes, or a plugin is enabled. */
  needsWorker(tenantId: string, site: SiteIndex): boolean {
    return site.hasApi || this.plugins.of(tenantId).list.length > 0;
  }

  /** beforeActivate: start the new release's worker and check it; throw (with why) to refuse the release. */
  async prepareRelease(tenantId: string, deployId: string, site: SiteIndex): Promise<void> {
    if (this.closed || !this.needsWorker(tenantId, site)) return;
    // The starter site is our own template; its worker starts on first use.
    if (this.deps.store.deploys.get(tenantId, deployId)?.source === 'starter') return;
    const t = this.stateOf(tenantId);
    if (t.pending) await this.stopWorker(t.pending, 'replaced by another deploy');
    const plugins = this.plugins.of(tenantId);
    let w: Worker;
    try {
      w = await this.startWorker(tenantId, t, site, plugins, deployId);
    } catch (err) {
      const what = !plugins.list.length ? 'the api/ routes of this release' : site.hasApi ? "this release's api/ routes and the tenant's plugins" : "the tenant's plugins";
      throw new Error(`${what} could not start: ${(err as Error).message}`);
    }
    t.pending = w;
    setTimeout(() => {
      if (t.pending === w) void this.stopWorker(w, 'its release never went live');
    }, CANDIDATE_MAX_MS).unref();
  }

  /** afterActivate: the new release's worker takes over; the old one drains and stops. */
  async switchRelease(tenantId: string, deployId: string, site: SiteIndex): Promise<void> {
    const t = this.tenants.get(tenantId);
    if (!t) return;
    t.crashes.clear();
    const next = t.pending?.releaseDir === site.releaseDir && t.pending.state === 'ready' ? t.pending : undefined;
    t.pending = undefined;
    const old = t.current;
    t.current = next;
    if (old && old !== next) this.retire(old, `release ${deployId} went live`);
    // Plugin settings changed while the new release's worker started: replace it too.
    if (next && !next.serves(site, this.plugins.of(tenantId))) void this.refresh(tenantId, t).catch(() => {});
  }

  // ---- plugin settings

  /**
   * The tenant's enabled plugins or their config changed: re-read them from
   * the source, and if a worker is serving, start one with the new settings,
   * wait until it is healthy, switch, and let the old one drain (as a deploy
   * does). With no worker running, the next request starts one with the new
   * settings. Lifts a crash-loop hold. Resolves once the new settings serve;
   * rejects with why when the new worker could not start: the old one then
   * keeps serving the old settings (the caller should put them back).
   */
  async pluginSettingsChanged(tenantId: string): Promise<void> {
    this.plugins.forget(tenantId);
    const t = this.tenants.get(tenantId);
    if (!t) return;
    t.crashes.clear();
    await this.refresh(tenantId, t);
  }

  /**
   * The plugin whose public routes answer this request target on the tenant's
   * domains ("/_<name>" or "/_<name>/...", query allowed), when the tenant has
   * it enabled; the edge then forwards the request to the tenant's worker.
   * One Map lookup; never matches the admin prefix /_admin/.
   */
  pluginFor(tenantId: string, url: string): string | undefined {
    // Most requests are not for a plugin: decide before touching the settings.
    if (url.charCodeAt(1) !== 0x5f) return undefined;
    return publicPluginOf(url, this.plugins.of(tenantId));
  }

  /** Queues a refresh behind any under way, so each one sees the settings of its own time. */
  private refresh(tenantId: string, t: TenantWorkers): Promise<void> {
    const run = (t.refreshing ?? Promise.resolve()).catch(() => {}).then(() => this.refreshOnce(tenantId, t));
    t.refreshing = run;
    void run
      .catch(() => {})
      .finally(() => {
        if (t.refreshing === run) t.refreshing = undefined;
      });
    return run;
  }

  /** Replaces the serving worker when its plugins are not the tenant's current ones. */
  private async refreshOnce(tenantId: string, t: TenantWorkers): Promise<void> {
    // A start under way read the settings before the change: let it finish, then judge its worker.
    await t.starting?.catch(() => {});
    const old = t.current;
    if (this.closed || !old || old.state !== 'ready') return;
    const plugins = this.plugins.of(tenantId);
    if (old.serves(old.site, plugins)) return;
    if (!this.needsWorker(tenantId, old.site)) {
      this.retire(old, 'no plugin is enabled and the release has no api/ routes');
      return;
    }
    const epoch = t.epoch;
    let w: Worker;
    try {
      w = await this.startWorker(tenantId, t, old.site, plugins);
    } catch (err) {
      this.deps.logs.append(tenantId, 'tenantry: the new plugin settings are not in effect; the previous worker keeps serving');
      this.deps.log.warn('plugin settings change not applied', { tenant: tenantId, err });
      throw err;
    }
    if (this.closed || t.epoch !== epoch || this.tenants.get(tenantId) !== t || t.current !== old) {
      // A deploy, a crash or a deletion came first. A deploy's worker that missed the change
      // has its own refresh queued (switchRelease); after a crash the next request starts afresh.
      await this.stopWorker(w, 'superseded while it started');
      return;
    }
    t.current = w;
    this.retire(old, 'the plugin settings changed');
  }

  /** Settings or variables changed: new requests get a fresh worker; the crash-loop hold is lifted. */
  restartTenant(tenantId: string, why: string): void {
    const t = this.tenants.get(tenantId);
    if (!t) return;
    t.crashes.clear();
    if (t.current) this.retire(t.current, why);
  }

  /** Stops every worker of the tenant now (tenant deletion). */
  async stopTenant(tenantId: string): Promise<void> {
    const t = this.tenants.get(tenantId);
    if (!t) return;
    t.epoch++;
    const all = [t.current, t.pending, ...t.draining].filter((w): w is Worker => !!w);
    await Promise.all(all.map((w) => this.stopWorker(w, 'the tenant is being deleted')));
    this.tenants.delete(tenantId);
    this.plugins.forget(tenantId);
    this.deps.logs.close(tenantId);
    bestEffort(() => fs.rmSync(this.deps.paths.run(tenantId), { recursive: true, force: true }));
  }

  /**
   * Starts the tenant's worker for work without a request (a plugin's
   * background work), unless one is serving or starting or a crash loop holds
   * the tenant. Resolves once it serves; rejects with why it could not start.
   */
  async ensureRunning(tenantId: string, site: SiteIndex): Promise<void> {
    const t = this.tenants.get(tenantId);
    if (t && (t.current?.state === 'ready' || t.starting || t.crashes.isHeld(Date.now()))) return;
    this.release(await this.acquire(tenantId, site));
  }

  /** Pid of the tenant's serving worker, if one runs (for status and tests). */
  runningPid(tenantId: string): number | undefined {
    const w = this.tenants.get(tenantId)?.current;
    return w?.state === 'ready' ? w.pid : undefined;
  }

  activationHooks(): ActivationHooks {
    return {
      beforeActivate: (id, deployId, site) => this.prepareRelease(id, deployId, site),
      afterActivate: (id, deployId, site) => this.switchRelease(id, deployId, site),
    };
  }

  tenantHooks(): TenantLifecycleHooks {
    return {
      onTenantDeleting: (id) => this.stopTenant(id),
      onTenantChanged: async (t) => this.restartTenant(t.id, 'the tenant settings changed'),
    };
  }

  /** Stops every worker (server shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweepTimer);
    const all: Worker[] = [];
    for (const t of this.tenants.values()) {
      t.epoch++;
      for (const w of [t.current, t.pending, ...t.draining]) if (w) all.push(w);
    }
    // Shutdown must end even if a launcher never reports an exit.
    const stopped = Promise.all(all.map((w) => this.stopWorker(w, 'the platform is stopping')));
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_DEADLINE_MS)));
    await Promise.race([stopped, bound]);
    clearTimeout(timer);
    await this.deps.logs.closeAll();
  }
}
