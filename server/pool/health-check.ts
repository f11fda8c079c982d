// Asks a worker over its unix socket whether it is up, and waits for a freshly
// launched one to become healthy (or to say why it cannot). Every connection
// goes through the socket check (socket-guard.ts).
import fs from 'node:fs';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { connectChecked, SocketRefusedError } from './socket-guard.js';

export const HEALTH_PATH = '/__tenantry/health';

export type HealthAnswer =
  | { kind: 'healthy' }
  | { kind: 'unhealthy'; error: string }
  | { kind: 'unreachable'; error: string }
  /** The path is not the socket the platform made (a link, another owner): never connected. */
  | { kind: 'refused'; error: string };

export function probeHealth(socketPath: string, timeoutMs: number): Promise<HealthAnswer> {
  return new Promise((settle) => {
    // Our own deadline, from the start: a socket timeout would not cover the checked connect.
    const timer = setTimeout(() => {
      resolve({ kind: 'unreachable', error: `no answer within ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    const resolve = (answer: HealthAnswer) => {
      clearTimeout(timer);
      settle(answer);
    };
    const createConnection = (_opts: unknown, oncreate: (err: Error | null, socket: Duplex | null) => void): undefined => {
      connectChecked(socketPath, oncreate);
      return undefined;
    };
    // No agent: with createConnection, each probe gets its own (checked) connection, closed after.
    const options: http.RequestOptions = { path: HEALTH_PATH, headers: { Host: 'worker' } };
    (options as { createConnection?: unknown }).createConnection = createConnection;
    const req = http.get(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < 16_384) body += c;
      });
      res.on('end', () => {
        if (res.statusCode === 200) return resolve({ kind: 'healthy' });
        let error = `health check answered HTTP ${res.statusCode}`;
        try {
          const j = JSON.parse(body) as { error?: unknown };
          if (typeof j.error === 'string') error = j.error;
        } catch {
          /* not JSON */
        }
        resolve({ kind: 'unhealthy', error });
      });
      res.on('error', (err) => resolve({ kind: 'unreachable', error: err.message }));
    });
    req.on('error', (err) => resolve(err instanceof SocketRefusedError ? { kind: 'refused', error: err.message } : { kind: 'unreachable', error: err.message }));
  });
}

/**
 * Polls until the worker answers. Resolves 'healthy' or 'unhealthy' (it
 * answered with its load error); rejects on the deadline or when `exited`
 * settles first (the caller then explains from the log).
 */
export async function waitUntilHealthy(
  socketPath: string,
  exited: Promise<unknown>,
  deadlineMs: number,
): Promise<HealthAnswer> {
  let gone = false;
  void exited.then(() => (gone = true));
  const until = Date.now() + deadlineMs;
  const started = Date.now();
  for (;;) {
    if (gone) return { kind: 'unreachable', error: 'exited' };
    // Until the socket exists a stat is all it takes to know: no HTTP request takes CPU from the
    // starting worker (on a small machine they share a core). A first request waits on this loop.
    if (fs.existsSync(socketPath)) {
      const answer = await probeHealth(socketPath, Math.max(100, Math.min(2000, until - Date.now())));
      if (answer.kind !== 'unreachable') return answer;
    }
    if (Date.now() >= until) return { kind: 'unreachable', error: `not ready within ${Math.round(deadlineMs / 1000)} s` };
    await new Promise((r) => setTimeout(r, Date.now() - started < 2000 ? 4 : 50));
  }
}
