// The time of a 2,000-file / 20 MB deploy, upload to 201, on its own (the
// `deploy` scenario of run.ts without nginx, Express and the 20 bench sites):
// for comparing changes to the deploy pipeline. Then the incremental redeploy:
// the same site by manifest, one file changed per round, time to live and
// bytes sent.
//
//   node dist/bench/deploy-timing.js [--rounds N (7)] [--isolation auto|off (auto)]
//
// Prints every round and the median; the first round is a warm-up (not counted).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeLargeDeploy } from './fixtures.js';
import { startTenantry } from './servers.js';
import { ManifestClient, packDir, TenantryApi } from './tenantry-api.js';
import { incrementalRedeploys, type RedeployResult } from './incremental-deploy.js';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] ?? fallback : fallback;
}

async function main(): Promise<void> {
  const rounds = Number(option('rounds', '7'));
  const isolation = option('isolation', 'auto');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantry-deploy-timing-'));
  fs.chmodSync(work, 0o755);
  const token = crypto.randomBytes(24).toString('hex');
  const large = makeLargeDeploy(path.join(work, 'site'));
  const archive = await packDir(path.join(work, 'site'));
  const server = await startTenantry(path.join(work, 'data'), undefined, { TENANTRY_ADMIN_TOKEN: token, TENANTRY_ISOLATION: isolation });
  const api = new TenantryApi(server.origin, token);
  const times: number[] = [];
  let incremental: RedeployResult | undefined;
  try {
    await api.createTenant('timing');
    for (let i = 0; i <= rounds; i++) {
      const { ms } = await api.deployArchive('timing', archive);
      process.stdout.write(`round ${i}${i === 0 ? ' (warm-up)' : ''}: ${ms.toFixed(0)} ms\n`);
      if (i > 0) times.push(ms);
    }
    await api.createTenant('timing-incr');
    incremental = await incrementalRedeploys(new ManifestClient(server.origin, token), 'timing-incr', path.join(work, 'site'), 'public/section-0/item-0.html', rounds + 1);
    const first = incremental.first;
    process.stdout.write(`manifest deploy, every file new: ${first.ms.toFixed(0)} ms, ${first.uploaded} uploaded, ${(first.bytesSent / 2 ** 20).toFixed(1)} MiB sent\n`);
    incremental.rounds.forEach((r, i) =>
      process.stdout.write(
        `redeploy ${i}${i === 0 ? ' (warm-up)' : ''}: hash ${r.hashMs.toFixed(0)} ms, manifest to live ${r.ms.toFixed(0)} ms, ${r.uploaded} uploaded, ${r.reused} reused, ` +
          `${r.fileBytesSent} B of files + ${r.bytesSent - r.fileBytesSent} B of manifest sent\n`,
      ),
    );
    // With isolation on, deleting the tenants also removes their users and cgroups.
    for (const id of ['timing', 'timing-incr', 'demo']) await api.deleteTenant(id);
  } finally {
    await server.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  process.stdout.write(
    `deploy of ${large.files} files / ${(large.bytes / 2 ** 20).toFixed(1)} MiB (${(archive.length / 2 ** 20).toFixed(1)} MiB tar.gz), isolation ${isolation}: ` +
      `median ${median.toFixed(0)} ms, min ${times[0]!.toFixed(0)} ms, max ${times.at(-1)!.toFixed(0)} ms over ${times.length} rounds\n`,
  );
  if (incremental) {
    const counted = incremental.rounds.slice(1);
    const live = counted.map((r) => r.ms).sort((a, b) => a - b);
    const hash = counted.map((r) => r.hashMs).sort((a, b) => a - b);
    const mid = (xs: number[]) => xs[Math.floor(xs.length / 2)]!;
    process.stdout.write(
      `redeploy of ${incremental.files} files with one changed, by manifest: manifest to live median ${mid(live).toFixed(0)} ms (min ${live[0]!.toFixed(0)}, max ${live.at(-1)!.toFixed(0)}), ` +
        `client hashing median ${mid(hash).toFixed(0)} ms; sent per round ${counted[0]!.uploaded} file(s), ${counted[0]!.fileBytesSent} B + a ${((counted[0]!.bytesSent - counted[0]!.fileBytesSent) / 1024).toFixed(0)} KiB manifest, over ${counted.length} rounds\n`,
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
