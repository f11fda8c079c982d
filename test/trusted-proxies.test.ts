// TENANTRY_TRUSTED_PROXIES: X-Forwarded-For / -Proto are believed only from
// the configured peers, for the worker's X-Forwarded-*, the access log, the
// wrong-token throttle, the connection caps and the HTTPS redirect; from
// anyone else they are ignored. Loopback aliases stand in for the proxy
// (127.0.0.2, trusted) and for a client talking directly (127.0.0.3).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { IncomingMessage } from 'node:http';
import { loadConfig, ConfigError } from '../server/config.js';
import { parseTrustedProxies } from '../server/model/client-origin.js';
import { startTestPlatform, type HttpAnswer, type TestPlatform } from './helpers/harness.js';
import { apiJson, createTenant } from './helpers/deploy-archives.js';
import { deployOk } from './helpers/worker-sites.js';

const PROXY = '127.0.0.2';
const DIRECT = '127.0.0.3';
let p: TestPlatform;

function from(localAddress: string, host: string, reqPath: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: p.port, localAddress, path: reqPath, headers: { Host: host, ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

function fakeRequest(peer: string, headers: Record<string, string>, encrypted = false): IncomingMessage {
  return { socket: { remoteAddress: peer, encrypted }, headers } as unknown as IncomingMessage;
}

before(async () => {
  p = await startTestPlatform({ TENANTRY_TRUSTED_PROXIES: `${PROXY}, 10.9.0.0/16`, TENANTRY_MAX_CONNECTIONS_PER_ADDRESS: '3' });
  await createTenant(p.url, p.adminToken, 'proxied', { domains: ['proxied.example.test'] });
  await deployOk(p, 'proxied', {
    'public/index.html': '<h1>proxied</h1>',
    'api/echo.js': "exports.GET = (req, res) => res.json({ proto: req.headers['x-forwarded-proto'], for: req.headers['x-forwarded-for'] });",
  });
});
after(() => p.cleanup());

test('the list is parsed once into addresses and CIDRs; a bad entry stops the start naming the setting', () => {
  const t = parseTrustedProxies('10.0.0.1, 192.168.0.0/16, ::1, fd00::/8');
  for (const a of ['10.0.0.1', '192.168.44.3', '::ffff:192.168.1.1', '::1', 'fd00::5']) assert.equal(t.trusts(a), true, a);
  for (const a of ['10.0.0.2', '192.169.0.1', '::2', '', 'garbage']) assert.equal(t.trusts(a), false, a);
  for (const bad of ['10.0.0.300', '10.0.0.0/33', 'proxy.example.com', '1.2.3.4/8/9']) {
    assert.throws(() => loadConfig([], { TENANTRY_TRUSTED_PROXIES: bad }), (e: unknown) => e instanceof ConfigError && /TENANTRY_TRUSTED_PROXIES/.test(e.message), bad);
  }
  assert.equal(loadConfig([], {}).trustedProxies.any, false);
  assert.deepEqual(loadConfig([], { TENANTRY_DNS_SERVERS: '127.0.0.1:5353, [::1]:53,8.8.8.8' }).dnsServers, ['127.0.0.1:5353', '[::1]:53', '8.8.8.8']);
  assert.throws(() => loadConfig([], { TENANTRY_DNS_SERVERS: 'dns.example.com:53' }), /TENANTRY_DNS_SERVERS/);
  assert.throws(() => loadConfig([], { TENANTRY_ACME_DIRECTORY_URL: 'not a url' }), /TENANTRY_ACME_DIRECTORY_URL/);
  assert.throws(() => loadConfig([], { TENANTRY_ACME_CA_FILE: '/nonexistent/ca.pem' }), /TENANTRY_ACME_CA_FILE.*no such file/);
});

test('from a trusted peer, the right-most untrusted X-Forwarded-For hop is the client; from others the headers are ignored', () => {
  const t = parseTrustedProxies('127.0.0.2, 10.9.0.0/16');
  const via = t.originOf(fakeRequest('127.0.0.2', { 'x-forwarded-for': '6.6.6.6, 203.0.113.7, 10.9.1.1', 'x-forwarded-proto': 'https' }));
  assert.deepEqual(via, { address: '203.0.113.7', secure: true, viaProxy: true });
  const direct = t.originOf(fakeRequest('198.51.100.9', { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https' }));
  assert.deepEqual(direct, { address: '198.51.100.9', secure: false, viaProxy: false });
  const noHeader = t.originOf(fakeRequest('::ffff:127.0.0.2', {}, true));
  assert.deepEqual(noHeader, { address: '127.0.0.2', secure: true, viaProxy: true });
  const junk = t.originOf(fakeRequest('127.0.0.2', { 'x-forwarded-for': 'unknown, 203.0.113.7', 'x-forwarded-proto': 'gopher' }));
  assert.deepEqual(junk, { address: '203.0.113.7', secure: false, viaProxy: true });
});

test("the worker's X-Forwarded-* and the access log: believed from the proxy, not from a direct client", async () => {
  const claims = { 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https' };
  const viaProxy = await from(PROXY, 'proxied.example.test', '/api/echo', claims);
  assert.equal(viaProxy.status, 200, viaProxy.body);
  assert.deepEqual(JSON.parse(viaProxy.body), { proto: 'https', for: '203.0.113.7' });
  const direct = await from(DIRECT, 'proxied.example.test', '/api/echo', claims);
  assert.deepEqual(JSON.parse(direct.body), { proto: 'http', for: DIRECT });
  await new Promise((r) => setTimeout(r, 100));
  const logs = await apiJson(p.url, p.adminToken, 'GET', '/api/v1/tenants/proxied/logs?lines=50');
  const text = JSON.stringify(logs.json);
  assert.match(text, /access GET \/api\/echo 200 \d+ms 203\.0\.113\.7/);
  assert.match(text, /access GET \/api\/echo 200 \d+ms 127\.0\.0\.3/);
});

test('the wrong-token throttle counts the client behind the proxy, and the socket for everyone else', async () => {
  const wrong = (i: number) => ({ Authorization: `Bearer wrong-${String(i).padStart(8, '0')}-token` });
  for (let i = 0; i < 20; i++) {
    const r = await from(PROXY, 'localhost', '/api/v1/tenants', { ...wrong(i), 'X-Forwarded-For': '203.0.113.50' });
    assert.equal(r.status, 401);
  }
  assert.equal((await from(PROXY, 'localhost', '/api/v1/tenants', { ...wrong(100), 'X-Forwarded-For': '203.0.113.50' })).status, 429);
  // Another client behind the same proxy is not slowed.
  assert.equal((await from(PROXY, 'localhost', '/api/v1/tenants', { ...wrong(101), 'X-Forwarded-For': '203.0.113.51' })).status, 401);
  // A direct client cannot dodge the throttle by making up X-Forwarded-For.
  for (let i = 200; i < 220; i++) {
    await from(DIRECT, 'localhost', '/api/v1/tenants', { ...wrong(i), 'X-Forwarded-For': `198.51.100.${i - 199}` });
  }
  assert.equal((await from(DIRECT, 'localhost', '/api/v1/tenants', { ...wrong(300), 'X-Forwarded-For': '198.51.100.99' })).status, 429);
});

test('the per-address connection cap does not apply to a trusted proxy (it carries many clients)', async () => {
  const open = async (localAddress: string, n: number) => {
    const sockets: net.Socket[] = [];
    for (let i = 0; i < n; i++) {
      const s = net.connect({ host: '127.0.0.1', port: p.port, localAddress });
      await new Promise<void>((resolve, reject) => {
        s.once('connect', () => resolve());
        s.once('error', reject);
      });
      sockets.push(s);
    }
    await new Promise((r) => setTimeout(r, 150));
    return sockets;
  };
  const proxied = await open(PROXY, 5);
  assert.equal(proxied.filter((s) => !s.destroyed).length, 5);
  const direct = await open(DIRECT, 5);
  const closed = direct.filter((s) => s.destroyed || s.readyState === 'closed' || s.readableEnded).length;
  assert.equal(closed, 2, 'only 3 connections for an address that is not a trusted proxy');
  for (const s of [...proxied, ...direct]) s.destroy();
});

test('the HTTPS redirect believes the proxy: it sends plain-HTTP visitors to https:// without a port, and leaves HTTPS alone', async () => {
  await apiJson(p.url, p.adminToken, 'PATCH', '/api/v1/tenants/proxied', { https: { redirect: true, hsts: true } });
  const plain = await from(PROXY, 'proxied.example.test', '/page?x=1', { 'X-Forwarded-Proto': 'http' });
  assert.equal(plain.status, 301);
  assert.equal(plain.headers.location, 'https://proxied.example.test/page?x=1');
  const secure = await from(PROXY, 'proxied.example.test', '/', { 'X-Forwarded-Proto': 'https' });
  assert.equal(secure.status, 200);
  assert.equal(secure.headers['strict-transport-security'], 'max-age=31536000');
  // A direct client claiming HTTPS is not believed, and there is no HTTPS listener here to send it to.
  const claimed = await from(DIRECT, 'proxied.example.test', '/', { 'X-Forwarded-Proto': 'https' });
  assert.equal(claimed.status, 200);
  assert.equal(claimed.headers['strict-transport-security'], undefined);
});
