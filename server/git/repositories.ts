// One bare git repository per tenant, at <data>/git/<id>.git: created on the
// tenant's first git request (three git processes, which tenant creation need
// not wait for), removed with the tenant, owned by the platform and never inside a tenant's
// folder (a tenant's code cannot read or rewrite its history or hooks).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { TenantRecord } from '../db/store.js';
import type { Logger } from '../log.js';
import type { DataPaths } from '../paths.js';
import type { TenantLifecycleHooks } from '../tenants/tenant-service.js';
import { runGit } from './git-command.js';

/**
 * The pre-receive hook of every tenant repository. It only relays: the bridge
 * that spawned `git http-backend` put the node binary, the relay script and a
 * one-time push ticket into the environment, and the platform decides.
 * A push that did not come through the platform's git URL is refused.
 */
export const PRE_RECEIVE_HOOK = `#!/bin/sh
# Installed by Tenantry. A push to the deploy branch is deployed before the
# branch moves; a failed deploy refuses the push.
if [ -z "$TENANTRY_PUSH_TICKET" ] || [ -z "$TENANTRY_NODE" ] || [ -z "$TENANTRY_PRE_RECEIVE" ]; then
  echo "Tenantry: push through the platform's git URL (http://<platform host>/git/<tenant>.git)." >&2
  exit 1
fi
exec "$TENANTRY_NODE" "$TENANTRY_PRE_RECEIVE"
`;

export class GitRepositories {
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly paths: DataPaths,
    private readonly log: Logger,
  ) {}

  pathOf(tenantId: string): string {
    return this.paths.gitRepo(tenantId);
  }

  exists(tenantId: string): boolean {
    return fs.existsSync(path.join(this.pathOf(tenantId), 'HEAD'));
  }

  /** Creates the repository if it is missing (safe to call concurrently); returns its path. */
  ensure(tenantId: string, branch: string): Promise<string> {
    if (this.exists(tenantId)) return Promise.resolve(this.pathOf(tenantId));
    let p = this.pending.get(tenantId);
    if (!p) {
      p = this.create(tenantId, branch).finally(() => this.pending.delete(tenantId));
      this.pending.set(tenantId, p);
    }
    return p;
  }

  /** Built in a scratch folder and renamed into place, so a half-made repository is never served. */
  private async create(tenantId: string, branch: string): Promise<string> {
    const final = this.pathOf(tenantId);
    const scratch = path.join(this.paths.gitRoot, `.new-${tenantId}-${crypto.randomBytes(4).toString('hex')}`);
    try {
      // An empty template: no sample hooks, no description file.
      await runGit(['init', '--quiet', '--bare', '--template=', `--initial-branch=${branch}`, scratch]);
      await runGit(['config', 'http.receivepack', 'true'], { cwd: scratch });
      // Many small pushes: keep the repository compact without a cron job.
      await runGit(['config', 'gc.auto', '256'], { cwd: scratch });
      const hooks = path.join(scratch, 'hooks');
      fs.mkdirSync(hooks, { recursive: true, mode: 0o700 });
      fs.writeFileSync(path.join(hooks, 'pre-receive'), PRE_RECEIVE_HOOK, { mode: 0o700 });
      fs.chmodSync(scratch, 0o700);
      fs.renameSync(scratch, final);
    } catch (err) {
      fs.rmSync(scratch, { recursive: true, force: true });
      throw err;
    }
    this.log.info('git repository created', { tenant: tenantId });
    return final;
  }

  /** Points HEAD at the deploy branch, so a clone checks out what is deployed. */
  async setDefaultBranch(tenantId: string, branch: string): Promise<void> {
    if (!this.exists(tenantId)) return;
    await runGit(['symbolic-ref', 'HEAD', `refs/heads/${branch}`], { cwd: this.pathOf(tenantId) });
  }

  remove(tenantId: string): void {
    fs.rmSync(this.pathOf(tenantId), { recursive: true, force: true });
  }

  /** Keeps repositories in step with tenants; a new tenant's is made by ensure() on its first git request. */
  lifecycleHooks(): TenantLifecycleHooks {
    return {
      onTenantCreated: async (t: TenantRecord) => {
        // A repository left by an earlier tenant of the same id is not inherited.
        this.remove(t.id);
      },
      onTenantDeleting: async (id: string) => {
        this.remove(id);
      },
      onTenantChanged: async (t: TenantRecord) => {
        try {
          await this.setDefaultBranch(t.id, t.deployBranch);
        } catch (err) {
          this.log.warn('git repository HEAD not updated', { tenant: t.id, branch: t.deployBranch, err });
        }
      },
    };
  }
}
