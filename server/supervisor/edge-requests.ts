// The supervisor's side of the edge link: each request checked, then done
// with root rights. A launch spec must name exactly the tenant's own folders,
// the platform's worker entry and only plugins installed in the platform's
// own dist/plugins/; anything else is refused, so a subverted edge cannot make
// root run or open something of its choosing.
import fs from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import type { DataPaths } from '../paths.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import { LISTEN_FD_OPTION, type LaunchedWorker, type WorkerLaunchSpec } from '../launch/worker-launch.js';
import { readFrames, requestSchema, writeFrame, type ReplyOf, type RequestOf, type SupervisorMessage, type SupervisorOp } from './ipc-protocol.js';
import { PLUGINS_ROOT } from '../launch/entries.js';
import { pluginEntryProblem } from '../launch/plugin-launch.js';

/** One handler per operation, each returning exactly the reply the edge expects for it (ipc-protocol.ts, Replies). */
type Handlers = { [Op in SupervisorOp]: (r: RequestOf<Op>) => Promise<ReplyOf<Op>> };

/** Why a spec is refused; undefined when it names only what belongs to its tenant. */
export function launchSpecProblem(spec: WorkerLaunchSpec, paths: DataPaths, workerEntry: string, pluginsRoot = PLUGINS_ROOT): string | undefined {
  const id = spec.tenantId;
  if (spec.entry !== workerEntry) return 'entry is not the platform\'s worker runtime';
  for (const plugin of spec.plugins ?? []) {
    const problem = pluginEntryProblem(plugin.name, pluginsRoot);
    if (problem) return `plugin ${JSON.stringify(plugin.name)}: ${problem}`;
  }
  if (spec.dataDir !== paths.tenantData(id)) return 'dataDir is not the tenant\'s data folder';
  if (spec.runDir !== paths.run(id)) return 'runDir is not the tenant\'s socket folder';
  if (spec.capabilityDir !== undefined && spec.capabilityDir !== paths.capabilities(id)) return 'capabilityDir is not the tenant\'s capability folder';
  if (path.dirname(spec.socketPath) !== spec.runDir || !/^[\w.-]+\.sock$/.test(path.basename(spec.socketPath))) return 'socketPath is not a socket in runDir';
  // The launcher makes the socket and names its descriptor; the edge may not point the worker at another.
  if (spec.args.some((a) => a === LISTEN_FD_OPTION || a.startsWith(`${LISTEN_FD_OPTION}=`))) return `args name ${LISTEN_FD_OPTION}, which only the launcher sets`;
  if (path.dirname(spec.logFile) !== paths.logs(id) || !/^[\w.-]+$/.test(path.basename(spec.logFile))) return 'logFile is not in the tenant\'s logs folder';
  const releases = paths.releases(id);
  if (path.dirname(spec.releaseDir) !== releases) return 'releaseDir is not one of the tenant\'s releases';
  try {
    if (fs.realpathSync(spec.releaseDir) !== spec.releaseDir) return 'releaseDir passes through a symbolic link';
  } catch {
    return 'releaseDir does not exist';
  }
  return undefined;
}

export interface EdgeRequestHandlerOptions {
  readonly channel: Duplex;
  readonly sandbox: Sandbox;
  readonly paths: DataPaths;
  readonly workerEntry: string;
  /** The edge's pid: deploy workers must be its children. */
  readonly edgePid?: number;
  /** Where plugin code is; default: the platform's own dist/plugins/. */
  readonly pluginsRoot?: string;
  readonly log: Logger;
}

/** Serves the edge's requests until the channel closes. Returns the running workers, for shutdown. */
export function serveEdgeRequests(o: EdgeRequestHandlerOptions): { workers: Map<number, LaunchedWorker> } {
  const workers = new Map<number, LaunchedWorker>();
  let nextWorkerId = 1;
  const send = (m: SupervisorMessage) => {
    if (!o.channel.destroyed) writeFrame(o.channel, m);
  };

  const handlers: Handlers = {
    hello: async () => o.sandbox.report,
    provisionTenant: async (r) => {
      await o.sandbox.provisionTenant(r.tenantId);
      return null;
    },
    removeTenant: async (r) => {
      await o.sandbox.removeTenant(r.tenantId);
      return null;
    },
    sealRelease: async (r) => {
      await o.sandbox.sealRelease(r.tenantId, r.deployId);
      return null;
    },
    launchWorker: async ({ spec }) => {
      const problem = launchSpecProblem(spec, o.paths, o.workerEntry, o.pluginsRoot);
      if (problem) throw new Error(`launch refused: ${problem}`);
      const launcher = o.sandbox.launcher;
      if (!launcher) throw new Error('no sandboxed launcher on this host');
      const w = await launcher.launch(spec);
      const workerId = nextWorkerId++;
      workers.set(workerId, w);
      void w.exited.then((exit) => {
        workers.delete(workerId);
        send({ type: 'workerExited', workerId, code: exit.code, signal: exit.signal });
      });
      return { workerId, pid: w.pid };
    },
    killWorker: async (r) => {
      await workers.get(r.workerId)?.kill();
      return null;
    },
    placeDeployWorker: async (r) => {
      if (o.edgePid === undefined) throw new Error('the edge\'s pid is not known');
      return (await o.sandbox.placeDeployWorker(r.pid, o.edgePid)) ?? null;
    },
  };
  // Generic in the op so that TypeScript pairs handlers[op] with its own request type.
  const perform = <Op extends SupervisorOp>(op: Op, r: RequestOf<Op>): Promise<ReplyOf<Op>> => handlers[op](r);

  readFrames(o.channel, {
    onDropped: (reason) => o.log.warn('edge message dropped', { reason }),
    onMessage: (value) => {
      const parsed = requestSchema.safeParse(value);
      if (!parsed.success) {
        const id = typeof (value as { id?: unknown })?.id === 'number' ? (value as { id: number }).id : undefined;
        o.log.warn('edge request refused: not a valid request', { issue: parsed.error.issues[0]?.message });
        send({ type: 'error', ...(id && Number.isSafeInteger(id) && id > 0 ? { id } : {}), message: 'not a valid request' });
        return;
      }
      const r = parsed.data;
      perform(r.op, r).then(
        (value) => send({ type: 'result', id: r.id, value }),
        (err: Error) => {
          o.log.warn('edge request failed', { op: r.op, err });
          send({ type: 'error', id: r.id, message: err.message });
        },
      );
    },
  });
  o.channel.on('error', () => {});
  return { workers };
}
