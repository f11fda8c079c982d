// The newsletter as a tenant and its readers use it, through the real platform:
// `tenantry serve` as a process (as root: the supervisor, the edge as user
// tenantry and sandboxed workers) with HTTP and HTTPS listeners, mail over
// TENANTRY_SMTP_URL to a real SMTP server on loopback. The tenant enables the plugin with the CLI; a reader
// subscribes on the tenant's domain (Host header), gets the confirmation mail,
// opens the link (a page with a button: the GET confirms nothing) and confirms
// with its POST; an issue sent through the admin API arrives with RFC 8058
// headers exactly as written (List-Unsubscribe: one https URL on the tenant's
// own domain, List-Unsubscribe-Post, List-Id unencoded, Message-ID, Date); the
// one-click POST (multipart/form-data, as RFC 8058 prefers) unsubscribes (200,
// no redirect, no cookie) and the next issue does not go to that address; /metrics counts the mail. Then the whole platform
// (supervisor, edge and workers) is killed with SIGKILL in the middle of an
// issue to a few hundred readers and started again over the same data, with no
// request made to it: the send resumes by itself and every reader gets exactly
// one copy, except the one mail whose outcome the kill lost (it arrived, is
// "unknown", and is not sent again).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { httpRequest, runCli, startServerProcess, tempDir, type HttpAnswer, type ServerProcess } from './helpers/harness.js';
import { api, eventually, isAlive } from './helpers/worker-sites.js';
import { linkIn, startSmtp, type ReceivedMail, type TestSmtp } from './helpers/newsletter-kit.js';

const LIMIT_MS = 240_000;
const T = 'nlx-e2e';
const ADMIN_TOKEN = 'nlx-e2e-admin-token-0123456789abcdef';
const FROM = 'news@platform.test';
const TITLE = 'E2E Weekly';
const POSTAL = 'E2E Ltd, 1 Test Street, 12345 Testville';
const READER = 'reader@example.com';
const OTHER = 'other@example.com';
const CROWD = 240;
/** The crash comes when this many mails of the big issue have arrived (the last one held unanswered). */
const KILL_AT = 60;

const root = process.getuid?.() === 0;
const isolation = root ? 'auto' : 'off';
if (!root) console.log('# newsletter-platform: not root; the platform runs without the supervisor and sandbox (TENANTRY_ISOLATION=off)');

let smtp: TestSmtp;
let dir: string;
let dataDir: string;
let server: ServerProcess | undefined;
let port = 0;
let httpsPort = 0;

const env = () => ({
  TENANTRY_ISOLATION: isolation,
  TENANTRY_ADMIN_TOKEN: ADMIN_TOKEN,
  TENANTRY_SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
  TENANTRY_MAIL_FROM: FROM,
});
const platform = () => ({ url: server!.url, adminToken: ADMIN_TOKEN });
const cli = (args: string[]) => runCli(args, { TENANTRY_URL: `http://localhost:${port}`, TENANTRY_TOKEN: ADMIN_TOKEN });
const json = (a: HttpAnswer) => JSON.parse(a.body) as Record<string, any>;
const admin = (method: string, rest: string, body?: unknown) => api(platform(), method, `/api/v1/tenants/${T}/plugins/newsletter${rest}`, body);
/** The tenant's default domain as its links name it (HTTPS: the platform serves both). */
const tenantHost = () => `${T}.localhost:${httpsPort}`;

/** A form body: urlencoded, or multipart/form-data (what RFC 8058 asks mail clients to send). */
function formBody(form: Record<string, string>, multipart: boolean): { type: string; body: string } {
  if (!multipart) return { type: 'application/x-www-form-urlencoded', body: new URLSearchParams(form).toString() };
  const boundary = '----nlx-e2e-boundary';
  const parts = Object.entries(form).map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
  return { type: `multipart/form-data; boundary=${boundary}`, body: `${parts.join('')}--${boundary}--\r\n` };
}

