// The certificate manager driven by a clock of the test's own and a stand-in
// CA: renewal a third of the life before the end, failures retried after a
// doubling back-off with a cap (never hammering the CA), a failed renewal
// keeping the old certificate serving, one issuance at a time, and never a
// request for a name that is not a verified domain of that tenant.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { openDatabase } from '../server/db/database.js';
import { Store } from '../server/db/store.js';
import { silentLogger } from '../server/log.js';
import { CertificateFiles } from '../server/tls/certificate-files.js';
import { SniContexts } from '../server/tls/sni-contexts.js';
import { CertificateManager, renewalTime } from '../server/tls/certificate-manager.js';
import type { CertificateIssuer } from '../server/tls/acme-issuer.js';
import { createSelfSigned } from '../server/tls/self-signed.js';
import { tempDir } from './helpers/harness.js';

const DAY = 86_400_000;
let dir: string;
let store: Store;
let now: number;
const calls: string[] = [];
let failWith: string | undefined;
let inFlight = 0;
let maxInFlight = 0;

/** Issues 90-day certificates starting at the test clock's now, after a short pause (to see overlap, if any). */
const issuer: CertificateIssuer = {
  async issue(domain) {
    calls.push(domain);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      await new Promise((r) => setTimeout(r, 20));
      if (failWith) throw new Error(failWith);
      return await createSelfSigned({ names: [domain], notBefore: new Date(now), days: 90 });
    } finally {
      inFlight--;
    }
  },
};

let manager: CertificateManager;
let sni: SniContexts;

before(() => {
  dir = tempDir('tenantry-certs-');
  store = new Store(openDatabase(path.join(dir, 'platform.db')));
  now = Date.parse('2030-01-01T00:00:00Z');
  for (const t of ['t-one', 't-two']) store.tenants.insert({ id: t });
  const verified = (domain: string, tenantId: string) => store.domains.insert({ domain, tenantId, verified: true, verificationToken: 'x', isDefault: false });
  verified('a.example.test', 't-one');
  verified('b.example.test', 't-one');
  verified('*.wild.example.test', 't-one');
  verified('t-one.localhost', 't-one');
  store.domains.insert({ domain: 'pending.example.test', tenantId: 't-two', verified: false, verificationToken: 'x', isDefault: false });
  sni = new SniContexts();
  manager = new CertificateManager({
    store,
    files: new CertificateFiles(path.join(dir, 'certs')),
    contexts: sni,
    issuer,
    log: silentLogger,
    backoff: { firstMs: 60_000, maxMs: 240_000 },
    now: () => now,
  });
});
after(() => {
  manager.close();
  store.db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('first issuance for verified names a CA signs, one at a time; none for pending, wildcard or *.localhost names', async () => {
  manager.start();
  assert.deepEqual(manager.view('a.example.test'), { status: 'pending' });
  await Promise.all([manager.runDue(), manager.runDue()]);
  assert.deepEqual([...calls].sort(), ['a.example.test', 'b.example.test']);
  assert.equal(maxInFlight, 1, 'one issuance at a time');
  const v = manager.view('a.example.test');
  assert.equal(v.status, 'issued');
  assert.equal(v.status === 'issued' && v.expiresAt, new Date(now + 90 * DAY).toISOString());
  for (const n of ['pending.example.test', '*.wild.example.test', 't-one.localhost']) assert.deepEqual(manager.view(n), { status: 'none' }, n);
  assert.ok(sni.has('a.example.test') && sni.has('b.example.test'));
});

test('renewal comes a third of the life before the end, not before', async () => {
  calls.length = 0;
  const renewAt = renewalTime({ notBefore: new Date(now), notAfter: new Date(now + 90 * DAY) }).getTime();
  assert.equal(renewAt, now + 60 * DAY);
  now = renewAt - 1000;
  await manager.runDue();
  assert.equal(calls.length, 0);
  now = renewAt + 1000;
  await manager.runDue();
  assert.deepEqual([...calls].sort(), ['a.example.test', 'b.example.test']);
  const v = manager.view('a.example.test');
  assert.equal(v.status === 'issued' && v.expiresAt, new Date(now + 90 * DAY).toISOString());
});

test('a failed renewal keeps the old certificate; failures back off, doubling up to the cap', async () => {
  calls.length = 0;
  const start = now;
  now = start + 60 * DAY + 2000;
  failWith = 'urn:ietf:params:acme:error:connection: connection refused';
  await manager.runDue();
  assert.deepEqual([...calls].sort(), ['a.example.test', 'b.example.test']);
  const v = manager.view('a.example.test');
  assert.equal(v.status, 'issued', 'still served');
  assert.match(v.status === 'issued' ? (v.error ?? '') : '', /connection refused/);
  assert.ok(sni.has('a.example.test'));

  const row = () => store.certificates.get('a.example.test')!;
  const waits: number[] = [];
  for (let i = 0; i < 4; i++) {
    const due = Date.parse(row().retryAt!);
    waits.push(due - now);
    calls.length = 0;
    now = due - 1;
    await manager.runDue();
    assert.equal(calls.length, 0, 'nothing before the back-off is over');
    now = due;
    await manager.runDue();
    assert.ok(calls.includes('a.example.test'));
  }
  assert.deepEqual(waits, [60_000, 120_000, 240_000, 240_000]);
  assert.equal(row().failures, 5);
  assert.ok(store.audit.forTenant('t-one', 100).some((e) => e.action === 'certificate.fail'));

  // Past the end of the old certificate, the status says so, with why.
  now = start + 91 * DAY;
  await manager.runDue();
  now = Date.parse(row().retryAt!);
  await manager.runDue();
  const failed = manager.view('a.example.test');
  assert.equal(failed.status, 'failed');
  assert.match(failed.status === 'failed' ? failed.error : '', /connection refused/);

  failWith = undefined;
  now = Date.parse(row().retryAt!);
  await manager.runDue();
  assert.equal(manager.view('a.example.test').status, 'issued');
  assert.equal(row().failures, 0);
});

test('a name that stopped being a verified domain of its tenant is never requested, and its certificate goes', async () => {
  calls.length = 0;
  store.domains.delete('b.example.test', 't-one');
  now = Date.parse(store.certificates.get('a.example.test')!.retryAt!) + 1;
  await manager.runDue();
  assert.deepEqual(calls, ['a.example.test']);
  assert.equal(store.certificates.get('b.example.test'), undefined);
  assert.equal(sni.has('b.example.test'), false);
});
