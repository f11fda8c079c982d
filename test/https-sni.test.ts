// HTTPS: the listener on TENANTRY_HTTPS_PORT serves the same pipeline as the
// HTTP one, each name with its own certificate chosen by SNI, uploaded through
// the API (checked first), swapped live; the self-signed fallback for the
// platform host and *.localhost; the tenant's redirect and HSTS options; the
// scheme the worker is told comes from the socket.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startTestPlatform, httpRequest, type TestPlatform } from './helpers/harness.js';
import { httpsRequest, peerCertificate } from './helpers/tls-client.js';
import { apiJson, createTenant } from './helpers/deploy-archives.js';
import { deployOk } from './helpers/worker-sites.js';
import { createSelfSigned, type PemPair } from '../server/tls/self-signed.js';

let p: TestPlatform;
let httpsPort: number;
const certs: Record<string, PemPair> = {};
let tokenA: string;

const upload = (tenant: string, domain: string, pair: { cert: string; key: string }, token = p.adminToken) =>
  apiJson(p.url, token, 'PUT', `/api/v1/tenants/${tenant}/domains/${domain}/certificate`, pair);

before(async () => {
  p = await startTestPlatform({ TENANTRY_HTTPS_PORT: '0' });
  httpsPort = p.httpsPort!;
  await createTenant(p.url, p.adminToken, 'tls-a', { domains: ['one.example.test'] });
  await createTenant(p.url, p.adminToken, 'tls-b', { domains: ['two.example.test'] });
  for (const name of ['one.example.test', 'two.example.test']) certs[name] = await createSelfSigned({ names: [name], days: 30 });
  tokenA = (await apiJson(p.url, p.adminToken, 'POST', '/api/v1/tenants/tls-a/tokens', { scopes: ['deploy', 'read'] })).json.token;
});
after(() => p.cleanup());

test('without an uploaded certificate, every name gets the self-signed fallback (platform host, *.localhost)', async () => {
  assert.ok(httpsPort > 0);
  const fallback = await peerCertificate(httpsPort, 'tls-a.localhost');
  assert.equal(fallback.subject.CN, 'localhost');
  assert.match(fallback.subjectaltname ?? '', /DNS:\*\.localhost/);
  const noSni = await peerCertificate(httpsPort);
  assert.equal(noSni.subject.CN, 'localhost');
  const page = await httpsRequest(httpsPort, 'tls-a.localhost');
  assert.equal(page.status, 200);
  assert.match(page.body, /tls-a/);
  const api = await httpsRequest(httpsPort, 'localhost', '/healthz');
  assert.equal(api.status, 200);
});

test('an uploaded certificate is checked: key, name, dates, PEM, verified domain, owner', async () => {
  const other = await createSelfSigned({ names: ['one.example.test'] });
  const expired = await createSelfSigned({ names: ['one.example.test'], notBefore: new Date(Date.now() - 10 * 86_400_000), days: 1 });
  const cases: [PemPair, RegExp][] = [
    [certs['two.example.test']!, /does not cover one\.example\.test/],
    [{ cert: certs['one.example.test']!.cert, key: other.key }, /key does not match/],
    [expired, /expired on/],
    [{ cert: 'hello', key: certs['one.example.test']!.key }, /not a PEM certificate/],
    [{ cert: certs['one.example.test']!.cert, key: 'nope' }, /not a PEM private key/],
  ];
  for (const [pair, why] of cases) {
    const r = await upload('tls-a', 'one.example.test', pair);
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.equal(r.json.error.code, 'certificate_invalid');
    assert.match(r.json.error.message, why);
  }
  const pending = await apiJson(p.url, tokenA, 'POST', '/api/v1/tenants/tls-a/domains', { domain: 'later.example.test' });
  assert.equal(pending.status, 201);
  const early = await upload('tls-a', 'later.example.test', await createSelfSigned({ names: ['later.example.test'] }), tokenA);
  assert.equal(early.status, 409);
  assert.equal(early.json.error.code, 'domain_not_verified');
  const foreign = await upload('tls-b', 'two.example.test', certs['two.example.test']!, tokenA);
  assert.equal(foreign.status, 403);
  const notMine = await upload('tls-a', 'two.example.test', certs['two.example.test']!);
  assert.equal(notMine.status, 404);
  assert.equal(notMine.json.error.code, 'domain_not_found');
});

