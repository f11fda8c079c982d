// Dashboard sessions over plain HTTP and HTTPS, without a browser: the cookie's
// name and attributes, sign-in only from the platform's own origin, CSRF token
// and Origin on every change, a planted cookie ignored, a revoked token or a
// sign-out ending the session, bearer tokens untouched.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { startTestPlatform, type HttpAnswer, type TestPlatform } from './helpers/harness.js';

let p: TestPlatform;
let origin: string;

interface Req {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
  secure?: boolean;
}

function call(r: Req): Promise<HttpAnswer> {
  const port = r.secure ? p.httpsPort! : p.port;
  const host = `localhost:${port}`;
  const body = r.body === undefined ? undefined : JSON.stringify(r.body);
  const mod = r.secure ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      {
        host: '127.0.0.1',
        port,
        method: r.method ?? 'GET',
        path: r.path,
        servername: 'localhost',
        rejectUnauthorized: false,
        agent: false,
        headers: { Host: host, ...(body ? { 'Content-Type': 'application/json' } : {}), ...r.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function signIn(token: string, secure = false): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const port = secure ? p.httpsPort! : p.port;
  const res = await call({ method: 'POST', path: '/api/v1/session', body: { token }, secure, headers: { Origin: `${secure ? 'https' : 'http'}://localhost:${port}` } });
  assert.equal(res.status, 201, res.body);
  const setCookie = String(res.headers['set-cookie']?.[0]);
  return { cookie: setCookie.split(';')[0]!, csrf: JSON.parse(res.body).csrfToken, setCookie };
}

before(async () => {
  p = await startTestPlatform({ TENANTRY_HTTPS_PORT: '0' });
  origin = `http://localhost:${p.port}`;
  await p.platform.tenants.create({ id: 'acme' }, 'test');
});

after(async () => {
  await p?.cleanup();
});

test('over HTTPS the cookie is __Host- prefixed: Secure, HttpOnly, SameSite=Strict, Path=/, no Domain', async () => {
  const s = await signIn(p.adminToken, true);
  assert.match(s.setCookie, /^__Host-tenantry_session=[A-Za-z0-9_-]{40,}; Path=\/; HttpOnly; SameSite=Strict; Secure$/);
  const who = await call({ path: '/api/v1/session', secure: true, headers: { Cookie: s.cookie } });
  assert.equal(who.status, 200);
  assert.deepEqual(JSON.parse(who.body).principal, { kind: 'admin' });
  assert.equal(who.headers['cache-control'], 'no-store');
  // The plain-HTTP name is not accepted on HTTPS (and the reverse): each listener reads only its own.
  const plain = await call({ path: '/api/v1/session', secure: true, headers: { Cookie: s.cookie.replace('__Host-', '') } });
  assert.equal(plain.status, 401);
});

test('over plain HTTP the fallback name tenantry_session has the same attributes minus Secure', async () => {
  const s = await signIn(p.adminToken);
  assert.match(s.setCookie, /^tenantry_session=[A-Za-z0-9_-]{40,}; Path=\/; HttpOnly; SameSite=Strict$/);
});

test('sign-in only from the platform host itself (Origin), with a valid token', async () => {
  const body = { token: p.adminToken };
  assert.equal((await call({ method: 'POST', path: '/api/v1/session', body })).status, 403, 'no Origin');
  assert.equal((await call({ method: 'POST', path: '/api/v1/session', body, headers: { Origin: 'http://acme.localhost' } })).status, 403, 'a tenant origin');
  const wrong = await call({ method: 'POST', path: '/api/v1/session', body: { token: 'tnt_wrong' }, headers: { Origin: origin } });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers['set-cookie'], undefined);
});

test('the session works in place of a bearer token; changes need the CSRF token and the Origin', async () => {
  const s = await signIn(p.adminToken);
  const read = await call({ path: '/api/v1/tenants/acme/deploys', headers: { Cookie: s.cookie } });
  assert.equal(read.status, 200);
  const change = (headers: Record<string, string>) =>
    call({ method: 'PATCH', path: '/api/v1/tenants/acme/env', body: { A: '1' }, headers: { Cookie: s.cookie, ...headers } });
  const noCsrf = await change({ Origin: origin });
  assert.equal(noCsrf.status, 403, 'no CSRF token');
  assert.match(JSON.parse(noCsrf.body).error.message, /CSRF token is missing: send the session's token in the X-CSRF-Token header\. Scripts should send "Authorization: Bearer <token>"/);
  // Neither piece: the answer names both, not only the first it checked.
  const neither = JSON.parse((await change({})).body).error.message as string;
  assert.match(neither, /no Origin header/);
  assert.match(neither, /CSRF token is missing/);
  assert.equal((await change({ Origin: origin, 'X-CSRF-Token': s.csrf.slice(0, -1) + 'x' })).status, 403, 'a wrong token');
  assert.equal((await change({ 'X-CSRF-Token': s.csrf })).status, 403, 'no Origin');
  assert.equal((await change({ Origin: 'http://acme.localhost', 'X-CSRF-Token': s.csrf })).status, 403, "a tenant's origin");
  const ok = await change({ Origin: origin, 'X-CSRF-Token': s.csrf });
  assert.equal(ok.status, 200, ok.body);
  assert.deepEqual(JSON.parse(ok.body).keys, ['A']);
  // A bearer token needs neither.
  const bearer = await call({ method: 'PATCH', path: '/api/v1/tenants/acme/env', body: { B: '2' }, headers: { Authorization: `Bearer ${p.adminToken}` } });
  assert.equal(bearer.status, 200);
  assert.deepEqual(JSON.parse(bearer.body).keys, ['A', 'B']);
});

test('a planted second cookie is ignored; two live sessions in one request count as none', async () => {
  const s = await signIn(p.adminToken);
  const planted = `tenantry_session=${'x'.repeat(43)}`;
  const withPlanted = await call({ path: '/api/v1/session', headers: { Cookie: `${planted}; ${s.cookie}` } });
  assert.equal(withPlanted.status, 200);
  const other = await signIn(p.adminToken);
  const both = await call({ path: '/api/v1/session', headers: { Cookie: `${other.cookie}; ${s.cookie}` } });
  assert.equal(both.status, 401);
});

test('a tenant session is its token: its scopes, its tenant, and revoking the token ends it', async () => {
  const created = await call({ method: 'POST', path: '/api/v1/tenants/acme/tokens', body: { name: 'ro', scopes: ['read'] }, headers: { Authorization: `Bearer ${p.adminToken}` } });
  const { token, id } = JSON.parse(created.body);
  const s = await signIn(token);
  const who = JSON.parse((await call({ path: '/api/v1/session', headers: { Cookie: s.cookie } })).body);
  assert.deepEqual(who.principal, { kind: 'tenant', tenantId: 'acme', scopes: ['read'] });
  assert.equal((await call({ path: '/api/v1/tenants/acme/deploys', headers: { Cookie: s.cookie } })).status, 200);
  assert.equal((await call({ path: '/api/v1/tenants/demo/deploys', headers: { Cookie: s.cookie } })).status, 403);
  assert.equal((await call({ path: '/api/v1/tenants', headers: { Cookie: s.cookie } })).status, 403);
  const deploy = await call({ method: 'PATCH', path: '/api/v1/tenants/acme/env', body: { A: '1' }, headers: { Cookie: s.cookie, Origin: origin, 'X-CSRF-Token': s.csrf } });
  assert.equal(deploy.status, 403, 'the read scope may not change the environment');
  await call({ method: 'DELETE', path: `/api/v1/tenants/acme/tokens/${id}`, headers: { Authorization: `Bearer ${p.adminToken}` } });
  assert.equal((await call({ path: '/api/v1/tenants/acme/deploys', headers: { Cookie: s.cookie } })).status, 401);
});

test('sign-out needs the CSRF token, ends the session on the server and clears the cookie', async () => {
  const s = await signIn(p.adminToken);
  assert.equal((await call({ method: 'DELETE', path: '/api/v1/session', headers: { Cookie: s.cookie, Origin: origin } })).status, 403);
  const out = await call({ method: 'DELETE', path: '/api/v1/session', headers: { Cookie: s.cookie, Origin: origin, 'X-CSRF-Token': s.csrf } });
  assert.equal(out.status, 204);
  assert.match(String(out.headers['set-cookie']?.[0]), /^tenantry_session=; .*Max-Age=0/);
  assert.equal((await call({ path: '/api/v1/session', headers: { Cookie: s.cookie } })).status, 401);
  // The database holds only keyed hashes of session ids.
  const row = p.platform.store.sessions.get(s.cookie.split('=')[1]!);
  assert.equal(row, undefined);
});

test('the pages carry a CSP without inline script, and load their script as a module file', async () => {
  const home = await call({ path: '/' });
  assert.equal(home.status, 200);
  const csp = String(home.headers['content-security-policy']);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  // Never framed: the CSP and the older header agree.
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(home.headers['x-frame-options'], 'DENY');
  assert.match(home.body, /<script type="module" src="\/js\/index.js"><\/script>/);
  assert.doesNotMatch(home.body.replace(/<script type="module" src="[^"]+"><\/script>/g, ''), /<script/);
  for (const page of ['deploys', 'logs', 'domains', 'env', 'plugins', 'tokens']) {
    const r = await call({ path: `/${page}?t=acme` });
    assert.equal(r.status, 200, page);
    assert.match(r.body, new RegExp(`src="/js/${page}.js"`));
  }
});
