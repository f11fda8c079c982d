// The sandboxed launcher lets the worker runtime start without the CPU quota,
// and puts it in force before the first module of the tenant's loads: code at
// the top level of an api/ module is held to the tenant's share like a route.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, httpRequest, type TestPlatform } from './helpers/harness.js';
import { apiJson, createTenant, tarGz, uploadArchive } from './helpers/deploy-archives.js';

const TENANT = 'wslbusy';
const LIMITS = { memoryMB: 192, cpuPercent: 20, pids: 64 };
const isRoot = process.getuid?.() === 0;

/** Spins for 1.5 s of wall time while the module loads, and reports the CPU it got. */
const BUSY_AT_LOAD = String.raw`
const wall0 = Date.now();
const cpu0 = process.cpuUsage();
while (Date.now() - wall0 < 1500) {}
const used = process.cpuUsage(cpu0);
const atLoad = { cpuMs: (used.user + used.system) / 1000, wallMs: Date.now() - wall0 };
module.exports = (req, res) => res.json(atLoad);
`;

let p: TestPlatform | undefined;
let why: string | undefined = isRoot ? undefined : 'needs root: cgroups are created by root';

describe('the CPU quota at worker start', () => {
  before(async () => {
    if (why) return;
    p = await startTestPlatform({ TENANTRY_ISOLATION: 'auto' });
    if (!p.platform.sandbox.report.layers.some((l) => l.name === 'cgroups' && l.active)) {
      why = 'this host offers no usable cgroups';
      return;
    }
    await createTenant(p.url, p.adminToken, TENANT, { limits: LIMITS });
  });

  after(async () => {
    if (!p) return;
    if (!why) await apiJson(p.url, p.adminToken, 'DELETE', `/api/v1/tenants/${TENANT}`).catch(() => {});
    await p.cleanup();
  });

  it('already holds the code at the top of an api/ module to the tenant\'s CPU share', async (t) => {
    if (why) return t.skip(why);
    const archive = tarGz([
      { name: 'public/', type: 'directory' },
      { name: 'public/index.html', body: '<!doctype html><h1>busy</h1>\n' },
      { name: 'api/', type: 'directory' },
      { name: 'api/busy.js', body: BUSY_AT_LOAD },
    ]);
    const deploy = await uploadArchive(p!.url, p!.adminToken, TENANT, archive);
    assert.equal(deploy.status, 201, deploy.body);
    const r = await httpRequest(p!.url, { host: `${TENANT}.localhost`, path: '/api/busy' });
    assert.equal(r.status, 200, r.body);
    const atLoad = JSON.parse(r.body) as { cpuMs: number; wallMs: number };
    const share = atLoad.cpuMs / atLoad.wallMs;
    assert.ok(share < (LIMITS.cpuPercent / 100) * 2, `the module used ${(share * 100).toFixed(0)}% of a core while loading, with a quota of ${LIMITS.cpuPercent}%`);
    // The starter release's worker drains and goes once the deploy is live: wait for it, then one worker is left.
    for (let i = 0; i < 100 && p!.platform.sandbox.workerLimits(TENANT).length > 1; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(p!.platform.sandbox.workerLimits(TENANT), [LIMITS], 'the kernel holds the limits for the running worker');
  });
});
