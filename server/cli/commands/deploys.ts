// tenantry deploys --tenant <id>: the deploy history, newest first, live marked.
import { apiRequest, clientOptions } from '../api-client.js';
import { parseCommand, requireFlag } from '../args.js';

const USAGE = 'tenantry deploys --tenant <id>';

export interface DeployListItem {
  id: string;
  createdAt: string;
  source: string;
  message: string | null;
  status: string;
  files: number;
  error: string | null;
  live: boolean;
}

export function fetchDeploys(client: ReturnType<typeof clientOptions>, tenant: string): Promise<{ deploys: DeployListItem[] }> {
  return apiRequest<{ deploys: DeployListItem[] }>(client, `/api/v1/tenants/${encodeURIComponent(tenant)}/deploys`);
}

export async function deploysCommand(args: string[], print: (s: string) => void): Promise<void> {
  const { values } = parseCommand(args, { tenant: { type: 'string' } });
  const tenant = requireFlag(values.tenant, 'tenant', USAGE);
  const { deploys } = await fetchDeploys(clientOptions(values, process.env), tenant);
  if (values.json) {
    print(JSON.stringify(deploys, null, 2));
    return;
  }
  for (const d of deploys) {
    const note = d.status === 'failed' ? d.error ?? '' : d.message ?? '';
    print(`${d.live ? '*' : ' '} ${d.id}  ${d.createdAt.slice(0, 19).replace('T', ' ')}  ${d.source.padEnd(7)} ${(d.live ? 'live' : d.status).padEnd(7)} ${String(d.files).padStart(6)} files  ${note}`.trimEnd());
  }
}
