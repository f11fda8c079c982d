// Custom domains through the API and the CLI: normalised names, refusals with
// the reason, the admin's names verified at once, a tenant's pending until
// proven (serving nothing meanwhile), one owner per verified name, www
// redirects, wildcards, removal, tls/ask and the audit trail.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { checkDomainClaim, normalizeDomain } from '../server/model/domain-name.js';
import { proofValues } from '../server/domains/proof-values.js';
import { runCli, startTestPlatform, type TestPlatform } from './helpers/harness.js';

let p: TestPlatform;
let deployOne: string;
let readOne: string;
let deployTwo: string;
const admin = () => `Bearer ${p.adminToken}`;
const api = () => request(p.server);
const onPlatform = (method: 'get' | 'post' | 'patch' | 'delete' | 'put', path: string, token: string) =>
  api()[method](path).set('Host', 'localhost').set('Authorization', `Bearer ${token}`);

async function tokenFor(tenant: string, scopes: string[]): Promise<string> {
  const r = await api().post(`/api/v1/tenants/${tenant}/tokens`).set('Host', 'localhost').set('Authorization', admin()).send({ scopes }).expect(201);
  return r.body.token as string;
}

before(async () => {
  p = await startTestPlatform();
  for (const id of ['dom-one', 'dom-two']) await api().post('/api/v1/tenants').set('Host', 'localhost').set('Authorization', admin()).send({ id }).expect(201);
  deployOne = await tokenFor('dom-one', ['deploy', 'read']);
  readOne = await tokenFor('dom-one', ['read']);
  deployTwo = await tokenFor('dom-two', ['deploy', 'read']);
});
after(() => p.cleanup());

test('names are normalised: case, trailing dot, IDN to punycode; wrong and reserved names refused', () => {
  assert.equal(normalizeDomain('Shop.Example.TEST.'), 'shop.example.test');
  assert.equal(normalizeDomain('Bücher.example'), 'xn--bcher-kva.example');
  for (const bad of ['', 'localhost', 'no spaces.example', '127.0.0.1', '-x.example', 'a..b', 'x'.repeat(64) + '.example']) {
    assert.equal(normalizeDomain(bad), undefined, bad);
  }
  const reserved = { platformHost: 'tenantry.example.com', baseDomain: 'sites.example.com' };
  assert.deepEqual(checkDomainClaim('Tenantry.Example.com', reserved), { ok: false, reason: 'reserved', message: 'tenantry.example.com is the platform\'s own host name.' });
  assert.equal((checkDomainClaim('acme.sites.example.com', reserved) as { reason: string }).reason, 'reserved');
  assert.equal((checkDomainClaim('sites.example.com', reserved) as { reason: string }).reason, 'reserved');
  assert.equal((checkDomainClaim('*.example.com', reserved) as { reason: string }).reason, 'reserved');
  assert.deepEqual(checkDomainClaim('*.Shop.Example', reserved), { ok: true, domain: '*.shop.example', wildcard: true });
  assert.deepEqual(checkDomainClaim('www.example.com', reserved), { ok: true, domain: 'www.example.com', wildcard: false });
});

test('bad names get 400 with the reason', async () => {
  const cases: [unknown, string][] = [
    ['not a domain', 'invalid_domain'],
    ['127.0.0.1', 'invalid_domain'],
    ['x.localhost', 'domain_reserved'],
    ['dom-two.localhost', 'domain_reserved'],
  ];
  for (const [domain, code] of cases) {
    const r = await onPlatform('post', '/api/v1/tenants/dom-one/domains', deployOne).send({ domain }).expect(400);
    assert.equal(r.body.error.code, code, String(domain));
    assert.match(r.body.error.message, /domain|name|base/);
  }
  const wild = await onPlatform('post', '/api/v1/tenants/dom-one/domains', deployOne).send({ domain: '*.wild.test' }).expect(403);
  assert.match(wild.body.error.message, /wildcard/);
  const idn = await onPlatform('post', '/api/v1/tenants/dom-one/domains', deployOne).send({ domain: 'Bücher.Example.' }).expect(201);
  assert.equal(idn.body.domain, 'xn--bcher-kva.example');
});

