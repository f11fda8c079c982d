// The supervisor <-> edge link: length-prefixed JSON frames over a private
// pipe (fd 4 of the edge). The supervisor trusts nothing in it: every frame
// is size-capped before it is buffered, parsed against a closed schema, and
// the sender is the pipe itself (there is exactly one edge), never a field.
// The pipe cannot carry file descriptors; the only handles ever passed are the
// listening sockets (HTTP, and HTTPS when set), from the supervisor to the
// edge, over Node's IPC channel, which is disconnected right after.
import type { Readable, Writable } from 'node:stream';
import { z } from 'zod';
import { limitsSchema } from '../model/limits.js';
import { isValidTenantId } from '../model/tenant-id.js';
import type { IsolationReport } from '../sandbox/detect.js';
import { launchPluginsSchema } from '../launch/plugin-launch.js';

/** Largest frame accepted: a launch spec with the biggest allowed environment fits with room. */
export const MAX_FRAME_BYTES = 8 * 1024 * 1024;

const tenantId = z.string().refine(isValidTenantId, 'not a valid tenant id');
const absPath = z.string().min(1).max(1024).startsWith('/');

export const launchSpecSchema = z.strictObject({
  tenantId,
  releaseDir: absPath,
  dataDir: absPath,
  runDir: absPath,
  socketPath: absPath,
  logFile: absPath,
  entry: absPath,
  args: z.array(z.string().max(4096)).max(32),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/), z.string().max(64 * 1024)).refine((e) => Object.keys(e).length <= 256, 'too many variables'),
  limits: limitsSchema,
  network: z.enum(['none', 'all']),
  // Names and configs only (capped there); each name must also be installed (launchSpecProblem).
  plugins: launchPluginsSchema.optional(),
  // Must be the tenant's own capability folder (launchSpecProblem).
  capabilityDir: absPath.optional(),
});

const id = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** Everything the edge may ask of the supervisor. */
export const requestSchema = z.discriminatedUnion('op', [
  z.strictObject({ id, op: z.literal('hello') }),
  z.strictObject({ id, op: z.literal('provisionTenant'), tenantId }),
  z.strictObject({ id, op: z.literal('removeTenant'), tenantId }),
  z.strictObject({ id, op: z.literal('sealRelease'), tenantId, deployId: z.string().regex(/^[a-z0-9]{1,64}$/) }),
  z.strictObject({ id, op: z.literal('launchWorker'), spec: launchSpecSchema }),
  z.strictObject({ id, op: z.literal('killWorker'), workerId: id }),
  // Only a child of the edge running as the platform user is moved (deployWorkerProblem).
  z.strictObject({ id, op: z.literal('placeDeployWorker'), pid: z.number().int().min(2).max(2 ** 22) }),
]);
export type SupervisorRequest = z.infer<typeof requestSchema>;
export type SupervisorOp = SupervisorRequest['op'];
/** The request of one operation, as the supervisor receives it. */
export type RequestOf<Op extends SupervisorOp> = Extract<SupervisorRequest, { op: Op }>;
/** The same without its id: what the edge fills in (the client numbers requests). */
export type RequestBody<Op extends SupervisorOp> = Omit<RequestOf<Op>, 'id'>;

/**
 * The `value` of the supervisor's `result` for each operation. An operation
 * added to requestSchema without an entry here does not compile (ReplyOf
 * indexes this table by every op), and the supervisor's handler table must
 * return exactly these types.
 */
export interface Replies {
  hello: IsolationReport;
  provisionTenant: null;
  removeTenant: null;
  sealRelease: null;
  launchWorker: { workerId: number; pid: number };
  killWorker: null;
  /** The deploy cgroup the worker was moved into; null without cgroups. */
  placeDeployWorker: string | null;
}
export type ReplyOf<Op extends SupervisorOp> = Replies[Op];

/** What the supervisor sends: answers to requests, and worker exits. */
export const supervisorMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('result'), id, value: z.unknown().optional() }),
  z.strictObject({ type: z.literal('error'), id: id.optional(), message: z.string() }),
  z.strictObject({ type: z.literal('workerExited'), workerId: id, code: z.number().int().nullable(), signal: z.string().nullable() }),
]);
export type SupervisorMessage = z.infer<typeof supervisorMessageSchema>;

export function writeFrame(out: Writable, message: unknown): void {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  out.write(Buffer.concat([head, body]));
}

export interface FrameEvents {
  /** A complete frame, parsed as JSON (not yet validated). */
  onMessage(value: unknown): void;
  /** A frame was thrown away: too large, or not JSON. */
  onDropped(reason: string): void;
}

/**
 * Splits a byte stream into frames. A frame above `maxBytes` is skipped as it
 * streams by, never buffered; the stream stays usable after it.
 */
export function readFrames(input: Readable, events: FrameEvents, maxBytes = MAX_FRAME_BYTES): void {
  let pending: Buffer = Buffer.alloc(0);
  let skipping = 0;
  input.on('data', (chunk: Buffer) => {
    if (skipping > 0) {
      const n = Math.min(skipping, chunk.length);
      skipping -= n;
      chunk = chunk.subarray(n);
    }
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    for (;;) {
      if (skipping > 0) {
        const n = Math.min(skipping, pending.length);
        skipping -= n;
        pending = pending.subarray(n);
        if (skipping > 0) return;
      }
      if (pending.length < 4) return;
      const size = pending.readUInt32BE(0);
      if (size > maxBytes) {
        events.onDropped(`frame of ${size} bytes is over the ${maxBytes}-byte cap`);
        pending = pending.subarray(4);
        skipping = size;
        continue;
      }
      if (pending.length < 4 + size) return;
      const body = pending.subarray(4, 4 + size);
      pending = pending.subarray(4 + size);
      let value: unknown;
      try {
        value = JSON.parse(body.toString('utf8'));
      } catch {
        events.onDropped('frame is not JSON');
        continue;
      }
      events.onMessage(value);
    }
  });
}
