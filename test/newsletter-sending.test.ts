// Issues, without the platform: the received mail's headers (RFC 8058
// one-click, RFC 2919 List-Id, Message-ID, Date) and visible unsubscribe link;
// the one-click POST (200, no redirect, no cookie, applies at once); the
// suppression list checked the moment before each send; 5xx bounces suppress,
// 4xx retries then fails; a worker stopped mid-send resumes with nobody mailed
// twice; CSV export and import; erase.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import plugin from '../plugins/newsletter/index.js';
import { createNewsletter, type Newsletter, type NewsletterOptions } from '../plugins/newsletter/newsletter.js';
import type { OutgoingMail } from '../plugins/plugin-api.js';
import {
  linkIn, localPath, serve, smtpMail, startSmtp, tempDataDir, testContext, until,
  type TestServer, type TestSmtp,
} from './helpers/newsletter-kit.js';

let smtp: TestSmtp;
const servers: TestServer[] = [];
const instances: Newsletter[] = [];

before(async () => {
  smtp = await startSmtp();
});
after(async () => {
  await plugin.onWorkerStop?.();
  for (const n of instances) await n.stop();
  for (const s of servers) await s.close();
  await smtp.close();
});

const FAST_SENDER = { leaseTtlMs: 2000, baseBackoffMs: 20, maxAttempts: 3, idlePollMs: 50 };

