// The dashboard in a real browser (chromium through playwright-core): sign in,
// deploy a folder with the progress bar, rollback in one click, domains and
// their TXT record, a tenant token confined to its tenant, the session cookie
// out of reach of a tenant's page, CSRF refusals, sign-out.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Page } from 'playwright-core';
import { httpRequest, startTestPlatform, type TestPlatform } from './helpers/harness.js';
import { browserSkipReason, launchBrowser, siteFolder, type Browser } from './helpers/browser.js';

const skip = await browserSkipReason();
if (skip) console.log(`# SKIPPED dashboard browser tests: ${skip}`);

let p: TestPlatform;
let browser: Browser;
let page: Page;
let dash: string;
let port: number;
const folders: string[] = [];

before(async () => {
  if (skip) return;
  p = await startTestPlatform();
  port = p.port;
  dash = `http://localhost:${port}`;
  browser = await launchBrowser();
  page = await browser.context.newPage();
});

after(async () => {
  await browser?.close();
  await p?.cleanup();
  for (const f of folders) fs.rmSync(f, { recursive: true, force: true });
});

async function signIn(token: string): Promise<void> {
  await page.goto(`${dash}/`);
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

async function deployFolder(files: Record<string, string>): Promise<string> {
  const dir = siteFolder(files);
  folders.push(dir);
  await page.locator('#folder-input').setInputFiles(dir);
  await page.locator('#upload').waitFor({ state: 'visible' });
  const status = page.locator('#status');
  await status.filter({ hasText: /Deployed d/ }).waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('#upload-progress').getAttribute('max'), '100');
  assert.equal(await page.locator('#upload-progress').evaluate((e) => (e as HTMLProgressElement).value), 100, 'the progress bar reached the end');
  const m = /Deployed (d[0-9a-z]+)/.exec((await status.textContent()) ?? '');
  assert.ok(m, 'the deploy id is shown');
  return m[1]!;
}

async function tenantPage(id: string, path = '/'): Promise<string> {
  return (await httpRequest(p.url, { host: `${id}.localhost`, path })).body;
}

test('sign in as admin, create a tenant with limits, see it listed', { skip }, async () => {
  await signIn(p.adminToken);
  assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0, 'nothing kept in the page storage');
  assert.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is HttpOnly');
  await page.getByLabel('Id', { exact: true }).fill('acme');
  await page.getByLabel('Memory, MB').fill('300');
  await page.getByRole('button', { name: 'Create tenant' }).click();
  await page.locator('#status').filter({ hasText: 'Tenant acme created' }).waitFor();
  const row = page.locator('#tenant-rows tr', { hasText: 'acme' });
  await row.waitFor();
  assert.match((await row.textContent()) ?? '', /300 MB/);
});

test('deploy a folder with the progress bar, see it live, roll back in one click', { skip }, async () => {
  await page.goto(`${dash}/deploys?t=acme`);
  await page.locator('#deploy-rows tr').first().waitFor();
  const first = await deployFolder({ 'index.html': '<h1>version one</h1>', 'css/site.css': 'h1{color:red}' });
  assert.match(await tenantPage('acme'), /version one/);
  const second = await deployFolder({ 'index.html': '<h1>version two</h1>' });
  assert.match(await tenantPage('acme'), /version two/);
  const liveRow = page.locator(`tr[data-deploy="${second}"]`);
  await liveRow.locator('.badge.live').waitFor();
  // One click on the older release makes it live again.
  await page.getByRole('button', { name: `Make ${first} live` }).click();
  await page.locator(`tr[data-deploy="${first}"] .badge.live`).waitFor();
  assert.match(await tenantPage('acme'), /version one/);
  // Forward again is the same click.
  await page.getByRole('button', { name: `Make ${second} live` }).click();
  await page.locator(`tr[data-deploy="${second}"] .badge.live`).waitFor();
  assert.match(await tenantPage('acme'), /version two/);
});

