// The audit trail: a row for every change through the API (failures too) and
// every git push, with who, which tenant, from where and the outcome; read
// back through GET /api/v1/audit (a read token sees its own tenant only).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { runCli, startTestPlatform, tempDir, type TestPlatform } from './helpers/harness.js';
import { api, createTenant, deployOk, deploySite } from './helpers/worker-sites.js';
import { gitAvailable, gitClient, writeTree } from './helpers/git-client.js';
import { MIGRATIONS } from '../server/db/migrations.js';
import { openDatabase } from '../server/db/database.js';
import { Store } from '../server/db/store.js';
import { AuditRetention } from '../server/audit/audit-retention.js';
import { silentLogger } from '../server/log.js';

interface Entry {
  id: number;
  at: string;
  actor: string;
  actorName: string | null;
  address: string | null;
  action: string;
  tenantId: string | null;
  outcome: 'success' | 'failure';
  code: string | null;
  detail: Record<string, unknown>;
}

let p: TestPlatform;
let deployToken: string;
let deployTokenId: string;
let readToken: string;

async function entries(query = '', token = p.adminToken): Promise<Entry[]> {
  const res = await api(p, 'GET', `/api/v1/audit${query}`, undefined, token);
  assert.equal(res.status, 200, res.body);
  return (JSON.parse(res.body) as { entries: Entry[] }).entries;
}

function find(list: Entry[], action: string, outcome: 'success' | 'failure' = 'success'): Entry {
  const e = list.find((x) => x.action === action && x.outcome === outcome);
  assert.ok(e, `a ${outcome} row for ${action} in ${JSON.stringify(list.map((x) => `${x.action}/${x.outcome}`))}`);
  return e;
}

before(async () => {
  p = await startTestPlatform();
  await createTenant(p, 'aud-one');
  await createTenant(p, 'aud-two');
  const d = JSON.parse((await api(p, 'POST', '/api/v1/tenants/aud-one/tokens', { name: 'ci-deploy', scopes: ['deploy'] })).body) as { token: string; id: string };
  deployToken = d.token;
  deployTokenId = d.id;
  readToken = (JSON.parse((await api(p, 'POST', '/api/v1/tenants/aud-one/tokens', { name: 'reader', scopes: ['read'] })).body) as { token: string }).token;
});
after(() => p.cleanup());

test('tenant and token changes: who, what, which tenant, from where, outcome', async () => {
  const list = await entries('?tenant=aud-one');
  const created = find(list, 'tenant.create');
  assert.equal(created.actor, 'admin');
  assert.equal(created.tenantId, 'aud-one');
  assert.equal(created.address, '127.0.0.1');
  assert.equal(created.code, null);
  const token = list.find((e) => e.action === 'token.create' && e.detail.name === 'ci-deploy');
  assert.ok(token);
  assert.equal(token.actor, 'admin');

  // A refused change is recorded too: the deploy token may not create tokens.
  const refused = await api(p, 'POST', '/api/v1/tenants/aud-one/tokens', { name: 'x' }, deployToken);
  assert.equal(refused.status, 403);
  const failure = find(await entries('?tenant=aud-one&limit=1'), 'token.create', 'failure');
  assert.equal(failure.actor, `token:${deployTokenId}`);
  assert.equal(failure.actorName, 'ci-deploy');
  assert.equal(failure.code, 'forbidden');
  assert.equal(failure.address, '127.0.0.1');

  // Without a valid token: anonymous, unauthorized.
  await api(p, 'DELETE', '/api/v1/tenants/aud-two', undefined, 'tnt_wrong');
  const anon = find(await entries('?tenant=aud-two&limit=1'), 'tenant.delete', 'failure');
  assert.equal(anon.actor, 'anonymous');
  assert.equal(anon.code, 'unauthorized');
  assert.equal(anon.detail.refusals, 1);
  // A flood of them from one address is sampled, not written row by row: the trail cannot be filled.
  for (let i = 0; i < 10; i++) await api(p, "DELETE", "/api/v1/tenants/aud-two", undefined, `tnt_wrong${i}`);
  const anonRows = (await entries('?tenant=aud-two')).filter((e) => e.actor === 'anonymous');
  assert.equal(anonRows.length, 1, 'one row per address per minute for callers that name no one');

  // Deleting a token, then a tenant.
  const t = JSON.parse((await api(p, 'POST', '/api/v1/tenants/aud-two/tokens', { name: 'tmp' })).body) as { id: string };
  assert.equal((await api(p, 'DELETE', `/api/v1/tenants/aud-two/tokens/${t.id}`)).status, 204);
  assert.equal((await api(p, 'DELETE', '/api/v1/tenants/aud-two')).status, 204);
  const two = await entries('?tenant=aud-two');
  assert.equal(find(two, 'token.delete').detail.id, t.id);
  find(two, 'tenant.delete');
  assert.equal(two.filter((e) => e.action === 'tenant.delete' && e.outcome === 'success').length, 1, 'one row per change');
});