async function startTenant(tenantId: string, options: NewsletterOptions = {}, beforeSend?: (m: OutgoingMail) => void | Promise<void>) {
  const ctx = testContext({ tenantId, dataDir: tempDataDir(), mail: smtpMail(smtp.port, { beforeSend }) });
  const n = createNewsletter(ctx, { sender: FAST_SENDER, ...options });
  instances.push(n);
  const server = await serve(n);
  servers.push(server);
  const admin = (p: string, init: RequestInit = {}) => fetch(`${server.url}/_admin/newsletter${p}`, init);
  const adminJson = (p: string, body: unknown) =>
    admin(p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { ctx, n, server, admin, adminJson };
}

type Tenant = Awaited<ReturnType<typeof startTenant>>;

async function sendIssue(t: Tenant, subject: string, html = '<p>Hello <b>readers</b></p>'): Promise<string> {
  const created = await t.adminJson('/issues', { subject, html });
  assert.equal(created.status, 201);
  const issue = await created.json() as { id: string; status: string };
  assert.equal(issue.status, 'draft');
  const sent = await t.admin(`/issues/${issue.id}/send`, { method: 'POST' });
  assert.equal(sent.status, 202);
  return issue.id;
}

async function issueState(t: Tenant, id: string) {
  return await (await t.admin(`/issues/${id}`)).json() as { status: string; counts: Record<string, number> };
}

async function finished(t: Tenant, id: string) {
  await until(async () => (await issueState(t, id)).status === 'sent', 20_000, `issue ${id} sent`);
  return issueState(t, id);
}

test('an issue mail carries one-click List-Unsubscribe, List-Id, Message-ID, Date and a visible unsubscribe link; the one-click POST applies at once', async () => {
  const t = await startTenant('headers');
  assert.deepEqual(await (await t.adminJson('/subscribers/import', [{ email: 'kate@example.test', name: 'Kate' }, { email: 'leo@example.test' }])).json(), { added: 2, skipped: 0 });
  const id = await sendIssue(t, 'Issue one');
  assert.ok(t.ctx.background.said.includes(true), 'the platform was told of the send before the 202');
  const state = await finished(t, id);
  assert.deepEqual(state.counts, { queued: 0, sent: 2, failed: 0, unknown: 0, skipped: 0 });
  // Once nothing is left sending, the platform may stop the worker again.
  await until(() => t.ctx.background.said.at(-1) === false, 5_000, 'the sender to say its work is done');
  assert.deepEqual(t.ctx.background.said.filter((v, i, all) => i === 0 || v !== all[i - 1]).slice(-2), [true, false]);
  const [mail] = await smtp.waitFor('kate@example.test');
  const h = mail!.headers;
  const lu = h.get('list-unsubscribe') ?? '';
  // RFC 8058 3.1: exactly one HTTPS URI, hard to forge, no plain address in it.
  const uris = [...lu.matchAll(/<([^>]+)>/g)].map((m) => m[1]!);
  assert.equal(uris.filter((u) => u.startsWith('https://')).length, 1, lu);
  assert.ok(uris[0]!.startsWith('https://headers.example.test/_newsletter/unsubscribe?token='));
  assert.doesNotMatch(lu, /kate|%40|@/i);
  assert.equal(h.get('list-unsubscribe-post'), 'List-Unsubscribe=One-Click');
  assert.match(h.get('list-id') ?? '', /^"The headers Letter" <headers\.newsletter\.headers\.example\.test>$/);
  assert.match(h.get('message-id') ?? '', /^<[A-Za-z0-9_.-]+@headers\.example\.test>$/);
  assert.ok(!Number.isNaN(Date.parse(h.get('date') ?? '')), 'a Date header');
  assert.equal(h.get('precedence'), 'bulk');
  assert.equal(h.get('subject'), 'Issue one');
  // The visible link (text and HTML parts) is the same URL, and the postal address is there.
  assert.equal(linkIn(mail!, 'unsubscribe'), uris[0]);
  assert.match(mail!.text, /href="https:\/\/headers\.example\.test\/_newsletter\/unsubscribe\?token=[^"]+">Unsubscribe</);
  assert.match(mail!.text, /1 Test Street, 12345 Testville/);
  // A GET (a mail scanner, a preview) changes nothing: it shows a button.
  const page = await fetch(`${t.server.url}${localPath(uris[0]!)}`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<form method="post" action="\/_newsletter\/unsubscribe\?token=/);
  assert.equal(t.n.store.subscriberByEmail('kate@example.test')?.status, 'confirmed');
  // RFC 8058 3.2: a POST with "List-Unsubscribe=One-Click", no cookie, no auth.
  const res = await fetch(`${t.server.url}${localPath(uris[0]!)}`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click', redirect: 'manual',
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('location'), null);
  assert.equal(res.headers.get('set-cookie'), null);
  assert.equal(t.n.store.subscriberByEmail('kate@example.test')?.status, 'unsubscribed', 'applied before the answer');
  assert.equal(t.n.store.suppression('kate@example.test'), 'unsubscribed');
  // multipart/form-data is allowed by RFC 8058 too (the token is in the URL).
  const [leo] = await smtp.waitFor('leo@example.test');
  const fd = new FormData();
  fd.set('List-Unsubscribe', 'One-Click');
  const multi = await fetch(`${t.server.url}${localPath(linkIn(leo!, 'unsubscribe'))}`, { method: 'POST', body: fd, redirect: 'manual' });
  assert.equal(multi.status, 200);
  assert.equal(multi.headers.get('set-cookie'), null);
  assert.equal(t.n.store.subscriberByEmail('leo@example.test')?.status, 'unsubscribed');
  // The next issue goes to nobody.
  const second = await finished(t, await sendIssue(t, 'Issue two'));
  assert.equal(second.counts.sent, 0);
  assert.equal(smtp.countFor('kate@example.test'), 1);
});

test('the suppression list is checked the moment before each mail goes', async () => {
  let t: Tenant | undefined;
  let first = true;
  t = await startTenant('suppress', {}, async (m) => {
    if (!first || m.to === 'zed@example.test') return;
    first = false;
    // While the first mail is on its way, the last reader unsubscribes (one click).
    const last = t!.n.store.subscriberByEmail('zed@example.test')!;
    const res = await fetch(`${t!.server.url}${localPath(t!.n.mailContext.unsubscribeUrl(last))}`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click',
    });
    assert.equal(res.status, 200);
  });
  await t.adminJson('/subscribers/import', [{ email: 'amy@example.test' }, { email: 'ben@example.test' }, { email: 'zed@example.test' }]);
  const state = await finished(t, await sendIssue(t, 'Suppressed'));
  assert.deepEqual(state.counts, { queued: 0, sent: 2, failed: 0, unknown: 0, skipped: 1 });
  assert.equal(smtp.countFor('zed@example.test'), 0);
});

test('a 5xx answer fails the delivery and suppresses the address as bounced; a 4xx is retried, then failed', async () => {
  smtp.behaviour = {
    rcpt: (a) => a === 'gone@example.test' ? { code: 550, message: 'No such user' }
      : a === 'busy@example.test' ? { code: 451, message: 'Try again later' } : undefined,
  };
  try {
    const t = await startTenant('bounces');
    await t.adminJson('/subscribers/import', [{ email: 'gone@example.test' }, { email: 'busy@example.test' }, { email: 'fine@example.test' }]);
    const state = await finished(t, await sendIssue(t, 'Bounces'));
    assert.deepEqual(state.counts, { queued: 0, sent: 1, failed: 2, unknown: 0, skipped: 0 });
    assert.equal(smtp.rcptAttempts.get('gone@example.test'), 1, 'a 5xx is not retried');
    assert.equal(smtp.rcptAttempts.get('busy@example.test'), 3, 'a 4xx is tried maxAttempts times');
    assert.equal(t.n.store.subscriberByEmail('gone@example.test')?.status, 'bounced');
    assert.equal(t.n.store.suppression('gone@example.test'), 'bounced');
    assert.equal(t.n.store.subscriberByEmail('busy@example.test')?.status, 'confirmed', 'a temporary failure does not suppress');
    const bounced = await (await t.admin('/subscribers?status=bounced')).json() as { subscribers: { email: string }[] };
    assert.deepEqual(bounced.subscribers.map((s) => s.email), ['gone@example.test']);
    // A bounced address gets no confirmation mail and cannot be imported back.
    await fetch(`${t.server.url}/_newsletter/subscribe`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'gone@example.test' }) });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(smtp.rcptAttempts.get('gone@example.test'), 1);
    t.n.store.erase(t.n.store.subscriberByEmail('gone@example.test')!.id, Date.now());
    assert.deepEqual(await (await t.adminJson('/subscribers/import', [{ email: 'gone@example.test' }])).json(), { added: 0, skipped: 1 });
  } finally {
    smtp.behaviour = {};
  }
});

