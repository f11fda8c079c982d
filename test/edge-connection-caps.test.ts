// One client cannot exhaust the edge's connections: a cap per client address,
// a cap in all, and connections that do not send a request head in time are
// closed. The attack: hundreds of connections dribbling partial headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { startTestPlatform, httpRequest } from './helpers/harness.js';
import { createTenant } from './helpers/deploy-archives.js';
import { createLogger } from '../server/log.js';
import { ConnectionGuard, defaultConnectionCap } from '../server/edge/connection-guard.js';

const ATTACKER = '127.0.0.2';

interface Attack {
  readonly sockets: net.Socket[];
  closed(): number;
  stop(): void;
}

/** Opens `n` connections from `from`, each sending a partial request head and then a header line every 200 ms. */
async function slowHeaders(port: number, n: number, from = ATTACKER): Promise<Attack> {
  const sockets: net.Socket[] = [];
  let closed = 0;
  const timers: NodeJS.Timeout[] = [];
  await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<void>((resolve) => {
        const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
        sockets.push(s);
        s.on('error', () => {});
        // Read what the server sends (a 408 when it gives up on the head): a
        // socket whose received bytes are never read never sees the close.
        s.resume();
        s.once('close', () => {
          closed++;
          resolve();
        });
        s.once('connect', () => {
          s.write('GET / HTTP/1.1\r\nHost: localhost\r\n');
          timers.push(setInterval(() => s.writable && s.write('X-Slow: 1\r\n'), 200));
          resolve();
        });
      }),
    ),
  );
  return {
    sockets,
    closed: () => closed,
    stop: () => {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
    },
  };
}

test('the default total cap leaves descriptors for workers and files', () => {
  assert.equal(defaultConnectionCap(65536), 65536 - 1024);
  assert.equal(defaultConnectionCap(1024), 512);
  assert.equal(defaultConnectionCap(100), 64);
});

test('slow connections from one address: that address is capped, /healthz and tenant sites keep answering others', async () => {
  const p = await startTestPlatform({ TENANTRY_MAX_CONNECTIONS_PER_ADDRESS: '40' });
  const attack = await slowHeaders(p.port, 300).catch((e) => {
    throw e;
  });
  try {
    await createTenant(p.url, p.adminToken, 'capsb');
    // Everything past the cap was closed at once.
    await waitFor(() => attack.closed() >= 260, 'the connections past the cap to be closed');
    assert.ok(p.connections.openConnections <= 40 + 5, `${p.connections.openConnections} connections open`);
    const health = await httpRequest(p.url, { host: 'localhost', path: '/healthz' });
    assert.equal(health.status, 200);
    const page = await httpRequest(p.url, { host: 'capsb.localhost', path: '/' });
    assert.equal(page.status, 200);
  } finally {
    attack.stop();
    await p.cleanup();
  }
});

test('a request head not finished in time, or never begun, closes the connection; requests that finish are untouched', async () => {
  const lines: string[] = [];
  const guard = new ConnectionGuard({ perAddress: 1000, total: 1000, headersTimeoutMs: 1000 }, createLogger({}, 'info', (l) => lines.push(l)));
  const server = http.createServer({ connectionsCheckingInterval: 200 }, (_req, res) => res.end('ok'));
  guard.protect(server);
  // What the server saw of each connection, by the client's port: said if the silent one is not closed.
  const seen = new Map<number, string[]>();
  server.on('connection', (s: net.Socket) => {
    const events = [`accepted t=${Date.now()}`];
    seen.set(s.remotePort ?? 0, events);
    s.on('timeout', () => events.push(`timeout t=${Date.now()}`));
    s.on('close', () => events.push(`closed t=${Date.now()}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  let dribble: Attack | undefined;
  let silent: net.Socket | undefined;
  try {
    dribble = await slowHeaders(port, 3, '127.0.0.1');
    silent = net.connect({ port, host: '127.0.0.1' });
    silent.on('error', () => {});
    // The edge may answer 408 before closing (Node's head timeout) or just close
    // (the idle timer): either way the close is seen only once those bytes are read.
    silent.resume();
    let silentClosed = false;
    const silentEvents = [`connect called t=${Date.now()}`];
    silent.once('connect', () => silentEvents.push(`connected from ${silent!.localPort} t=${Date.now()}`));
    silent.once('close', () => (silentClosed = true));
    // A keep-alive client that sends a request, then waits past the head timeout, then another.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const first = await get(port, agent);
    await new Promise((r) => setTimeout(r, 1500));
    const second = await get(port, agent);
    agent.destroy();
    assert.equal(first, 'ok');
    assert.equal(second, 'ok');
    await waitFor(() => dribble!.closed() === 3 && silentClosed, () => `the dribbling and the silent connections to be closed (closed: ${dribble!.closed()} of 3 dribbling, silent ${silentClosed}; silent: ${silentEvents.join(', ')}; server saw it: ${seen.get(silent!.localPort ?? -1)?.join(', ') ?? 'no'}; now t=${Date.now()})`, 20_000);
  } finally {
    // Whatever happened, nothing of this test may keep the process alive.
    dribble?.stop();
    silent?.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }

  // The total cap, logged once however many are refused.
  const capped = new ConnectionGuard({ perAddress: 1000, total: 5 }, createLogger({}, 'info', (l) => lines.push(l)));
  const server2 = http.createServer((_req, res) => res.end('ok'));
  capped.protect(server2);
  await new Promise<void>((r) => server2.listen(0, '127.0.0.1', r));
  try {
    const attack = await slowHeaders((server2.address() as AddressInfo).port, 20, '127.0.0.1');
    await waitFor(() => attack.closed() >= 15, 'connections past the total cap to be closed');
    assert.equal(capped.openConnections, 5);
    assert.equal(lines.filter((l) => /open connections in all/.test(l)).length, 1, lines.join('\n'));
    attack.stop();
  } finally {
    server2.closeAllConnections();
    await new Promise((r) => server2.close(r));
  }
});

function get(port: number, agent: http.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ port, host: '127.0.0.1', path: '/', agent }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

async function waitFor(cond: () => boolean, what: string | (() => string), ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
