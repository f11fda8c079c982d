// Screenshots of the dashboard's main pages for the README, taken from a
// throw-away platform with a little content: `npm run screenshots` (needs
// /usr/bin/chromium and playwright-core). Writes docs/screenshots/*.png.
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, startTestPlatform, REPO_ROOT } from '../test/helpers/harness.js';
import { browserSkipReason, launchBrowser, siteFolder } from '../test/helpers/browser.js';

const OUT = path.join(REPO_ROOT, 'docs/screenshots');

async function main(): Promise<void> {
  const why = await browserSkipReason();
  if (why) throw new Error(`cannot take screenshots: ${why}`);
  fs.mkdirSync(OUT, { recursive: true });
  const p = await startTestPlatform();
  const browser = await launchBrowser();
  const folders: string[] = [];
  try {
    const page = await browser.context.newPage();
    const dash = `http://localhost:${p.port}`;
    const shot = async (name: string) => {
      await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
      console.log(`docs/screenshots/${name}.png`);
    };
    await page.goto(`${dash}/`);
    await page.getByLabel('Token').waitFor();
    await shot('sign-in');
    await page.getByLabel('Token').fill(p.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    for (const id of ['acme', 'shop']) {
      await page.getByLabel('Id', { exact: true }).fill(id);
      await page.getByRole('button', { name: 'Create tenant' }).click();
      await page.locator('#tenant-rows tr', { hasText: id }).waitFor();
    }
    await shot('tenants');

    await page.goto(`${dash}/deploys?t=acme`);
    for (const version of ['one', 'two']) {
      const dir = siteFolder({ 'index.html': `<h1>version ${version}</h1>` });
      folders.push(dir);
      await page.locator('#folder-input').setInputFiles(dir);
      await page.locator('#status').filter({ hasText: /Deployed d/ }).waitFor({ timeout: 30_000 });
    }
    // A little traffic, so that the charts of the last hour have bars.
    for (let i = 0; i < 24; i++) await httpRequest(p.url, { host: 'acme.localhost', path: i % 8 === 7 ? '/missing' : '/' });
    await page.reload();
    await page.locator('#chart-requests rect.bar').first().waitFor();
    await shot('deploys');

    await page.goto(`${dash}/domains?t=acme`);
    await p.platform.customDomains.add('acme', 'pending.example.com', { admin: false }, 'screenshots');
    await page.getByLabel('Domain').fill('www.acme.example');
    await page.getByRole('button', { name: 'Add domain' }).click();
    await page.locator('article[data-domain="www.acme.example"]').waitFor();
    await shot('domains');

    await page.goto(`${dash}/logs?t=acme`);
    for (const line of ['tenantry: starting the worker for release d0', 'tenantry: worker ready (pid 4242)', 'GET /api/hello 200 3 ms', 'hello from the api route']) {
      p.platform.siteLogs.append('acme', line);
    }
    await page.locator('#log .line', { hasText: 'hello from' }).waitFor({ timeout: 10_000 });
    await shot('log');

    await page.goto(`${dash}/tokens?t=acme`);
    await page.getByLabel('Name').fill('ci');
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.locator('#new-token-value').filter({ hasText: 'tnt_' }).waitFor();
    await shot('tokens');

    await page.goto(`${dash}/plugins?t=acme`);
    await page.locator('#plugin-list p, #plugin-list article').first().waitFor();
    await shot('plugins');
  } finally {
    await browser.close();
    await p.cleanup();
    for (const f of folders) fs.rmSync(f, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
