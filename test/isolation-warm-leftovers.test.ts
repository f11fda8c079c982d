// A platform killed while it froze a warm worker's group to kill it leaves
// that group frozen, its processes stuck forever with a kill pending. The next
// start kills and removes the groups of warm workers whose platform is gone,
// and leaves a running platform's own alone: with bubblewrap, and on the
// fallback sandbox too (which keeps no warm workers but may follow a run that did).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { startTestPlatform } from './helpers/harness.js';

const FREEZER = '/sys/fs/cgroup/freezer/tenantry/_warm';
const root = process.getuid?.() === 0;
const v1Freezer = fs.existsSync('/sys/fs/cgroup/freezer');
const why = !root ? 'needs root' : !v1Freezer ? 'needs the cgroup v1 freezer (this host has v2: a leftover group there is not frozen by the platform)' : undefined;
if (why) console.log(`# SKIP leftover warm worker groups: ${why}`);

/** A pid no process has now (the platform that "made" the leftover group). */
function deadPid(): number {
  const r = spawnSync('true');
  return r.pid!;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return false;
  }
};

test('a frozen warm group left by a dead platform is killed and removed at the next start; a live one is not', { skip: why }, async (t) => {
  const stale = `${FREEZER}/w-${deadPid()}-0badc0de`;
  const foreign = `${FREEZER}/w-${process.pid}-0000cafe`;
  const sleepers: number[] = [];
  for (const dir of [stale, foreign]) {
    fs.mkdirSync(dir, { recursive: true });
    const child = spawn('sleep', ['600'], { stdio: 'ignore', detached: true });
    child.unref();
    fs.writeFileSync(`${dir}/cgroup.procs`, String(child.pid));
    sleepers.push(child.pid!);
  }
  // As the killed platform left it: frozen, with the kill already sent.
  fs.writeFileSync(`${stale}/freezer.state`, 'FROZEN');
  process.kill(sleepers[0]!, 'SIGKILL');
  const p = await startTestPlatform({ TENANTRY_ISOLATION: 'auto', TENANTRY_WARM_WORKERS: '1' });
  try {
    if (!p.platform.sandbox.report.layers.some((l) => l.name === 'cgroups' && l.active)) {
      t.skip('the platform found no cgroups to clean on this host');
      return;
    }
    const deadline = Date.now() + 10_000;
    while (fs.existsSync(stale) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(fs.existsSync(stale), false, 'the dead platform\'s group is gone');
    assert.equal(alive(sleepers[0]!), false, 'its frozen process is dead');
    assert.equal(fs.existsSync(foreign), true, 'a group of a platform still running (this test process) is kept');
    assert.equal(alive(sleepers[1]!), true);
  } finally {
    await p.cleanup();
    // Whatever the platform did, nothing of this test stays: thawed, killed, removed.
    for (const [i, dir] of [stale, foreign].entries()) {
      if (fs.existsSync(dir)) fs.writeFileSync(`${dir}/freezer.state`, 'THAWED');
      try {
        process.kill(sleepers[i]!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await new Promise((r) => setTimeout(r, 200));
    for (const dir of [stale, foreign]) if (fs.existsSync(dir)) fs.rmdirSync(dir);
  }
});
