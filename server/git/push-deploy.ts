// The platform's side of a push: the pre-receive relay (pre-receive-relay.ts)
// posts the ref updates here, over a unix socket only the platform user can
// open. A push to the deploy branch runs `git archive` of the pushed commit
// through the same deploy pipeline as an upload, and the push waits: a refused
// or failed deploy refuses the push, so the branch never points at a commit
// that is not live.
//
//   git client ──HTTP──> edge ──CGI──> git http-backend ──> receive-pack
//                                                             │ pre-receive
//   deploy pipeline <── PushReceiver <──unix socket── relay <─┘
//
// A push is known by a one-time ticket that the edge issues when it spawns
// http-backend for an authenticated push; the tenant and the actor come from
// the ticket, never from what the relay says.
import { NO_METRICS, type GitMetrics } from '../metrics/platform-metrics.js';
import type { ActorRef } from '../model/actor.js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { Store } from '../db/store.js';
import { isAppError } from '../errors.js';
import type { Logger } from '../log.js';
import { TenantLocks } from '../deploy/tenant-lock.js';
import { diskUsage, overDiskLimit } from './repository-size.js';
import { effectiveLimits } from '../model/limits.js';
import { baseGitEnv, runGit } from './git-command.js';
import type { GitRepositories } from './repositories.js';
import { formatRuleWarning, type RuleWarning } from '../static/index/rule-warning.js';

/** What the deploy pipeline offers; the same call serves uploads. */
export interface ArchiveDeployer {
  deployArchive(
    tenantId: string,
    archive: NodeJS.ReadableStream | string,
    opts: { source: string; message?: string; actor: ActorRef },
  ): Promise<{
    id: string;
    live: boolean;
    url: string;
    files: number;
    bytes: number;
    rules?: { redirects: number; headers: number };
    warnings?: readonly RuleWarning[];
  }>;
}

export interface PushTicket {
  readonly tenantId: string;
  readonly actor: ActorRef;
}

const ZERO_SHA = /^0+$/;
const MAX_REQUEST_BYTES = 1024 * 1024;
const PUSH_WAIT_MS = 10 * 60_000;

const hookRequestSchema = z.strictObject({
  ticket: z.string().min(1).max(200),
  updates: z
    .array(
      z.strictObject({
        oldSha: z.string().regex(/^[0-9a-f]{40,64}$/),
        newSha: z.string().regex(/^[0-9a-f]{40,64}$/),
        ref: z.string().min(1).max(1000),
      }),
    )
    .max(10_000),
  /** Where receive-pack keeps the pushed objects until the hook accepts them. */
  objectDirectory: z.string().max(4096).optional(),
  alternateObjectDirectories: z.string().max(65536).optional(),
  quarantinePath: z.string().max(4096).optional(),
});
type HookRequest = z.infer<typeof hookRequestSchema>;

/** Lines for the pusher's terminal (git prefixes them with `remote:`), then the hook's exit status. */
export interface HookOutput {
  line(text: string): void;
}

export class PushReceiver {
  /** Live tickets, and whether the pre-receive hook has presented each. */
  private readonly tickets = new Map<string, { readonly push: PushTicket; asked: boolean }>();
  private readonly pushLocks = new TenantLocks();
  private server: http.Server | undefined;
  private listening: Promise<string> | undefined;

  constructor(
    private readonly socketPath: string,
    private readonly repos: GitRepositories,
    private readonly store: Store,
    private readonly deployer: ArchiveDeployer,
    private readonly log: Logger,
    private readonly metrics: GitMetrics = NO_METRICS,
  ) {}

  /** Runs `fn` (one whole receive-pack) while no other push of the tenant runs; waits up to 10 minutes, then 409. */
  oneAtATime<T>(tenantId: string, fn: () => Promise<T>): Promise<T> {
    return this.pushLocks.run(tenantId, PUSH_WAIT_MS, fn);
  }

  issueTicket(t: PushTicket): string {
    const value = crypto.randomBytes(24).toString('base64url');
    this.tickets.set(value, { push: t, asked: false });
    return value;
  }

  /** Ends a ticket; `asked` says whether the pre-receive hook ran for it (git refuses a bad pack before). */
  revokeTicket(value: string): { asked: boolean } {
    const entry = this.tickets.get(value);
    this.tickets.delete(value);
    return { asked: entry?.asked ?? false };
  }

  /**
   * Starts the hook listener on first use and returns its address: the unix
   * socket path, or `127.0.0.1:<port>` where the path is too long for a socket.
   */
  address(): Promise<string> {
    this.listening ??= this.listen().catch((err) => {
      this.listening = undefined;
      throw err;
    });
    return this.listening;
  }

