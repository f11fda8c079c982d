// Control API: tokens, scopes and the error format, exactly as the contract says.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import request from 'supertest';
import { startTestPlatform, type TestPlatform } from './helpers/harness.js';

let p: TestPlatform;
const api = () => request(p.server);
const admin = () => `Bearer ${p.adminToken}`;

before(async () => {
  p = await startTestPlatform();
  for (const id of ['auth-one', 'auth-two']) {
    await api().post('/api/v1/tenants').set('Host', 'localhost').set('Authorization', admin()).send({ id }).expect(201);
  }
});
after(() => p.cleanup());

function assertError(body: unknown, code: string) {
  const e = (body as { error?: { code?: string; message?: string } }).error;
  assert.ok(e, 'an error body');
  assert.equal(e.code, code);
  assert.ok(e.message && e.message.length > 5, 'a human message');
}

test('no token and a wrong token: 401 with the error format', async () => {
  const none = await api().get('/api/v1/tenants').set('Host', 'localhost').expect(401);
  assertError(none.body, 'unauthorized');
  const wrong = await api().get('/api/v1/tenants').set('Host', 'localhost').set('Authorization', 'Bearer tnt_nope').expect(401);
  assertError(wrong.body, 'unauthorized');
  const malformed = await api().get('/api/v1/tenants').set('Host', 'localhost').set('Authorization', 'Basic abc').expect(401);
  assertError(malformed.body, 'unauthorized');
});

test('the API answers only on the platform host', async () => {
  const res = await api().get('/api/v1/tenants').set('Host', 'auth-one.localhost').set('Authorization', admin());
  assert.notEqual(res.status, 200);
  assert.doesNotMatch(res.text, /auth-two/);
});

test('tenant tokens: scoped, bound to one tenant, shown once, stored hashed', async () => {
  const created = await api()
    .post('/api/v1/tenants/auth-one/tokens')
    .set('Host', 'localhost')
    .set('Authorization', admin())
    .send({ name: 'ci', scopes: ['read'] })
    .expect(201);
  const { token, id, scopes } = created.body as { token: string; id: string; scopes: string[] };
  assert.match(token, /^tnt_/);
  assert.ok(id);
  assert.deepEqual(scopes, ['read']);

  // Its own tenant with the read scope: allowed to reach read routes; not admin routes.
  const show = await api().get('/api/v1/tenants/auth-one').set('Host', 'localhost').set('Authorization', `Bearer ${token}`).expect(403);
  assertError(show.body, 'forbidden');
  // Another tenant: 403.
  const other = await api().post('/api/v1/tenants/auth-two/tokens').set('Host', 'localhost').set('Authorization', `Bearer ${token}`).send({}).expect(403);
  assertError(other.body, 'forbidden');
  // Admin-only listing: 403 for a tenant token.
  await api().get('/api/v1/tenants').set('Host', 'localhost').set('Authorization', `Bearer ${token}`).expect(403);

  // The token value never sits in the database file in clear.
  p.platform.store.db.pragma('wal_checkpoint(TRUNCATE)');
  const raw = fs.readFileSync(p.platform.paths.database);
  assert.equal(raw.includes(Buffer.from(token)), false, 'token value found in platform.db');
  assert.equal(raw.includes(Buffer.from(p.adminToken)), false, 'admin token found in platform.db');
  const db = new Database(p.platform.paths.database, { readonly: true });
  const rows = db.prepare('SELECT hash FROM tokens').all() as { hash: string }[];
  db.close();
  assert.ok(rows.length >= 1);
  for (const r of rows) assert.match(r.hash, /^[0-9a-f]{64}$/);
});

test('token scopes are validated', async () => {
  const bad = await api()
    .post('/api/v1/tenants/auth-one/tokens')
    .set('Host', 'localhost')
    .set('Authorization', admin())
    .send({ scopes: ['root'] })
    .expect(400);
  assertError(bad.body, 'invalid_request');
});