test("the admin's domain is verified at once and serves; a tenant's stays pending and serves nothing", async () => {
  const added = await onPlatform('post', '/api/v1/tenants/dom-one/domains', p.adminToken).send({ domain: 'Shop.Example.Test.' }).expect(201);
  assert.equal(added.body.domain, 'shop.example.test');
  assert.equal(added.body.verified, true);
  assert.deepEqual(added.body.certificate, { status: 'none' });
  const page = await api().get('/').set('Host', 'shop.example.test');
  assert.equal(page.status, 200);
  assert.match(page.text, /dom-one/);

  const pending = await onPlatform('post', '/api/v1/tenants/dom-one/domains', deployOne).send({ domain: 'pending.example.test' }).expect(201);
  assert.equal(pending.body.verified, false);
  const expected = proofValues(p.platform.secrets.secret, 'dom-one', 'pending.example.test');
  assert.deepEqual(pending.body.verification.txt, { name: '_tenantry.pending.example.test', value: expected.value });
  assert.equal(pending.body.verification.http.url, `http://pending.example.test:${p.port}/.well-known/tenantry/${expected.httpToken}`);
  assert.equal(pending.body.verification.http.body, expected.value);
  // Pending: nothing of the tenant, not even its 404 page.
  const nothing = await api().get('/').set('Host', 'pending.example.test').expect(404);
  assert.equal(nothing.body.error.code, 'unknown_host');
  // ...except the platform's own proof answer at the given URL.
  const proof = await api().get(`/.well-known/tenantry/${expected.httpToken}`).set('Host', 'pending.example.test').expect(200);
  assert.equal(proof.text, expected.value);
  await api().get('/.well-known/tenantry/0123456789abcdef').set('Host', 'pending.example.test').expect(404);
  await api().get(`/.well-known/tenantry/${expected.httpToken}`).set('Host', 'shop.example.test').expect(404);

  // Adding it again answers its current state.
  const again = await onPlatform('post', '/api/v1/tenants/dom-one/domains', deployOne).send({ domain: 'PENDING.example.test' }).expect(200);
  assert.equal(again.body.verified, false);
  // The same name claimed by another tenant gets another value: one tenant's proof never proves another's claim.
  const other = await onPlatform('post', '/api/v1/tenants/dom-two/domains', deployTwo).send({ domain: 'pending.example.test' }).expect(201);
  assert.notEqual(other.body.verification.txt.value, expected.value);

  const list = await onPlatform('get', '/api/v1/tenants/dom-one/domains', readOne).expect(200);
  const names = list.body.domains.map((d: { domain: string }) => d.domain);
  assert.deepEqual(names, ['dom-one.localhost', 'pending.example.test', 'shop.example.test', 'xn--bcher-kva.example']);
  await onPlatform('post', '/api/v1/tenants/dom-one/domains', readOne).send({ domain: 'x.example.test' }).expect(403);
  await onPlatform('get', '/api/v1/tenants/dom-two/domains', readOne).expect(403);
});

test("a name verified by one tenant is refused to another (409), and its owner keeps serving", async () => {
  const taken = await onPlatform('post', '/api/v1/tenants/dom-two/domains', deployTwo).send({ domain: 'shop.example.test' }).expect(409);
  assert.equal(taken.body.error.code, 'domain_taken');
  const byAdmin = await onPlatform('post', '/api/v1/tenants/dom-two/domains', p.adminToken).send({ domain: 'shop.example.test' }).expect(409);
  assert.equal(byAdmin.body.error.code, 'domain_taken');
  const page = await api().get('/').set('Host', 'shop.example.test').expect(200);
  assert.match(page.text, /dom-one/);
});

test('www redirects: to the apex, or the reverse, keeping path, query and port', async () => {
  const www = await onPlatform('post', '/api/v1/tenants/dom-one/domains', p.adminToken).send({ domain: 'www.shop.example.test', redirect: 'to-apex' }).expect(201);
  assert.equal(www.body.redirect, 'to-apex');
  const r = await api().get('/a/b?c=1').set('Host', 'www.shop.example.test:8080').expect(301);
  assert.equal(r.headers.location, 'http://shop.example.test:8080/a/b?c=1');
  const post = await api().post('/form').set('Host', 'www.shop.example.test').expect(308);
  assert.equal(post.headers.location, 'http://shop.example.test/form');

  await onPlatform('patch', '/api/v1/tenants/dom-one/domains/www.shop.example.test', deployOne).send({ redirect: 'none' }).expect(200);
  await api().get('/').set('Host', 'www.shop.example.test').expect(200);
  await onPlatform('patch', '/api/v1/tenants/dom-one/domains/shop.example.test', deployOne).send({ redirect: 'to-www' }).expect(200);
  const rev = await api().get('/x').set('Host', 'shop.example.test').expect(301);
  assert.equal(rev.headers.location, 'http://www.shop.example.test/x');
  const bad = await onPlatform('patch', '/api/v1/tenants/dom-one/domains/shop.example.test', deployOne).send({ redirect: 'to-apex' }).expect(400);
  assert.match(bad.body.error.message, /www/);
  await onPlatform('patch', '/api/v1/tenants/dom-one/domains/shop.example.test', deployOne).send({ redirect: 'none' }).expect(200);
});

test('wildcards: admin only; a name under one is served unless an exact name says otherwise', async () => {
  const w = await onPlatform('post', '/api/v1/tenants/dom-two/domains', p.adminToken).send({ domain: '*.Wild.Example.Test' }).expect(201);
  assert.equal(w.body.domain, '*.wild.example.test');
  assert.equal(w.body.wildcard, true);
  assert.match((await api().get('/').set('Host', 'a.wild.example.test').expect(200)).text, /dom-two/);
  await api().get('/').set('Host', 'wild.example.test').expect(404);
  await api().get('/').set('Host', 'a.b.wild.example.test').expect(404);
  await onPlatform('post', '/api/v1/tenants/dom-one/domains', p.adminToken).send({ domain: 'exact.wild.example.test' }).expect(201);
  assert.match((await api().get('/').set('Host', 'exact.wild.example.test').expect(200)).text, /dom-one/);
  const shown = await onPlatform('get', `/api/v1/tenants/dom-two/domains/${encodeURIComponent('*.wild.example.test')}`, deployTwo).expect(200);
  assert.equal(shown.body.verified, true);
});

