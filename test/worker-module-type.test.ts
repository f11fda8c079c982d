// A tenant's code means the same wherever the platform keeps its data. Here
// the data folder lies inside the platform's clone (as the default ./data
// does), in a folder whose package.json says "type": "module": a release's
// `.js` is still CommonJS unless the release's own package.json says
// otherwise, and ESM syntax in a `.js` is not guessed to be ESM. Run with
// plain child processes, with the sandbox the host gives (bubblewrap: its own
// file view, which holds the platform's package.json at its own path, and
// Node's permission model), and with the unshare fallback (the host's files).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, startTestPlatform, type TestPlatform } from './helpers/harness.js';
import { createTenant, deploySite, deployOk, site, type SiteFiles } from './helpers/worker-sites.js';
import type { LayerName } from '../server/sandbox/detect.js';
import { MODULE_BOUNDARY } from '../server/releases/module-boundary.js';

const isRoot = process.getuid?.() === 0;
const LIMIT_MS = 180_000;

/** `<clone>/.tmp/module-type-XXXX/` with its own package.json saying "type": "module", and data/ in it. */
function dataDirInModuleScope(): { outer: string; dataDir: string } {
  const base = path.join(REPO_ROOT, '.tmp');
  fs.mkdirSync(base, { recursive: true, mode: 0o755 });
  const outer = fs.mkdtempSync(path.join(base, 'module-type-'));
  // Tenants' users pass through it where they see the host's files (no bubblewrap).
  fs.chmodSync(outer, 0o755);
  fs.writeFileSync(path.join(outer, 'package.json'), '{"type": "module"}\n');
  assert.equal(JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).type, 'module', 'the platform itself is ESM, as in the field');
  return { outer, dataDir: path.join(outer, 'data') };
}

/** A site without package.json: `.js` is CommonJS, also outside api/; `.mjs` is ESM. */
const COMMONJS_SITE: SiteFiles = {
  'index.html': '<h1>commonjs</h1>',
  'lib/shout.js': `module.exports = (s) => String(s).toUpperCase();`,
  'api/hello.js': `const shout = require('../lib/shout.js');
module.exports = (req, res) => res.json({ kind: typeof module, hello: shout('cjs') });`,
  'api/methods.js': `exports.GET = (req, res) => res.json({ kind: typeof exports });`,
  'api/modern.mjs': `export default (req, res) => res.json({ kind: typeof module, hello: 'mjs' });`,
};

/** A site whose own package.json says "type": "module": `.js` is ESM, `.cjs` stays CommonJS. */
const ESM_SITE: SiteFiles = {
  'public/index.html': '<h1>esm</h1>',
  'package.json': JSON.stringify({ name: 'esm-site', private: true, type: 'module' }),
  'lib/shout.js': `export const shout = (s) => String(s).toUpperCase();`,
  'api/hello.js': `import { shout } from '../lib/shout.js';
export default (req, res) => res.json({ kind: typeof module, hello: shout('esm') });`,
  'api/old.cjs': `module.exports = (req, res) => res.json({ kind: typeof module, hello: 'cjs' });`,
};

interface Case {
  readonly name: string;
  readonly env: Record<string, string>;
  /** Why this case cannot run on this host, before starting anything. */
  readonly unavailable: () => string | undefined;
  /** Layers the platform must report active for this case to mean what it says. */
  readonly layers: readonly LayerName[];
}

const CASES: readonly Case[] = [
  { name: 'plain child processes (isolation off)', env: { TENANTRY_ISOLATION: 'off' }, unavailable: () => undefined, layers: [] },
  {
    name: 'the sandbox of isolation auto (bubblewrap, as root)',
    env: { TENANTRY_ISOLATION: 'auto', TENANTRY_SANDBOX: 'auto' },
    unavailable: () => (isRoot ? undefined : 'the bubblewrap case is not run: it needs root, where workers run as their own users in bubblewrap'),
    layers: ['users', 'namespaces', 'filesystem-view'],
  },
  {
    name: 'the unshare fallback (TENANTRY_SANDBOX=unshare, as root)',
    env: { TENANTRY_ISOLATION: 'auto', TENANTRY_SANDBOX: 'unshare' },
    unavailable: () => (isRoot ? undefined : 'the unshare case is not run: it needs root, where unshare gives the namespaces'),
    layers: ['users', 'namespaces'],
  },
];

const json = (body: string) => JSON.parse(body) as Record<string, unknown>;