test('tenant ids: bad ids 400, duplicates 409, unknown 404', async () => {
  for (const id of ['A', 'a', '1abc', 'abc-', 'ab_c', 'x'.repeat(41), '../etc', 42, null]) {
    const res = await api().post('/api/v1/tenants').set('Host', 'localhost').set('Authorization', admin()).send({ id });
    assert.equal(res.status, 400, `id ${JSON.stringify(id)} gave ${res.status}`);
    assertError(res.body, 'invalid_tenant_id');
  }
  const ok40 = 'a' + 'b'.repeat(38) + 'c';
  await api().post('/api/v1/tenants').set('Host', 'localhost').set('Authorization', admin()).send({ id: ok40 }).expect(201);
  await api().delete(`/api/v1/tenants/${ok40}`).set('Host', 'localhost').set('Authorization', admin()).expect(204);

  const dup = await api().post('/api/v1/tenants').set('Host', 'localhost').set('Authorization', admin()).send({ id: 'auth-one' }).expect(409);
  assertError(dup.body, 'tenant_exists');
  const missing = await api().get('/api/v1/tenants/nobody-here').set('Host', 'localhost').set('Authorization', admin()).expect(404);
  assertError(missing.body, 'tenant_not_found');
});

test('malformed JSON and unknown fields are 400, not 500', async () => {
  const bad = await api()
    .post('/api/v1/tenants')
    .set('Host', 'localhost')
    .set('Authorization', admin())
    .set('Content-Type', 'application/json')
    .send('{"id": ')
    .expect(400);
  assertError(bad.body, 'invalid_json');
  const unknown = await api().post('/api/v1/tenants').set('Host', 'localhost').set('Authorization', admin()).send({ id: 'auth-x', colour: 'red' }).expect(400);
  assertError(unknown.body, 'invalid_request');
});

test('PATCH shows the effective limits; delete removes folder, domains and tokens', async () => {
  const patched = await api()
    .patch('/api/v1/tenants/auth-two')
    .set('Host', 'localhost')
    .set('Authorization', admin())
    .send({ limits: { memoryMB: 128 }, keepReleases: 3 })
    .expect(200);
  assert.equal(patched.body.limits.memoryMB, 128);
  assert.equal(patched.body.limits.pids, 128, 'defaults stay for the rest');
  assert.equal(patched.body.keepReleases, 3);
  await api().patch('/api/v1/tenants/auth-two').set('Host', 'localhost').set('Authorization', admin()).send({ limits: { memoryMB: 1 } }).expect(400);

  await api().post('/api/v1/tenants/auth-two/tokens').set('Host', 'localhost').set('Authorization', admin()).send({}).expect(201);
  const folder = p.platform.paths.tenant('auth-two');
  assert.ok(fs.existsSync(folder));
  await api().delete('/api/v1/tenants/auth-two').set('Host', 'localhost').set('Authorization', admin()).expect(204);
  assert.equal(fs.existsSync(folder), false);
  assert.equal(p.platform.store.tokens.forTenant('auth-two').length, 0);
  assert.equal(p.platform.store.domains.forTenant('auth-two').length, 0);
  const page = await request(p.server).get('/').set('Host', 'auth-two.localhost');
  assert.equal(page.status, 404);
});

test('custom domains given at creation by the admin serve at once; a taken domain is 409', async () => {
  await api()
    .post('/api/v1/tenants')
    .set('Host', 'localhost')
    .set('Authorization', admin())
    .send({ id: 'auth-three', domains: ['www.auth-three.test'] })
    .expect(201);
  const page = await request(p.server).get('/').set('Host', 'WWW.Auth-Three.test:8080');
  assert.equal(page.status, 200);
  assert.match(page.text, /auth-three/);
  const taken = await api()
    .post('/api/v1/tenants')
    .set('Host', 'localhost')
    .set('Authorization', admin())
    .send({ id: 'auth-four', domains: ['www.auth-three.test'] })
    .expect(409);
  assertError(taken.body, 'domain_taken');
  await api().get('/api/v1/tenants/auth-four').set('Host', 'localhost').set('Authorization', admin()).expect(404);
});
