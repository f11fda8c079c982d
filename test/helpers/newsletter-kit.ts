// Test kit for the newsletter plugin, run without the platform: a real SMTP
// server on loopback (smtp-server) that records what it receives and can be
// told to answer 4xx/5xx per recipient or to be slow; a MailCapability over
// nodemailer that maps the SMTP outcome to MailResult as plugin-api.ts says;
// HKDF keys from a test secret; and an Express app with the plugin's routers
// mounted where the worker mounts them.
import crypto from 'node:crypto';
import { tempDir } from './temp-dirs.js';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import type { BackgroundWork, MailCapability, MailResult, OutgoingMail, PluginContext, PluginLogger, PluginRouters } from '../../plugins/plugin-api.js';
import type { NewsletterConfig } from '../../plugins/newsletter/config.js';

export const TEST_SECRET = 'newsletter-test-master-secret';

export interface ReceivedMail {
  readonly to: string;
  readonly raw: string;
  readonly headers: Map<string, string>;
  readonly text: string;
}

export interface SmtpBehaviour {
  /** A reply for RCPT TO, e.g. {code: 550, message: 'no such user'}; undefined accepts. */
  rcpt?: (address: string) => { code: number; message: string } | undefined;
  /** Milliseconds to wait after the message's data before answering 250. */
  delayMs?: number;
  /** Runs when a message's data has been received, before the answer (the crash test kills here). */
  onReceived?: (mail: ReceivedMail, count: number) => void | Promise<void>;
}