for (const c of CASES) {
  describe(`module type of tenant code, data folder inside an ESM package: ${c.name}`, () => {
    let p: TestPlatform | undefined;
    let outer: string | undefined;
    /** Set when the case cannot run here; every test then skips with it. */
    let why: string | undefined;

    const start = async (): Promise<TestPlatform | undefined> => {
      if (why) return undefined;
      if (p) return p;
      why = c.unavailable();
      if (why) return undefined;
      const dirs = dataDirInModuleScope();
      outer = dirs.outer;
      p = await startTestPlatform(c.env, dirs.dataDir);
      const off = p.platform.sandbox.report.layers.filter((l) => c.layers.includes(l.name) && !l.active);
      if (off.length) why = `not run: this host lacks ${off.map((l) => `${l.name} (${l.detail})`).join('; ')}`;
      return why ? undefined : p;
    };

    after(async () => {
      if (p) {
        // Removes each tenant's user and cgroups too.
        for (const t of p.platform.store.tenants.list()) await p.platform.tenants.delete(t.id, 'test').catch(() => {});
        await p.cleanup();
      }
      if (outer) {
        fs.rmSync(outer, { recursive: true, force: true });
        try {
          fs.rmdirSync(path.dirname(outer)); // .tmp/, unless something else is in it
        } catch {
          /* not empty */
        }
      }
    });

    it('the starter site\'s api/hello.js answers (the demo tenant of a first start)', { timeout: LIMIT_MS }, async (t) => {
      const q = await start();
      if (!q) return t.skip(why);
      const res = await site(q, 'demo', '/api/hello?name=there');
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(json(res.body), { hello: 'there', tenant: 'demo' });
      const live = fs.realpathSync(q.platform.paths.live('demo'));
      assert.equal(fs.readFileSync(path.join(live, 'package.json'), 'utf8'), MODULE_BOUNDARY, 'the release carries its module boundary');
      const served = await site(q, 'demo', '/package.json');
      assert.equal(served.status, 404, 'the boundary is not served as a static file');
    });

    it('a CommonJS site without package.json deploys; its .js routes are CommonJS, .mjs is ESM', { timeout: LIMIT_MS }, async (t) => {
      const q = await start();
      if (!q) return t.skip(why);
      await createTenant(q, 'mt-cjs');
      await deployOk(q, 'mt-cjs', COMMONJS_SITE);
      const hello = await site(q, 'mt-cjs', '/api/hello');
      assert.equal(hello.status, 200, hello.body);
      assert.deepEqual(json(hello.body), { kind: 'object', hello: 'CJS' });
      const methods = await site(q, 'mt-cjs', '/api/methods');
      assert.equal(methods.status, 200, methods.body);
      assert.deepEqual(json(methods.body), { kind: 'object' });
      const modern = await site(q, 'mt-cjs', '/api/modern');
      assert.equal(modern.status, 200, modern.body);
      assert.deepEqual(json(modern.body), { kind: 'undefined', hello: 'mjs' });
      assert.equal((await site(q, 'mt-cjs', '/package.json')).status, 404, 'the boundary is not served as a static file');
      assert.equal((await site(q, 'mt-cjs', '/')).status, 200);

      // ESM syntax in a .js without a package.json saying so is CommonJS, so it does not load: refused, the live release stays.
      const refused = await deploySite(q, 'mt-cjs', { 'api/hello.js': 'export default (req, res) => res.json({});' });
      assert.equal(refused.status, 422, refused.body);
      assert.equal((json(refused.body).error as { code: string }).code, 'deploy_failed');
      assert.equal((await site(q, 'mt-cjs', '/api/hello')).status, 200, 'the previous release keeps answering');
    });

    it('a site whose own package.json says "type": "module" runs its .js as ESM and .cjs as CommonJS', { timeout: LIMIT_MS }, async (t) => {
      const q = await start();
      if (!q) return t.skip(why);
      await createTenant(q, 'mt-esm');
      const id = await deployOk(q, 'mt-esm', ESM_SITE);
      const hello = await site(q, 'mt-esm', '/api/hello');
      assert.equal(hello.status, 200, hello.body);
      assert.deepEqual(json(hello.body), { kind: 'undefined', hello: 'ESM' });
      const old = await site(q, 'mt-esm', '/api/old');
      assert.equal(old.status, 200, old.body);
      assert.deepEqual(json(old.body), { kind: 'object', hello: 'cjs' });
      const own = fs.readFileSync(path.join(q.platform.paths.release('mt-esm', id), 'package.json'), 'utf8');
      assert.equal(JSON.parse(own).name, 'esm-site', 'the tenant\'s own package.json is left as it is');
    });

    it('a live release made before the boundary existed gets it at the next start', { timeout: LIMIT_MS }, async (t) => {
      if (c.env.TENANTRY_ISOLATION !== 'off') return t.skip('covered with plain child processes: the start-up step does not depend on the sandbox');
      const q = await start();
      if (!q) return t.skip(why);
      await createTenant(q, 'mt-old');
      const id = await deployOk(q, 'mt-old', COMMONJS_SITE);
      await q.close();
      const boundary = path.join(q.platform.paths.release('mt-old', id), 'package.json');
      fs.rmSync(boundary);
      p = await startTestPlatform(c.env, q.dataDir);
      assert.equal(fs.readFileSync(boundary, 'utf8'), MODULE_BOUNDARY);
      const hello = await site(p, 'mt-old', '/api/hello');
      assert.equal(hello.status, 200, hello.body);
      assert.deepEqual(json(hello.body), { kind: 'object', hello: 'CJS' });
    });
  });
}
