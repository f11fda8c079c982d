// The supervisor's side of the release sealer (sealer-process.ts): one child
// started on first use and kept, requests matched to replies by id. Sealing a
// release costs a directory walk, not the four processes of a setpriv chain,
// and no longer blocks the supervisor while it runs.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SealReply } from './sealer-process.js';

const SEALER_ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sealer-process.js');

interface Pending {
  resolve(): void;
  reject(err: Error): void;
}

export class ReleaseSealer {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly platformUid: number,
    private readonly nodeBinary = process.execPath,
  ) {}

  /** Gives the release to the tenant's group, read-only; rejects with the sealer's reason. */
  seal(dir: string, gid: number): Promise<void> {
    const child = this.running();
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      child.stdin!.write(JSON.stringify({ id, dir, gid }) + '\n');
    });
  }

  async close(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.stdin!.end();
      setTimeout(() => child.kill('SIGKILL'), 2_000).unref();
    });
  }

  private running(): ChildProcess {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return this.child;
    const child = spawn(this.nodeBinary, [SEALER_ENTRY, String(this.platformUid)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2_000)));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const reply = JSON.parse(line) as SealReply;
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve();
      else p.reject(new Error(`sealing the release failed: ${reply.error}`));
    });
    // A request written to a sealer that died meanwhile fails with its reason; the next one starts a new sealer.
    child.stdin!.on('error', () => {});
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      const reason = new Error(`the release sealer stopped (${signal ?? `exit ${code}`})${stderr ? `: ${stderr.trim()}` : ''}`);
      for (const p of this.pending.values()) p.reject(reason);
      this.pending.clear();
    });
    child.on('error', () => {});
    this.child = child;
    return child;
  }
}
