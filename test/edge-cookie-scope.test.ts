// Cookie tossing across tenants: a tenant's api/ code may set cookies only for
// its own host name. Domain attributes naming a parent domain (shared with
// other tenants and the platform host) are removed, leaving host-only cookies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform } from './helpers/harness.js';
import { createTenant, deployOk, site } from './helpers/worker-sites.js';
import { scopeSetCookie } from '../server/edge/proxy/cookie-scope.js';

test('Domain attributes other than the host itself are removed', () => {
  const host = 'acme.example.com';
  assert.equal(scopeSetCookie('sid=x; Path=/; HttpOnly', host), 'sid=x; Path=/; HttpOnly');
  assert.equal(scopeSetCookie('sid=x; Domain=example.com; Path=/', host), 'sid=x; Path=/');
  assert.equal(scopeSetCookie('sid=x; domain=.EXAMPLE.com', host), 'sid=x');
  assert.equal(scopeSetCookie('sid=x;Domain=com;Domain=example.com; Secure', host), 'sid=x; Secure');
  assert.equal(scopeSetCookie('sid=x; Domain=acme.example.com', host), 'sid=x; Domain=acme.example.com');
  assert.equal(scopeSetCookie('sid=x; Domain=.Acme.Example.com', host), 'sid=x; Domain=.Acme.Example.com');
  assert.equal(scopeSetCookie('domain=x; Path=/', host), 'domain=x; Path=/', 'a cookie named domain is not an attribute');
});

test("a tenant's route cannot set cookies for the parent domain", async () => {
  const p = await startTestPlatform();
  try {
    await createTenant(p, 'cookiea');
    await deployOk(p, 'cookiea', {
      'public/index.html': 'a',
      'api/login.js': `module.exports = (req, res) => {
  res.setHeader('Set-Cookie', ['sid=attacker; Domain=localhost; Path=/', 'csrf=x; Domain=.localhost', 'own=1; Domain=cookiea.localhost', 'plain=1; HttpOnly']);
  res.json({ ok: true });
};`,
    });
    const res = await site(p, 'cookiea', '/api/login');
    assert.equal(res.status, 200, res.body);
    const cookies = res.headers['set-cookie'] ?? [];
    assert.deepEqual(cookies, ['sid=attacker; Path=/', 'csrf=x', 'own=1; Domain=cookiea.localhost', 'plain=1; HttpOnly']);
  } finally {
    await p.cleanup();
  }
});
