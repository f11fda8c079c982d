// The first edge's end of the change channel. Every sibling edge registers
// before it accepts its first connection; from then on each change to the
// routing state (a release switch, a rollback, a domain, a removed tenant) is
// sent to every sibling, and the answer of the API call that made it waits
// until all have acknowledged it (response-gate.ts): after the 201, no edge
// serves the old release. A sibling that does not acknowledge in time is cut
// off; it exits at once, its parent starts a new one, which reads the live links.
import fs from 'node:fs';
import net from 'node:net';
import type { Logger } from '../../log.js';
import { readJsonLines, sendJsonLine } from './json-lines.js';
import type { SiblingChange } from './sibling-change.js';

/** A sibling that has not applied a change by then is cut off (and restarted). */
const ACK_DEADLINE_MS = 5_000;
/** A sibling's metrics missing after this are left out of the scrape. */
const METRICS_DEADLINE_MS = 2_000;

interface Sibling {
  readonly socket: net.Socket;
  readonly edge: number;
  readonly pid: number;
  /** The last change it has applied (changes are applied in order). */
  acked: number;
  readonly metricsWaiting: Map<number, (metrics: unknown[]) => void>;
}

export interface SiblingInfo {
  readonly edge: number;
  readonly pid: number;
}

export class SiblingHub {
  private seq = 0;
  private metricsSeq = 0;
  private readonly siblings = new Set<Sibling>();
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly server: net.Server,
    private readonly log: Logger,
  ) {
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Listens on `socketPath` (a stale socket left by a crash is removed first). */
  static listen(socketPath: string, log: Logger): Promise<SiblingHub> {
    fs.rmSync(socketPath, { force: true });
    const server = net.createServer();
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        fs.chmodSync(socketPath, 0o600);
        resolve(new SiblingHub(server, log));
      });
    });
  }

  /** The sibling edges registered now. */
  get members(): SiblingInfo[] {
    return [...this.siblings].map((s) => ({ edge: s.edge, pid: s.pid }));
  }

  /** Sends a change to every sibling (in order; settled() waits for their acknowledgements). */
  notify(change: SiblingChange): void {
    if (this.siblings.size === 0) return;
    const seq = ++this.seq;
    for (const s of this.siblings) sendJsonLine(s.socket, { type: 'changed', seq, ...change });
  }

  /** Whether a change sent is not yet applied by every sibling. */
  get unsettled(): boolean {
    for (const s of this.siblings) if (s.acked < this.seq) return true;
    return false;
  }

  /** Resolves when every sibling has applied every change sent so far; laggards are cut off at the deadline. */
  settled(): Promise<void> {
    const target = this.seq;
    const behind = () => [...this.siblings].filter((s) => s.acked < target);
    if (behind().length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (behind().length !== 0) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        for (const s of behind()) {
          this.log.error('a sibling edge did not apply a change in time; cutting it off (it is restarted)', { edge: s.edge, pid: s.pid });
          this.drop(s);
          s.socket.destroy();
        }
        check();
      }, ACK_DEADLINE_MS);
      this.waiters.add(check);
    });
  }

  /** Every sibling's metrics (prom-client JSON), for one scrape of the whole platform. */
  async metrics(): Promise<unknown[][]> {
    const seq = ++this.metricsSeq;
    const asked = [...this.siblings].map(
      (s) =>
        new Promise<unknown[]>((resolve) => {
          const timer = setTimeout(() => {
            s.metricsWaiting.delete(seq);
            resolve([]);
          }, METRICS_DEADLINE_MS);
          s.metricsWaiting.set(seq, (m) => {
            clearTimeout(timer);
            resolve(m);
          });
          sendJsonLine(s.socket, { type: 'metrics', seq });
        }),
    );
    return Promise.all(asked);
  }

  close(): Promise<void> {
    for (const s of this.siblings) s.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    let sibling: Sibling | undefined;
    socket.on('error', () => {});
    socket.on('close', () => {
      if (sibling) this.drop(sibling);
    });
    readJsonLines(socket, (m) => {
      if (sibling === undefined) {
        if (m.type !== 'hello' || typeof m.edge !== 'number' || typeof m.pid !== 'number') return void socket.destroy();
        // It has loaded nothing yet: whatever it loads from now on is read after this point, and later changes reach it.
        sibling = { socket, edge: m.edge, pid: m.pid, acked: this.seq, metricsWaiting: new Map() };
        this.siblings.add(sibling);
        sendJsonLine(socket, { type: 'welcome' });
        return;
      }
      if (m.type === 'ack' && typeof m.seq === 'number') {
        sibling.acked = Math.max(sibling.acked, m.seq);
        for (const w of [...this.waiters]) w();
      } else if (m.type === 'metrics' && typeof m.seq === 'number' && Array.isArray(m.metrics)) {
        sibling.metricsWaiting.get(m.seq)?.(m.metrics);
        sibling.metricsWaiting.delete(m.seq);
      }
    });
  }

  private drop(s: Sibling): void {
    if (!this.siblings.delete(s)) return;
    for (const resolve of s.metricsWaiting.values()) resolve([]);
    s.metricsWaiting.clear();
    for (const w of [...this.waiters]) w();
  }
}
