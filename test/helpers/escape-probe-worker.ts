// A stand-in tenant worker for the isolation tests: it listens on the socket
// given as its first argument and, on POST /probe, tries what a hostile
// tenant would try, reporting what happened. It runs inside the sandbox.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import express from 'express';

const socketPath = process.argv[2]!;

type Probe =
  | { action: 'read'; path: string }
  | { action: 'write'; path: string }
  | { action: 'readdir'; path: string }
  | { action: 'symlinkRead'; link: string; target: string }
  | { action: 'setuid' }
  | { action: 'kill'; pid: number }
  | { action: 'processes' }
  | { action: 'tcp'; host: string; port: number }
  | { action: 'unix'; path: string }
  | { action: 'run'; file: string; args: string[] }
  | { action: 'spawnMany'; count: number }
  | { action: 'allocate'; mb: number }
  | { action: 'busy'; ms: number }
  | { action: 'fillTmp' }
  | { action: 'detach' }
  | { action: 'env' }
  | { action: 'whoami' };

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

const hold: Buffer[] = [];

async function probe(p: Probe): Promise<Record<string, unknown>> {
  switch (p.action) {
    case 'read':
      try {
        return { ok: true, bytes: fs.readFileSync(p.path).length };
      } catch (err) {
        return { ok: false, error: errCode(err) };
      }
    case 'write':
      try {
        fs.writeFileSync(p.path, 'tenant was here');
        return { ok: true };
      } catch (err) {
        return { ok: false, error: errCode(err) };
      }
    case 'readdir':
      try {
        return { ok: true, entries: fs.readdirSync(p.path) };
      } catch (err) {
        return { ok: false, error: errCode(err) };
      }
    case 'symlinkRead':
      try {
        fs.rmSync(p.link, { force: true });
        fs.symlinkSync(p.target, p.link);
        return { ok: true, bytes: fs.readFileSync(p.link).length };
      } catch (err) {
        return { ok: false, error: errCode(err) };
      }
    case 'setuid':
      try {
        process.setuid!(0);
        return { ok: true, uid: process.getuid!() };
      } catch (err) {
        return { ok: false, error: errCode(err), uid: process.getuid!() };
      }
    case 'kill':
      try {
        process.kill(p.pid, 'SIGKILL');
        return { ok: true };
      } catch (err) {
        return { ok: false, error: errCode(err) };
      }
    case 'processes':
      return { ok: true, pids: fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number) };
    case 'tcp':
    case 'unix':
      return await new Promise((resolve) => {
        const started = Date.now();
        const sock = p.action === 'tcp' ? net.connect({ host: p.host, port: p.port }) : net.connect({ path: p.path });
        const timer = setTimeout(() => {
          sock.destroy();
          resolve({ ok: false, error: 'TIMEOUT', ms: Date.now() - started });
        }, 5000);
        sock.once('connect', () => {
          clearTimeout(timer);
          sock.destroy();
          resolve({ ok: true, ms: Date.now() - started });
        });
        sock.once('error', (err) => {
          clearTimeout(timer);
          resolve({ ok: false, error: errCode(err), ms: Date.now() - started });
        });
      });
    case 'run': {
      const r = spawnSync(p.file, p.args, { encoding: 'utf8', timeout: 10_000 });
      return { ok: r.status === 0, status: r.status, stdout: r.stdout, stderr: r.stderr, error: r.error ? errCode(r.error) : undefined };
    }
    case 'spawnMany': {
      const children: ReturnType<typeof spawn>[] = [];
      let failed = 0;
      let firstError: string | undefined;
      for (let i = 0; i < p.count; i++) {
        const started = await new Promise<boolean>((resolve) => {
          const c = spawn('/usr/bin/sleep', ['30'], { stdio: 'ignore' });
          c.once('spawn', () => {
            children.push(c);
            resolve(true);
          });
          c.once('error', (err) => {
            firstError ??= errCode(err);
            resolve(false);
          });
        });
        if (!started) failed++;
        if (failed > 20) break;
      }
      const spawned = children.length;
      for (const c of children) c.kill('SIGKILL');
      return { ok: true, spawned, failed, firstError };
    }
    case 'allocate': {
      for (let i = 0; i < p.mb; i++) hold.push(Buffer.alloc(1024 * 1024, 1));
      return { ok: true, held: hold.length };
    }
    case 'busy': {
      const end = Date.now() + p.ms;
      let n = 0;
      while (Date.now() < end) n++;
      return { ok: true, n };
    }
    case 'fillTmp': {
      const chunk = Buffer.alloc(1024 * 1024, 7);
      let written = 0;
      const fd = fs.openSync('/tmp/fill', 'w');
      try {
        for (let i = 0; i < 4096; i++) {
          fs.writeSync(fd, chunk);
          written += chunk.length;
        }
        return { ok: true, written };
      } catch (err) {
        return { ok: false, error: errCode(err), written };
      } finally {
        fs.closeSync(fd);
        fs.rmSync('/tmp/fill', { force: true });
      }
    }
    case 'detach': {
      const c = spawn('/usr/bin/sleep', ['1000'], { detached: true, stdio: 'ignore' });
      c.unref();
      await new Promise((r) => c.once('spawn', r));
      return { ok: true, pid: c.pid };
    }
    case 'env':
      return { ok: true, env: { ...process.env } };
    case 'whoami':
      return { ok: true, uid: process.getuid!(), gid: process.getgid!(), groups: process.getgroups!(), pid: process.pid };
  }
}

const app = express();
app.use(express.json());
app.get('/health', (_req, res) => {
  res.json({ ok: true });
});
app.post('/probe', async (req, res) => {
  try {
    res.json(await probe(req.body as Probe));
  } catch (err) {
    res.json({ ok: false, error: errCode(err) });
  }
});
fs.rmSync(socketPath, { force: true });
app.listen(socketPath, () => {
  process.stdout.write(`probe worker listening on ${socketPath}\n`);
});
