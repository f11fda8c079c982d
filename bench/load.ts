// Load generation: wrk (one thread) when installed, else autocannon in this
// process. Both report requests/s and p50/p99 latency in milliseconds.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  /** Socket errors plus non-2xx/3xx answers. */
  errors: number;
  /** The server side's CPU time per request in µs, by process kind (edge, worker, nginx, app), when measured. */
  cpuUs?: Record<string, number>;
}

export interface LoadSpec {
  /** http://127.0.0.1:port */
  origin: string;
  /** One fixed request, or a list picked at random per request. */
  targets: readonly { host: string; path: string }[];
  headers?: Record<string, string>;
  connections: number;
  durationSec: number;
  /** CPU the generator is pinned to (when taskset exists). */
  cpu?: number;
  /** Connect to this unix socket instead of the origin's port (autocannon only). */
  socketPath?: string;
}

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export const WRK = hasCommand('wrk') ? 'wrk' : undefined;
export const TASKSET = hasCommand('taskset');

/** argv prefixed with `taskset -c cpu` when possible. */
export function pinned(cpu: number | undefined, argv: string[]): string[] {
  return TASKSET && cpu !== undefined ? ['taskset', '-c', String(cpu), ...argv] : argv;
}

function luaString(s: string): string {
  return JSON.stringify(s); // a JSON string literal is a valid Lua string literal for these characters
}

function wrkScript(spec: LoadSpec): string {
  const targets = spec.targets.map((t) => `{${luaString(t.host)}, ${luaString(t.path)}}`).join(',\n');
  const headers = Object.entries(spec.headers ?? {})
    .map(([k, v]) => `[${luaString(k)}] = ${luaString(v)}`)
    .join(', ');
  return `
local targets = {
${targets}
}
local n = #targets
local i = 0
request = function()
  i = i + 1
  local t
  if n == 1 then t = targets[1] else t = targets[math.random(n)] end
  local h = { ${headers} }
  h["Host"] = t[1]
  return wrk.format("GET", t[2], h)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
`;
}

async function runWrk(spec: LoadSpec): Promise<LoadResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantry-bench-wrk-'));
  const script = path.join(dir, 'script.lua');
  fs.writeFileSync(script, wrkScript(spec));
  const argv = pinned(spec.cpu, [WRK!, '-t1', `-c${spec.connections}`, `-d${spec.durationSec}s`, '--timeout', '5s', '-s', script, `${spec.origin}${spec.targets[0]!.path}`]);
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (c: Buffer) => (text += c.toString()));
      child.stderr.on('data', (c: Buffer) => (text += c.toString()));
      child.on('error', reject);
      child.on('exit', () => resolve(text));
    });
    const m = /RESULT (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(out);
    if (!m) throw new Error(`wrk printed no result:\n${out}`);
    const [requests, durationUs, p50us, p99us, errors] = m.slice(1).map(Number) as [number, number, number, number, number];
    return { rps: requests / (durationUs / 1e6), p50: p50us / 1000, p99: p99us / 1000, requests, errors };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  errors: number;
  non2xx: number;
}

/** autocannon runs in this process: it is pinned (and unpinned after) like wrk would be. */
export async function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
  const require = createRequire(import.meta.url);
  const autocannon = require('autocannon') as (opts: Record<string, unknown>) => Promise<AutocannonResult>;
  const pick = () => spec.targets[Math.floor(Math.random() * spec.targets.length)]!;
  const all = os.cpus().map((_, i) => i).join(',');
  if (TASKSET && spec.cpu !== undefined) spawnSync('taskset', ['-a', '-cp', String(spec.cpu), String(process.pid)], { stdio: 'ignore' });
  try {
    return await runAutocannonUnpinned(spec, autocannon, pick);
  } finally {
    if (TASKSET && spec.cpu !== undefined) spawnSync('taskset', ['-a', '-cp', all, String(process.pid)], { stdio: 'ignore' });
  }
}

async function runAutocannonUnpinned(
  spec: LoadSpec,
  autocannon: (opts: Record<string, unknown>) => Promise<AutocannonResult>,
  pick: () => { host: string; path: string },
): Promise<LoadResult> {
  const r = await autocannon({
    url: spec.origin,
    ...(spec.socketPath ? { socketPath: spec.socketPath } : {}),
    connections: spec.connections,
    duration: spec.durationSec,
    requests: [
      {
        setupRequest: (req: Record<string, unknown>) => {
          const t = pick();
          return { ...req, path: t.path, headers: { ...(spec.headers ?? {}), host: t.host } };
        },
      },
    ],
  });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, requests: r.requests.total, errors: r.errors };
}

export function generatorName(): string {
  return WRK ? 'wrk (1 thread)' : 'autocannon';
}

export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return WRK && !spec.socketPath ? runWrk(spec) : runAutocannon(spec);
}

/** A process and all its descendants (from /proc), to re-pin a server with its workers. */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      /* gone meanwhile */
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(rootPid);
  return out;
}

/** Sets the CPUs of a process tree (all threads); undefined = every CPU. */
export function setAffinity(rootPid: number | undefined, cpu: number | undefined): void {
  if (!TASKSET || rootPid === undefined) return;
  const cpus = cpu === undefined ? os.cpus().map((_, i) => i).join(',') : String(cpu);
  for (const pid of processTree(rootPid)) spawnSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
}

const CLOCK_TICKS_PER_S = 100;

/**
 * CPU time (user + system, ms) used so far by the processes of these trees,
 * split by what each process runs: `classify` names a share (e.g. "edge",
 * "worker") from its command line. Processes that exited meanwhile are not
 * counted, so take it around a load run, not across restarts.
 */
export function cpuTimeMs(rootPids: readonly number[], classify: (cmdline: string) => string): Map<string, number> {
  const out = new Map<string, number>();
  for (const root of rootPids) {
    for (const pid of processTree(root)) {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        // utime and stime are fields 14 and 15 of /proc/<pid>/stat (11 and 12 after the name).
        const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
        const share = classify(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '));
        out.set(share, (out.get(share) ?? 0) + ms);
      } catch {
        /* gone meanwhile */
      }
    }
  }
  return out;
}
