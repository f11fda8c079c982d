// The git subsystem as the platform sees it: the tenants' repositories and the
// receiver that turns pushes into deploys.
import { NO_METRICS, type GitMetrics } from '../metrics/platform-metrics.js';
import type { Store } from '../db/store.js';
import type { Logger } from '../log.js';
import type { DataPaths } from '../paths.js';
import { GitRepositories } from './repositories.js';
import { PushReceiver, type ArchiveDeployer } from './push-deploy.js';
import path from 'node:path';

export class GitService {
  readonly repositories: GitRepositories;
  readonly pushes: PushReceiver;

  constructor(
    paths: DataPaths,
    store: Store,
    deployer: ArchiveDeployer,
    log: Logger,
    metrics: GitMetrics = NO_METRICS,
  ) {
    this.repositories = new GitRepositories(paths, log);
    this.pushes = new PushReceiver(path.join(paths.runRoot, 'git-hook.sock'), this.repositories, store, deployer, log, metrics);
  }

  close(): void {
    this.pushes.close();
  }
}
