// tenantry rollback --tenant <id> [<deployId>]: makes a release live again;
// without an id, the newest ready release older than the live one.
import { apiRequest, clientOptions, CliError } from '../api-client.js';
import { parseCommand, requireFlag } from '../args.js';
import { fetchDeploys, type DeployListItem } from './deploys.js';

const USAGE = 'tenantry rollback --tenant <id> [<deployId>]';

/** In a newest-first history: the first ready release after the live one. */
export function previousRelease(deploys: readonly DeployListItem[]): DeployListItem | undefined {
  const live = deploys.findIndex((d) => d.live);
  if (live < 0) return undefined;
  return deploys.slice(live + 1).find((d) => d.status === 'ready');
}

export async function rollbackCommand(args: string[], print: (s: string) => void): Promise<void> {
  const { values, positionals } = parseCommand(args, { tenant: { type: 'string' } });
  const tenant = requireFlag(values.tenant, 'tenant', USAGE);
  if (positionals.length > 1) throw new CliError(`give at most one deploy id; usage: ${USAGE}`, 2);
  const client = clientOptions(values, process.env);
  let deployId = positionals[0];
  if (!deployId) {
    const prev = previousRelease((await fetchDeploys(client, tenant)).deploys);
    if (!prev) throw new CliError(`tenant ${tenant} has no earlier release to roll back to`);
    deployId = prev.id;
  }
  const d = await apiRequest<{ id: string; url: string }>(
    client,
    `/api/v1/tenants/${encodeURIComponent(tenant)}/deploys/${encodeURIComponent(deployId)}/activate`,
    { method: 'POST' },
  );
  print(values.json ? JSON.stringify(d, null, 2) : `live: ${d.id} ${d.url}`);
}
