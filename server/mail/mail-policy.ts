// What a plugin may ask to send, checked in the edge before any SMTP: sizes,
// one recipient, no line breaks in header values, only allow-listed extra
// headers. From is always the platform's address (TENANTRY_MAIL_FROM), with the
// plugin's fromName or the tenant id as display name. Message-ID and Date may be
// given (a stable Message-ID per issue and reader lets receivers drop a repeat);
// otherwise the mailer sets them.
import { z } from 'zod';

export const MAX_MAIL_BODY_BYTES = 1024 * 1024;
const MAX_EXTRA_HEADERS = 20;

const oneLine = (max: number) => z.string().max(max).refine((v) => !/[\r\n\0]/.test(v), 'may not contain line breaks');

/** Extra headers a plugin may set; everything that says who sent the message is the platform's. */
const ALLOWED_HEADERS = new Set([
  'list-unsubscribe',
  'list-unsubscribe-post',
  'list-id',
  'list-help',
  'list-subscribe',
  'list-post',
  'list-owner',
  'list-archive',
  'precedence',
  'auto-submitted',
  'feedback-id',
  'x-entity-ref-id',
  'message-id',
  'date',
]);

/** `<left@right>` with nothing a header could be broken with. */
const MESSAGE_ID = /^<[!-;=?-~]{1,200}@[!-;=?-~]{1,200}>$/;

export function headerProblem(name: string): string | undefined {
  const lower = name.toLowerCase();
  if (ALLOWED_HEADERS.has(lower)) return undefined;
  if (lower.startsWith('x-') && !lower.startsWith('x-tenantry') && /^[a-z0-9-]{3,64}$/.test(lower)) return undefined;
  return `the header "${name.slice(0, 64)}" is the platform's to set (allowed: List-*, Precedence, Auto-Submitted, Feedback-ID, Message-ID, Date, X-*)`;
}

const mailSchema = z.strictObject({
  to: z.email().max(254),
  subject: oneLine(998),
  text: z.string(),
  html: z.string().optional(),
  fromName: oneLine(100).refine((v) => !/[<>"]/.test(v), 'may not contain <, > or "').optional(),
  replyTo: z.email().max(254).optional(),
  headers: z.record(z.string().max(64), oneLine(2000)).optional(),
});

export type CheckedMail = z.infer<typeof mailSchema>;

/** The message, or why it is refused (one line). */
export function checkMail(value: unknown): { ok: true; mail: CheckedMail } | { ok: false; reason: string } {
  const parsed = mailSchema.safeParse(value);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    return { ok: false, reason: `${i.path.length ? i.path.join('.') + ': ' : ''}${i.message}` };
  }
  const mail = parsed.data;
  if (Buffer.byteLength(mail.text) + Buffer.byteLength(mail.html ?? '') > MAX_MAIL_BODY_BYTES) {
    return { ok: false, reason: `the message is larger than ${MAX_MAIL_BODY_BYTES / 1024} KiB` };
  }
  const headers = Object.keys(mail.headers ?? {});
  if (headers.length > MAX_EXTRA_HEADERS) return { ok: false, reason: `at most ${MAX_EXTRA_HEADERS} extra headers` };
  const seen = new Set<string>();
  for (const h of headers) {
    const problem = headerProblem(h);
    if (problem) return { ok: false, reason: problem };
    if (seen.has(h.toLowerCase())) return { ok: false, reason: `the header "${h}" is given twice` };
    seen.add(h.toLowerCase());
    const value = mail.headers![h]!;
    if (h.toLowerCase() === 'message-id' && !MESSAGE_ID.test(value)) return { ok: false, reason: 'headers.Message-ID: must look like <id@domain>' };
    if (h.toLowerCase() === 'date' && Number.isNaN(Date.parse(value))) return { ok: false, reason: 'headers.Date: not a date' };
  }
  return { ok: true, mail };
}

/** The longest header line SMTP allows (RFC 5322 2.1.1), without its CRLF. */
const MAX_HEADER_LINE = 998;

/**
 * A header value as nodemailer should write it. Printable ASCII goes out as
 * given ("prepared"): nodemailer would otherwise turn any value with quotes or
 * angle brackets into an encoded-word, and `List-Id: =?UTF-8?Q?...?=` is no
 * list id. Anything else (non-ASCII text, an over-long line) is left to
 * nodemailer to encode and fold.
 */
export function headerValue(name: string, value: string): string | { prepared: true; value: string } {
  const printable = /^[\x20-\x7e]*$/.test(value);
  return printable && name.length + 2 + value.length <= MAX_HEADER_LINE ? { prepared: true, value } : value;
}

/** nodemailer's message options for a checked mail. */
export function messageFor(mail: CheckedMail, tenantId: string, fromAddress: string) {
  const headers: Record<string, string | { prepared: true; value: string }> = {};
  let messageId: string | undefined;
  let date: Date | undefined;
  for (const [name, value] of Object.entries(mail.headers ?? {})) {
    // As options, not headers: nodemailer writes its own otherwise, and a second Date or Message-ID is invalid.
    if (name.toLowerCase() === 'message-id') messageId = value;
    else if (name.toLowerCase() === 'date') date = new Date(value);
    else headers[name] = headerValue(name, value);
  }
  return {
    from: { name: mail.fromName ?? tenantId, address: fromAddress },
    to: mail.to,
    subject: mail.subject,
    text: mail.text,
    html: mail.html,
    replyTo: mail.replyTo,
    headers,
    ...(messageId ? { messageId } : {}),
    ...(date ? { date } : {}),
  };
}