test('CSV export and import, erase, status filter, and the admin API answers', async () => {
  const t = await startTenant('csv');
  const csv = 'email,name\r\n"Mia@Example.test","Mia, the ""first"""\r\nnot-an-address,x\r\nnoah@example.test,=HYPERLINK("x")\r\nmia@example.test,dup\r\n';
  const imported = await t.admin('/subscribers/import', { method: 'POST', headers: { 'content-type': 'text/csv' }, body: csv });
  assert.equal(imported.status, 200);
  assert.deepEqual(await imported.json(), { added: 2, skipped: 2 });
  await refused(t.admin('/subscribers/import', { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'mail,name\r\nx@example.test,x\r\n' }), 400, 'newsletter.invalid_import', /"email" column/);
  await refused(t.adminJson('/subscribers/import', { email: 'x@example.test' }), 400, 'newsletter.invalid_import', /Send CSV/);
  const exported = await t.admin('/subscribers.csv');
  assert.match(exported.headers.get('content-type') ?? '', /text\/csv/);
  const text = await exported.text();
  const lines = text.trim().split('\r\n');
  assert.equal(lines[0], 'email,name,status,created_at,confirmed_at,id');
  assert.match(text, /^mia@example\.test,"Mia, the ""first""",confirmed,/m);
  assert.match(text, /^noah@example\.test,"'=HYPERLINK\(""x""\)",confirmed,/m, 'a formula is defused');
  const list = await (await t.admin('/subscribers?status=confirmed')).json() as { subscribers: { id: string; email: string }[] };
  assert.equal(list.subscribers.length, 2);
  await refused(t.admin('/subscribers?status=nope'), 400, 'newsletter.invalid_status', /pending, confirmed/);
  const noah = list.subscribers.find((s) => s.email === 'noah@example.test')!;
  assert.equal((await t.admin(`/subscribers/${noah.id}`, { method: 'DELETE' })).status, 204);
  await refused(t.admin(`/subscribers/${noah.id}`, { method: 'DELETE' }), 404, 'newsletter.subscriber_not_found', new RegExp(noah.id));
  assert.doesNotMatch(await (await t.admin('/subscribers.csv')).text(), /noah/);
  // The erased address is not kept in clear anywhere in the suppression list, yet stays out of imports.
  const rows = t.n.store.db.prepare('SELECT * FROM suppression').all();
  assert.doesNotMatch(JSON.stringify(rows), /noah/);
  assert.deepEqual(await (await t.adminJson('/subscribers/import', [{ email: 'Noah@example.test' }])).json(), { added: 0, skipped: 1 });
  // Issues: validation, 404, no second send; every error in the platform API's shape with the plugin's code.
  await refused(t.adminJson('/issues', { subject: 'x' }), 400, 'newsletter.invalid_issue', /html: /);
  await refused(t.admin('/issues/nope'), 404, 'newsletter.issue_not_found', /nope/);
  await refused(t.admin('/issues/nope/send', { method: 'POST' }), 404, 'newsletter.issue_not_found', /nope/);
  const id = await sendIssue(t, 'Once');
  await refused(t.admin(`/issues/${id}/send`, { method: 'POST' }), 409, 'newsletter.already_sent', /only a draft can be sent/);
  await finished(t, id);
  assert.equal(smtp.countFor('mia@example.test'), 1);
});

