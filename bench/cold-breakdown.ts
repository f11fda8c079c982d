// Where a worker's cold start goes: launches one tenant's worker through the
// real sandboxed launcher (as root, isolation auto) several times and times
// launch() -> socket listening -> first health answer, next to a bare `node`
// start and the worker runtime without a sandbox. Runs alternate between the
// launcher as it is and one that sets the CPU quota before the start (as
// before the start handshake), so both see the same machine load.
//   node dist/bench/cold-breakdown.js [--runs 7]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../server/log.js';
import { DataPaths } from '../server/paths.js';
import { createSandbox, platformCodePaths } from '../server/sandbox/sandbox.js';
import { detectIsolation } from '../server/sandbox/detect.js';
import { SandboxedLauncher } from '../server/sandbox/sandboxed-launcher.js';
import { PlainWorkerLauncher } from '../server/sandbox/plain-launcher.js';
import type { CgroupDriver } from '../server/sandbox/cgroups.js';
import type { WorkerLauncher } from '../server/launch/worker-launch.js';
import { probeHealth, waitUntilHealthy } from '../server/pool/health-check.js';
import { DEFAULT_LIMITS } from '../server/model/limits.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' }, cpu: { type: 'string' } } });
const RUNS = Number(values.runs);
import { WORKER_ENTRY } from '../server/launch/entries.js';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await sleep(1);
}

async function healthy(socket: string): Promise<void> {
  for (;;) {
    if ((await probeHealth(socket, 1000)).kind === 'healthy') return;
    await sleep(1);
  }
}

function row(name: string, xs: number[]): void {
  if (!xs.length) return;
  console.log(`${name.padEnd(44)} median ${median(xs).toFixed(1).padStart(6)} ms   min ${Math.min(...xs).toFixed(1).padStart(6)}   max ${Math.max(...xs).toFixed(1).padStart(6)}`);
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantry-cold-'));
fs.chmodSync(root, 0o755);
const paths = new DataPaths(root);
const tenantId = `cbk${process.pid}`;
const log = createLogger({}, (process.env.TENANTRY_LOG_LEVEL as 'debug') || 'warn');
const sandbox = createSandbox({ mode: 'auto', paths, log });
try {
  const release = paths.release(tenantId, 'r1');
  fs.mkdirSync(path.join(release, 'api'), { recursive: true });
  fs.writeFileSync(path.join(release, 'api/hello.js'), "module.exports = (req, res) => res.json({ hello: 'world' });\n");
  for (const d of [paths.tenantData(tenantId), paths.logs(tenantId), paths.run(tenantId)]) fs.mkdirSync(d, { recursive: true });
  await sandbox.provisionTenant(tenantId);
  await sandbox.sealRelease(tenantId, 'r1');

  const bare: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    bare.push(performance.now() - t0);
  }
  row('node -e 0 (spawn to exit)', bare);

  const plainReady: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const socket = path.join(paths.run(tenantId), `plain-${i}.sock`);
    const t0 = performance.now();
    const w = await new PlainWorkerLauncher().launch({
      tenantId,
      releaseDir: release,
      dataDir: paths.tenantData(tenantId),
      runDir: paths.run(tenantId),
      socketPath: socket,
      logFile: path.join(paths.logs(tenantId), 'plain.log'),
      entry: WORKER_ENTRY,
      args: ['--release', release],
      env: {},
      limits: DEFAULT_LIMITS,
      network: 'none',
    });
    await healthy(socket);
    plainReady.push(performance.now() - t0);
    await w.kill();
  }
  row('worker runtime, no sandbox: spawn -> healthy', plainReady);

  if (!sandbox.launcher) throw new Error('no sandboxed launcher here (not root?)');
  console.log(sandbox.report ? `isolation: ${JSON.stringify(sandbox.report).slice(0, 300)}` : '');
  const { capabilities: caps } = detectIsolation({ mode: 'auto', privilegeSeparated: false });
  const driver = caps.cgroups!;
  const quotaFirst: CgroupDriver = Object.assign(Object.create(driver) as CgroupDriver, {
    createWorkerGroup: (...a: Parameters<CgroupDriver['createWorkerGroup']>) => driver.createWorkerGroup(a[0], a[1], a[2]),
  });
  const before = new SandboxedLauncher({
    dataRoot: root, tools: caps.tools, namespaces: caps.namespaces, users: caps.users, cgroups: quotaFirst,
    seccompProgram: caps.seccompProgram, platformCode: platformCodePaths(), nodeBinary: process.execPath,
    nodePermissions: caps.nodePermissions, platform: { uid: 0, gid: 0 }, log,
  });
  const launched: number[] = [];
  const listening: number[] = [];
  const ready: number[] = [];
  const poolWait: number[] = [];
  const quotaFirstReady: number[] = [];
  for (let i = 0; i < RUNS * 2; i++) {
    const launcher: WorkerLauncher = i % 2 === 0 ? sandbox.launcher : before;
    const socket = path.join(paths.run(tenantId), `w-${i}.sock`);
    const spec = {
      tenantId,
      releaseDir: release,
      dataDir: paths.tenantData(tenantId),
      runDir: paths.run(tenantId),
      socketPath: socket,
      logFile: path.join(paths.logs(tenantId), 'worker.log'),
      entry: WORKER_ENTRY,
      args: ['--release', release],
      env: { NODE_ENV: 'production' },
      limits: values.cpu ? { ...DEFAULT_LIMITS, cpuPercent: Number(values.cpu) } : DEFAULT_LIMITS,
      network: 'none' as const,
    };
    const t0 = performance.now();
    const w = await launcher.launch(spec);
    const t1 = performance.now();
    if (launcher === before) {
      await waitUntilHealthy(socket, w.exited, 10_000);
      quotaFirstReady.push(performance.now() - t0);
    } else if (i % 4 === 0) {
      await until(() => fs.existsSync(socket));
      const t2 = performance.now();
      await healthy(socket);
      const t3 = performance.now();
      launched.push(t1 - t0);
      listening.push(t2 - t0);
      ready.push(t3 - t0);
    } else {
      // What the pool does today.
      await waitUntilHealthy(socket, w.exited, 10_000);
      poolWait.push(performance.now() - t0);
    }
    await w.kill();
  }
  row('sandboxed: launch() resolved', launched);
  row('sandboxed: socket file exists', listening);
  row('sandboxed: healthy (1 ms polling)', ready);
  row('sandboxed: healthy (the pool\'s waitUntilHealthy)', poolWait);
  row('same, CPU quota set before the start', quotaFirstReady);
} finally {
  await sandbox.removeTenant(tenantId).catch((err) => console.error(err));
  await sandbox.close();
  fs.rmSync(root, { recursive: true, force: true });
}
