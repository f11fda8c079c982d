// Pushes refused before a deploy leave audit rows, written from what the real
// git client does over HTTP: a wrong token, a token without `deploy` or of
// another tenant, a pack over the size cap; a push to a branch that is not
// deployed is recorded as stored. Refusals that name no one are sampled, so a
// flood of wrong tokens cannot fill the trail.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, startTestPlatform, tempDir, type TestPlatform } from './helpers/harness.js';
import { api, createTenant } from './helpers/worker-sites.js';
import { gitAvailable, gitClient, writeTree } from './helpers/git-client.js';
import { RefusalSampler } from '../server/audit/refusal-sampler.js';

interface Entry {
  id: number;
  actor: string;
  actorName: string | null;
  address: string | null;
  action: string;
  tenantId: string | null;
  outcome: 'success' | 'failure';
  code: string | null;
  detail: Record<string, unknown>;
}

const skip = gitAvailable() ? false : 'git is not installed';
const TENANT = 'agr-one';
let p: TestPlatform;
let scratch: string;
let work: string;
let git: ReturnType<typeof gitClient>;
const tokens: Record<string, { token: string; id: string }> = {};

before(async () => {
  // The loopback peer is a trusted proxy here, so each test pushes "from" an address of its own.
  p = await startTestPlatform({ TENANTRY_TRUSTED_PROXIES: '127.0.0.1' });
  await createTenant(p, TENANT, { limits: { archiveMB: 1 } });
  await createTenant(p, 'agr-two');
  const mk = async (tenant: string, name: string, scopes: string[]) => {
    tokens[name] = JSON.parse((await api(p, 'POST', `/api/v1/tenants/${tenant}/tokens`, { name, scopes })).body) as { token: string; id: string };
  };
  await mk(TENANT, 'deployer', ['deploy']);
  await mk(TENANT, 'reader', ['read']);
  await mk('agr-two', 'neighbour', ['deploy']);
  scratch = tempDir('tenantry-audit-refusals-');
  git = gitClient(path.join(scratch, 'home'));
  work = path.join(scratch, 'work');
  if (skip) return;
  assert.equal((await git(['init', '-q', work])).code, 0);
  writeTree(work, { 'index.html': '<h1>audited</h1>' });
  await git(['add', '.'], { cwd: work });
  await git(['commit', '-qm', 'site'], { cwd: work });
});
after(async () => {
  await p?.cleanup();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** A push from `address` (as the trusted proxy says) with `token`. */
function push(token: string, address: string, refspec = 'HEAD:main', repo = TENANT) {
  return git(['-c', `http.extraHeader=X-Forwarded-For: ${address}`, 'push', `http://x:${token}@localhost:${p.port}/git/${repo}.git`, refspec], { cwd: work });
}

async function rowsFrom(address: string): Promise<Entry[]> {
  const res = await api(p, 'GET', '/api/v1/audit?limit=1000');
  return (JSON.parse(res.body) as { entries: Entry[] }).entries.filter((e) => e.address === address && e.action === 'git.push');
}

test('a wrong token: one row, anonymous, from where, for the tenant named', { skip }, async () => {
  const from = '203.0.113.10';
  const r = await push('tnt_wrong', from);
  assert.notEqual(r.code, 0);
  const rows = await rowsFrom(from);
  assert.equal(rows.length, 1, 'the credential-less first request of the client is not a refusal: one row per push');
  assert.equal(rows[0]!.outcome, 'failure');
  assert.equal(rows[0]!.code, 'unauthorized');
  assert.equal(rows[0]!.actor, 'anonymous');
  assert.equal(rows[0]!.tenantId, TENANT);
  assert.equal(rows[0]!.detail.refusals, 1);
});

test('a token without deploy, and a token of another tenant: rows naming the token', { skip }, async () => {
  const from = '203.0.113.11';
  assert.notEqual((await push(tokens.reader!.token, from)).code, 0);
  assert.notEqual((await push(tokens.neighbour!.token, from)).code, 0);
  const rows = await rowsFrom(from);
  const reader = rows.find((e) => e.actor === `token:${tokens.reader!.id}`);
  assert.ok(reader, JSON.stringify(rows));
  assert.equal(reader.code, 'forbidden');
  assert.equal(reader.actorName, 'reader');
  assert.equal(reader.tenantId, TENANT);
  assert.match(String(reader.detail.reason), /deploy/);
  const neighbour = rows.find((e) => e.actor === `token:${tokens.neighbour!.id}`);
  assert.ok(neighbour);
  assert.equal(neighbour.code, 'forbidden');
  assert.equal(neighbour.tenantId, TENANT, 'recorded against the tenant it tried to push to');
  assert.match(String(neighbour.detail.reason), /another tenant/);
  // The admin pushing to a tenant that does not exist.
  assert.notEqual((await push(p.adminToken, from, 'HEAD:main', 'agr-nobody')).code, 0);
  const missing = (await rowsFrom(from)).find((e) => e.actor === 'admin');
  assert.equal(missing?.code, 'tenant_not_found');
  assert.equal(missing?.tenantId, null);
  assert.equal(missing?.detail.repository, 'agr-nobody');
});

test('a pack over the size cap, refused by git before the hook: a row with the refs and sizes', { skip }, async () => {
  const from = '203.0.113.12';
  fs.writeFileSync(path.join(work, 'big.bin'), crypto.randomBytes(2 * 1024 * 1024));
  await git(['add', 'big.bin'], { cwd: work });
  await git(['commit', '-qm', 'big'], { cwd: work });
  try {
    const r = await push(tokens.deployer!.token, from);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /exceeds maximum allowed size/);
    const rows = await rowsFrom(from);
    assert.equal(rows.length, 1, JSON.stringify(rows, null, 1));
    const e = rows[0]!;
    assert.equal(e.code, 'payload_too_large');
    assert.equal(e.actor, `token:${tokens.deployer!.id}`);
    assert.deepEqual(e.detail.refs, ['refs/heads/main']);
    assert.ok(Number(e.detail.receivedBytes) > Number(e.detail.maxPackBytes), JSON.stringify(e.detail));
    assert.equal(e.detail.maxPackBytes, 1024 * 1024);
  } finally {
    await git(['reset', '-q', '--hard', 'HEAD~1'], { cwd: work });
  }
});

test('a push to a branch that is not deployed is recorded as stored, not deployed', { skip }, async () => {
  const from = '203.0.113.13';
  const r = await push(tokens.deployer!.token, from, 'HEAD:refs/heads/feature');
  assert.equal(r.code, 0, r.stderr);
  const rows = await rowsFrom(from);
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.outcome, 'success');
  assert.deepEqual(rows[0]!.detail.refs, ['refs/heads/feature']);
  assert.equal(rows[0]!.detail.deployed, false);
});

