// The incremental redeploy: a 2,000-file site is deployed by manifest once,
// then, round after round, one file of it changes and the folder is deployed
// again the way `tenantry deploy` does it (hash the folder, send the manifest,
// upload what is missing, finalize). Measured per round: the client's hashing,
// the time from the manifest to the live answer, and the bytes that crossed the wire.
import fs from 'node:fs';
import path from 'node:path';
import { digestSite } from '../server/cli/manifest-upload.js';
import { ManifestClient, type ManifestDeployTiming } from './tenantry-api.js';

export interface RedeployRound extends ManifestDeployTiming {
  /** Hashing the whole folder on the client, before the manifest goes. */
  hashMs: number;
}

export interface RedeployResult {
  /** The first deploy, which sends every file. */
  readonly first: ManifestDeployTiming;
  readonly rounds: RedeployRound[];
  readonly files: number;
}

/** `changed` is the site-relative path of a text file to rewrite each round. */
export async function incrementalRedeploys(client: ManifestClient, tenant: string, siteDir: string, changed: string, rounds: number): Promise<RedeployResult> {
  const deployFolder = async (): Promise<RedeployRound> => {
    const t0 = performance.now();
    const digest = digestSite(siteDir);
    const hashMs = performance.now() - t0;
    const timing = await client.deploy(tenant, digest.files, (sha) => fs.readFileSync(digest.contents.get(sha)!.file));
    return { ...timing, hashMs };
  };
  const first = await deployFolder();
  const out: RedeployRound[] = [];
  const file = path.join(siteDir, changed);
  const original = fs.readFileSync(file, 'utf8');
  for (let i = 0; i < rounds; i++) {
    fs.writeFileSync(file, `${original}<!-- round ${i} ${Date.now()} -->\n`);
    out.push(await deployFolder());
  }
  return { first, rounds: out, files: Object.keys(digestSite(siteDir).files).length };
}
