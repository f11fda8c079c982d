// Keep-alive connections from the edge to one worker's unix socket, one
// exchange at a time each. The request goes out as one write of a head the
// edge builds (and the body as it comes); of the answer only the head is
// parsed: its body is handed on as the slices that arrive, ended where its
// framing says. This is the hop's hot path: no HTTP client library's request
// objects, no second parse of the body.
import type net from 'node:net';
import { connectChecked } from '../socket-guard.js';
import { bodyReader, type BodyReader } from './body-framing.js';
import { parseResponseHead, type ResponseHead } from './response-head.js';

/** Connections to one worker at most; further exchanges wait for one. */
const MAX_CONNECTIONS = 256;

/** What an exchange hears from its connection. */
export interface UpstreamSink {
  /** The final answer's head (interim 1xx answers are skipped). */
  onHead(head: ResponseHead): void;
  /** Body bytes; false: stop reading until resume(). */
  onBody(chunk: Buffer): boolean;
  onEnd(): void;
  /** The exchange failed; `reachedWorker`: the request may have been seen by the worker. */
  onError(err: Error & { code?: string }, reachedWorker: boolean): void;
}

/** An error whose code tells the exchange the request never left the edge. */
function upstreamError(message: string, code: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

/** The pool was destroyed (the worker is being replaced or stopped). */
const poolClosed = () => upstreamError('the connections to the worker were closed', 'UPSTREAM_DESTROYED');

export class UpstreamConnection {
  private sink: UpstreamSink | undefined;
  private pending: Buffer | undefined;
  private head: ResponseHead | undefined;
  private body: BodyReader | undefined;
  private forHead = false;
  private requestDone = true;
  /** The client's body while it is being sent. */
  private requestBody: NodeJS.ReadableStream | undefined;
  private timeoutMs = 0;
  /** Reading stopped because the client is slow (until resume()). */
  private paused = false;
  private readonly deliver = (chunk: Buffer): void => {
    // The rest of a read that filled the client's buffer is still handed on (the exchange buffers it).
    if (this.sink!.onBody(chunk) || this.paused) return;
    // The client is slow: its wait is not the worker's silence.
    this.paused = true;
    this.socket.pause();
    if (this.socket.timeout) this.socket.setTimeout(0);
  };

  constructor(
    private readonly socket: net.Socket,
    private readonly pool: UpstreamPool,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.onClosed(err));
    socket.on('close', () => this.onClosed());
    socket.on('timeout', () => this.fail(upstreamError('the worker sent nothing for a whole timeout while answering', 'UPSTREAM_BODY_TIMEOUT'), true));
  }

  /**
   * Sends a request: `head` ends with the blank line; `body` (already framed
   * by the caller's `frame`) is streamed with backpressure.
   * `bodyTimeoutMs`: silence allowed while the answer's body streams.
   */
  send(head: string, body: NodeJS.ReadableStream | null, frame: BodyFramer | null, forHead: boolean, bodyTimeoutMs: number, sink: UpstreamSink): void {
    this.sink = sink;
    this.forHead = forHead;
    this.timeoutMs = bodyTimeoutMs;
    this.head = undefined;
    this.body = undefined;
    this.pending = undefined;
    this.paused = false;
    this.socket.resume();
    this.socket.write(head, 'latin1');
    this.requestDone = body === null;
    if (body && frame) this.streamBody(body, frame);
  }

  /** Reading the answer again after onBody said stop. */
  resume(): void {
    if (!this.sink || !this.paused) return;
    this.paused = false;
    if (this.timeoutMs) this.socket.setTimeout(this.timeoutMs);
    this.socket.resume();
  }

  /** The pool is closed: an exchange under way fails (its request was sent). */
  close(): void {
    if (this.sink) this.fail(poolClosed(), true);
    else this.socket.destroy();
  }

  /** Drops the connection and whatever is under way on it (the client went away, a timeout). */
  abort(): void {
    this.sink = undefined;
    this.drop();
  }

  private drop(): void {
    this.socket.destroy();
    // A body paused for this connection's backpressure flows again (into nothing), so the
    // client's connection can reach its next request.
    this.requestBody?.resume();
    this.requestBody = undefined;
  }

  private streamBody(body: NodeJS.ReadableStream, frame: BodyFramer): void {
    const socket = this.socket;
    this.requestBody = body;
    const onData = (chunk: Buffer) => {
      if (socket.destroyed) return;
      if (!socket.write(frame.chunk(chunk))) {
        body.pause();
        socket.once('drain', () => body.resume());
      }
    };
    body.on('data', onData);
    body.once('end', () => {
      body.off('data', onData);
      const last = frame.end();
      if (last && !socket.destroyed) socket.write(last);
      this.requestDone = true;
      this.requestBody = undefined;
    });
  }

  private onData(chunk: Buffer): void {
    if (!this.sink) {
      // Nothing was asked: a worker talking out of turn cannot be trusted with the next request.
      this.socket.destroy();
      return;
    }
    try {
      if (!this.body) {
        const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
        let at = 0;
        let head: ResponseHead | undefined;
        // Interim answers (1xx) are read past; the final one follows.
        for (;;) {
          head = parseResponseHead(at ? buf.subarray(at) : buf, this.forHead);
          if (!head) break;
          at += head.headBytes;
          if (head.status >= 200) break;
        }
        if (!head || head.status < 200) {
          this.pending = at < buf.length ? buf.subarray(at) : undefined;
          return;
        }
        this.pending = undefined;
        this.head = head;
        this.body = bodyReader(head.framing);
        this.sink.onHead(head);
        if (!this.sink) return;
        this.feed(at ? buf.subarray(at) : buf);
      } else {
        this.feed(chunk);
      }
    } catch (err) {
      this.fail(err as Error, true);
    }
  }

  private feed(buf: Buffer): void {
    const used = this.body!.feed(buf, this.deliver);
    if (used === -1) {
      // The body goes on in later reads: from now on silence is bounded (not while the client is the slow one).
      if (this.timeoutMs && !this.paused && this.socket.timeout !== this.timeoutMs) this.socket.setTimeout(this.timeoutMs);
      return;
    }
    this.finish(used === buf.length);
  }

  private finish(clean: boolean): void {
    const sink = this.sink!;
    this.sink = undefined;
    if (this.socket.timeout) this.socket.setTimeout(0);
    // Idle connections read on: whatever a worker sends out of turn ends the connection (onData)
    // instead of waiting in the buffer to be taken for the next exchange's answer.
    this.paused = false;
    this.socket.resume();
    // Reused only when the exchange ended exactly: nothing extra, the request all sent, no close asked.
    if (clean && this.requestDone && !this.head!.closes && this.socket.readableLength === 0) this.pool.release(this);
    else this.drop();
    sink.onEnd();
  }

  private fail(err: Error, reachedWorker: boolean): void {
    const sink = this.sink;
    this.sink = undefined;
    this.drop();
    sink?.onError(err, reachedWorker);
  }

  private onClosed(err?: Error): void {
    this.pool.forget(this);
    if (!this.sink) return;
    if (this.body?.endsWithClose() && this.head?.framing.kind === 'close') return this.finish(false);
    this.fail(err ?? upstreamError('the worker closed the connection before its answer was complete', 'UPSTREAM_CLOSED'), true);
  }
}

