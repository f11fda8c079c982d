// The newsletter's public side, without the platform: subscribe (the same
// answer for known and unknown addresses, honeypot, normalisation, limits per
// client, address and tenant), double opt-in confirmed only by POST, expiry of
// pending subscriptions, and signed tokens bound to purpose and tenant.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import plugin from '../plugins/newsletter/index.js';
import { configSchema } from '../plugins/newsletter/config.js';
import { createNewsletter, type Newsletter } from '../plugins/newsletter/newsletter.js';
import { normaliseAddress } from '../plugins/newsletter/address.js';
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

async function startTenant(tenantId: string, options: Parameters<typeof createNewsletter>[1] = {}, config = {}) {
  const ctx = testContext({ tenantId, dataDir: tempDataDir(), mail: smtpMail(smtp.port), config });
  const n = createNewsletter(ctx, { sender: false, ...options });
  instances.push(n);
  const server = await serve(n);
  servers.push(server);
  return { ctx, n, server };
}

const json = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json', ...headers }, body: JSON.stringify(body) });
const form = (url: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body).toString(), redirect: 'manual' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the manifest and config schema follow the contract', () => {
  assert.equal(plugin.manifest.name, 'newsletter');
  assert.ok(configSchema.safeParse({ title: 'T' }).success);
  assert.ok(configSchema.safeParse({ title: 'T', fromName: 'F', replyTo: 'r@example.com', address: '1 Street' }).success);
  assert.equal(configSchema.safeParse({ title: 'T', other: 1 }).success, false);
  assert.equal(configSchema.safeParse({}).success, false);
});

test('addresses are syntax-checked and normalised', () => {
  assert.equal(normaliseAddress('  Alice.Smith+news@Example.COM '), 'alice.smith+news@example.com');
  assert.equal(normaliseAddress('bob@bücher.example'), 'bob@xn--bcher-kva.example');
  for (const bad of ['', 'no-at', '@example.com', 'a@', 'a@localhost', 'a..b@example.com', '.a@example.com', 'a b@example.com',
    '"quoted"@example.com', 'a@-x.example.com', 'a@[127.0.0.1]', 'a@1.2.3.4', `${'x'.repeat(65)}@example.com`, 'a@example.com\r\nBcc: x@y.z', 42]) {
    assert.equal(normaliseAddress(bad), null, `refused: ${String(bad)}`);
  }
});

test('pages are branded, escaped, script-free and carry a Content-Security-Policy', async () => {
  const { server } = await startTenant('pages', {}, { title: 'Acme <script>alert(1)</script> & "Co"' });
  const page = await fetch(`${server.url}/_newsletter/`);
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /Acme &#60;script&#62;alert\(1\)&#60;\/script&#62; &#38; &#34;Co&#34;/);
  assert.doesNotMatch(html, /<script/i);
  assert.match(html, /name="website"/, 'the honeypot field is in the form');
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /frame-ancestors 'self'/, 'framed by the tenant\'s own pages only');
  assert.equal(page.headers.get('x-frame-options'), 'SAMEORIGIN');
  assert.doesNotMatch(csp, /script-src/);
  const embed = await fetch(`${server.url}/_newsletter/form.html`);
  assert.equal(embed.status, 200);
  assert.match(embed.headers.get('content-security-policy') ?? '', /frame-ancestors 'self'/);
  assert.match(await embed.text(), /<form method="post" action="\/_newsletter\/subscribe">/);
  const css = await fetch(`${server.url}/_newsletter/style.css`);
  assert.match(css.headers.get('content-type') ?? '', /text\/css/);
});

