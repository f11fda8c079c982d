// The dashboard over HTTPS in a real browser: the session cookie is
// __Host-tenantry_session, and a tenant's page on a sibling name cannot plant
// one for the parent domain, overwrite it, or read it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, type TestPlatform } from './helpers/harness.js';
import { browserSkipReason, launchBrowser, type Browser } from './helpers/browser.js';

const skip = await browserSkipReason();
if (skip) console.log(`# SKIPPED dashboard HTTPS browser test: ${skip}`);

let p: TestPlatform;
let browser: Browser;

before(async () => {
  if (skip) return;
  p = await startTestPlatform({ TENANTRY_HTTPS_PORT: '0' });
  // The platform's self-signed fallback certificate covers localhost and *.localhost.
  browser = await launchBrowser({ ignoreHttpsErrors: true });
});

after(async () => {
  await browser?.close();
  await p?.cleanup();
});

test('over HTTPS the session is a __Host- cookie a tenant page can neither plant nor read', { skip }, async () => {
  const dash = `https://localhost:${p.httpsPort}`;
  const page = await browser.context.newPage();
  await page.goto(`${dash}/`);
  await page.getByLabel('Token').fill(p.adminToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  const mine = (await browser.context.cookies(dash)).filter((c) => c.name.endsWith('tenantry_session'));
  assert.equal(mine.length, 1);
  assert.equal(mine[0]!.name, '__Host-tenantry_session');
  assert.equal(mine[0]!.secure, true);
  assert.equal(mine[0]!.httpOnly, true);
  assert.equal(mine[0]!.sameSite, 'Strict');
  assert.equal(mine[0]!.domain, 'localhost');

  const tenant = await browser.context.newPage();
  await tenant.goto(`https://demo.localhost:${p.httpsPort}/`);
  const seen = await tenant.evaluate(() => {
    document.cookie = '__Host-tenantry_session=planted-for-the-parent-00000000; domain=localhost; path=/; secure';
    document.cookie = 'tenantry_session=planted-for-the-parent-00000000; domain=localhost; path=/; secure';
    return document.cookie;
  });
  assert.ok(!seen.includes(mine[0]!.value), 'not readable from the tenant page');
  assert.ok(!seen.includes('__Host-tenantry_session'), 'the browser refused a __Host- cookie with a Domain');
  await tenant.close();

  const after = (await browser.context.cookies(dash)).filter((c) => c.name === '__Host-tenantry_session');
  assert.deepEqual(after.map((c) => c.value), [mine[0]!.value]);
  await page.reload();
  const who = await page.evaluate(async () => (await fetch('/api/v1/session')).status);
  assert.equal(who, 200, 'still signed in');
  // A change from the page works (CSRF token and Origin), over HTTPS too.
  const changed = await page.evaluate(async () => {
    const s = await (await fetch('/api/v1/session')).json();
    const r = await fetch('/api/v1/tenants/demo/env', { method: 'PATCH', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrfToken }, body: '{"K":"v"}' });
    return r.status;
  });
  assert.equal(changed, 200);
});