/** How a request body is framed on the way to the worker. */
export interface BodyFramer {
  chunk(data: Buffer): Buffer | string;
  end(): string | null;
}

/** A body with Content-Length goes as it is. */
export const AS_IS: BodyFramer = { chunk: (d) => d, end: () => null };

/** A chunked body is chunked again (the edge decoded the client's framing). */
export const CHUNKED: BodyFramer = {
  chunk: (d) => Buffer.concat([Buffer.from(`${d.length.toString(16)}\r\n`, 'latin1'), d, Buffer.from('\r\n', 'latin1')]),
  end: () => '0\r\n\r\n',
};

type Waiter = (err: (Error & { code?: string }) | null, conn: UpstreamConnection | null) => void;

/** The keep-alive connections to one worker's socket. */
export class UpstreamPool {
  private readonly idle: UpstreamConnection[] = [];
  private readonly open = new Set<UpstreamConnection>();
  private readonly waiting: Waiter[] = [];
  private connecting = 0;
  private closed = false;

  constructor(
    private readonly socketPath: string,
    private readonly maxConnections = MAX_CONNECTIONS,
  ) {}

  /** An idle connection, a new one, or (past the cap) the next one freed. */
  acquire(done: Waiter): void {
    if (this.closed) return done(poolClosed(), null);
    const conn = this.idle.pop();
    if (conn) return done(null, conn);
    if (this.open.size + this.connecting >= this.maxConnections) {
      this.waiting.push(done);
      return;
    }
    this.connecting++;
    connectChecked(this.socketPath, (err, socket) => {
      this.connecting--;
      if (err) {
        done(err, null);
        // The slot it would have taken is free again.
        const next = this.waiting.shift();
        if (next) this.acquire(next);
        return;
      }
      if (this.closed) {
        socket!.destroy();
        return done(poolClosed(), null);
      }
      const c = new UpstreamConnection(socket!, this);
      this.open.add(c);
      done(null, c);
    });
  }

  release(conn: UpstreamConnection): void {
    if (this.closed) return conn.close();
    const next = this.waiting.shift();
    if (next) return next(null, conn);
    this.idle.push(conn);
  }

  forget(conn: UpstreamConnection): void {
    if (!this.open.delete(conn)) return;
    const i = this.idle.indexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
    // A slot came free: a waiting exchange gets a new connection.
    const next = this.waiting.shift();
    if (next) this.acquire(next);
  }

  /** Closes every connection; exchanges on them fail, waiting ones too. */
  destroy(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w(poolClosed(), null);
    for (const c of [...this.open]) c.close();
    this.idle.length = 0;
  }
}
