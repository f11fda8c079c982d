// The route a hostile tenant deploys in the isolation tests (api/probe.js):
// POST /api/probe {"action", ...} tries one escape and answers what happened.
// It runs as the tenant's code, inside its worker's sandbox.
import { tarGz } from './deploy-archives.js';
import { httpRequest } from './harness.js';

export const PROBE_ROUTE_SOURCE = String.raw`
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');

const code = (err) => (err && err.code) || String(err && err.message);
const hold = [];

function attempt(fn) {
  try {
    return { ok: true, ...(fn() || {}) };
  } catch (err) {
    return { ok: false, error: code(err) };
  }
}

function connect(opts) {
  return new Promise((resolve) => {
    const started = Date.now();
    const sock = net.connect(opts);
    const timer = setTimeout(() => { sock.destroy(); resolve({ ok: false, error: 'TIMEOUT', ms: Date.now() - started }); }, 5000);
    sock.once('connect', () => { clearTimeout(timer); sock.destroy(); resolve({ ok: true, ms: Date.now() - started }); });
    sock.once('error', (err) => { clearTimeout(timer); resolve({ ok: false, error: code(err), ms: Date.now() - started }); });
  });
}

async function spawnMany(count) {
  const children = [];
  let failed = 0;
  let firstError;
  for (let i = 0; i < count && failed <= 20; i++) {
    const ok = await new Promise((resolve) => {
      let c;
      try { c = spawn('/usr/bin/sleep', ['30'], { stdio: 'ignore' }); } catch (err) { firstError = firstError || code(err); return resolve(false); }
      c.once('spawn', () => { children.push(c); resolve(true); });
      c.once('error', (err) => { firstError = firstError || code(err); resolve(false); });
    });
    if (!ok) failed++;
  }
  for (const c of children) c.kill('SIGKILL');
  return { ok: true, spawned: children.length, failed, firstError };
}

async function probe(p) {
  switch (p.action) {
    case 'read': return attempt(() => ({ bytes: fs.readFileSync(p.path).length }));
    case 'write': return attempt(() => { fs.writeFileSync(p.path, 'tenant was here'); });
    case 'symlinkRead': return attempt(() => {
      fs.rmSync(p.link, { force: true });
      fs.symlinkSync(p.target, p.link);
      return { bytes: fs.readFileSync(p.link).length };
    });
    case 'setuid': return attempt(() => { process.setuid(0); return { uid: process.getuid() }; });
    case 'kill': return attempt(() => { process.kill(p.pid, 'SIGKILL'); });
    case 'whoami':
      // holdMs keeps the request (and its connection) busy, so parallel ones need new connections.
      if (p.holdMs) await new Promise((r) => setTimeout(r, p.holdMs));
      return { ok: true, uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(), pid: process.pid, tenant: process.env.TENANTRY_TENANT, cwd: process.cwd(), data: process.env.TENANTRY_DATA };
    case 'tcp': return connect({ host: p.host, port: p.port });
    case 'unix': return connect({ path: p.path });
    case 'run': {
      const r = spawnSync(p.file, p.args, { encoding: 'utf8', timeout: 10000 });
      return { ok: r.status === 0, status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, error: r.error ? code(r.error) : undefined };
    }
    case 'spawnMany': return spawnMany(p.count);
    case 'allocate':
      for (let i = 0; i < p.mb; i++) hold.push(Buffer.alloc(1024 * 1024, 1));
      return { ok: true, held: hold.length };
    case 'busy': {
      const startCpu = process.cpuUsage();
      const start = Date.now();
      while (Date.now() - start < p.ms) {}
      const cpu = process.cpuUsage(startCpu);
      return { ok: true, wallMs: Date.now() - start, cpuMs: (cpu.user + cpu.system) / 1000 };
    }
    case 'fillTmp': {
      const chunk = Buffer.alloc(1024 * 1024, 7);
      let written = 0;
      const fd = fs.openSync('/tmp/fill', 'w');
      try {
        for (let i = 0; i < 4096; i++) { fs.writeSync(fd, chunk); written += chunk.length; }
        return { ok: true, written };
      } catch (err) {
        return { ok: false, error: code(err), written };
      } finally {
        fs.closeSync(fd);
        fs.rmSync('/tmp/fill', { force: true });
      }
    }
    case 'detach': {
      const c = spawn('/usr/bin/setsid', ['/usr/bin/sleep', '1000'], { detached: true, stdio: 'ignore' });
      c.unref();
      await new Promise((r) => c.once('spawn', r));
      return { ok: true, pid: c.pid };
    }
    case 'env': return { ok: true, env: { ...process.env } };
    default: return { ok: false, error: 'unknown action' };
  }
}

exports.POST = async (req, res) => {
  try {
    res.json(await probe(req.body));
  } catch (err) {
    res.json({ ok: false, error: code(err) });
  }
};
`;

/** A site with the probe route and a page carrying `marker`. */
export function probeSiteArchive(marker: string): Buffer {
  return tarGz([
    { name: 'public/', type: 'directory' },
    { name: 'public/index.html', body: `<!doctype html><h1>${marker}</h1>\n` },
    { name: 'api/', type: 'directory' },
    { name: 'api/probe.js', body: PROBE_ROUTE_SOURCE },
  ]);
}

/**
 * What a connection to the platform's port on 127.0.0.1 gets from a worker without
 * network: bubblewrap brings up the namespace's own loopback, where nothing listens
 * (refused); unshare leaves it down (unreachable). Either way at once, never the platform.
 */
export const LOOPBACK_CLOSED: readonly string[] = ['ECONNREFUSED', 'ENETUNREACH'];

export interface ProbeAnswer {
  readonly status: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly [key: string]: unknown;
}

/** Runs one probe in the tenant's worker through the edge, as a visitor of its site would. */
export async function probe(url: string, tenantId: string, body: Record<string, unknown>): Promise<ProbeAnswer> {
  const r = await httpRequest(url, {
    host: `${tenantId}.localhost`,
    method: 'POST',
    path: '/api/probe',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(r.body) as Record<string, unknown>;
  } catch {
    parsed = { ok: false, error: `non-JSON answer: ${r.body.slice(0, 200)}` };
  }
  return { ...parsed, status: r.status, ok: r.status === 200 && parsed.ok === true } as ProbeAnswer;
}