test('subscribe answers the same for unknown, pending and confirmed addresses; the mail carries no address in its link', async () => {
  const { n, server } = await startTenant('same', { limits: { perAddressIntervalMs: 0 } });
  const url = `${server.url}/_newsletter/subscribe`;
  const first = await json(url, { email: '  Carol@Example.TEST ', name: 'Carol' });
  const firstBody = await first.text();
  assert.equal(first.status, 202);
  const [mail] = await smtp.waitFor('carol@example.test');
  const link = linkIn(mail!, 'confirm');
  assert.doesNotMatch(link, /carol|example\.test%40|@/i, 'no address in the link');
  assert.ok(link.startsWith('https://same.example.test/_newsletter/confirm?token='));
  assert.equal(mail!.headers.get('auto-submitted'), 'auto-generated');
  const pending = await json(url, { email: 'carol@example.test' });
  assert.equal(pending.status, 202);
  assert.equal(await pending.text(), firstBody);
  // Confirm, then subscribe again: still the same answer, and no mail.
  assert.equal((await form(`${server.url}${localPath(link)}`, {})).status, 400, 'a newer link replaced the first one');
  const [, second] = await smtp.waitFor('carol@example.test', 2);
  assert.equal((await form(`${server.url}${localPath(linkIn(second!, 'confirm'))}`, {})).status, 200);
  assert.equal(n.store.subscriberByEmail('carol@example.test')?.status, 'confirmed');
  const confirmed = await json(url, { email: 'CAROL@example.test' });
  assert.equal(confirmed.status, 202);
  assert.equal(await confirmed.text(), firstBody);
  const unknown = await json(url, { email: 'dave@example.test' });
  assert.equal(await unknown.text(), firstBody);
  await smtp.waitFor('dave@example.test');
  await sleep(200);
  assert.equal(smtp.countFor('carol@example.test'), 2, 'no mail to an address already confirmed');
  // The form answer (HTML) is also the same page.
  const a = await form(url, { email: 'carol@example.test' });
  const b = await form(url, { email: 'erin@example.test' });
  assert.equal(a.status, 200);
  assert.equal(await a.text(), await b.text());
  const bad = await json(url, { email: 'not an address' });
  assert.equal(bad.status, 400);
});

test('a filled honeypot gets the ordinary answer and nothing happens', async () => {
  const { n, server } = await startTenant('honey');
  const res = await json(`${server.url}/_newsletter/subscribe`, { email: 'bot@example.test', website: 'http://spam.example' });
  assert.equal(res.status, 202);
  const ok = await json(`${server.url}/_newsletter/subscribe`, { email: 'human@example.test' });
  assert.equal(await res.text(), await ok.text());
  await smtp.waitFor('human@example.test');
  await sleep(100);
  assert.equal(smtp.countFor('bot@example.test'), 0);
  assert.equal(n.store.subscriberByEmail('bot@example.test'), undefined);
});

test('at most one confirmation mail per address per day', async () => {
  const { server } = await startTenant('daily');
  const url = `${server.url}/_newsletter/subscribe`;
  for (let i = 0; i < 3; i++) assert.equal((await json(url, { email: 'frank@example.test' })).status, 202);
  await smtp.waitFor('frank@example.test');
  await sleep(300);
  assert.equal(smtp.countFor('frank@example.test'), 1);
});

test('subscribe requests are limited per client address, and confirmation mails per tenant', async () => {
  const { server } = await startTenant('limits', { limits: { perClient: 3, perTenant: 2 } });
  const url = `${server.url}/_newsletter/subscribe`;
  const from = (ip: string) => ({ 'x-forwarded-for': ip });
  for (let i = 0; i < 3; i++) assert.equal((await json(url, { email: `g${i}@example.test` }, from('203.0.113.7'))).status, 202);
  const limited = await json(url, { email: 'g3@example.test' }, from('203.0.113.7'));
  assert.equal(limited.status, 429);
  assert.ok(limited.headers.get('retry-after'));
  assert.equal((await json(url, { email: 'g4@example.test' }, from('203.0.113.8'))).status, 202, 'another client is not limited');
  await smtp.waitFor('g0@example.test');
  await smtp.waitFor('g1@example.test');
  await sleep(300);
  assert.equal(smtp.countFor('g2@example.test') + smtp.countFor('g4@example.test'), 0, 'the tenant cap (2) held back later mails');
});

test('confirmation happens only by POST; the GET page shows a button', async () => {
  const { n, server } = await startTenant('confirm');
  await json(`${server.url}/_newsletter/subscribe`, { email: 'heidi@example.test' });
  const [mail] = await smtp.waitFor('heidi@example.test');
  const link = localPath(linkIn(mail!, 'confirm'));
  const page = await fetch(`${server.url}${link}`);
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /<form method="post" action="\/_newsletter\/confirm">/);
  assert.match(html, /<button type="submit">/);
  await fetch(`${server.url}${link}`, { method: 'HEAD' });
  assert.equal(n.store.subscriberByEmail('heidi@example.test')?.status, 'pending', 'GET and HEAD change nothing');
  const token = new URL(link, 'http://x').searchParams.get('token')!;
  const res = await form(`${server.url}/_newsletter/confirm`, { token });
  assert.equal(res.status, 200);
  assert.equal(n.store.subscriberByEmail('heidi@example.test')?.status, 'confirmed');
  assert.equal((await form(`${server.url}/_newsletter/confirm`, { token: `${token.slice(0, -2)}AA` })).status, 400, 'a tampered token');
});