test('two domains, two certificates, chosen by SNI; served through the same pipeline', async () => {
  const one = await upload('tls-a', 'one.example.test', certs['one.example.test']!, tokenA);
  assert.equal(one.status, 200, JSON.stringify(one.json));
  assert.equal(one.json.certificate.status, 'uploaded');
  assert.ok(Date.parse(one.json.certificate.expiresAt) > Date.now() + 29 * 86_400_000);
  assert.equal((await upload('tls-b', 'two.example.test', certs['two.example.test']!)).status, 200);

  const c1 = await peerCertificate(httpsPort, 'one.example.test');
  const c2 = await peerCertificate(httpsPort, 'two.example.test');
  assert.equal(c1.subject.CN, 'one.example.test');
  assert.equal(c2.subject.CN, 'two.example.test');
  assert.equal(c1.fingerprint256, new (await import('node:crypto')).X509Certificate(certs['one.example.test']!.cert).fingerprint256);
  assert.equal((await peerCertificate(httpsPort, 'tls-b.localhost')).subject.CN, 'localhost');

  const page1 = await httpsRequest(httpsPort, 'one.example.test');
  assert.equal(page1.status, 200);
  assert.match(page1.body, /tls-a/);
  const page2 = await httpsRequest(httpsPort, 'two.example.test');
  assert.match(page2.body, /tls-b/);

  // Keys are the platform's own: 0600 files in a 0700 folder under <data>/certs.
  const dir = path.join(p.dataDir, 'certs', 'one.example.test');
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(dir, 'key.pem')).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(p.dataDir, 'certs')).mode & 0o777, 0o700);
  const audit = p.platform.store.audit.forTenant('tls-a', 20).find((e) => e.action === 'certificate.upload');
  assert.equal(audit?.detail.domain, 'one.example.test');

  const listed = await apiJson(p.url, tokenA, 'GET', '/api/v1/tenants/tls-a/domains');
  const row = listed.json.domains.find((d: { domain: string }) => d.domain === 'one.example.test');
  assert.equal(row.certificate.status, 'uploaded');
});

test('a removed certificate or domain leaves the SNI map at once', async () => {
  const removed = await apiJson(p.url, p.adminToken, 'DELETE', '/api/v1/tenants/tls-b/domains/two.example.test/certificate');
  assert.equal(removed.status, 200);
  assert.deepEqual(removed.json.certificate, { status: 'none' });
  assert.equal((await peerCertificate(httpsPort, 'two.example.test')).subject.CN, 'localhost');
  assert.equal(fs.existsSync(path.join(p.dataDir, 'certs', 'two.example.test')), false);
});

test("the scheme the tenant's worker is told comes from the socket", async () => {
  await deployOk(p, 'tls-a', {
    'public/index.html': '<h1>tls-a</h1>',
    'api/echo.js': "exports.GET = (req, res) => res.json({ proto: req.headers['x-forwarded-proto'], for: req.headers['x-forwarded-for'] });",
  });
  const plain = await httpRequest(p.url, { host: 'one.example.test', path: '/api/echo', headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '6.6.6.6' } });
  assert.equal(plain.status, 200, plain.body);
  assert.deepEqual(JSON.parse(plain.body), { proto: 'http', for: '127.0.0.1' });
  const secure = await httpsRequest(httpsPort, 'one.example.test', '/api/echo', { 'X-Forwarded-Proto': 'http' });
  assert.deepEqual(JSON.parse(secure.body), { proto: 'https', for: '127.0.0.1' });
});

test('per tenant: plain HTTP redirected to HTTPS, and HSTS over HTTPS', async () => {
  const before = await httpRequest(p.url, { host: 'one.example.test', path: '/x?y=1' });
  assert.equal(before.status, 404);
  assert.equal((await httpsRequest(httpsPort, 'one.example.test')).headers['strict-transport-security'], undefined, 'no HSTS unless asked for');
  const patched = await apiJson(p.url, p.adminToken, 'PATCH', '/api/v1/tenants/tls-a', { https: { redirect: true, hsts: true } });
  assert.equal(patched.status, 200);
  assert.deepEqual(patched.json.https, { redirect: true, hsts: true });
  const moved = await httpRequest(p.url, { host: 'one.example.test', path: '/x?y=1' });
  assert.equal(moved.status, 301);
  assert.equal(moved.headers.location, `https://one.example.test:${httpsPort}/x?y=1`);
  const secure = await httpsRequest(httpsPort, 'one.example.test');
  assert.equal(secure.status, 200);
  assert.equal(secure.headers['strict-transport-security'], 'max-age=31536000');
  const api = await httpsRequest(httpsPort, 'one.example.test', '/api/echo');
  assert.equal(api.headers['strict-transport-security'], 'max-age=31536000', 'dynamic routes too');
  // Another tenant is untouched; the ACME and proof paths are answered before the redirect.
  assert.equal((await httpRequest(p.url, { host: 'two.example.test' })).status, 200);
  assert.equal((await httpsRequest(httpsPort, 'two.example.test')).headers['strict-transport-security'], undefined);
  await apiJson(p.url, p.adminToken, 'PATCH', '/api/v1/tenants/tls-a', { https: { redirect: false } });
  assert.equal((await httpRequest(p.url, { host: 'one.example.test' })).status, 200);
});
