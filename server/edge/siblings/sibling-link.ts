// A sibling edge's end of the change channel (sibling-hub.ts is the other).
// Joining is the sibling's first act: it loads no release and accepts no
// connection before the first edge has registered it.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { readJsonLines, sendJsonLine } from './json-lines.js';
import type { SiblingChange } from './sibling-change.js';

export interface SiblingHandlers {
  /** Applies a change; synchronous, so that the acknowledgement follows the change itself. */
  changed(change: SiblingChange): void;
  /** This edge's metrics (prom-client JSON). */
  metrics(): Promise<unknown[]>;
  /** The channel is gone (the first edge stopped or cut this one off). */
  lost(): void;
}

function connect(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Connects (retrying while the first edge starts, up to `deadlineMs`), registers, and waits to be welcomed. */
export async function joinSiblings(socketPath: string, identity: { edge: number; pid: number }, handlers: SiblingHandlers, deadlineMs = 30_000): Promise<net.Socket> {
  const giveUpAt = Date.now() + deadlineMs;
  let socket: net.Socket | undefined;
  while (socket === undefined) {
    try {
      socket = await connect(socketPath);
    } catch (err) {
      if (Date.now() > giveUpAt) throw new Error(`cannot reach the first edge at ${socketPath}: ${(err as Error).message}`);
      await sleep(100);
    }
  }
  const joined = socket;
  let welcomed: () => void = () => {};
  const welcome = new Promise<void>((resolve) => (welcomed = resolve));
  joined.on('error', () => {});
  joined.on('close', () => handlers.lost());
  readJsonLines(joined, (m) => {
    if (m.type === 'welcome') return welcomed();
    if (m.type === 'changed' && typeof m.seq === 'number') {
      handlers.changed({
        tenantId: typeof m.tenantId === 'string' ? m.tenantId : undefined,
        domains: m.domains === true,
      });
      sendJsonLine(joined, { type: 'ack', seq: m.seq });
    } else if (m.type === 'metrics' && typeof m.seq === 'number') {
      const seq = m.seq;
      handlers.metrics().then(
        (metrics) => sendJsonLine(joined, { type: 'metrics', seq, metrics }),
        () => sendJsonLine(joined, { type: 'metrics', seq, metrics: [] }),
      );
    }
  });
  sendJsonLine(joined, { type: 'hello', ...identity });
  await welcome;
  return joined;
}
