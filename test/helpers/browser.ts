// A real browser for the dashboard tests and the screenshot script: Debian's
// chromium driven by playwright-core (never a downloaded browser), headless,
// with a fresh profile, *.localhost resolved to the loopback address.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can. */
export async function browserSkipReason(): Promise<string | undefined> {
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} is missing (Debian: apt-get install -y chromium)`;
  try {
    await import('playwright-core');
  } catch {
    return 'the npm package playwright-core is not installed (npm ci)';
  }
  return undefined;
}

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(options: { ignoreHttpsErrors?: boolean } = {}): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantry-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: options.ignoreHttpsErrors ?? false,
    viewport: { width: 1200, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Every name ending in localhost is this machine (tenants are <id>.localhost).
      '--host-resolver-rules=MAP localhost 127.0.0.1, MAP *.localhost 127.0.0.1',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A folder with the given files (path -> text), for a deploy by folder. */
export function siteFolder(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantry-site-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}
