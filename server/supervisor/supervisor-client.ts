// The edge's side of the supervisor link: requests with deadlines, and the
// Sandbox the platform uses (provisioning, sealing, launching) carried out by
// the root supervisor. The edge itself holds no privilege.
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import { readFrames, supervisorMessageSchema, writeFrame, type ReplyOf, type RequestBody, type SupervisorOp } from './ipc-protocol.js';
import type { LaunchedWorker, WorkerExit, WorkerLaunchSpec, WorkerLauncher } from '../launch/worker-launch.js';

const REQUEST_DEADLINE_MS = 60_000;

type Pending = { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout };

export class SupervisorClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly exitWaiters = new Map<number, (exit: WorkerExit) => void>();
  private readonly earlyExits = new Map<number, WorkerExit>();

  constructor(
    private readonly channel: Duplex,
    log: Logger,
  ) {
    readFrames(channel, {
      onDropped: (reason) => log.warn('supervisor message dropped', { reason }),
      onMessage: (value) => {
        const m = supervisorMessageSchema.safeParse(value);
        if (!m.success) return log.warn('supervisor message not understood');
        const msg = m.data;
        if (msg.type === 'workerExited') {
          const exit = { code: msg.code, signal: msg.signal };
          const waiter = this.exitWaiters.get(msg.workerId);
          if (waiter) waiter(exit);
          else this.earlyExits.set(msg.workerId, exit);
          return;
        }
        if (msg.id === undefined) return log.warn('supervisor refused a request', { message: msg.type === 'error' ? msg.message : '' });
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        if (msg.type === 'result') p.resolve(msg.value);
        else p.reject(new Error(msg.message));
      },
    });
    channel.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('the supervisor is gone'));
      this.pending.clear();
    });
  }

  /**
   * Sends one request; resolves with the supervisor's answer to that op
   * (ipc-protocol.ts, Replies). The `& { op: Op }` is where TypeScript reads Op from.
   */
  request<Op extends SupervisorOp>(body: RequestBody<Op> & { op: Op }): Promise<ReplyOf<Op>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the supervisor did not answer ${body.op} within ${REQUEST_DEADLINE_MS / 1000} s`));
      }, REQUEST_DEADLINE_MS);
      // The one place the reply's type is asserted rather than checked: the
      // supervisor is the trusted side, and its handler for this op is typed to
      // return exactly ReplyOf<Op> (edge-requests.ts).
      this.pending.set(id, { resolve: (v) => resolve(v as ReplyOf<Op>), reject, timer });
      writeFrame(this.channel, { ...body, id });
    });
  }

  /** Settles when the supervisor reports the worker's exit. */
  workerExit(workerId: number): Promise<WorkerExit> {
    const early = this.earlyExits.get(workerId);
    if (early) {
      this.earlyExits.delete(workerId);
      return Promise.resolve(early);
    }
    return new Promise((resolve) =>
      this.exitWaiters.set(workerId, (exit) => {
        this.exitWaiters.delete(workerId);
        resolve(exit);
      }),
    );
  }
}

/** Workers launched by the supervisor; the pool cannot tell them from local ones. */
export class SupervisedWorkerLauncher implements WorkerLauncher {
  private readonly running = new Set<LaunchedWorker>();

  constructor(private readonly client: SupervisorClient) {}

  async launch(spec: WorkerLaunchSpec): Promise<LaunchedWorker> {
    const copy = { ...spec, args: [...spec.args], env: { ...spec.env }, limits: { ...spec.limits }, plugins: spec.plugins?.map((p) => ({ ...p })) };
    const { workerId, pid } = await this.client.request({ op: 'launchWorker', spec: copy });
    const exited = this.client.workerExit(workerId);
    const worker: LaunchedWorker = {
      pid,
      exited,
      kill: async () => {
        await this.client.request({ op: 'killWorker', workerId }).catch(() => {});
        await exited;
      },
    };
    this.running.add(worker);
    void exited.then(() => this.running.delete(worker));
    return worker;
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.running].map((w) => w.kill()));
  }
}

/** The Sandbox of a privilege-separated edge: every operation is a request to the supervisor. */
export async function connectSupervisedSandbox(client: SupervisorClient): Promise<Sandbox> {
  const report = await client.request({ op: 'hello' });
  const launcher = new SupervisedWorkerLauncher(client);
  return {
    report,
    launcher,
    provisionTenant: async (tenantId) => {
      await client.request({ op: 'provisionTenant', tenantId });
    },
    removeTenant: async (tenantId) => {
      await client.request({ op: 'removeTenant', tenantId });
    },
    sealRelease: async (tenantId, deployId) => {
      await client.request({ op: 'sealRelease', tenantId, deployId });
    },
    placeDeployWorker: async (pid) => (await client.request({ op: 'placeDeployWorker', pid })) ?? undefined,
    // Only the supervisor can read the cgroups.
    tenantPids: () => [],
    workerLimits: () => [],
    close: () => launcher.killAll(),
  };
}
