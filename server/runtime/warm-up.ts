// A warm worker, while it waits for its tenant, sends a few requests through
// the worker app once (on a throwaway loopback listener in its own network
// namespace), so the first visitor's request does not pay for compiling
// Express's request path: routing, the body parsers, res.json.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createWorkerApp, HEALTH_PATH } from './worker-app.js';

function get(port: number, path: string, body?: string): Promise<void> {
  return new Promise<void>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: body ? 'POST' : 'GET', agent: false, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', () => resolve());
    req.end(body);
  });
}

/** Never throws: a warm-up that fails only means a slower first request. */
export async function exerciseRequestPath(): Promise<void> {
  const server = http.createServer(createWorkerApp({ ok: true, routes: [], plugins: [] }, () => {}));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address() as AddressInfo;
    for (let i = 0; i < 3; i++) {
      await get(port, HEALTH_PATH);
      await get(port, '/api/warm-up?x=1', '{"a":1}');
    }
  } catch {
    // no loopback here: the first request compiles the path instead
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
