// Connection caps for the edge's listeners: one client address may hold only
// so many connections, all clients together stay below the process's file
// descriptor limit (with a reserve for worker sockets, release files and git),
// and a connection that has not finished its request headers in time is cut.
// Without them one client dribbling partial headers on thousands of
// connections takes every tenant down (no descriptors left, every dynamic
// route 502). Refusals are logged, at most once a minute per kind.
import fs from 'node:fs';
import type net from 'node:net';
import type http from 'node:http';
import type https from 'node:https';
import tls from 'node:tls';
import type { Logger } from '../log.js';

/** Descriptors kept for everything that is not a client connection. */
const DESCRIPTOR_RESERVE = 1024;
const FALLBACK_DESCRIPTOR_LIMIT = 1024;
/** Time a client has to send a complete request head. */
export const HEADERS_TIMEOUT_MS = 15_000;
const LOG_EVERY_MS = 60_000;
const AWAITING_FIRST_REQUEST = Symbol('awaitingFirstRequest');
/** How often Node looks for connections past headersTimeout (pass to http.createServer). */
export const CONNECTIONS_CHECKING_INTERVAL_MS = 1000;

/** The soft RLIMIT_NOFILE of this process (Linux), or a cautious guess. */
export function descriptorLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    if (m) return m[1] === 'unlimited' ? 1_048_576 : Number(m[1]);
  } catch {
    /* not Linux */
  }
  return FALLBACK_DESCRIPTOR_LIMIT;
}

/** The default total cap: the descriptor limit less the reserve, and never below 64. */
export function defaultConnectionCap(limit = descriptorLimit()): number {
  return Math.max(64, limit - Math.min(DESCRIPTOR_RESERVE, Math.floor(limit / 2)));
}

export interface ConnectionCaps {
  readonly perAddress: number;
  readonly total: number;
  /** Time to send a complete first request head (default HEADERS_TIMEOUT_MS). */
  readonly headersTimeoutMs?: number;
  /**
   * Peers exempt from the per-address cap: trusted proxies carry many clients
   * on their connections (they still count towards the total).
   */
  readonly exempt?: (address: string) => boolean;
}

export class ConnectionGuard {
  private readonly byAddress = new Map<string, number>();
  private readonly lastLogged = new Map<string, number>();
  private open = 0;
  private readonly headersTimeoutMs: number;

  constructor(
    readonly caps: ConnectionCaps,
    private readonly log: Logger,
  ) {
    this.headersTimeoutMs = caps.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  }

  /** Applies the caps and the header timeout to a server; may be called for several listeners (one budget). */
  protect(server: http.Server | https.Server): void {
    // headersTimeout bounds a request head that has begun (a dribble of header
    // lines); Node checks it every connectionsCheckingInterval (30 s unless set
    // at creation, see createEdgeServer). A connection that sends nothing at
    // all is not covered by it: an idle timer covers that until the first request.
    server.headersTimeout = this.headersTimeoutMs;
    server.on('connection', (socket: net.Socket) => this.admit(socket));
    // Over TLS the http layer sees the TLS socket, not the raw one counted above:
    // the wait for the first request starts once the handshake is done (the
    // handshake itself is bounded by the server's handshakeTimeout).
    const ready = server instanceof tls.Server ? 'secureConnection' : 'connection';
    server.on(ready, (socket: net.Socket) => {
      if (socket.destroyed) return;
      (socket as net.Socket & { [AWAITING_FIRST_REQUEST]?: boolean })[AWAITING_FIRST_REQUEST] = true;
      socket.setTimeout(this.headersTimeoutMs);
    });
    server.on('request', (req: http.IncomingMessage) => {
      const socket = req.socket as net.Socket & { [AWAITING_FIRST_REQUEST]?: boolean };
      if (socket[AWAITING_FIRST_REQUEST]) {
        socket[AWAITING_FIRST_REQUEST] = false;
        socket.setTimeout(0);
      }
    });
  }

  /** Open connections now (for the metrics and tests). */
  get openConnections(): number {
    return this.open;
  }

  private admit(socket: net.Socket): void {
    const address = socket.remoteAddress ?? '';
    if (this.open >= this.caps.total) return this.refuse(socket, 'total', `connection refused: ${this.caps.total} open connections in all (TENANTRY_MAX_CONNECTIONS)`, address);
    const held = this.byAddress.get(address) ?? 0;
    if (held >= this.caps.perAddress && !this.caps.exempt?.(address)) {
      return this.refuse(socket, `address:${address}`, `connection refused: ${address} holds ${held} connections (TENANTRY_MAX_CONNECTIONS_PER_ADDRESS)`, address);
    }
    this.open++;
    this.byAddress.set(address, held + 1);
    // Until its first request (set in protect()): idle this long and the http server's own timeout handler destroys it.
    socket.once('close', () => {
      this.open--;
      const n = (this.byAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.byAddress.delete(address);
      else this.byAddress.set(address, n);
    });
  }

  private refuse(socket: net.Socket, kind: string, message: string, address: string): void {
    socket.destroy();
    const now = Date.now();
    if (now - (this.lastLogged.get(kind) ?? 0) < LOG_EVERY_MS) return;
    this.lastLogged.set(kind, now);
    if (this.lastLogged.size > 1000) this.lastLogged.clear();
    this.log.warn(message, { address });
  }
}
