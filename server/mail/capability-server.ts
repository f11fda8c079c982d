// The edge's end of the tenants' capability channels (contract in
// launch/capability-channel.ts): one unix socket per tenant, in a folder the
// platform owns; the tenant is the socket's, never the message's. Answers a
// worker's start (one-time ticket -> its plugins' keys and site URL), its
// plugins' mail (checked, capped, sent, logged, counted) and their word that
// they have background work (kept running until it is done).
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../log.js';
import type { MailMetrics } from '../metrics/platform-metrics.js';
import type { MailResult } from '../../plugins/plugin-api.js';
import {
  CAPABILITY_SOCKET_ENV,
  CAPABILITY_SOCKET_NAME,
  CAPABILITY_TICKET_ENV,
  MAX_CAPABILITY_LINE_BYTES,
  type ErrorAnswer,
  type StartAnswer,
  type WorkAnswer,
} from '../launch/capability-channel.js';
import type { LaunchCapabilities, WorkerCapabilities } from '../pool/worker-capabilities.js';
import { pluginKeyFor } from '../auth/plugin-keys.js';
import { checkMail, messageFor } from './mail-policy.js';
import { HourlyCap } from './hourly-cap.js';
import type { MailTransport } from './mail-transport.js';

const TICKET_TTL_MS = 2 * 60 * 1000;
/** A message is an object with one object inside (headers): anything deeper is refused before JSON.parse. */
const MAX_DEPTH = 4;

/** True when arrays and objects in `buf` nest deeper than `max` (strings skipped); O(n), no recursion. */
function nestsDeeperThan(buf: Buffer, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}
const IDLE_MS = 120_000;
/** Concurrent connections per tenant: a plugin sending a batch, not a flood. */
const MAX_CONNECTIONS = 16;

export interface CapabilityServerDeps {
  /** <data>/mail/<id>/: made by the platform (platform:tn-<id> 0750 when tenants have users). */
  readonly dirOf: (tenantId: string) => string;
  readonly secret: string;
  readonly siteUrlOf: (tenantId: string) => string;
  readonly transport: MailTransport;
  readonly mailFrom: string;
  readonly hourlyCap: number;
  readonly log: Logger;
  /** One line per message in the tenant's own site log (`tenantry logs`). */
  readonly siteLog?: (tenantId: string, line: string) => void;
  /** tenantry_mail_total{tenant, outcome}. */
  readonly metrics?: MailMetrics;
  /**
   * A plugin of the tenant says it has (or no longer has) work to finish
   * without requests; false when that plugin is not enabled for the tenant.
   */
  readonly backgroundWork?: (tenantId: string, plugin: string, pending: boolean) => boolean;
}

interface Ticket {
  readonly tenantId: string;
  readonly plugins: readonly string[];
  readonly expires: number;
}

/** Mail outcomes per tenant since start (for logs and metrics). */
export type MailCounts = Record<MailResult['status'], number>;

export class CapabilityServer implements WorkerCapabilities {
  private readonly servers = new Map<string, Promise<net.Server>>();
  private readonly tickets = new Map<string, Ticket>();
  private readonly cap: HourlyCap;
  readonly counts = new Map<string, MailCounts>();

  constructor(private readonly d: CapabilityServerDeps) {
    this.cap = new HourlyCap(d.hourlyCap);
  }

  socketOf(tenantId: string): string {
    return path.join(this.d.dirOf(tenantId), CAPABILITY_SOCKET_NAME);
  }

  async prepare(tenantId: string, plugins: readonly string[]): Promise<LaunchCapabilities> {
    await this.listen(tenantId);
    const now = Date.now();
    for (const [k, t] of this.tickets) if (t.expires < now) this.tickets.delete(k);
    const ticket = crypto.randomBytes(24).toString('base64url');
    this.tickets.set(ticket, { tenantId, plugins: [...plugins], expires: now + TICKET_TTL_MS });
    return { env: { [CAPABILITY_SOCKET_ENV]: this.socketOf(tenantId), [CAPABILITY_TICKET_ENV]: ticket }, dir: this.d.dirOf(tenantId) };
  }

  /** Stops listening for a tenant (deleted) and removes its socket. */
  async closeTenant(tenantId: string): Promise<void> {
    const s = this.servers.get(tenantId);
    this.servers.delete(tenantId);
    if (s) await s.then((server) => new Promise<void>((resolve) => server.close(() => resolve()))).catch(() => {});
    fs.rmSync(this.socketOf(tenantId), { force: true });
  }

  async close(): Promise<void> {
    await Promise.all([...this.servers.keys()].map((id) => this.closeTenant(id)));
    this.d.transport.close();
  }

  private listen(tenantId: string): Promise<net.Server> {
    let p = this.servers.get(tenantId);
    if (p) return p;
    p = new Promise<net.Server>((resolve, reject) => {
      const dir = this.d.dirOf(tenantId);
      // Provisioning made it with the tenant's group; without tenant users, the platform's only.
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const socket = this.socketOf(tenantId);
      fs.rmSync(socket, { force: true });
      const server = net.createServer((conn) => this.serve(tenantId, conn));
      server.maxConnections = MAX_CONNECTIONS;
      server.once('error', reject);
      server.listen(socket, () => {
        server.off('error', reject);
        server.on('error', (err) => this.d.log.error('capability socket failed', { tenant: tenantId, err }));
        // The folder decides who may connect (platform:tn-<id> 0750); the socket itself is open.
        fs.chmodSync(socket, 0o666);
        resolve(server);
      });
    });
    p.catch(() => this.servers.delete(tenantId));
    this.servers.set(tenantId, p);
    return p;
  }

