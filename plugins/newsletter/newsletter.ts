// One tenant's newsletter: the store, the signer, the sender loop and the two
// routers (public: subscribe, confirm, unsubscribe; admin: subscribers, CSV,
// issues). index.ts builds it with the defaults; tests tune limits and clock.
import express, { type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import type { PluginContext } from '../plugin-api.js';
import { normaliseAddress } from './address.js';
import { composeConfirmation, composeIssue, type MailContext } from './compose.js';
import type { NewsletterConfig } from './config.js';
import { parseCsv, toCsv } from './csv.js';
import { buttonForm, escapeHtml, sendPage, STYLESHEET, subscribeForm } from './pages.js';
import { SlidingWindowLimiter } from './rate-limit.js';
import { DEFAULT_SENDER_OPTIONS, Sender, type SenderOptions } from './sender.js';
import { NewsletterStore, SUBSCRIBER_STATUSES, type Issue, type Subscriber, type SubscriberStatus } from './store.js';
import { TokenSigner } from './tokens.js';

/** Where the worker mounts the public router (plugin-api.ts: /_<name>/); forms post to absolute paths under it. */
export const PUBLIC_PATH = '/_newsletter';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface Limits {
  /** Subscribe requests per client address per window. */
  readonly perClient: number;
  readonly perClientWindowMs: number;
  /** At most one confirmation mail per address per this interval. */
  readonly perAddressIntervalMs: number;
  /** Confirmation mails per tenant per window. */
  readonly perTenant: number;
  readonly perTenantWindowMs: number;
  /** How long a confirmation link works; the pending subscription is deleted after it. */
  readonly confirmTtlMs: number;
}

export const DEFAULT_LIMITS: Limits = {
  perClient: 10,
  perClientWindowMs: HOUR,
  perAddressIntervalMs: DAY,
  perTenant: 200,
  perTenantWindowMs: HOUR,
  confirmTtlMs: 3 * DAY,
};

export interface NewsletterOptions {
  readonly limits?: Partial<Limits>;
  /** false: no sender loop in this process (another process sends). */
  readonly sender?: Partial<SenderOptions> | false;
  readonly now?: () => number;
}

export interface Newsletter {
  readonly store: NewsletterStore;
  readonly sender: Sender | null;
  readonly publicRouter: Router;
  readonly adminRouter: Router;
  readonly mailContext: MailContext;
  stop(): Promise<void>;
}

const subscribeBody = z.object({
  email: z.string().max(320),
  name: z.string().max(100).optional(),
  website: z.string().max(1000).optional(),
});

const issueBody = z.strictObject({
  subject: z.string().trim().min(1).max(300).regex(/^[^\r\n]*$/),
  html: z.string().min(1).max(900_000),
  text: z.string().max(900_000).optional(),
});

const importRow = z.object({ email: z.string().max(320), name: z.string().max(100).nullish() });

function cleanName(name: string | undefined | null): string | null {
  // eslint-disable-next-line no-control-regex
  const n = (name ?? '').replace(/[\u0000-\u001f\u007f]/g, ' ').trim().slice(0, 100);
  return n === '' ? null : n;
}

function tokenOf(req: Request): unknown {
  const body = req.body as Record<string, unknown> | undefined;
  return (body && typeof body === 'object' && typeof body.token === 'string' ? body.token : undefined) ?? req.query.token;
}

/** Codes of the admin routes' errors, each sent as `newsletter.<code>` (docs/errors.md). */
type AdminErrorCode = 'invalid_status' | 'invalid_import' | 'invalid_issue' | 'subscriber_not_found' | 'issue_not_found' | 'already_sent';

/** An admin route's error in the platform API's shape, `{"error": {"code", "message"}}`, its code prefixed with the plugin's name. */
function adminError(res: Response, status: number, code: AdminErrorCode, message: string): void {
  res.status(status).json({ error: { code: `newsletter.${code}`, message } });
}

const wantsJson = (req: Request): boolean => Boolean(req.is('application/json')) || req.accepts(['html', 'json']) === 'json';

/** The subscriber a token names, if its MAC, purpose, nonce and expiry check out. */
function checkToken(store: NewsletterStore, signer: TokenSigner, purpose: 'confirm' | 'unsubscribe', token: unknown, now: number): Subscriber | null {
  const parsed = TokenSigner.parse(token);
  if (!parsed) return null;
  const s = store.subscriberById(parsed.subscriberId);
  const nonce = purpose === 'confirm' ? s?.confirm_nonce : s?.unsubscribe_nonce;
  // Compute the MAC even for an unknown id, so both take the same time.
  const ok = signer.verify(purpose, parsed, nonce ?? 'none', Math.floor(now / 1000));
  return ok && s && nonce ? s : null;
}

export function createNewsletter(ctx: PluginContext<NewsletterConfig>, options: NewsletterOptions = {}): Newsletter {
  const now = options.now ?? Date.now;
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  const config = ctx.config;
  const store = new NewsletterStore(ctx.dataDir, ctx.keys.key('suppression'));
  const signer = new TokenSigner(ctx.tenantId, (purpose) => ctx.keys.key(purpose));
  const base = `${ctx.siteUrl}${PUBLIC_PATH}`;
  const mailContext: MailContext = {
    tenantId: ctx.tenantId,
    siteUrl: ctx.siteUrl,
    config,
    now,
    confirmUrl: (s) => `${base}/confirm?token=${signer.sign('confirm', s.id, Math.ceil((s.confirm_expires_at ?? 0) / 1000), s.confirm_nonce ?? '')}`,
    unsubscribeUrl: (s) => `${base}/unsubscribe?token=${signer.sign('unsubscribe', s.id, 0, s.unsubscribe_nonce)}`,
  };
  const sender = options.sender === false ? null : new Sender(
    store, ctx.mail, (issue, subscriber) => composeIssue(mailContext, issue, subscriber), ctx.log,
    { ...DEFAULT_SENDER_OPTIONS, ...options.sender }, now, ctx.background,
  );
  const perClient = new SlidingWindowLimiter(limits.perClient, limits.perClientWindowMs);
  const title = config.title;

  // --- public ---
  const publicRouter = express.Router();
  publicRouter.get('/style.css', (_req, res) => {
    res.set({ 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'public, max-age=3600', 'X-Content-Type-Options': 'nosniff' }).send(STYLESHEET);
  });
  publicRouter.get('/', (_req, res) => {
    sendPage(res, 200, title, `Subscribe to ${title}`, `${subscribeForm(`${PUBLIC_PATH}/subscribe`)}<p class="note">We will send you a link to confirm.</p>`);
  });
  publicRouter.get('/form.html', (_req, res) => {
    sendPage(res, 200, title, `Subscribe to ${title}`, subscribeForm(`${PUBLIC_PATH}/subscribe`), { embed: true });
  });

  const ACCEPTED = 'If this address can be subscribed, a mail with a confirmation link is on its way. Open it to confirm.';
  const answerAccepted = (req: Request, res: Response): void => {
    if (wantsJson(req)) res.status(202).set('Cache-Control', 'no-store').json({ ok: true, message: ACCEPTED });
    else sendPage(res, 200, title, 'Check your inbox', `<p>${escapeHtml(ACCEPTED)}</p>`);
  };
  const answerError = (req: Request, res: Response, status: number, message: string): void => {
    if (wantsJson(req)) res.status(status).set('Cache-Control', 'no-store').json({ error: message });
    else sendPage(res, status, title, status === 429 ? 'Too many requests' : 'Something is wrong', `<p>${escapeHtml(message)}</p><p><a href="${PUBLIC_PATH}/">Back</a></p>`);
  };

  publicRouter.post('/subscribe', (req, res) => {
    const client = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    if (!perClient.take(client, now())) {
      res.set('Retry-After', String(Math.ceil(limits.perClientWindowMs / 1000)));
      answerError(req, res, 429, 'Too many subscribe requests from your network; try again later.');
      return;
    }
    const parsed = subscribeBody.safeParse(req.body ?? {});
    if (!parsed.success) { answerError(req, res, 400, 'Give an email address.'); return; }
    // A bot that fills the hidden field gets the ordinary answer and nothing happens.
    if (parsed.data.website && parsed.data.website.trim() !== '') { answerAccepted(req, res); return; }
    const email = normaliseAddress(parsed.data.email);
    if (!email) { answerError(req, res, 400, 'That does not look like an email address.'); return; }
    const t = now();
    store.expirePending(t);
    const suppressed = store.suppression(email);
    const request = suppressed === 'bounced' ? null
      : store.requestSubscription(email, cleanName(parsed.data.name), t, limits.confirmTtlMs, limits.perAddressIntervalMs);
    answerAccepted(req, res);
    // The mail goes after the answer, so known and unknown addresses answer alike and as fast.
    if (request?.mayMail && store.takeConfirmMailSlot(t, limits.perTenantWindowMs, limits.perTenant)) {
      const subscriber = request.subscriber;
      setImmediate(() => {
        ctx.mail.send(composeConfirmation(mailContext, subscriber)).then((r) => {
          if (r.status !== 'sent') ctx.log.warn(`confirmation mail not sent (${r.status}): ${r.reason}`);
          if (r.status === 'failed') store.markBounced(subscriber.id, now());
          // Nothing was delivered: the reader may ask again without waiting a day.
          if (r.status === 'deferred' || r.status === 'refused') store.forgetConfirmMail(subscriber.id, subscriber.last_confirm_mail_at ?? -1);
        }, (err: unknown) => ctx.log.error(`confirmation mail: ${err instanceof Error ? err.message : String(err)}`));
      });
    } else if (request?.mayMail) {
      ctx.log.warn('confirmation mail held back: the tenant reached its hourly cap');
    }
  });

  const INVALID = 'This link is not valid or has expired. Subscribe again to get a new one.';
  publicRouter.get('/confirm', (req, res) => {
    const token = tokenOf(req);
    const s = checkToken(store, signer, 'confirm', token, now());
    if (!s) { sendPage(res, 400, title, 'Link not valid', `<p>${escapeHtml(INVALID)}</p><p><a href="${PUBLIC_PATH}/">Subscribe</a></p>`); return; }
    sendPage(res, 200, title, 'Confirm your subscription', `<p>Press the button to start receiving ${escapeHtml(title)}.</p>${buttonForm(`${PUBLIC_PATH}/confirm`, String(token), 'Confirm subscription')}`);
  });
  publicRouter.post('/confirm', (req, res) => {
    store.expirePending(now());
    const s = checkToken(store, signer, 'confirm', tokenOf(req), now());
    if (!s || !store.confirm(s.id, now())) {
      if (wantsJson(req)) { res.status(400).json({ error: INVALID }); return; }
      sendPage(res, 400, title, 'Link not valid', `<p>${escapeHtml(INVALID)}</p><p><a href="${PUBLIC_PATH}/">Subscribe</a></p>`);
      return;
    }
    if (wantsJson(req)) { res.json({ ok: true, status: 'confirmed' }); return; }
    sendPage(res, 200, title, 'You are subscribed', `<p>Thank you: you will receive ${escapeHtml(title)}. Every mail has a link to unsubscribe.</p>`);
  });

  const BAD_UNSUB = 'This unsubscribe link is not valid.';
  publicRouter.get('/unsubscribe', (req, res) => {
    const token = tokenOf(req);
    const s = checkToken(store, signer, 'unsubscribe', token, now());
    if (!s) { sendPage(res, 400, title, 'Link not valid', `<p>${escapeHtml(BAD_UNSUB)}</p>`); return; }
    const action = `${PUBLIC_PATH}/unsubscribe?token=${encodeURIComponent(String(token))}`;
    sendPage(res, 200, title, 'Unsubscribe', `<p>Press the button to stop receiving ${escapeHtml(title)}.</p>`
      + `<form method="post" action="${escapeHtml(action)}"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>`);
  });
  // RFC 8058 one-click: the POST (body "List-Unsubscribe=One-Click", or the button above) applies at
  // once and answers 200 itself: no redirect, no cookie, no other step.
  publicRouter.post('/unsubscribe', (req, res) => {
    const s = checkToken(store, signer, 'unsubscribe', tokenOf(req), now());
    if (!s) {
      if (wantsJson(req)) { res.status(400).json({ error: BAD_UNSUB }); return; }
      sendPage(res, 400, title, 'Link not valid', `<p>${escapeHtml(BAD_UNSUB)}</p>`);
      return;
    }
    store.unsubscribe(s.id, now());
    if (wantsJson(req)) { res.status(200).json({ ok: true, status: 'unsubscribed' }); return; }
    sendPage(res, 200, title, 'You are unsubscribed', `<p>You will receive no more mail from ${escapeHtml(title)}.</p>`);
  });

  // --- admin ---
  const adminRouter = express.Router();
  adminRouter.use(express.text({ type: ['text/csv', 'text/plain'], limit: '1mb' }));
  const subscriberJson = (s: Subscriber) => ({
    id: s.id, email: s.email, name: s.name, status: s.status,
    createdAt: new Date(s.created_at).toISOString(),
    confirmedAt: s.confirmed_at === null ? null : new Date(s.confirmed_at).toISOString(),
  });
  const issueJson = (i: Issue) => ({
    id: i.id, subject: i.subject, status: i.status,
    createdAt: new Date(i.created_at).toISOString(),
    sendStartedAt: i.send_started_at === null ? null : new Date(i.send_started_at).toISOString(),
    finishedAt: i.finished_at === null ? null : new Date(i.finished_at).toISOString(),
    counts: store.counts(i.id),
  });

  adminRouter.get('/subscribers', (req, res) => {
    const status = req.query.status;
    if (status !== undefined && !SUBSCRIBER_STATUSES.includes(status as SubscriberStatus)) {
      adminError(res, 400, 'invalid_status', `status is one of ${SUBSCRIBER_STATUSES.join(', ')}.`);
      return;
    }
    store.expirePending(now());
    res.json({ subscribers: store.listSubscribers(status as SubscriberStatus | undefined).map(subscriberJson) });
  });
  adminRouter.get('/subscribers.csv', (_req, res) => {
    store.expirePending(now());
    const rows = store.listSubscribers().map((s) => {
      const j = subscriberJson(s);
      return [j.email, j.name, j.status, j.createdAt, j.confirmedAt, j.id];
    });
    res.set({ 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': 'attachment; filename="subscribers.csv"' })
      .send(toCsv(['email', 'name', 'status', 'created_at', 'confirmed_at', 'id'], rows));
  });
  adminRouter.post('/subscribers/import', (req, res) => {
    let rows: { email: string | null; name: string | null }[];
    if (typeof req.body === 'string') {
      const table = parseCsv(req.body);
      const header = (table[0] ?? []).map((h) => h.trim().toLowerCase());
      const ei = header.indexOf('email');
      if (ei < 0) { adminError(res, 400, 'invalid_import', 'The CSV needs a header line with an "email" column (and optionally "name").'); return; }
      const ni = header.indexOf('name');
      rows = table.slice(1).map((r) => ({ email: normaliseAddress(r[ei] ?? ''), name: ni >= 0 ? cleanName(r[ni]) : null }));
    } else {
      const parsed = z.array(importRow).max(100_000).safeParse(req.body);
      if (!parsed.success) { adminError(res, 400, 'invalid_import', 'Send CSV (text/csv, header "email,name") or JSON [{"email","name"?}].'); return; }
      rows = parsed.data.map((r) => ({ email: normaliseAddress(r.email), name: cleanName(r.name) }));
    }
    res.json(store.importConfirmed(rows, now()));
  });
  adminRouter.delete('/subscribers/:subscriberId', (req, res) => {
    if (!store.erase(req.params.subscriberId, now())) { adminError(res, 404, 'subscriber_not_found', `This newsletter has no subscriber ${req.params.subscriberId}.`); return; }
    res.status(204).end();
  });

  adminRouter.get('/issues', (_req, res) => res.json({ issues: store.listIssues().map(issueJson) }));
  adminRouter.post('/issues', (req, res) => {
    const parsed = issueBody.safeParse(req.body);
    if (!parsed.success) { adminError(res, 400, 'invalid_issue', `Send {"subject", "html", "text"?}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}.`); return; }
    const issue = store.createIssue(parsed.data.subject, parsed.data.html, parsed.data.text ?? null, now());
    res.status(201).json(issueJson(issue));
  });
  adminRouter.get('/issues/:issueId', (req, res) => {
    const issue = store.issue(req.params.issueId);
    if (!issue) { adminError(res, 404, 'issue_not_found', `This newsletter has no issue ${req.params.issueId}.`); return; }
    res.json(issueJson(issue));
  });
  adminRouter.post('/issues/:issueId/send', async (req, res) => {
    const issue = store.issue(req.params.issueId);
    if (!issue) { adminError(res, 404, 'issue_not_found', `This newsletter has no issue ${req.params.issueId}.`); return; }
    if (!store.startSending(issue.id, now())) { adminError(res, 409, 'already_sent', `Issue ${issue.id} is ${issue.status}: only a draft can be sent, and each issue once.`); return; }
    // Recorded by the platform before the 202: a restart from here on resumes the send by itself.
    await sender?.announce();
    sender?.wake();
    res.status(202).json(issueJson(store.issue(issue.id)!));
  });

  sender?.start();
  return {
    store, sender, publicRouter, adminRouter, mailContext,
    async stop() {
      await sender?.stop();
      store.close();
    },
  };
}