test('a failed deploy is listed with its reason', { skip }, async () => {
  await page.goto(`${dash}/deploys?t=acme`);
  await page.locator('#deploy-rows tr').first().waitFor();
  // A tar with an entry that climbs out of the release is refused (422) and recorded as failed.
  const bad = Buffer.alloc(1024 + 512);
  bad.write('../escape.txt', 0);
  bad.write('0000644\0', 100);
  bad.write('00000000000\0', 124);
  bad.write('00000000000\0', 136);
  bad.write('0', 156);
  bad.write('ustar\0', 257);
  bad.write('00', 263);
  bad.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += bad[i]!;
  bad.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  await page.locator('#archive-input').setInputFiles({ name: 'bad.tar', mimeType: 'application/x-tar', buffer: bad });
  await page.locator('#status.error').waitFor();
  assert.match((await page.locator('#status').textContent()) ?? '', /\.\./);
  const failed = page.locator('#deploy-rows tr.failed').first();
  await failed.waitFor();
  assert.match((await failed.locator('.reason').textContent()) ?? '', /\.\./, 'the failed deploy is listed with its reason');
  assert.equal(await failed.getByRole('button').count(), 0, 'a failed release cannot be made live');
});

test('the live log streams new lines and can be paused', { skip }, async () => {
  await page.goto(`${dash}/logs?t=acme`);
  // What the worker and the edge append to the site log (in-process here, as the edge does).
  p.platform.siteLogs.append('acme', 'GET /streamed-probe 200');
  await page.locator('#log .line', { hasText: 'streamed-probe' }).last().waitFor({ timeout: 10_000 });
  await page.getByRole('button', { name: 'Pause' }).click();
  const shown = await page.locator('#log .line').count();
  p.platform.siteLogs.append('acme', 'GET /paused-probe 200');
  await page.locator('#held').filter({ hasText: 'held' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#log .line').count(), shown, 'nothing is added while paused');
  await page.getByRole('button', { name: 'Resume' }).click();
  await page.locator('#log .line', { hasText: 'paused-probe' }).waitFor();
});

test('a change without the CSRF token is refused with 403', { skip }, async () => {
  await page.goto(`${dash}/env?t=acme`);
  const answer = await page.evaluate(async () => {
    const r = await fetch('/api/v1/tenants/acme/env', { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: '{"A":"1"}' });
    return { status: r.status, body: await r.text() };
  });
  assert.equal(answer.status, 403);
  assert.match(answer.body, /CSRF/);
  // With the token (what the page does) it goes through.
  await page.getByLabel('Name').fill('API_KEY');
  await page.getByLabel('Value').fill('s3cret');
  await page.getByRole('button', { name: 'Set' }).click();
  await page.locator('#env-keys', { hasText: 'API_KEY' }).waitFor();
  assert.doesNotMatch((await page.content()) ?? '', /s3cret/, 'the value is not shown back');
});

let tenantToken = '';

test('admin creates a tenant token, shown once', { skip }, async () => {
  await page.goto(`${dash}/tokens?t=acme`);
  await page.getByLabel('Name').fill('ci');
  await page.getByRole('button', { name: 'Create token' }).click();
  await page.locator('#new-token-value').filter({ hasText: 'tnt_' }).waitFor();
  tenantToken = ((await page.locator('#new-token-value').textContent()) ?? '').trim();
  await page.locator('#token-rows tr', { hasText: 'ci' }).waitFor();
  await page.reload();
  await page.locator('#token-rows tr', { hasText: 'ci' }).waitFor();
  assert.doesNotMatch(await page.content(), new RegExp(tenantToken), 'not shown again');
});

test('sign-out ends the session', { skip }, async () => {
  const cookie = (await browser.context.cookies(dash)).find((c) => c.name === 'tenantry_session');
  assert.ok(cookie, 'the session cookie is set');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(cookie.path, '/');
  assert.equal(cookie.domain, 'localhost', 'host-only, on the platform host');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Token').waitFor();
  const res = await httpRequest(p.url, { host: `localhost:${port}`, path: '/api/v1/session', headers: { Cookie: `tenantry_session=${cookie.value}` } });
  assert.equal(res.status, 401, 'the old session id is dead on the server, not only forgotten by the browser');
});

test('a tenant token sees only its tenant; its domain shows the TXT record to set', { skip }, async () => {
  await signIn(tenantToken);
  assert.equal(new URL(page.url()).pathname, '/deploys');
  assert.equal(new URL(page.url()).searchParams.get('t'), 'acme');
  assert.equal(await page.getByRole('link', { name: 'Tenants' }).count(), 0);
  assert.equal(await page.getByRole('link', { name: 'Tokens' }).count(), 0);
  const probes = await page.evaluate(async () => {
    const s = async (u: string) => (await fetch(u)).status;
    return { list: await s('/api/v1/tenants'), other: await s('/api/v1/tenants/demo/deploys'), own: await s('/api/v1/tenants/acme/deploys') };
  });
  assert.deepEqual(probes, { list: 403, other: 403, own: 200 });
  await page.goto(`${dash}/deploys?t=demo`);
  await page.locator('#status.error').filter({ hasText: /another tenant/ }).waitFor();

  await page.goto(`${dash}/domains?t=acme`);
  await page.getByLabel('Domain').fill('Shop.Example.com');
  await page.getByRole('button', { name: 'Add domain' }).click();
  const card = page.locator('article[data-domain="shop.example.com"]');
  await card.waitFor();
  assert.equal(await card.locator('.txt-name').textContent(), '_tenantry.shop.example.com');
  assert.match((await card.locator('.txt-value').textContent()) ?? '', /^tenantry-verify=/);
  assert.match((await card.textContent()) ?? '', /pending/);
});

test("a tenant's page can neither read nor plant the dashboard session", { skip }, async () => {
  const before = await page.evaluate(async () => (await fetch('/api/v1/session')).status);
  assert.equal(before, 200);
  const sessionCookie = (await browser.context.cookies(dash)).find((c) => c.name === 'tenantry_session')!;
  const tenantTab = await browser.context.newPage();
  await tenantTab.goto(`http://acme.localhost:${port}/`);
  assert.match(await tenantTab.content(), /version two/);
  const seen = await tenantTab.evaluate(() => {
    // A parent-domain cookie of the same name, then a host-only one: neither may reach the platform host's session.
    document.cookie = 'tenantry_session=planted-by-the-tenant-0000000000; domain=localhost; path=/';
    document.cookie = '__Host-tenantry_session=planted; path=/';
    document.cookie = 'tenantry_session=planted-on-own-host-00000000000; path=/';
    return document.cookie;
  });
  assert.ok(!seen.includes(sessionCookie.value), 'the tenant page cannot read the session');
  // Its scripts cannot read it over HTTP either: the platform host answers no CORS.
  const cross = await tenantTab.evaluate(async (url) => {
    try {
      const r = await fetch(url, { credentials: 'include' });
      return `read ${r.status}`;
    } catch {
      return 'blocked';
    }
  }, `${dash}/api/v1/session`);
  assert.equal(cross, 'blocked');
  await tenantTab.close();
  const dashCookies = await browser.context.cookies(dash);
  assert.deepEqual(
    dashCookies.filter((c) => c.name.endsWith('tenantry_session')).map((c) => c.value),
    [sessionCookie.value],
    'the dashboard still has only its own session cookie',
  );
  await page.reload();
  const after = await page.evaluate(async () => {
    const r = await fetch('/api/v1/session');
    return { status: r.status, body: await r.json() };
  });
  assert.equal(after.status, 200);
  assert.equal(after.body.principal.tenantId, 'acme', 'still the same session');
});
