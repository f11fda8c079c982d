// The edge's keep-alive connections to a worker, against a raw socket server
// that answers exactly what each test needs: a slow client is not taken for a
// silent worker, a worker that talks out of turn never answers the next
// request, and a refused connection still serves the exchanges waiting for one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { UpstreamPool, type UpstreamConnection, type UpstreamSink } from '../server/pool/upstream/upstream-connection.js';
import type { ResponseHead } from '../server/pool/upstream/response-head.js';

/** A unix-socket server; `answer` gets each connection and the count of connections so far. */
async function rawWorker(answer: (socket: net.Socket, nth: number) => void): Promise<{ socketPath: string; close: () => Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantry-hop-'));
  const socketPath = path.join(dir, 'w.sock');
  let n = 0;
  const server = net.createServer((s) => answer(s, ++n));
  await new Promise<void>((r) => server.listen(socketPath, r));
  return {
    socketPath,
    close: async () => {
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Heard {
  head?: ResponseHead;
  bytes: number;
  ended: boolean;
  error?: Error;
}

function sinkFor(heard: Heard, onBody: (chunk: Buffer) => boolean = () => true): UpstreamSink {
  return {
    onHead: (h) => (heard.head = h),
    onBody: (c) => {
      heard.bytes += c.length;
      return onBody(c);
    },
    onEnd: () => (heard.ended = true),
    onError: (e) => (heard.error = e),
  };
}

const acquire = (pool: UpstreamPool) =>
  new Promise<UpstreamConnection>((resolve, reject) => pool.acquire((err, conn) => (err ? reject(err) : resolve(conn!))));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const GET = 'GET /api/x HTTP/1.1\r\nhost: t.localhost\r\n\r\n';

test('a client that stops reading is not a silent worker: no timeout while the edge holds back, the whole body once it reads again', async () => {
  const size = 8 * 1024 * 1024;
  const worker = await rawWorker((s) => {
    s.once('data', () => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`);
      s.write(Buffer.alloc(size, 1));
    });
  });
  const pool = new UpstreamPool(worker.socketPath);
  try {
    const conn = await acquire(pool);
    const heard: Heard = { bytes: 0, ended: false };
    let slow = true;
    conn.send(GET, null, null, false, 200, sinkFor(heard, () => !slow));
    await sleep(800);
    assert.equal(heard.error, undefined, 'four body timeouts passed while the client was the slow one');
    assert.ok(heard.bytes < size, 'the edge stopped reading');
    slow = false;
    conn.resume();
    const deadline = Date.now() + 10_000;
    while (!heard.ended && !heard.error && Date.now() < deadline) await sleep(20);
    assert.equal(heard.error, undefined);
    assert.equal(heard.ended, true);
    assert.equal(heard.bytes, size);
  } finally {
    pool.destroy();
    await worker.close();
  }
});

test('a worker that sends bytes after its answer never answers the next request with them', async () => {
  const worker = await rawWorker((s, nth) => {
    s.once('data', () => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${nth === 1 ? 2 : 5}\r\n\r\n${nth === 1 ? 'ok' : 'fresh'}`);
      // Out of turn, on the first connection only: a whole second answer nobody asked for.
      if (nth === 1) setTimeout(() => s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nSTALE'), 100);
    });
  });
  const pool = new UpstreamPool(worker.socketPath);
  try {
    const first: Heard = { bytes: 0, ended: false };
    const bodies: string[] = [];
    // The client is slow on the last chunk: the connection ends its exchange paused.
    (await acquire(pool)).send(GET, null, null, false, 1000, sinkFor(first, () => false));
    await sleep(300);
    assert.equal(first.ended, true);
    const second: Heard = { bytes: 0, ended: false };
    (await acquire(pool)).send(GET, null, null, false, 1000, sinkFor(second, (c) => (bodies.push(c.toString()), true)));
    const deadline = Date.now() + 5000;
    while (!second.ended && !second.error && Date.now() < deadline) await sleep(10);
    assert.equal(second.error, undefined);
    assert.deepEqual(bodies, ['fresh'], 'the second request got its own answer, on a new connection');
  } finally {
    pool.destroy();
    await worker.close();
  }
});

test('a refused connection hands the free slot to an exchange waiting for one; a destroyed pool fails the waiting ones', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantry-hop-'));
  try {
    // One connection at most: the second and third acquire wait for the first's slot.
    const pool = new UpstreamPool(path.join(dir, 'missing.sock'), 1);
    const errors: string[] = [];
    await new Promise<void>((resolve) => {
      let left = 3;
      for (let i = 0; i < 3; i++) {
        pool.acquire((err) => {
          errors.push((err as Error & { code?: string }).code ?? '');
          if (--left === 0) resolve();
        });
      }
    });
    assert.equal(errors.length, 3, 'every waiting exchange heard why');
    pool.destroy();
    const after = await new Promise<string>((resolve) => pool.acquire((err) => resolve((err as Error & { code?: string }).code ?? '')));
    assert.equal(after, 'UPSTREAM_DESTROYED');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