export interface TestSmtp {
  readonly port: number;
  readonly received: ReceivedMail[];
  readonly rcptAttempts: Map<string, number>;
  behaviour: SmtpBehaviour;
  countFor(address: string): number;
  /** The received mails for an address, waiting up to `ms` for `n` of them. */
  waitFor(address: string, n?: number, ms?: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
}

function decodeQuotedPrintable(s: string): string {
  return Buffer.from(
    s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  ).toString('utf8');
}

export function parseMail(to: string, raw: string): ReceivedMail {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const headers = new Map<string, string>();
  for (const line of head.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return { to, raw, headers, text: decodeQuotedPrintable(raw.slice(split + 4)) };
}

export async function startSmtp(behaviour: SmtpBehaviour = {}): Promise<TestSmtp> {
  const received: ReceivedMail[] = [];
  const rcptAttempts = new Map<string, number>();
  const state = { behaviour };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onRcptTo(address, _session, callback) {
      const a = address.address.toLowerCase();
      rcptAttempts.set(a, (rcptAttempts.get(a) ?? 0) + 1);
      const reply = state.behaviour.rcpt?.(a);
      if (reply) {
        const err = new Error(reply.message) as Error & { responseCode: number };
        err.responseCode = reply.code;
        callback(err);
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const to = session.envelope.rcptTo.map((r) => r.address.toLowerCase());
        void (async () => {
          for (const t of to) {
            const mail = parseMail(t, raw);
            received.push(mail);
            await state.behaviour.onReceived?.(mail, received.length);
          }
          if (state.behaviour.delayMs) await new Promise((r) => setTimeout(r, state.behaviour.delayMs));
          callback();
        })();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  const countFor = (a: string) => received.filter((m) => m.to === a).length;
  return {
    port,
    received,
    rcptAttempts,
    get behaviour() { return state.behaviour; },
    set behaviour(b) { state.behaviour = b; },
    countFor,
    async waitFor(address, n = 1, ms = 10_000) {
      const until = Date.now() + ms;
      while (countFor(address) < n) {
        if (Date.now() > until) throw new Error(`no mail for ${address} within ${ms} ms (have ${countFor(address)})`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return received.filter((m) => m.to === address);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The MailCapability the platform gives, over a real SMTP conversation (outcomes as in plugin-api.ts). */
export function smtpMail(port: number, hooks: { beforeSend?: (mail: OutgoingMail) => void | Promise<void> } = {}): MailCapability & { sent: OutgoingMail[] } {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, connectionTimeout: 5000, greetingTimeout: 5000, socketTimeout: 10_000 });
  const sent: OutgoingMail[] = [];
  return {
    sent,
    async send(mail: OutgoingMail): Promise<MailResult> {
      await hooks.beforeSend?.(mail);
      sent.push(mail);
      const { 'Message-ID': messageId, 'Date': date, ...headers } = mail.headers ?? {};
      try {
        const info = await transport.sendMail({
          from: { name: mail.fromName ?? 'Tenantry', address: 'newsletter@platform.test' },
          to: mail.to,
          subject: mail.subject,
          text: mail.text,
          ...(mail.html ? { html: mail.html } : {}),
          ...(mail.replyTo ? { replyTo: mail.replyTo } : {}),
          ...(messageId ? { messageId } : {}),
          ...(date ? { date } : {}),
          // As given (ASCII, already valid header text): nodemailer would otherwise MIME-encode List-Id's quotes.
          headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, { prepared: true, value: v }])),
        });
        return { status: 'sent', messageId: info.messageId };
      } catch (err) {
        const e = err as { responseCode?: number; response?: string; code?: string; message: string };
        const code = e.responseCode;
        if (typeof code === 'number' && code >= 500) return { status: 'failed', reason: e.response ?? e.message, smtpCode: code };
        if (typeof code === 'number' && code >= 400) return { status: 'deferred', reason: e.response ?? e.message };
        // No SMTP answer at all (refused connection, timeout): nothing was accepted.
        return { status: 'deferred', reason: e.code ?? e.message };
      }
    },
  };
}

export function hkdfKeys(tenantId: string, secret = TEST_SECRET): { key(purpose: string): Buffer } {
  return {
    key: (purpose: string) => Buffer.from(crypto.hkdfSync('sha256', secret, `tenant:${tenantId}`, `plugin:newsletter:${purpose}`, 32)),
  };
}

export interface LogLines extends PluginLogger {
  readonly lines: string[];
}

export function memoryLog(): LogLines {
  const lines: string[] = [];
  return {
    lines,
    info: (l) => void lines.push(`info ${l}`),
    warn: (l) => void lines.push(`warn ${l}`),
    error: (l) => void lines.push(`error ${l}`),
  };
}

/** A fresh folder for a test's plugin data, gone when the test file's process ends. */
export function tempDataDir(prefix = 'newsletter-'): string {
  return tempDir(prefix);
}

/** The platform's record of the plugin's background work, as the plugin last told it. */
export function recordedWork(): BackgroundWork & { readonly said: boolean[] } {
  const said: boolean[] = [];
  return { said, setPending: async (pending: boolean) => { said.push(pending); return true; } };
}

export function testContext(opts: {
  tenantId: string;
  dataDir: string;
  mail: MailCapability;
  config?: Partial<NewsletterConfig>;
  siteUrl?: string;
}): PluginContext<NewsletterConfig> & { log: LogLines; background: ReturnType<typeof recordedWork> } {
  return {
    tenantId: opts.tenantId,
    dataDir: opts.dataDir,
    config: { title: `The ${opts.tenantId} Letter`, address: '1 Test Street, 12345 Testville', ...opts.config },
    log: memoryLog(),
    mail: opts.mail,
    keys: hkdfKeys(opts.tenantId),
    background: recordedWork(),
    siteUrl: opts.siteUrl ?? `https://${opts.tenantId}.example.test`,
  };
}

export interface TestServer {
  readonly url: string;
  close(): Promise<void>;
}

/** An app as the worker builds it: parsed bodies, trusted proxy address, the plugin's routers mounted. */
export async function serve(routers: PluginRouters): Promise<TestServer> {
  const app = express();
  app.set('trust proxy', true);
  app.use(express.json({ limit: '1mb' }));
  app.use(express.urlencoded({ extended: true, limit: '1mb' })); // as server/runtime/worker-app.ts
  if (routers.publicRouter) app.use('/_newsletter/', routers.publicRouter);
  if (routers.adminRouter) app.use('/_admin/newsletter/', routers.adminRouter);
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** The path and query of a link in a mail (they point at the tenant's domain; the test serves them on loopback). */
export function localPath(url: string): string {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
}

/** The first link of the given kind in a received mail's text. */
export function linkIn(mail: ReceivedMail, kind: 'confirm' | 'unsubscribe'): string {
  const m = new RegExp(`https?://[^\\s<>"]+/_newsletter/${kind}\\?token=[A-Za-z0-9._-]+`).exec(mail.text);
  if (!m) throw new Error(`no ${kind} link in the mail:\n${mail.text}`);
  return m[0];
}

export async function until(cond: () => boolean | Promise<boolean>, ms = 15_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
