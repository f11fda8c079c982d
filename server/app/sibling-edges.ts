// Several edges on one listening socket (TENANTRY_EDGES > 1, supervised).
// The first edge, this process, holds everything (the database's writers,
// the control API, the tenants' workers, HTTPS); it starts the sibling edges
// as its own children, same user, handing each the inherited HTTP socket: the
// kernel spreads new connections over every process accepting on it. A
// sibling answers static requests from its own copy of the live indexes and
// forwards the rest here (edge/siblings/). Changes to what it holds are sent
// to it, and acknowledged, before the API call that made them answers.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import type http from 'node:http';
import type net from 'node:net';
import { Gauge } from 'prom-client';
import type { Logger } from '../log.js';
import type { Platform } from './platform.js';
import type { MetricsJson } from '../metrics/platform-metrics.js';
import { SIBLING_EDGE_ENTRY } from '../launch/entries.js';
import { SiblingHub } from '../edge/siblings/sibling-hub.js';
import { acceptForwardedConnections } from '../edge/siblings/forwarded-connections.js';
import { forwardSocketPath, linkSocketPath, siblingSocketDir } from '../edge/siblings/sibling-sockets.js';

/** A sibling still draining after this is killed (the first edge then drains its own). */
const SIBLING_STOP_MS = 6_000;
/** Restart pace: at once after a long life, slower when it keeps failing at start. */
const QUICK_EXIT_MS = 5_000;
const RESTART_DELAY_MS = 200;
const SLOW_RESTART_DELAY_MS = 5_000;

export interface SiblingEdges {
  readonly hub: SiblingHub;
  /** Starts edges 1..count-1 on the listening socket `listenFd`, once this edge is ready. */
  start(server: http.Server, listenFd: number, argv: readonly string[]): Promise<void>;
  /** Stops the siblings (they drain, forwarding here as needed); then this edge may drain its own. */
  stop(): Promise<void>;
  /** Closes the sockets the siblings reach this edge by. */
  close(): Promise<void>;
}

/** Before anything is served: the change channel, and the routing state's changes wired to it. */
export async function prepareSiblingEdges(platform: Platform, count: number, log: Logger): Promise<SiblingEdges> {
  const runRoot = platform.paths.runRoot;
  const dir = siblingSocketDir(runRoot);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const hub = await SiblingHub.listen(linkSocketPath(runRoot), log);
  platform.sites.onChange((tenantId) => hub.notify({ tenantId }));
  platform.domains.onRebuild(() => hub.notify({ domains: true }));
  platform.metrics.setPeers(async () => (await hub.metrics()) as MetricsJson[]);
  new Gauge({
    name: 'tenantry_edges',
    help: 'Edge processes accepting connections (this one and its registered siblings)',
    registers: [platform.metrics.registry],
    collect() {
      this.set(1 + hub.members.length);
    },
  });

  const children = new Map<number, ChildProcess>();
  let forwarded: net.Server | undefined;
  let stopping = false;

  function launch(edge: number, listenFd: number, argv: readonly string[], failures: number): void {
    const stdio: StdioOptions = ['ignore', 'inherit', 'inherit', 'ignore', 'ignore'];
    stdio[listenFd] = listenFd;
    const child = spawn(process.execPath, [SIBLING_EDGE_ENTRY, ...argv], {
      env: { ...process.env, TENANTRY_EDGE_INDEX: String(edge) },
      stdio,
    });
    const startedAt = Date.now();
    children.set(edge, child);
    child.once('exit', (code, signal) => {
      if (children.get(edge) === child) children.delete(edge);
      if (stopping) return;
      const quick = Date.now() - startedAt < QUICK_EXIT_MS;
      const next = quick ? failures + 1 : 0;
      const delay = next >= 3 ? SLOW_RESTART_DELAY_MS : RESTART_DELAY_MS;
      log.warn('a sibling edge exited; starting it again', { edge, code, signal, inMs: delay });
      setTimeout(() => {
        if (!stopping) launch(edge, listenFd, argv, next);
      }, delay).unref();
    });
  }

  return {
    hub,
    start: async (server, listenFd, argv) => {
      forwarded = await acceptForwardedConnections(forwardSocketPath(runRoot), server, log);
      // Not waited for: this edge is ready and serves everything; each sibling takes connections once it has registered.
      for (let edge = 1; edge < count; edge++) launch(edge, listenFd, argv, 0);
      const report = setInterval(() => {
        if (hub.members.length < count - 1) return;
        clearInterval(report);
        log.info('edges accepting', { edges: count });
      }, 100);
      report.unref();
    },
    stop: async () => {
      stopping = true;
      const exits = [...children.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), SIBLING_STOP_MS);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      );
      await Promise.all(exits);
    },
    close: async () => {
      await new Promise<void>((resolve) => (forwarded ? forwarded.close(() => resolve()) : resolve()));
      await hub.close();
    },
  };
}
