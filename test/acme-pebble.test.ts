// Automatic certificates end to end against a real ACME server: Debian's
// pebble on loopback, its HTTP-01 validator pointed at the platform's HTTP
// port and its DNS at pebble-challtestsrv (which answers 127.0.0.1 for every
// name). A tenant adds shop.example.test, proves it by TXT, and visitors get
// its site over HTTPS with a certificate for that name issued by pebble; a
// second domain gets its own certificate by SNI; nobody else can take the
// name; the certificate is renewed a third of its (short, here) life early.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { startTestPlatform, tempDir, type TestPlatform } from './helpers/harness.js';
import { apiJson, createTenant } from './helpers/deploy-archives.js';
import { freePort, pebbleMissing, startChallTestSrv, startPebble, type ChallTestSrv, type Pebble } from './helpers/pebble.js';
import { httpsRequest, peerCertificate } from './helpers/tls-client.js';

const missing = pebbleMissing();
if (missing) console.log(`# SKIP ACME tests against pebble: ${missing}`);

/** Short, so that the renewal (a third of the life before the end) comes within the test. */
const VALIDITY_SECONDS = 24;

let p: TestPlatform;
let dns: ChallTestSrv;
let pebble: Pebble;
let work: string;
let tokenA: string;

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 40_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n--- pebble:\n${pebble.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const domainOf = async (tenant: string, domain: string) => (await apiJson(p.url, p.adminToken, 'GET', `/api/v1/tenants/${tenant}/domains/${domain}`)).json;

before(async () => {
  if (missing) return;
  work = tempDir('tenantry-acme-');
  dns = await startChallTestSrv();
  const httpPort = await freePort();
  pebble = await startPebble({ httpPort, dnsServer: dns.dnsServer, certificateValiditySeconds: VALIDITY_SECONDS, workDir: work });
  p = await startTestPlatform(
    {
      TENANTRY_HTTPS_PORT: '0',
      TENANTRY_DNS_SERVERS: dns.dnsServer,
      TENANTRY_ACME_DIRECTORY_URL: pebble.directoryUrl,
      TENANTRY_ACME_CA_FILE: pebble.caFile,
      TENANTRY_ACME_EMAIL: 'ops@example.test',
    },
    path.join(work, 'data'),
    { port: httpPort },
  );
  await createTenant(p.url, p.adminToken, 'acme-a');
  await createTenant(p.url, p.adminToken, 'acme-b');
  tokenA = (await apiJson(p.url, p.adminToken, 'POST', '/api/v1/tenants/acme-a/tokens', { scopes: ['deploy', 'read'] })).json.token;
});
after(async () => {
  await p?.cleanup();
  await pebble?.stop();
  await dns?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('a tenant adds shop.example.test, proves it by TXT, and gets a certificate from the ACME server served by SNI', { skip: missing }, async () => {
  const added = await apiJson(p.url, tokenA, 'POST', '/api/v1/tenants/acme-a/domains', { domain: 'shop.example.test' });
  assert.equal(added.status, 201);
  // Not verified: no certificate is asked for.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(p.platform.store.certificates.get('shop.example.test'), undefined);
  assert.deepEqual(added.json.certificate, { status: 'none' });

  await dns.setTxt('_tenantry.shop.example.test', added.json.verification.txt.value);
  const verified = await apiJson(p.url, tokenA, 'POST', '/api/v1/tenants/acme-a/domains/shop.example.test/verify', { method: 'txt' });
  assert.equal(verified.status, 200, JSON.stringify(verified.json));
  assert.ok(['pending', 'issued'].includes(verified.json.certificate.status), JSON.stringify(verified.json.certificate));

  const issued = await until('the certificate of shop.example.test', async () => {
    const d = await domainOf('acme-a', 'shop.example.test');
    if (d.certificate.status === 'failed') throw new Error(`issuance failed: ${d.certificate.error}`);
    return d.certificate.status === 'issued' ? d.certificate : undefined;
  });
  assert.ok(Date.parse(issued.expiresAt) > Date.now());
  assert.ok(Date.parse(issued.renewAt) < Date.parse(issued.expiresAt));

  const served = await peerCertificate(p.httpsPort!, 'shop.example.test');
  assert.match(served.subjectaltname ?? '', /\bDNS:shop\.example\.test\b/);
  assert.match(JSON.stringify(served.issuer), /Pebble/i);
  const page = await httpsRequest(p.httpsPort!, 'shop.example.test');
  assert.equal(page.status, 200);
  assert.match(page.body, /acme-a/);

  // The key is the platform's own, 0600; the ACME account key too.
  const dir = path.join(p.dataDir, 'certs');
  assert.equal(fs.statSync(path.join(dir, 'shop.example.test', 'key.pem')).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(dir, '_acme-account', 'key.pem')).mode & 0o777, 0o600);
  const stored = new X509Certificate(fs.readFileSync(path.join(dir, 'shop.example.test', 'cert.pem')));
  assert.equal(stored.fingerprint256, served.fingerprint256);
  // Names a CA will not sign (the tenant's *.localhost default) are left to the self-signed fallback.
  assert.equal(p.platform.store.certificates.get('acme-a.localhost'), undefined);
  assert.ok(p.platform.store.audit.forTenant('acme-a', 50).some((e) => e.action === 'certificate.issue' && e.detail.domain === 'shop.example.test'));
});

test('a second domain gets its own certificate, chosen by SNI; no other tenant can take the first', { skip: missing }, async () => {
  const second = await apiJson(p.url, p.adminToken, 'POST', '/api/v1/tenants/acme-b/domains', { domain: 'second.example.test' });
  assert.equal(second.status, 201);
  await until('the certificate of second.example.test', async () => {
    const d = await domainOf('acme-b', 'second.example.test');
    if (d.certificate.status === 'failed') throw new Error(`issuance failed: ${d.certificate.error}`);
    return d.certificate.status === 'issued' ? d : undefined;
  });
  const c1 = await peerCertificate(p.httpsPort!, 'shop.example.test');
  const c2 = await peerCertificate(p.httpsPort!, 'second.example.test');
  assert.match(c2.subjectaltname ?? '', /\bDNS:second\.example\.test\b/);
  assert.doesNotMatch(c2.subjectaltname ?? '', /shop\.example\.test/);
  assert.notEqual(c1.fingerprint256, c2.fingerprint256);
  assert.match((await httpsRequest(p.httpsPort!, 'second.example.test')).body, /acme-b/);

  const taken = await apiJson(p.url, p.adminToken, 'POST', '/api/v1/tenants/acme-b/domains', { domain: 'shop.example.test' });
  assert.equal(taken.status, 409);
  assert.equal(taken.json.error.code, 'domain_taken');
  assert.match((await httpsRequest(p.httpsPort!, 'shop.example.test')).body, /acme-a/);
});

test('the certificate is renewed a third of its life before it ends, and the new one is served', { skip: missing }, async () => {
  const first = await peerCertificate(p.httpsPort!, 'shop.example.test');
  const renewed = await until(
    'the renewal of shop.example.test',
    async () => {
      const now = await peerCertificate(p.httpsPort!, 'shop.example.test');
      return now.fingerprint256 !== first.fingerprint256 ? now : undefined;
    },
    VALIDITY_SECONDS * 1000 + 15_000,
  );
  assert.match(renewed.subjectaltname ?? '', /\bDNS:shop\.example\.test\b/);
  // Renewed before the old one ran out.
  assert.ok(Date.parse(first.valid_to) > Date.now() - 1000, 'renewed while the first was still valid');
  const issues = p.platform.store.audit.forTenant('acme-a', 100).filter((e) => e.action === 'certificate.issue' && e.detail.domain === 'shop.example.test');
  assert.ok(issues.length >= 2);
});

test('removing the domain removes its certificate', { skip: missing }, async () => {
  const r = await apiJson(p.url, p.adminToken, 'DELETE', '/api/v1/tenants/acme-b/domains/second.example.test');
  assert.equal(r.status, 204);
  assert.equal(p.platform.store.certificates.get('second.example.test'), undefined);
  assert.equal(fs.existsSync(path.join(p.dataDir, 'certs', 'second.example.test')), false);
  assert.equal((await peerCertificate(p.httpsPort!, 'second.example.test')).subject.CN, 'localhost');
});