/** A request to the tenant's own domain, the way a browser or a mail client makes it (HTTPS: SNI and Host from the URL). */
function onSite(url: string, opts: { method?: string; form?: Record<string, string>; multipart?: boolean } = {}): Promise<HttpAnswer> {
  const u = new URL(url);
  const form = opts.form ? formBody(opts.form, opts.multipart ?? false) : undefined;
  const headers: Record<string, string> = form ? { 'content-type': form.type } : {};
  if (u.protocol === 'http:') return httpRequest(server!.url, { host: u.host, method: opts.method ?? 'GET', path: `${u.pathname}${u.search}`, headers, body: form?.body });
  return new Promise((resolve, reject) => {
    const req = https.request(
      // The platform's own certificate for *.localhost is self-signed.
      { host: '127.0.0.1', port: Number(u.port), servername: u.hostname, method: opts.method ?? 'GET', path: `${u.pathname}${u.search}`, headers: { Host: u.host, ...headers }, rejectUnauthorized: false, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(form?.body);
  });
}

/** The header exactly as it arrived (unfolded), or undefined; fails when it came more than once. */
function rawHeader(mail: ReceivedMail, name: string): string | undefined {
  const head = mail.raw.slice(0, mail.raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
  const lines = head.split('\r\n').filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  assert.ok(lines.length <= 1, `${name} appears ${lines.length} times`);
  return lines[0]?.slice(name.length + 1).trim();
}

/** Every process below `pid` (from /proc), so the test can kill the platform whole. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      /* gone meanwhile */
    }
  }
  const all: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      all.push(c);
      walk(c);
    }
  };
  walk(pid);
  return all;
}

