// tenant.json: optional per-site settings, parsed once when a release is loaded.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export const siteConfigSchema = z.object({
  spa: z.boolean().default(false),
  cleanUrls: z.boolean().default(true),
  env: z.record(z.string(), z.string()).default({}),
});
export type SiteConfig = z.infer<typeof siteConfigSchema>;

export class SiteConfigError extends Error {}

export function readSiteConfig(releaseDir: string): SiteConfig {
  const file = path.join(releaseDir, 'tenant.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return siteConfigSchema.parse({});
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SiteConfigError(`tenant.json is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = siteConfigSchema.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new SiteConfigError(`tenant.json: ${i.path.join('.') || '(root)'} ${i.message}`);
  }
  return parsed.data;
}