test('a flood of wrong tokens is sampled: one row per address and minute, a bounded number in all', { skip }, async () => {
  const refused = (address: string) =>
    httpRequest(p.url, {
      host: 'localhost',
      path: `/git/${TENANT}.git/info/refs?service=git-receive-pack`,
      headers: { Authorization: `Basic ${Buffer.from('x:tnt_flood').toString('base64')}`, 'X-Forwarded-For': address },
    });
  const one = '198.51.100.1';
  for (let i = 0; i < 40; i++) assert.ok([401, 429].includes((await refused(one)).status));
  assert.equal((await rowsFrom(one)).length, 1, '40 refusals (wrong token, then throttled) from one address: one row');
  const before = (await api(p, 'GET', '/api/v1/audit?limit=1000').then((r) => JSON.parse(r.body) as { entries: Entry[] })).entries.length;
  for (let i = 0; i < 100; i++) await refused(`198.51.101.${i}`);
  const afterRows = (JSON.parse((await api(p, 'GET', '/api/v1/audit?limit=1000')).body) as { entries: Entry[] }).entries;
  const added = afterRows.length - before;
  assert.ok(added <= 60, `at most 60 rows a minute for refusals that name no one: ${added}`);
  assert.ok(added > 0);
  // A real push with the right token is still recorded.
  const ok = await push(tokens.deployer!.token, '198.51.102.1');
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal((await rowsFrom('198.51.102.1'))[0]?.detail.deploy !== undefined, true);
});

test('the sampler: what is held back is counted in the next row', () => {
  let now = 0;
  const s = new RefusalSampler({ windowMs: 1000, perWindow: 2 }, () => now);
  assert.deepEqual(s.admit('a'), { refusals: 1, heldElsewhere: 0 });
  assert.equal(s.admit('a'), undefined);
  assert.equal(s.admit('a'), undefined);
  assert.deepEqual(s.admit('b'), { refusals: 1, heldElsewhere: 0 });
  assert.equal(s.admit('c'), undefined, 'over the cap for all addresses');
  now = 1000;
  assert.deepEqual(s.admit('a'), { refusals: 3, heldElsewhere: 1 }, 'two held back from a, one from c');
  assert.deepEqual(s.admit('c'), { refusals: 1, heldElsewhere: 0 });
});