test('a worker stopped mid-send (idle stop, redeploy) resumes in the next worker; nobody gets the issue twice', async () => {
  smtp.behaviour = { delayMs: 40 };
  try {
    const dataDir = tempDataDir();
    const ctx = () => testContext({ tenantId: 'resume', dataDir, mail: smtpMail(smtp.port) });
    const routers = await plugin.onWorkerStart(ctx());
    const server = await serve(routers);
    const subscribers = Array.from({ length: 25 }, (_, i) => ({ email: `r${i}@resume.test` }));
    const post = (p: string, body: unknown) => fetch(`${server.url}/_admin/newsletter${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    await post('/subscribers/import', subscribers);
    const issue = await (await post('/issues', { subject: 'Resumed', html: '<p>x</p>' })).json() as { id: string };
    assert.equal((await post(`/issues/${issue.id}/send`, {})).status, 202);
    await until(() => smtp.received.filter((m) => m.to.endsWith('@resume.test')).length >= 5);
    await plugin.onWorkerStop?.();
    await server.close();
    const atStop = smtp.received.filter((m) => m.to.endsWith('@resume.test')).length;
    assert.ok(atStop < 25, 'stopped before the end');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(smtp.received.filter((m) => m.to.endsWith('@resume.test')).length, atStop, 'nothing sent while no worker runs');
    const second = await plugin.onWorkerStart(ctx());
    const server2 = await serve(second);
    servers.push(server2);
    await until(async () => ((await (await fetch(`${server2.url}/_admin/newsletter/issues/${issue.id}`)).json()) as { status: string }).status === 'sent', 20_000);
    const state = await (await fetch(`${server2.url}/_admin/newsletter/issues/${issue.id}`)).json() as { counts: Record<string, number> };
    assert.deepEqual(state.counts, { queued: 0, sent: 25, failed: 0, unknown: 0, skipped: 0 }, 'a clean stop leaves nothing unknown');
    for (const s of subscribers) assert.equal(smtp.countFor(s.email), 1, s.email);
  } finally {
    smtp.behaviour = {};
  }
});

test('outcomes the platform reports without SMTP: refused is retried then failed, a throw is unknown, a deferred confirmation mail can be asked for again', async () => {
  const calls = new Map<string, number>();
  const mail = {
    async send(m: OutgoingMail) {
      calls.set(m.to, (calls.get(m.to) ?? 0) + 1);
      if (m.to === 'capped@example.test') return { status: 'refused', reason: 'hourly mail cap reached' } as const;
      if (m.to === 'crashy@example.test') throw new Error('the relay broke mid-way');
      if (m.to === 'later@example.test') return { status: 'deferred', reason: '421 try later' } as const;
      return { status: 'sent', messageId: `<${m.to}>` } as const;
    },
  };
  const ctx = testContext({ tenantId: 'outcomes', dataDir: tempDataDir(), mail });
  const n = createNewsletter(ctx, { sender: FAST_SENDER });
  instances.push(n);
  const server = await serve(n);
  servers.push(server);
  n.store.importConfirmed([{ email: 'capped@example.test', name: null }, { email: 'crashy@example.test', name: null }, { email: 'ok@example.test', name: null }], Date.now());
  const issue = n.store.createIssue('Outcomes', '<p>x</p>', null, Date.now());
  assert.ok(n.store.startSending(issue.id, Date.now()));
  n.sender!.wake();
  await n.sender!.idle();
  assert.deepEqual(n.store.counts(issue.id), { queued: 0, sent: 1, failed: 1, unknown: 1, skipped: 0 });
  assert.equal(calls.get('capped@example.test'), 3);
  assert.equal(calls.get('crashy@example.test'), 1, 'an unknown outcome is never tried again');
  assert.equal(n.store.subscriberByEmail('capped@example.test')?.status, 'confirmed', 'a refusal is no bounce');
  const subscribe = () => fetch(`${server.url}/_newsletter/subscribe`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'later@example.test' }) });
  await subscribe();
  await until(() => calls.get('later@example.test') === 1);
  await until(() => n.store.subscriberByEmail('later@example.test')?.last_confirm_mail_at === null, 5000, 'the deferred mail forgotten');
  await subscribe();
  await until(() => calls.get('later@example.test') === 2, 5000, 'a second confirmation attempt');
});

/** An admin answer refused with `{"error": {"code", "message"}}` (docs/errors.md, "Plugins"). */
async function refused(answer: Promise<Response>, status: number, code: string, message: RegExp): Promise<void> {
  const res = await answer;
  const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
  assert.equal(res.status, status, JSON.stringify(body));
  assert.equal(body.error?.code, code, JSON.stringify(body));
  assert.match(String(body.error?.message), message);
}