  private serve(tenantId: string, conn: net.Socket): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    conn.setTimeout(IDLE_MS, () => conn.destroy());
    conn.on('error', () => {});
    const answer = (value: unknown) => {
      done = true;
      conn.end(JSON.stringify(value) + '\n');
    };
    conn.on('data', (chunk: Buffer) => {
      if (done) return;
      const nl = chunk.indexOf(0x0a);
      const part = nl === -1 ? chunk : chunk.subarray(0, nl);
      size += part.length;
      if (size > MAX_CAPABILITY_LINE_BYTES) {
        answer({ ok: false, error: 'the request is too large' } satisfies ErrorAnswer);
        return;
      }
      chunks.push(part);
      if (nl === -1) return;
      done = true;
      conn.pause();
      let request: { op?: unknown; ticket?: unknown; mail?: unknown };
      const line = Buffer.concat(chunks);
      if (nestsDeeperThan(line, MAX_DEPTH)) {
        answer({ ok: false, error: 'the request nests too deep' } satisfies ErrorAnswer);
        return;
      }
      try {
        request = JSON.parse(line.toString('utf8')) as typeof request;
      } catch {
        answer({ ok: false, error: 'the request is not JSON' } satisfies ErrorAnswer);
        return;
      }
      void this.handle(tenantId, request).then(answer, (err: unknown) => {
        this.d.log.error('capability request failed', { tenant: tenantId, err });
        answer({ ok: false, error: 'internal error' } satisfies ErrorAnswer);
      });
    });
  }

  /** A plugin's background work started or ended (the platform keeps the worker running meanwhile). */
  private work(tenantId: string, request: { plugin?: unknown; pending?: unknown }): WorkAnswer | ErrorAnswer {
    if (typeof request.plugin !== 'string' || request.plugin.length > 64 || typeof request.pending !== 'boolean') {
      return { ok: false, error: 'a work request is {"op": "work", "plugin": name, "pending": true|false}' };
    }
    if (!this.d.backgroundWork) return { ok: false, error: 'background work is not supported here' };
    if (!this.d.backgroundWork(tenantId, request.plugin, request.pending)) return { ok: false, error: `the plugin "${request.plugin}" is not enabled for this site` };
    return { ok: true };
  }

  private async handle(tenantId: string, request: { op?: unknown; ticket?: unknown; mail?: unknown }): Promise<unknown> {
    if (request.op === 'start') return this.start(tenantId, request.ticket);
    if (request.op === 'send') return this.send(tenantId, request.mail);
    if (request.op === 'work') return this.work(tenantId, request as { plugin?: unknown; pending?: unknown });
    return { ok: false, error: 'unknown request' } satisfies ErrorAnswer;
  }

  private start(tenantId: string, ticketValue: unknown): StartAnswer | ErrorAnswer {
    const ticket = typeof ticketValue === 'string' ? this.tickets.get(ticketValue) : undefined;
    // Spent on first use, also by a wrong tenant (a ticket is tried once).
    if (typeof ticketValue === 'string') this.tickets.delete(ticketValue);
    if (!ticket || ticket.tenantId !== tenantId || ticket.expires < Date.now()) return { ok: false, error: 'the start ticket is not valid (already used or expired)' };
    const pluginKeys: Record<string, string> = {};
    for (const name of ticket.plugins) pluginKeys[name] = pluginKeyFor(this.d.secret, tenantId, name).toString('base64');
    return { ok: true, siteUrl: this.d.siteUrlOf(tenantId), pluginKeys };
  }

  private async send(tenantId: string, value: unknown): Promise<MailResult> {
    const checked = checkMail(value);
    let result: MailResult;
    if (!checked.ok) result = { status: 'refused', reason: checked.reason };
    else if (!this.cap.take(tenantId)) result = { status: 'refused', reason: `the hourly cap of ${this.d.hourlyCap} messages for this site is reached` };
    else result = await this.d.transport.send(tenantId, messageFor(checked.mail, tenantId, this.d.mailFrom));
    const counts = this.counts.get(tenantId) ?? { sent: 0, deferred: 0, failed: 0, refused: 0 };
    counts[result.status]++;
    this.counts.set(tenantId, counts);
    this.d.metrics?.mail(result.status, tenantId);
    const toDomain = checked.ok ? checked.mail.to.slice(checked.mail.to.lastIndexOf('@') + 1) : undefined;
    const why = result.status === 'sent' ? '' : `: ${result.reason}`;
    this.d.siteLog?.(tenantId, `tenantry: mail to ${toDomain ? `an address at ${toDomain}` : 'an invalid address'} ${result.status}${why}`);
    this.d.log.info('mail', { tenant: tenantId, status: result.status, toDomain, ...(result.status === 'sent' ? { messageId: result.messageId } : { reason: result.reason }) });
    return result;
  }
}
