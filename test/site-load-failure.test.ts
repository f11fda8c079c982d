// A live release that cannot be loaded after a restart (its manifest gone and
// its tenant.json broken by hand) answers 503 for that tenant only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, startTestPlatform } from './helpers/harness.js';

test('a release that fails to load: 503 for that tenant, the others serve', async () => {
  const p = await startTestPlatform();
  try {
    await p.platform.tenants.create({ id: 'lf-broken' }, 'test');
    await p.platform.tenants.create({ id: 'lf-fine' }, 'test');
    const live = fs.realpathSync(p.platform.paths.live('lf-broken'));
    fs.rmSync(path.join(live, '.tenantry'), { recursive: true, force: true });
    fs.writeFileSync(path.join(live, 'tenant.json'), '{ not json');
    p.platform.sites.forget('lf-broken');
    for (let i = 0; i < 3; i++) {
      const broken = await httpRequest(p.url, { host: 'lf-broken.localhost' });
      assert.equal(broken.status, 503);
      assert.ok(broken.headers['retry-after']);
      assert.doesNotMatch(broken.body, /tenant\.json|\/tmp/, 'no internals in the answer');
      const fine = await httpRequest(p.url, { host: 'lf-fine.localhost' });
      assert.equal(fine.status, 200);
    }
  } finally {
    await p.cleanup();
  }
});