test('pending subscriptions expire with their link', async () => {
  let clock = Date.now();
  const { n, server } = await startTenant('expiry', { now: () => clock });
  await json(`${server.url}/_newsletter/subscribe`, { email: 'ivan@example.test' });
  const [mail] = await smtp.waitFor('ivan@example.test');
  const link = localPath(linkIn(mail!, 'confirm'));
  clock += 3 * 24 * 3_600_000 + 1000;
  assert.equal((await fetch(`${server.url}${link}`)).status, 400);
  assert.equal((await form(`${server.url}${link}`, {})).status, 400);
  assert.equal(n.store.subscriberByEmail('ivan@example.test'), undefined, 'the expired pending subscription is gone');
  // A new request starts afresh.
  await json(`${server.url}/_newsletter/subscribe`, { email: 'ivan@example.test' });
  const [, again] = await smtp.waitFor('ivan@example.test', 2);
  assert.equal((await form(`${server.url}${localPath(linkIn(again!, 'confirm'))}`, {})).status, 200);
});

test("a token of tenant A does nothing on tenant B, and a token works only for its purpose", async () => {
  const a = await startTenant('tenant-a');
  const b = await startTenant('tenant-b');
  await json(`${a.server.url}/_newsletter/subscribe`, { email: 'judy@example.test' });
  const [mail] = await smtp.waitFor('judy@example.test');
  const confirmPath = localPath(linkIn(mail!, 'confirm'));
  // Give B a subscriber with the very same id, address and nonces: only the key and tenant differ.
  const row = a.n.store.subscriberByEmail('judy@example.test')!;
  const cols = Object.keys(row);
  b.n.store.db.prepare(`INSERT INTO subscribers (${cols.join(',')}) VALUES (${cols.map(() => '?').join(',')})`).run(...cols.map((c) => (row as unknown as Record<string, unknown>)[c]));
  assert.equal((await form(`${b.server.url}${confirmPath}`, {})).status, 400);
  assert.equal(b.n.store.subscriberById(row.id)?.status, 'pending');
  assert.equal((await form(`${a.server.url}${confirmPath}`, {})).status, 200);
  assert.equal(a.n.store.subscriberById(row.id)?.status, 'confirmed');
  b.n.store.confirm(row.id, Date.now());
  const unsubscribePath = localPath(a.n.mailContext.unsubscribeUrl(a.n.store.subscriberById(row.id)!));
  const onB = await form(`${b.server.url}${unsubscribePath}`, { 'List-Unsubscribe': 'One-Click' });
  assert.equal(onB.status, 400);
  assert.equal(b.n.store.subscriberById(row.id)?.status, 'confirmed', "A's unsubscribe token left B's subscriber alone");
  // An unsubscribe token is no confirm token, and the other way round.
  const token = new URL(unsubscribePath, 'http://x').searchParams.get('token')!;
  assert.equal((await form(`${a.server.url}/_newsletter/confirm`, { token })).status, 400);
  const confirmToken = new URL(confirmPath, 'http://x').searchParams.get('token')!;
  assert.equal((await form(`${a.server.url}/_newsletter/unsubscribe?token=${confirmToken}`, {})).status, 400);
  assert.equal(a.n.store.subscriberById(row.id)?.status, 'confirmed');
  // The files really are apart.
  assert.notEqual(path.dirname(a.n.store.db.name), path.dirname(b.n.store.db.name));
  const check = new Database(b.n.store.db.name, { readonly: true });
  assert.equal((check.prepare('SELECT count(*) AS c FROM subscribers').get() as { c: number }).c, 1);
  check.close();
});

test('the plugin starts through onWorkerStart and answers on its public and admin routers', async () => {
  const ctx = testContext({ tenantId: 'via-plugin', dataDir: tempDataDir(), mail: smtpMail(smtp.port) });
  const routers = await plugin.onWorkerStart(ctx);
  const server = await serve(routers);
  servers.push(server);
  assert.equal((await fetch(`${server.url}/_newsletter/`)).status, 200);
  const list = await fetch(`${server.url}/_admin/newsletter/subscribers`);
  assert.deepEqual(await list.json(), { subscribers: [] });
  await until(() => true);
});
