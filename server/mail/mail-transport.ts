// How the platform hands a checked message on: a pooled SMTP client
// (TENANTRY_SMTP_URL), or, with none set, an .eml file per message in
// <data>/outbox/<tenant>/ (platform-only folder). SMTP answers become a
// MailResult: 250 -> sent; a 4xx, or no connection, before the message was
// accepted -> deferred; a 5xx -> failed.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import type { MailResult } from '../../plugins/plugin-api.js';

export interface MailTransport {
  send(tenantId: string, message: Mail.Options): Promise<MailResult>;
  close(): void;
}

interface SmtpError extends Error {
  responseCode?: number;
  code?: string;
  command?: string;
}

/** What became of a message the SMTP client could not deliver. */
export function resultOfSmtpError(err: SmtpError): MailResult {
  const code = err.responseCode;
  const reason = (err.message || String(err)).replace(/\s+/g, ' ').slice(0, 300);
  if (code !== undefined && code >= 500 && code < 600) return { status: 'failed', reason, smtpCode: code };
  return { status: 'deferred', reason };
}

export function smtpTransport(url: string): MailTransport {
  const transport = nodemailer.createTransport({
    url,
    pool: true,
    maxConnections: 3,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 60_000,
  } as Parameters<typeof nodemailer.createTransport>[0]);
  return {
    async send(_tenantId, message) {
      try {
        const info = (await transport.sendMail(message)) as { messageId: string; response?: string };
        return { status: 'sent', messageId: info.messageId };
      } catch (err) {
        return resultOfSmtpError(err as SmtpError);
      }
    },
    close: () => transport.close(),
  };
}

export function outboxTransport(outbox: string): MailTransport {
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  return {
    async send(tenantId, message) {
      const info = (await transport.sendMail(message)) as { messageId: string; message: Buffer };
      const dir = path.join(outbox, tenantId);
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const file = path.join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${crypto.randomBytes(4).toString('hex')}.eml`);
      fs.writeFileSync(file, info.message, { mode: 0o600, flag: 'wx' });
      return { status: 'sent', messageId: info.messageId };
    },
    close: () => transport.close(),
  };
}
