// Entry of a deploy worker: a short-lived child of the edge, started for one
// job (unpack and index an archive, or precompress a release) and gone when
// it is done. It runs as the edge's own user at a lower CPU priority (and in
// a cgroup of low weight where the platform has one), with its own event loop
// and libuv thread pool, so the decompression, hashing, brotli and fsyncs of a
// deploy do not queue in front of the edge's requests. Started by
// deploy-worker.ts; the job comes over the IPC channel, the archive on stdin.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../log.js';
import { extractArchive } from './extract-archive.js';
import { serializeError, type DeployJob, type StageOutcome, type WorkerMessage, type WorkerProcessInfo } from './deploy-work-protocol.js';
import { MANIFEST_DIR, STAGED_MANIFEST_FILE, scanRelease, writeStagedManifest } from '../static/index/release-manifest.js';
import { loadSiteIndex } from '../static/index/site-index.js';
import { precompressSite } from '../static/index/precompress.js';

/** The priority a deploy worker runs at (0 is the edge's; 19 the lowest). */
export const DEPLOY_NICE = 10;

const log = createLogger({ process: 'deploy-worker' });

function processInfo(): WorkerProcessInfo {
  let cgroups: string[] = [];
  try {
    cgroups = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').filter(Boolean);
  } catch {
    // not Linux: no cgroups to report
  }
  return { pid: process.pid, uid: process.getuid?.() ?? -1, nice: os.getPriority(), cgroups };
}

async function stage(treeDir: string, limits: Parameters<typeof extractArchive>[2]): Promise<StageOutcome> {
  const extracted = await extractArchive(process.stdin, treeDir, limits);
  // Hashed here, once: the edge then loads the manifest instead of reading every file.
  try {
    await writeStagedManifest(extracted.releaseRoot, scanRelease(extracted.releaseRoot));
  } catch (err) {
    // The edge indexes the release itself then (and reports what is wrong with it); never from a file the archive brought.
    log.warn('cannot index the staged release', { err });
    fs.rmSync(path.join(extracted.releaseRoot, MANIFEST_DIR, STAGED_MANIFEST_FILE), { force: true, recursive: true });
  }
  return { releaseRoot: extracted.releaseRoot, files: extracted.files, bytes: extracted.bytes, contents: [...extracted.contents] };
}

async function compress(releaseDir: string): Promise<void> {
  const { site } = loadSiteIndex(releaseDir);
  await precompressSite(site, log);
}

async function run(job: DeployJob): Promise<WorkerMessage> {
  try {
    if (job.type === 'stage') return { type: 'done', process: processInfo(), stage: await stage(job.treeDir, job.limits) };
    await compress(job.releaseDir);
    return { type: 'done', process: processInfo() };
  } catch (err) {
    return { type: 'failed', process: processInfo(), error: serializeError(err) };
  }
}

// Started without the `nice` tool: lower our own priority before any work (threads made later inherit it).
if (os.getPriority() < DEPLOY_NICE) {
  try {
    os.setPriority(DEPLOY_NICE);
  } catch {
    // a raised floor (RLIMIT_NICE) cannot lower us; we run anyway
  }
}

process.once('message', (job: DeployJob) => {
  void run(job).then((answer) => {
    process.send!(answer, () => process.exit(0));
  });
});
// The edge gone means nobody waits for the answer: stop.
process.on('disconnect', () => process.exit(1));
