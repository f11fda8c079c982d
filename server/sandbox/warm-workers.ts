// Warm workers: sandboxed worker processes started ahead of need, each with
// Node and the worker runtime already loaded, waiting to be given a tenant
// (launch/warm-assignment.ts). A tenant's first request then waits for the
// assignment (mounts, cgroup, user switch, loading its routes), not for a
// whole Node start. Each warm worker serves one tenant once and is never
// reused; the pool starts a new one in its place.
//
// Only workers that would be started exactly alike are taken warm: same
// runtime entry, same network namespace choice, same Node flags (the heap cap
// follows the memory limit), no plugins. Any other start is a cold start.
import crypto from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import type { CgroupLimits, WorkerCgroup } from './cgroups.js';
import type { WarmSlot, WarmSlots } from './warm-slots.js';
import { bindWorkerSocket, removeWorkerSocket, socketPlace, type SocketOwner, type WorkerSocket } from './worker-socket.js';

export interface WarmWorker {
  readonly slot: WarmSlot;
  readonly child: ChildProcess;
  /** The group it waits in (platform-owned, `_warm`); its processes move to the tenant's at assignment. */
  readonly cgroup: WorkerCgroup;
  /** Where its listening socket is until assignment (then renamed to the tenant's socket path). */
  readonly socketPath: string;
  readonly profile: string;
}

export interface WarmPoolOptions {
  /** How many wait at once. */
  readonly size: number;
  /** The start profile of the workers this pool makes (see profileKey). */
  readonly profile: string;
  readonly limits: CgroupLimits;
  readonly dataRoot: string;
  readonly slots: WarmSlots;
  readonly createGroup: (workerName: string, limits: CgroupLimits) => WorkerCgroup;
  /** Spawns the sandboxed warm process for the slot (its listening socket inherited), in the group. */
  readonly spawn: (slot: WarmSlot, cgroup: WorkerCgroup, listenFd: number) => Promise<ChildProcess>;
  readonly socketOwner: SocketOwner | undefined;
  readonly log: Logger;
}

/** How long after a worker is taken its replacement starts. */
const REFILL_DELAY_MS = 1000;

/** After a failed start, the pool waits this long before trying again (no restart loop). */
const RETRY_AFTER_MS = 30_000;

/** Workers started with these alike can stand in for each other. */
export function profileKey(entry: string, network: string, nodeFlags: readonly string[]): string {
  return JSON.stringify([entry, network, ...nodeFlags]);
}

export class WarmPool {
  private readonly idle: WarmWorker[] = [];
  private starting = 0;
  private closed = false;
  private pausedUntil = 0;

  constructor(private readonly o: WarmPoolOptions) {}

  get profile(): string {
    return this.o.profile;
  }

  /** How many are waiting now. */
  get waiting(): number {
    return this.idle.length;
  }

  /** Starts workers until `size` wait (or are starting). Never throws. */
  fill(): void {
    if (this.closed || Date.now() < this.pausedUntil) return;
    while (this.idle.length + this.starting < this.o.size) {
      this.starting++;
      void this.startOne()
        .then((w) => {
          if (this.closed) return this.discard(w);
          this.idle.push(w);
          // Gone while waiting (killed, out of memory): out of the pool, and a new one.
          void w.child.once('exit', () => {
            const i = this.idle.indexOf(w);
            if (i < 0) return;
            this.idle.splice(i, 1);
            void this.discard(w);
            this.fill();
          });
        })
        .catch((err: unknown) => {
          this.pausedUntil = Date.now() + RETRY_AFTER_MS;
          this.o.log.warn('cannot start a warm worker; first requests start workers cold for now', { err });
        })
        .finally(() => this.starting--);
    }
  }

  /**
   * A waiting worker for this profile, taken out of the pool. A new one is
   * started in its place a moment later: a Node start beside the assignment
   * would take the CPU the first request is waiting for.
   */
  take(profile: string): WarmWorker | undefined {
    if (profile !== this.o.profile) return undefined;
    let w: WarmWorker | undefined;
    while ((w = this.idle.shift())) {
      if (w.child.exitCode === null && w.child.signalCode === null) break;
      void this.discard(w);
    }
    setTimeout(() => this.fill(), REFILL_DELAY_MS).unref();
    return w;
  }

  /** Stops every waiting worker and removes its slot (platform shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.idle.splice(0).map((w) => this.discard(w)));
  }

  private async startOne(): Promise<WarmWorker> {
    // The platform's pid in the name: a later start knows the groups a killed platform left (warmGroupOwner).
    const name = `w-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    const socketDir = path.join(this.o.dataRoot, 'warm-sockets');
    fs.mkdirSync(socketDir, { recursive: true, mode: 0o700 });
    const socketPath = path.join(socketDir, `${name}.sock`);
    const place = socketPlace(this.o.dataRoot, socketPath);
    const slot = await this.o.slots.make();
    let cgroup: WorkerCgroup | undefined;
    let socket: WorkerSocket | undefined;
    try {
      socket = await bindWorkerSocket(place, this.o.socketOwner);
      cgroup = this.o.createGroup(name, this.o.limits);
      let child: ChildProcess;
      try {
        child = await this.o.spawn(slot, cgroup, socket.fd);
      } finally {
        socket.release();
      }
      return { slot, child, cgroup, socketPath, profile: this.o.profile };
    } catch (err) {
      socket?.release();
      removeWorkerSocket(place);
      await cgroup?.remove().catch(() => {});
      await this.o.slots.clear(slot.dir);
      throw err;
    }
  }

  private async discard(w: WarmWorker): Promise<void> {
    await w.cgroup.remove().catch(() => {});
    removeWorkerSocket(socketPlace(this.o.dataRoot, w.socketPath));
    await this.o.slots.clear(w.slot.dir);
  }
}

/** The pid of the platform that made a warm worker's group, from its name (undefined for other names). */
export function warmGroupOwner(workerName: string): number | undefined {
  const m = /^w-(\d+)-[0-9a-f]+$/.exec(workerName);
  return m ? Number(m[1]) : undefined;
}
