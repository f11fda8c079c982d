// Mail composition: the confirmation mail and each issue's mail. Every issue
// mail carries List-Unsubscribe (an https URL on the tenant's own domain, no
// address in it) with List-Unsubscribe-Post (RFC 8058 one-click), List-Id
// (RFC 2919), a Message-ID unique to the (issue, subscriber) pair, Date,
// Precedence: bulk, a visible unsubscribe link and the postal address.
import type { OutgoingMail } from '../plugin-api.js';
import type { NewsletterConfig } from './config.js';
import { escapeHtml } from './pages.js';
import type { Issue, Subscriber } from './store.js';

export type ComposeIssueMail = (issue: Issue, subscriber: Subscriber) => OutgoingMail;

export interface MailContext {
  readonly tenantId: string;
  readonly siteUrl: string;
  readonly config: NewsletterConfig;
  readonly confirmUrl: (subscriber: Subscriber) => string;
  readonly unsubscribeUrl: (subscriber: Subscriber) => string;
  readonly now?: () => number;
}

function hostOf(siteUrl: string): string {
  return new URL(siteUrl).hostname;
}

/** RFC 2919 list id: a phrase and a dotted label under the tenant's host. */
export function listId(ctx: MailContext): string {
  const label = ctx.tenantId.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  const phrase = ctx.config.title.replace(/["\\\r\n]/g, ' ').slice(0, 100);
  return `"${phrase}" <${label}.newsletter.${hostOf(ctx.siteUrl)}>`;
}

const rfc5322Date = (ms: number): string => new Date(ms).toUTCString().replace(/GMT$/, '+0000');

/** A plain-text rendering of an issue's HTML, for when no text part was given. */
export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, '')
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(p|div|h[1-6]|li|tr)>/gi, '\n')
    .replace(/<[^>]+>/g, '')
    .replace(/&nbsp;/g, ' ').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function common(ctx: MailContext): Pick<OutgoingMail, 'fromName' | 'replyTo'> {
  return {
    fromName: ctx.config.fromName ?? ctx.config.title,
    ...(ctx.config.replyTo ? { replyTo: ctx.config.replyTo } : {}),
  };
}

export function composeConfirmation(ctx: MailContext, subscriber: Subscriber): OutgoingMail {
  const url = ctx.confirmUrl(subscriber);
  const title = ctx.config.title;
  const postal = ctx.config.address ? `\n\n${ctx.config.address}` : '';
  const text = `Someone, hopefully you, asked to subscribe this address to ${title}.\n\n`
    + `To confirm, open this link and press the button:\n${url}\n\n`
    + `If it was not you, ignore this mail: nothing more will be sent.${postal}\n`;
  const html = `<p>Someone, hopefully you, asked to subscribe this address to <strong>${escapeHtml(title)}</strong>.</p>`
    + `<p><a href="${escapeHtml(url)}">Confirm your subscription</a></p>`
    + `<p>If it was not you, ignore this mail: nothing more will be sent.</p>`
    + (ctx.config.address ? `<p style="color:#666;font-size:12px">${escapeHtml(ctx.config.address)}</p>` : '');
  const now = ctx.now?.() ?? Date.now();
  return {
    to: subscriber.email,
    subject: `Confirm your subscription to ${title}`,
    text,
    html,
    ...common(ctx),
    headers: {
      'Auto-Submitted': 'auto-generated',
      'X-Auto-Response-Suppress': 'All',
      'Date': rfc5322Date(now),
      'Message-ID': `<confirm.${subscriber.id}.${now.toString(36)}@${hostOf(ctx.siteUrl)}>`,
    },
  };
}

export function composeIssue(ctx: MailContext, issue: Issue, subscriber: Subscriber): OutgoingMail {
  const unsubscribe = ctx.unsubscribeUrl(subscriber);
  const title = ctx.config.title;
  const postalText = ctx.config.address ? `\n${ctx.config.address}` : '';
  const text = `${issue.text ?? htmlToText(issue.html)}\n\n-- \n`
    + `You receive ${title} because you subscribed at ${ctx.siteUrl}.\n`
    + `Unsubscribe: ${unsubscribe}${postalText}\n`;
  const footer = `<hr><p style="color:#666;font-size:12px">You receive ${escapeHtml(title)} because you subscribed at `
    + `${escapeHtml(ctx.siteUrl)}. <a href="${escapeHtml(unsubscribe)}">Unsubscribe</a>`
    + (ctx.config.address ? `<br>${escapeHtml(ctx.config.address)}` : '') + '</p>';
  return {
    to: subscriber.email,
    subject: issue.subject,
    text,
    html: `${issue.html}\n${footer}`,
    ...common(ctx),
    headers: {
      'List-Unsubscribe': `<${unsubscribe}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
      'List-Id': listId(ctx),
      'List-Post': 'NO',
      'Precedence': 'bulk',
      'Date': rfc5322Date(ctx.now?.() ?? Date.now()),
      // The same id for the same (issue, subscriber): a receiver that dedupes by id would drop any repeat.
      'Message-ID': `<${issue.id}.${subscriber.id}@${hostOf(ctx.siteUrl)}>`,
    },
  };
}