/** kill -9 of the platform's process group and of every process under it (workers run in groups of their own). */
function killWholePlatform(s: ServerProcess): number[] {
  const pids = [s.child.pid!, ...descendants(s.child.pid!)];
  try {
    process.kill(-s.child.pid!, 'SIGKILL');
  } catch {
    /* already gone */
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  return pids;
}

/** Starts the platform; a restart keeps both ports (the links in mail name them). */
async function start(): Promise<void> {
  server = await startServerProcess(dataDir, env(), ['--port', String(port), '--https-port', String(httpsPort)], { detached: true });
  port = server.port;
  const m = /HTTPS on \S+ \(bound to [^:]+:(\d+)/.exec(server.output());
  assert.ok(m, server.output());
  httpsPort = Number(m[1]);
}

before(async () => {
  smtp = await startSmtp();
  dir = tempDir('nlx-e2e-');
  // The edge runs as the user tenantry when supervised: it must reach the data folder.
  fs.chmodSync(dir, 0o755);
  dataDir = path.join(dir, 'data');
  await start();
});

after(async () => {
  // The tenant's Unix user and cgroup go with the tenant: start the platform again if a test left it killed.
  const running = () => server !== undefined && server.child.exitCode === null && server.child.signalCode === null;
  if (server && !running()) await start().catch(() => {});
  if (running()) {
    await cli(['tenants', 'delete', T]).catch(() => {});
    await server!.stop('SIGTERM');
  }
  await smtp?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a tenant enables the newsletter, a reader subscribes, confirms, receives an issue and unsubscribes with one click', { timeout: LIMIT_MS }, async () => {
  const created = await cli(['tenants', 'create', T]);
  assert.equal(created.code, 0, created.stderr);
  const config = { title: TITLE, fromName: 'E2E Team', replyTo: 'editor@e2e.example', address: POSTAL };
  const enabled = await cli(['plugins', 'enable', 'newsletter', '--tenant', T, '--config', JSON.stringify(config)]);
  assert.equal(enabled.code, 0, enabled.stderr);

  // Subscribe on the tenant's own domain, with the plain form.
  const page = await onSite(`https://${tenantHost()}/_newsletter/`);
  assert.equal(page.status, 200);
  assert.match(page.body, new RegExp(TITLE));
  const subscribed = await onSite(`https://${tenantHost()}/_newsletter/subscribe`, { method: 'POST', form: { email: ` ${READER.toUpperCase()} `, website: '' } });
  assert.equal(subscribed.status, 200, subscribed.body);
  assert.match(subscribed.body, /confirmation link/);

  const [confirmation] = await smtp.waitFor(READER, 1, 20_000);
  assert.equal(rawHeader(confirmation!, 'From'), `E2E Team <${FROM}>`);
  assert.equal(rawHeader(confirmation!, 'Auto-Submitted'), 'auto-generated');
  const confirmUrl = linkIn(confirmation!, 'confirm');
  assert.equal(new URL(confirmUrl).host, tenantHost(), 'the link is on the tenant\'s own domain');
  assert.doesNotMatch(confirmUrl, /reader|example/i, 'no address in the link');

  // A mail scanner's GET shows a page with a button and confirms nothing.
  const confirmPage = await onSite(confirmUrl);
  assert.equal(confirmPage.status, 200);
  assert.match(confirmPage.body, /<form method="post"[^>]*action="\/_newsletter\/confirm"/);
  assert.match(confirmPage.body, /<button/);
  const pending = json(await admin('GET', '/subscribers?status=pending')).subscribers as any[];
  assert.deepEqual(pending.map((s) => s.email), [READER], 'still pending after the GET');
  const token = new URL(confirmUrl).searchParams.get('token')!;
  const confirmed = await onSite(`https://${tenantHost()}/_newsletter/confirm`, { method: 'POST', form: { token } });
  assert.equal(confirmed.status, 200, confirmed.body);
  assert.match(confirmed.body, /You are subscribed/);
  const imported = await admin('POST', '/subscribers/import', [{ email: OTHER }]);
  assert.deepEqual(json(imported), { added: 1, skipped: 0 });
  assert.deepEqual((json(await admin('GET', '/subscribers?status=confirmed')).subscribers as any[]).map((s) => s.email).sort(), [OTHER, READER]);

  // An issue, sent through the admin API.
  const draft = await admin('POST', '/issues', { subject: 'Issue one', html: '<p>Hello readers.</p>' });
  assert.equal(draft.status, 201, draft.body);
  const issueId = json(draft).id as string;
  assert.equal((await admin('POST', `/issues/${issueId}/send`)).status, 202);
  const [, issueMail] = await smtp.waitFor(READER, 2, 20_000);
  const sentAt = Date.now();

  const unsubscribeHeader = rawHeader(issueMail!, 'List-Unsubscribe');
  const m = /^<(https:\/\/[^>,]+)>$/.exec(unsubscribeHeader ?? '');
  assert.ok(m, `List-Unsubscribe is one https URL in angle brackets: ${unsubscribeHeader}`);
  const unsubscribeUrl = new URL(m[1]!);
  assert.equal(unsubscribeUrl.host, tenantHost(), 'on the tenant\'s own domain');
  assert.equal(unsubscribeUrl.pathname, '/_newsletter/unsubscribe');
  assert.doesNotMatch(m[1]!, /reader|example/i, 'no address in the URL');
  assert.equal(rawHeader(issueMail!, 'List-Unsubscribe-Post'), 'List-Unsubscribe=One-Click');
  assert.equal(rawHeader(issueMail!, 'List-Id'), `"${TITLE}" <${T}.newsletter.${T}.localhost>`, 'as written, not MIME-encoded');
  assert.match(rawHeader(issueMail!, 'Message-ID') ?? '', new RegExp(`^<${issueId}\\.[A-Za-z0-9_-]+@${T.replace(/-/g, '\\-')}\\.localhost>$`));
  const date = Date.parse(rawHeader(issueMail!, 'Date') ?? '');
  assert.ok(Math.abs(date - sentAt) < 120_000, `Date is now: ${rawHeader(issueMail!, 'Date')}`);
  assert.equal(rawHeader(issueMail!, 'Precedence'), 'bulk');
  assert.equal(rawHeader(issueMail!, 'From'), `E2E Team <${FROM}>`);
  assert.equal(rawHeader(issueMail!, 'Reply-To'), 'editor@e2e.example');
  assert.equal(rawHeader(issueMail!, 'Subject'), 'Issue one');
  assert.ok(issueMail!.text.includes(`Unsubscribe: ${unsubscribeUrl.href}`), 'the same link is visible in the text');
  assert.ok(issueMail!.text.includes(POSTAL), 'the postal address is in the footer');
  await eventually(async () => json(await admin('GET', `/issues/${issueId}`)).status === 'sent', 20_000, 'issue one to be sent');
  assert.deepEqual(json(await admin('GET', `/issues/${issueId}`)).counts, { queued: 0, sent: 2, failed: 0, unknown: 0, skipped: 0 });

  // RFC 8058: the mail client POSTs "List-Unsubscribe=One-Click" to the header's URL, without cookies.
  const oneClick = await onSite(unsubscribeUrl.href, { method: 'POST', form: { 'List-Unsubscribe': 'One-Click' }, multipart: true });
  assert.equal(oneClick.status, 200, oneClick.body);
  assert.equal(oneClick.headers.location, undefined, 'no redirect');
  assert.equal(oneClick.headers['set-cookie'], undefined, 'no cookie');
  assert.deepEqual((json(await admin('GET', '/subscribers?status=unsubscribed')).subscribers as any[]).map((s) => s.email), [READER]);

  const second = json(await admin('POST', '/issues', { subject: 'Issue two', html: '<p>Again.</p>' })).id as string;
  assert.equal((await admin('POST', `/issues/${second}/send`)).status, 202);
  await smtp.waitFor(OTHER, 2, 20_000);
  await eventually(async () => json(await admin('GET', `/issues/${second}`)).status === 'sent', 20_000, 'issue two to be sent');
  assert.deepEqual(json(await admin('GET', `/issues/${second}`)).counts, { queued: 0, sent: 1, failed: 0, unknown: 0, skipped: 0 });
  assert.deepEqual(smtp.received.filter((r) => r.to === READER).map((r) => rawHeader(r, 'Subject')), [`Confirm your subscription to ${TITLE}`, 'Issue one'], 'nothing after the unsubscribe');

  // Every message the SMTP server accepted is counted as sent for the tenant.
  const metrics = await httpRequest(server!.url, { host: 'localhost', path: '/metrics', headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(metrics.status, 200);
  const sentCount = new RegExp(`^tenantry_mail_total\\{(?=[^}]*tenant="${T}")(?=[^}]*outcome="sent")[^}]*\\} (\\d+)$`, 'm').exec(metrics.body);
  assert.equal(Number(sentCount?.[1]), smtp.received.length, metrics.body.split('\n').filter((l) => l.startsWith('tenantry_mail')).join('\n'));
});

test('kill -9 of the whole platform mid-send: after a restart with no request, every reader gets exactly one copy', { timeout: LIMIT_MS }, async () => {
  const crowd = Array.from({ length: CROWD }, (_, i) => `crowd${i}@example.com`);
  assert.deepEqual(json(await admin('POST', '/subscribers/import', crowd.map((email) => ({ email })))), { added: CROWD, skipped: 0 });
  const subject = 'The big issue';
  const issueId = json(await admin('POST', '/issues', { subject, html: '<p>For everyone, once.</p>' })).id as string;
  const recipients = [OTHER, ...crowd];

  const ofIssue = () => smtp.received.filter((r) => rawHeader(r, 'Subject') === subject);
  let killed: number[] = [];
  let heldFor: string | undefined;
  smtp.behaviour = {
    delayMs: 5,
    onReceived: (mail) => {
      // The message is in (DATA received) but not answered: its outcome is lost with the platform.
      if (!heldFor && rawHeader(mail, 'Subject') === subject && ofIssue().length === KILL_AT) {
        heldFor = mail.to;
        killed = killWholePlatform(server!);
      }
    },
  };
  assert.equal((await admin('POST', `/issues/${issueId}/send`)).status, 202);
  await eventually(() => heldFor !== undefined, 60_000, 'the send to reach the kill point');
  await eventually(() => killed.every((pid) => !isAlive(pid)), 10_000, 'every process of the platform to be gone');
  assert.ok(killed.length >= 2, `the platform had its processes (${killed.join(' ')})`);
  smtp.behaviour = {};
  const beforeRestart = ofIssue().length;
  assert.ok(beforeRestart >= KILL_AT && beforeRestart < recipients.length, `killed mid-send (${beforeRestart} of ${recipients.length})`);

  // Started again over the same data; nobody asks it anything until the send is over.
  await start();
  await eventually(() => new Set(ofIssue().map((r) => r.to)).size === recipients.length, 150_000, 'every reader to have the issue');
  await new Promise((r) => setTimeout(r, 1500));
  const perReader = new Map<string, number>();
  for (const r of ofIssue()) perReader.set(r.to, (perReader.get(r.to) ?? 0) + 1);
  const twice = [...perReader].filter(([, n]) => n > 1);
  assert.deepEqual(twice, [], 'nobody received the issue twice');
  assert.deepEqual([...perReader.keys()].sort(), [...recipients].sort());
  assert.equal(ofIssue().filter((r) => r.to === READER).length, 0, 'not to the reader who unsubscribed');

  const issue = json(await admin('GET', `/issues/${issueId}`));
  assert.equal(issue.status, 'sent');
  assert.deepEqual(issue.counts, { queued: 0, sent: recipients.length - 1, failed: 0, unknown: 1, skipped: 0 }, 'the held mail is unknown, never sent again');
  const log = await cli(['logs', '--tenant', T, '--lines', '400']);
  assert.match(log.stdout, /resuming 1 issue\(s\) left sending/);
});