test('deploys, a failed deploy, a rollback and an env change, by a deploy token', async () => {
  const tokenP = { url: p.url, adminToken: deployToken };
  const first = await deployOk(tokenP, 'aud-one', { 'index.html': 'one' });
  await deployOk(tokenP, 'aud-one', { 'index.html': 'two' });
  const bad = await deploySite(tokenP, 'aud-one', { 'api/x.js': 'not javascript (' });
  assert.notEqual(bad.status, 201);
  assert.equal((await api(p, 'POST', `/api/v1/tenants/aud-one/deploys/${first}/activate`, undefined, deployToken)).status, 200);
  assert.equal((await api(p, 'PUT', '/api/v1/tenants/aud-one/env', { GREETING: 'hi' }, deployToken)).status, 200);
  assert.equal((await api(p, 'PUT', '/api/v1/tenants/aud-one/env', { 'bad key': 'x' }, deployToken)).status, 400);

  const list = await entries('?tenant=aud-one');
  for (const [action, outcome] of [
    ['deploy.create', 'success'],
    ['deploy.fail', 'failure'],
    ['deploy.activate', 'success'],
    ['env.set', 'success'],
    ['env.set', 'failure'],
  ] as const) {
    const e = find(list, action, outcome);
    assert.equal(e.actor, `token:${deployTokenId}`, action);
    assert.equal(e.actorName, 'ci-deploy', action);
    assert.equal(e.address, '127.0.0.1', action);
    assert.equal(e.tenantId, 'aud-one', action);
    if (outcome === 'failure') assert.ok(e.code, `${action} failure has a code`);
  }
  assert.equal(find(list, 'deploy.activate').detail.id, first);
  assert.equal(list.filter((e) => e.action === 'deploy.fail').length, 1, 'the failed deploy is one row, not two');
  // Newest first.
  assert.ok(list.every((e, i) => i === 0 || list[i - 1]!.id > e.id));
});

test('git push leaves a row', async (t) => {
  if (!gitAvailable()) return t.skip('git is not installed');
  const scratch = tempDir('tenantry-audit-git-');
  const git = gitClient(path.join(scratch, 'home'));
  const work = path.join(scratch, 'work');
  assert.equal((await git(['init', '-q', work])).code, 0);
  writeTree(work, { 'index.html': 'pushed' });
  await git(['add', '.'], { cwd: work });
  await git(['commit', '-qm', 'site'], { cwd: work });
  const push = await git(['push', `http://x:${deployToken}@localhost:${p.port}/git/aud-one.git`, 'HEAD:main'], { cwd: work });
  assert.equal(push.code, 0, push.stderr);
  const e = find(await entries('?tenant=aud-one&limit=5'), 'git.push');
  assert.equal(e.actor, `token:${deployTokenId}`);
  assert.equal(e.actorName, 'ci-deploy');
  assert.equal(e.address, '127.0.0.1');
  assert.equal(e.detail.ref, 'refs/heads/main');
});

test('a read token sees its own tenant only; limit is bounded', async () => {
  const own = await entries('', readToken);
  assert.ok(own.length > 0);
  assert.ok(own.every((e) => e.tenantId === 'aud-one'));
  const other = await api(p, 'GET', '/api/v1/audit?tenant=aud-two', undefined, readToken);
  assert.equal(other.status, 403);
  const all = await entries('?limit=1000');
  assert.ok(all.some((e) => e.tenantId === 'aud-two'), 'the admin sees every tenant');
  assert.equal((await entries('?limit=2')).length, 2);
  const tooMany = await api(p, 'GET', '/api/v1/audit?limit=1001');
  assert.equal(tooMany.status, 400);
  assert.equal(JSON.parse(tooMany.body).error.code, 'invalid_query');
  assert.equal((await api(p, 'GET', '/api/v1/audit?limit=0')).status, 400);
  assert.equal((await api(p, 'GET', '/api/v1/audit', undefined, deployToken)).status, 403, 'read scope needed');
});

test('tenantry audit prints the trail', async () => {
  const res = await runCli(['audit', '--tenant', 'aud-one', '--limit', '3'], { TENANTRY_URL: `http://localhost:${p.port}`, TENANTRY_TOKEN: p.adminToken });
  assert.equal(res.code, 0, res.stderr);
  const lines = res.stdout.trim().split('\n');
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /aud-one/);
  assert.match(lines[0]!, /127\.0\.0\.1/);
});

test('old rows are pruned; rows from before the migration keep their values', () => {
  const file = path.join(tempDir('tenantry-audit-db-'), 'platform.db');
  // A database at version 2 with an audit row, then migrated.
  const v2 = openDatabase(file, MIGRATIONS.filter((m) => m.version <= 2));
  v2.prepare("INSERT INTO audit_log (at, actor, action, tenant_id, detail) VALUES ('2020-01-01T00:00:00.000Z', 'admin', 'tenant.create', 'old', '{}')").run();
  v2.close();
  const db = openDatabase(file);
  const store = new Store(db);
  const [old] = store.audit.list({ limit: 10 });
  assert.equal(old?.actor, 'admin');
  assert.equal(old?.outcome, 'success');
  assert.equal(old?.address, null);
  store.audit.record({ actor: { id: 'admin', address: '10.0.0.1' }, action: 'tenant.update', tenantId: 'old' });
  const retention = new AuditRetention(store, 90, silentLogger);
  retention.close();
  const left = store.audit.list({ limit: 10 });
  assert.deepEqual(left.map((e) => e.action), ['tenant.update']);
  db.close();
});
