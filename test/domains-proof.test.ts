// Proof of ownership against a real DNS server (pebble-challtestsrv on
// loopback, the platform pointed at it with TENANTRY_DNS_SERVERS): refused
// while the proof is missing, accepted once present, by TXT record or by the
// HTTP URL; several pending claims on a name, the first to prove it wins, and
// a verified name cannot be taken by anyone else.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, httpRequest, type TestPlatform } from './helpers/harness.js';
import { apiJson, createTenant } from './helpers/deploy-archives.js';
import { pebbleMissing, startChallTestSrv, type ChallTestSrv } from './helpers/pebble.js';

const missing = pebbleMissing();
if (missing) console.log(`# SKIP domain proof tests: ${missing}`);

let p: TestPlatform;
let dns: ChallTestSrv;
const tokens: Record<string, string> = {};

async function tokenFor(tenant: string): Promise<string> {
  const r = await apiJson(p.url, p.adminToken, 'POST', `/api/v1/tenants/${tenant}/tokens`, { scopes: ['deploy', 'read'] });
  assert.equal(r.status, 201);
  return r.json.token as string;
}

const claim = (tenant: string, domain: string) => apiJson(p.url, tokens[tenant]!, 'POST', `/api/v1/tenants/${tenant}/domains`, { domain });
const verify = (tenant: string, domain: string, method?: 'txt' | 'http') =>
  apiJson(p.url, tokens[tenant]!, 'POST', `/api/v1/tenants/${tenant}/domains/${domain}/verify`, method ? { method } : {});
const page = (host: string) => httpRequest(p.url, { host });

before(async () => {
  if (missing) return;
  dns = await startChallTestSrv();
  p = await startTestPlatform({ TENANTRY_DNS_SERVERS: dns.dnsServer });
  for (const id of ['proof-a', 'proof-b']) {
    await createTenant(p.url, p.adminToken, id);
    tokens[id] = await tokenFor(id);
  }
});
after(async () => {
  await p?.cleanup();
  await dns?.stop();
});

test('TXT proof: refused while missing or wrong, accepted once present; the pending name serves nothing until then', { skip: missing }, async () => {
  // Its A record points where nothing answers, so only the TXT record can prove it.
  await dns.setA('shop.example.test', ['127.0.0.3']);
  const a = await claim('proof-a', 'shop.example.test');
  assert.equal(a.status, 201);
  const b = await claim('proof-b', 'shop.example.test');
  assert.equal(b.status, 201, 'a pending claim does not block another pending one');

  const none = await verify('proof-a', 'shop.example.test');
  assert.equal(none.status, 409);
  assert.equal(none.json.error.code, 'verification_failed');
  assert.match(none.json.error.message, /TXT: no TXT record at _tenantry\.shop\.example\.test/);
  assert.match(none.json.error.message, /HTTP: .*could not be fetched/);
  assert.equal((await page('shop.example.test')).status, 404);

  // Another tenant's value does not prove this tenant's claim.
  await dns.setTxt('_tenantry.shop.example.test', b.json.verification.txt.value);
  const wrong = await verify('proof-a', 'shop.example.test', 'txt');
  assert.equal(wrong.status, 409);
  assert.match(wrong.json.error.message, /does not hold the expected value/);

  await dns.setTxt('_tenantry.shop.example.test', a.json.verification.txt.value);
  const ok = await verify('proof-a', 'shop.example.test', 'txt');
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.equal(ok.json.verified, true);
  assert.equal(ok.json.verification, undefined);
  const served = await page('shop.example.test');
  assert.equal(served.status, 200);
  assert.match(served.body, /proof-a/);
  const audit = p.platform.store.audit.forTenant('proof-a', 20).find((e) => e.action === 'domain.verify');
  assert.deepEqual(audit?.detail, { domain: 'shop.example.test', proof: 'txt' });
});

test("a verified name is not another tenant's to take: its claim and its proof get 409, the owner keeps serving", { skip: missing }, async () => {
  // proof-b's pending claim stays, but can no longer be proven, even with its own TXT value in place.
  const b = await apiJson(p.url, tokens['proof-b']!, 'GET', '/api/v1/tenants/proof-b/domains/shop.example.test');
  await dns.setTxt('_tenantry.shop.example.test', b.json.verification.txt.value);
  const stolen = await verify('proof-b', 'shop.example.test', 'txt');
  assert.equal(stolen.status, 409);
  assert.equal(stolen.json.error.code, 'domain_taken');
  const again = await claim('proof-b', 'www.shop.example.test');
  assert.equal(again.status, 201, 'other names are free');
  const taken = await claim('proof-b', 'SHOP.example.test.');
  assert.equal(taken.status, 409);
  assert.equal(taken.json.error.code, 'domain_taken');
  const served = await page('shop.example.test');
  assert.match(served.body, /proof-a/);
  await dns.clearTxt('_tenantry.shop.example.test');
});

test('HTTP proof: the platform serves the token on the name and fetches it back where the DNS points', { skip: missing }, async () => {
  await dns.setA('web.example.test', ['127.0.0.3']);
  const a = await claim('proof-a', 'web.example.test');
  assert.equal(a.status, 201);
  assert.match(a.json.verification.http.url, new RegExp(`^http://web\\.example\\.test:${p.port}/\\.well-known/tenantry/[0-9a-f]{32}$`));
  const away = await verify('proof-a', 'web.example.test', 'http');
  assert.equal(away.status, 409);
  assert.match(away.json.error.message, /HTTP: http:\/\/web\.example\.test:\d+\/\.well-known\/tenantry\/[0-9a-f]+ could not be fetched/);

  await dns.setA('web.example.test', ['127.0.0.1']);
  const ok = await verify('proof-a', 'web.example.test');
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.equal(ok.json.verified, true);
  assert.match((await page('web.example.test')).body, /proof-a/);
  // Verified: the proof URL answers no more (the name now belongs to the tenant's site).
  const token = a.json.verification.http.url.split('/').pop();
  const after = await httpRequest(p.url, { host: 'web.example.test', path: `/.well-known/tenantry/${token}` });
  assert.notEqual(after.body.trim(), a.json.verification.http.body);
});