test('GET /api/v1/tls/ask answers 200 only for verified names (and the platform host), without a token', async () => {
  const ask = (d: string) => api().get(`/api/v1/tls/ask?domain=${encodeURIComponent(d)}`).set('Host', 'localhost');
  assert.equal((await ask('shop.example.test')).status, 200);
  assert.equal((await ask('SHOP.example.test.')).status, 200);
  assert.equal((await ask('dom-one.localhost')).status, 200);
  assert.equal((await ask('localhost')).status, 200);
  assert.equal((await ask('pending.example.test')).status, 404);
  assert.equal((await ask('nobody.example.test')).status, 404);
  assert.equal((await ask('a.wild.example.test')).status, 404, 'a wildcard does not ask for a certificate per name');
  assert.equal((await api().get('/api/v1/tls/ask').set('Host', 'localhost')).status, 400);
});

test('removal: live at once, audited; the default domain stays with its tenant', async () => {
  await onPlatform('delete', '/api/v1/tenants/dom-one/domains/exact.wild.example.test', deployOne).expect(204);
  assert.match((await api().get('/').set('Host', 'exact.wild.example.test').expect(200)).text, /dom-two/, 'the wildcard takes over');
  await onPlatform('delete', '/api/v1/tenants/dom-one/domains/nothere.example.test', deployOne).expect(404);
  const def = await onPlatform('delete', '/api/v1/tenants/dom-one/domains/dom-one.localhost', deployOne).expect(409);
  assert.equal(def.body.error.code, 'conflict');
  const actions = p.platform.store.audit.forTenant('dom-one', 100).map((e) => `${e.action} ${String(e.detail.domain ?? '')}`);
  for (const a of ['domain.add shop.example.test', 'domain.add pending.example.test', 'domain.update shop.example.test', 'domain.remove exact.wild.example.test']) {
    assert.ok(actions.includes(a), `audit has "${a}": ${actions.join(', ')}`);
  }
});

test('tenantry domains add|list|verify|remove', async () => {
  const env = { TENANTRY_URL: `http://localhost:${p.port}`, TENANTRY_TOKEN: deployOne };
  const add = await runCli(['domains', 'add', 'cli.example.test', '--tenant', 'dom-one'], env);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, /cli\.example\.test: pending/);
  assert.match(add.stdout, /_tenantry\.cli\.example\.test\s+"tenantry-verify=/);
  assert.match(add.stdout, /^then: tenantry domains verify cli\.example\.test --tenant dom-one$/m, 'the next command, ready to paste');
  const list = await runCli(['domains', 'list', '--tenant', 'dom-one'], env);
  assert.match(list.stdout, /^cli\.example\.test\s+pending\s+none$/m);
  assert.match(list.stdout, /^shop\.example\.test\s+verified\s+none$/m);
  // No DNS server answers for example.test here: refused, with the reasons, in one line.
  const verify = await runCli(['domains', 'verify', 'cli.example.test', '--tenant', 'dom-one', '--method', 'http'], env);
  assert.equal(verify.code, 1);
  assert.equal(verify.stderr.trim().split('\n').length, 1);
  assert.match(verify.stderr, /not proven yet: HTTP: .*\(verification_failed, HTTP 409\)/);
  const rm = await runCli(['domains', 'remove', 'cli.example.test', '--tenant', 'dom-one'], env);
  assert.equal(rm.code, 0, rm.stderr);
  const usage = await runCli(['domains', 'add', 'x.example.test'], env);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /missing --tenant/);
});

test("a tenant's deletion frees its names for others", async () => {
  await api().post('/api/v1/tenants').set('Host', 'localhost').set('Authorization', admin()).send({ id: 'dom-three', domains: ['three.example.test'] }).expect(201);
  await api().delete('/api/v1/tenants/dom-three').set('Host', 'localhost').set('Authorization', admin()).expect(204);
  await onPlatform('post', '/api/v1/tenants/dom-two/domains', p.adminToken).send({ domain: 'three.example.test' }).expect(201);
});

test('a tenant holds at most 100 domains (its default one included); the admin is not bound by it', async () => {
  await api().post('/api/v1/tenants').set('Host', 'localhost').set('Authorization', admin()).send({ id: 'dom-many' }).expect(201);
  const token = await tokenFor('dom-many', ['deploy']);
  for (let i = 1; i < 100; i++) await onPlatform('post', '/api/v1/tenants/dom-many/domains', token).send({ domain: `n${i}.many.example.test` }).expect(201);
  const over = await onPlatform('post', '/api/v1/tenants/dom-many/domains', token).send({ domain: 'n100.many.example.test' }).expect(409);
  assert.match(over.body.error.message, /at most 100 domains/);
  await onPlatform('post', '/api/v1/tenants/dom-many/domains', p.adminToken).send({ domain: 'n100.many.example.test' }).expect(201);
});
