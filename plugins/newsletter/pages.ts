// The public pages: every value escaped, no script at all, one stylesheet
// served from the plugin's own path, and a Content-Security-Policy that allows
// nothing else. Pages may be framed by the tenant's own pages (same origin:
// the embeddable form and the answer shown in its frame), by nobody else.
import type { Response } from 'express';

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const CSP_BASE = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'";
export const CSP = `${CSP_BASE}; frame-ancestors 'self'`;

export const STYLESHEET = `body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.5}
h1{font-size:1.5rem}form{display:grid;gap:.5rem}input,button{font:inherit;padding:.5rem}button{cursor:pointer}
.hp{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}.note{color:#555}.embed{margin:0;max-width:none}
`;

export function sendPage(res: Response, status: number, title: string, heading: string, body: string, options: { embed?: boolean } = {}): void {
  res.status(status);
  res.set({
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': CSP,
    'X-Frame-Options': 'SAMEORIGIN',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  });
  res.send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${escapeHtml(heading)} – ${escapeHtml(title)}</title>
<link rel="stylesheet" href="/_newsletter/style.css"></head>
<body${options.embed ? ' class="embed"' : ''}>${options.embed ? '' : `<p class="note">${escapeHtml(title)}</p><h1>${escapeHtml(heading)}</h1>`}
${body}
</body></html>
`);
}

/** The subscribe form; the "website" field is a honeypot hidden from people. */
export function subscribeForm(action: string): string {
  return `<form method="post" action="${escapeHtml(action)}">
<label>Email <input type="email" name="email" required maxlength="254" autocomplete="email"></label>
<label>Name (optional) <input type="text" name="name" maxlength="100" autocomplete="name"></label>
<div class="hp" aria-hidden="true"><label>Website <input type="text" name="website" tabindex="-1" autocomplete="off"></label></div>
<button type="submit">Subscribe</button>
</form>`;
}

/** A page with a single button that POSTs the token back: GETs (mail scanners) change nothing. */
export function buttonForm(action: string, token: string, label: string): string {
  return `<form method="post" action="${escapeHtml(action)}">
<input type="hidden" name="token" value="${escapeHtml(token)}">
<button type="submit">${escapeHtml(label)}</button>
</form>`;
}