  private async listen(): Promise<string> {
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        this.log.error('push hook request failed', { err });
        if (!res.headersSent) res.writeHead(500);
        res.end('= 1\n');
      });
    });
    server.requestTimeout = 0; // a deploy may take as long as its health check
    this.server = server;
    // sun_path holds 107 bytes; a deep data folder falls back to loopback TCP (the ticket still guards it).
    if (Buffer.byteLength(this.socketPath) < 100) {
      fs.rmSync(this.socketPath, { force: true });
      fs.mkdirSync(path.dirname(this.socketPath), { recursive: true, mode: 0o750 });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socketPath, () => resolve());
      });
      fs.chmodSync(this.socketPath, 0o600);
      return this.socketPath;
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  close(): void {
    this.tickets.clear();
    if (this.server) {
      this.server.close();
      this.server.closeAllConnections();
      this.server = undefined;
      fs.rmSync(this.socketPath, { force: true });
    }
    this.listening = undefined;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== 'POST' || req.url !== '/pre-receive') {
      res.writeHead(404).end();
      return;
    }
    const raw = await readLimited(req, MAX_REQUEST_BYTES);
    let body: HookRequest;
    try {
      body = hookRequestSchema.parse(JSON.parse(raw ?? ''));
    } catch {
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end('> The hook request was not understood.\n= 1\n');
      return;
    }
    const entry = this.tickets.get(body.ticket);
    if (!entry) {
      res.writeHead(403, { 'Content-Type': 'text/plain' }).end('> This push is not known to the platform.\n= 1\n');
      return;
    }
    entry.asked = true;
    const ticket = entry.push;
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    const out: HookOutput = { line: (text) => res.write(text.split('\n').map((l) => `> ${l}\n`).join('')) };
    const status = await this.receive(ticket, body, out);
    res.end(`= ${status}\n`);
  }

  /** Decides about one push; returns the hook's exit status (non-zero refuses the push). */
  async receive(ticket: PushTicket, body: HookRequest, out: HookOutput): Promise<number> {
    const refs = body.updates.map((u) => u.ref);
    const record = (outcome: 'success' | 'failure', code: string | null, detail: Record<string, unknown>) =>
      this.store.audit.record({ actor: ticket.actor, action: 'git.push', tenantId: ticket.tenantId, outcome, code, detail: { refs, ...detail } });
    /** Refused before any deploy: the pusher reads the reason, the audit trail keeps its code. */
    const refuse = (code: string, ...lines: string[]) => {
      for (const l of lines) out.line(l);
      record('failure', code, { reason: lines[0] });
      return 1;
    };
    const tenant = this.store.tenants.get(ticket.tenantId);
    if (!tenant) return refuse('tenant_not_found', 'This tenant no longer exists.');
    // Every push counts toward the disk limit, whichever branch it is for: the
    // repository as it is plus the objects this push brought (in its quarantine folder inside it).
    const over = overDiskLimit(effectiveLimits(tenant.limitOverrides), await diskUsage(this.repos.pathOf(tenant.id)));
    if (over) {
      return refuse('disk_limit', over, 'Nothing was stored or deployed; remove large files from the history (git filter-repo) or ask for a higher diskMB.');
    }
    const deployRef = `refs/heads/${tenant.deployBranch}`;
    const update = body.updates.find((u) => u.ref === deployRef);
    if (!update) {
      const names = refs.map((r) => r.replace(/^refs\/heads\//, '')).join(', ');
      out.line(`Stored ${names || 'nothing'}; only ${tenant.deployBranch} is deployed.`);
      // A change to the repository all the same (the branches are fetched, and may be deployed later).
      record('success', null, { deployed: false });
      return 0;
    }
    if (ZERO_SHA.test(update.newSha)) {
      out.line(`Deleting ${tenant.deployBranch} does not change the live site.`);
      record('success', null, { deployed: false, deleted: update.ref });
      return 0;
    }
    const repo = this.repos.pathOf(tenant.id);
    // The pusher built on what it fetched; if the branch has moved since, the
    // ref update would fail after the deploy went live. Refuse it up front.
    const current = await currentCommit(repo, deployRef);
    if (current !== (ZERO_SHA.test(update.oldSha) ? undefined : update.oldSha)) {
      return refuse('conflict', `${tenant.deployBranch} has moved since you fetched it; fetch, then push again. Nothing was deployed.`);
    }
    const gitEnv = quarantineEnv(repo, body);
    if (!gitEnv) return refuse('invalid_request', 'The push named object folders outside its repository; refused.');
    const sha = update.newSha;
    const subject = await commitSubject(repo, sha, gitEnv);
    out.line(`Deploying ${sha.slice(0, 7)}${subject ? ` "${subject}"` : ''} to ${tenant.id} ...`);
    try {
      const result = await this.deployCommit(tenant.id, repo, sha, gitEnv, {
        message: `${sha.slice(0, 7)} ${subject}`.trim(),
        actor: ticket.actor,
      });
      out.line(`Deployed ${result.id}: ${result.files} files, ${result.bytes} bytes.`);
      if (result.rules && (result.rules.redirects || result.rules.headers || result.warnings?.length)) {
        out.line(`Rules: ${result.rules.redirects} in _redirects, ${result.rules.headers} path blocks in _headers.`);
      }
      for (const w of result.warnings ?? []) out.line(`Warning: ${formatRuleWarning(w)}`);
      out.line(`Live at ${result.url}`);
      this.metrics.gitPush(tenant.id, 'success');
      record('success', null, { ref: update.ref, sha, deploy: result.id });
      return 0;
    } catch (err) {
      this.metrics.gitPush(tenant.id, 'failure');
      const code = isAppError(err) ? err.code : 'internal_error';
      record('failure', code, { ref: update.ref, sha });
      if (isAppError(err)) {
        out.line(`Deploy refused (${err.code}): ${err.message}`);
      } else {
        const errorId = crypto.randomBytes(6).toString('hex');
        this.log.error('push deploy failed', { tenant: tenant.id, errorId, err, stack: (err as Error)?.stack });
        out.line(`Deploy failed on our side (error id ${errorId}).`);
      }
      out.line(`The live release is unchanged and ${tenant.deployBranch} was not updated.`);
      return 1;
    }
  }

  /** Streams `git archive` of the commit into the deploy pipeline; a failed archive is reported as such. */
  private async deployCommit(
    tenantId: string,
    repo: string,
    sha: string,
    gitEnv: Record<string, string>,
    opts: { message: string; actor: ActorRef },
  ) {
    const child = spawn('git', ['archive', '--format=tar', sha], {
      env: baseGitEnv({ GIT_DIR: repo, ...gitEnv }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      if (stderr.length < 4000) stderr += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => {
      child.once('error', () => resolve(-1));
      child.once('close', (code) => resolve(code));
    });
    // Piped at once: Node discards a child's unread stdout when the child exits,
    // and `git archive` of a small tree may finish before the pipeline reads.
    const tar = child.stdout.pipe(new PassThrough({ highWaterMark: 1024 * 1024 }));
    try {
      return await this.deployer.deployArchive(tenantId, tar, { source: 'git', ...opts });
    } catch (err) {
      // Output read to its end: `git archive` has finished, and its status says
      // whether the archive was whole. Otherwise the pipeline stopped reading
      // early (a refused entry) and `git archive` is no longer needed.
      if (!tar.readableEnded) child.kill('SIGKILL');
      const code = await exited;
      if (tar.readableEnded && code !== 0) {
        this.log.error('git archive failed', { tenant: tenantId, sha, code, stderr: stderr.trim() });
        throw new Error(`git archive failed: ${stderr.trim() || `exit ${code}`}`, { cause: err });
      }
      throw err;
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }
}

/**
 * The environment that lets `git archive` see the pushed, not yet accepted
 * objects. Every folder must lie inside the tenant's repository.
 */
export function quarantineEnv(repo: string, body: Pick<HookRequest, 'objectDirectory' | 'alternateObjectDirectories' | 'quarantinePath'>): Record<string, string> | undefined {
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return undefined;
    }
  };
  const root = (real(repo) ?? path.resolve(repo)) + path.sep;
  const inside = (p: string) => path.isAbsolute(p) && ((real(p) ?? '') + path.sep).startsWith(root);
  const env: Record<string, string> = {};
  if (body.objectDirectory) {
    if (!inside(body.objectDirectory)) return undefined;
    env.GIT_OBJECT_DIRECTORY = body.objectDirectory;
  }
  if (body.alternateObjectDirectories) {
    const dirs = body.alternateObjectDirectories.split(':').filter(Boolean);
    if (!dirs.every(inside)) return undefined;
    env.GIT_ALTERNATE_OBJECT_DIRECTORIES = dirs.join(':');
  }
  if (body.quarantinePath) {
    if (!inside(body.quarantinePath)) return undefined;
    env.GIT_QUARANTINE_PATH = body.quarantinePath;
  }
  return env;
}

/** The commit a branch points at in the repository itself (not the quarantine); undefined when it does not exist. */
async function currentCommit(repo: string, ref: string): Promise<string | undefined> {
  try {
    const { stdout } = await runGit(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { env: { GIT_DIR: repo } });
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

async function commitSubject(repo: string, sha: string, gitEnv: Record<string, string>): Promise<string> {
  try {
    const { stdout } = await runGit(['log', '-1', '--format=%s', sha], { env: { GIT_DIR: repo, ...gitEnv } });
    return stdout.trim().slice(0, 200);
  } catch {
    return '';
  }
}

function readLimited(req: http.IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.destroy();
        resolve(undefined);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
